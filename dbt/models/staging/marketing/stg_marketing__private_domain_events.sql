{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='event_date',
        partition_by=ew_partition_by('event_date'),
        on_schema_change='fail'
    )
}}

-- Incremental by business date, as stg_tracking__events (docs/incremental.md): WeCom's export is
-- event-sized (one row per message and recipient, 26M rows at preset L), and as a view every reader
-- (the private-domain mart, the source-lag mart, three data tests) ranked all of raw's versions again.
-- A run rebuilds the dates that hold a row loaded since the last build, the dates where those rows'
-- events were before (a corrected file may move an event to another day), and the dates of rows
-- whose load a corrected redelivery superseded (gone from raw, so they must go here too).
{#- The raw table is named directly wherever it is read, never through a CTE (DuckDB materializes a
    CTE read more than once: docs/incremental.md). -#}
{%- set source_rel = source('marketing', 'private_domain_events') -%}
{%- set in_scope = 'in_scope' if is_incremental() else source_rel %}
with

{% if is_incremental() %}

{{ ew_raw_events_in_scope_ctes(source_rel, 'private_domain_events') }}

{% endif %}

-- a key loaded more than once keeps its latest delivered version (the contract's rule)
{{ ew_current_versions('current_rows', in_scope, ['event_id']) }},

renamed as (

    select
        event_id,
        external_user_id,
        user_id,
        cast(event_ts as timestamp) as event_at,
        {{ to_business_date('event_ts') }} as event_date,
        channel,
        event_type,
        group_id,
        campaign_id,
        staff_id,
        cast(sent_at as timestamp) as sent_at,
        {{ to_business_date('sent_at') }} as sent_date,

        _file as source_file,
        cast(_row as bigint) as source_row,
        _load_id as load_id,
        cast(_loaded_at as timestamp) as loaded_at,
        {{ ew_built_at() }} as built_at
    from current_rows

)

select * from renamed
{% if is_incremental() %}
where event_date in (select event_date from affected_dates)
{% endif %}
