-- Touch funnel (触达漏斗) per campaign and touch channel: sent, opened, clicked, converted (credited
-- with at least one order by int_orders_attributed).
with

touches as (

    select * from {{ ref('stg_marketing__touches') }}

),

attributed as (

    select * from {{ ref('int_orders_attributed') }}

),

credited as (

    select
        touch_id,
        count(*) as attributed_orders,
        sum(net_revenue) as attributed_revenue
    from attributed
    group by touch_id

),

final as (

    select
        touches.campaign_id,
        touches.channel,
        cast(count(*) as integer) as sent,
        cast(count(touches.opened_at) as integer) as opened,
        cast(count(touches.clicked_at) as integer) as clicked,
        cast(count(credited.touch_id) as integer) as converted,
        {{ safe_share('count(touches.opened_at)', 'count(*)') }} as open_rate,
        {{ safe_share('count(touches.clicked_at)', 'count(touches.opened_at)') }} as click_rate,
        {{ safe_share('count(credited.touch_id)', 'count(*)') }} as conversion_rate,
        cast(coalesce(sum(credited.attributed_orders), 0) as integer) as attributed_orders,
        cast(coalesce(sum(credited.attributed_revenue), 0) as decimal(18, 2)) as attributed_revenue
    from touches
    left join credited
        on touches.touch_id = credited.touch_id
    group by touches.campaign_id, touches.channel

)

select * from final
