{#- Event properties are JSON text (the raw contract keeps them as a string). Reading one key is
    engine-specific SQL, hence adapter.dispatch, like the business-time macros; a value that is not
    JSON, or not an object with the key, reads as null. -#}

{% macro ew_json_string(column, key) -%}
    {%- if not modules.re.match('^[A-Za-z0-9_]+$', key) -%}
        {{ exceptions.raise_compiler_error("ew_json_string: key must be a plain JSON key, got '" ~ key ~ "'") }}
    {%- endif -%}
    {{ return(adapter.dispatch('ew_json_string', 'ecom_warehouse')(column, key)) }}
{%- endmacro %}

{% macro default__ew_json_string(column, key) -%}
    {{ exceptions.raise_compiler_error(
        "ew_json_string is not implemented for adapter '" ~ adapter.type() ~ "': add a macro "
        ~ adapter.type() ~ "__ew_json_string(column, key) in macros/json.sql"
    ) }}
{%- endmacro %}

{% macro duckdb__ew_json_string(column, key) -%}
    {#- Malformed text is null, as on Spark: DuckDB's reader raises on it, and the raw suite only warns. -#}
    case when json_valid({{ column }}) then json_extract_string({{ column }}, '$.{{ key }}') end
{%- endmacro %}

{% macro spark__ew_json_string(column, key) -%}
    get_json_object({{ column }}, '$.{{ key }}')
{%- endmacro %}
