-- SKU sell-through (单品售罄率) per complete month, units sold / (units sold + month-end on-hand), and
-- slow movers (滞销品): SKUs below var ops_slow_mover_threshold for ops_slow_mover_months or more
-- consecutive complete months.
with

products as (

    select * from {{ ref('dim_products') }}

),

items as (

    select * from {{ ref('fct_order_items') }}

),

inventory as (

    select * from {{ ref('stg_logistics__inventory_snapshots') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

complete_months as (

    select distinct
        {{ period_start('month', 'items.order_date') }} as month_start
    from items
    cross join data_end
    where
        items.order_date <= data_end.data_end_date
        and {{ period_start('month', 'items.order_date') }} >= data_end.min_order_date
        and {{ period_end('month', period_start('month', 'items.order_date')) }} <= data_end.data_end_date

),

monthly_sales as (

    select
        {{ period_start('month', 'order_date') }} as month_start,
        sku_id,
        sum(quantity) as units_sold
    from items
    where is_valid
    group by {{ period_start('month', 'order_date') }}, sku_id

),

month_end_snapshots as (

    select
        {{ period_start('month', 'snapshot_date') }} as month_start,
        max(snapshot_date) as snapshot_date
    from inventory
    group by {{ period_start('month', 'snapshot_date') }}

),

month_end_stock as (

    select
        month_end_snapshots.month_start,
        inventory.sku_id,
        sum(inventory.on_hand) as on_hand
    from inventory
    inner join month_end_snapshots
        on inventory.snapshot_date = month_end_snapshots.snapshot_date
    group by month_end_snapshots.month_start, inventory.sku_id

),

sku_months as (

    select
        complete_months.month_start,
        products.sku_id,
        products.category_l1,
        coalesce(monthly_sales.units_sold, 0) as units_sold,
        month_end_stock.on_hand as month_end_on_hand
    from complete_months
    cross join products
    left join monthly_sales
        on complete_months.month_start = monthly_sales.month_start
        and products.sku_id = monthly_sales.sku_id
    left join month_end_stock
        on complete_months.month_start = month_end_stock.month_start
        and products.sku_id = month_end_stock.sku_id
    where
        (
            products.launched_at is null
            or {{ to_business_date('products.launched_at') }} <= complete_months.month_start
        )
        and (
            products.delisted_at is null
            or {{ to_business_date('products.delisted_at') }} >= {{ period_end('month', 'complete_months.month_start') }}
        )

),

flagged as (

    select
        *,
        {{ safe_share('units_sold', 'units_sold + coalesce(month_end_on_hand, 0)') }} as sku_sell_through,
        coalesce(
            {{ safe_share('units_sold', 'units_sold + coalesce(month_end_on_hand, 0)') }}
                < {{ var('ops_slow_mover_threshold') }},
            false
        ) as is_below_threshold,
        {{ periods_between('month', "cast('2000-01-01' as date)", 'month_start') }} as month_number
    from sku_months

),

runs_grouped as (

    -- gaps and islands: consecutive slow months of a SKU share month_number - row_number
    select
        *,
        month_number - row_number() over (
            partition by sku_id, is_below_threshold order by month_start
        ) as run_id
    from flagged

),

runs_counted as (

    select
        *,
        case
            when is_below_threshold then row_number() over (
                partition by sku_id, is_below_threshold, run_id order by month_start
            )
            else 0
        end as consecutive_slow_months
    from runs_grouped

),

final as (

    select
        month_start,
        sku_id,
        category_l1,
        cast(units_sold as bigint) as units_sold,
        cast(month_end_on_hand as bigint) as month_end_on_hand,
        sku_sell_through,
        is_below_threshold,
        cast(consecutive_slow_months as integer) as consecutive_slow_months,
        consecutive_slow_months >= {{ var('ops_slow_mover_months') }} as is_slow_mover
    from runs_counted

)

select * from final
