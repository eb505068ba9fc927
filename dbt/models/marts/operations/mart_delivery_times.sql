-- Order-to-ship and ship-to-deliver hours (发货时长 / 配送时长) per payment date, carrier and
-- province, as sums and counts so any roll-up (week, weekday/weekend, carrier) stays exact.
with

orders as (

    select * from {{ ref('int_orders_fulfilled') }}

),

final as (

    select
        paid_date,
        carrier,
        province,
        day_type,
        cast(count(*) as integer) as shipped_orders,
        sum(order_to_ship_hours) as order_to_ship_hours_sum,
        avg(order_to_ship_hours) as avg_order_to_ship_hours,
        cast(count(ship_to_deliver_hours) as integer) as delivered_orders,
        sum(ship_to_deliver_hours) as ship_to_deliver_hours_sum,
        avg(ship_to_deliver_hours) as avg_ship_to_deliver_hours
    from orders
    where shipped_at is not null and paid_at is not null
    group by paid_date, carrier, province, day_type

)

select * from final
