{{ config(meta={'dagster': {'ref': {'name': 'mart_active_users_daily'}}}) }}

-- Integrity: the active-user windows of mart_active_users_daily nest and add up. A day's actives are in
-- its week, a week's in its month (dau <= wau <= mau), and on every date 'all' counts each customer once:
-- no more than the platforms' sum and no fewer than the largest platform. The running sums of span edges
-- break these first when an edge lands on the wrong date. One row per date and platform that breaks one.
with

active_users as (

    select * from {{ ref('mart_active_users_daily') }}

),

platforms_summed as (

    select
        event_date,
        sum(dau) as dau_sum,
        max(dau) as dau_max,
        sum(mau) as mau_sum,
        max(mau) as mau_max
    from active_users
    where platform <> 'all'
    group by event_date

),

windows_broken as (

    select
        event_date,
        platform,
        'windows do not nest' as problem
    from active_users
    where not (dau <= wau and wau <= mau and dau >= 0)

),

all_broken as (

    select
        active_users.event_date,
        active_users.platform,
        'all is not the platforms counted once' as problem
    from active_users
    inner join platforms_summed
        on active_users.event_date = platforms_summed.event_date
    where
        active_users.platform = 'all'
        and (
            active_users.dau > platforms_summed.dau_sum
            or active_users.dau < platforms_summed.dau_max
            or active_users.mau > platforms_summed.mau_sum
            or active_users.mau < platforms_summed.mau_max
        )

),

final as (

    select * from windows_broken
    union all
    select * from all_broken

)

select * from final
