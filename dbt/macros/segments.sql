{#- Helpers for the funnel, activity-retention and segment marts. -#}

{#- The date a mart is computed as of: var `as_of_date` (YYYY-MM-DD) when set, else `default_sql`,
    the SQL expression of the data end date (latest business date in the data). -#}
{% macro as_of_date_or(default_sql) -%}
    {%- set as_of = var('as_of_date', none) -%}
    {%- if as_of is none or (as_of | string | trim) == '' -%}
        {{ default_sql }}
    {%- else -%}
        {%- set as_of = as_of | string | trim -%}
        {#- Spliced into SQL as a literal: accept a plain ISO date only. -#}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of) -%}
            {{ exceptions.raise_compiler_error("var as_of_date must be a date YYYY-MM-DD, got '" ~ as_of ~ "'") }}
        {%- endif -%}
        cast('{{ as_of }}' as date)
    {%- endif -%}
{%- endmacro %}
