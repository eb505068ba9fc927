"""Great Expectations 1.x, run our way: suites as files, data from DuckDB, results for Dagster.

A suite is a JSON file in expectations/ in GE's own format (`ExpectationSuite.to_json_dict()`),
one per raw source, per key mart and per cross-source check. Its `meta` says what to validate:

    "meta": {"ew": {"asset": ["raw", "orders"],          # the Dagster asset the check hangs on
                    "query": "select ... from raw.orders", # the rows to validate (DuckDB SQL)
                    "description": "..."}}

or, for a check that dbt computes, `"model": "<dbt model>"` instead of asset and query: the suite
validates the model's whole result and hangs on its asset, both found through the dbt manifest.

A raw-table suite names its table through a placeholder, `{new_rows:raw.<table>}` (and, where a
rule must also look at rows validated before, `{old_rows:raw.<table>}`): the Dagster check replaces
it with the rows of the loads it has not validated yet (see `LoadScope`, `plan_scope`, `ScopeState`),
everything else (the tests) sees the whole table through `SuiteFile.query`.

Every expectation carries GE's own `severity`: `critical` failures fail the Dagster check with
ERROR severity (what that stops: defs/quality/checks.py), `warning` failures with WARN (never
blocking), `info` is reported only. Critical is for a broken contract, key or cross-source link;
what is only implausible warns (docs/quality.md). Validation runs inside DuckDB: the suite's
expectations compiled to aggregate queries over its rows (`QualityRunner.validate_query`,
lib/quality_sql.py), with GE's pandas route (a DataFrame from the query, `validate`) as the exact
fallback for what is not compiled (docs/decisions.md). GE Data Docs are written into the state
folder: once per run for all of its suites (`QualityRunner.render_docs`), not after each one.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster_project.settings import REPO_ROOT

SUITES_DIR = REPO_ROOT / "expectations"
SEVERITIES = ("critical", "warning", "info")


# {new_rows:raw.events}: the rows of raw.events in scope; {old_rows:raw.events}: the others;
# {new_rows_time_checked:raw.events}: the rows in scope with a plausibility verdict per timestamp.
_SCOPE_RE = re.compile(r"\{(new_rows_time_checked|new_rows|old_rows):raw\.([A-Za-z_][A-Za-z0-9_]*)\}")
# {in_new_rows:raw.events.event_id}: a condition on a row of raw.events, true when its event_id is
# one of the rows in scope; `true` when the scope is the whole table (a first load), so counting a
# key's rows over the table costs no semi-join of the table with itself.
_KEY_RE = re.compile(r"\{in_new_rows:raw\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\}")
# A suite compiled to SQL (quality_sql) is one batch, whatever its size: a passing suite is one
# streaming scan of counts (no window), which DuckDB keeps within its memory_limit, and a batch per
# 10M rows cost each batch its own pass over the whole table for the cross-load keys (the 88M-row
# first load of raw.events: 9 batches, each rescanning the table). EW_GE_BATCH_ROWS still bounds it.
DEFAULT_BATCH_ROWS = None
PANDAS_BATCH_ROWS = 2_000_000      # a suite on the pandas route: one frame of this many rows in memory
GC_AFTER_ROWS = 200_000  # validations of at least this many rows end with a full garbage collection


@dataclass(frozen=True)
class LoadScope:
    """The rows a scoped suite query covers: whole loads (`_load_id`) of one raw table.

    `loads` None means the whole table. `old_loads_excluded` is set on the first batch of an
    incremental validation only: `{old_rows:...}` then means every row outside those loads (the rows
    validated before), so rules over old rows are evaluated once per check, not once per batch.
    """

    table: str
    loads: tuple[str, ...] | None = None
    old_loads_excluded: tuple[str, ...] | None = None

    @staticmethod
    def _in(ids: tuple[str, ...]) -> str:
        return ", ".join("'" + i.replace("'", "''") + "'" for i in ids)

    def new_rows(self) -> str:
        if self.loads is None:
            return f"raw.{self.table}"
        if not self.loads:
            return f"(select * from raw.{self.table} where false)"
        return f"(select * from raw.{self.table} where _load_id in ({self._in(self.loads)}))"

    def old_rows(self) -> str:
        if self.old_loads_excluded is None:
            return f"(select * from raw.{self.table} where false)"
        if not self.old_loads_excluded:
            return f"raw.{self.table}"
        return (f"(select * from raw.{self.table} "
                f"where _load_id is null or _load_id not in ({self._in(self.old_loads_excluded)}))")

    def key_in_new_rows(self, column: str) -> str:
        if self.loads is None:
            return "true"
        return f"({column} in (select {column} from {self.new_rows()}))"


def scoped_table(query: str) -> str | None:
    """The raw table a query's {new_rows:raw.<table>}/{old_rows:...} placeholders name, if any."""
    tables = {m.group(2) for m in _SCOPE_RE.finditer(query)} | {m.group(1) for m in _KEY_RE.finditer(query)}
    if len(tables) > 1:
        raise ValueError(f"a suite query may scope one raw table, not {sorted(tables)}")
    return next(iter(tables), None)


