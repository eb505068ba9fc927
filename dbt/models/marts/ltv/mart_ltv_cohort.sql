-- Historical LTV per first-purchase month and acquisition channel (plus first_channel = 'all' for
-- the whole cohort) at N = 30, 90, 180, 365 days: average net revenue (ltv_net) and net revenue
-- minus cost of goods (ltv_margin) per customer of orders with order_date - first_purchase_date <= N:
-- the first purchase day is day 0 and day N counts, the one N-day convention of docs/metrics.md (as the
-- 30-day repurchase rate). A horizon appears only once every member of the cohort has been observed
-- through day N (last day of the cohort month + N <= data end date).
{%- set horizons = [30, 90, 180, 365] %}

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

customer_values as (

    select
        purchase_days.customer_key,
        purchase_days.cohort_month,
        purchase_days.first_channel,
        horizons.horizon_days,
        sum(
            case when purchase_days.days_since_first_purchase <= horizons.horizon_days
                then purchase_days.net_revenue else 0 end
        ) as net_revenue,
        sum(
            case when purchase_days.days_since_first_purchase <= horizons.horizon_days
                then purchase_days.margin_amount else 0 end
        ) as margin_amount
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
        net_revenue,
        margin_amount
    from customer_values

    union all

    select
        cohort_month,
        'all' as first_channel,
        horizon_days,
        net_revenue,
        margin_amount
    from customer_values

),

cohorts_aggregated as (

    select
        cohort_month,
        first_channel,
        horizon_days,
        count(*) as customers,
        sum(net_revenue) as net_revenue,
        sum(margin_amount) as margin_amount
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
        {{ safe_share('cohorts_aggregated.net_revenue', 'cohorts_aggregated.customers') }} as ltv_net,
        {{ safe_share('cohorts_aggregated.margin_amount', 'cohorts_aggregated.customers') }} as ltv_margin,
        cast(cohorts_aggregated.net_revenue as decimal(18, 2)) as net_revenue,
        cast(cohorts_aggregated.margin_amount as decimal(18, 2)) as margin_amount,
        data_end.data_end_date
    from cohorts_aggregated
    cross join data_end
    where
        cast(
            {{ dbt.dateadd(
                'day',
                'cohorts_aggregated.horizon_days',
                period_end('month', 'cohorts_aggregated.cohort_month')
            ) }} as date
        ) <= data_end.data_end_date

)

select * from final
