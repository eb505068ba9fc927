{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='session_date',
        partition_by=ew_partition_by('session_date'),
        on_schema_change='fail'
    )
}}

-- One row per tracking session: platform, customer (after login stitching), start, whether the
-- customer was new or returning (had a valid purchase on an earlier business day), and the content,
-- live-room and share touchpoints it holds (their conversion: mart_touchpoint_conversion_daily).
-- Incremental by session_date (macros/incremental.sql): dates of sessions with rebuilt events, plus
-- dates where a session's new/returning type changed (a first purchase arrived, moved or was refunded).
with

customers as (

    select * from {{ ref('dim_customers') }}

),

{% if is_incremental() %}

{% set type_changed_dates %}
    select distinct previous.session_date
    from {{ this }} as previous
    left join customers
        on previous.customer_key = customers.customer_key
    where previous.customer_type <> case
            when customers.first_purchase_date < previous.session_date then 'returning'
            else 'new'
        end
{% endset %}

{{ ew_session_batch_ctes(ref('int_events_attributed'), type_changed_dates) }}

events as (

    select * from batch_events

),

{% else %}

events as (

    select * from {{ ref('int_events_attributed') }}

),

{% endif %}

sessions as (

    select
        session_id,
        min(event_at) as session_start_at,
        max(event_at) as session_end_at,
        min(platform) as platform,
        max(customer_key) as customer_key,
        min(anonymous_id) as anonymous_id,
        count(*) as n_events,
        max(case when event_name = 'login' then 1 else 0 end) = 1 as has_login,
        max(case when user_id is null then 1 else 0 end) = 1 as has_anonymous_events,
        max(case when event_name = 'payment_success' then 1 else 0 end) = 1 as has_payment_success,
        max(case when event_name = 'content_view' then 1 else 0 end) = 1 as has_content_view,
        max(case when event_name = 'live_view' then 1 else 0 end) = 1 as has_live_view,
        max(case when event_name = 'share' then 1 else 0 end) = 1 as has_share
    from events
    group by session_id

),

final as (

    select
        sessions.session_id,
        sessions.customer_key,
        sessions.anonymous_id,
        sessions.platform,
        sessions.session_start_at,
        sessions.session_end_at,
        {{ to_business_date('sessions.session_start_at') }} as session_date,
        sessions.n_events,
        sessions.has_login,
        sessions.has_anonymous_events,
        sessions.has_payment_success,
        sessions.has_content_view,
        sessions.has_live_view,
        sessions.has_share,
        case
            when customers.first_purchase_date < {{ to_business_date('sessions.session_start_at') }}
                then 'returning'
            else 'new'
        end as customer_type,
        {{ ew_built_at() }} as built_at
    from sessions
    left join customers
        on sessions.customer_key = customers.customer_key

)

select * from final
{% if is_incremental() %}
where session_date in (select session_date from affected_dates)
{% endif %}
