-- Same-category purchase interval (同品类购买间隔): per customer and category_l1, days between
-- consecutive purchase days in that category (int_category_purchase_days: a business date with a
-- valid order holding a line of the category, up to the data end date); quartiles per category. Lines
-- of SKUs without a category (not in the product master) are left out.
with

category_days as (

    select * from {{ ref('int_category_purchase_days') }}

),

previous_day_found as (

    select
        customer_key,
        category_l1,
        purchase_date,
        lag(purchase_date) over (
            partition by customer_key, category_l1 order by purchase_date
        ) as previous_purchase_date
    from category_days

),

gaps_found as (

    select
        customer_key,
        category_l1,
        purchase_date,
        cast({{ dbt.datediff('previous_purchase_date', 'purchase_date', 'day') }} as integer) as gap_days
    from previous_day_found

),

final as (

    select
        category_l1,
        cast(count(gap_days) as integer) as gaps,
        {{ percentile_cont('gap_days', 0.25) }} as p25_days,
        {{ percentile_cont('gap_days', 0.5) }} as p50_days,
        {{ percentile_cont('gap_days', 0.75) }} as p75_days,
        avg(cast(gap_days as double)) as mean_days,
        cast(count(distinct customer_key) as integer) as customers,
        cast(count(*) as integer) as purchase_days
    from gaps_found
    group by category_l1

)

select * from final
