-- Active users (活跃用户) per business date and platform, and every platform together ('all'), from the
-- data start to the data end date (docs/metrics.md "Behaviour"): DAU, WAU and MAU (customers active on
-- the date, in the 7 and in the 30 days ending on it), DAU/MAU stickiness, and the sessions starting
-- that date with their dwell time (停留时长, first to last event). A customer active on two platforms
-- counts once in 'all'.
-- WAU/MAU without a join of every date to its window: a customer active on date a counts on a .. a+N-1,
-- up to their next active date (from which the next span counts), so each active day adds +1 where its
-- span starts and -1 where it ends, and a running sum over the dates gives the window's customers.
with

active_days as (

    select * from {{ ref('int_active_days_collected') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

dates as (

    select * from {{ ref('dim_date') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

platforms as (

    select distinct platform from active_days
    union
    select distinct platform from sessions
    union
    select 'all' as platform

),

activity_combined as (

    select
        event_date,
        platform,
        customer_key
    from active_days

    union all

    select distinct
        event_date,
        'all' as platform,
        customer_key
    from active_days

),

activity_spanned as (

    select
        event_date,
        platform,
        lead(event_date) over (
            partition by platform, customer_key
            order by event_date
        ) as next_active_date
    from activity_combined

),

span_edges as (

    select event_date as edge_date, platform, 1 as dau_delta, 1 as wau_delta, 1 as mau_delta
    from activity_spanned

    union all

    select
        cast({{ dbt.dateadd('day', 1, 'event_date') }} as date) as edge_date,
        platform,
        -1 as dau_delta,
        0 as wau_delta,
        0 as mau_delta
    from activity_spanned

    union all

    select
        case
            when next_active_date < cast({{ dbt.dateadd('day', 7, 'event_date') }} as date) then next_active_date
            else cast({{ dbt.dateadd('day', 7, 'event_date') }} as date)
        end as edge_date,
        platform,
        0 as dau_delta,
        -1 as wau_delta,
        0 as mau_delta
    from activity_spanned

    union all

    select
        case
            when next_active_date < cast({{ dbt.dateadd('day', 30, 'event_date') }} as date) then next_active_date
            else cast({{ dbt.dateadd('day', 30, 'event_date') }} as date)
        end as edge_date,
        platform,
        0 as dau_delta,
        0 as wau_delta,
        -1 as mau_delta
    from activity_spanned

),

edges_summed as (

    select
        edge_date,
        platform,
        sum(dau_delta) as dau_delta,
        sum(wau_delta) as wau_delta,
        sum(mau_delta) as mau_delta
    from span_edges
    group by
        edge_date,
        platform

),

sessions_combined as (

    select
        session_date,
        platform,
        {{ dbt.datediff('session_start_at', 'session_end_at', 'second') }} as dwell_seconds
    from sessions

    union all

    select
        session_date,
        'all' as platform,
        {{ dbt.datediff('session_start_at', 'session_end_at', 'second') }} as dwell_seconds
    from sessions

),

sessions_aggregated as (

    select
        session_date,
        platform,
        count(*) as sessions,
        sum(dwell_seconds) as dwell_seconds
    from sessions_combined
    group by
        session_date,
        platform

),

days_observed as (

    select
        dates.date_day,
        platforms.platform,
        data_end.data_start_date,
        data_end.data_end_date
    from dates
    cross join data_end
    cross join platforms
    where
        dates.date_day >= data_end.data_start_date
        and dates.date_day <= data_end.data_end_date

),

windows_accumulated as (

    select
        days_observed.date_day,
        days_observed.platform,
        days_observed.data_start_date,
        days_observed.data_end_date,
        sum(coalesce(edges_summed.dau_delta, 0)) over (
            partition by days_observed.platform
            order by days_observed.date_day
            rows between unbounded preceding and current row
        ) as dau,
        sum(coalesce(edges_summed.wau_delta, 0)) over (
            partition by days_observed.platform
            order by days_observed.date_day
            rows between unbounded preceding and current row
        ) as wau,
        sum(coalesce(edges_summed.mau_delta, 0)) over (
            partition by days_observed.platform
            order by days_observed.date_day
            rows between unbounded preceding and current row
        ) as mau
    from days_observed
    left join edges_summed
        on
            days_observed.date_day = edges_summed.edge_date
            and days_observed.platform = edges_summed.platform

),

final as (

    select
        windows_accumulated.date_day as event_date,
        windows_accumulated.platform,
        cast(windows_accumulated.dau as integer) as dau,
        cast(windows_accumulated.wau as integer) as wau,
        cast(windows_accumulated.mau as integer) as mau,
        cast(windows_accumulated.dau as double) / nullif(cast(windows_accumulated.mau as double), 0) as stickiness,
        windows_accumulated.date_day
        >= cast({{ dbt.dateadd('day', 6, 'windows_accumulated.data_start_date') }} as date) as is_wau_complete,
        windows_accumulated.date_day
        >= cast({{ dbt.dateadd('day', 29, 'windows_accumulated.data_start_date') }} as date) as is_mau_complete,
        cast(coalesce(sessions_aggregated.sessions, 0) as integer) as sessions,
        cast(coalesce(sessions_aggregated.dwell_seconds, 0) as bigint) as dwell_seconds,
        cast(sessions_aggregated.dwell_seconds as double)
        / nullif(cast(sessions_aggregated.sessions as double), 0) as avg_dwell_seconds,
        windows_accumulated.data_end_date
    from windows_accumulated
    left join sessions_aggregated
        on
            windows_accumulated.date_day = sessions_aggregated.session_date
            and windows_accumulated.platform = sessions_aggregated.platform

)

select * from final
