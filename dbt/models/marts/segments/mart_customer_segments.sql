{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='as_of_date',
        partition_by=ew_partition_by('as_of_date'),
        on_schema_change='fail',
        post_hook="{{ ew_delete_as_of_dates_gone(ref('int_as_of_dates_enumerated')) }}"
    )
}}

-- Customer segments (用户分层) per as-of date: RFM scores and named segment, lifecycle tier and churn
-- warning for every customer with a purchase day on or before the as-of date. Rules and thresholds are
-- documented on the columns in _segments__models.yml.
-- Incremental by as-of date (docs/incremental.md): an as-of date's rows read only purchases and active
-- days on or before it, so a run rebuilds the as-of dates from the earliest date whose purchases
-- (int_purchase_dates_digested) or active days (int_active_days_collected) changed since this
-- table's last build, plus as-of dates that are new or stopped or started being the data end date;
-- the post-hook drops as-of dates no longer enumerated (yesterday's data end date). A new day
-- rebuilds the data end date; a month end is built when the data end date passes it, and after that
-- only when a late row or correction reaches a date on or before it.
-- depends_on: {{ ref('int_purchase_dates_digested') }}
with

{% if is_incremental() %}

changed_from as (

    select min(changed_date) as changed_from_date
    from (
        select min(input_date) as changed_date
        from {{ ref('int_purchase_dates_digested') }}
        where built_at > {{ ew_last_built_at() }}

        union all

        select min(event_date) as changed_date
        from {{ ref('int_active_days_collected') }}
        where built_at > {{ ew_last_built_at() }}
    ) as per_input

),

stored_as_of_dates as (

    select distinct
        as_of_date,
        is_data_end_date
    from {{ this }}

),

{% endif %}

as_of_dates as (

    select enumerated.*
    from {{ ref('int_as_of_dates_enumerated') }} as enumerated
    {% if is_incremental() %}
    where enumerated.as_of_date >= (select changed_from_date from changed_from)
        or not exists (
            select 1
            from stored_as_of_dates
            where stored_as_of_dates.as_of_date = enumerated.as_of_date
                and stored_as_of_dates.is_data_end_date = enumerated.is_data_end_date
        )
    {% endif %}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

active_days as (

    -- one row per customer and business date with tracking activity on any platform
    select
        customer_key,
        event_date,
        max(case when is_login_day then 1 else 0 end) as is_login_day
    from {{ ref('int_active_days_collected') }}
    group by
        customer_key,
        event_date

),

purchase_days as (

    select
        customer_key,
        order_date,
        sum(net_revenue) as net_revenue
    from orders
    where is_valid
    group by
        customer_key,
        order_date

),

purchases_as_of as (

    select
        purchase_days.customer_key,
        as_of_dates.as_of_date,
        min(purchase_days.order_date) as first_purchase_date,
        max(purchase_days.order_date) as last_purchase_date,
        count(*) as purchase_days,
        sum(
            case
                when purchase_days.order_date > cast({{ dbt.dateadd('day', -365, 'as_of_dates.as_of_date') }} as date)
                    then 1
                else 0
            end
        ) as frequency,
        sum(
            case
                when purchase_days.order_date > cast({{ dbt.dateadd('day', -365, 'as_of_dates.as_of_date') }} as date)
                    then purchase_days.net_revenue
                else 0
            end
        ) as monetary,
        sum(
            case
                when purchase_days.order_date > cast({{ dbt.dateadd('day', -90, 'as_of_dates.as_of_date') }} as date)
                    then 1
                else 0
            end
        ) as purchase_days_last_90d,
        sum(
            case
                when purchase_days.order_date > cast({{ dbt.dateadd('day', -180, 'as_of_dates.as_of_date') }} as date)
                    and purchase_days.order_date
                    <= cast({{ dbt.dateadd('day', -90, 'as_of_dates.as_of_date') }} as date)
                    then 1
                else 0
            end
        ) as purchase_days_prev_90d
    from purchase_days
    inner join as_of_dates
        on purchase_days.order_date <= as_of_dates.as_of_date
    group by
        purchase_days.customer_key,
        as_of_dates.as_of_date

),

first_category_purchases as (

    select
        customer_key,
        category_l1,
        min(order_date) as first_bought_date
    from order_items
    where is_valid
        and category_l1 is not null
    group by
        customer_key,
        category_l1

),

categories_as_of as (

    select
        first_category_purchases.customer_key,
        as_of_dates.as_of_date,
        count(*) as category_count
    from first_category_purchases
    inner join as_of_dates
        on first_category_purchases.first_bought_date <= as_of_dates.as_of_date
    group by
        first_category_purchases.customer_key,
        as_of_dates.as_of_date

),

activity_as_of as (

    select
        active_days.customer_key,
        as_of_dates.as_of_date,
        max(case when active_days.is_login_day = 1 then active_days.event_date end) as last_active_date,
        count(*) > 0 as is_tracked
    from active_days
    inner join as_of_dates
        on active_days.event_date <= as_of_dates.as_of_date
    group by
        active_days.customer_key,
        as_of_dates.as_of_date

),

measured as (

    select
        purchases_as_of.customer_key,
        purchases_as_of.as_of_date,
        as_of_dates.is_data_end_date,
        cast(
            {{ dbt.datediff('purchases_as_of.last_purchase_date', 'purchases_as_of.as_of_date', 'day') }}
            as integer
        ) as recency_days,
        cast(purchases_as_of.frequency as integer) as frequency,
        cast(purchases_as_of.monetary as decimal(18, 2)) as monetary,
        purchases_as_of.first_purchase_date,
        purchases_as_of.last_purchase_date,
        cast(purchases_as_of.purchase_days as integer) as purchase_days,
        cast(coalesce(categories_as_of.category_count, 0) as integer) as category_count,
        cast(purchases_as_of.purchase_days_last_90d as integer) as purchase_days_last_90d,
        cast(purchases_as_of.purchase_days_prev_90d as integer) as purchase_days_prev_90d,
        activity_as_of.last_active_date,
        coalesce(activity_as_of.is_tracked, false) as is_tracked
    from purchases_as_of
    inner join as_of_dates
        on purchases_as_of.as_of_date = as_of_dates.as_of_date
    left join categories_as_of
        on purchases_as_of.customer_key = categories_as_of.customer_key
        and purchases_as_of.as_of_date = categories_as_of.as_of_date
    left join activity_as_of
        on purchases_as_of.customer_key = activity_as_of.customer_key
        and purchases_as_of.as_of_date = activity_as_of.as_of_date

),

-- Quintiles: ntile(5) over the as-of date's customers, worst to best (R: longest ago first), with
-- customer_key only to make the split deterministic; then customers with equal values all take the
-- lowest quintile any of them fell into, so a score never separates equal values.
quintiles as (

    select
        measured.*,
        ntile(5) over (
            partition by as_of_date
            order by recency_days desc nulls first, customer_key asc nulls last
        ) as r_ntile,
        ntile(5) over (
            partition by as_of_date
            order by frequency asc nulls first, customer_key asc nulls last
        ) as f_ntile,
        ntile(5) over (
            partition by as_of_date
            order by monetary asc nulls first, customer_key asc nulls last
        ) as m_ntile
    from measured

),

scored as (

    select
        quintiles.*,
        cast(min(r_ntile) over (partition by as_of_date, recency_days) as integer) as r_score,
        cast(min(f_ntile) over (partition by as_of_date, frequency) as integer) as f_score,
        cast(min(m_ntile) over (partition by as_of_date, monetary) as integer) as m_score
    from quintiles

),

classified as (

    select
        scored.*,
        case
            when purchase_days = 1 and recency_days <= 30 then 'new'
            when r_score >= 4 and f_score >= 4 and m_score >= 4 then 'core_loyal'
            when r_score >= 3 then 'potential_loyal'
            when f_score >= 4 then 'periodic'
            when r_score = 2 then 'at_risk'
            else 'churned'
        end as segment,
        case
            when purchase_days >= 4 and category_count >= 3 then 'expert'
            when purchase_days >= 2 or category_count >= 2 then 'advanced'
            else 'novice'
        end as lifecycle_tier,
        -- Only customers our tracking has ever seen can lapse: a buyer only on tmall/jd/douyin/offline
        -- has no events at all, and flagging every one of them would drown the real warnings.
        is_tracked and (
            last_active_date is null
            or {{ dbt.datediff('last_active_date', 'as_of_date', 'day') }} >= 30
        ) as is_login_lapsed,
        2 * purchase_days_last_90d < purchase_days_prev_90d as is_purchase_declining,
        -- a purchase day in the 30 days ending on as_of_date (the login rule's window): whoever bought
        -- that recently is not churning, whatever the app or the 90-day trend says
        recency_days < 30 as has_purchase_last_30d
    from scored

),

final as (

    select
        customer_key,
        as_of_date,
        recency_days,
        frequency,
        monetary,
        r_score,
        f_score,
        m_score,
        segment,
        case segment
            when 'core_loyal' then '核心忠诚'
            when 'potential_loyal' then '潜力忠诚'
            when 'periodic' then '周期性消费'
            when 'new' then '新用户'
            when 'at_risk' then '流失预警'
            when 'churned' then '持续流失'
        end as segment_zh,
        lifecycle_tier,
        case lifecycle_tier
            when 'novice' then '新手'
            when 'advanced' then '进阶'
            when 'expert' then '专业'
        end as lifecycle_tier_zh,
        not has_purchase_last_30d and (is_login_lapsed or is_purchase_declining) as churn_warning,
        case
            when has_purchase_last_30d then null
            when is_login_lapsed and is_purchase_declining then 'both'
            when is_login_lapsed then 'no_login_30d'
            when is_purchase_declining then 'purchase_decline_90d'
        end as churn_reason,
        is_data_end_date,
        first_purchase_date,
        last_purchase_date,
        purchase_days,
        category_count,
        last_active_date,
        is_tracked,
        has_purchase_last_30d,
        purchase_days_last_90d,
        purchase_days_prev_90d,
        {{ ew_built_at() }} as built_at
    from classified

)

select * from final
