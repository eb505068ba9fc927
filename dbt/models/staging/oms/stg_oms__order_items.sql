with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('oms', 'order_items'), ['order_id', 'line_no']) }},

renamed as (

    select
        order_id,
        cast(line_no as bigint) as line_no,
        sku_id,
        cast(quantity as bigint) as quantity,
        cast(unit_price as decimal(18, 2)) as unit_price,
        cast(quantity * unit_price as decimal(18, 2)) as gross_amount,
        cast(coalesce(discount_amount, 0) as decimal(18, 2)) as discount_amount,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
