"""Great Expectations 1.x, run our way: suites as files, data from DuckDB, results for Dagster.

A suite is a JSON file in expectations/ in GE's own format (`ExpectationSuite.to_json_dict()`),
one per raw source, per key mart and per cross-source check. Its `meta` says what to validate:

    "meta": {"ew": {"asset": ["raw", "orders"],          # the Dagster asset the check hangs on
                    "query": "select ... from raw.orders", # the rows to validate (DuckDB SQL)
                    "description": "..."}}

Every expectation carries GE's own `severity`: `critical` failures fail the Dagster check with
ERROR severity (blocking checks stop downstream assets), `warning` failures with WARN (never
blocking), `info` is reported only. Validation runs on the pandas route (a DataFrame from the
query), which works with DuckDB unpatched (see stack_notes.md), and writes GE Data Docs into the
state folder.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster_project.settings import REPO_ROOT

SUITES_DIR = REPO_ROOT / "expectations"
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class SuiteFile:
    name: str
    asset: tuple[str, ...]
    query: str
    description: str
    raw: dict

    @property
    def expectation_count(self) -> int:
        return len(self.raw.get("expectations", []))


def load_suite_file(path: Path) -> SuiteFile:
    raw = json.loads(path.read_text())
    meta = (raw.get("meta") or {}).get("ew") or {}
    missing = [k for k in ("asset", "query") if k not in meta]
    if missing:
        raise ValueError(f"{path}: meta.ew lacks {', '.join(missing)}")
    for e in raw.get("expectations", []):
        if e.get("severity", "critical") not in SEVERITIES:
            raise ValueError(f"{path}: {e.get('type')} has severity {e.get('severity')!r}")
    if raw.get("name") != path.stem:
        raise ValueError(f"{path}: suite name {raw.get('name')!r} must equal the file name")
    return SuiteFile(path.stem, tuple(meta["asset"]), meta["query"], meta.get("description", ""), raw)


def discover_suites(directory: Path = SUITES_DIR) -> list[SuiteFile]:
    return [load_suite_file(p) for p in sorted(directory.glob("*.json"))]


@dataclass
class ExpectationOutcome:
    type: str
    column: str | None
    severity: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    samples: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    exception: str | None = None

    @property
    def label(self) -> str:
        return f"{self.type}({self.column})" if self.column else self.type


@dataclass
class SuiteOutcome:
    suite: str
    rows: int
    expectations: list[ExpectationOutcome]

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success]

    @property
    def critical_failed(self) -> bool:
        return any(e.severity == "critical" for e in self.failed)

    @property
    def warning_failed(self) -> bool:
        return any(e.severity == "warning" for e in self.failed)

    @property
    def passed(self) -> bool:
        """Passed unless a critical or warning expectation failed (info never fails a suite)."""
        return not (self.critical_failed or self.warning_failed)

    def summary(self) -> str:
        if self.passed:
            return f"{self.suite}: {len(self.expectations)} expectations passed on {self.rows} rows"
        parts = [f"{e.label} [{e.severity}] unexpected {e.unexpected_count}"
                 + (f" ({e.unexpected_percent:.3g}%)" if e.unexpected_percent is not None else "")
                 + (f" observed {e.observed_value!r}" if e.observed_value is not None else "")
                 for e in self.failed]
        return f"{self.suite}: " + "; ".join(parts)


_patched = False


def _patch_numpy_bool_results() -> None:
    """GE 1.24 with numpy 2: expect_column_quantile_values_to_be_between returns a numpy.bool as
    `success`, which the file context's results store cannot serialize (TypeError). Cast it."""
    global _patched
    if _patched:
        return
    from great_expectations.expectations.core.expect_column_quantile_values_to_be_between import (
        ExpectColumnQuantileValuesToBeBetween,
    )

    original = ExpectColumnQuantileValuesToBeBetween._validate

    def _validate(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        result["success"] = bool(result["success"])
        return result

    ExpectColumnQuantileValuesToBeBetween._validate = _validate
    _patched = True


_NS_MIN, _NS_MAX = "1677-09-22", "2262-04-11"  # the datetime64[ns] range


def _ns_datetimes(df):
    """DuckDB gives datetime64[us]; GE's fast path for timestamp comparisons needs [ns] (2x on 1M rows).

    A column holding a value outside the [ns] range (a "never" of 9999-12-31) stays as it is: the
    comparison is slower but the out-of-range value is still validated, not a crash."""
    import pandas as pd

    converted = {}
    for c, t in df.dtypes.items():
        if str(t).startswith("datetime64[") and str(t) != "datetime64[ns]" and "," not in str(t):
            col = df[c]
            lo, hi = col.min(), col.max()
            if pd.isna(lo) or (lo >= pd.Timestamp(_NS_MIN) and hi <= pd.Timestamp(_NS_MAX)):
                converted[c] = col.astype("datetime64[ns]")
    return df.assign(**converted) if converted else df


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 1) == 0:
        v = v.item()  # numpy scalar -> Python
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


class QualityRunner:
    """Validates DataFrames against suite files with a file-based GE context under `gx_root`."""

    def __init__(self, gx_root: Path, build_docs: bool = True) -> None:
        self.gx_root = Path(gx_root)
        self.build_docs = build_docs

    @cached_property
    def context(self):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx

        self.gx_root.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctx = gx.get_context(mode="file", project_root_dir=str(self.gx_root))
            from great_expectations.data_context.types.base import ProgressBarsConfig

            # progress bars would land in every Dagster log and in `ecomwh run`'s log file
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        return ctx

    @property
    def docs_index(self) -> Path:
        return self.gx_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    def validate(self, suite: SuiteFile, df) -> SuiteOutcome:
        import great_expectations as gx

        ctx = self.context
        _patch_numpy_bool_results()
        source = ctx.data_sources.add_or_update_pandas("ew_duckdb")
        try:
            asset = source.get_asset(suite.name)
        except LookupError:
            asset = source.add_dataframe_asset(suite.name)
        try:
            batch_def = asset.get_batch_definition("whole")
        except (LookupError, KeyError):
            batch_def = asset.add_batch_definition_whole_dataframe("whole")
        gx_suite = ctx.suites.add_or_update(gx.ExpectationSuite(**{
            k: v for k, v in suite.raw.items() if k in ("name", "expectations", "meta", "notes")}))
        vdef = ctx.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite.name, data=batch_def, suite=gx_suite))
        actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if self.build_docs else []
        checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
            name=suite.name, validation_definitions=[vdef], actions=actions,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5}))
        result = checkpoint.run(batch_parameters={"dataframe": _ns_datetimes(df)})
        (run_result,) = result.run_results.values()
        return SuiteOutcome(suite.name, len(df), [self._outcome(r) for r in run_result.results])

    @staticmethod
    def _outcome(r) -> ExpectationOutcome:
        cfg = r.expectation_config
        res = r.result or {}
        exc = (r.exception_info or {}).get("exception_message") if r.exception_info else None
        severity = getattr(cfg, "severity", None)
        severity = getattr(severity, "value", severity) or "critical"
        return ExpectationOutcome(
            type=cfg.type,
            column=cfg.kwargs.get("column"),
            severity=str(severity),
            success=bool(r.success),
            element_count=res.get("element_count"),
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=res.get("unexpected_percent"),
            observed_value=_jsonable(res.get("observed_value")),
            samples=_jsonable(res.get("partial_unexpected_list") or [])[:5],
            kwargs=_jsonable({k: v for k, v in cfg.kwargs.items() if k != "batch_id"}),
            exception=exc or None,
        )
