-- Data quality per business date: each check measured per day where its suite reads, and judged
-- against the suite's own limits (seed quality_thresholds, rendered from expectations/cross_*.json),
-- so a limit changed in a suite changes this table too. The suites of order lines and pay amounts
-- validate only new loads; here every raw row counts, by the order's business date. Freshness is
-- one row per source on the build's business date: its age is taken when this table is built.
with

thresholds as (

    select * from {{ ref('quality_thresholds') }}

),

payment_tracking as (

    select * from {{ ref('int_quality__payment_tracking') }}

),

events_attributed as (

    select * from {{ ref('int_events_attributed') }}

),

source_freshness as (

    select * from {{ ref('int_quality__source_freshness') }}

),

orders as (

    select * from {{ source('oms', 'orders') }}

),

order_items as (

    select * from {{ source('oms', 'order_items') }}

),

ingest_files as (

    select * from {{ ew_ingest_files() }}

),

quarantine as (

    select * from {{ ew_quarantine() }}

),

-- Tracking coverage and payment-event lag per paid date. A covered order whose lag is over the
-- suite's row limit counts as an unexpected row of that quantile's check.
lag_limits as (

    select
        max(case when check_name = 'payment_event_lag_p50' then row_max end) as p50_row_max,
        max(case when check_name = 'payment_event_lag_p95' then row_max end) as p95_row_max
    from thresholds

),

tracking_aggregated_by_paid_date as (

    select
        payment_tracking.paid_date,
        count(*) as paid_orders,
        sum(payment_tracking.has_payment_event) as covered_orders,
        count(payment_tracking.payment_event_lag_min) as lagged_orders,
        {{ percentile_cont('payment_tracking.payment_event_lag_min', 0.5) }} as lag_p50_min,
        {{ percentile_cont('payment_tracking.payment_event_lag_min', 0.95) }} as lag_p95_min,
        sum(case when payment_tracking.payment_event_lag_min > lag_limits.p50_row_max then 1 else 0 end)
        as over_p50_orders,
        sum(case when payment_tracking.payment_event_lag_min > lag_limits.p95_row_max then 1 else 0 end)
        as over_p95_orders
    from payment_tracking
    cross join lag_limits
    group by payment_tracking.paid_date

),

tracking_checks_measured as (

    select
        'tracking_coverage' as check_name,
        paid_date as check_date,
        paid_orders - covered_orders as unexpected_count,
        {{ safe_share('covered_orders', 'paid_orders') }} as check_value,
        paid_orders as rows_checked
    from tracking_aggregated_by_paid_date

    union all

    select
        'payment_event_lag_p50' as check_name,
        paid_date as check_date,
        over_p50_orders as unexpected_count,
        lag_p50_min as check_value,
        lagged_orders as rows_checked
    from tracking_aggregated_by_paid_date
    where lagged_orders > 0

    union all

    select
        'payment_event_lag_p95' as check_name,
        paid_date as check_date,
        over_p95_orders as unexpected_count,
        lag_p95_min as check_value,
        lagged_orders as rows_checked
    from tracking_aggregated_by_paid_date
    where lagged_orders > 0

),

-- Order lines whose order_id is not in raw.orders, by the order's business date (the line's file
-- date when the order is unknown).
order_first_times as (

    select
        order_id,
        min(order_ts) as order_ts
    from orders
    group by order_id

),

order_lines_matched as (

    select
        coalesce({{ to_business_date('order_first_times.order_ts') }}, order_items._file_date) as check_date,
        case when order_first_times.order_id is null then 1 else 0 end as is_unknown_order
    from order_items
    left join order_first_times
        on order_items.order_id = order_first_times.order_id

),

unknown_orders_measured as (

    select
        'order_items_unknown_order' as check_name,
        check_date,
        sum(is_unknown_order) as unexpected_count,
        cast(sum(is_unknown_order) as double) as check_value,
        count(*) as rows_checked
    from order_lines_matched
    group by check_date

),

-- Order rows whose pay_amount is off items - discount + shipping by more than the suite's tolerance
-- (its row_min / row_max), by order date.
pay_amount_limits as (

    select
        row_min,
        row_max
    from thresholds
    where check_name = 'pay_amount_mismatch'

),

order_pay_amounts_compared as (

    select
        {{ to_business_date('orders.order_ts') }} as check_date,
        case
            when
                cast(orders.pay_amount - (
                    orders.items_amount - coalesce(orders.discount_amount, 0) + coalesce(orders.shipping_fee, 0)
                ) as double) < pay_amount_limits.row_min
                or cast(orders.pay_amount - (
                    orders.items_amount - coalesce(orders.discount_amount, 0) + coalesce(orders.shipping_fee, 0)
                ) as double) > pay_amount_limits.row_max
                then 1
            else 0
        end as is_mismatch
    from orders
    cross join pay_amount_limits

),

