-- KPI targets (目标) against actuals, per target and calendar month. Targets are the kpi_targets seed
-- (what operations teams edit); each metric with an actual_source is computed here from its model, over
-- the month: repurchase by first-purchase month (the cohort's 30-day rate), D1/D30 retention over the
-- month's registration dates observed so far, tracking coverage and the order-to-behaviour lag (p95,
-- hours) over the month's paid tracked orders, member repurchase (会员复购率) as the 30-day repurchase of
-- the month's first-purchase cohort's members (dim_customers.is_member). A target whose metric no dbt
-- model measures (no actual_source) keeps its rows with status 'no_actual_yet'.
with

targets as (

    select * from {{ ref('kpi_targets') }}

),

calendar as (

    select * from {{ ref('dim_date') }}

),

repurchase_cohorts as (

    select * from {{ ref('mart_repurchase_cohort') }}

),

activity_retention as (

    select * from {{ ref('mart_activity_retention') }}

),

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

payment_tracking as (

    select * from {{ ref('int_quality__payment_tracking') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

months as (

    select
        month_start,
        max(date_day) as month_end
    from calendar
    group by month_start

),

repurchase_actuals as (

    select
        'repurchase_rate_30d' as metric,
        cohort_month as period_start,
        repurchase_rate_30d as actual_value,
        is_complete as is_final
    from repurchase_cohorts

),

member_repurchase_by_cohort as (

    select
        buyers.cohort_month as period_start,
        count(*) as buyers,
        sum(case when buyers.is_repurchased_30d then 1 else 0 end) as repurchased_30d
    from buyers
    inner join customers
        on buyers.customer_key = customers.customer_key
    where customers.is_member
    group by buyers.cohort_month

),

-- the same completeness as mart_repurchase_cohort: the cohort month's last day + 30 is observed
member_repurchase_actuals as (

    select
        'member_repurchase_rate_30d' as metric,
        member_repurchase_by_cohort.period_start,
        {{ safe_share('member_repurchase_by_cohort.repurchased_30d', 'member_repurchase_by_cohort.buyers') }}
            as actual_value,
        cast({{ dbt.dateadd('day', 30, period_end('month', 'member_repurchase_by_cohort.period_start')) }} as date)
        <= data_end.data_end_date as is_final
    from member_repurchase_by_cohort
    cross join data_end

),

retention_by_month as (

    select
        cast({{ dbt.date_trunc('month', 'registration_date') }} as date) as period_start,
        sum(d1_users) as d1_users,
        sum(case when d1_users is not null then new_users end) as d1_base,
        sum(d30_users) as d30_users,
        sum(case when d30_users is not null then new_users end) as d30_base,
        count(*) as days,
        count(d1_users) as d1_days,
        count(d30_users) as d30_days
    from activity_retention
    group by cast({{ dbt.date_trunc('month', 'registration_date') }} as date)

),

retention_actuals as (

    select
        'd1_retention_rate' as metric,
        period_start,
        {{ safe_share('d1_users', 'd1_base') }} as actual_value,
        d1_days = days as is_final
    from retention_by_month
    union all
    select
        'd30_retention_rate' as metric,
        period_start,
        {{ safe_share('d30_users', 'd30_base') }} as actual_value,
        d30_days = days as is_final
    from retention_by_month

),

tracking_by_month as (

    select
        cast({{ dbt.date_trunc('month', 'paid_date') }} as date) as period_start,
        count(*) as paid_orders,
        sum(has_payment_event) as covered_orders,
        {{ percentile_cont('payment_event_lag_min', 0.95) }} / 60.0 as lag_p95_hours
    from payment_tracking
    group by cast({{ dbt.date_trunc('month', 'paid_date') }} as date)

),

-- events may land up to 3 days late (raw contract): a month is final 3 days after its last day
tracking_months_settled as (

    select
        tracking_by_month.*,
        months.month_end <= {{ dbt.dateadd('day', -3, 'data_end.data_end_date') }} as is_final
    from tracking_by_month
    inner join months
        on tracking_by_month.period_start = months.month_start
    cross join data_end

),

tracking_actuals as (

    select
        'tracking_coverage' as metric,
        period_start,
        {{ safe_share('covered_orders', 'paid_orders') }} as actual_value,
        is_final
    from tracking_months_settled
    union all
    select
        'order_behaviour_lag_hours' as metric,
        period_start,
        lag_p95_hours as actual_value,
        is_final
    from tracking_months_settled

),

actuals as (

    select * from repurchase_actuals
    union all
    select * from member_repurchase_actuals
    union all
    select * from retention_actuals
    union all
    select * from tracking_actuals

),

target_months as (

    select
        targets.target_id,
        targets.metric,
        targets.metric_name_zh,
        targets.metric_name_en,
        targets.segment_type,
        targets.segment_value,
        targets.target_value,
        targets.direction,
        targets.unit,
        targets.actual_source,
        months.month_start as period_start,
        months.month_end as period_end
    from targets
    inner join months
        on months.month_start <= targets.valid_to
        and months.month_end >= targets.valid_from

),

compared as (

    select
        target_months.*,
        case when target_months.actual_source is not null then actuals.actual_value end as actual_value,
        case when target_months.actual_source is not null then actuals.is_final end as is_final
    from target_months
    left join actuals
        on target_months.metric = actuals.metric
        and target_months.period_start = actuals.period_start

),

final as (

    select
        target_id,
        metric,
        metric_name_zh,
        metric_name_en,
        segment_type,
        segment_value,
        period_start,
        period_end,
        target_value,
        direction,
        unit,
        actual_value,
        coalesce(is_final, false) as is_final,
        actual_value - target_value as gap,
        -- a provisional actual (a cohort younger than its window, a month still being observed) will
        -- change: it is pending, neither met nor missed
        case
            when actual_value is null or not coalesce(is_final, false) then cast(null as boolean)
            when direction = 'at_least' then actual_value >= target_value
            else actual_value <= target_value
        end as is_met,
        case
            when actual_source is null then 'no_actual_yet'
            when actual_value is null then 'no_data'
            when not coalesce(is_final, false) then 'pending'
            when (direction = 'at_least' and actual_value >= target_value)
                or (direction = 'at_most' and actual_value <= target_value) then 'met'
            else 'missed'
        end as status
    from compared

)

select * from final
