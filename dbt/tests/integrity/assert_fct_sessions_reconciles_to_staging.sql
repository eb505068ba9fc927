{{ config(meta={'dagster': {'ref': {'name': 'fct_sessions'}}}) }}

-- Integrity: fct_sessions against staging. Every staged event belongs to exactly one session row (its
-- session_id, which the contract requires), so the sessions are the staged session ids, their events add
-- up to the staged events, and the sessions with a payment_success event are the same on both sides.
-- Nothing is excluded: anonymous sessions (never logged in) are sessions too. One row per measure that
-- differs.
with

staged_events as (

    select * from {{ ref('stg_tracking__events') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

staged_totals as (

    select
        count(distinct session_id) as n_sessions,
        count(*) as n_events,
        count(distinct case when event_name = 'payment_success' then session_id end) as n_paid_sessions
    from staged_events

),

mart_totals as (

    select
        count(*) as n_sessions,
        count(distinct session_id) as n_session_ids,
        coalesce(sum(n_events), 0) as n_events,
        coalesce(sum(case when has_payment_success then 1 else 0 end), 0) as n_paid_sessions
    from sessions

),

compared as (

    select
        'sessions' as measure,
        staged_totals.n_sessions as staged_value,
        mart_totals.n_sessions as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'distinct session ids' as measure,
        staged_totals.n_sessions as staged_value,
        mart_totals.n_session_ids as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'events' as measure,
        staged_totals.n_events as staged_value,
        mart_totals.n_events as mart_value
    from staged_totals
    cross join mart_totals

    union all

    select
        'sessions with payment_success' as measure,
        staged_totals.n_paid_sessions as staged_value,
        mart_totals.n_paid_sessions as mart_value
    from staged_totals
    cross join mart_totals

),

mismatched as (

    select
        measure,
        staged_value,
        mart_value
    from compared
    where staged_value <> mart_value

)

select * from mismatched
