with

source as (

    select * from {{ source('logistics', 'inventory_snapshots') }}

),

versions_ranked as (

    -- The contract's rule for a key loaded more than once: the row from the latest file wins
    -- (by the date in the file name, then load time, then row number).
    select
        *,
        row_number() over (
            partition by snapshot_date, sku_id, warehouse_id
            order by
                _file_date desc nulls last,
                _loaded_at desc nulls last,
                _row desc nulls last
        ) as version_rank
    from source

),

current_rows as (

    select * from versions_ranked
    where version_rank = 1

),

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
