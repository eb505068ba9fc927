{#- Composite primary key check: no combination of the given columns appears more than once. -#}
{% test unique_combination(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(',\n    ') }},
    count(*) as n_rows
from {{ model }}
group by
    {{ combination_of_columns | join(',\n    ') }}
having count(*) > 1

{% endtest %}
