-- ABC class (ABC分类) of every SKU by its share of line revenue over the trailing
-- var ops_abc_window_days days up to the data end date: A = the SKUs making up the first 80%, B the
-- next 15%, C the rest and every SKU without revenue.
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

window_bounds as (

    select
        cast({{ dbt.dateadd('day', 1 - var('ops_abc_window_days'), 'data_end_date') }} as date) as window_start_date,
        data_end_date
    from data_end

),

window_sales as (

    select
        items.sku_id,
        sum(items.net_revenue) as revenue_amount,
        sum(items.quantity) as units_sold
    from items
    cross join window_bounds
    where
        items.is_valid
        and items.order_date between window_bounds.window_start_date and window_bounds.data_end_date
    group by items.sku_id

),

skus_ranked as (

    select
        products.sku_id,
        products.product_name,
        products.category_l1,
        coalesce(window_sales.revenue_amount, 0) as revenue_amount,
        coalesce(window_sales.units_sold, 0) as units_sold,
        row_number() over (
            order by coalesce(window_sales.revenue_amount, 0) desc, products.sku_id
        ) as revenue_rank,
        window_bounds.window_start_date,
        window_bounds.data_end_date
    from products
    cross join window_bounds
    left join window_sales
        on products.sku_id = window_sales.sku_id
    where
        products.launched_at is null
        or {{ to_business_date('products.launched_at') }} <= window_bounds.data_end_date

),

shares_cumulated as (

    select
        *,
        sum(revenue_amount) over (
            order by revenue_rank rows between unbounded preceding and current row
        ) as cumulative_revenue,
        sum(revenue_amount) over () as total_revenue
    from skus_ranked

),

final as (

    select
        sku_id,
        product_name,
        category_l1,
        cast(revenue_amount as decimal(18, 2)) as revenue_amount,
        cast(units_sold as bigint) as units_sold,
        cast(revenue_rank as integer) as revenue_rank,
        {{ safe_share('revenue_amount', 'total_revenue') }} as revenue_share,
        {{ safe_share('cumulative_revenue', 'total_revenue') }} as cumulative_share,
        case
            when revenue_amount <= 0 then 'C'
            when {{ safe_share('cumulative_revenue - revenue_amount', 'total_revenue') }}
                < {{ var('ops_abc_a_share') }} then 'A'
            when {{ safe_share('cumulative_revenue - revenue_amount', 'total_revenue') }}
                < {{ var('ops_abc_b_share') }} then 'B'
            else 'C'
        end as abc_class,
        window_start_date,
        data_end_date
    from shares_cumulated

)

select * from final
