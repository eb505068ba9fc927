-- Outcomes by RFM segment and by lifecycle tier (分层结果): the customers of each group on an as-of date
-- (mart_customer_segments) and what they did after it: a purchase day within 30 days (复购) and within
-- 90 days (留存), and, for a tier, a higher tier by the next month end (晋级转化, from
-- mart_tier_transitions). A window not yet observed to its last day gives null counts and rates.
with

segments as (

    select * from {{ ref('mart_customer_segments') }}

),

purchase_days as (

    select * from {{ ref('int_purchase_days_sequenced') }}

),

tier_transitions as (

    select * from {{ ref('mart_tier_transitions') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

later_purchases_found as (

    select
        segments.customer_key,
        segments.as_of_date,
        max(
            case
                when purchase_days.purchase_date <= cast({{ dbt.dateadd('day', 30, 'segments.as_of_date') }} as date)
                    then 1 else 0
            end
        ) as bought_30d
    from segments
    inner join purchase_days
        on segments.customer_key = purchase_days.customer_key
        and purchase_days.purchase_date > segments.as_of_date
        and purchase_days.purchase_date <= cast({{ dbt.dateadd('day', 90, 'segments.as_of_date') }} as date)
    group by
        segments.customer_key,
        segments.as_of_date

),

customers_with_outcomes as (

    select
        segments.as_of_date,
        segments.segment,
        segments.segment_zh,
        segments.lifecycle_tier,
        segments.lifecycle_tier_zh,
        coalesce(later_purchases_found.bought_30d, 0) as bought_30d,
        case when later_purchases_found.customer_key is not null then 1 else 0 end as bought_90d
    from segments
    left join later_purchases_found
        on segments.customer_key = later_purchases_found.customer_key
        and segments.as_of_date = later_purchases_found.as_of_date

),

groups_stacked as (

    select
        as_of_date,
        'segment' as group_type,
        segment as group_value,
        segment_zh as group_value_zh,
        bought_30d,
        bought_90d
    from customers_with_outcomes

    union all

    select
        as_of_date,
        'lifecycle_tier' as group_type,
        lifecycle_tier as group_value,
        lifecycle_tier_zh as group_value_zh,
        bought_30d,
        bought_90d
    from customers_with_outcomes

),

groups_aggregated as (

    select
        as_of_date,
        group_type,
        group_value,
        group_value_zh,
        count(*) as customers,
        sum(bought_30d) as bought_30d,
        sum(bought_90d) as bought_90d
    from groups_stacked
    group by
        as_of_date,
        group_type,
        group_value,
        group_value_zh

),

upgrades_summed as (

    select
        cast({{ dbt.dateadd('day', -1, 'month_start') }} as date) as as_of_date,
        from_tier,
        sum(case when is_upgrade then customers else 0 end) as upgraded
    from tier_transitions
    where from_tier <> 'none'
    group by
        month_start,
        from_tier

),

groups_observed as (

    select
        groups_aggregated.*,
        cast({{ dbt.dateadd('day', 30, 'groups_aggregated.as_of_date') }} as date)
        <= data_end.data_end_date as is_observed_30d,
        cast({{ dbt.dateadd('day', 90, 'groups_aggregated.as_of_date') }} as date)
        <= data_end.data_end_date as is_observed_90d,
        case
            when groups_aggregated.group_type = 'lifecycle_tier'
                then coalesce(upgrades_summed.upgraded, 0)
        end as upgraded,
        {{ period_end('month', add_periods('month', 1, period_start('month', 'groups_aggregated.as_of_date'))) }}
        <= data_end.data_end_date
        and groups_aggregated.as_of_date
        = {{ period_end('month', period_start('month', 'groups_aggregated.as_of_date')) }} as is_observed_next_month,
        data_end.data_end_date
    from groups_aggregated
    cross join data_end
    left join upgrades_summed
        on groups_aggregated.as_of_date = upgrades_summed.as_of_date
        and groups_aggregated.group_value = upgrades_summed.from_tier
        and groups_aggregated.group_type = 'lifecycle_tier'

),

final as (

    select
        as_of_date,
        group_type,
        group_value,
        group_value_zh,
        cast(customers as integer) as customers,
        cast(case when is_observed_30d then bought_30d end as integer) as repurchased_30d,
        case when is_observed_30d then {{ safe_share('bought_30d', 'customers') }} end as repurchase_rate_30d,
        cast(case when is_observed_90d then bought_90d end as integer) as retained_90d,
        case when is_observed_90d then {{ safe_share('bought_90d', 'customers') }} end as retention_rate_90d,
        cast(case when is_observed_next_month then upgraded end as integer) as upgraded_next_month,
        case
            when is_observed_next_month and group_value <> 'expert' then {{ safe_share('upgraded', 'customers') }}
        end as conversion_rate_next_month,
        is_observed_30d,
        is_observed_90d,
        data_end_date
    from groups_observed

)

select * from final
