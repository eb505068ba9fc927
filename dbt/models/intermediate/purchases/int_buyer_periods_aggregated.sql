-- One row per buyer, period grain (ISO week, calendar month, quarter) and period with a purchase
-- day: purchase days, net revenue and repeat net revenue in that period.
{%- set grains = ['week', 'month', 'quarter'] %}

with

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

periods_assigned as (

    {%- for grain in grains %}

    select
        customer_key,
        first_channel,
        '{{ grain }}' as period_grain,
        {{ period_start(grain, 'purchase_date') }} as period_start,
        net_revenue,
        repeat_net_revenue
    from purchase_days
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

aggregated as (

    select
        customer_key,
        first_channel,
        period_grain,
        period_start,
        count(*) as purchase_days,
        sum(net_revenue) as net_revenue,
        sum(repeat_net_revenue) as repeat_net_revenue
    from periods_assigned
    group by
        customer_key,
        first_channel,
        period_grain,
        period_start

),

final as (

    select
        customer_key,
        first_channel,
        period_grain,
        period_start,
        case
            {%- for grain in grains %}
            when period_grain = '{{ grain }}' then {{ period_end(grain, 'period_start') }}
            {%- endfor %}
        end as period_end,
        cast(purchase_days as integer) as purchase_days,
        cast(net_revenue as decimal(18, 2)) as net_revenue,
        cast(repeat_net_revenue as decimal(18, 2)) as repeat_net_revenue
    from aggregated

)

select * from final
