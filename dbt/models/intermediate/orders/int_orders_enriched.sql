-- A table, not a view: fct_orders and two data tests read it, and as a view each recomputed it.
{{ config(materialized='table') }}

-- Orders (newest status) with their customer, completed refunds, cost of goods and validity.
with

orders as (

    select * from {{ ref('stg_oms__orders') }}

),

users as (

    select * from {{ ref('int_users_unified') }}

),

returns as (

    select * from {{ ref('stg_oms__returns') }}

),

items as (

    select * from {{ ref('stg_oms__order_items') }}

),

products as (

    select * from {{ ref('stg_oms__products') }}

),

refunds as (

    select
        order_id,
        sum(return_amount) as refund_amount
    from returns
    where return_status = 'completed'
    group by order_id

),

costs as (

    select
        items.order_id,
        sum(cast(items.quantity as double) * cast(products.cost_price as double)) as cogs_amount
    from items
    left join products
        on items.sku_id = products.sku_id
    group by items.order_id

),

enriched as (

    select
        orders.order_id,
        coalesce(users.customer_key, orders.user_id) as customer_key,
        orders.user_id,
        orders.channel,
        orders.order_status,
        orders.ordered_at,
        orders.order_date,
        orders.paid_at,
        orders.paid_date,
        orders.paid_at is not null and orders.order_status <> 'cancelled' as is_valid,
        orders.items_amount,
        orders.discount_amount,
        orders.shipping_fee_amount,
        orders.pay_amount,
        cast(coalesce(refunds.refund_amount, 0) as decimal(18, 2)) as refund_amount,
        coalesce(costs.cogs_amount, 0) as cogs_amount,
        orders.coupon_id,
        orders.campaign_id,
        orders.province,
        orders.city
    from orders
    left join users
        on orders.user_id = users.user_id
    left join refunds
        on orders.order_id = refunds.order_id
    left join costs
        on orders.order_id = costs.order_id

)

select * from enriched
