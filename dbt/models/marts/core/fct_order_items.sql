-- One row per order line, with the product's category and cost, on unified customers.
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

final as (

    select
        items.order_id,
        items.line_no,
        orders.customer_key,
        orders.order_date,
        orders.channel,
        orders.is_valid,
        items.sku_id,
        products.category_l1,
        products.category_l2,
        items.quantity,
        items.unit_price,
        items.gross_amount,
        items.discount_amount,
        cast(items.gross_amount - items.discount_amount as decimal(18, 2)) as net_line_amount,
        cast(cast(items.quantity as double) * cast(products.cost_price as double) as decimal(18, 2))
            as cost_amount
    from items
    inner join orders
        on items.order_id = orders.order_id
    left join products
        on items.sku_id = products.sku_id

)

select * from final
