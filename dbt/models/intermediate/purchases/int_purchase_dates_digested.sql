{{
    config(
        materialized='incremental',
        incremental_strategy=ew_incremental_strategy(),
        unique_key='input_date',
        partition_by=ew_partition_by('input_date'),
        on_schema_change='fail',
        post_hook="{{ ew_delete_dates_gone('input_date', ref('dim_date'), 'date_day') }}"
    )
}}

-- One row per business date of the calendar: a digest of the purchases the customer-level as-of
-- models read from that date (valid orders: customer, order and net revenue; valid order lines:
-- customer and category), and built_at, the build that last saw it change. fct_orders and
-- fct_order_items are rebuilt whole on every run, so their rows cannot say what changed; this table
-- can: a new order, a refund, a corrected file, an order moved to another date or a customer merged
-- by phone changes the digest of the dates involved and of no other (docs/incremental.md).
-- An empty date's digests are 0; a date that leaves the calendar (dim_date) is deleted by the
-- post-hook. The digest is an xor of well-mixed 64-bit row hashes (ew_row_digest): a change is
-- missed only if the changed rows' hashes happen to cancel out, about one chance in 2^64.
with

order_digests as (

    select
        order_date as input_date,
        bit_xor({{ ew_row_digest(['customer_key', 'order_id', 'net_revenue']) }}) as order_digest
    from {{ ref('fct_orders') }}
    where is_valid
    group by order_date

),

category_digests as (

    select
        order_date as input_date,
        bit_xor({{ ew_row_digest(['customer_key', 'category_l1']) }}) as category_digest
    from (
        select distinct
            order_date,
            customer_key,
            category_l1
        from {{ ref('fct_order_items') }}
        where is_valid
            and category_l1 is not null
    ) as customer_categories
    group by order_date

),

current_digests as (

    select
        dates.date_day as input_date,
        coalesce(order_digests.order_digest, 0) as order_digest,
        coalesce(category_digests.category_digest, 0) as category_digest
    from {{ ref('dim_date') }} as dates
    left join order_digests
        on dates.date_day = order_digests.input_date
    left join category_digests
        on dates.date_day = category_digests.input_date

)

{% if is_incremental() %}
,

changed as (

    -- the dates whose digest differs from the stored one, and new dates
    select current_digests.*
    from current_digests
    left join {{ this }} as stored
        on current_digests.input_date = stored.input_date
    where stored.input_date is null
        or stored.order_digest != current_digests.order_digest
        or stored.category_digest != current_digests.category_digest

)
{% endif %}

select
    input_date,
    order_digest,
    category_digest,
    {{ ew_built_at() }} as built_at
from {{ 'changed' if is_incremental() else 'current_digests' }}
