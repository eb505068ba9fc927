{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='session_date',
        partition_by=ew_partition_by('session_date'),
        on_schema_change='fail'
    )
}}

-- One row per session with the time it reached each funnel step. A step counts only at or after the
-- time the previous step was reached: step 1 at the session's earliest product_view, each later step
-- at its earliest event with event_at >= the previous step's time. So an add_to_cart logged before
-- the first product_view does not reach step 2 unless another add_to_cart follows. Anonymous events
-- before login are part of their session like any other.
-- Payment success (step 5) is the payment_success event, or, for a session logged in as the buyer, the
-- order system's word: the order its payment_submit carried was paid. Tracking loses a few percent of
-- payment_success events; counting them as drop-off would overstate the payment step's loss, so those
-- sessions reach step 5 with is_payment_untracked, and the loss is reported apart.
-- Incremental by session_date like fct_sessions (macros/incremental.sql), plus the dates of sessions
-- whose submitted order the order system has since seen paid (or no longer paid).
-- The events are read twice below: a full build names the table itself, not a CTE, which DuckDB
-- would materialize whole (every event); an incremental run reads its small batch CTE.
{%- set events = 'batch_events' if is_incremental() else ref('int_events_attributed') %}
with

orders as (

    select * from {{ ref('int_orders_enriched') }}

),

{% if is_incremental() %}

{% set payment_changed_dates %}
    select distinct previous.session_date
    from {{ this }} as previous
    left join orders
        on previous.submitted_order_id = orders.order_id
    where previous.submitted_order_id is not null
        and previous.order_paid_at is distinct from orders.paid_at
{% endset %}

{{ ew_session_batch_ctes(ref('int_events_attributed'), payment_changed_dates) }}

{% endif %}

sessions as (

    select
        session_id,
        {{ to_business_date('min(event_at)') }} as session_date
    from {{ events }}
    group by session_id

),

funnel_events as (

    select
        session_id,
        event_name,
        event_at,
        order_id,
        customer_key
    from {{ events }}
    where event_name in ('product_view', 'add_to_cart', 'checkout_start', 'payment_submit', 'payment_success')

),

product_viewed as (

    select
        session_id,
        min(event_at) as product_view_at
    from funnel_events
    where event_name = 'product_view'
    group by session_id

),

added_to_cart as (

    select
        product_viewed.session_id,
        min(funnel_events.event_at) as add_to_cart_at
    from product_viewed
    inner join funnel_events
        on product_viewed.session_id = funnel_events.session_id
        and funnel_events.event_name = 'add_to_cart'
        and funnel_events.event_at >= product_viewed.product_view_at
    group by product_viewed.session_id

),

checkout_started as (

    select
        added_to_cart.session_id,
        min(funnel_events.event_at) as checkout_start_at
    from added_to_cart
    inner join funnel_events
        on added_to_cart.session_id = funnel_events.session_id
        and funnel_events.event_name = 'checkout_start'
        and funnel_events.event_at >= added_to_cart.add_to_cart_at
    group by added_to_cart.session_id

),

payment_submitted as (

    select
        checkout_started.session_id,
        min(funnel_events.event_at) as payment_submit_at
    from checkout_started
    inner join funnel_events
        on checkout_started.session_id = funnel_events.session_id
        and funnel_events.event_name = 'payment_submit'
        and funnel_events.event_at >= checkout_started.checkout_start_at
    group by checkout_started.session_id

),

payment_tracked as (

    select
        payment_submitted.session_id,
        min(funnel_events.event_at) as payment_event_at
    from payment_submitted
    inner join funnel_events
        on payment_submitted.session_id = funnel_events.session_id
        and funnel_events.event_name = 'payment_success'
        and funnel_events.event_at >= payment_submitted.payment_submit_at
    group by payment_submitted.session_id

),

submitted_orders as (

    -- the order of the session's first payment_submit (at step 4) that carries one, and who submitted it
    select
        session_id,
        order_id,
        customer_key
    from (
        select
            payment_submitted.session_id,
            funnel_events.order_id,
            funnel_events.customer_key,
            row_number() over (
                partition by payment_submitted.session_id
                order by funnel_events.event_at, funnel_events.order_id
            ) as submit_seq
        from payment_submitted
        inner join funnel_events
            on payment_submitted.session_id = funnel_events.session_id
            and funnel_events.event_name = 'payment_submit'
            and funnel_events.event_at >= payment_submitted.payment_submit_at
            and funnel_events.order_id is not null
    ) as submits
    where submit_seq = 1

),

payment_confirmed as (

    -- paid in the order system, for a session logged in as the order's customer
    select
        submitted_orders.session_id,
        submitted_orders.order_id as submitted_order_id,
        case when orders.customer_key = submitted_orders.customer_key then orders.paid_at end as order_paid_at
    from submitted_orders
    left join orders
        on submitted_orders.order_id = orders.order_id

),

payment_succeeded as (

    select
        payment_submitted.session_id,
        payment_tracked.payment_event_at,
        payment_confirmed.submitted_order_id,
        payment_confirmed.order_paid_at,
        coalesce(payment_tracked.payment_event_at, payment_confirmed.order_paid_at) as payment_success_at
    from payment_submitted
    left join payment_tracked
        on payment_submitted.session_id = payment_tracked.session_id
    left join payment_confirmed
        on payment_submitted.session_id = payment_confirmed.session_id

),

final as (

    select
        sessions.session_id,
        sessions.session_date,
        product_viewed.product_view_at,
        added_to_cart.add_to_cart_at,
        checkout_started.checkout_start_at,
        payment_submitted.payment_submit_at,
        payment_succeeded.payment_success_at,
        payment_succeeded.payment_event_at,
        payment_succeeded.submitted_order_id,
        payment_succeeded.order_paid_at,
        coalesce(
            payment_succeeded.payment_success_at is not null and payment_succeeded.payment_event_at is null,
            false
        ) as is_payment_untracked,
        case
            when payment_succeeded.payment_success_at is not null then 5
            when payment_submitted.payment_submit_at is not null then 4
            when checkout_started.checkout_start_at is not null then 3
            when added_to_cart.add_to_cart_at is not null then 2
            when product_viewed.product_view_at is not null then 1
            else 0
        end as steps_reached,
        {{ ew_built_at() }} as built_at
    from sessions
    left join product_viewed
        on sessions.session_id = product_viewed.session_id
    left join added_to_cart
        on sessions.session_id = added_to_cart.session_id
    left join checkout_started
        on sessions.session_id = checkout_started.session_id
    left join payment_submitted
        on sessions.session_id = payment_submitted.session_id
    left join payment_succeeded
        on sessions.session_id = payment_succeeded.session_id

)

select * from final
{% if is_incremental() %}
where session_date in (select session_date from affected_dates)
{% endif %}
