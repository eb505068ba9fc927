-- Freshness of every contract source (macro contract_sources, rendered from lib/contract.py): its
-- newest data time (the source's loaded_at_field, the same column dbt's source freshness reads; raw
-- timestamps are UTC), rows, SLA (contract_sla_minutes: EW_SLA_<SOURCE>_MIN overriding) and age in
-- minutes. A view: the age is taken when it is read, i.e. when the cross_freshness suite validates it.
with

{% for system, name, loaded_at_field in contract_sources() %}
{{ name }}_latest as (

    select
        '{{ name }}' as source,
        max({{ loaded_at_field }}) as latest_data_at,
        count(*) as row_count,
        {{ contract_sla_minutes(name) }} as sla_minutes
    from {{ source(system, name) }}

),

{% endfor %}
latest as (

    {% for system, name, loaded_at_field in contract_sources() %}
    select * from {{ name }}_latest
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

aged as (

    select
        source,
        cast(latest_data_at as timestamp) as latest_data_at,
        row_count,
        sla_minutes,
        {{ dbt.datediff("cast(latest_data_at as timestamp)", ew_utc_now(), "millisecond") }} / 60000.0
        as age_minutes
    from latest

),

judged as (

    select
        source,
        latest_data_at,
        row_count,
        age_minutes,
        sla_minutes,
        coalesce(age_minutes <= sla_minutes, false) as within_sla,
        coalesce(
            cast(cast(round(age_minutes) as bigint) as {{ dbt.type_string() }}) || ' min old', 'missing'
        ) as age_label
    from aged

),

stale_sources_named as (

    select
        source,
        latest_data_at,
        row_count,
        age_minutes,
        sla_minutes,
        within_sla,
        case
            when not within_sla
                then source || ': newest data ' || age_label
                || ', SLA ' || cast(sla_minutes as {{ dbt.type_string() }}) || ' min'
        end as stale_source
    from judged

)

select * from stale_sources_named
