with

source as (

    select * from {{ source('logistics', 'shipments') }}

),

versions_ranked as (

    -- The contract's rule for a key loaded more than once: the row from the latest file wins
    -- (by the date in the file name, then load time, then row number).
    select
        *,
        row_number() over (
            partition by shipment_id
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
        shipment_id,
        order_id,
        carrier,
        warehouse_id,
        cast(shipped_at as timestamp) as shipped_at,
        {{ to_business_date('shipped_at') }} as shipped_date,
        cast(delivered_at as timestamp) as delivered_at,
        {{ to_business_date('delivered_at') }} as delivered_date,
        delivered_at is not null as is_delivered,
        province,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
