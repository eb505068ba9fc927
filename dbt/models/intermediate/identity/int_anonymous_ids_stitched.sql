-- A table, not a view: the incremental int_events_attributed compares every stored event with it.
{{ config(materialized='table') }}

-- Login stitching: an anonymous_id (device) belongs to the user seen on it in any event that
-- carries both ids; if a device was shared, its most recent user wins (latest event_at, then the
-- greatest event_id). One aggregate, not a row_number() over every identified event: that sort
-- took 8.7 s of a one-day refresh at preset M (17.7M events), the aggregate ~1 s.
with

events as (

    select * from {{ ref('stg_tracking__events') }}

),

stitched as (

    select
        anonymous_id,
        {{ ew_value_at_max('user_id', ['event_at', 'event_id']) }} as user_id
    from events
    where user_id is not null
    group by anonymous_id

)

select * from stitched
