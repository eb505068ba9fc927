-- Sell-through (动销率) per calendar month and category (and 'all'): active SKUs with a sale in the
-- month / active SKUs. Months cut by the start or end of the data are flagged incomplete.
with

products as (

    select * from {{ ref('dim_products') }}

),

items as (

    select * from {{ ref('fct_order_items') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

months as (

    select distinct
        {{ period_start('month', 'items.order_date') }} as month_start
    from items
    cross join data_end
    where items.order_date <= data_end.data_end_date

),

active_skus as (

    select
        months.month_start,
        {{ period_end('month', 'months.month_start') }} as month_end,
        products.sku_id,
        products.category_l1
    from months
    cross join products
    where
        (
            products.launched_at is null
            or {{ to_business_date('products.launched_at') }} <= {{ period_end('month', 'months.month_start') }}
        )
        and (
            products.delisted_at is null
            or {{ to_business_date('products.delisted_at') }} >= months.month_start
        )

),

monthly_sales as (

    select
        {{ period_start('month', 'items.order_date') }} as month_start,
        items.sku_id,
        sum(items.quantity) as units_sold
    from items
    cross join data_end
    where items.is_valid and items.order_date <= data_end.data_end_date
    group by {{ period_start('month', 'items.order_date') }}, items.sku_id

),

sku_months as (

    select
        active_skus.month_start,
        active_skus.month_end,
        active_skus.sku_id,
        active_skus.category_l1,
        coalesce(monthly_sales.units_sold, 0) as units_sold
    from active_skus
    left join monthly_sales
        on active_skus.month_start = monthly_sales.month_start
        and active_skus.sku_id = monthly_sales.sku_id

),

by_category as (

    select
        month_start,
        month_end,
        category_l1,
        count(*) as active_skus,
        sum(case when units_sold > 0 then 1 else 0 end) as skus_with_sales,
        sum(units_sold) as units_sold
    from sku_months
    group by month_start, month_end, category_l1

    union all

    select
        month_start,
        month_end,
        'all' as category_l1,
        count(*) as active_skus,
        sum(case when units_sold > 0 then 1 else 0 end) as skus_with_sales,
        sum(units_sold) as units_sold
    from sku_months
    group by month_start, month_end

),

final as (

    select
        by_category.month_start,
        by_category.category_l1,
        by_category.month_end,
        cast(by_category.active_skus as integer) as active_skus,
        cast(by_category.skus_with_sales as integer) as skus_with_sales,
        {{ safe_share('by_category.skus_with_sales', 'by_category.active_skus') }} as sell_through_rate,
        cast(by_category.units_sold as bigint) as units_sold,
        by_category.month_start >= data_end.data_start_date
            and by_category.month_end <= data_end.data_end_date as is_complete,
        data_end.data_end_date
    from by_category
    cross join data_end

)

select * from final