def render_scope(query: str, scope: LoadScope | None = None) -> str:
    """Fill the scope placeholders: by default new_rows is the whole table and old_rows is empty."""
    def sub(m: re.Match) -> str:
        s = scope if scope is not None and scope.table == m.group(2) else LoadScope(m.group(2))
        if m.group(1) == "old_rows":
            return s.old_rows()
        if m.group(1) == "new_rows_time_checked":
            return time_checked(s.new_rows(), s.table)
        return s.new_rows()

    def key(m: re.Match) -> str:
        s = scope if scope is not None and scope.table == m.group(1) else LoadScope(m.group(1))
        return s.key_in_new_rows(m.group(2))

    return _KEY_RE.sub(key, _SCOPE_RE.sub(sub, query))


# The middle half of a timestamp column is estimated on a sample of the whole table: exact up to
# this many rows, and without sorting every event of a big table at each check.
BULK_SAMPLE_ROWS = 20_000


def query_parameters() -> dict[str, str]:
    """What a suite query may name as {name}: the plausibility thresholds. (Freshness SLAs are the
    dbt model int_quality__source_freshness's, through contract_sla_minutes().)"""
    from dagster_project.settings import time_plausibility

    return {k: repr(v) for k, v in time_plausibility().items()}


def _threshold(name: str) -> str:
    """A plausibility threshold as SQL: {name} is filled from EW_* settings by the check
    (checks.render_query); left unrendered (tests, the whole-table query) it falls back to the
    default, so the query runs either way."""
    from dagster_project.settings import DEFAULT_TIME_PLAUSIBILITY

    return f"coalesce(try_cast('{{{name}}}' as double), {DEFAULT_TIME_PLAUSIBILITY[name]!r})"


