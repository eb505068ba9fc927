{#- Statistics for the experiment marts, in plain portable SQL (exp, abs, sqrt only): DuckDB has no
    normal CDF or erf builtin and Spark SQL has none either, so both use the same approximation. -#}

{#- Standard normal CDF Phi(x) of a double expression, via erf(|x|/sqrt(2)) by Abramowitz & Stegun
    7.1.26 (|error of erf| <= 1.5e-7, so |error of Phi| <= 7.5e-8 for every x; tests/test_marts_operations.py
    checks it against scipy). -#}
{% macro normal_cdf(x) -%}
    {{ return(adapter.dispatch('normal_cdf', 'ecom_warehouse')(x)) }}
{%- endmacro %}

{% macro default__normal_cdf(x) -%}
    {%- set t = '(1.0 / (1.0 + 0.3275911 * abs(cast(' ~ x ~ ' as double)) / sqrt(2.0)))' -%}
    (0.5 * (1.0 + sign(cast({{ x }} as double)) * (1.0 - (
        {{ t }} * (0.254829592 + {{ t }} * (-0.284496736 + {{ t }} * (1.421413741
        + {{ t }} * (-1.453152027 + {{ t }} * 1.061405429))))
    ) * exp(-(cast({{ x }} as double) * cast({{ x }} as double)) / 2.0))))
{%- endmacro %}


{#- Two-sided p-value of a standard normal test statistic z: 2 * (1 - Phi(|z|)). -#}
{% macro two_sided_p_value(z) -%}
    (2.0 * (1.0 - {{ normal_cdf('abs(' ~ z ~ ')') }}))
{%- endmacro %}
