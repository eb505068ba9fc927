{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='event_date',
        partition_by=ew_partition_by('event_date'),
        on_schema_change='fail'
    )
}}

-- Tracking events per business date, platform and one behaviour dimension (docs/metrics.md "Behaviour"):
-- hour of the day (business time), event name, a product view's source, a payment submit's method and
-- a search's keyword. Events are read once and counted at the finest of these grains, then the small
-- counts are unpivoted, so each dimension's rows of a date and platform add up to its events.
-- Incremental by date: the dates staging rebuilt since this table's last build are recomputed whole.
{%- set events = ref('stg_tracking__events') %}
with

{% if is_incremental() %}

affected_dates as (

    select distinct event_date
    from {{ events }}
    where built_at > {{ ew_last_built_at() }}

),

{% endif %}

events_described as (

    select
        event_date,
        platform,
        event_name,
        cast(extract(hour from {{ to_business_ts('event_at') }}) as integer) as event_hour,
        case event_name
            when 'product_view' then {{ ew_json_string('properties', 'source') }}
            when 'payment_submit' then {{ ew_json_string('properties', 'pay_method') }}
            when 'search' then {{ ew_json_string('properties', 'keyword') }}
        end as property_value
    from {{ events }}
    {% if is_incremental() %}
    where event_date in (select event_date from affected_dates)
        and {{ ew_dates_within('event_date', 'affected_dates', 'event_date') }}
    {% endif %}

),

events_counted as (

    select
        event_date,
        platform,
        event_name,
        event_hour,
        property_value,
        count(*) as events
    from events_described
    group by
        event_date,
        platform,
        event_name,
        event_hour,
        property_value

),

dimensions_unpivoted as (

    select
        event_date,
        platform,
        'hour' as dimension,
        lpad(cast(event_hour as {{ dbt.type_string() }}), 2, '0') as dimension_value,
        event_hour >= {{ var('evening_start_hour') }} as is_evening,
        events
    from events_counted

    union all

    select
        event_date,
        platform,
        'event_name' as dimension,
        event_name as dimension_value,
        cast(null as boolean) as is_evening,
        events
    from events_counted

    union all

    select
        event_date,
        platform,
        case event_name
            when 'product_view' then 'view_source'
            when 'payment_submit' then 'pay_method'
            else 'search_keyword'
        end as dimension,
        coalesce(property_value, 'unknown') as dimension_value,
        cast(null as boolean) as is_evening,
        events
    from events_counted
    where event_name in ('product_view', 'payment_submit', 'search')

),

dimensions_aggregated as (

    select
        event_date,
        platform,
        dimension,
        dimension_value,
        is_evening,
        sum(events) as events
    from dimensions_unpivoted
    group by
        event_date,
        platform,
        dimension,
        dimension_value,
        is_evening

),

final as (

    select
        event_date,
        platform,
        dimension,
        dimension_value,
        is_evening,
        cast(events as bigint) as events,
        {{ ew_built_at() }} as built_at
    from dimensions_aggregated

)

select * from final