def time_checked(rows: str, table: str) -> str:
    """`rows` of raw.<table> plus `_<column>_implausible` for every timestamp and date column of the
    contract: null when the value is plausible, otherwise a sentence saying why it is not.

    Implausible means more than EW_QUALITY_FUTURE_HOURS after the run (a device clock, a 2099
    placeholder), or further outside the middle half (25th-75th percentile) of the column over the
    whole table than EW_QUALITY_OUTLIER_IQR interquartile ranges and at least
    EW_QUALITY_OUTLIER_MIN_DAYS days (epoch zero among this year's orders, a year typo). Relative to
    the data, not to the calendar: a shop whose history starts in 1996 is as plausible as one that
    opened last week (raw_contract.md: validity is not recency)."""
    from dagster_project.lib.contract import DATE, SOURCES, TS

    columns = [c.name for c in SOURCES[table].columns if c.kind in (TS, DATE)]
    if not columns:
        return rows
    future, iqr, min_days = (_threshold(n) for n in
                             ("quality_future_hours", "quality_outlier_iqr", "quality_outlier_min_days"))
    quartiles = ", ".join(f"quantile_cont(epoch(cast({c} as timestamp)), [0.25, 0.75]) as q_{c}"
                          for c in columns)
    sample = (f"(select {', '.join(columns)} from raw.{table} "
              f"using sample reservoir({BULK_SAMPLE_ROWS} rows) repeatable (1))")

    def verdict(c: str) -> str:
        v = f"epoch(cast(r.{c} as timestamp))"
        q1, q3 = f"_bulk.q_{c}[1]", f"_bulk.q_{c}[2]"
        fence = f"greatest({iqr} * ({q3} - {q1}), 86400 * {min_days})"
        middle = (f"strftime(make_timestamp(cast({q1} * 1e6 as bigint)), '%Y-%m-%d') || ' .. ' || "
                  f"strftime(make_timestamp(cast({q3} * 1e6 as bigint)), '%Y-%m-%d')")

        def outside(side: str, gap: str) -> str:
            return (f"cast(r.{c} as varchar) || ' is ' || cast(floor(({gap}) / 86400) as bigint) || "
                    f"' days {side} the middle half of raw.{table}.{c} (' || {middle} || '); more than ' || "
                    f"cast(floor(({fence}) / 86400) as bigint) || ' days out is implausible'")

        return (f"case when r.{c} is null then null "
                f"when {v} > epoch(now()) + 3600 * {future} then cast(r.{c} as varchar) || "
                f"' is more than ' || {future} || ' h after this run (UTC)' "
                f"when {v} < {q1} - {fence} then {outside('before', f'{q1} - {v}')} "
                f"when {v} > {q3} + {fence} then {outside('after', f'{v} - {q3}')} "
                f"end as _{c}_implausible")

    return (f"(select r.*, {', '.join(verdict(c) for c in columns)} from {rows} r "
            f"cross join (select {quartiles} from {sample}) _bulk)")


@dataclass(frozen=True)
class SuiteFile:
    name: str
    asset: tuple[str, ...]
    query: str                    # the suite's SQL over the whole table (placeholders filled)
    description: str
    raw: dict
    template: str | None = None   # the SQL as written in the file, with its placeholders

    @property
    def expectation_count(self) -> int:
        return len(self.raw.get("expectations", []))

    @property
    def sql_template(self) -> str:
        return self.template if self.template is not None else self.query

    @property
    def scoped_table(self) -> str | None:
        """raw.<table> this suite validates incrementally (by new loads), or None: whole query."""
        return scoped_table(self.sql_template)


def load_suite_file(path: Path) -> SuiteFile:
    raw = json.loads(path.read_text())
    meta = (raw.get("meta") or {}).get("ew") or {}
    if "model" in meta:
        # a dbt model validated whole: its relation and asset come from the manifest
        from dagster_project.lib import dbt_outputs

        node = dbt_outputs.model(meta["model"])
        meta = {**meta, "asset": list(dbt_outputs.asset_path(node)),
                "query": f"select * from {dbt_outputs.relation(node)}"}
    missing = [k for k in ("asset", "query") if k not in meta]
    if missing:
        raise ValueError(f"{path}: meta.ew lacks {', '.join(missing)}")
    for e in raw.get("expectations", []):
        if e.get("severity", "critical") not in SEVERITIES:
            raise ValueError(f"{path}: {e.get('type')} has severity {e.get('severity')!r}")
    if raw.get("name") != path.stem:
        raise ValueError(f"{path}: suite name {raw.get('name')!r} must equal the file name")
    scoped_table(meta["query"])  # one scoped table at most
    return SuiteFile(path.stem, tuple(meta["asset"]), render_scope(meta["query"]),
                     meta.get("description", ""), raw, template=meta["query"])


def discover_suites(directory: Path = SUITES_DIR) -> list[SuiteFile]:
    return [load_suite_file(p) for p in sorted(directory.glob("*.json"))]


