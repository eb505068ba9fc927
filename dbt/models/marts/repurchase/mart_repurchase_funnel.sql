-- First-to-repeat funnel (首购-复购转化漏斗) at fixed horizons: of each first-purchase month, how many
-- customers reached a 2nd, 3rd, 4th and 5th-or-later purchase day within N = 30, 90, 180 days of the
-- first purchase day (day 0; day N counts). A horizon appears only once every member of the cohort has
-- been observed N days, so cohorts of different ages are compared over the same exposure. One row per
-- cohort and horizon for all channels (first_channel = 'all') and one per acquisition channel.
{%- set steps = [('2nd', 2), ('3rd', 3), ('4th', 4), ('5plus', 5)] %}
{%- set horizons = [30, 90, 180] %}

with

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

horizons as (

    {%- for horizon in horizons %}
    select {{ horizon }} as horizon_days{% if not loop.last %} union all{% endif %}
    {%- endfor %}

),

customer_horizons as (

    select
        purchase_days.customer_key,
        purchase_days.cohort_month,
        purchase_days.first_channel,
        horizons.horizon_days,
        sum(
            case when purchase_days.days_since_first_purchase <= horizons.horizon_days then 1 else 0 end
        ) as purchase_days_within
    from purchase_days
    cross join horizons
    group by
        purchase_days.customer_key,
        purchase_days.cohort_month,
        purchase_days.first_channel,
        horizons.horizon_days

),

channels_and_all as (

    select
        cohort_month,
        first_channel,
        horizon_days,
        purchase_days_within
    from customer_horizons

    union all

    select
        cohort_month,
        'all' as first_channel,
        horizon_days,
        purchase_days_within
    from customer_horizons

),

cohorts_aggregated as (

    select
        cohort_month,
        first_channel,
        horizon_days,
        count(*) as customers,
        {%- for step, n in steps %}
        sum(case when purchase_days_within >= {{ n }} then 1 else 0 end) as reached_{{ step }}{{ ',' if not loop.last }}
        {%- endfor %}
    from channels_and_all
    group by
        cohort_month,
        first_channel,
        horizon_days

),

final as (

    select
        cohorts_aggregated.cohort_month,
        cohorts_aggregated.first_channel,
        cast(cohorts_aggregated.horizon_days as integer) as horizon_days,
        cast(cohorts_aggregated.customers as integer) as customers,
        {%- for step, n in steps %}
        cast(cohorts_aggregated.reached_{{ step }} as integer) as reached_{{ step }},
        {%- endfor %}
        {%- for step, n in steps %}
        {{ safe_share('cohorts_aggregated.reached_' ~ step, 'cohorts_aggregated.customers') }}
            as reached_{{ step }}_share,
        {%- endfor %}
        data_end.data_end_date
    from cohorts_aggregated
    cross join data_end
    where
        -- the cohort's youngest members (first purchase on the month's last day) observed through day N
        cast(
            {{ dbt.dateadd(
                'day', 'cohorts_aggregated.horizon_days', period_end('month', 'cohorts_aggregated.cohort_month')
            ) }}
            as date
        ) <= data_end.data_end_date

)

select * from final
