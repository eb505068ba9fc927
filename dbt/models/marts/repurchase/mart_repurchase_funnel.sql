-- First-to-repeat funnel (首购-复购转化漏斗): of each first-purchase month, how many customers
-- reached a 2nd, 3rd, 4th and 5th-or-later purchase day by the data end date. One row per cohort
-- for all channels (first_channel = 'all') and one per cohort and acquisition channel. Counts are
-- cumulative to the data end date, so younger cohorts have had less time (see observed_days).
{%- set steps = [('2nd', 2), ('3rd', 3), ('4th', 4), ('5plus', 5)] %}

with

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

channels_and_all as (

    select
        cohort_month,
        first_channel,
        purchase_days
    from buyers

    union all

    select
        cohort_month,
        'all' as first_channel,
        purchase_days
    from buyers

),

cohorts_aggregated as (

    select
        cohort_month,
        first_channel,
        {{ period_end('month', 'cohort_month') }} as cohort_end_date,
        count(*) as customers,
        {%- for step, n in steps %}
        sum(case when purchase_days >= {{ n }} then 1 else 0 end) as reached_{{ step }}{{ ',' if not loop.last }}
        {%- endfor %}
    from channels_and_all
    group by
        cohort_month,
        first_channel,
        {{ period_end('month', 'cohort_month') }}

),

final as (

    select
        cohorts_aggregated.cohort_month,
        cohorts_aggregated.first_channel,
        cast(cohorts_aggregated.customers as integer) as customers,
        {%- for step, n in steps %}
        cast(cohorts_aggregated.reached_{{ step }} as integer) as reached_{{ step }},
        {%- endfor %}
        {%- for step, n in steps %}
        {{ safe_share('cohorts_aggregated.reached_' ~ step, 'cohorts_aggregated.customers') }}
            as reached_{{ step }}_share,
        {%- endfor %}
        -- days from the cohort's last day to the data end date: what its youngest members have had
        cast(
            case
                when cohorts_aggregated.cohort_end_date >= data_end.data_end_date then 0
                else {{ dbt.datediff('cohorts_aggregated.cohort_end_date', 'data_end.data_end_date', 'day') }}
            end as integer
        ) as observed_days,
        data_end.data_end_date
    from cohorts_aggregated
    cross join data_end

)

select * from final
