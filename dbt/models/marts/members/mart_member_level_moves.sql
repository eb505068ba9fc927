-- Growth path (会员成长路径): per month of the event, joins and level changes by the level moved from and
-- to (from_level 0 = joining), with the moves and the customers who made them.
with

member_events as (

    select * from {{ ref('int_member_events_attributed') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

moves_selected as (

    select
        {{ period_start('month', 'event_date') }} as month_start,
        event_type as move_type,
        from_level,
        member_level as to_level,
        customer_key
    from member_events
    where event_type in ('join', 'level_up', 'level_down')

),

moves_aggregated as (

    select
        month_start,
        move_type,
        from_level,
        to_level,
        count(*) as moves,
        count(distinct customer_key) as customers
    from moves_selected
    group by
        month_start,
        move_type,
        from_level,
        to_level

),

final as (

    select
        moves_aggregated.month_start,
        moves_aggregated.move_type,
        cast(moves_aggregated.from_level as integer) as from_level,
        cast(moves_aggregated.to_level as integer) as to_level,
        cast(moves_aggregated.moves as integer) as moves,
        cast(moves_aggregated.customers as integer) as customers,
        data_end.data_end_date
    from moves_aggregated
    cross join data_end
    where moves_aggregated.month_start <= data_end.data_end_date

)

select * from final
