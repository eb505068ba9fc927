{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='event_date',
        partition_by=ew_partition_by('event_date'),
        on_schema_change='fail'
    )
}}

-- One row per business date, platform and active customer (活跃用户: a customer with any tracking
-- event that date, through their own user_id or login stitching, as int_events_attributed attributes
-- it; a device that never logged in is nobody's). The events are read once here, so the active-user
-- windows (DAU/WAU/MAU) read this much smaller table.
-- Incremental by date: the dates int_events_attributed rebuilt since this table's last build.
{%- set events = ref('int_events_attributed') %}
with

{% if is_incremental() %}

affected_dates as (

    select distinct event_date
    from {{ events }}
    where built_at > {{ ew_last_built_at() }}

),

{% endif %}

active_days as (

    select
        event_date,
        platform,
        customer_key,
        -- the segments' login rule (mart_customer_segments: no login in 30 days) reads this, not the events
        bool_or(event_name in ('login', 'app_open')) as is_login_day
    from {{ events }}
    where customer_key is not null
    {% if is_incremental() %}
        and event_date in (select event_date from affected_dates)
        and {{ ew_dates_within('event_date', 'affected_dates', 'event_date') }}
    {% endif %}
    group by
        event_date,
        platform,
        customer_key

),

final as (

    select
        event_date,
        platform,
        customer_key,
        is_login_day,
        {{ ew_built_at() }} as built_at
    from active_days

)

select * from final
