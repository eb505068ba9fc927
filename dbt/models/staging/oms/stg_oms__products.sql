with

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', source('oms', 'products'), ['sku_id']) }},

renamed as (

    select
        sku_id,
        spu_id,
        product_name,
        category_l1,
        category_l2,
        brand,
        cast(list_price as decimal(18, 2)) as list_price,
        cast(cost_price as decimal(18, 2)) as cost_price,
        cast(launched_at as timestamp) as launched_at,
        cast(delisted_at as timestamp) as delisted_at,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at
    from current_rows

)

select * from renamed
