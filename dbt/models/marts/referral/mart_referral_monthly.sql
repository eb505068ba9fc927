-- Referral / social fission (裂变, docs/metrics.md "Referral") per business month and tracking platform,
-- platform 'all' summing them: shares (int_referral_shares) and sharers by the share's month and
-- platform; referred users (int_referrals_attributed) by their arrival month and first event's platform,
-- and how many bought within 30 days; the new customers the month's shares brought, per sharer. On the
-- 'all' rows only, referred vs organic new customers by first-purchase month: first-order AOV and 90-day
-- repurchase.
with

referrals as (

    select * from {{ ref('int_referrals_attributed') }}

),

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

shares as (

    select
        share_date,
        share_platform as platform,
        referrer_customer_key as customer_key
    from {{ ref('int_referral_shares') }}

),

shares_on_platforms as (

    select cast({{ dbt.date_trunc('month', 'share_date') }} as date) as month, platform, customer_key from shares
    union all
    select cast({{ dbt.date_trunc('month', 'share_date') }} as date), 'all', customer_key from shares

),

shares_counted as (

    select
        month,
        platform,
        count(*) as shares,
        count(distinct customer_key) as sharers
    from shares_on_platforms
    group by
        month,
        platform

),

arrivals_on_platforms as (

    select
        cast({{ dbt.date_trunc('month', 'arrival_date') }} as date) as month,
        arrival_platform as platform,
        is_observed_30d,
        is_converted_30d
    from referrals
    union all
    select
        cast({{ dbt.date_trunc('month', 'arrival_date') }} as date),
        'all',
        is_observed_30d,
        is_converted_30d
    from referrals

),

arrivals_counted as (

    select
        month,
        platform,
        count(*) as referred_users,
        sum(case when is_observed_30d then 1 else 0 end) as referred_observed_30d,
        sum(case when is_observed_30d and is_converted_30d then 1 else 0 end) as referred_converted_30d
    from arrivals_on_platforms
    group by
        month,
        platform

),

brought_on_platforms as (

    select cast({{ dbt.date_trunc('month', 'share_date') }} as date) as month, share_platform as platform
    from referrals
    where is_converted_30d
    union all
    select cast({{ dbt.date_trunc('month', 'share_date') }} as date), 'all'
    from referrals
    where is_converted_30d

),

brought_counted as (

    select
        month,
        platform,
        count(*) as new_customers_from_shares
    from brought_on_platforms
    group by
        month,
        platform

),

new_customers as (

    select
        buyers.cohort_month as month,
        coalesce(referrals.is_converted_30d, false) as is_referred,
        orders.pay_amount as first_order_amount,
        cast({{ dbt.dateadd('day', 90, 'buyers.first_purchase_date') }} as date) <= data_end.data_end_date
            as is_observed_90d,
        coalesce(buyers.days_to_second_purchase <= 90, false) as is_repurchased_90d
    from buyers
    inner join orders
        on
            buyers.customer_key = orders.customer_key
            and orders.valid_order_seq = 1
    left join referrals
        on buyers.customer_key = referrals.customer_key
    cross join data_end

),

new_customers_compared as (

    select
        month,
        'all' as platform,
        sum(case when is_referred then 1 else 0 end) as referred_new_customers,
        sum(case when not is_referred then 1 else 0 end) as organic_new_customers,
        avg(case when is_referred then first_order_amount end) as referred_first_order_aov,
        avg(case when not is_referred then first_order_amount end) as organic_first_order_aov,
        sum(case when is_referred and is_observed_90d then 1 else 0 end) as referred_observed_90d,
        sum(case when is_referred and is_observed_90d and is_repurchased_90d then 1 else 0 end)
            as referred_repurchased_90d,
        sum(case when not is_referred and is_observed_90d then 1 else 0 end) as organic_observed_90d,
        sum(case when not is_referred and is_observed_90d and is_repurchased_90d then 1 else 0 end)
            as organic_repurchased_90d
    from new_customers
    group by month

),

keys as (

    select month, platform from shares_counted
    union
    select month, platform from arrivals_counted
    union
    select month, platform from brought_counted
    union
    select month, platform from new_customers_compared

),

final as (

    select
        keys.month,
        keys.platform,
        cast(coalesce(shares_counted.shares, 0) as integer) as shares,
        cast(coalesce(shares_counted.sharers, 0) as integer) as sharers,
        cast(coalesce(arrivals_counted.referred_users, 0) as integer) as referred_users,
        cast(coalesce(arrivals_counted.referred_observed_30d, 0) as integer) as referred_observed_30d,
        cast(coalesce(arrivals_counted.referred_converted_30d, 0) as integer) as referred_converted_30d,
        {{ safe_share('arrivals_counted.referred_converted_30d', 'arrivals_counted.referred_observed_30d') }}
            as referral_conversion_30d,
        cast(coalesce(brought_counted.new_customers_from_shares, 0) as integer) as new_customers_from_shares,
        {{ safe_share('coalesce(brought_counted.new_customers_from_shares, 0)', 'shares_counted.sharers') }}
            as new_customers_per_sharer,
        cast(new_customers_compared.referred_new_customers as integer) as referred_new_customers,
        cast(new_customers_compared.organic_new_customers as integer) as organic_new_customers,
        cast(new_customers_compared.referred_first_order_aov as double) as referred_first_order_aov,
        cast(new_customers_compared.organic_first_order_aov as double) as organic_first_order_aov,
        cast(new_customers_compared.referred_observed_90d as integer) as referred_observed_90d,
        cast(new_customers_compared.referred_repurchased_90d as integer) as referred_repurchased_90d,
        {{ safe_share(
            'new_customers_compared.referred_repurchased_90d', 'new_customers_compared.referred_observed_90d'
        ) }} as referred_repurchase_90d,
        cast(new_customers_compared.organic_observed_90d as integer) as organic_observed_90d,
        cast(new_customers_compared.organic_repurchased_90d as integer) as organic_repurchased_90d,
        {{ safe_share(
            'new_customers_compared.organic_repurchased_90d', 'new_customers_compared.organic_observed_90d'
        ) }} as organic_repurchase_90d,
        data_end.data_end_date
    from keys
    left join shares_counted
        on keys.month = shares_counted.month and keys.platform = shares_counted.platform
    left join arrivals_counted
        on keys.month = arrivals_counted.month and keys.platform = arrivals_counted.platform
    left join brought_counted
        on keys.month = brought_counted.month and keys.platform = brought_counted.platform
    left join new_customers_compared
        on keys.month = new_customers_compared.month and keys.platform = new_customers_compared.platform
    cross join data_end

)

select * from final
