-- Purchase retention (留存 / 同期群): for each first-purchase cohort (ISO week or calendar month) and
-- period k = 0..12 after it, the share of the cohort with a purchase day in period k (k = 0 is the
-- cohort's own period, so 1.0). Periods that start after the data end date have no row; the period
-- holding the data end date is included, only partly observed, with is_complete false.
{%- set grains = {'week': 'cohort_week', 'month': 'cohort_month'} %}

with

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

period_indexes as (

    {%- for k in range(13) %}
    select {{ k }} as period_index{% if not loop.last %} union all{% endif %}
    {%- endfor %}

),

cohort_sizes as (

    {%- for grain, cohort_column in grains.items() %}

    select
        '{{ grain }}' as cohort_grain,
        {{ cohort_column }} as cohort_start,
        count(*) as cohort_size
    from purchase_days
    where purchase_day_seq = 1
    group by {{ cohort_column }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

cohort_periods as (

    select
        cohort_sizes.cohort_grain,
        cohort_sizes.cohort_start,
        period_indexes.period_index,
        cohort_sizes.cohort_size,
        case
            {%- for grain in grains %}
            when cohort_sizes.cohort_grain = '{{ grain }}'
                then {{ add_periods(grain, 'period_indexes.period_index', 'cohort_sizes.cohort_start') }}
            {%- endfor %}
        end as period_start
    from cohort_sizes
    cross join period_indexes

),

activity as (

    {%- for grain, cohort_column in grains.items() %}

    select
        '{{ grain }}' as cohort_grain,
        {{ cohort_column }} as cohort_start,
        {{ periods_between(grain, cohort_column, period_start(grain, 'purchase_date')) }} as period_index,
        count(distinct customer_key) as active_customers
    from purchase_days
    group by
        {{ cohort_column }},
        {{ periods_between(grain, cohort_column, period_start(grain, 'purchase_date')) }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        cohort_periods.cohort_grain,
        cohort_periods.cohort_start,
        cast(cohort_periods.period_index as integer) as period_index,
        cast(cohort_periods.cohort_size as integer) as cohort_size,
        cast(coalesce(activity.active_customers, 0) as integer) as active_customers,
        {{ safe_share('coalesce(activity.active_customers, 0)', 'cohort_periods.cohort_size') }}
            as retention_rate,
        cohort_periods.period_start,
        case
            {%- for grain in grains %}
            when cohort_periods.cohort_grain = '{{ grain }}'
                then {{ period_end(grain, 'cohort_periods.period_start') }}
            {%- endfor %}
        end as period_end,
        case
            {%- for grain in grains %}
            when cohort_periods.cohort_grain = '{{ grain }}'
                then {{ period_end(grain, 'cohort_periods.period_start') }} <= data_end.data_end_date
            {%- endfor %}
        end as is_complete,
        data_end.data_end_date
    from cohort_periods
    cross join data_end
    left join activity
        on cohort_periods.cohort_grain = activity.cohort_grain
        and cohort_periods.cohort_start = activity.cohort_start
        and cohort_periods.period_index = activity.period_index
    where cohort_periods.period_start <= data_end.data_end_date

)

select * from final
