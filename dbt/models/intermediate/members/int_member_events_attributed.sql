-- A table, not a view: three member marts and three data tests read it, and as a view each of
-- them recomputed it (5-6.5 s apiece in the L refresh of 12-07).
{{ config(materialized='table') }}

-- Every member event with the customer its account belongs to, and for a join or level change the
-- account's level before it (0 before joining): the step of the growth path the event is.
with

member_events as (

    select * from {{ ref('stg_crm__member_events') }}

),

users as (

    select * from {{ ref('int_users_unified') }}

),

level_events_sequenced as (

    select
        event_id,
        lag(member_level) over (
            partition by user_id
            order by event_at, event_id
        ) as previous_level
    from member_events
    where event_type in ('join', 'level_up', 'level_down')

),

final as (

    select
        member_events.event_id,
        member_events.user_id,
        -- an account without a users row is a customer of its own, as in int_users_unified's orders
        coalesce(users.customer_key, member_events.user_id) as customer_key,
        member_events.event_at,
        member_events.event_date,
        member_events.event_type,
        case
            when level_events_sequenced.event_id is not null
                then coalesce(level_events_sequenced.previous_level, 0)
        end as from_level,
        member_events.member_level,
        member_events.points,
        member_events.order_id
    from member_events
    left join users
        on member_events.user_id = users.user_id
    left join level_events_sequenced
        on member_events.event_id = level_events_sequenced.event_id

)

select * from final
