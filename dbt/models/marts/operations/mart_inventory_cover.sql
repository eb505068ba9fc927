-- Days of cover (库存可售天数) and stock-out risk (缺货风险) per snapshot date and SKU, warehouses
-- summed. Demand = units of valid orders over the var ops_demand_window_days days up to the snapshot
-- (days before the first order do not count); safety stock from the source, else
-- ops_safety_stock_factor x demand x ops_default_lead_time_days.
with

inventory as (

    select * from {{ ref('stg_logistics__inventory_snapshots') }}

),

items as (

    select * from {{ ref('fct_order_items') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

stock as (

    select
        snapshot_date,
        sku_id,
        count(*) as warehouses,
        sum(on_hand) as on_hand,
        sum(coalesce(in_transit, 0)) as in_transit,
        sum(safety_stock) as source_safety_stock,
        -- the source's figure counts only when every warehouse gives one
        count(safety_stock) = count(*) as has_source_safety_stock
    from inventory
    group by snapshot_date, sku_id

),

daily_units as (

    select
        order_date,
        sku_id,
        sum(quantity) as units
    from items
    where is_valid
    group by order_date, sku_id

),

demand as (

    select
        stock.snapshot_date,
        stock.sku_id,
        sum(daily_units.units) as window_units
    from stock
    inner join daily_units
        on stock.sku_id = daily_units.sku_id
        and daily_units.order_date <= stock.snapshot_date
        and daily_units.order_date
            > cast({{ dbt.dateadd('day', -var('ops_demand_window_days'), 'stock.snapshot_date') }} as date)
    group by stock.snapshot_date, stock.sku_id

),

with_demand as (

    select
        stock.*,
        coalesce(demand.window_units, 0) as window_units,
        -- days of the window that have data (the first weeks of the data have fewer)
        greatest(
            least(
                {{ var('ops_demand_window_days') }},
                {{ dbt.datediff('data_end.min_order_date', 'stock.snapshot_date', 'day') }} + 1
            ),
            1
        ) as window_days
    from stock
    cross join data_end
    left join demand
        on stock.snapshot_date = demand.snapshot_date
        and stock.sku_id = demand.sku_id

),

covered as (

    select
        *,
        cast(window_units as double) / cast(window_days as double) as avg_daily_demand,
        case
            when has_source_safety_stock then cast(source_safety_stock as double)
            else {{ var('ops_safety_stock_factor') }} * {{ var('ops_default_lead_time_days') }}
                * cast(window_units as double) / cast(window_days as double)
        end as safety_stock
    from with_demand

),

final as (

    select
        snapshot_date,
        sku_id,
        cast(warehouses as integer) as warehouses,
        cast(on_hand as bigint) as on_hand,
        cast(in_transit as bigint) as in_transit,
        cast(window_units as bigint) as demand_window_units,
        cast(window_days as integer) as demand_window_days,
        avg_daily_demand,
        cast(on_hand as double) / nullif(avg_daily_demand, 0) as days_of_cover,
        safety_stock,
        case when has_source_safety_stock then 'source' else 'default' end as safety_stock_source,
        case
            when on_hand <= 0 then 'out_of_stock'
            when on_hand < safety_stock then 'below_safety_stock'
            else 'ok'
        end as stock_status,
        on_hand + in_transit < safety_stock as is_stockout_risk
    from covered

)

select * from final
