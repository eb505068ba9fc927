-- Identity coverage in one row: the share of tracking events attributed to a customer (own user_id
-- or login stitching), over every event. Aggregated here so the cross_identity_coverage suite reads
-- one row instead of pulling every event; no row at all when there are no events, so a shop without
-- tracking has nothing to judge.
with

events as (

    select * from {{ ref('int_events_attributed') }}

),

aggregated as (

    select
        avg(case when customer_key is null then 0.0 else 1.0 end) as is_attributed,
        count(*) as events
    from events
    having count(*) > 0

)

select * from aggregated
