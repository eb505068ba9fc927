"""A suite's row-level expectations compiled to aggregate DuckDB queries (issue 21, part 2).

The pandas route (QualityRunner.validate) fetched every row a suite checks into a DataFrame and let
GE walk it: raw_events alone took 1,951 s at preset L. Here each expectation of the types the suites
use becomes a few aggregates over the suite's rows, where they live: one scan of plain counts
(`count(*) filter (where ...)`), and for a suite with a uniqueness rule one more counting its
distinct keys, is all a passing suite costs; only when some expectations failed does a scan, for
those alone, count
duplicated keys row by row (a window) and pick the first unexpected values with their {file,row}
(`min_by(..., 5)`). GE still holds the suites, builds the result dicts (its own
`_format_map_output`, so element/missing/unexpected counts, percentages and `mostly` mean what they
meant) and stores them for Data Docs.

What is compiled, and what pandas did that the SQL must match (tests/test_quality_sql.py runs both
routes on the same rows):

- not_null / be_null (with a `comparison` row_condition, `==` or `IN`): NaN in a float column is
  missing, as pandas has it;
- be_between on numeric columns with numeric bounds: compared as doubles (the frame held DECIMALs
  as float64);
- be_in_set with a value set of strings on a text column or of numbers on a numeric one;
- match_regex: RE2 first; a value RE2 does not match is asked of Python's `re.search` (what pandas'
  `str.contains` uses), so RE2 never decides a failure. A regex with a backslash class (`\\w`,
  `\\d`, `\\b`, ...), where the two disagree in both directions, is not compiled;
- be_json_parseable: DuckDB's `json_valid` accepts what `json.loads` refuses (trailing commas, bare
  `nan`/`inf`, nesting deeper than Python's recursion limit) and refuses what it accepts (escaped
  lone surrogates), so only a value json_valid accepts with none of those shapes passes in SQL;
  every other value is decided by `json.loads`;
- pair a > b (`or_equal`, `ignore_row_if`): a comparison with a missing side is unexpected unless
  ignored, as in pandas; both sides numeric, both naive date/time, or both the same other type;
- compound_columns / column values unique: rows whose key occurs more than once, nulls equal to
  nulls (pandas' `duplicated`), no row_condition.

Anything else (another type, another row_condition, a column missing) sends the whole suite to the
pandas route, unchanged: `compile_suite` returns None; so does a compiled query DuckDB refuses (a
regex RE2 cannot parse), with a warning (QualityRunner.validate_query).

Where the two routes differ, on purpose: expectations are reported grouped by column in suite order
(the pandas route let GE's graph order them), and "the first unexpected values" are the first by
(_file, _row) where the rows have that lineage, else by the query's row order.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

SAMPLES = 5   # partial_unexpected_count: the pandas route's SUMMARY format
LOCATE_ROWS = 5

_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
         "UBIGINT", "UHUGEINT"}
_FLOATS = {"FLOAT", "DOUBLE", "REAL"}
_NAIVE_TIME = {"DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"}


def family(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    if t in _INTS:
        return "int"
    if t in _FLOATS:
        return "float"
    if t.startswith("DECIMAL"):
        return "decimal"
    if t in _NAIVE_TIME:
        return "time"
    if t == "TIMESTAMP WITH TIME ZONE":
        return "timetz"
    if t == "VARCHAR":
        return "text"
    if t == "BOOLEAN":
        return "bool"
    return "other:" + t


def _numeric(fam: str) -> bool:
    return fam in ("int", "float", "decimal")


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return f"cast('{float(v)!r}' as double)"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class NotCompiled(Exception):
    """The expectation is left to the pandas route (the whole suite goes there)."""


@dataclass
class Compiled:
    """One expectation as SQL predicates over the suite's rows (aliased `t`)."""

    index: int                    # position in the suite
    domain: str                   # rows the expectation sees (its row_condition), SQL boolean
    missing: str | None           # rows it ignores as missing (None: it has no missing count)
    unexpected: str               # rows that fail it (among the domain's non-missing rows)
    sample: list[str]             # the column(s) a sampled unexpected value is made of
    shape: str                    # "value", "pair" or "key": how GE lists a sample
    windows: dict[str, str] = field(default_factory=dict)  # extra columns: name -> window SQL


