{{ config(materialized='table') }}

-- One row per referred customer (被邀请用户, docs/metrics.md "Referral"): a customer whose first session
-- (the session of their earliest tracking event) carries a ref_share_code matching an earlier share of
-- another customer (int_referral_shares). Several valid codes: the earliest share wins. Self-referral,
-- a code matching no share and a share not before the landing event are ignored. With the customer's
-- first valid order (int_buyers_summarized) and whether it fell on days 0..30 after the arrival date.
with

coded as (

    select * from {{ ref('int_share_codes_attributed') }}

),

attributed as (

    select * from {{ ref('int_events_attributed') }}

),

buyers as (

    select * from {{ ref('int_buyers_summarized') }}

),

data_end as (

    select * from {{ ref('int_data_end_dates_resolved') }}

),

shares as (

    select * from {{ ref('int_referral_shares') }}

),

landings as (

    select * from coded
    where ref_share_code is not null

),

first_events as (

    -- only the customers with a landing code: their earliest event is their arrival
    select
        customer_key,
        min(event_at) as arrival_at,
        {{ ew_value_at_min('session_id', ['event_at', 'event_id']) }} as first_session_id,
        {{ ew_value_at_min('platform', ['event_at', 'event_id']) }} as arrival_platform
    from attributed
    where customer_key in (select customer_key from landings)
    group by customer_key

),

candidates as (

    select
        landings.customer_key,
        first_events.arrival_at,
        first_events.arrival_platform,
        shares.referrer_customer_key,
        shares.share_event_id,
        shares.share_at,
        shares.share_date,
        shares.share_platform,
        row_number() over (
            partition by landings.customer_key order by shares.share_at, shares.share_event_id
        ) as share_rank
    from landings
    inner join first_events
        on
            landings.customer_key = first_events.customer_key
            and landings.session_id = first_events.first_session_id
    inner join shares
        on landings.ref_share_code = shares.share_code
    where
        shares.referrer_customer_key <> landings.customer_key
        and shares.share_at < landings.event_at

),

final as (

    select
        candidates.customer_key,
        candidates.arrival_at,
        {{ to_business_date('candidates.arrival_at') }} as arrival_date,
        candidates.arrival_platform,
        candidates.referrer_customer_key,
        candidates.share_event_id,
        candidates.share_at,
        candidates.share_date,
        candidates.share_platform,
        buyers.first_purchase_date,
        coalesce(
            buyers.first_purchase_date >= {{ to_business_date('candidates.arrival_at') }}
            and buyers.first_purchase_date
            <= cast({{ dbt.dateadd('day', 30, to_business_date('candidates.arrival_at')) }} as date),
            false
        ) as is_converted_30d,
        cast({{ dbt.dateadd('day', 30, to_business_date('candidates.arrival_at')) }} as date)
        <= data_end.data_end_date as is_observed_30d
    from candidates
    left join buyers
        on candidates.customer_key = buyers.customer_key
    cross join data_end
    where candidates.share_rank = 1

)

select * from final
