{#- dbt's built-in `unique` (a key held by more than one row; nulls are not keys), counted first as
    64-bit hashes: grouping 88M event ids as strings spills gigabytes at preset L, grouping their
    hashes does not. Only the keys whose hash is repeated are then grouped as themselves, so two keys
    that merely share a hash are never reported. A test of this name in the project replaces dbt's. -#}
{% test unique(model, column_name) %}

{%- set key_hash = ew_key_hash([column_name]) %}
select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
    and {{ key_hash }} in (
        select {{ key_hash }}
        from {{ model }}
        where {{ column_name }} is not null
        group by {{ key_hash }}
        having count(*) > 1
    )
group by {{ column_name }}
having count(*) > 1

{% endtest %}
