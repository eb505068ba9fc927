-- One row per customer (person): the users unified into it, its first purchase and cohort.
with

users as (

    select * from {{ ref('int_users_unified') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

customer_users as (

    select
        customer_key,
        {{ dbt.listagg('user_id', "','", 'order by user_id') }} as user_ids,
        count(*) as n_users,
        count(distinct channel) as n_channels,
        {{ dbt.listagg('distinct channel', "','", 'order by channel') }} as channels,
        min(registered_at) as registered_at,
        min(registration_date) as registration_date,
        -- a person is the member their best account is: a level earned on one channel's account counts
        max(member_level) as member_level
    from users
    group by customer_key

),

registration_channel as (

    select
        customer_key,
        channel as registration_channel
    from (
        select
            customer_key,
            channel,
            row_number() over (partition by customer_key order by registered_at, user_id) as rn
        from users
    ) as ranked
    where rn = 1

),

first_orders as (

    select
        customer_key,
        order_at as first_purchase_at,
        order_date as first_purchase_date,
        channel as first_channel
    from orders
    where is_first_purchase

),

purchase_summary as (

    select
        customer_key,
        max(purchase_day_seq) as purchase_days,
        max(order_date) as last_purchase_date,
        sum(net_revenue) as net_revenue
    from orders
    where is_valid
    group by customer_key

),

all_customers as (

    select customer_key from customer_users
    union
    select customer_key from orders

),

final as (

    select
        all_customers.customer_key,
        coalesce(customer_users.user_ids, all_customers.customer_key) as user_ids,
        coalesce(customer_users.n_users, 0) as n_users,
        coalesce(customer_users.n_channels >= 2, false) as is_cross_channel,
        customer_users.channels,
        customer_users.registered_at,
        customer_users.registration_date,
        customer_users.member_level,
        coalesce(customer_users.member_level >= 1, false) as is_member,
        registration_channel.registration_channel,
        first_orders.first_purchase_at,
        first_orders.first_purchase_date,
        cast({{ dbt.date_trunc('month', 'first_orders.first_purchase_date') }} as date) as cohort_month,
        cast({{ dbt.date_trunc('week', 'first_orders.first_purchase_date') }} as date) as cohort_week,
        first_orders.first_channel,
        coalesce(purchase_summary.purchase_days, 0) as purchase_days,
        purchase_summary.last_purchase_date,
        cast(coalesce(purchase_summary.net_revenue, 0) as decimal(18, 2)) as net_revenue
    from all_customers
    left join customer_users
        on all_customers.customer_key = customer_users.customer_key
    left join registration_channel
        on all_customers.customer_key = registration_channel.customer_key
    left join first_orders
        on all_customers.customer_key = first_orders.customer_key
    left join purchase_summary
        on all_customers.customer_key = purchase_summary.customer_key

)

select * from final
