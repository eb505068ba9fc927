-- Delivery hours by weekday vs weekend payment (and carrier, with an 'all' carrier row): mean, p50,
-- p90, and the weekend / weekday ratio of mean order-to-ship hours (the seeds' weekend delay).
with

orders as (

    select * from {{ ref('int_orders_fulfilled') }}

),

shipped as (

    select
        carrier,
        day_type,
        order_to_ship_hours,
        ship_to_deliver_hours
    from orders
    where shipped_at is not null and paid_at is not null

    union all

    select
        'all' as carrier,
        day_type,
        order_to_ship_hours,
        ship_to_deliver_hours
    from orders
    where shipped_at is not null and paid_at is not null

),

by_day_type as (

    select
        carrier,
        day_type,
        count(*) as shipped_orders,
        avg(order_to_ship_hours) as avg_order_to_ship_hours,
        {{ percentile_cont('order_to_ship_hours', 0.5) }} as p50_order_to_ship_hours,
        {{ percentile_cont('order_to_ship_hours', 0.9) }} as p90_order_to_ship_hours,
        count(ship_to_deliver_hours) as delivered_orders,
        avg(ship_to_deliver_hours) as avg_ship_to_deliver_hours,
        {{ percentile_cont('ship_to_deliver_hours', 0.5) }} as p50_ship_to_deliver_hours,
        {{ percentile_cont('ship_to_deliver_hours', 0.9) }} as p90_ship_to_deliver_hours
    from shipped
    group by carrier, day_type

),

final as (

    select
        carrier,
        day_type,
        cast(shipped_orders as integer) as shipped_orders,
        avg_order_to_ship_hours,
        p50_order_to_ship_hours,
        p90_order_to_ship_hours,
        cast(delivered_orders as integer) as delivered_orders,
        avg_ship_to_deliver_hours,
        p50_ship_to_deliver_hours,
        p90_ship_to_deliver_hours,
        max(case when day_type = 'weekend' then avg_order_to_ship_hours end) over (partition by carrier)
            / nullif(
                max(case when day_type = 'weekday' then avg_order_to_ship_hours end) over (partition by carrier), 0
            )
            as weekend_weekday_ratio
    from by_day_type

)

select * from final
