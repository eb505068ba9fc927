-- Slow movers (滞销品) per complete month and SKU. A SKU's 动销率 is the share of the month's days with a
-- sale (a unit on a valid order); a month under var ops_slow_mover_threshold (5%) is a slow month, and a
-- SKU is a slow mover in the month that ends a run of ops_slow_mover_months (3) or more slow months:
-- it hardly moves. 售罄率 (units sold / (units sold + month-end stock)) answers another question,
-- whether stock is too deep for the sales, and stays beside it as the overstock signal: a SKU selling
-- every day from a deep warehouse has a low 售罄率 and is no slow mover.
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
        and {{ period_start('month', 'items.order_date') }} >= data_end.data_start_date
        and {{ period_end('month', period_start('month', 'items.order_date')) }} <= data_end.data_end_date

),

monthly_sales as (

    select
        {{ period_start('month', 'order_date') }} as month_start,
        sku_id,
        sum(quantity) as units_sold,
        count(distinct order_date) as days_with_sales
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
        cast(
            {{ dbt.datediff(
                'complete_months.month_start', period_end('month', 'complete_months.month_start'), 'day'
            ) }} + 1
            as integer
        ) as days_in_month,
        coalesce(monthly_sales.units_sold, 0) as units_sold,
        coalesce(monthly_sales.days_with_sales, 0) as days_with_sales,
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
            or {{ to_business_date('products.delisted_at') }}
            >= {{ period_end('month', 'complete_months.month_start') }}
        )

),

flagged as (

    select
        *,
        {{ safe_share('days_with_sales', 'days_in_month') }} as sell_through_rate,
        {{ safe_share('days_with_sales', 'days_in_month') }} < {{ var('ops_slow_mover_threshold') }}
            as is_below_threshold,
        {{ safe_share('units_sold', 'units_sold + coalesce(month_end_on_hand, 0)') }} as sell_out_rate,
        coalesce(
            {{ safe_share('units_sold', 'units_sold + coalesce(month_end_on_hand, 0)') }}
                < {{ var('ops_overstock_threshold') }},
            false
        ) as is_overstock,
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
        cast(days_with_sales as integer) as days_with_sales,
        days_in_month,
        sell_through_rate,
        is_below_threshold,
        cast(consecutive_slow_months as integer) as consecutive_slow_months,
        consecutive_slow_months >= {{ var('ops_slow_mover_months') }} as is_slow_mover,
        cast(month_end_on_hand as bigint) as month_end_on_hand,
        sell_out_rate,
        is_overstock
    from runs_counted

)

select * from final
