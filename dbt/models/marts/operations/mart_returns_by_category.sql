-- Order return rate by category (品类退货率): of the mature delivered orders (delivered at least
-- var ops_return_window_days before the data end date) whose main item (line 1) is in the category,
-- the share with a return request. One row per category and an 'all' row.
with

orders as (

    select * from {{ ref('int_orders_fulfilled') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

mature as (

    select
        coalesce(orders.main_category_l1, 'unknown') as category_l1,
        orders.has_return
    from orders
    cross join data_end
    where
        orders.delivered_date is not null
        and cast({{ dbt.dateadd('day', var('ops_return_window_days'), 'orders.delivered_date') }} as date)
            <= data_end.data_end_date

),

by_category as (

    select
        category_l1,
        count(*) as delivered_orders,
        sum(case when has_return then 1 else 0 end) as returned_orders
    from mature
    group by category_l1

    union all

    select
        'all' as category_l1,
        count(*) as delivered_orders,
        sum(case when has_return then 1 else 0 end) as returned_orders
    from mature

),

final as (

    select
        by_category.category_l1,
        cast(by_category.delivered_orders as integer) as delivered_orders,
        cast(coalesce(by_category.returned_orders, 0) as integer) as returned_orders,
        {{ safe_share('by_category.returned_orders', 'by_category.delivered_orders') }} as return_rate,
        cast({{ dbt.dateadd('day', -var('ops_return_window_days'), 'data_end.data_end_date') }} as date)
            as delivered_until_date,
        data_end.data_end_date
    from by_category
    cross join data_end

)

select * from final
