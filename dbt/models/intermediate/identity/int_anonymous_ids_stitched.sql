-- A table, not a view: the incremental int_events_attributed compares every stored event with it.
{{ config(materialized='table') }}

-- Login stitching: an anonymous_id (device) belongs to the user seen on it in any event that
-- carries both ids; if a device was shared, its most recent user wins.
with

events as (

    select * from {{ ref('stg_tracking__events') }}

),

identified as (

    select
        anonymous_id,
        user_id,
        row_number() over (
            partition by anonymous_id
            order by event_at desc nulls last, event_id desc nulls last
        ) as recency_rank
    from events
    where user_id is not null

),

stitched as (

    select
        anonymous_id,
        user_id
    from identified
    where recency_rank = 1

)

select * from stitched
