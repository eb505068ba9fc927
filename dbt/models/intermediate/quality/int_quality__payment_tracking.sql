-- A table, not a view: mart_data_quality, mart_kpi_targets, its five data tests and the tracking
-- coverage suite read it, and as a view each of them recomputed it from the order and event tables
-- (3.5 s apiece in the L refresh of 12-07).
{{ config(materialized='table') }}

-- One row per paid order from our own front-ends (var tracked_channels: the only channels the
-- tracking SDK runs in; marketplace and offline orders can never have an event), on its current
-- (newest-status) row, with the earliest payment_success event that carries its order_id: whether
-- tracking saw the payment, and how many minutes after paid_at, with the lag's p50 and p95 over all
-- of them on every row. The tracking-coverage suite validates these rows whole; mart_kpi_targets
-- and mart_data_quality aggregate them by paid date.
with

orders as (

    select * from {{ ref('stg_oms__orders') }}

),

events as (

    select * from {{ ref('stg_tracking__events') }}

),

paid_tracked_orders as (

    select
        order_id,
        channel,
        paid_at,
        paid_date
    from orders
    where
        paid_at is not null
        and channel in (
            {%- for channel in var('tracked_channels') %}
            '{{ channel }}'{{ ',' if not loop.last }}
            {%- endfor %}
        )

),

first_payment_events as (

    select
        order_id,
        min(event_at) as payment_event_at
    from events
    where
        event_name = 'payment_success'
        and order_id is not null
    group by order_id

),

matched as (

    select
        paid_tracked_orders.order_id,
        paid_tracked_orders.channel,
        paid_tracked_orders.paid_at,
        paid_tracked_orders.paid_date,
        first_payment_events.payment_event_at,
        case when first_payment_events.order_id is null then 0 else 1 end as has_payment_event,
        {{ dbt.datediff('paid_tracked_orders.paid_at', 'first_payment_events.payment_event_at', 'millisecond') }}
        / 60000.0 as payment_event_lag_min
    from paid_tracked_orders
    left join first_payment_events
        on paid_tracked_orders.order_id = first_payment_events.order_id

),

lag_quantiles_added as (

    select
        matched.*,
        {{ percentile_cont('payment_event_lag_min', 0.5) }} over () as lag_p50_min,
        {{ percentile_cont('payment_event_lag_min', 0.95) }} over () as lag_p95_min
    from matched

)

select * from lag_quantiles_added
