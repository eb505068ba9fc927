{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='event_date',
        partition_by=ew_partition_by('event_date'),
        on_schema_change='fail'
    )
}}

-- Session funnel per business date, platform and new/returning customer: sessions reaching each of
-- the five steps (in order within the session, see int_sessions_funnel_steps), with step and overall
-- conversion and drop-off. Payment success counts the order system's payment for logged-in sessions
-- whose payment_success event tracking lost; untracked_sessions reports those apart. One row per
-- step for every day/platform/customer_type that has sessions.
-- Incremental by date: the dates fct_sessions or int_sessions_funnel_steps rebuilt since this
-- table's last build are recomputed whole (macros/incremental.sql).
with

{% if is_incremental() %}

affected_dates as (

    select distinct session_date from {{ ref('fct_sessions') }}
    where built_at > {{ ew_last_built_at() }}

    union

    select distinct session_date from {{ ref('int_sessions_funnel_steps') }}
    where built_at > {{ ew_last_built_at() }}

),

{% endif %}

sessions as (

    select * from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
    where session_date in (select session_date from affected_dates)
        and {{ ew_dates_within('session_date', 'affected_dates', 'session_date') }}
    {% endif %}

),

funnel_steps as (

    select * from {{ ref('int_sessions_funnel_steps') }}
    {% if is_incremental() %}
    where session_date in (select session_date from affected_dates)
        and {{ ew_dates_within('session_date', 'affected_dates', 'session_date') }}
    {% endif %}

),

steps as (

    select 1 as step_order, 'product_view' as step
    union all select 2, 'add_to_cart'
    union all select 3, 'checkout_start'
    union all select 4, 'payment_submit'
    union all select 5, 'payment_success'

),

counted as (

    select
        sessions.session_date as event_date,
        sessions.platform,
        sessions.customer_type,
        count(*) as total_sessions,
        sum(case when funnel_steps.steps_reached >= 1 then 1 else 0 end) as step_1_sessions,
        sum(case when funnel_steps.steps_reached >= 2 then 1 else 0 end) as step_2_sessions,
        sum(case when funnel_steps.steps_reached >= 3 then 1 else 0 end) as step_3_sessions,
        sum(case when funnel_steps.steps_reached >= 4 then 1 else 0 end) as step_4_sessions,
        sum(case when funnel_steps.steps_reached >= 5 then 1 else 0 end) as step_5_sessions,
        sum(case when funnel_steps.is_payment_untracked then 1 else 0 end) as step_5_untracked_sessions
    from sessions
    left join funnel_steps
        on sessions.session_id = funnel_steps.session_id
    group by
        sessions.session_date,
        sessions.platform,
        sessions.customer_type

),

unpivoted as (

    select
        counted.event_date,
        counted.platform,
        counted.customer_type,
        steps.step_order,
        steps.step,
        counted.total_sessions,
        case steps.step_order
            when 1 then counted.step_1_sessions
            when 2 then counted.step_2_sessions
            when 3 then counted.step_3_sessions
            when 4 then counted.step_4_sessions
            when 5 then counted.step_5_sessions
        end as sessions,
        case steps.step_order
            when 2 then counted.step_1_sessions
            when 3 then counted.step_2_sessions
            when 4 then counted.step_3_sessions
            when 5 then counted.step_4_sessions
        end as previous_step_sessions,
        case when steps.step_order = 5 then counted.step_5_untracked_sessions else 0 end as untracked_sessions,
        counted.step_1_sessions as first_step_sessions
    from counted
    cross join steps

),

final as (

    select
        event_date,
        platform,
        customer_type,
        step_order,
        step,
        cast(sessions as bigint) as sessions,
        cast(sessions as double) / nullif(cast(previous_step_sessions as double), 0) as step_conversion,
        cast(sessions as double) / nullif(cast(first_step_sessions as double), 0) as overall_conversion,
        1 - cast(sessions as double) / nullif(cast(previous_step_sessions as double), 0) as drop_off,
        cast(previous_step_sessions as bigint) as previous_step_sessions,
        cast(total_sessions as bigint) as total_sessions,
        cast(untracked_sessions as bigint) as untracked_sessions,
        {{ ew_built_at() }} as built_at
    from unpivoted

)

select * from final
