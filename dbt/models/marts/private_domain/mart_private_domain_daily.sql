-- Private domain (私域) per business date and WeCom channel (docs/metrics.md "Private domain"): members
-- at day end, joins and leaves, messages and their reach, interaction, clickers and their 7-day
-- conversion. A member is a customer (int_users_unified's customer_key of the bound account), else
-- the WeCom external contact; moments (朋友圈) reach the contacts, so its members are the contacts'.
with

events as (

    select * from {{ ref('stg_marketing__private_domain_events') }}

),

users as (

    select * from {{ ref('int_users_unified') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

calendar as (

    select * from {{ ref('dim_date') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

attributed as (

    select
        events.event_id,
        -- an account without a users row is a customer of its own, as in int_users_unified's orders
        coalesce(users.customer_key, events.user_id, 'wecom:' || events.external_user_id) as member_key,
        events.event_at,
        events.event_date,
        events.sent_date,
        events.channel,
        events.event_type,
        coalesce(events.group_id, '') as group_key
    from events
    left join users
        on events.user_id = users.user_id

),

membership_events as (

    -- state after each membership event: a join makes a member, a leave ends it; the latest event
    -- (event time, then id) of a member, channel and group wins
    select
        member_key,
        channel,
        group_key,
        event_id,
        event_at,
        event_date,
        event_type in ('contact_added', 'group_joined') as is_join,
        lag(event_type in ('contact_added', 'group_joined')) over (
            partition by member_key, channel, group_key
            order by event_at, event_id
        ) as was_member
    from attributed
    where event_type in ('contact_added', 'contact_lost', 'group_joined', 'group_left')

),

state_changes as (

    -- a join of a non-member or a leave of a member; a leave without an earlier join changes nothing
    select
        *,
        lead(event_date) over (
            partition by member_key, channel, group_key
            order by event_at, event_id
        ) as next_change_date
    from membership_events
    where is_join != coalesce(was_member, false)

),

days as (

    select calendar.date_day
    from calendar
    cross join data_end
    where
        calendar.date_day <= data_end.data_end_date
        and calendar.date_day >= (select min(event_date) from attributed)

),

channels as (

    select unnest(['wecom_contact', 'wecom_group', 'moments']) as channel

),

membership_deltas as (

    -- +1 on the day a membership of a member, channel and group starts, -1 on the day it ends
    select
        member_key,
        channel,
        event_date as change_date,
        1 as delta
    from state_changes
    where is_join

    union all

    select
        member_key,
        channel,
        next_change_date as change_date,
        -1 as delta
    from state_changes
    where is_join and next_change_date is not null

),

memberships_by_change_date as (

    select
        member_key,
        channel,
        change_date,
        sum(delta) as delta
    from membership_deltas
    group by 1, 2, 3

),

memberships_at_change as (

    -- how many of a channel's groups a member is in at the end of each day one of them changes
    select
        member_key,
        channel,
        change_date,
        sum(delta) over (
            partition by member_key, channel
            order by change_date
            rows between unbounded preceding and current row
        ) as memberships
    from memberships_by_change_date

),

member_moves as (

    -- a member counts once per channel however many groups hold them: +1 when their memberships go
    -- from none to some, -1 when back to none. Counting members day by day instead (every membership
    -- joined to every day it spans) grew with members x days: 314 s and most of 22 GB spilled at L.
    select
        channel,
        change_date,
        sum(
            case when memberships > 0 then 1 else 0 end
            - case when previous_memberships > 0 then 1 else 0 end
        ) as member_delta
    from (
        select
            channel,
            change_date,
            memberships,
            coalesce(lag(memberships) over (
                partition by member_key, channel
                order by change_date
            ), 0) as previous_memberships
        from memberships_at_change
    ) as with_previous
    group by 1, 2

),

members_at_day_end as (

    select
        days.date_day,
        channels.channel,
        cast(sum(coalesce(member_moves.member_delta, 0)) over (
            partition by channels.channel
            order by days.date_day
            rows between unbounded preceding and current row
        ) as bigint) as members
    from days
    cross join channels
    left join member_moves
        on
            days.date_day = member_moves.change_date
            and channels.channel = member_moves.channel

),

moves as (

    select
        event_date as date_day,
        channel,
        count(distinct case when is_join then member_key end) as joins,
        count(distinct case when not is_join then member_key end) as leaves
    from state_changes
    group by 1, 2

),

sent as (

    select distinct
        event_date as date_day,
        channel,
        member_key
    from attributed
    where event_type = 'message_sent'

),

messages as (

    select
        event_date as date_day,
        channel,
        count(*) as messages
    from attributed
    where event_type = 'message_sent'
    group by 1, 2

),

reads as (

    select distinct
        sent_date,
        channel,
        member_key
    from attributed
    where event_type = 'message_read'

),

readers as (

    -- a read counts for the day its message was sent, once per member sent to that day
    select
        sent.date_day,
        sent.channel,
        count(*) as sent_to,
        count(reads.member_key) as reached
    from sent
    left join reads
        on
            sent.date_day = reads.sent_date
            and sent.channel = reads.channel
            and sent.member_key = reads.member_key
    group by 1, 2

),

clicks as (

    select
        attributed.event_date as date_day,
        attributed.channel,
        attributed.member_key,
        bool_or(orders.order_id is not null) as is_converted
    from attributed
    left join orders
        on
            attributed.member_key = orders.customer_key
            and orders.is_valid
            and orders.order_at > attributed.event_at
            and orders.order_at <= attributed.event_at + interval 7 day
    where attributed.event_type = 'link_clicked'
    group by 1, 2, 3

),

clickers as (

    select
        date_day,
        channel,
        count(*) as clickers,
        cast(count_if(is_converted) as bigint) as converted
    from clicks
    group by 1, 2

),

interacting as (

    select
        event_date as date_day,
        channel,
        count(distinct member_key) as interacting
    from attributed
    where event_type in ('link_clicked', 'member_posted')
    group by 1, 2

),

final as (

    select
        days.date_day as business_date,
        channels.channel,
        cast(isodow(days.date_day) as integer) as iso_weekday,
        coalesce(members_at_day_end.members, 0) as members,
        coalesce(moves.joins, 0) as joins,
        coalesce(moves.leaves, 0) as leaves,
        coalesce(messages.messages, 0) as messages,
        coalesce(readers.sent_to, 0) as sent_to,
        coalesce(readers.reached, 0) as reached,
        readers.reached / nullif(readers.sent_to, 0) as reach_rate,
        coalesce(interacting.interacting, 0) as interacting,
        coalesce(interacting.interacting, 0) / nullif(members_at_day_end.members, 0) as interaction_rate,
        coalesce(clickers.clickers, 0) as clickers,
        coalesce(clickers.converted, 0) as converted,
        clickers.converted / nullif(clickers.clickers, 0) as conversion_rate
    from days
    cross join channels
    left join members_at_day_end
        on
            days.date_day = members_at_day_end.date_day
            -- moments reach the contacts: their members are the contacts'
            and members_at_day_end.channel
            = case when channels.channel = 'moments' then 'wecom_contact' else channels.channel end
    left join moves
        on days.date_day = moves.date_day and channels.channel = moves.channel
    left join messages
        on days.date_day = messages.date_day and channels.channel = messages.channel
    left join readers
        on days.date_day = readers.date_day and channels.channel = readers.channel
    left join interacting
        on days.date_day = interacting.date_day and channels.channel = interacting.channel
    left join clickers
        on days.date_day = clickers.date_day and channels.channel = clickers.channel

)

select * from final
