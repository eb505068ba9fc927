{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='event_date',
        partition_by=ew_partition_by('event_date'),
        on_schema_change='fail',
        post_hook="{{ ew_delete_dates_emptied(ref('int_events_attributed')) }}"
    )
}}

-- Tracking events that carry a share code (docs/metrics.md "Referral"): a share event's own code
-- (properties.share_code) and the code an invited friend's landing event carries
-- (properties.ref_share_code), with the customer each event belongs to (int_events_attributed's
-- attribution). The raw text is filtered before the JSON is parsed, so the events are read once and
-- only the few coded ones are parsed and joined.
-- Incremental by date: the dates int_events_attributed rebuilt since this table's last build (it
-- rebuilds every date staging rebuilt, and dates whose attribution changed), as
-- int_active_days_collected (docs/incremental.md). Few events of a date carry a code, so a rebuilt
-- date can end up with none: the post-hook deletes such a date's old rows.
{%- set events = ref('stg_tracking__events') %}
{%- set attributed_events = ref('int_events_attributed') %}
with

{% if is_incremental() %}

affected_dates as (

    select distinct event_date
    from {{ attributed_events }}
    where built_at > {{ ew_last_built_at() }}

),

{% endif %}

attributed as (

    select * from {{ attributed_events }}
    {% if is_incremental() %}
    where event_date in (select event_date from affected_dates)
        and {{ ew_dates_within('event_date', 'affected_dates', 'event_date') }}
    {% endif %}

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
    {% if is_incremental() %}
        and event_date in (select event_date from affected_dates)
        and {{ ew_dates_within('event_date', 'affected_dates', 'event_date') }}
    {% endif %}

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
        coded.ref_share_code,
        {{ ew_built_at() }} as built_at
    from coded
    inner join attributed
        on coded.event_id = attributed.event_id
    where
        attributed.customer_key is not null
        and (coded.share_code is not null or coded.ref_share_code is not null)

)

select * from final
