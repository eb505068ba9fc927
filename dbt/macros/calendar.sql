{#- Calendar helpers for dim_date. Engine-specific pieces go through adapter.dispatch. -#}

{% macro iso_day_of_week(column) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'ecom_warehouse')(column)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(column) -%}
    {#- 1 = Monday .. 7 = Sunday -#}
    cast(extract(isodow from {{ column }}) as integer)
{%- endmacro %}

{% macro spark__iso_day_of_week(column) -%}
    {#- Spark's dayofweek is 1 = Sunday .. 7 = Saturday -#}
    cast(((dayofweek({{ column }}) + 5) % 7) + 1 as integer)
{%- endmacro %}


{% macro day_numbers(n_digits=5) -%}
    {#- 0 .. 10^n_digits - 1 from cross-joined digit tables: portable, no generate_series. -#}
    select
        {% for i in range(n_digits) -%}
        d{{ i }}.n * {{ 10 ** i }}{% if not loop.last %} + {% endif %}
        {%- endfor %} as day_number
    from
        {% for i in range(n_digits) -%}
        (
            select 0 as n union all select 1 union all select 2 union all select 3 union all select 4
            union all select 5 union all select 6 union all select 7 union all select 8 union all select 9
        ) as d{{ i }}{% if not loop.last %} cross join {% endif %}
        {%- endfor %}
{%- endmacro %}


{% macro promotion_holiday_list() -%}
    {#- var promotion_holidays as a SQL list of string literals (the seed's Chinese holiday names). -#}
    {%- for name in var('promotion_holidays') %}'{{ name }}'{{ ', ' if not loop.last }}{% endfor -%}
{%- endmacro %}
