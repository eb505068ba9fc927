"""Every Great Expectations suite file becomes a Dagster asset check on the asset its meta names.

Checks are blocking: a failed `critical` expectation gives an ERROR-severity result, which stops
downstream assets in the same run; a failed `warning` gives WARN, which never blocks.

A suite whose query names `{new_rows:raw.<table>}` validates only the loads of that table it has
not validated yet (raw tables grow by tens of millions of rows; a day's refresh must not re-fetch
history): the loads come from raw._files, the validated ones from <EW_HOME>/gx/scope/<suite>.json,
written after a validation without critical failures (a blocked check revalidates the same loads
next time). New loads are fetched and validated in batches of whole loads of at most
EW_GE_BATCH_ROWS rows (default 2,000,000), so memory stays bounded on a first load of 100M rows,
and the batches' outcomes are combined into one result.
"""

import time
from pathlib import Path

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.quality import (
    SUITES_DIR, LoadScope, QualityRunner, ScopeState, SuiteFile, SuiteOutcome, batch_rows_setting,
    combine_outcomes, discover_suites, plan_scope, render_scope,
)
from dagster_project.settings import sla_minutes

_runners: dict[Path, QualityRunner] = {}

# The asset that renders the run's GE Data Docs once, after every check (defs/serving/assets.py).
GE_DOCS_KEY = dg.AssetKey(["serving", "ge_data_docs"])
GE_DOCS_STEP = GE_DOCS_KEY.to_python_identifier()  # its step key in the pipeline job


def renders_docs_later(context) -> bool:
    """Whether this run renders the Data Docs at its end: serving/ge_data_docs is selected and its
    step is to execute. A run of a few assets from the UI, a re-execution of failed steps or a
    check invoked on its own renders its result at once instead."""
    try:
        if GE_DOCS_KEY not in context.job_def.asset_layer.selected_asset_keys:
            return False
        steps = context.run.step_keys_to_execute
        return steps is None or GE_DOCS_STEP in steps
    except Exception:  # noqa: BLE001 - no job around this check: render now
        return False


def render_docs_now(runner: QualityRunner, log) -> None:
    """Data Docs are a view of results already stored: failing to render them fails no check."""
    try:
        runner.render_docs()
    except Exception as exc:  # noqa: BLE001
        log.warning(f"GE Data Docs not rendered: {exc!r}; the results are stored, the next run renders them")


def render_query(suite: SuiteFile, scope: LoadScope | None = None) -> str:
    """Suite queries may name settings as {sla_<source>_min} and rows as {new_rows:raw.<table>} /
    {old_rows:raw.<table>} (the whole table and nothing when `scope` is None); everything else is
    literal SQL."""
    query = render_scope(suite.sql_template, scope)
    for source, minutes in sla_minutes().items():
        query = query.replace(f"{{sla_{source}_min}}", str(minutes))
    return query


class QualityResource(dg.ConfigurableResource):
    """Where GE keeps its context and Data Docs: <EW_HOME>/gx."""

    home: str
    build_docs: bool = True

    def scope_state(self, suite: str, db: str) -> ScopeState:
        return ScopeState(Path(self.home) / "gx" / "scope", suite, db)

    @property
    def runner(self) -> QualityRunner:
        root = Path(self.home) / "gx"
        if root not in _runners:  # a GE context costs seconds to create: one per process
            _runners[root] = QualityRunner(root, build_docs=self.build_docs)
        return _runners[root]


def quality_resource() -> QualityResource:
    return QualityResource(home=dg.EnvVar("EW_HOME"))


def fetch_frame(con, query: str):
    """Query result as pandas via Arrow (several times faster than .df() on a million rows).

    Dates become datetime64 so GE compares them like timestamps; DECIMAL amounts become float64
    (Arrow would hand over Decimal objects, which GE treats as opaque values).
    """
    import pyarrow as pa

    table = con.sql(query).to_arrow_table()
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    return table.to_pandas(date_as_object=False)


