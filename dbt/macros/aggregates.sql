{#- Aggregates whose spelling differs between engines. -#}

{% macro ew_value_at_max(value, order_columns) -%}
    {{ return(adapter.dispatch('ew_value_at_max', 'ecom_warehouse')(value, order_columns)) }}
{%- endmacro %}

{% macro duckdb__ew_value_at_max(value, order_columns) -%}
    {#- arg_max over a struct compares its fields left to right -#}
    arg_max({{ value }}, struct_pack(
        {%- for column in order_columns %}k{{ loop.index }} := {{ column }}{{ ", " if not loop.last }}{% endfor -%}
    ))
{%- endmacro %}

{% macro default__ew_value_at_max(value, order_columns) -%}
    {#- Spark 3+: max_by, with a struct compared field by field -#}
    max_by({{ value }}, struct({{ order_columns | join(", ") }}))
{%- endmacro %}

{#- The value of the row with the smallest order_columns (compared left to right): the earliest event's session. -#}
{% macro ew_value_at_min(value, order_columns) -%}
    {{ return(adapter.dispatch('ew_value_at_min', 'ecom_warehouse')(value, order_columns)) }}
{%- endmacro %}

{% macro duckdb__ew_value_at_min(value, order_columns) -%}
    arg_min({{ value }}, struct_pack(
        {%- for column in order_columns %}k{{ loop.index }} := {{ column }}{{ ", " if not loop.last }}{% endfor -%}
    ))
{%- endmacro %}

{% macro default__ew_value_at_min(value, order_columns) -%}
    min_by({{ value }}, struct({{ order_columns | join(", ") }}))
{%- endmacro %}
