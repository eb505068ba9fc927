-- One row: the data end date that every completeness flag and trailing window of the purchase marts
-- is measured against. It is the latest business date with an order, unless var as_of_date pins it
-- (a rerun as of a past date); purchases after it are left out of the purchase marts.
{%- set as_of_date = var('as_of_date', none) %}
{%- if as_of_date is not none and not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of_date | string) %}
    {{ exceptions.raise_compiler_error("var as_of_date must be a date YYYY-MM-DD, got '" ~ as_of_date ~ "'") }}
{%- endif %}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

bounds as (

    select
        min(order_date) as min_order_date,
        max(order_date) as max_order_date
    from orders

),

final as (

    select
        {%- if as_of_date is not none %}
        cast('{{ as_of_date }}' as date) as data_end_date,
        {%- else %}
        max_order_date as data_end_date,
        {%- endif %}
        min_order_date,
        max_order_date,
        {{ 'true' if as_of_date is not none else 'false' }} as is_as_of_override
    from bounds

)

select * from final
