"""Every Great Expectations suite file becomes a Dagster asset check on the asset its meta names.

A failed `critical` expectation gives an ERROR-severity result, a failed `warning` a WARN one. What
an ERROR stops depends on where the suite hangs:

- Suites on a raw asset (`raw/<source>`) are validated inside that raw asset's step, right after its
  files load (`raw_check_spec`, `validate_suite`; defs/ingest/assets.py). They do not block in
  Dagster's sense, which would stop the one dbt step holding every model: instead the dbt step
  leaves out the models fed by a source whose latest raw validation failed critically
  (`blocked_sources`, defs/dbt/assets.py), and Dagster skips the Python assets downstream of
  them. A critical failure on one source stops only what depends on it.
- Every other suite (staging, intermediate, marts) is a blocking asset check of its own: an ERROR
  stops every asset downstream of the one it hangs on, in the same run.

A suite whose query names `{new_rows:raw.<table>}` validates only the loads of that table it has
not validated yet (raw tables grow by tens of millions of rows; a day's refresh must not re-fetch
history): the loads come from raw._files, the validated ones from <EW_HOME>/gx/scope/<suite>.json,
written after a validation without critical failures (a blocked check revalidates the same loads
next time). A suite compiled to SQL validates all new loads as one DuckDB query (a first load:
the whole table), within the warehouse's memory limit: a passing suite is one streaming scan of
counts. On the pandas route, whose batch is a frame in memory, new loads are validated in batches
of whole loads of at most 2,000,000 rows; EW_GE_BATCH_ROWS sets that bound for either route, and
the batches' outcomes are combined into one result. Each batch is one DuckDB query
(QualityRunner.validate_query) on a read-only connection held, with the writer lock, for that query.
"""

import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.quality import (
    SUITES_DIR, LoadScope, QualityRunner, ScopeState, SuiteFile, SuiteOutcome, batch_rows_setting,
    combine_outcomes, discover_suites, plan_scope, query_parameters, render_scope,
)
from dagster_project.lib.contract import SOURCES

_runners: dict[Path, QualityRunner] = {}

def render_query(suite: SuiteFile, scope: LoadScope | None = None) -> str:
    """Suite queries may name settings as {quality_future_hours} (and the other plausibility
    thresholds, lib.quality.query_parameters) and rows as {new_rows:raw.<table>} /
    {new_rows_time_checked:raw.<table>} / {old_rows:raw.<table>} (the whole table and nothing when
    `scope` is None); everything else is literal SQL."""
    query = render_scope(suite.sql_template, scope)
    for name, value in query_parameters().items():
        query = query.replace(f"{{{name}}}", value)
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


@contextmanager
def validation_connection(warehouse: WarehouseResource):
    """A read-only connection for a suite's query, held (with the writer lock) while DuckDB
    validates: within EW_DUCKDB_MEMORY_LIMIT, as ingest and dbt are (a first load's one-scan
    suite over 100M rows spills instead of growing the process)."""
    with warehouse.connect(read_only=True) as con:
        con.execute(f"set memory_limit = '{warehouse.duckdb_memory_limit}'")
        yield con


def check_result(outcome, seconds: float, docs: Path | None, scope: dict | None = None,
                 name: str | None = None) -> dg.AssetCheckResult:
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
             "unexpected_percent": e.unexpected_percent, "element_count": e.element_count,
             "observed_value": e.observed_value, "sample_values": e.samples, "rows": e.rows,
             "why": e.why, "kwargs": e.kwargs, "exception": e.exception}
            for e in failed]),
        "seconds": round(seconds, 2),
    }
    for k, v in (scope or {}).items():
        metadata[k] = dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v
    if docs is not None:  # rendered when the run ends
        metadata["data_docs"] = dg.MetadataValue.path(str(docs))
    return dg.AssetCheckResult(passed=outcome.passed, severity=severity, metadata=metadata,
                               description=outcome.summary()[:1000], check_name=name)


