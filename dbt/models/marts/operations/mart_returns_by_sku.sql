-- SKU return rate (单品退货率): of the SKU's lines in mature delivered orders, the share hit by a
-- return (a return naming the SKU, or a whole-order return), with the SKU's most frequent reason.
with

orders as (

    select * from {{ ref('int_orders_fulfilled') }}

),

items as (

    select * from {{ ref('fct_order_items') }}

),

returns as (

    select * from {{ ref('stg_oms__returns') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

mature_lines as (

    select
        items.order_id,
        items.line_no,
        items.sku_id
    from items
    inner join orders
        on items.order_id = orders.order_id
    cross join data_end
    where
        orders.delivered_date is not null
        and cast({{ dbt.dateadd('day', var('ops_return_window_days'), 'orders.delivered_date') }} as date)
            <= data_end.data_end_date

),

line_returns as (

    select
        mature_lines.order_id,
        mature_lines.line_no,
        mature_lines.sku_id,
        returns.return_id,
        returns.return_reason
    from mature_lines
    inner join returns
        on mature_lines.order_id = returns.order_id
        and (returns.sku_id is null or returns.sku_id = mature_lines.sku_id)

),

reasons_ranked as (

    select
        sku_id,
        return_reason,
        row_number() over (partition by sku_id order by count(*) desc, return_reason nulls last) as reason_rank
    from line_returns
    group by sku_id, return_reason

),

lines_flagged as (

    select
        mature_lines.order_id,
        mature_lines.line_no,
        mature_lines.sku_id,
        count(line_returns.return_id) as returns
    from mature_lines
    left join line_returns
        on mature_lines.order_id = line_returns.order_id
        and mature_lines.line_no = line_returns.line_no
    group by mature_lines.order_id, mature_lines.line_no, mature_lines.sku_id

),

by_sku as (

    select
        sku_id,
        count(*) as delivered_lines,
        sum(case when returns > 0 then 1 else 0 end) as returned_lines,
        sum(returns) as returns
    from lines_flagged
    group by sku_id

),

final as (

    select
        by_sku.sku_id,
        products.product_name,
        products.category_l1,
        cast(by_sku.delivered_lines as integer) as delivered_lines,
        cast(by_sku.returned_lines as integer) as returned_lines,
        {{ safe_share('by_sku.returned_lines', 'by_sku.delivered_lines') }} as return_rate,
        cast(by_sku.returns as integer) as returns,
        reasons_ranked.return_reason as top_return_reason
    from by_sku
    left join products
        on by_sku.sku_id = products.sku_id
    left join reasons_ranked
        on by_sku.sku_id = reasons_ranked.sku_id
        and reasons_ranked.reason_rank = 1

)

select * from final
