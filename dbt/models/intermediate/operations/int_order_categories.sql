-- One row per valid order and category_l1 among its lines: the transactions of the basket analysis.
with

items as (

    select * from {{ ref('fct_order_items') }}

),

final as (

    select distinct
        order_id,
        customer_key,
        order_date,
        category_l1
    from items
    where is_valid and category_l1 is not null

)

select * from final
