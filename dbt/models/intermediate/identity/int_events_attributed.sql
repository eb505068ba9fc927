{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='event_date',
        partition_by=ew_partition_by('event_date'),
        on_schema_change='fail'
    )
}}

-- Every event with the user and customer it belongs to: its own user_id, else the user its
-- anonymous_id logged in as (before or after this event). Events on a device that never logged
-- in stay anonymous (customer_key null).
-- Incremental by business date: a run rebuilds the dates staging rebuilt, and the dates of events
-- whose attribution changed (a device logged in for the first time, a user joined a customer by
-- phone), found by comparing the stored attribution with the current one.
{#- staging's events are named directly where they are read, never through a CTE: DuckDB
    materializes a CTE read more than once (all events, on an incremental run). -#}
{%- set events = ref('stg_tracking__events') %}
with

stitched as (

    select * from {{ ref('int_anonymous_ids_stitched') }}

),

users as (

    select * from {{ ref('int_users_unified') }}

),

{% if is_incremental() %}

affected_dates as (

    select distinct event_date
    from {{ events }}
    where built_at > {{ ew_last_built_at() }}

    union

    select distinct previous.event_date
    from {{ this }} as previous
    left join stitched
        on previous.anonymous_id = stitched.anonymous_id
    left join users
        on coalesce(previous.user_id, stitched.user_id) = users.user_id
    where previous.resolved_user_id is distinct from coalesce(previous.user_id, stitched.user_id)
        or previous.customer_key is distinct from coalesce(users.customer_key, previous.user_id, stitched.user_id)

),

in_scope as (

    select * from {{ events }}
    where event_date in (select event_date from affected_dates)

),

{% else %}

in_scope as (

    select * from {{ events }}

),

{% endif %}

attributed as (

    select
        in_scope.event_id,
        in_scope.event_name,
        in_scope.event_at,
        in_scope.event_date,
        in_scope.session_id,
        in_scope.platform,
        in_scope.anonymous_id,
        in_scope.user_id,
        coalesce(in_scope.user_id, stitched.user_id) as resolved_user_id,
        coalesce(users.customer_key, in_scope.user_id, stitched.user_id) as customer_key,
        in_scope.user_id is null and stitched.user_id is not null as is_stitched,
        in_scope.sku_id,
        in_scope.order_id,
        in_scope.page,
        in_scope.campaign_id,
        {{ ew_built_at() }} as built_at
    from in_scope
    left join stitched
        on in_scope.anonymous_id = stitched.anonymous_id
    left join users
        on coalesce(in_scope.user_id, stitched.user_id) = users.user_id

)

select * from attributed
