-- One row per customer and purchase day (a business date with at least one valid order) up to the
-- data end date, with the day's net revenue and margin, the previous purchase day and the customer's
-- cohort: the base of the repurchase, LTV and cohort retention marts.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

valid_orders as (

    select
        orders.customer_key,
        orders.order_date,
        orders.purchase_day_seq,
        orders.net_revenue,
        orders.net_cogs_amount
    from orders
    cross join data_end
    where
        orders.is_valid
        and orders.order_date <= data_end.data_end_date

),

days_aggregated as (

    select
        customer_key,
        order_date as purchase_date,
        min(purchase_day_seq) as purchase_day_seq,
        count(*) as n_orders,
        sum(net_revenue) as net_revenue,
        -- repurchase is counted in purchase days: every order of the first purchase day is first-purchase
        -- revenue, a second order that day included (the repurchase rate does not count it either)
        sum(case when purchase_day_seq > 1 then net_revenue else 0 end) as repeat_net_revenue,
        sum(net_revenue - net_cogs_amount) as margin_amount
    from valid_orders
    group by
        customer_key,
        order_date

),

previous_day_found as (

    select
        customer_key,
        purchase_date,
        purchase_day_seq,
        n_orders,
        net_revenue,
        repeat_net_revenue,
        margin_amount,
        lag(purchase_date) over (partition by customer_key order by purchase_date) as previous_purchase_date
    from days_aggregated

),

final as (

    select
        previous_day_found.customer_key,
        previous_day_found.purchase_date,
        previous_day_found.purchase_day_seq,
        previous_day_found.previous_purchase_date,
        cast(
            {{ dbt.datediff('previous_day_found.previous_purchase_date', 'previous_day_found.purchase_date', 'day') }}
            as integer
        ) as days_since_previous_purchase,
        customers.first_purchase_date,
        cast(
            {{ dbt.datediff('customers.first_purchase_date', 'previous_day_found.purchase_date', 'day') }}
            as integer
        ) as days_since_first_purchase,
        customers.cohort_month,
        customers.cohort_week,
        customers.first_channel,
        cast(previous_day_found.n_orders as integer) as n_orders,
        cast(previous_day_found.net_revenue as decimal(18, 2)) as net_revenue,
        cast(previous_day_found.repeat_net_revenue as decimal(18, 2)) as repeat_net_revenue,
        cast(previous_day_found.margin_amount as decimal(18, 2)) as margin_amount
    from previous_day_found
    inner join customers
        on previous_day_found.customer_key = customers.customer_key

)

select * from final
