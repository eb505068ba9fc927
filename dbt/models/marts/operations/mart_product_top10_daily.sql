-- Daily top SKUs (每日Top10) by line revenue and by units, var ops_top_n per day and metric.
with

items as (

    select * from {{ ref('fct_order_items') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

daily_sales as (

    select
        order_date,
        sku_id,
        sum(net_revenue) as revenue_amount,
        sum(quantity) as units_sold
    from items
    where is_valid
    group by order_date, sku_id

),

ranked as (

    select
        order_date,
        'revenue' as ranking_metric,
        row_number() over (partition by order_date order by revenue_amount desc nulls last, sku_id) as rank_no,
        sku_id,
        revenue_amount,
        units_sold
    from daily_sales

    union all

    select
        order_date,
        'units' as ranking_metric,
        row_number() over (partition by order_date order by units_sold desc nulls last, sku_id) as rank_no,
        sku_id,
        revenue_amount,
        units_sold
    from daily_sales

),

final as (

    select
        ranked.order_date,
        ranked.ranking_metric,
        cast(ranked.rank_no as integer) as rank_no,
        ranked.sku_id,
        products.product_name,
        products.category_l1,
        cast(ranked.revenue_amount as decimal(18, 2)) as revenue_amount,
        cast(ranked.units_sold as bigint) as units_sold
    from ranked
    left join products
        on ranked.sku_id = products.sku_id
    where ranked.rank_no <= {{ var('ops_top_n') }}

)

select * from final
