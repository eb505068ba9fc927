-- Category purchase days (品类购买日): one row per customer, category_l1 and business date with a valid
-- order holding a line of that category, up to the data end date. The one definition read by the
-- same-category interval, the repurchase-due list and the same-category repeat share.
{{ config(materialized='table') }}
with

order_categories as (

    select * from {{ ref('int_order_categories') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

final as (

    select distinct
        order_categories.customer_key,
        order_categories.category_l1,
        order_categories.order_date as purchase_date
    from order_categories
    cross join data_end
    where order_categories.order_date <= data_end.data_end_date

)

select * from final
