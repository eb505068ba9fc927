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

{#- A 64-bit hash of a key's columns, to group and look up keys as one number instead of as strings
    (at L, grouping 88M event ids as strings spilled gigabytes). Two keys may share a hash: only
    use it where that costs time, never a wrong row. -#}
{% macro ew_key_hash(key_columns) -%}
    {{ return(adapter.dispatch('ew_key_hash', 'ecom_warehouse')(key_columns)) }}
{%- endmacro %}

{% macro duckdb__ew_key_hash(key_columns) -%}
    hash({{ key_columns | join(', ') }})
{%- endmacro %}

{% macro default__ew_key_hash(key_columns) -%}
    xxhash64({{ key_columns | join(', ') }})
{%- endmacro %}

{#- A 64-bit hash of a row's columns for an xor digest of many rows (int_purchase_dates_digested).
    DuckDB's hash() of several columns xors the last column's hash in unmixed, so in an xor of such
    hashes two rows' changes of the last column can cancel (two orders both refunded from 100 to 60
    on one date); hashing the hash again mixes every column into every bit. -#}
{% macro ew_row_digest(columns) -%}
    {{ return(adapter.dispatch('ew_row_digest', 'ecom_warehouse')(columns)) }}
{%- endmacro %}

{% macro duckdb__ew_row_digest(columns) -%}
    hash(hash({{ columns | join(', ') }}))
{%- endmacro %}

{% macro default__ew_row_digest(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{#- The current version of every key in `relation` (all its columns), as two CTEs of a model's
    `with`, the last named `name`: the row of latest_version_rank 1 for a key loaded more than once,
    and every other row as it is. Almost every key arrives once, so only the rows whose key hash is
    repeated are ranked; ranking the whole table (a window over all rows and columns: a sort of
    25.7M WeCom events at L) is what this replaces. A key that merely shares its hash with another
    is ranked alone and keeps its one row. `relation` is read three times: name a table, or a CTE
    only if it is small (DuckDB materializes a CTE read more than once; the events' incremental
    scope is one). A source that re-sends most of its keys (an order at every status change:
    `repeats='common'`) ranks the whole table in one window instead, which is then cheaper (at L:
    5.6M order rows for 2.0M orders, 5.6-6.0 s ranked whole against 6.8-7.2 s by hash first). -#}
{% macro ew_current_versions(name, relation, key_columns, repeats='rare') -%}
{%- if repeats not in ('rare', 'common') -%}
    {{ exceptions.raise_compiler_error("ew_current_versions: repeats is 'rare' or 'common', got '" ~ repeats ~ "'") }}
{%- endif -%}
{%- if repeats == 'common' -%}
{{ name }} as (

    select * from {{ relation }}
    qualify {{ latest_version_rank(key_columns) }} = 1

)
{%- else -%}
{%- set key_hash = ew_key_hash(key_columns) -%}
{{ name }}__repeated_hashes as (

    select {{ key_hash }} as key_hash
    from {{ relation }}
    group by {{ key_hash }}
    having count(*) > 1

),

{{ name }} as (

    select * from {{ relation }}
    where {{ key_hash }} not in (select key_hash from {{ name }}__repeated_hashes)

    union all

    select * from {{ relation }}
    where {{ key_hash }} in (select key_hash from {{ name }}__repeated_hashes)
    qualify {{ latest_version_rank(key_columns) }} = 1

)
{%- endif -%}
{%- endmacro %}