def _null(col: str, fam: str) -> str:
    c = f"t.{q(col)}"
    return f"({c} is null or isnan({c}))" if fam == "float" else f"({c} is null)"


def _row_condition(cond: Any, columns: dict[str, str]) -> str:
    if not cond:
        return "true"
    if not isinstance(cond, dict) or cond.get("type") != "comparison":
        raise NotCompiled(f"row_condition {cond!r}")
    col = (cond.get("column") or {}).get("name")
    if col not in columns:
        raise NotCompiled(f"row_condition column {col!r}")
    op, param = cond.get("operator"), cond.get("parameter")
    fam = columns[col]
    values = param if op == "IN" else [param]
    if op not in ("==", "IN") or not isinstance(values, list) or not values:
        raise NotCompiled(f"row_condition operator {op!r}")
    if not all(isinstance(v, str) for v in values) or fam != "text":
        if not (all(_is_number(v) for v in values) and _numeric(fam)):
            raise NotCompiled("row_condition compares across types")
    # pandas: a null never equals the parameter
    return f"coalesce(t.{q(col)} in ({', '.join(_lit(v) for v in values)}), false)"


def _regex_ok(regex: Any) -> bool:
    return isinstance(regex, str) and not re.search(r"\\[A-Za-z]", regex)


# json_valid accepts these, json.loads does not: a trailing comma, a bare nan/inf token
_JSON_SUSPECT = r"',\s*[\]}]|(^|[\[:,])\s*[-+]?(?i:nan|inf)'"
_JSON_MAX_OPENERS = 400  # fewer openers than this cannot nest past Python's recursion limit


