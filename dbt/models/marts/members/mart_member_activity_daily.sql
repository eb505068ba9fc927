-- Member activity (会员活跃) per business date from the data start to the data end date: members so
-- far (customers whose first join is on or before the date), the members with any member event that
-- day, joins, benefits used and points; is_member_day marks the member day (var member_day_of_month,
-- 会员日) whose effect mart_member_day_effect measures.
with

member_events as (

    select * from {{ ref('int_member_events_attributed') }}

),

dates as (

    select * from {{ ref('dim_date') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

first_joins as (

    select
        customer_key,
        min(event_date) as first_join_date
    from member_events
    where event_type = 'join'
    group by customer_key

),

joins_counted as (

    select
        first_join_date,
        count(*) as joins
    from first_joins
    group by first_join_date

),

days_aggregated as (

    select
        event_date,
        count(distinct customer_key) as active_members,
        sum(case when event_type = 'benefit_used' then 1 else 0 end) as benefit_uses,
        count(distinct case when event_type = 'benefit_used' then customer_key end) as benefit_customers,
        sum(case when event_type = 'points_earned' then coalesce(points, 0) else 0 end) as points_earned,
        sum(case when event_type = 'points_redeemed' then coalesce(points, 0) else 0 end) as points_redeemed
    from member_events
    group by event_date

),

days_observed as (

    select
        dates.date_day,
        dates.day_of_month
    from dates
    cross join data_end
    where
        dates.date_day >= data_end.data_start_date
        and dates.date_day <= data_end.data_end_date

),

members_accumulated as (

    select
        days_observed.date_day,
        days_observed.day_of_month,
        sum(coalesce(joins_counted.joins, 0)) over (
            order by days_observed.date_day
            rows between unbounded preceding and current row
        ) as members_from_start,
        coalesce(joins_counted.joins, 0) as joins
    from days_observed
    left join joins_counted
        on days_observed.date_day = joins_counted.first_join_date

),

members_before_start as (

    select count(*) as members
    from first_joins
    cross join data_end
    where first_joins.first_join_date < data_end.data_start_date

),

final as (

    select
        members_accumulated.date_day as event_date,
        members_accumulated.day_of_month = {{ var('member_day_of_month') }} as is_member_day,
        cast(members_accumulated.members_from_start + members_before_start.members as integer) as members,
        cast(members_accumulated.joins as integer) as joins,
        cast(coalesce(days_aggregated.active_members, 0) as integer) as active_members,
        cast(coalesce(days_aggregated.benefit_uses, 0) as integer) as benefit_uses,
        cast(coalesce(days_aggregated.benefit_customers, 0) as integer) as benefit_customers,
        cast(coalesce(days_aggregated.points_earned, 0) as bigint) as points_earned,
        cast(coalesce(days_aggregated.points_redeemed, 0) as bigint) as points_redeemed,
        data_end.data_end_date
    from members_accumulated
    cross join members_before_start
    cross join data_end
    left join days_aggregated
        on members_accumulated.date_day = days_aggregated.event_date

)

select * from final
