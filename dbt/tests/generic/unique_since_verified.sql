{#- `unique` for the key of an incremental model, at the cost of what changed: only keys held by a
    row built after the last dbt build whose tests all passed (ew_verified_at(), a mark the pipeline
    keeps in the warehouse) are counted, against the whole table. A duplicate always involves a row
    built since then, or it would have failed that build; a failed build does not move the mark, so
    a duplicate keeps failing until fixed. Without a mark (first build, --full-refresh, changed
    project, dbt run by hand) every key is counted. Counting all 17.7M event ids took 4-5 s per
    model on every one-day refresh at preset M. -#}
{% test unique_since_verified(model, column_name) %}

{%- set verified_at = ew_verified_at() %}
{%- set key_hash = ew_key_hash([column_name]) %}
select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
{%- if verified_at is not none %}
where {{ column_name }} in (
    select {{ column_name }}
    from {{ model }}
    where built_at > {{ verified_at }}
)
{%- else %}
{#- every key: as dbt's `unique` here (unique.sql), their hashes first, and only the keys whose hash is
    repeated grouped as themselves -#}
where {{ key_hash }} in (
    select {{ key_hash }}
    from {{ model }}
    group by {{ key_hash }}
    having count(*) > 1
)
{%- endif %}
group by {{ column_name }}
having count(*) > 1

{% endtest %}
