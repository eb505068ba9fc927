"""marts.mart_data_quality: the silo checks per business date (dagster_project/lib/quality_daily.py).

One row per (check_name, source, check_date) with status pass/warn/fail, value, threshold and the
rows checked; thresholds come from the GE suite files. Rebuilt whole in one transaction.
"""

import dagster as dg
import polars as pl

from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib.contract import SOURCE_NAMES
from dagster_project.lib.quality_daily import DDL_COLUMNS, daily_quality, latest_not_passing

MART_DATA_QUALITY = dg.AssetKey(["marts", "mart_data_quality"])
# What daily_quality reads: every raw table (freshness, quarantine) and the views the
# cross-source suites query.
UPSTREAM = [dg.AssetKey(["raw", s]) for s in SOURCE_NAMES] + [
    dg.AssetKey(["staging", "stg_oms__orders"]),
    dg.AssetKey(["staging", "stg_tracking__events"]),
    dg.AssetKey(["intermediate", "int_events_attributed"]),
]


def write_mart_data_quality(con, df: pl.DataFrame) -> None:
    """Replace marts.mart_data_quality with `df` in one transaction."""
    ddl = ", ".join(f"{c} {t}" for c, t in DDL_COLUMNS.items())
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists marts")
        con.execute(f"create or replace table marts.mart_data_quality ({ddl}, "
                    "primary key (check_name, source, check_date))")
        con.register("dq_frame", df.select(list(DDL_COLUMNS)))
        con.execute("insert into marts.mart_data_quality select * from dq_frame")
        con.unregister("dq_frame")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


@dg.asset(
    key=MART_DATA_QUALITY,
    deps=UPSTREAM,
    group_name="marts",
    kinds={"python", "duckdb"},
    pool=WRITER_POOL,
    description="Data quality per business date: tracking coverage and payment-event lag by paid date, "
                "order lines without an order and pay_amount mismatches by order date, identity "
                "coverage by event date, quarantined rows by source and file date, freshness per source "
                "on the run date. status pass / warn / fail against thresholds from the GE suites.",
)
def mart_data_quality(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        df = daily_quality(con, tz=warehouse.timezone)
        write_mart_data_quality(con, df)
    bad = latest_not_passing(df)
    counts = {f"rows_{s}": int(n) for s, n in df.group_by("status").len().iter_rows()}
    latest = df["check_date"].max() if df.height else None
    failing = [
        {"check": r["check_name"], "source": r["source"], "date": str(r["check_date"]),
         "status": r["status"], "value": r["value"], "threshold": f"{r['threshold_op']} {r['threshold']}",
         "unexpected_count": r["unexpected_count"]}
        for r in bad.iter_rows(named=True)]
    if failing:
        context.log.warning(f"{len(failing)} checks not passing on their latest date: "
                            + ", ".join(f"{f['check']}/{f['source']} ({f['status']})" for f in failing[:10]))
    return dg.MaterializeResult(metadata={
        "rows": df.height,
        **counts,
        "latest_date": str(latest) if latest else None,
        "failing_checks_latest": len(failing),
        "failing_checks": dg.MetadataValue.json(failing),
    })
