{#- The raw contract's rule for a key loaded more than once, in one place: the row from the latest
    file wins, by the date in the file name, then the load time, then the row number. Rank 1 is the
    current version; every staging model that dedupes keeps its rank-1 rows. -#}
{% macro latest_version_rank(key_columns) -%}
    row_number() over (
        partition by {{ key_columns | join(', ') }}
        order by
            _file_date desc nulls last,
            _loaded_at desc nulls last,
            _row desc nulls last
    )
{%- endmacro %}
