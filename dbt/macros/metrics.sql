{#- Helpers for the purchase metric marts (repurchase, LTV, cohort retention). Engine-specific SQL
    goes through adapter.dispatch, like business_time.sql. -#}

{#- Continuous percentile (linear interpolation between the two nearest values) of a numeric
    expression, as an aggregate; null over an empty group. `fraction` is a literal in [0, 1]. -#}
{% macro percentile_cont(expression, fraction) -%}
    {{ return(adapter.dispatch('percentile_cont', 'ecom_warehouse')(expression, fraction)) }}
{%- endmacro %}

{% macro default__percentile_cont(expression, fraction) -%}
    {{ exceptions.raise_compiler_error(
        "percentile_cont is not implemented for adapter '" ~ adapter.type() ~ "': add a macro "
        ~ adapter.type() ~ "__percentile_cont(expression, fraction) in macros/metrics.sql"
    ) }}
{%- endmacro %}

{% macro duckdb__percentile_cont(expression, fraction) -%}
    quantile_cont(cast({{ expression }} as double), {{ fraction }})
{%- endmacro %}

{% macro spark__percentile_cont(expression, fraction) -%}
    {#- Spark's percentile (not percentile_approx) is exact and interpolates like quantile_cont. -#}
    percentile(cast({{ expression }} as double), {{ fraction }})
{%- endmacro %}


{#- First day of the period of length `grain` (week = ISO week from Monday, month, quarter) holding
    the date `column`, as a date. -#}
{% macro period_start(grain, column) -%}
    cast({{ dbt.date_trunc(grain, column) }} as date)
{%- endmacro %}


{#- Last day of the period (week, month, quarter) that starts on the date `period_start_column`. -#}
{% macro period_end(grain, period_start_column) -%}
    {%- if grain == 'week' -%}
        cast({{ dbt.dateadd('day', 6, period_start_column) }} as date)
    {%- elif grain == 'month' -%}
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, period_start_column)) }} as date)
    {%- elif grain == 'quarter' -%}
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 3, period_start_column)) }} as date)
    {%- else -%}
        {{ exceptions.raise_compiler_error("period_end: grain must be week, month or quarter, got '" ~ grain ~ "'") }}
    {%- endif -%}
{%- endmacro %}


{#- Start of the k-th period (week or month) after the period starting on `period_start_column`. -#}
{% macro add_periods(grain, k, period_start_column) -%}
    {%- if grain == 'week' -%}
        cast({{ dbt.dateadd('day', '7 * (' ~ k ~ ')', period_start_column) }} as date)
    {%- elif grain == 'month' -%}
        cast({{ dbt.dateadd('month', k, period_start_column) }} as date)
    {%- else -%}
        {{ exceptions.raise_compiler_error("add_periods: grain must be week or month, got '" ~ grain ~ "'") }}
    {%- endif -%}
{%- endmacro %}


{#- Whole periods (week or month) from the period starting on `from_start` to the one starting on
    `to_start`; both must be period starts (Mondays, first days of months). -#}
{% macro periods_between(grain, from_start, to_start) -%}
    {%- if grain == 'week' -%}
        cast({{ dbt.datediff(from_start, to_start, 'day') }} / 7 as integer)
    {%- elif grain == 'month' -%}
        cast({{ dbt.datediff(from_start, to_start, 'month') }} as integer)
    {%- else -%}
        {{ exceptions.raise_compiler_error("periods_between: grain must be week or month, got '" ~ grain ~ "'") }}
    {%- endif -%}
{%- endmacro %}


{#- Share as a double: numerator / denominator, null when the denominator is 0. -#}
{% macro safe_share(numerator, denominator) -%}
    cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0)
{%- endmacro %}
