-- Each source's lag from the one data end date (int_data_end_dates_resolved): the latest business date
-- in its rows and how many days before the data end date that is. The data end date is the latest date
-- with an order or an event, so a source that falls behind (a late export, a stopped feed) does not hold
-- every mart back; it shows here instead, on the data-quality dashboard. Master data (products,
-- campaigns) has no daily activity and no lag.
with

orders as (

    select * from {{ ref('stg_oms__orders') }}

),

order_items as (

    select * from {{ ref('stg_oms__order_items') }}

),

events as (

    select * from {{ ref('stg_tracking__events') }}

),

users as (

    select * from {{ ref('stg_crm__users') }}

),

returns as (

    select * from {{ ref('stg_oms__returns') }}

),

shipments as (

    select * from {{ ref('stg_logistics__shipments') }}

),

inventory_snapshots as (

    select * from {{ ref('stg_logistics__inventory_snapshots') }}

),

tickets as (

    select * from {{ ref('stg_cs__tickets') }}

),

touches as (

    select * from {{ ref('stg_marketing__touches') }}

),

assignments as (

    select * from {{ ref('stg_marketing__experiment_assignments') }}

),

member_events as (

    select * from {{ ref('stg_crm__member_events') }}

),

ad_spend as (

    select * from {{ ref('stg_marketing__ad_spend') }}

),

private_domain_events as (

    select * from {{ ref('stg_marketing__private_domain_events') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

latest_per_source as (

    select 'orders' as source, 'order_date' as date_column, max(order_date) as latest_date from orders
    union all
    -- order lines carry no date of their own: their order's
    select 'order_items', 'order_date', max(orders.order_date)
    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    union all
    select 'events', 'event_date', max(event_date) from events
    union all
    select 'users', 'registration_date', max(registration_date) from users
    union all
    select 'returns', 'requested_date', max(requested_date) from returns
    union all
    select 'shipments', 'shipped_date', max(shipped_date) from shipments
    union all
    select 'inventory_snapshots', 'snapshot_date', max(snapshot_date) from inventory_snapshots
    union all
    select 'cs_tickets', 'created_date', max(created_date) from tickets
    union all
    select 'marketing_touches', 'sent_date', max(sent_date) from touches
    union all
    select 'experiment_assignments', 'assigned_date', max(assigned_date) from assignments
    union all
    select 'member_events', 'event_date', max(event_date) from member_events
    union all
    select 'ad_spend', 'spend_date', max(spend_date) from ad_spend
    union all
    select 'private_domain_events', 'event_date', max(event_date) from private_domain_events

),

final as (

    select
        latest_per_source.source,
        latest_per_source.date_column,
        latest_per_source.latest_date,
        data_end.data_end_date,
        cast({{ dbt.datediff('latest_per_source.latest_date', 'data_end.data_end_date', 'day') }} as integer)
            as lag_days,
        latest_per_source.source in ('orders', 'events') as defines_data_end_date
    from latest_per_source
    cross join data_end

)

select * from final
