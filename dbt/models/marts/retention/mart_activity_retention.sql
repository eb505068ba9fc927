-- New-user activity retention (次日/7日/30日留存) per registration business date. A new user is a
-- customer (a person, all their accounts), counted once, on the date of their first registration, and
-- only when that registration is on a channel tracking covers (var tracked_channels): an account opened
-- on a marketplace or offline has no events by construction and would only dilute the rate. Those
-- customers are counted apart (excluded_users) so the share left out shows beside the rate. dN_users:
-- new users with any tracking event (any of their accounts, login stitching included) on business date
-- registration_date + N; null while that date is after the data end date (not observed yet), never 0.
with

users as (

    select * from {{ ref('int_users_unified') }}

),

events as (

    select * from {{ ref('int_events_attributed') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

registrations_ranked as (

    select
        customer_key,
        channel,
        registration_date,
        row_number() over (
            partition by customer_key order by registered_at, user_id
        ) as registration_seq
    from users

),

first_registrations as (

    select
        registrations_ranked.customer_key,
        registrations_ranked.registration_date,
        registrations_ranked.channel in (
            {%- for channel in var('tracked_channels') %}
            '{{ channel }}'{{ ',' if not loop.last }}
            {%- endfor %}
        ) as is_tracked_channel
    from registrations_ranked
    cross join data_end
    where
        registrations_ranked.registration_seq = 1
        and registrations_ranked.registration_date <= data_end.data_end_date

),

active_days as (

    select distinct
        customer_key,
        event_date
    from events
    where customer_key is not null

),

customer_retention as (

    select
        first_registrations.customer_key,
        first_registrations.registration_date,
        first_registrations.is_tracked_channel,
        {%- for n in [1, 7, 30] %}
        max(case
            when {{ dbt.datediff('first_registrations.registration_date', 'active_days.event_date', 'day') }} = {{ n }}
                then 1
            else 0
        end) as is_active_d{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from first_registrations
    left join active_days
        on first_registrations.customer_key = active_days.customer_key
        and active_days.event_date > first_registrations.registration_date
        and active_days.event_date
        <= cast({{ dbt.dateadd('day', 30, 'first_registrations.registration_date') }} as date)
    group by
        first_registrations.customer_key,
        first_registrations.registration_date,
        first_registrations.is_tracked_channel

),

per_date as (

    select
        registration_date,
        sum(case when is_tracked_channel then 1 else 0 end) as new_users,
        sum(case when is_tracked_channel then 0 else 1 end) as excluded_users,
        {%- for n in [1, 7, 30] %}
        sum(case when is_tracked_channel then is_active_d{{ n }} else 0 end)
        as active_d{{ n }}{{ ',' if not loop.last }}
        {%- endfor %}
    from customer_retention
    group by registration_date

),

observed as (

    select
        per_date.registration_date,
        per_date.new_users,
        per_date.excluded_users,
        {%- for n in [1, 7, 30] %}
        case
            when cast({{ dbt.dateadd('day', n, 'per_date.registration_date') }} as date) <= data_end.data_end_date
                then per_date.active_d{{ n }}
        end as d{{ n }}_users,
        {%- endfor %}
        data_end.data_end_date
    from per_date
    cross join data_end

),

final as (

    select
        registration_date,
        cast(new_users as bigint) as new_users,
        cast(excluded_users as bigint) as excluded_users,
        {{ safe_share('excluded_users', 'new_users + excluded_users') }} as excluded_share,
        cast(d1_users as bigint) as d1_users,
        cast(d7_users as bigint) as d7_users,
        cast(d30_users as bigint) as d30_users,
        {{ safe_share('d1_users', 'new_users') }} as d1_rate,
        {{ safe_share('d7_users', 'new_users') }} as d7_rate,
        {{ safe_share('d30_users', 'new_users') }} as d30_rate,
        data_end_date
    from observed

)

select * from final
