-- Return reasons (退货原因) per category: a return takes its SKU's category, a whole-order return
-- (no sku_id) the category of the order's main item.
with

returns as (

    select * from {{ ref('stg_oms__returns') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

orders as (

    select * from {{ ref('int_orders_fulfilled') }}

),

categorized as (

    select
        returns.return_id,
        coalesce(products.category_l1, orders.main_category_l1, 'unknown') as category_l1,
        coalesce(returns.return_reason, 'unknown') as return_reason,
        returns.return_status,
        returns.return_amount
    from returns
    left join products
        on returns.sku_id = products.sku_id
    left join orders
        on returns.order_id = orders.order_id

),

by_reason as (

    select
        category_l1,
        return_reason,
        count(*) as returns,
        sum(case when return_status = 'completed' then 1 else 0 end) as completed_returns,
        sum(case when return_status = 'completed' then return_amount else 0 end) as refund_amount
    from categorized
    group by category_l1, return_reason

),

final as (

    select
        category_l1,
        return_reason,
        cast(returns as integer) as returns,
        {{ safe_share('returns', 'sum(returns) over (partition by category_l1)') }} as share_of_category_returns,
        cast(completed_returns as integer) as completed_returns,
        cast(refund_amount as decimal(18, 2)) as refund_amount
    from by_reason

)

select * from final