def compile_expectation(i: int, e: dict, columns: dict[str, str]) -> Compiled:
    kind, kw = e.get("type"), dict(e.get("kwargs") or {})
    allowed = {"column", "column_A", "column_B", "column_list", "mostly", "row_condition",
               "condition_parser", "min_value", "max_value", "strict_min", "strict_max", "value_set",
               "regex", "or_equal", "ignore_row_if"}
    if set(kw) - allowed:
        raise NotCompiled(f"{kind}: kwargs {sorted(set(kw) - allowed)}")
    named = [kw[k] for k in ("column", "column_A", "column_B") if k in kw] + list(kw.get("column_list") or [])
    if any(c not in columns for c in named):
        raise NotCompiled(f"{kind}: a column is not in the rows")
    domain = _row_condition(kw.get("row_condition"), columns)
    col = kw.get("column")
    fam = columns.get(col, "")
    c = f"t.{q(col)}" if col else ""
    if kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique") \
            and kw.get("row_condition"):
        raise NotCompiled(f"{kind} with a row_condition")

    if kind == "expect_column_values_to_not_be_null":
        return Compiled(i, domain, None, _null(col, fam), [col], "value")
    if kind == "expect_column_values_to_be_null":
        return Compiled(i, domain, None, f"not {_null(col, fam)}", [col], "value")
    missing = _null(col, fam) if col else None
    if kind == "expect_column_values_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if not _numeric(fam) or not all(v is None or _is_number(v) for v in (lo, hi)) or (lo is None and hi is None):
            raise NotCompiled(f"{kind} on {fam} with bounds {lo!r}, {hi!r}")
        if lo is not None and hi is not None and lo > hi:
            raise NotCompiled(f"{kind}: min_value > max_value (GE raises)")
        v = f"cast({c} as double)"
        ok = []
        if lo is not None:
            ok.append(f"{v} {'>' if kw.get('strict_min') else '>='} {_lit(lo)}")
        if hi is not None:
            ok.append(f"{v} {'<' if kw.get('strict_max') else '<='} {_lit(hi)}")
        return Compiled(i, domain, missing, f"not ({' and '.join(ok)})", [col], "value")
    if kind == "expect_column_values_to_be_in_set":
        values = kw.get("value_set")
        if not isinstance(values, list) or not values:
            raise NotCompiled(f"{kind}: value_set {values!r}")
        if not ((fam == "text" and all(isinstance(v, str) for v in values))
                or (_numeric(fam) and all(_is_number(v) for v in values))):
            raise NotCompiled(f"{kind}: {fam} column against {values!r}")
        cast = c if fam == "text" else f"cast({c} as double)"
        return Compiled(i, domain, missing, f"not ({cast} in ({', '.join(_lit(v) for v in values)}))",
                        [col], "value")
    if kind == "expect_column_values_to_match_regex":
        if fam != "text" or not _regex_ok(kw.get("regex")):
            raise NotCompiled(f"{kind}: {fam} column or regex {kw.get('regex')!r}")
        r = _lit(kw["regex"])
        return Compiled(i, domain, missing,
                        f"not (case when regexp_matches({c}, {r}) then true else ew_re_search({r}, {c}) end)",
                        [col], "value")
    if kind == "expect_column_values_to_be_json_parseable":
        if fam != "text":
            raise NotCompiled(f"{kind} on {fam}")
        openers = f"length({c}) - length(replace(replace({c}, '[', ''), '{{', ''))"
        sure = f"json_valid({c}) and not regexp_matches({c}, {_JSON_SUSPECT}) and {openers} < {_JSON_MAX_OPENERS}"
        return Compiled(i, domain, missing, f"not (case when {sure} then true else ew_json_loads({c}) end)",
                        [col], "value")
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = kw["column_A"], kw["column_B"]
        fa, fb = columns[a], columns[b]
        if _numeric(fa) and _numeric(fb):
            # NaN compares as the greatest double in DuckDB, as False in pandas: make it null
            va, vb = (f"nullif(cast(t.{q(x)} as double), 'nan'::double)" for x in (a, b))
        elif fa == fb or {fa, fb} <= {"time"}:
            va, vb = f"t.{q(a)}", f"t.{q(b)}"
        else:
            raise NotCompiled(f"{kind}: {fa} against {fb}")
        ignore = kw.get("ignore_row_if", "both_values_are_missing")
        na, nb = _null(a, fa), _null(b, fb)
        skip = {"both_values_are_missing": f"({na} and {nb})", "either_value_is_missing": f"({na} or {nb})",
                "neither": "false"}.get(ignore)
        if skip is None:
            raise NotCompiled(f"{kind}: ignore_row_if {ignore!r}")
        op = ">=" if kw.get("or_equal") else ">"
        return Compiled(i, domain, skip, f"not coalesce({va} {op} {vb}, false)", [a, b], "pair")
    if kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"):
        cols = list(kw["column_list"]) if kind == "expect_compound_columns_to_be_unique" else [col]
        if kind == "expect_compound_columns_to_be_unique":
            if kw.get("ignore_row_if", "all_values_are_missing") != "all_values_are_missing":
                raise NotCompiled(f"{kind}: ignore_row_if {kw.get('ignore_row_if')!r}")
            missing = "(" + " and ".join(_null(k, columns[k]) for k in cols) + ")"
        if any(columns[k] == "float" for k in cols):
            raise NotCompiled(f"{kind} on a float column (NaN and null are one key in pandas)")
        dup = f"_ew_dup_{i}"
        window = f"count(*) over (partition by {', '.join(q(k) for k in cols)})"
        return Compiled(i, domain, missing, f"t.{dup} > 1", cols,
                        "key" if kind == "expect_compound_columns_to_be_unique" else "value", {dup: window})
    raise NotCompiled(f"{kind} is not compiled")


# A key's hash, counted distinct for a uniqueness rule: 8 bytes a key in DuckDB's hash table instead
# of the key's strings. Two keys sharing a hash can only make the rule look failed, never passed
# (equal keys hash equal); the rows are then counted exactly, by the window in details_sql.
_KEY_HASH = "hash({})"


