-- One row per order line, with the product's category and cost, on unified customers, and its product
-- net revenue (商品净收入): what the customer paid for the line after the line's and its share of the
-- order-level discounts (coupons), minus its share of completed returns, shipping left out. Every other
-- revenue figure is net of discounts and completed returns (fct_orders.net_revenue); product rankings
-- (ABC, daily top 10) are the same money per SKU.
with

items as (

    select * from {{ ref('stg_oms__order_items') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

products as (

    select * from {{ ref('stg_oms__products') }}

),

returns as (

    select * from {{ ref('stg_oms__returns') }}

),

lines_totalled as (

    select
        items.*,
        items.gross_amount - items.discount_amount as line_amount,
        sum(items.gross_amount - items.discount_amount) over (partition by items.order_id) as order_lines_amount,
        sum(items.discount_amount) over (partition by items.order_id) as order_line_discounts,
        sum(items.gross_amount - items.discount_amount) over (
            partition by items.order_id, items.sku_id
        ) as sku_lines_amount
    from items

),

sku_refunds as (

    -- a return naming a SKU refunds that SKU's lines of the order
    select
        order_id,
        sku_id,
        sum(return_amount) as refund_amount
    from returns
    where return_status = 'completed' and sku_id is not null
    group by order_id, sku_id

),

order_refunds as (

    -- a return without a SKU refunds the whole order: each line loses the refunded share of what was paid
    select
        order_id,
        sum(return_amount) as refund_amount
    from returns
    where return_status = 'completed' and sku_id is null
    group by order_id

),

allocated as (

    select
        lines_totalled.*,
        orders.customer_key,
        orders.order_date,
        orders.channel,
        orders.is_valid,
        -- the order's discount beyond its lines' own (coupons, full-reduction), by the line's share
        coalesce(
            cast(orders.discount_amount - lines_totalled.order_line_discounts as double)
            * cast(lines_totalled.line_amount as double)
            / nullif(cast(lines_totalled.order_lines_amount as double), 0),
            0
        ) as order_discount_allocated,
        coalesce(
            cast(sku_refunds.refund_amount as double) * cast(lines_totalled.line_amount as double)
            / nullif(cast(lines_totalled.sku_lines_amount as double), 0),
            0
        ) as sku_refund_allocated,
        coalesce(
            cast(order_refunds.refund_amount as double) / nullif(cast(orders.pay_amount as double), 0),
            0
        ) as order_refund_share
    from lines_totalled
    inner join orders
        on lines_totalled.order_id = orders.order_id
    left join sku_refunds
        on lines_totalled.order_id = sku_refunds.order_id
        and lines_totalled.sku_id = sku_refunds.sku_id
    left join order_refunds
        on lines_totalled.order_id = order_refunds.order_id

),

final as (

    select
        allocated.order_id,
        allocated.line_no,
        allocated.customer_key,
        allocated.order_date,
        allocated.channel,
        allocated.is_valid,
        allocated.sku_id,
        products.category_l1,
        products.category_l2,
        allocated.quantity,
        allocated.unit_price,
        allocated.gross_amount,
        allocated.discount_amount,
        cast(allocated.line_amount as decimal(18, 2)) as net_line_amount,
        cast(cast(allocated.quantity as double) * cast(products.cost_price as double) as decimal(18, 2))
            as cost_amount,
        allocated.order_discount_allocated,
        allocated.sku_refund_allocated
            + (cast(allocated.line_amount as double) - allocated.order_discount_allocated)
            * allocated.order_refund_share as refund_allocated,
        case
            when allocated.is_valid
                then cast(allocated.line_amount as double) - allocated.order_discount_allocated
                    - allocated.sku_refund_allocated
                    - (cast(allocated.line_amount as double) - allocated.order_discount_allocated)
                    * allocated.order_refund_share
            else 0
        end as net_revenue
    from allocated
    left join products
        on allocated.sku_id = products.sku_id

)

select * from final
