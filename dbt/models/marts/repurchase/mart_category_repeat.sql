-- Same-category repeat share (同品类复购占比): of the customers with a second purchase day, the share
-- whose second purchase day holds a category_l1 of their first purchase day; per category of the first
-- purchase day (a customer counts under each category of it) and 'all' (each customer once).
with


buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

category_days as (

    select * from {{ ref('int_category_purchase_days') }}

),

first_day_categories as (

    select
        buyers.customer_key,
        category_days.category_l1,
        case when second_day.customer_key is not null then 1 else 0 end as is_same_category
    from buyers
    inner join category_days
        on buyers.customer_key = category_days.customer_key
        and buyers.first_purchase_date = category_days.purchase_date
    left join category_days as second_day
        on buyers.customer_key = second_day.customer_key
        and buyers.second_purchase_date = second_day.purchase_date
        and category_days.category_l1 = second_day.category_l1
    where buyers.second_purchase_date is not null

),

customers_and_categories as (

    select
        category_l1,
        customer_key,
        is_same_category
    from first_day_categories

    union all

    select
        'all' as category_l1,
        customer_key,
        max(is_same_category) as is_same_category
    from first_day_categories
    group by customer_key

),

final as (

    select
        category_l1,
        cast(count(*) as integer) as repeat_buyers,
        cast(sum(is_same_category) as integer) as same_category_buyers,
        {{ safe_share('sum(is_same_category)', 'count(*)') }} as same_category_share
    from customers_and_categories
    group by category_l1

)

select * from final
