-- A table, not a view: read by a dozen models, and compared in full by int_events_attributed.
{{ config(materialized='table') }}

-- One customer per person: users sharing a phone_hash (the same phone registered in several
-- channels) get one customer_key, the smallest of their user_ids. A user without phone_hash is a
-- customer of their own. Orders or events of a user_id with no users row keep that user_id as key.
with

users as (

    select * from {{ ref('stg_crm__users') }}

),

keyed as (

    select
        user_id,
        channel,
        phone_hash,
        registered_at,
        registration_date,
        member_level,
        min(user_id) over (
            partition by coalesce(phone_hash, concat('user:', user_id))
        ) as customer_key
    from users

)

select * from keyed
