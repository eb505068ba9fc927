-- Members against non-members (会员 vs 非会员): share of customers, and the repurchase, retention and LTV
-- facts of the purchase marts split by member status (dim_customers.is_member), each over the buyers
-- whose first-purchase cohort has been observed long enough, as those marts complete a cohort:
-- 30-day repurchase (int_buyers_summarized.is_repurchased_30d) once the cohort month's last day + 30 <=
-- data end date; next-month retention (period 1 of mart_cohort_retention) once that month has ended;
-- N-day LTV (days 0..N) once the last day + N <= data end date. member_status 'all' is every customer.
{%- set ltv_horizons = [30, 90] %}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

customers_classified as (

    select
        customer_key,
        case when is_member then 'member' else 'non_member' end as member_status
    from customers

),

buyer_values_summed as (

    select
        customer_key,
        max(
            case
                when {{ periods_between('month', 'cohort_month', period_start('month', 'purchase_date')) }} = 1
                    then 1 else 0
            end
        ) as has_next_month_purchase,
        {%- for horizon in ltv_horizons %}
        sum(case when days_since_first_purchase <= {{ horizon }} then net_revenue else 0 end)
            as net_revenue_{{ horizon }}d{% if not loop.last %},{% endif %}
        {%- endfor %}
    from purchase_days
    group by customer_key

),

buyers_observed as (

    select
        buyers.customer_key,
        buyers.is_repurchased_30d,
        buyer_values_summed.has_next_month_purchase,
        {%- for horizon in ltv_horizons %}
        buyer_values_summed.net_revenue_{{ horizon }}d,
        cast(
            {{ dbt.dateadd('day', horizon, period_end('month', 'buyers.cohort_month')) }} as date
        ) <= data_end.data_end_date as is_observed_{{ horizon }}d,
        {%- endfor %}
        {{ period_end('month', add_periods('month', 1, 'buyers.cohort_month')) }} <= data_end.data_end_date
            as is_observed_next_month
    from buyers
    inner join buyer_values_summed
        on buyers.customer_key = buyer_values_summed.customer_key
    cross join data_end

),

customers_with_outcomes as (

    select
        customers_classified.member_status,
        case when buyers_observed.customer_key is not null then 1 else 0 end as is_buyer,
        case when buyers_observed.is_observed_30d then 1 else 0 end as in_repurchase_base,
        case when buyers_observed.is_observed_30d and buyers_observed.is_repurchased_30d then 1 else 0 end
            as is_repurchased_30d,
        case when buyers_observed.is_observed_next_month then 1 else 0 end as in_retention_base,
        case
            when buyers_observed.is_observed_next_month then buyers_observed.has_next_month_purchase else 0
        end as is_retained_next_month,
        {%- for horizon in ltv_horizons %}
        case when buyers_observed.is_observed_{{ horizon }}d then 1 else 0 end as in_ltv_{{ horizon }}d_base,
        case
            when buyers_observed.is_observed_{{ horizon }}d then buyers_observed.net_revenue_{{ horizon }}d else 0
        end as ltv_{{ horizon }}d_revenue{% if not loop.last %},{% endif %}
        {%- endfor %}
    from customers_classified
    left join buyers_observed
        on customers_classified.customer_key = buyers_observed.customer_key

),

statuses_and_all as (

    select * from customers_with_outcomes

    union all

    select
        'all' as member_status,
        is_buyer,
        in_repurchase_base,
        is_repurchased_30d,
        in_retention_base,
        is_retained_next_month,
        {%- for horizon in ltv_horizons %}
        in_ltv_{{ horizon }}d_base,
        ltv_{{ horizon }}d_revenue{% if not loop.last %},{% endif %}
        {%- endfor %}
    from customers_with_outcomes

),

statuses_aggregated as (

    select
        member_status,
        count(*) as customers,
        sum(is_buyer) as buyers,
        sum(in_repurchase_base) as repurchase_base,
        sum(is_repurchased_30d) as repurchased_30d,
        sum(in_retention_base) as retention_base,
        sum(is_retained_next_month) as retained_next_month,
        {%- for horizon in ltv_horizons %}
        sum(in_ltv_{{ horizon }}d_base) as ltv_{{ horizon }}d_base,
        sum(ltv_{{ horizon }}d_revenue) as net_revenue_{{ horizon }}d{% if not loop.last %},{% endif %}
        {%- endfor %}
    from statuses_and_all
    group by member_status

),

all_customers_counted as (

    select customers as all_customers
    from statuses_aggregated
    where member_status = 'all'

),

final as (

    select
        statuses_aggregated.member_status,
        cast(statuses_aggregated.customers as integer) as customers,
        {{ safe_share('statuses_aggregated.customers', 'all_customers_counted.all_customers') }}
            as customer_share,
        cast(statuses_aggregated.buyers as integer) as buyers,
        cast(statuses_aggregated.repurchase_base as integer) as repurchase_base,
        cast(statuses_aggregated.repurchased_30d as integer) as repurchased_30d,
        {{ safe_share('statuses_aggregated.repurchased_30d', 'statuses_aggregated.repurchase_base') }}
            as repurchase_rate_30d,
        cast(statuses_aggregated.retention_base as integer) as retention_base,
        cast(statuses_aggregated.retained_next_month as integer) as retained_next_month,
        {{ safe_share('statuses_aggregated.retained_next_month', 'statuses_aggregated.retention_base') }}
            as retention_rate_next_month,
        {%- for horizon in ltv_horizons %}
        cast(statuses_aggregated.ltv_{{ horizon }}d_base as integer) as ltv_{{ horizon }}d_base,
        cast(statuses_aggregated.net_revenue_{{ horizon }}d as decimal(18, 2)) as net_revenue_{{ horizon }}d,
        {{ safe_share(
            'statuses_aggregated.net_revenue_' ~ horizon ~ 'd',
            'statuses_aggregated.ltv_' ~ horizon ~ 'd_base'
        ) }} as ltv_net_{{ horizon }}d,
        {%- endfor %}
        data_end.data_end_date
    from statuses_aggregated
    cross join all_customers_counted
    cross join data_end

)

select * from final
