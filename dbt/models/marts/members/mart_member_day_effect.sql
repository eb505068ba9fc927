-- Member-day effect (会员日效应): benefits used per member and day on the member day against the other
-- days, pooled over the observed dates of mart_member_activity_daily; uplift = the member day's rate /
-- the other days' rate.
with

activity as (

    select * from {{ ref('mart_member_activity_daily') }}

),

day_types_aggregated as (

    select
        case when is_member_day then 'member_day' else 'other_day' end as day_type,
        count(*) as days,
        sum(members) as member_days,
        sum(benefit_uses) as benefit_uses,
        sum(active_members) as active_member_days
    from activity
    group by case when is_member_day then 'member_day' else 'other_day' end

),

rates_computed as (

    select
        day_type,
        days,
        member_days,
        benefit_uses,
        active_member_days,
        {{ safe_share('benefit_uses', 'member_days') }} as benefit_uses_per_member,
        {{ safe_share('active_member_days', 'member_days') }} as active_share
    from day_types_aggregated

),

other_days as (

    select
        benefit_uses_per_member as other_day_rate,
        active_share as other_day_active_share
    from rates_computed
    where day_type = 'other_day'

),

final as (

    select
        rates_computed.day_type,
        cast(rates_computed.days as integer) as days,
        cast(rates_computed.member_days as bigint) as member_days,
        cast(rates_computed.benefit_uses as bigint) as benefit_uses,
        rates_computed.benefit_uses_per_member,
        rates_computed.active_share,
        rates_computed.benefit_uses_per_member / nullif(other_days.other_day_rate, 0) as benefit_uplift,
        rates_computed.active_share / nullif(other_days.other_day_active_share, 0) as active_uplift
    from rates_computed
    left join other_days
        on 1 = 1

)

select * from final
