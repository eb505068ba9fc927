-- Push timing (推送时机): marketing touches by touch channel, weekday and hour they were sent (business
-- time), with the touch funnel's own steps: sent, opened, clicked, and converted (credited with at least one
-- order by int_orders_attributed, as mart_touch_funnel). open_rate = opened / sent, click_rate = clicked /
-- opened, conversion_rate = converted / sent.
with

touches as (

    select * from {{ ref('stg_marketing__touches') }}

),

attributed as (

    select * from {{ ref('int_orders_attributed') }}

),

credited_touches as (

    select distinct touch_id
    from attributed
    where touch_id is not null

),

touches_timed as (

    select
        touches.channel,
        {{ iso_day_of_week(to_business_ts('touches.sent_at')) }} as send_weekday,
        cast(extract(hour from {{ to_business_ts('touches.sent_at') }}) as integer) as send_hour,
        touches.opened_at,
        touches.clicked_at,
        credited_touches.touch_id as credited_touch_id
    from touches
    left join credited_touches
        on touches.touch_id = credited_touches.touch_id

),

final as (

    select
        channel,
        send_weekday,
        send_hour,
        cast(count(*) as integer) as sent,
        cast(count(opened_at) as integer) as opened,
        cast(count(clicked_at) as integer) as clicked,
        cast(count(credited_touch_id) as integer) as converted,
        {{ safe_share('count(opened_at)', 'count(*)') }} as open_rate,
        {{ safe_share('count(clicked_at)', 'count(opened_at)') }} as click_rate,
        {{ safe_share('count(credited_touch_id)', 'count(*)') }} as conversion_rate
    from touches_timed
    group by
        channel,
        send_weekday,
        send_hour

)

select * from final
