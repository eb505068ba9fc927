-- A table, not a view: six operations marts and three data tests read it, and as a view each of
-- them recomputed the order/shipment/return joins (~1 s apiece at preset M, 2M orders).
{{ config(materialized='table') }}

-- One row per order: payment, first shipment and last delivery, the order's main category (line 1)
-- and its return requests. The base of the delivery-time and return-rate marts.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

shipments as (

    select * from {{ ref('stg_logistics__shipments') }}

),

items as (

    select * from {{ ref('fct_order_items') }}

),

returns as (

    select * from {{ ref('stg_oms__returns') }}

),

shipments_ranked as (

    select
        order_id,
        carrier,
        warehouse_id,
        province,
        shipped_at,
        row_number() over (partition by order_id order by shipped_at, shipment_id) as shipment_rank
    from shipments

),

shipments_summarized as (

    select
        order_id,
        count(*) as shipments,
        min(shipped_at) as shipped_at,
        max(delivered_at) as delivered_at,
        -- an order counts as delivered only when every shipment is
        min(case when delivered_at is null then 0 else 1 end) = 1 as is_delivered
    from shipments
    group by order_id

),

main_lines as (

    select
        order_id,
        category_l1,
        row_number() over (partition by order_id order by line_no) as line_rank
    from items

),

returns_summarized as (

    select
        order_id,
        count(*) as return_requests
    from returns
    group by order_id

),

joined as (

    select
        orders.order_id,
        orders.customer_key,
        orders.is_valid,
        orders.paid_at,
        {{ to_business_date('orders.paid_at') }} as paid_date,
        case when shipments_summarized.shipped_at is not null then coalesce(first_shipment.carrier, 'unknown') end
            as carrier,
        first_shipment.warehouse_id,
        coalesce(first_shipment.province, orders.province, 'unknown') as province,
        shipments_summarized.shipments,
        shipments_summarized.shipped_at,
        case when shipments_summarized.is_delivered then shipments_summarized.delivered_at end as delivered_at,
        main_lines.category_l1 as main_category_l1,
        coalesce(returns_summarized.return_requests, 0) as return_requests
    from orders
    left join shipments_summarized
        on orders.order_id = shipments_summarized.order_id
    left join shipments_ranked as first_shipment
        on orders.order_id = first_shipment.order_id
        and first_shipment.shipment_rank = 1
    left join main_lines
        on orders.order_id = main_lines.order_id
        and main_lines.line_rank = 1
    left join returns_summarized
        on orders.order_id = returns_summarized.order_id

),

final as (

    select
        order_id,
        customer_key,
        is_valid,
        paid_at,
        paid_date,
        case
            when paid_date is null then null
            when {{ iso_day_of_week('paid_date') }} in (6, 7) then 'weekend'
            else 'weekday'
        end as day_type,
        carrier,
        warehouse_id,
        province,
        cast(coalesce(shipments, 0) as integer) as shipments,
        shipped_at,
        delivered_at,
        {{ to_business_date('delivered_at') }} as delivered_date,
        cast({{ dbt.datediff('paid_at', 'shipped_at', 'second') }} as double) / 3600.0 as order_to_ship_hours,
        cast({{ dbt.datediff('shipped_at', 'delivered_at', 'second') }} as double) / 3600.0
            as ship_to_deliver_hours,
        main_category_l1,
        cast(return_requests as integer) as return_requests,
        return_requests > 0 as has_return
    from joined

)

select * from final
