"""Data quality per business date: the silo checks of the GE suites, day by day, as one table.

`daily_quality(con)` is pure: it reads the warehouse (raw tables, the staging and intermediate views
the cross-source suites read) and returns one row per (check, source, date). Definitions and
thresholds come from the suite files in expectations/ wherever a suite exists: each daily figure is
the suite's own query aggregated per date (identity coverage: the suite's model already aggregates
over all events in SQL, so the same share is computed here per event date from the same table),
and its threshold is the expectation's kwargs, so a threshold changed in the suite changes the
daily table too.

| check_name | source | date | value | threshold (from) |
|---|---|---|---|---|
| tracking_coverage | events | paid date | share of paid app/mini_program/web orders with a payment_success event | >= `mostly` of has_payment_event in {1} (cross_tracking_coverage) |
| payment_event_lag_p50 / _p95 | events | paid date | minutes paid_ts -> event, linear quantile over covered orders | <= max_value (cross_tracking_coverage) |
| order_items_unknown_order | order_items | order date (file date when the order is unknown) | order lines whose order_id is not in raw.orders | <= 0 (cross_order_items_orders) |
| pay_amount_mismatch | orders | order date | order rows with pay_amount off by more than the tolerance | <= 0, tolerance from cross_orders_pay_amount |
| identity_coverage | events | event date | share of events with a customer_key | >= min_value of is_attributed (cross_identity_coverage) |
| quarantined_rows | <source> | file date | rows quarantined from that day's files | <= 0 (status warn) |
| freshness | <source> | run date | minutes since the newest data | <= SLA (cross_freshness model) |

Status: 'pass' when the value meets its threshold, else 'fail' if the suite expectation is
critical, 'warn' otherwise (quarantine and freshness always warn). Recent paid dates can show low
tracking coverage for a while: events may land up to 3 days late (raw contract).
"""  # noqa: E501 (a table's rows)

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from dagster_project.lib import dbt_outputs
from dagster_project.lib.quality import SUITES_DIR, SuiteFile, load_suite_file

SCHEMA: dict[str, pl.DataType] = {
    "check_name": pl.Utf8,
    "source": pl.Utf8,
    "check_date": pl.Date,
    "status": pl.Utf8,
    "unexpected_count": pl.Int64,
    "value": pl.Float64,
    "threshold": pl.Float64,
    "threshold_op": pl.Utf8,
    "rows_checked": pl.Int64,
    "suite": pl.Utf8,
}
TRACKED_SOURCE = "events"  # the tracking system is what coverage, lag and identity measure


def expectation(suite: SuiteFile, type_: str, column: str) -> tuple[dict, str]:
    """(kwargs, severity) of the suite's expectation of this type on this column."""
    for e in suite.raw.get("expectations", []):
        if e.get("type") == type_ and e.get("kwargs", {}).get("column") == column:
            return e["kwargs"], e.get("severity", "critical")
    raise LookupError(f"suite {suite.name} has no {type_} on {column}")


def _business_date(column: str, tz: str) -> str:
    if not re.match(r"^[A-Za-z0-9_+/-]+$", tz):
        raise ValueError(f"time zone must be an IANA name, got {tz!r}")
    return f"cast(timezone('{tz}', timezone('UTC', {column})) as date)"


def _status(ok_sql: str, severity: str) -> str:
    bad = "fail" if severity == "critical" else "warn"
    return f"case when {ok_sql} then 'pass' else '{bad}' end"


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    df = pl.from_arrow(con.sql(sql).to_arrow_table())
    return df.select([pl.col(c).cast(t) for c, t in SCHEMA.items()])


