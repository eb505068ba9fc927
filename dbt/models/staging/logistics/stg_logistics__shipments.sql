with

-- a key loaded more than once keeps its latest delivered version (the contract's rule); most keys
-- come again (every status change is sent again)
{{ ew_current_versions('current_rows', source('logistics', 'shipments'), ['shipment_id'], repeats='common') }},

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
