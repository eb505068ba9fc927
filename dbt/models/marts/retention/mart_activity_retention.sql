-- Activity retention (次日/7日/30日留存) per registration business date: of the users who registered
-- that day, the share with any tracking event attributed to them (own user_id or login stitching)
-- on business date registration_date + N. Counted per user account, as registered; a day whose
-- registration_date + N is after the data end date is not observed yet: dN_users and dN_rate are null.
with

users as (

    select * from {{ ref('int_users_unified') }}

),

events as (

    select * from {{ ref('int_events_attributed') }}

),

latest_event as (

    select max(event_date) as max_event_date
    from events

),

end_date as (

    select {{ as_of_date_or('max_event_date') }} as data_end_date
    from latest_event

),

new_users as (

    select
        users.user_id,
        users.registration_date
    from users
    cross join end_date
    where users.registration_date <= end_date.data_end_date

),

active_days as (

    select distinct
        resolved_user_id as user_id,
        event_date
    from events
    where resolved_user_id is not null

),

user_retention as (

    select
        new_users.user_id,
        new_users.registration_date,
        max(case when {{ dbt.datediff('new_users.registration_date', 'active_days.event_date', 'day') }} = 1
            then 1 else 0 end) as is_active_d1,
        max(case when {{ dbt.datediff('new_users.registration_date', 'active_days.event_date', 'day') }} = 7
            then 1 else 0 end) as is_active_d7,
        max(case when {{ dbt.datediff('new_users.registration_date', 'active_days.event_date', 'day') }} = 30
            then 1 else 0 end) as is_active_d30
    from new_users
    left join active_days
        on new_users.user_id = active_days.user_id
        and active_days.event_date > new_users.registration_date
        and active_days.event_date <= cast({{ dbt.dateadd('day', 30, 'new_users.registration_date') }} as date)
    group by
        new_users.user_id,
        new_users.registration_date

),

per_date as (

    select
        user_retention.registration_date,
        max(end_date.data_end_date) as data_end_date,
        count(*) as new_users,
        sum(user_retention.is_active_d1) as active_d1,
        sum(user_retention.is_active_d7) as active_d7,
        sum(user_retention.is_active_d30) as active_d30
    from user_retention
    cross join end_date
    group by user_retention.registration_date

),

observed as (

    select
        registration_date,
        new_users,
        case
            when cast({{ dbt.dateadd('day', 1, 'registration_date') }} as date) <= data_end_date then active_d1
        end as d1_users,
        case
            when cast({{ dbt.dateadd('day', 7, 'registration_date') }} as date) <= data_end_date then active_d7
        end as d7_users,
        case
            when cast({{ dbt.dateadd('day', 30, 'registration_date') }} as date) <= data_end_date then active_d30
        end as d30_users
    from per_date

),

final as (

    select
        registration_date,
        cast(new_users as bigint) as new_users,
        cast(d1_users as bigint) as d1_users,
        cast(d7_users as bigint) as d7_users,
        cast(d30_users as bigint) as d30_users,
        cast(d1_users as double) / nullif(cast(new_users as double), 0) as d1_rate,
        cast(d7_users as double) / nullif(cast(new_users as double), 0) as d7_rate,
        cast(d30_users as double) / nullif(cast(new_users as double), 0) as d30_rate
    from observed

)

select * from final
