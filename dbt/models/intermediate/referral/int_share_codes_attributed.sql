{{ config(materialized='table') }}

-- Tracking events that carry a share code (docs/metrics.md "Referral"): a share event's own code
-- (properties.share_code) and the code an invited friend's landing event carries
-- (properties.ref_share_code), with the customer each event belongs to (int_events_attributed's
-- attribution). The raw text is filtered before the JSON is parsed, so the events are read once and
-- only the few coded ones are parsed and joined.
{%- set events = ref('stg_tracking__events') %}
with

attributed as (

    select * from {{ ref('int_events_attributed') }}

),

coded as (

    select
        event_id,
        case
            when event_name = 'share' then nullif({{ ew_json_string('properties', 'share_code') }}, '')
        end as share_code,
        nullif({{ ew_json_string('properties', 'ref_share_code') }}, '') as ref_share_code
    from {{ events }}
    where properties like '%share_code%'

),

final as (

    select
        attributed.event_id,
        attributed.event_name,
        attributed.event_at,
        attributed.event_date,
        attributed.session_id,
        attributed.platform,
        attributed.customer_key,
        coded.share_code,
        coded.ref_share_code
    from coded
    inner join attributed
        on coded.event_id = attributed.event_id
    where
        attributed.customer_key is not null
        and (coded.share_code is not null or coded.ref_share_code is not null)

)

select * from final
