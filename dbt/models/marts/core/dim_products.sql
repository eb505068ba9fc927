with

products as (

    select * from {{ ref('stg_oms__products') }}

),

final as (

    select
        sku_id,
        spu_id,
        product_name,
        category_l1,
        category_l2,
        brand,
        list_price,
        cost_price,
        cast(
            (cast(list_price as double) - cast(cost_price as double)) / nullif(cast(list_price as double), 0)
            as double
        ) as list_margin_rate,
        launched_at,
        delisted_at,
        delisted_at is null as is_active
    from products

)

select * from final