def validate_suite(suite: SuiteFile, warehouse: WarehouseResource,
                   quality: QualityResource, name: str | None = None) -> dg.AssetCheckResult:
    """Validate one suite now: its new loads (a scoped raw suite) or its whole query. `name`: the
    check's name, needed when the asset computing it has several checks."""
    started = time.perf_counter()
    runner = quality.runner
    if suite.scoped_table is None:
        with validation_connection(warehouse) as con:
            outcome = runner.validate_query(suite, con, render_query(suite))
        scope = {"scope": "whole query"}
    else:
        outcome, scope = validate_new_loads(suite, warehouse, quality)
    # queued: rendered after the run (defs/quality/docs.py)
    docs = runner.docs_index if quality.build_docs else None
    return check_result(outcome, time.perf_counter() - started, docs, scope, name)


def is_raw_suite(suite: SuiteFile) -> bool:
    """A suite on a raw asset: validated in that asset's own step (see the module docstring)."""
    return len(suite.asset) == 2 and suite.asset[0] == "raw" and suite.asset[1] in SOURCES


def raw_suites(directory: Path = SUITES_DIR) -> dict[str, list[SuiteFile]]:
    """The suites each raw source's asset validates after it loads, by source."""
    out: dict[str, list[SuiteFile]] = {}
    for suite in discover_suites(directory):
        if is_raw_suite(suite):
            out.setdefault(suite.asset[1], []).append(suite)
    return out


def check_name(suite: SuiteFile) -> str:
    return f"ge_{suite.name}"


def raw_check_spec(suite: SuiteFile) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        check_name(suite), asset=dg.AssetKey(list(suite.asset)),
        description=(suite.description or f"Great Expectations suite {suite.name}")
        + f" ({suite.expectation_count} expectations, validated as the source loads; a critical failure "
          "leaves the dbt models fed by this source out of the run, and what depends on them).")


def build_suite_check(suite: SuiteFile) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(list(suite.asset)),
        name=check_name(suite),
        blocking=True,
        description=(suite.description or f"Great Expectations suite {suite.name}")
        + f" ({suite.expectation_count} expectations; critical failures block downstream).",
    )
    def _check(warehouse: WarehouseResource, quality: QualityResource) -> dg.AssetCheckResult:
        return validate_suite(suite, warehouse, quality)

    return _check


def validate_new_loads(suite: SuiteFile, warehouse: WarehouseResource, quality: QualityResource,
                       batch_rows: int | None = None) -> tuple[SuiteOutcome, dict]:
    """Validate the loads of the suite's raw table not validated yet, batch by batch; record them
    as validated unless a critical expectation failed. Returns the outcome and scope metadata."""
    table = suite.scoped_table
    state = quality.scope_state(suite.name, warehouse.duckdb_path)
    before = state.watermark()
    runner = quality.runner
    with warehouse.connect(read_only=True) as con:
        batch_rows = batch_rows or batch_rows_setting(runner.compile(suite, con, render_query(suite)) is not None)
        plan = plan_scope(con, table, state.validated(table), batch_rows)
    outcomes = []
    for i, batch in enumerate(plan.batches):
        # one connection per batch: a writer waits for one batch's query at most
        with validation_connection(warehouse) as con:
            outcomes.append(runner.validate_query(suite, con, render_query(suite, batch),
                                                  build_docs=i == len(plan.batches) - 1))
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
    """Standalone blocking checks for every suite not on a raw asset (raw suites: raw_suites)."""
    return [build_suite_check(s) for s in discover_suites(directory) if not is_raw_suite(s)]


def blocked_sources(instance, directory: Path = SUITES_DIR) -> dict[str, list[str]]:
    """Raw sources whose latest validation failed a critical expectation, with those checks' names:
    the dbt step leaves out what they feed until a run validates them clean (a corrected
    redelivery, or the fix of the rule). The latest, not only this run's: a dbt step run on its
    own must not build on a source that failed and was not validated since."""
    keys = {dg.AssetCheckKey(dg.AssetKey(list(s.asset)), check_name(s)): s.asset[1]
            for suites in raw_suites(directory).values() for s in suites}
    blocked: dict[str, list[str]] = {}
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(keys))
    for key, record in records.items():
        event = record.event.dagster_event if record.event else None
        if event is None or event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            continue  # planned, not evaluated yet
        evaluation = event.asset_check_evaluation_data
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            blocked.setdefault(keys[key], []).append(key.name)
    return blocked
