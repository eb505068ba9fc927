"""Every Great Expectations suite file becomes a Dagster asset check on the asset its meta names.

Checks are blocking: a failed `critical` expectation gives an ERROR-severity result, which stops
downstream assets in the same run; a failed `warning` gives WARN, which never blocks.
"""

import time
from pathlib import Path

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.quality import SUITES_DIR, QualityRunner, SuiteFile, discover_suites
from dagster_project.settings import sla_minutes

_runners: dict[Path, QualityRunner] = {}


def render_query(suite: SuiteFile) -> str:
    """Suite queries may name settings as {sla_<source>_min}; everything else is literal SQL."""
    query = suite.query
    for source, minutes in sla_minutes().items():
        query = query.replace(f"{{sla_{source}_min}}", str(minutes))
    return query


class QualityResource(dg.ConfigurableResource):
    """Where GE keeps its context and Data Docs: <EW_HOME>/gx."""

    home: str
    build_docs: bool = True

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


def check_result(outcome, seconds: float, docs: Path | None) -> dg.AssetCheckResult:
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
    if docs is not None and docs.exists():
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
    def _check(warehouse: WarehouseResource, quality: QualityResource) -> dg.AssetCheckResult:
        started = time.perf_counter()
        with warehouse.connect(read_only=True) as con:
            df = fetch_frame(con, render_query(suite))
        runner = quality.runner
        outcome = runner.validate(suite, df)
        return check_result(outcome, time.perf_counter() - started,
                            runner.docs_index if quality.build_docs else None)

    return _check


def build_suite_checks(directory: Path = SUITES_DIR) -> list[dg.AssetChecksDefinition]:
    return [build_suite_check(s) for s in discover_suites(directory)]
