{{ config(severity='warn') }}

-- Contract rule across order amounts: pay = items - discount + shipping fee, to the fen.
-- A warning, not an error: a mismatch is a finding for the order system's owners, not a reason to stop the build.
with

orders as (

    select * from {{ ref('stg_oms__orders') }}

),

mismatched as (

    select
        order_id,
        items_amount,
        discount_amount,
        shipping_fee_amount,
        pay_amount,
        pay_amount - (items_amount - discount_amount + shipping_fee_amount) as difference_amount
    from orders
    where abs(pay_amount - (items_amount - discount_amount + shipping_fee_amount)) > 0.01

)

select * from mismatched