@dataclass
class ExpectationOutcome:
    type: str
    column: str | None
    severity: str
    success: bool
    element_count: int | None = None
    missing_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    samples: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    exception: str | None = None
    why: str | None = None        # the expectation's meta.why: what the rule protects
    rows: list = field(default_factory=list)  # [{"file", "row"}] of a few unexpected rows, when known

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
    `success`, which the file context's results store cannot serialize (TypeError). Cast it.
    pyproject pins great-expectations exactly: tests/test_quality_checks.py's canary fails when an
    upgrade fixes this (drop the patch) or renames what it wraps."""
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

    _validate.__wrapped__ = original  # the canary test calls GE's own method through this
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

    def validate(self, suite: SuiteFile, df, build_docs: bool | None = None) -> SuiteOutcome:
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
        docs = self.build_docs if build_docs is None else (build_docs and self.build_docs)
        # No UpdateDataDocsAction: rendering after every suite re-rendered the docs index each time
        # (~0.3 s of a small suite's ~0.5 s). The result is stored either way; its page is rendered
        # with the others of the run by render_docs() (see queue_docs).
        checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
            name=suite.name, validation_definitions=[vdef], actions=[],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5}))
        frame = _ns_datetimes(df)
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        ((result_id, run_result),) = result.run_results.items()
        if docs:
            self.queue_docs(result_id, gx_suite)
        outcome = SuiteOutcome(suite.name, len(df), [self._outcome(r) for r in run_result.results])
        for r, e in zip(run_result.results, outcome.expectations):
            if not e.success and e.severity == "critical":
                e.rows = self.locate_rows(r, frame)
        self._release_batches(source, collect=len(df) >= GC_AFTER_ROWS)
        return outcome

    def validate_query(self, suite: SuiteFile, con, query: str, build_docs: bool | None = None) -> SuiteOutcome:
        """Validate the rows of `query` where they live: the suite compiled to aggregate DuckDB
        queries (lib/quality_sql.py), its results stored in GE's results store and queued for Data
        Docs like the pandas route's. A suite with an expectation the compiler does not cover is
        validated on the pandas route, whole."""
        from dagster_project.lib import quality_sql

        import duckdb

        compiled = self.compile(suite, con, query)
        if compiled is not None:
            try:
                rows, results = quality_sql.run(con, compiled)
            except duckdb.Error as exc:  # e.g. a regex RE2 cannot parse: the exact route still can
                warnings.warn(f"{suite.name}: compiled suite failed in DuckDB ({exc}); "
                              "validating on the pandas route", stacklevel=2)
            else:
                return self._store_compiled(suite, rows, results, build_docs)
        return self.validate(suite, fetch_frame(con, query), build_docs)

    @staticmethod
    def compile(suite: SuiteFile, con, query: str):
        """The suite compiled to SQL over `query` (a quality_sql.CompiledSuite), None when an
        expectation is left to the pandas route."""
        from dagster_project.lib import quality_sql

        describe = con.execute(f"describe ({query})").fetchall()
        return quality_sql.compile_suite(suite.raw.get("expectations", []), query, [(r[0], r[1]) for r in describe])

    def _store_compiled(self, suite: SuiteFile, rows: int, results, build_docs: bool | None) -> SuiteOutcome:
        import great_expectations as gx
        from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier, ValidationResultIdentifier,
        )
        from great_expectations.expectations.expectation import _format_map_output, _mostly_success

        ctx = self.context
        gx_suite = ctx.suites.add_or_update(gx.ExpectationSuite(**{
            k: v for k, v in suite.raw.items() if k in ("name", "expectations", "meta", "notes")}))
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 5,
                         "include_unexpected_rows": False}
        evrs, located = [], []
        for e, r in zip(gx_suite.expectations, results):
            cfg = e.configuration
            considered = r.nonnull_count if r.nonnull_count is not None else r.element_count
            mostly = float(cfg.kwargs.get("mostly", 1) or 1)
            success = (r.element_count == 0 or considered == 0
                       or _mostly_success(considered, r.unexpected_count, mostly))
            out = _format_map_output(result_format=result_format, success=success,
                                     element_count=r.element_count, nonnull_count=r.nonnull_count,
                                     unexpected_count=r.unexpected_count, unexpected_list=r.samples)
            evrs.append(ExpectationValidationResult(
                success=out["success"], expectation_config=cfg, result=out["result"],
                exception_info={"raised_exception": False, "exception_traceback": None,
                                "exception_message": None}))
            located.append(r.rows)
        # GE's own order: expectations grouped by column, in suite order (Validator.process_expectations...)
        order = {}
        for i, evr in enumerate(evrs):
            column = evr.expectation_config.kwargs.get("column")
            order.setdefault(column if isinstance(column, str) else None, []).append(i)
        ranked = [i for group in order.values() for i in group]
        evrs, located = [evrs[i] for i in ranked], [located[i] for i in ranked]
        passed = sum(bool(r.success) for r in evrs)
        run_id = RunIdentifier(run_time=datetime.now(timezone.utc))
        batch_id = f"ew_duckdb-{suite.name}"
        validation = ExpectationSuiteValidationResult(
            success=passed == len(evrs), results=evrs, suite_name=suite.name,
            statistics={"evaluated_expectations": len(evrs), "successful_expectations": passed,
                        "unsuccessful_expectations": len(evrs) - passed,
                        "success_percent": passed / len(evrs) * 100 if evrs else None},
            meta={"great_expectations_version": gx.__version__, "expectation_suite_name": suite.name,
                  "run_id": run_id, "validation_time": run_id.run_time,
                  "batch_spec": {"route": "DuckDB SQL (lib/quality_sql.py)", "rows": rows},
                  "active_batch_definition": {"datasource_name": "ew_duckdb", "data_asset_name": suite.name,
                                              "batch_definition_name": "whole"}},
            batch_id=batch_id)
        result_id = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name), run_id=run_id,
            batch_identifier=batch_id)
        ctx.validation_results_store.set(result_id, validation)
        docs = self.build_docs if build_docs is None else (build_docs and self.build_docs)
        if docs:
            self.queue_docs(result_id, gx_suite)
        outcome = SuiteOutcome(suite.name, rows, [self._outcome(r) for r in evrs])
        for e, where in zip(outcome.expectations, located):
            if not e.success and e.severity == "critical":
                e.rows = where
        return outcome

    # Where a critical failure is, as (file, row) of the raw rows: what `ecomwh run` tells the user
    # to fix. GE can list unexpected rows by index columns, but builds that list cell by cell over
    # every unexpected row (far slower than the validation itself on a broken file), so the
    # failed expectation is run again, alone, on the few rows holding its sampled unexpected values.
    LOCATE_CANDIDATES = 500
    LOCATE_ROWS = 5

    @cached_property
    def _locator(self):
        import great_expectations as gx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctx = gx.get_context(mode="ephemeral")  # nothing stored: these runs are not results
            from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        return ctx.data_sources.add_pandas("locate").add_dataframe_asset("rows") \
            .add_batch_definition_whole_dataframe("whole"), ctx

    def locate_rows(self, result, df) -> list[dict]:
        """A few {"file", "row"} of rows that fail `result`'s expectation, from its samples; [] when
        the frame has no `_file`/`_row` lineage or the expectation is not row by row."""
        import great_expectations as gx

        if not {"_file", "_row"} <= set(df.columns):
            return []
        mask = _candidates(df, result.expectation_config.kwargs, (result.result or {}).get("partial_unexpected_list"))
        if mask is None or not mask.any():
            return []
        candidates = df[mask].head(self.LOCATE_CANDIDATES).reset_index(drop=True)
        batch_def, ctx = self._locator
        cfg = result.expectation_config
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            suite = ctx.suites.add_or_update(gx.ExpectationSuite(name="locate", expectations=[
                {"type": cfg.type, "kwargs": {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}}]))
            run = ctx.validation_definitions.add_or_update(
                gx.ValidationDefinition(name="locate", data=batch_def, suite=suite)).run(
                batch_parameters={"dataframe": candidates},
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": self.LOCATE_ROWS,
                               "unexpected_index_column_names": ["_file", "_row"]})
        found = (run.results[0].result or {}).get("partial_unexpected_index_list") or []
        return [{"file": str(i["_file"]), "row": int(i["_row"])} for i in found[:self.LOCATE_ROWS]
                if isinstance(i, dict) and i.get("_row") is not None]

    # Data Docs are rendered once per run, not once per suite: validate() queues each result in a
    # file (the checks of one run may run in several processes), render_docs() renders the queue.
    @property
    def _docs_queue(self) -> Path:
        return self.gx_root / "docs_pending.jsonl"

    @contextmanager
    def _docs_lock(self):
        import fcntl

        self.gx_root.mkdir(parents=True, exist_ok=True)
        with open(self.gx_root / "docs_pending.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def queue_docs(self, result_id, gx_suite) -> None:
        line = json.dumps({"result": list(result_id.to_tuple()), "suite": gx_suite.name})
        with self._docs_lock(), open(self._docs_queue, "a") as f:
            f.write(line + "\n")

    def render_docs(self) -> int:
        """Render the Data Docs pages of every queued validation result and the index, in one GE call;
        the queue is emptied only after that call succeeds. Returns how many results were rendered; with
        nothing queued it returns 0 without creating the GE context.
        A line that cannot be read back (a truncated write) is dropped with a warning: its result is
        still in GE's store, only its page is missing."""
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier, ValidationResultIdentifier,
        )

        with self._docs_lock():
            if not self._docs_queue.exists():
                return 0
            ids, suites = [], set()
            for n, line in enumerate(self._docs_queue.read_text().splitlines(), start=1):
                try:
                    item = json.loads(line)
                    ids.append(ValidationResultIdentifier.from_tuple(tuple(item["result"])))
                    suites.add(item["suite"])
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    warnings.warn(f"{self._docs_queue}:{n}: unreadable entry dropped ({exc!r})", stacklevel=2)
            if ids:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.context.build_data_docs(resource_identifiers=[
                        *ids, *(ExpectationSuiteIdentifier(name=s) for s in sorted(suites))])
            self._docs_queue.unlink()
            return len(ids)

    @staticmethod
    def _release_batches(source, collect: bool) -> None:
        """Drop the DataFrame GE keeps in its cached execution engine after a validation, and (after
        a big one) the reference cycles holding earlier ones: without this a process validating batch
        after batch grew ~0.7 GB per 2M-row events batch (6.7 GB at the M benchmark's first load).
        A full collection costs ~0.5 s, so small frames (marts, daily loads) skip it."""
        import gc

        engine = getattr(source, "_execution_engine", None)
        if engine is not None:
            engine.batch_manager._batch_data_cache.clear()
            engine.batch_manager.reset_batch_cache()
        if collect:
            gc.collect()

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
            missing_count=res.get("missing_count"),
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=res.get("unexpected_percent"),
            observed_value=_jsonable(res.get("observed_value")),
            samples=_jsonable(res.get("partial_unexpected_list") or [])[:5],
            kwargs=_jsonable({k: v for k, v in cfg.kwargs.items() if k != "batch_id"}),
            exception=exc or None,
            why=(cfg.meta or {}).get("why"),
        )