pay_amount_mismatches_measured as (

    select
        'pay_amount_mismatch' as check_name,
        check_date,
        sum(is_mismatch) as unexpected_count,
        cast(sum(is_mismatch) as double) as check_value,
        count(*) as rows_checked
    from order_pay_amounts_compared
    group by check_date

),

-- Share of tracking events attributed to a customer, per event date.
identity_coverage_measured as (

    select
        'identity_coverage' as check_name,
        event_date as check_date,
        count(*) - count(customer_key) as unexpected_count,
        {{ safe_share('count(customer_key)', 'count(*)') }} as check_value,
        count(*) as rows_checked
    from events_attributed
    group by event_date

),

-- The checks above are about one source each (the seed's); the two below, about every source.
single_source_measured as (

    select * from tracking_checks_measured
    union all
    select * from unknown_orders_measured
    union all
    select * from pay_amount_mismatches_measured
    union all
    select * from identity_coverage_measured

),

-- Rows quarantined per source and file date, against the rows landed from that day's current files
-- (every file date with a loaded file gets a row, zero when nothing was quarantined).
current_files as (

    select
        source,
        file_name,
        load_id,
        file_date,
        rows_landed
    from ingest_files
    where status != 'superseded'

),

quarantined_by_file_date as (

    select
        current_files.source,
        current_files.file_date,
        count(*) as quarantined_rows
    from quarantine
    inner join current_files
        on
            quarantine.source = current_files.source
            and quarantine.file_name = current_files.file_name
            and quarantine.load_id = current_files.load_id
    group by current_files.source, current_files.file_date

),

landed_by_file_date as (

    select
        source,
        file_date,
        sum(rows_landed) as rows_landed
    from current_files
    where file_date is not null
    group by source, file_date

),

per_source_measured as (

    select
        'quarantined_rows' as check_name,
        landed_by_file_date.source,
        landed_by_file_date.file_date as check_date,
        coalesce(quarantined_by_file_date.quarantined_rows, 0) as unexpected_count,
        cast(coalesce(quarantined_by_file_date.quarantined_rows, 0) as double) as check_value,
        cast(null as double) as source_threshold,
        landed_by_file_date.rows_landed as rows_checked
    from landed_by_file_date
    left join quarantined_by_file_date
        on
            landed_by_file_date.source = quarantined_by_file_date.source
            and landed_by_file_date.file_date = quarantined_by_file_date.file_date

    union all

    -- the age of each source's newest data against its own SLA; a source without rows has no age
    select
        'freshness' as check_name,
        source,
        {{ to_business_date(ew_utc_now()) }} as check_date,
        case when within_sla then 0 else 1 end as unexpected_count,
        age_minutes as check_value,
        cast(sla_minutes as double) as source_threshold,
        row_count as rows_checked
    from source_freshness

),

measured as (

    select
        single_source_measured.check_name,
        thresholds.source,
        single_source_measured.check_date,
        single_source_measured.unexpected_count,
        single_source_measured.check_value,
        cast(null as double) as source_threshold,
        single_source_measured.rows_checked
    from single_source_measured
    -- a check the seed lacks gets no source, which the contract refuses: a loud failure, no lost rows
    left join thresholds
        on single_source_measured.check_name = thresholds.check_name

    union all

    select * from per_source_measured

),

-- A day passes when its value meets the threshold; else it fails where the suite's expectation is
-- critical and warns otherwise. A missing value (a source without rows) does not pass.
judged as (

    select
        measured.check_name,
        measured.source,
        measured.check_date,
        coalesce(measured.source_threshold, thresholds.threshold) as threshold,
        thresholds.threshold_op,
        measured.check_value,
        measured.unexpected_count,
        measured.rows_checked,
        thresholds.severity,
        thresholds.suite
    from measured
    left join thresholds
        on measured.check_name = thresholds.check_name

),

final as (

    select
        check_name,
        source,
        check_date,
        case
            when threshold_op = '>=' and check_value >= threshold then 'pass'
            when threshold_op = '<=' and check_value <= threshold then 'pass'
            when severity = 'critical' then 'fail'
            else 'warn'
        end as status,
        cast(unexpected_count as bigint) as unexpected_count,
        cast(check_value as double) as value,
        cast(threshold as double) as threshold,
        threshold_op,
        cast(rows_checked as bigint) as rows_checked,
        suite
    from judged

)

select * from final
