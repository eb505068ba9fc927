"""marts.mart_data_quality: the silo checks per business date (dagster_project/lib/quality_daily.py).

One row per (check_name, source, check_date) with status pass/warn/fail, value, threshold and the
rows checked; thresholds come from the GE suite files. Rebuilt whole in one transaction.
"""

import dagster as dg

from dagster_project.defs.dbt.assets import translator
from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib import dbt_outputs
from dagster_project.lib.contract import SOURCE_NAMES
from dagster_project.lib.quality_daily import daily_quality, latest_not_passing

# What it reads (the dbt exposure data_quality_daily: the views the cross-source suites query) and
# the mart it writes (its dbt source), through the manifest; every raw table too (freshness, quarantine).
_MANIFEST = dbt_outputs.load_manifest(dbt_project.manifest_path)
READS = dbt_outputs.exposure_tables("data_quality_daily", _MANIFEST)
MART = dbt_outputs.written_by("data_quality_daily", _MANIFEST)["quality"]
MART_DATA_QUALITY = dg.AssetKey(list(MART.key_path))
UPSTREAM = [dg.AssetKey(["raw", s]) for s in SOURCE_NAMES] + [
    translator.get_asset_key(node) for node in READS.nodes.values()]


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
        df = daily_quality(con, tz=warehouse.timezone, reads=READS)
        # rebuilt whole in one transaction: readers never see it half written
        con.execute("begin transaction")
        try:
            MART.replace(con, df)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
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
