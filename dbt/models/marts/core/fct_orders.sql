-- One row per order (newest status) on unified customers, with net revenue and the customer's
-- purchase-day sequence: the spine of every repurchase, LTV and cohort metric.
with

orders as (

    select * from {{ ref('int_orders_enriched') }}

),

purchase_days as (

    select
        customer_key,
        order_date,
        dense_rank() over (partition by customer_key order by order_date) as purchase_day_seq
    from (
        select distinct
            customer_key,
            order_date
        from orders
        where is_valid
    ) as valid_days

),

valid_order_seq as (

    select
        order_id,
        row_number() over (
            partition by customer_key order by ordered_at, order_id
        ) as valid_order_seq
    from orders
    where is_valid

),

final as (

    select
        orders.order_id,
        orders.customer_key,
        orders.user_id,
        orders.ordered_at as order_at,
        orders.order_date,
        orders.paid_at,
        orders.channel,
        orders.order_status,
        orders.is_valid,
        orders.items_amount,
        orders.discount_amount,
        orders.shipping_fee_amount,
        orders.pay_amount,
        orders.refund_amount,
        cast(
            case when orders.is_valid then orders.pay_amount - orders.refund_amount else 0 end
            as decimal(18, 2)
        ) as net_revenue,
        -- cost of goods, reduced in proportion to what was refunded
        cast(
            case
                when orders.is_valid
                    then orders.cogs_amount * (
                        1 - coalesce(
                            cast(orders.refund_amount as double) / nullif(cast(orders.pay_amount as double), 0),
                            0
                        )
                    )
                else 0
            end
            as decimal(18, 2)
        ) as net_cogs_amount,
        purchase_days.purchase_day_seq,
        valid_order_seq.valid_order_seq,
        coalesce(valid_order_seq.valid_order_seq = 1, false) as is_first_purchase,
        orders.coupon_id,
        orders.campaign_id,
        orders.province,
        orders.city
    from orders
    left join purchase_days
        on orders.customer_key = purchase_days.customer_key
        and orders.order_date = purchase_days.order_date
        and orders.is_valid
    left join valid_order_seq
        on orders.order_id = valid_order_seq.order_id

)

select * from final
