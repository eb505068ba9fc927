{{ config(meta={'dagster': {'ref': {'name': 'dim_customers'}}}) }}

-- Integrity: dim_customers against staging, recomputed from the customer definition in docs/metrics.md.
-- A customer is a person: the users sharing a phone_hash, or a user without one; the user_id of an order
-- with no users row is a customer of its own. Every staged user belongs to exactly one customer, the
-- buyers are the persons with a valid order (paid, not cancelled), and the customers' net revenue is
-- the valid orders' pay_amount minus their completed returns. One row per measure that differs.
with

staged_users as (

    select * from {{ ref('stg_crm__users') }}

),

staged_orders as (

    select * from {{ ref('stg_oms__orders') }}

),

staged_returns as (

    select * from {{ ref('stg_oms__returns') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

user_persons as (

    select
        user_id,
        coalesce(phone_hash, concat('user:', user_id)) as person
    from staged_users

),

order_persons as (

    select
        staged_orders.order_id,
        staged_orders.pay_amount,
        staged_orders.paid_at is not null and staged_orders.order_status <> 'cancelled' as is_valid,
        coalesce(user_persons.person, concat('order:', staged_orders.user_id)) as person
    from staged_orders
    left join user_persons
        on staged_orders.user_id = user_persons.user_id

),

persons as (

    select person from user_persons
    union
    select person from order_persons

),

valid_refunds as (

    select coalesce(sum(staged_returns.return_amount), 0) as refund_amount
    from staged_returns
    inner join order_persons
        on staged_returns.order_id = order_persons.order_id
    where staged_returns.return_status = 'completed' and order_persons.is_valid

),

person_totals as (

    select count(*) as n_customers
    from persons

),

user_totals as (

    select count(*) as n_users
    from staged_users

),

buyer_totals as (

    select
        count(distinct person) as n_buyers,
        coalesce(sum(pay_amount), 0) as valid_pay_amount
    from order_persons
    where is_valid

),

staged_totals as (

    select
        person_totals.n_customers,
        user_totals.n_users,
        buyer_totals.n_buyers,
        buyer_totals.valid_pay_amount - valid_refunds.refund_amount as net_revenue
    from person_totals
    cross join user_totals
    cross join buyer_totals
    cross join valid_refunds

),

mart_totals as (

    select
        count(*) as n_customers,
        count(distinct customer_key) as n_customer_keys,
        coalesce(sum(n_users), 0) as n_users,
        coalesce(sum(case when first_purchase_date is not null then 1 else 0 end), 0) as n_buyers,
        coalesce(sum(net_revenue), 0) as net_revenue
    from customers

),

compared as (

    select
        'customers' as measure,
        cast(staged_totals.n_customers as double) as staged_value,
        cast(mart_totals.n_customers as double) as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'distinct customer keys' as measure,
        cast(staged_totals.n_customers as double) as staged_value,
        cast(mart_totals.n_customer_keys as double) as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'users unified' as measure,
        cast(staged_totals.n_users as double) as staged_value,
        cast(mart_totals.n_users as double) as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'buyers' as measure,
        cast(staged_totals.n_buyers as double) as staged_value,
        cast(mart_totals.n_buyers as double) as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'net_revenue' as measure,
        cast(staged_totals.net_revenue as double) as staged_value,
        cast(mart_totals.net_revenue as double) as mart_value
    from staged_totals
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
