-- The overview KPIs per week and per month with the period before (环比, period over period) and the same
-- period a year before (同比, year over year): GMV, valid orders, AOV and buyers as the Overview dashboard
-- defines them (docs/metrics.md building blocks, all on fct_orders' valid orders by order_date). A growth
-- is reported only between two complete periods (docs/metrics.md "complete period"): a month cut by the
-- data start or end would read as a fall or a rise that is only missing days. The year-ago week is the
-- week 52 weeks before (the same ISO weekdays).
{%- set grains = ['week', 'month'] %}
{%- set year_back = {'week': -52, 'month': -12} %}
with

orders as (

    select * from {{ ref('fct_orders') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

valid_orders as (

    select
        orders.order_date,
        orders.customer_key,
        orders.pay_amount
    from orders
    cross join data_end
    where
        orders.is_valid
        and orders.order_date <= data_end.data_end_date

),

{% for grain in grains %}
{{ grain }}_aggregated as (

    select
        '{{ grain }}' as grain,
        {{ period_start(grain, 'valid_orders.order_date') }} as period_start,
        sum(valid_orders.pay_amount) as gmv,
        count(*) as valid_orders,
        count(distinct valid_orders.customer_key) as buyers
    from valid_orders
    group by {{ period_start(grain, 'valid_orders.order_date') }}

),

{{ grain }}_compared as (

    select
        current_period.grain,
        current_period.period_start,
        {{ period_end(grain, 'current_period.period_start') }} as period_end,
        current_period.gmv,
        current_period.valid_orders,
        current_period.buyers,
        previous_period.gmv as previous_gmv,
        previous_period.valid_orders as previous_valid_orders,
        previous_period.buyers as previous_buyers,
        year_ago.gmv as year_ago_gmv,
        year_ago.valid_orders as year_ago_valid_orders,
        year_ago.buyers as year_ago_buyers,
        year_ago.period_start as year_ago_period_start
    from {{ grain }}_aggregated as current_period
    left join {{ grain }}_aggregated as previous_period
        on previous_period.period_start = {{ add_periods(grain, -1, 'current_period.period_start') }}
    left join {{ grain }}_aggregated as year_ago
        on year_ago.period_start = {{ add_periods(grain, year_back[grain], 'current_period.period_start') }}

),

{% endfor %}

periods_combined as (

    {% for grain in grains %}
    select * from {{ grain }}_compared
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

periods_flagged as (

    select
        periods_combined.*,
        periods_combined.period_start >= data_end.data_start_date
        and periods_combined.period_end <= data_end.data_end_date as is_complete,
        -- the period before is complete when it starts on or after the data start (it ends before this one)
        case periods_combined.grain
            when 'week' then {{ add_periods('week', -1, 'periods_combined.period_start') }}
            else {{ add_periods('month', -1, 'periods_combined.period_start') }}
        end >= data_end.data_start_date as is_previous_complete,
        periods_combined.year_ago_period_start >= data_end.data_start_date as is_year_ago_complete,
        data_end.data_end_date
    from periods_combined
    cross join data_end

),

final as (

    select
        grain,
        period_start,
        period_end,
        is_complete,
        cast(gmv as decimal(18, 2)) as gmv,
        cast(valid_orders as integer) as valid_orders,
        cast(gmv as double) / nullif(cast(valid_orders as double), 0) as aov,
        cast(buyers as integer) as buyers,
        cast(previous_gmv as decimal(18, 2)) as previous_gmv,
        cast(previous_valid_orders as integer) as previous_valid_orders,
        cast(previous_buyers as integer) as previous_buyers,
        case when is_complete and is_previous_complete
                then cast(gmv as double) / nullif(cast(previous_gmv as double), 0) - 1 end as gmv_pop_growth,
        case when is_complete and is_previous_complete
                then cast(valid_orders as double) / nullif(cast(previous_valid_orders as double), 0) - 1 end
            as orders_pop_growth,
        case when is_complete and is_previous_complete
                then (cast(gmv as double) / nullif(cast(valid_orders as double), 0))
                / nullif(cast(previous_gmv as double) / nullif(cast(previous_valid_orders as double), 0), 0) - 1 end
            as aov_pop_growth,
        case when is_complete and is_previous_complete
                then cast(buyers as double) / nullif(cast(previous_buyers as double), 0) - 1 end as buyers_pop_growth,
        cast(year_ago_gmv as decimal(18, 2)) as year_ago_gmv,
        case when is_complete and is_year_ago_complete
                then cast(gmv as double) / nullif(cast(year_ago_gmv as double), 0) - 1 end as gmv_yoy_growth,
        case when is_complete and is_year_ago_complete
                then cast(buyers as double) / nullif(cast(year_ago_buyers as double), 0) - 1 end as buyers_yoy_growth,
        data_end_date
    from periods_flagged

)

select * from final
