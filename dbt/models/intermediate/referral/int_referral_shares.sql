{{ config(materialized='table') }}

-- One row per share code (分享码, docs/metrics.md "Referral"): a code shared twice counts from its
-- earliest share event, whose customer is the sharer. The one definition of a share for
-- int_referrals_attributed (a referred customer's referrer) and mart_referral_monthly (shares and
-- sharers by month and platform).
with

coded as (

    select * from {{ ref('int_share_codes_attributed') }}

),

earliest as (

    select
        share_code,
        {{ ew_value_at_min('event_id', ['event_at', 'event_id']) }} as share_event_id,
        min(event_at) as share_at,
        {{ ew_value_at_min('event_date', ['event_at', 'event_id']) }} as share_date,
        {{ ew_value_at_min('customer_key', ['event_at', 'event_id']) }} as referrer_customer_key,
        {{ ew_value_at_min('platform', ['event_at', 'event_id']) }} as share_platform
    from coded
    where share_code is not null
    group by share_code

)

select * from earliest
