-- Return cycle (退货周期): days from return request to completion, per request date and category.
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
        returns.requested_date,
        coalesce(products.category_l1, orders.main_category_l1, 'unknown') as category_l1,
        returns.return_status,
        case
            when returns.return_status = 'completed' and returns.completed_at is not null
                then
                    cast({{ dbt.datediff('returns.requested_at', 'returns.completed_at', 'second') }} as double)
                    / 86400.0
        end as cycle_days
    from returns
    left join products
        on returns.sku_id = products.sku_id
    left join orders
        on returns.order_id = orders.order_id

),

final as (

    select
        requested_date,
        category_l1,
        cast(count(*) as integer) as returns_requested,
        cast(count(cycle_days) as integer) as returns_completed,
        cast(sum(case when return_status = 'rejected' then 1 else 0 end) as integer) as returns_rejected,
        sum(cycle_days) as cycle_days_sum,
        avg(cycle_days) as avg_cycle_days,
        max(cycle_days) as max_cycle_days
    from categorized
    group by requested_date, category_l1

)

select * from final