def _candidates(df, kwargs: dict, samples):
    """Rows of df holding one of the sampled unexpected values of a row-by-row expectation (a
    column's value, a column pair, a key of columns), as a boolean mask; None for other kinds."""
    import pandas as pd

    if not samples:
        return None

    def equals(col: str, value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return df[col].isna()
        try:
            return df[col] == value
        except (TypeError, ValueError):
            return pd.Series(False, index=df.index)

    mask = pd.Series(False, index=df.index)
    if "column" in kwargs and kwargs["column"] in df.columns:
        for v in samples:
            mask |= equals(kwargs["column"], v)
    elif "column_A" in kwargs and {kwargs["column_A"], kwargs["column_B"]} <= set(df.columns):
        for pair in samples:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                mask |= equals(kwargs["column_A"], pair[0]) & equals(kwargs["column_B"], pair[1])
    elif "column_list" in kwargs and set(kwargs["column_list"]) <= set(df.columns):
        for key in samples:
            if isinstance(key, dict):
                hit = pd.Series(True, index=df.index)
                for col, v in key.items():
                    hit &= equals(col, v)
                mask |= hit
    else:
        return None
    return mask


# ---------------------------------------------------------------------------------------------
# Incremental validation of raw tables: which loads are new, in batches, and what was validated.


@dataclass(frozen=True)
class Load:
    load_id: str
    rows: int
    loaded_at: datetime | None


def current_loads(con, table: str) -> dict[str, Load]:
    """Every load whose rows are in raw.<table> now, with its row count (the load's fingerprint).

    raw._files is the ingest's ledger (rows_loaded counts rows released from quarantine later, a
    superseded load's rows are deleted): cheap, and exact when its counts add up to the table's.
    When they do not (rows written outside ingest), the table itself is grouped by _load_id.
    """
    total = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
    try:
        rows = con.execute(
            "select load_id, rows_loaded, loaded_at from raw._files "
            "where source = ? and status = 'loaded' and load_id is not null", [table]).fetchall()
    except Exception:  # noqa: BLE001 - no ledger: fall back to the table
        rows = None
    if rows is None or sum(r[1] or 0 for r in rows) != total:
        rows = con.execute(
            f"select _load_id, count(*), min(_loaded_at) from raw.{table} group by 1").fetchall()
    return {lid: Load(lid, int(n or 0), at) for lid, n, at in rows if lid is not None}


@dataclass
class ScopePlan:
    table: str
    loads: dict[str, Load]        # every load in the table now
    new: list[Load]               # loads not validated yet (or changed since), oldest first
    batches: list[LoadScope]

    @property
    def new_rows(self) -> int:
        return sum(ld.rows for ld in self.new)


def plan_scope(con, table: str, validated: dict[str, int], batch_rows: int | None = DEFAULT_BATCH_ROWS,
               everything: bool = False) -> ScopePlan:
    """Loads not validated yet, grouped into batches of whole loads of at most `batch_rows` rows
    (a bigger load is a batch of its own: a file is never split, so per-file rules stay exact;
    None: one batch).

    There is always at least one batch (the first one also carries `{old_rows:...}`), so a check
    with nothing new still runs, on an empty frame plus whatever its query asks of the old rows.
    """
    loads = current_loads(con, table)
    new = sorted((ld for ld in loads.values() if everything or validated.get(ld.load_id) != ld.rows),
                 key=lambda ld: (ld.loaded_at or datetime.min, ld.load_id))
    groups: list[list[str]] = []
    size = 0
    for ld in new:
        if ld.rows == 0:
            continue  # a rejected file or one whose rows were all quarantined: nothing to fetch
        if not groups or (batch_rows is not None and size + ld.rows > max(1, batch_rows)):
            groups.append([])
            size = 0
        groups[-1].append(ld.load_id)
        size += ld.rows
    all_new = tuple(ld.load_id for ld in new)
    batches = [LoadScope(table, tuple(g), all_new if i == 0 else None) for i, g in enumerate(groups)]
    if len(groups) == 1 and sum(loads[i].rows for i in groups[0]) == \
            con.execute(f"select count(*) from raw.{table}").fetchone()[0]:
        # a first load (or a full refresh): the batch is the whole table, read as such; a list of
        # every load id made DuckDB scan all of the table's columns to join them back
        batches = [LoadScope(table, None, all_new)]
    if not batches:
        batches = [LoadScope(table, (), all_new)]
    return ScopePlan(table, loads, new, batches)


class ScopeState:
    """Which loads a suite has validated, as JSON: <gx_root>/scope/<suite>.json.

    Written by the check after a validation without critical failures; keyed by the DuckDB file, so
    another warehouse starts from nothing. Load ids are unique per load (time + uuid), so a full
    refresh (fresh DuckDB file) and a corrected redelivery bring loads the state has never seen.
    """

    VERSION = 1

    def __init__(self, directory: Path, suite: str, db: str) -> None:
        self.path = Path(directory) / f"{suite}.json"
        self.suite = suite
        self.db = str(Path(db).resolve())

    def read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if data.get("version") != self.VERSION or data.get("db") != self.db:
            return {}
        return data

    def validated(self, table: str) -> dict[str, int]:
        data = self.read()
        if data.get("table") != table:
            return {}
        return {str(k): int(v) for k, v in (data.get("loads") or {}).items()}

    def watermark(self) -> str | None:
        """The newest loaded_at among the loads validated (ISO, UTC), None before the first pass."""
        return self.read().get("validated_through")

    def write(self, table: str, loads: dict[str, Load]) -> str | None:
        stamps = [ld.loaded_at for ld in loads.values() if ld.loaded_at is not None]
        through = max(stamps).isoformat() if stamps else None
        data = {"version": self.VERSION, "suite": self.suite, "db": self.db, "table": table,
                "validated_through": through, "updated_at": datetime.now().isoformat(timespec="seconds"),
                "loads": {k: ld.rows for k, ld in sorted(loads.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)
        return through


def batch_rows_setting(compiled: bool = True) -> int | None:
    """EW_GE_BATCH_ROWS, else the default of the suite's route: a suite compiled to SQL streams
    through DuckDB in one batch (memory_limit bounds it), the pandas route holds a batch's frame in
    memory."""
    value = os.environ.get("EW_GE_BATCH_ROWS", "").strip()
    return int(value) if value else (DEFAULT_BATCH_ROWS if compiled else PANDAS_BATCH_ROWS)


def combine_outcomes(suite: str, outcomes: list[SuiteOutcome]) -> SuiteOutcome:
    """One outcome from the batches of one validation, as if it had been one frame.

    Map expectations (those counting unexpected rows) sum element, missing and unexpected counts and
    decide success from the sums, `mostly` included, exactly as GE does on one frame; samples come
    from the first batch with unexpected rows. Aggregate expectations (a mean, a distinct count)
    cannot be combined exactly: they pass when every batch passes and report the first failing
    batch's observed value (suites avoid them on batched scopes; see docs/quality.md).
    """
    if len(outcomes) == 1:
        return outcomes[0]
    combined = []
    for parts in zip(*(o.expectations for o in outcomes)):
        first = parts[0]
        failing = next((p for p in parts if not p.success), None)
        exception = next((p.exception for p in parts if p.exception), None)
        if all(p.unexpected_count is not None or p.element_count == 0 for p in parts) and any(
                p.unexpected_count is not None for p in parts):
            element = sum(p.element_count or 0 for p in parts)
            unexpected = sum(p.unexpected_count or 0 for p in parts)
            known_missing = all(p.missing_count is not None or not p.element_count for p in parts)
            missing = sum(p.missing_count or 0 for p in parts) if known_missing else None
            considered = element - (missing or 0)
            mostly = float(first.kwargs.get("mostly", 1) or 1)
            success = unexpected == 0 or considered == 0 or (considered - unexpected) / considered >= mostly
            pct = (unexpected / considered * 100) if considered > 0 else None
            sample_from = next((p for p in parts if p.unexpected_count), failing or first)
            combined.append(ExpectationOutcome(
                type=first.type, column=first.column, severity=first.severity,
                success=bool(success and exception is None), element_count=element, missing_count=missing,
                unexpected_count=unexpected, unexpected_percent=pct,
                observed_value=sample_from.observed_value, samples=sample_from.samples,
                kwargs=first.kwargs, exception=exception, why=first.why,
                rows=next((p.rows for p in parts if p.rows), [])))
        else:
            shown = failing or parts[-1]
            combined.append(ExpectationOutcome(
                type=first.type, column=first.column, severity=first.severity,
                success=all(p.success for p in parts), element_count=sum(p.element_count or 0 for p in parts),
                unexpected_count=None, observed_value=shown.observed_value, samples=shown.samples,
                kwargs=first.kwargs, exception=exception, why=first.why))
    return SuiteOutcome(suite, sum(o.rows for o in outcomes), combined)
