with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions(
    'current_rows', source('logistics', 'inventory_snapshots'), ['snapshot_date', 'sku_id', 'warehouse_id']
) }},

renamed as (

    select
        cast(snapshot_date as date) as snapshot_date,
        sku_id,
        warehouse_id,
        cast(on_hand as bigint) as on_hand,
        cast(in_transit as bigint) as in_transit,
        cast(safety_stock as bigint) as safety_stock,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