def daily_quality(con: duckdb.DuckDBPyConnection, *, suites_dir: Path = SUITES_DIR,
                  tz: str | None = None, now: datetime | None = None,
                  reads: dbt_outputs.ExposureTables | None = None) -> pl.DataFrame:
    """One row per (check_name, source, check_date); see the module docstring for the checks.
    `reads`: the dbt models it reads (the exposure data_quality_daily), found in the manifest."""
    reads = reads or dbt_outputs.exposure_tables("data_quality_daily")
    tz = tz or os.environ.get("EW_TIMEZONE", "Asia/Shanghai")
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, like raw timestamps
    suite = {n: load_suite_file(suites_dir / f"{n}.json") for n in (
        "cross_tracking_coverage", "cross_order_items_orders", "cross_orders_pay_amount",
        "cross_identity_coverage", "cross_freshness")}
    frames = []

    # Tracking coverage and payment-event lag per paid date, on the suite's own rows.
    tc = suite["cross_tracking_coverage"]
    cov_kw, cov_sev = expectation(tc, "expect_column_values_to_be_in_set", "has_payment_event")
    p50_kw, p50_sev = expectation(tc, "expect_column_values_to_be_between", "lag_p50_min")
    p95_kw, p95_sev = expectation(tc, "expect_column_values_to_be_between", "lag_p95_min")
    cov_min, p50_max, p95_max = float(cov_kw["mostly"]), float(p50_kw["max_value"]), float(p95_kw["max_value"])
    per_day = (f"select paid_date as check_date, count(*) as paid, sum(has_payment_event) as covered, "
               f"count(payment_event_lag_min) as lagged, "
               f"quantile_cont(payment_event_lag_min, 0.5) as p50, quantile_cont(payment_event_lag_min, 0.95) as p95, "
               f"count(*) filter (where payment_event_lag_min > {p50_max}) as over_p50, "
               f"count(*) filter (where payment_event_lag_min > {p95_max}) as over_p95 "
               f"from ({tc.query}) q group by paid_date")
    frames.append(_frame(con, f"""
        with d as ({per_day})
        select 'tracking_coverage' as check_name, '{TRACKED_SOURCE}' as source, check_date,
               {_status(f"covered / paid >= {cov_min}", cov_sev)} as status,
               paid - covered as unexpected_count, covered / paid as value, {cov_min} as threshold,
               '>=' as threshold_op, paid as rows_checked, '{tc.name}' as suite
        from d
        union all
        select 'payment_event_lag_p50', '{TRACKED_SOURCE}', check_date,
               {_status(f"p50 <= {p50_max}", p50_sev)}, over_p50, p50, {p50_max}, '<=', lagged, '{tc.name}'
        from d where lagged > 0
        union all
        select 'payment_event_lag_p95', '{TRACKED_SOURCE}', check_date,
               {_status(f"p95 <= {p95_max}", p95_sev)}, over_p95, p95, {p95_max}, '<=', lagged, '{tc.name}'
        from d where lagged > 0"""))

    # Order lines whose order is unknown, by the order's business date (file date if unknown).
    oi = suite["cross_order_items_orders"]
    _, oi_sev = expectation(oi, "expect_column_values_to_be_in_set", "order_exists")
    frames.append(_frame(con, f"""
        with d as (
            select coalesce({_business_date('order_ts', tz)}, _file_date) as check_date,
                   count(*) as n, count(*) filter (where not order_exists) as bad
            from ({oi.query}) q group by 1)
        select 'order_items_unknown_order' as check_name, 'order_items' as source, check_date,
               {_status("bad <= 0", oi_sev)} as status, bad as unexpected_count, bad as value,
               0 as threshold, '<=' as threshold_op, n as rows_checked, '{oi.name}' as suite
        from d"""))

    # pay_amount = items - discount + shipping, by order date; tolerance from the suite.
    pa = suite["cross_orders_pay_amount"]
    pa_kw, pa_sev = expectation(pa, "expect_column_values_to_be_between", "pay_amount_diff")
    lo, hi = float(pa_kw["min_value"]), float(pa_kw["max_value"])
    frames.append(_frame(con, f"""
        with d as (
            select {_business_date('order_ts', tz)} as check_date, count(*) as n,
                   count(*) filter (where pay_amount_diff < {lo} or pay_amount_diff > {hi}) as bad
            from ({pa.query}) q group by 1)
        select 'pay_amount_mismatch' as check_name, 'orders' as source, check_date,
               {_status("bad <= 0", pa_sev)} as status, bad as unexpected_count, bad as value,
               0 as threshold, '<=' as threshold_op, n as rows_checked, '{pa.name}' as suite
        from d"""))

    # Identity coverage per event date.
    ic = suite["cross_identity_coverage"]
    ic_kw, ic_sev = expectation(ic, "expect_column_values_to_be_between", "is_attributed")
    ic_min = float(ic_kw["min_value"])
    events = reads.sql("{int_events_attributed}")
    frames.append(_frame(con, f"""
        with d as (select event_date as check_date, count(*) as n, count(customer_key) as ok
                   from {events} group by 1)
        select 'identity_coverage' as check_name, '{TRACKED_SOURCE}' as source, check_date,
               {_status(f"ok / n >= {ic_min}", ic_sev)} as status, n - ok as unexpected_count,
               ok / n as value, {ic_min} as threshold, '>=' as threshold_op, n as rows_checked,
               '{ic.name}' as suite
        from d"""))

    # Quarantined rows per source and file date (every file date with a loaded file gets a row).
    frames.append(_frame(con, """
        with files as (
            select source, file_name, load_id, file_date, rows_landed from raw._files
            where status <> 'superseded'),
        q as (select q.source, f.file_date, count(*) as n
              from raw.quarantine q join files f
                on f.source = q.source and f.file_name = q.file_name and f.load_id = q.load_id
              group by all),
        landed as (select source, file_date, sum(rows_landed) as landed from files group by all)
        select 'quarantined_rows' as check_name, l.source, l.file_date as check_date,
               case when coalesce(q.n, 0) > 0 then 'warn' else 'pass' end as status,
               coalesce(q.n, 0) as unexpected_count, coalesce(q.n, 0) as value, 0 as threshold,
               '<=' as threshold_op, l.landed as rows_checked, null as suite
        from landed l left join q on q.source = l.source and q.file_date = l.file_date
        where l.file_date is not null"""))

    # Freshness per source on the run date (business date of `now`): newest data time and SLA from
    # the suite's model, the age against `now` so that one run's rows share one clock.
    fr = suite["cross_freshness"]
    _, fr_sev = expectation(fr, "expect_column_values_to_be_in_set", "within_sla")
    frames.append(_frame(con, f"""
        with aged as (
            select source, row_count, sla_minutes,
                   epoch(timestamp '{now.isoformat()}' - latest_data_at) / 60.0 as age_minutes
            from ({fr.query}) q)
        select 'freshness' as check_name, source,
               {_business_date(f"timestamp '{now.isoformat()}'", tz)} as check_date,
               {_status("coalesce(age_minutes <= sla_minutes, false)", fr_sev)} as status,
               case when coalesce(age_minutes <= sla_minutes, false) then 0 else 1 end as unexpected_count,
               age_minutes as value, sla_minutes as threshold, '<=' as threshold_op,
               row_count as rows_checked, '{fr.name}' as suite
        from aged"""))

    out = pl.concat(frames, how="vertical")
    return out.sort("check_name", "source", "check_date")


def latest_not_passing(df: pl.DataFrame) -> pl.DataFrame:
    """Each (check, source) on its latest date, where it does not pass."""
    if df.height == 0:
        return df
    latest = df.group_by("check_name", "source").agg(pl.col("check_date").max())
    return (df.join(latest, on=["check_name", "source", "check_date"])
            .filter(pl.col("status") != "pass").sort("check_name", "source"))