@dataclass
class CompiledSuite:
    """A suite as aggregate queries over `query`: the counts of every expectation and the distinct
    keys of its uniqueness rules (what a passing suite costs), then, only when some failed, their
    first unexpected values."""

    query: str
    items: list[Compiled]
    lineage: bool                 # the rows carry _file and _row
    columns: dict[str, str]       # column -> family

    @staticmethod
    def _bad(it: Compiled) -> str:
        return f"{it.domain} and {'not ' + it.missing + ' and ' if it.missing is not None else ''}{it.unexpected}"

    def counts_sql(self) -> str:
        """Per expectation: rows in its domain, missing ones, unexpected ones (a uniqueness rule's
        unexpected rows: `keys_sql`). No DISTINCT here: next to other aggregates, DuckDB computes
        a distinct count by materializing every row of the query first (88M events: a third of
        the suite's time)."""
        aggs = ["count(*) as n"]
        for it in self.items:
            d, i = it.domain, it.index
            aggs.append(f"count(*) filter (where {d}) as e{i}_n")
            if it.missing is not None:
                aggs.append(f"count(*) filter (where {d} and {it.missing}) as e{i}_m")
            if not it.windows:
                aggs.append(f"count(*) filter (where {self._bad(it)}) as e{i}_u")
        return f"select {', '.join(aggs)} from ({self.query}) t"

    def keys_sql(self) -> str | None:
        """The distinct keys of each uniqueness rule (a hash aggregate over the key columns alone,
        no window): with as many keys as rows a rule has no unexpected row, and only otherwise is
        it counted row by row in `details_sql`. None without a uniqueness rule."""
        aggs = []
        for it in self.items:
            if it.windows:
                key = _KEY_HASH.format(", ".join(f"t.{q(c)}" for c in it.sample))
                aggs.append(f"count(distinct {key}) filter (where {it.domain} and not {it.missing}) as e{it.index}_d")
        return f"select {', '.join(aggs)} from ({self.query}) t" if aggs else None

    def details_sql(self, failing: list[Compiled]) -> str:
        """For the expectations that failed: unexpected rows counted (uniqueness) and the first
        SAMPLES of them, by (_file, _row) where the rows have that lineage, else in query order."""
        windows = {k: v for it in failing for k, v in it.windows.items()}
        extra = [f"{v} as {k}" for k, v in windows.items()]
        if not self.lineage:
            extra.append("row_number() over () as _ew_pos")
        rows = f"(select *{''.join(', ' + x for x in extra)} from ({self.query}) _ew_q)" if extra else f"({self.query})"
        order = "struct_pack(f := t._file, r := t._row)" if self.lineage else "t._ew_pos"
        probes = self.int_columns(failing)
        aggs = [f"bool_or(t.{q(c)} is null) as _ew_null_{k}" for k, c in enumerate(probes)] or ["count(*) as n"]
        for it in failing:
            bad = self._bad(it)
            if it.windows:
                aggs.append(f"count(*) filter (where {bad}) as e{it.index}_u")
            values = ", ".join(f"v{k} := t.{q(c)}" for k, c in enumerate(it.sample))
            lineage = ", f := t._file, r := t._row" if self.lineage else ""
            aggs.append(f"min_by(struct_pack({values}{lineage}), {order}, {SAMPLES}) filter (where {bad}) "
                        f"as e{it.index}_s")
        return f"select {', '.join(aggs)} from {rows} t"

    def int_columns(self, failing: list[Compiled]) -> list[str]:
        """Integer columns sampled: whether they hold a null (pandas makes such a column float)."""
        return sorted({c for it in failing for c in it.sample if self.columns[c] == "int"})


def compile_suite(expectations: list[dict], query: str, describe: list[tuple[str, str]]) -> CompiledSuite | None:
    """The suite compiled over `query`, or None when an expectation is not compiled."""
    columns = {name: family(t) for name, t in describe}
    try:
        items = [compile_expectation(i, e, columns) for i, e in enumerate(expectations)]
    except NotCompiled:
        return None
    return CompiledSuite(query, items, {"_file", "_row"} <= set(columns), columns)


