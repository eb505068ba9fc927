{#- Raw timestamps are UTC. These macros give the wall-clock time and calendar date in the business
    time zone (var business_timezone, from EW_TIMEZONE), the one place where that conversion lives.
    Each engine needs its own SQL, hence adapter.dispatch. -#}

{% macro business_timezone() -%}
    {%- set tz = var('business_timezone') | trim -%}
    {#- The zone is spliced into SQL as a literal: accept IANA names only (Asia/Shanghai, UTC, Etc/GMT-8). -#}
    {%- if not modules.re.match('^[A-Za-z0-9_+/-]+$', tz) -%}
        {{ exceptions.raise_compiler_error("business_timezone must be an IANA time zone name, got '" ~ tz ~ "'") }}
    {%- endif -%}
    {{- return(tz) -}}
{%- endmacro %}


{% macro to_business_ts(column) -%}
    {{ return(adapter.dispatch('to_business_ts', 'ecom_warehouse')(column, business_timezone())) }}
{%- endmacro %}

{% macro default__to_business_ts(column, timezone) -%}
    {{ exceptions.raise_compiler_error(
        "to_business_ts is not implemented for adapter '" ~ adapter.type() ~ "': add a macro "
        ~ adapter.type() ~ "__to_business_ts(column, timezone) in macros/business_time.sql"
    ) }}
{%- endmacro %}

{% macro duckdb__to_business_ts(column, timezone) -%}
    {#- Inner call reads the naive value as UTC (-> timestamptz), outer one renders it in the zone. -#}
    timezone('{{ timezone }}', timezone('UTC', {{ column }}))
{%- endmacro %}

{% macro spark__to_business_ts(column, timezone) -%}
    from_utc_timestamp({{ column }}, '{{ timezone }}')
{%- endmacro %}


{% macro to_business_date(column) -%}
    {{ return(adapter.dispatch('to_business_date', 'ecom_warehouse')(column, business_timezone())) }}
{%- endmacro %}

{% macro default__to_business_date(column, timezone) -%}
    {{ exceptions.raise_compiler_error(
        "to_business_date is not implemented for adapter '" ~ adapter.type() ~ "': add a macro "
        ~ adapter.type() ~ "__to_business_date(column, timezone) in macros/business_time.sql"
    ) }}
{%- endmacro %}

{% macro duckdb__to_business_date(column, timezone) -%}
    cast(timezone('{{ timezone }}', timezone('UTC', {{ column }})) as date)
{%- endmacro %}

{% macro spark__to_business_date(column, timezone) -%}
    to_date(from_utc_timestamp({{ column }}, '{{ timezone }}'))
{%- endmacro %}


{% macro ew_utc_now() -%}
    {#- The current time as a naive UTC timestamp, comparable with raw timestamps (UTC by contract).
        In a view it is evaluated when the view is read, so an age computed with it is the age then. -#}
    {{ return(adapter.dispatch('ew_utc_now', 'ecom_warehouse')()) }}
{%- endmacro %}

{% macro default__ew_utc_now() -%}
    {{ exceptions.raise_compiler_error(
        "ew_utc_now is not implemented for adapter '" ~ adapter.type() ~ "': add a macro "
        ~ adapter.type() ~ "__ew_utc_now() in macros/business_time.sql"
    ) }}
{%- endmacro %}

{% macro duckdb__ew_utc_now() -%}
    cast(timezone('UTC', now()) as timestamp)
{%- endmacro %}

{% macro spark__ew_utc_now() -%}
    to_utc_timestamp(current_timestamp(), current_timezone())
{%- endmacro %}
