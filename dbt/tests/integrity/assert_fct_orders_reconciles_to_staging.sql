{{ config(meta={'dagster': {'ref': {'name': 'fct_orders'}}}) }}

-- Integrity: fct_orders against staging, recomputed from the definitions in docs/metrics.md. Every staged
-- order is one row (newest status); valid = paid and not cancelled; net revenue = pay_amount of valid
-- orders minus their completed returns. Excluded by definition: returns of orders the order system never
-- sent (they refund nothing here) and the returns of invalid orders. One row per measure that differs.
with

staged_orders as (

    select * from {{ ref('stg_oms__orders') }}

),

staged_returns as (

    select * from {{ ref('stg_oms__returns') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

staged_valid_orders as (

    select
        order_id,
        pay_amount
    from staged_orders
    where paid_at is not null and order_status <> 'cancelled'

),

staged_refunds as (

    select coalesce(sum(staged_returns.return_amount), 0) as refund_amount
    from staged_returns
    inner join staged_valid_orders
        on staged_returns.order_id = staged_valid_orders.order_id
    where staged_returns.return_status = 'completed'

),

staged_totals as (

    select
        count(*) as n_orders,
        count(distinct order_id) as n_order_ids,
        coalesce(sum(pay_amount), 0) as pay_amount,
        (select count(*) from staged_valid_orders) as n_valid_orders,
        (select coalesce(sum(pay_amount), 0) from staged_valid_orders) as valid_pay_amount
    from staged_orders

),

mart_totals as (

    select
        count(*) as n_orders,
        count(distinct order_id) as n_order_ids,
        coalesce(sum(pay_amount), 0) as pay_amount,
        coalesce(sum(case when is_valid then 1 else 0 end), 0) as n_valid_orders,
        coalesce(sum(net_revenue), 0) as net_revenue
    from orders

),

compared as (

    select
        'orders' as measure,
        cast(staged_totals.n_orders as double) as staged_value,
        cast(mart_totals.n_orders as double) as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'distinct order ids' as measure,
        cast(staged_totals.n_order_ids as double) as staged_value,
        cast(mart_totals.n_order_ids as double) as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'valid orders' as measure,
        cast(staged_totals.n_valid_orders as double) as staged_value,
        cast(mart_totals.n_valid_orders as double) as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'pay_amount' as measure,
        cast(staged_totals.pay_amount as double) as staged_value,
        cast(mart_totals.pay_amount as double) as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'net_revenue' as measure,
        cast(staged_totals.valid_pay_amount - staged_refunds.refund_amount as double) as staged_value,
        cast(mart_totals.net_revenue as double) as mart_value
    from staged_totals
    cross join staged_refunds
    cross join mart_totals

),

mismatched as (

    select
        measure,
        staged_value,
        mart_value
    from compared
    -- amounts are exact decimals on both sides; the tolerance only absorbs the cast to double
    where abs(staged_value - mart_value) > 0.001

)

select * from mismatched