def _re_search(regex: str, value: str) -> bool:
    return re.search(regex, value) is not None


def _json_loads(value: str) -> bool:
    try:
        json.loads(value)
        return True
    except Exception:  # noqa: BLE001 - GE's pandas metric: anything json.loads raises is "not JSON"
        return False


_FUNCTIONS = (("ew_re_search", _re_search, ["VARCHAR", "VARCHAR"]), ("ew_json_loads", _json_loads, ["VARCHAR"]))


@contextmanager
def python_verdicts(con):
    """Python's verdicts for the values RE2 / json_valid cannot decide alone (see the module doc),
    as DuckDB functions for one query. Removed after it: a connection left holding Python functions
    makes the interpreter report leaked objects at exit."""
    for name, fn, args in _FUNCTIONS:
        con.create_function(name, fn, args, "BOOLEAN", side_effects=False)
    try:
        yield
    finally:
        for name, _, _ in _FUNCTIONS:
            con.remove_function(name)


def _frame_value(v: Any, fam: str, int_with_nulls: bool) -> Any:
    """A value as the pandas route's frame held it (fetch_frame): dates and timestamps as pandas
    Timestamps (a null one as NaT), DECIMAL as float, an integer column with a null as float, NaN as missing."""
    import pandas as pd

    if v is None:
        return pd.NaT if fam in ("time", "timetz") else None
    if fam in ("time", "timetz"):
        return pd.Timestamp(v)
    if fam == "decimal" or isinstance(v, Decimal):
        return float(v)
    if fam == "int" and int_with_nulls:
        return float(v)
    if fam == "float" and v != v:
        return None
    return v


@dataclass
class CompiledResult:
    """What one expectation's aggregates say, in the terms GE's map expectations use."""

    element_count: int
    nonnull_count: int | None
    unexpected_count: int
    samples: list
    rows: list[dict]


def _one_row(con, sql: str) -> dict:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    (values,) = cur.fetchall()  # to the end: DuckDB 2.0 keeps a half-read result open
    return dict(zip(names, values))


def run(con, compiled: CompiledSuite) -> tuple[int, list[CompiledResult]]:
    with python_verdicts(con):
        counts = _one_row(con, compiled.counts_sql())
        if (keys := compiled.keys_sql()) is not None:
            counts |= _one_row(con, keys)
        failing = []
        for it in compiled.items:
            i = it.index
            if it.windows:
                considered = counts[f"e{i}_n"] - counts[f"e{i}_m"]
                if counts[f"e{i}_d"] < considered:
                    failing.append(it)
                else:
                    counts[f"e{i}_u"] = 0
            elif counts[f"e{i}_u"]:
                failing.append(it)
        details = _one_row(con, compiled.details_sql(failing)) if failing else {}
    counts.update(details)
    probes = compiled.int_columns(failing)
    nullable = {c for k, c in enumerate(probes) if details.get(f"_ew_null_{k}")}
    out = []
    for it in compiled.items:
        n = int(counts[f"e{it.index}_n"])
        missing = int(counts[f"e{it.index}_m"]) if it.missing is not None else None
        found = counts.get(f"e{it.index}_s") or []
        values = [[_frame_value(s[f"v{k}"], compiled.columns[c], c in nullable) for k, c in enumerate(it.sample)]
                  for s in found]
        if it.shape == "value":
            samples = [v[0] for v in values]
        elif it.shape == "pair":
            samples = [tuple(v) for v in values]
        else:
            samples = [dict(zip(it.sample, v)) for v in values]
        rows = [{"file": str(s["f"]), "row": int(s["r"])} for s in found
                if compiled.lineage and s.get("r") is not None][:LOCATE_ROWS]
        out.append(CompiledResult(n, None if missing is None else n - missing, int(counts[f"e{it.index}_u"]),
                                  samples, rows))
    return int(counts["n"]), out
