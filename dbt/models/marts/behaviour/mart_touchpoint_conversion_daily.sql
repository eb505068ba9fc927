{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='event_date',
        partition_by=ew_partition_by('event_date'),
        on_schema_change='fail'
    )
}}

-- Conversion of the sessions that hold a content, live-room or share touchpoint (docs/metrics.md
-- "Behaviour"), per session date and platform: sessions with a content_view / live_view / share event,
-- and of them the sessions with a payment_success event (the session conversion fct_sessions defines),
-- beside every session of the date ('all_sessions') as the baseline. A session with two touchpoints
-- counts under each.
-- Incremental by date: the dates fct_sessions rebuilt since this table's last build.
with

{% if is_incremental() %}

affected_dates as (

    select distinct session_date from {{ ref('fct_sessions') }}
    where built_at > {{ ew_last_built_at() }}

),

{% endif %}

sessions as (

    select * from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
    where session_date in (select session_date from affected_dates)
        and {{ ew_dates_within('session_date', 'affected_dates', 'session_date') }}
    {% endif %}

),

touchpoints as (

    select 1 as touchpoint_order, 'all_sessions' as touchpoint
    union all select 2, 'content_view'
    union all select 3, 'live_view'
    union all select 4, 'share'

),

sessions_counted as (

    select
        session_date,
        platform,
        count(*) as all_sessions,
        sum(case when has_payment_success then 1 else 0 end) as all_paying,
        sum(case when has_content_view then 1 else 0 end) as content_sessions,
        sum(case when has_content_view and has_payment_success then 1 else 0 end) as content_paying,
        sum(case when has_live_view then 1 else 0 end) as live_sessions,
        sum(case when has_live_view and has_payment_success then 1 else 0 end) as live_paying,
        sum(case when has_share then 1 else 0 end) as share_sessions,
        sum(case when has_share and has_payment_success then 1 else 0 end) as share_paying
    from sessions
    group by
        session_date,
        platform

),

touchpoints_unpivoted as (

    select
        sessions_counted.session_date,
        sessions_counted.platform,
        touchpoints.touchpoint,
        case touchpoints.touchpoint_order
            when 1 then sessions_counted.all_sessions
            when 2 then sessions_counted.content_sessions
            when 3 then sessions_counted.live_sessions
            when 4 then sessions_counted.share_sessions
        end as sessions,
        case touchpoints.touchpoint_order
            when 1 then sessions_counted.all_paying
            when 2 then sessions_counted.content_paying
            when 3 then sessions_counted.live_paying
            when 4 then sessions_counted.share_paying
        end as paying_sessions
    from sessions_counted
    cross join touchpoints

),

final as (

    select
        session_date as event_date,
        platform,
        touchpoint,
        cast(sessions as integer) as sessions,
        cast(paying_sessions as integer) as paying_sessions,
        cast(paying_sessions as double) / nullif(cast(sessions as double), 0) as conversion_rate,
        {{ ew_built_at() }} as built_at
    from touchpoints_unpivoted

)

select * from final
