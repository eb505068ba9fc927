-- Points earned against points redeemed (积分获得与使用) per calendar month of the event: points,
-- the customers who earned and redeemed, and the redeemed share of the month's earned points.
with

member_events as (

    select * from {{ ref('int_member_events_attributed') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

points_events as (

    select
        {{ period_start('month', 'event_date') }} as month_start,
        event_type,
        points,
        customer_key
    from member_events
    where event_type in ('points_earned', 'points_redeemed')

),

months_aggregated as (

    select
        month_start,
        sum(case when event_type = 'points_earned' then coalesce(points, 0) else 0 end) as points_earned,
        sum(case when event_type = 'points_redeemed' then coalesce(points, 0) else 0 end) as points_redeemed,
        count(distinct case when event_type = 'points_earned' then customer_key end) as earning_customers,
        count(distinct case when event_type = 'points_redeemed' then customer_key end) as redeeming_customers
    from points_events
    group by month_start

),

final as (

    select
        months_aggregated.month_start,
        cast(months_aggregated.points_earned as bigint) as points_earned,
        cast(months_aggregated.points_redeemed as bigint) as points_redeemed,
        {{ safe_share('months_aggregated.points_redeemed', 'months_aggregated.points_earned') }}
            as redeemed_share,
        cast(months_aggregated.earning_customers as integer) as earning_customers,
        cast(months_aggregated.redeeming_customers as integer) as redeeming_customers,
        months_aggregated.month_start >= data_end.data_start_date
        and {{ period_end('month', 'months_aggregated.month_start') }} <= data_end.data_end_date as is_complete,
        data_end.data_end_date
    from months_aggregated
    cross join data_end
    where months_aggregated.month_start <= data_end.data_end_date

)

select * from final
