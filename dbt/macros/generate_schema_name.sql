{#- A folder's custom schema (staging, intermediate, marts) is used as is, not prefixed with the
    target schema: the DuckDB file has one schema per layer that Superset and analysts read directly. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
