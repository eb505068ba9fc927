-- Every event with the user and customer it belongs to: its own user_id, else the user its
-- anonymous_id logged in as (before or after this event). Events on a device that never logged
-- in stay anonymous (customer_key null).
with

events as (

    select * from {{ ref('stg_tracking__events') }}

),

stitched as (

    select * from {{ ref('int_anonymous_ids_stitched') }}

),

users as (

    select * from {{ ref('int_users_unified') }}

),

attributed as (

    select
        events.event_id,
        events.event_name,
        events.event_at,
        events.event_date,
        events.session_id,
        events.platform,
        events.anonymous_id,
        events.user_id,
        coalesce(events.user_id, stitched.user_id) as resolved_user_id,
        coalesce(users.customer_key, events.user_id, stitched.user_id) as customer_key,
        events.user_id is null and stitched.user_id is not null as is_stitched,
        events.sku_id,
        events.order_id,
        events.page,
        events.campaign_id
    from events
    left join stitched
        on events.anonymous_id = stitched.anonymous_id
    left join users
        on coalesce(events.user_id, stitched.user_id) = users.user_id

)

select * from attributed