def check_result(outcome, seconds: float, docs: Path | None, scope: dict | None = None) -> dg.AssetCheckResult:
    failed = outcome.failed
    severity = dg.AssetCheckSeverity.ERROR if outcome.critical_failed else dg.AssetCheckSeverity.WARN
    metadata = {
        "rows": outcome.rows,
        "expectations": len(outcome.expectations),
        "failed_critical": sum(e.severity == "critical" for e in failed),
        "failed_warning": sum(e.severity == "warning" for e in failed),
        "unexpected_count": sum(e.unexpected_count or 0 for e in failed),
        "summary": outcome.summary(),
        "failures": dg.MetadataValue.json([
            {"expectation": e.label, "severity": e.severity, "unexpected_count": e.unexpected_count,
             "unexpected_percent": e.unexpected_percent, "observed_value": e.observed_value,
             "sample_values": e.samples, "kwargs": e.kwargs, "exception": e.exception}
            for e in failed]),
        "seconds": round(seconds, 2),
    }
    for k, v in (scope or {}).items():
        metadata[k] = dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v
    if docs is not None:  # rendered now, or by serving/ge_data_docs at the end of the run
        metadata["data_docs"] = dg.MetadataValue.path(str(docs))
    return dg.AssetCheckResult(passed=outcome.passed, severity=severity, metadata=metadata,
                               description=outcome.summary()[:1000])


def build_suite_check(suite: SuiteFile) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(list(suite.asset)),
        name=f"ge_{suite.name}",
        blocking=True,
        description=(suite.description or f"Great Expectations suite {suite.name}")
        + f" ({suite.expectation_count} expectations; critical failures block downstream).",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
               quality: QualityResource) -> dg.AssetCheckResult:
        started = time.perf_counter()
        runner = quality.runner
        if suite.scoped_table is None:
            with warehouse.connect(read_only=True) as con:
                df = fetch_frame(con, render_query(suite))
            outcome = runner.validate(suite, df)
            scope = {"scope": "whole query"}
        else:
            outcome, scope = validate_new_loads(suite, warehouse, quality)
        docs = None
        if quality.build_docs:
            docs = runner.docs_index
            # a blocking failure stops the run before its docs step: render the evidence now
            if outcome.critical_failed or not renders_docs_later(context):
                render_docs_now(runner, context.log)
        return check_result(outcome, time.perf_counter() - started, docs, scope)

    return _check


def validate_new_loads(suite: SuiteFile, warehouse: WarehouseResource, quality: QualityResource,
                       batch_rows: int | None = None) -> tuple[SuiteOutcome, dict]:
    """Validate the loads of the suite's raw table not validated yet, batch by batch; record them
    as validated unless a critical expectation failed. Returns the outcome and scope metadata."""
    table = suite.scoped_table
    state = quality.scope_state(suite.name, warehouse.duckdb_path)
    batch_rows = batch_rows or batch_rows_setting()
    before = state.watermark()
    with warehouse.connect(read_only=True) as con:
        plan = plan_scope(con, table, state.validated(table), batch_rows)
    outcomes = []
    runner = quality.runner
    for i, batch in enumerate(plan.batches):
        # one connection per batch: the writer lock is not held while GE validates
        with warehouse.connect(read_only=True) as con:
            df = fetch_frame(con, render_query(suite, batch))
        outcomes.append(runner.validate(suite, df, build_docs=i == len(plan.batches) - 1))
        del df
    outcome = combine_outcomes(suite.name, outcomes)
    advanced = not outcome.critical_failed
    after = state.write(table, plan.loads) if advanced else before
    stamps = [ld.loaded_at for ld in plan.new if ld.loaded_at is not None]
    return outcome, {
        "scope": f"new loads of raw.{table}",
        "new_rows": plan.new_rows,
        "new_loads": len(plan.new),
        "batches": len(plan.batches),
        "batch_rows_limit": batch_rows,
        "table_loads": len(plan.loads),
        "new_loaded_from": min(stamps).isoformat() if stamps else None,
        "new_loaded_to": max(stamps).isoformat() if stamps else None,
        "watermark_before": before,
        "watermark_after": after,
        "watermark_advanced": advanced,
        "new_load_ids": [ld.load_id for ld in plan.new][:50],
    }


def build_suite_checks(directory: Path = SUITES_DIR) -> list[dg.AssetChecksDefinition]:
    return [build_suite_check(s) for s in discover_suites(directory)]
