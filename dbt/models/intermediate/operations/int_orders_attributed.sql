-- Valid orders credited to a marketing touch of the same customer: the last click within
-- var ops_attribution_click_days before the order, else the last open within ops_attribution_open_days.
-- One row per credited order; orders no touch reaches are absent.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

touches as (

    select * from {{ ref('stg_marketing__touches') }}

),

users as (

    select * from {{ ref('int_users_unified') }}

),

customer_touches as (

    select
        touches.touch_id,
        touches.campaign_id,
        touches.channel,
        touches.opened_at,
        touches.clicked_at,
        coalesce(users.customer_key, touches.user_id) as customer_key
    from touches
    left join users
        on touches.user_id = users.user_id

),

candidates as (

    select
        orders.order_id,
        customer_touches.touch_id,
        customer_touches.campaign_id,
        customer_touches.channel as touch_channel,
        case
            when customer_touches.clicked_at <= orders.order_at
                and customer_touches.clicked_at
                > {{ dbt.dateadd('day', -var('ops_attribution_click_days'), 'orders.order_at') }}
                then 1
            else 2
        end as rule_priority,
        case
            when customer_touches.clicked_at <= orders.order_at
                and customer_touches.clicked_at
                > {{ dbt.dateadd('day', -var('ops_attribution_click_days'), 'orders.order_at') }}
                then customer_touches.clicked_at
            else customer_touches.opened_at
        end as credited_at
    from orders
    inner join customer_touches
        on orders.customer_key = customer_touches.customer_key
    where
        orders.is_valid
        and (
            (
                customer_touches.clicked_at <= orders.order_at
                and customer_touches.clicked_at
                > {{ dbt.dateadd('day', -var('ops_attribution_click_days'), 'orders.order_at') }}
            )
            or (
                customer_touches.opened_at <= orders.order_at
                and customer_touches.opened_at
                > {{ dbt.dateadd('day', -var('ops_attribution_open_days'), 'orders.order_at') }}
            )
        )

),

ranked as (

    select
        *,
        row_number() over (
            partition by order_id
            order by rule_priority, credited_at desc, touch_id desc
        ) as candidate_rank
    from candidates

),

final as (

    select
        orders.order_id,
        orders.customer_key,
        orders.order_at,
        orders.order_date,
        orders.net_revenue,
        orders.pay_amount,
        ranked.touch_id,
        ranked.campaign_id,
        ranked.touch_channel,
        case when ranked.rule_priority = 1 then 'last_click' else 'last_open' end as attribution_rule,
        ranked.credited_at
    from ranked
    inner join orders
        on ranked.order_id = orders.order_id
    where ranked.candidate_rank = 1

)

select * from final
