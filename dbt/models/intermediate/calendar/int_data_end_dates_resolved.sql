-- A table, not a view: 38 models read it, and as a view each paid for its scans of staging's orders,
-- events and users (2.6-3.0 s a read on preset L's 88M events and 5.6M orders, 11-15 s inside a full build).
{{ config(materialized='table') }}

-- One row: the data end date every mart, and the predicted-LTV asset, is measured against (docs/metrics.md
-- "data end date"). It is the latest business date with an order or a tracking event, unless var
-- as_of_date pins it (a rerun as of a past date); data after it is left out. The latest of the two, not
-- the earliest: a shop may sell on a day nobody opens the app, or the reverse, and a source that falls
-- behind shows as its lag (mart_source_lag) instead of holding every mart back. A shop with neither yet
-- (its customer list loaded before its first order) ends on its latest registration, so every mart
-- builds, empty, instead of the run failing on a missing date.
{%- set as_of_date = var('as_of_date', none) %}
{%- if as_of_date is not none and not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of_date | string) %}
    {{ exceptions.raise_compiler_error("var as_of_date must be a date YYYY-MM-DD, got '" ~ as_of_date ~ "'") }}
{%- endif %}

with

orders as (

    select * from {{ ref('stg_oms__orders') }}

),

events as (

    select * from {{ ref('stg_tracking__events') }}

),

users as (

    select * from {{ ref('stg_crm__users') }}

),

registration_bounds as (

    select
        min(registration_date) as min_registration_date,
        max(registration_date) as max_registration_date
    from users

),

order_bounds as (

    select
        min(order_date) as min_order_date,
        max(order_date) as max_order_date
    from orders

),

event_bounds as (

    select
        min(event_date) as min_event_date,
        max(event_date) as max_event_date
    from events

),

history_bounds as (

    select
        order_bounds.min_order_date,
        order_bounds.max_order_date,
        event_bounds.min_event_date,
        event_bounds.max_event_date,
        -- null-safe least/greatest: a shop without tracking (or without orders yet) has one history
        case
            when order_bounds.min_order_date is null and event_bounds.min_event_date is null
                then registration_bounds.min_registration_date
            when event_bounds.min_event_date is null then order_bounds.min_order_date
            when order_bounds.min_order_date is null then event_bounds.min_event_date
            when order_bounds.min_order_date <= event_bounds.min_event_date then order_bounds.min_order_date
            else event_bounds.min_event_date
        end as data_start_date,
        case
            when order_bounds.max_order_date is null and event_bounds.max_event_date is null
                then registration_bounds.max_registration_date
            when event_bounds.max_event_date is null then order_bounds.max_order_date
            when order_bounds.max_order_date is null then event_bounds.max_event_date
            when order_bounds.max_order_date >= event_bounds.max_event_date then order_bounds.max_order_date
            else event_bounds.max_event_date
        end as latest_data_date
    from order_bounds
    cross join event_bounds
    cross join registration_bounds

),

final as (

    select
        {%- if as_of_date is not none %}
        cast('{{ as_of_date }}' as date) as data_end_date,
        {%- else %}
        latest_data_date as data_end_date,
        {%- endif %}
        data_start_date,
        latest_data_date,
        min_order_date,
        max_order_date,
        min_event_date,
        max_event_date,
        {{ 'true' if as_of_date is not none else 'false' }} as is_as_of_override
    from history_bounds

)

select * from final
