-- Regional penetration (区域渗透, 下沉市场): per calendar month, province and city tier, the buyers, new
-- customers and GMV located by the order's shipping address, their share of the shop's, month over month
-- growth, and the 30-day repurchase of the month's new customers by the address of their first order.
-- City tiers from the seed city_tiers; rules in docs/metrics.md "Regional penetration".
with

orders as (

    select * from {{ ref('fct_orders') }}

),

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

city_tiers as (

    select * from {{ ref('city_tiers') }}

),

dates as (

    select * from {{ ref('dim_date') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

orders_located as (

    select
        orders.customer_key,
        {{ period_start('month', 'orders.order_date') }} as month_start,
        coalesce(orders.province, 'unknown') as province,
        case
            when orders.city is null then 'unknown'
            else coalesce(city_tiers.city_tier, 'other')
        end as city_tier,
        orders.pay_amount,
        orders.is_first_purchase
    from orders
    left join city_tiers
        on orders.city = city_tiers.city
    cross join data_end
    where
        orders.is_valid
        and orders.order_date <= data_end.data_end_date

),

cells_counted as (

    select
        month_start,
        province,
        city_tier,
        count(distinct customer_key) as buyers,
        sum(pay_amount) as gmv
    from orders_located
    group by
        month_start,
        province,
        city_tier

),

new_customers_counted as (

    select
        orders_located.month_start,
        orders_located.province,
        orders_located.city_tier,
        count(*) as new_customers,
        sum(case when buyers.is_repurchased_30d then 1 else 0 end) as repurchased_30d
    from orders_located
    inner join buyers
        on orders_located.customer_key = buyers.customer_key
    where orders_located.is_first_purchase
    group by
        orders_located.month_start,
        orders_located.province,
        orders_located.city_tier

),

shop_counted as (

    select
        month_start,
        count(distinct customer_key) as shop_buyers,
        sum(case when is_first_purchase then 1 else 0 end) as shop_new_customers,
        sum(pay_amount) as shop_gmv
    from orders_located
    group by month_start

),

months as (

    select distinct dates.month_start
    from dates
    cross join data_end
    where dates.date_day between data_end.data_start_date and data_end.data_end_date

),

cells as (

    select distinct
        province,
        city_tier
    from orders_located

),

grid as (

    select
        months.month_start,
        cells.province,
        cells.city_tier,
        months.month_start >= data_end.data_start_date
        and {{ period_end('month', 'months.month_start') }} <= data_end.data_end_date as is_complete,
        {{ dbt.dateadd('day', 30, period_end('month', 'months.month_start')) }} <= data_end.data_end_date
            as is_repurchase_complete,
        data_end.data_end_date
    from months
    cross join cells
    cross join data_end

),

filled as (

    select
        grid.month_start,
        grid.province,
        grid.city_tier,
        coalesce(cells_counted.buyers, 0) as buyers,
        coalesce(new_customers_counted.new_customers, 0) as new_customers,
        coalesce(cells_counted.gmv, 0) as gmv,
        coalesce(shop_counted.shop_buyers, 0) as shop_buyers,
        coalesce(shop_counted.shop_new_customers, 0) as shop_new_customers,
        coalesce(shop_counted.shop_gmv, 0) as shop_gmv,
        coalesce(new_customers_counted.repurchased_30d, 0) as repurchased_30d,
        grid.is_complete,
        grid.is_repurchase_complete,
        grid.data_end_date
    from grid
    left join cells_counted
        on
            grid.month_start = cells_counted.month_start
            and grid.province = cells_counted.province
            and grid.city_tier = cells_counted.city_tier
    left join new_customers_counted
        on
            grid.month_start = new_customers_counted.month_start
            and grid.province = new_customers_counted.province
            and grid.city_tier = new_customers_counted.city_tier
    left join shop_counted
        on grid.month_start = shop_counted.month_start

),

previous_added as (

    select
        *,
        lag(buyers) over (partition by province, city_tier order by month_start) as previous_buyers,
        lag(new_customers) over (partition by province, city_tier order by month_start) as previous_new_customers,
        coalesce(
            lag(is_complete) over (partition by province, city_tier order by month_start), false
        ) as is_previous_complete
    from filled

),

final as (

    select
        month_start,
        province,
        city_tier,
        cast(buyers as integer) as buyers,
        cast(new_customers as integer) as new_customers,
        cast(gmv as decimal(18, 2)) as gmv,
        cast(shop_buyers as integer) as shop_buyers,
        cast(shop_new_customers as integer) as shop_new_customers,
        cast(shop_gmv as decimal(18, 2)) as shop_gmv,
        {{ safe_share('buyers', 'shop_buyers') }} as buyer_share,
        {{ safe_share('new_customers', 'shop_new_customers') }} as new_customer_share,
        {{ safe_share('gmv', 'shop_gmv') }} as gmv_share,
        case
            when is_complete and is_previous_complete
                then {{ safe_share('buyers', 'previous_buyers') }} - 1
        end as buyers_mom_growth,
        case
            when is_complete and is_previous_complete
                then {{ safe_share('new_customers', 'previous_new_customers') }} - 1
        end as new_customers_mom_growth,
        cast(repurchased_30d as integer) as repurchased_30d,
        case when is_repurchase_complete then {{ safe_share('repurchased_30d', 'new_customers') }} end
            as repurchase_rate_30d,
        is_complete,
        is_repurchase_complete,
        data_end_date
    from previous_added

)

select * from final
