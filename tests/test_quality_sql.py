"""Suites compiled to SQL (lib/quality_sql.py, QualityRunner.validate_query) give what the pandas route
gives on the same rows: success, element/missing/unexpected counts, percentages, the first unexpected
values and the {file,row} of critical failures; and they run without a pandas frame of the rows.

Both routes see the same rows in the same order: the pandas frame is fetched ordered by (_file, _row)
where the rows carry that lineage, the order in which the compiled suite picks its samples.
"""

from __future__ import annotations

import json
import math
import re

import duckdb
import pandas as pd
import pytest
from test_expectations_raw import CASES, CLEAN, OURS, RAW_SUITES, frame

from dagster_project.lib import quality, quality_sql
from dagster_project.lib.contract import SOURCE_NAMES, raw_table_ddl
from dagster_project.lib.quality import QualityRunner, SuiteFile, fetch_frame


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return QualityRunner(tmp_path_factory.mktemp("gx"), build_docs=False)


def _key(e) -> str:
    return json.dumps([e.type, e.kwargs, e.severity], sort_keys=True, default=str)


def _view(e) -> dict:
    pct = e.unexpected_percent
    return {"success": e.success, "element_count": e.element_count, "missing_count": e.missing_count,
            "unexpected_count": e.unexpected_count,
            "unexpected_percent": None if pct is None else round(pct, 9),
            "samples": e.samples, "rows": e.rows, "exception": e.exception, "why": e.why}


def both_routes(runner, con, suite: SuiteFile, query: str):
    """(pandas outcome, SQL outcome) of `suite` over `query`'s rows on `con`."""
    columns = {r[0] for r in con.execute(f"describe ({query})").fetchall()}
    ordered = f"select * from ({query}) order by _file, _row" if {"_file", "_row"} <= columns else query
    pandas = runner.validate(suite, fetch_frame(con, ordered))
    sql = runner.validate_query(suite, con, query)
    return pandas, sql


def assert_same(pandas, sql) -> None:
    assert sql.rows == pandas.rows
    assert len(sql.expectations) == len(pandas.expectations)
    want = {_key(e): _view(e) for e in pandas.expectations}
    got = {_key(e): _view(e) for e in sql.expectations}
    for k, v in want.items():
        mine = got.get(k, {}).get("samples") or []
        if k.startswith('["expect_column_pair_values') and len(mine) == len(v["samples"]):
            # the pandas route lists a pair of timestamps as nanoseconds since 1970; SQL as timestamps
            v["samples"] = [[str(pd.Timestamp(x)) if isinstance(x, int) and isinstance(y, str) else x
                             for x, y in zip(pair, theirs)] for pair, theirs in zip(v["samples"], mine)]
        if v["rows"] == [] and got.get(k, {}).get("rows") and "NaT" in v["samples"]:
            # the pandas route cannot find rows by a NaT sample (NaT != NaT); SQL names them
            v["rows"] = got[k]["rows"]
    differ = {k: (got[k], want[k]) for k in want if got.get(k) != want[k]}
    assert not differ, "\n".join(f"{k}\n  sql:    {g}\n  pandas: {w}" for k, (g, w) in differ.items())
    assert (sql.passed, sql.critical_failed, sql.warning_failed) == (
        pandas.passed, pandas.critical_failed, pandas.warning_failed)
    assert sql.summary() == pandas.summary() or not pandas.passed  # failures may be listed in another order


def raw_con(source: str, rows: list[dict]):
    con = duckdb.connect()
    con.execute("create schema raw")
    for s in SOURCE_NAMES:
        con.execute(raw_table_ddl(s))
    con.register("frame", frame(source, rows))
    con.execute(f"insert into raw.{source} by name select * from frame")
    con.unregister("frame")
    return con


@pytest.mark.parametrize("source,case", [(s, c) for s in OURS for c in [None, *CASES[s]]],
                         ids=[f"{s}-{c.name if c else 'clean'}" for s in OURS for c in [None, *CASES[s]]])
def test_raw_suites_give_the_pandas_routes_outcome(runner, source, case):
    """Every raw suite on test_expectations_raw's clean rows and on each of its planted violations."""
    suite = RAW_SUITES[f"raw_{source}"]
    with raw_con(source, CLEAN[source] + (case.rows if case else [])) as con:
        compiled = quality_sql.compile_suite(
            suite.raw["expectations"], suite.query,
            [(r[0], r[1]) for r in con.execute(f"describe ({suite.query})").fetchall()])
        assert compiled is not None, "every expectation type the raw suites use is compiled"
        pandas, sql = both_routes(runner, con, suite, suite.query)
    assert_same(pandas, sql)
    if case is not None:
        assert not sql.passed  # the comparison covered failing rows


# Every compiled kind and option, on awkward values: NaN, DECIMAL, an INT column with nulls, dates and
# timestamps, JSON and regex edge cases, null keys, missing pair sides; with and without lineage.
EDGE_ROWS = """
    select id, _file, _row, cast(f as double) as f, cast(d as decimal(18, 2)) as d, cast(i as integer) as i,
           cast(dt as date) as dt, cast(ts as timestamp) as ts, s, js, txt, k, maybe
    from (values
      (1, 'a.csv', 1, '1.5', '10.25', '3', '2024-01-01', '2024-01-01 10:00:00', 'x', '{"a": 1}', 'abc', 'K1', null),
      (2, 'a.csv', 2, 'nan', '99.00', null, '2024-01-03', '2024-01-02 10:00:00', 'y', '[1,]', '12', 'K1', 'note'),
      (3, 'a.csv', 3, null, null, '7', null, '2024-01-05 00:00:00', null, 'nan', null, null, null),
      (4, 'b.csv', 1, '7.0', '-1.00', '7', '2024-02-01', null, 'z', '"\\ud800"', 'DEF', 'K2', null),
      (5, 'b.csv', 2, '7.0', '5.00', '100', '2024-02-09', '2024-02-01 00:00:00', 'x', '{"a": [1]}', 'ab\n', null, 'n2'),
      (6, 'b.csv', 3, '-3.0', '5.00', '2', '2024-01-01', '2024-03-01 00:00:00', 'q', '', 'ab', 'K3', null),
      (7, 'c.csv', 1, '2.0', '0.10', null, '2024-03-01', '2024-03-01 00:00:00', 'y', 'Infinity', 'a,b', 'K3', null),
      (8, 'c.csv', 2, '8.0', '0.10', '5', '2023-12-31', '2024-04-01 00:00:00', 'z', '{"k": "inf,]"}', 'zz', null, null)
    ) v(id, _file, _row, f, d, i, dt, ts, s, js, txt, k, maybe)
"""

EDGE_EXPECTATIONS = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "f"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "i", "mostly": 0.5}, "severity": "warning"},
    {"type": "expect_column_values_to_not_be_null",
     "kwargs": {"column": "d", "row_condition": {"type": "comparison", "column": {"name": "s"},
                                                 "operator": "IN", "parameter": ["x", "z"]}}},
    {"type": "expect_column_values_to_not_be_null",
     "kwargs": {"column": "maybe", "row_condition": {"type": "comparison", "column": {"name": "s"},
                                                     "operator": "==", "parameter": "y"}}},
    {"type": "expect_column_values_to_be_null", "kwargs": {"column": "maybe"}, "severity": "warning"},
    {"type": "expect_column_values_to_be_null", "kwargs": {"column": "f"}, "severity": "info"},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "f", "min_value": 0, "max_value": 7}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "d", "min_value": 0.1, "strict_min": True}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "i", "max_value": 7, "strict_max": True}},
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "i", "min_value": 2, "max_value": 7, "mostly": 0.6}, "severity": "warning"},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["x", "y"]}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "i", "value_set": [3, 7, 100]}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "txt", "regex": "^[a-z]+$"}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "[\u4e00-\u9fff]"},
     "severity": "warning"},
    {"type": "expect_column_values_to_be_json_parseable", "kwargs": {"column": "js"}},
    {"type": "expect_column_pair_values_a_to_be_greater_than_b",
     "kwargs": {"column_A": "ts", "column_B": "dt", "or_equal": True, "ignore_row_if": "either_value_is_missing"}},
    {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "f", "column_B": "d"}},
    {"type": "expect_column_pair_values_a_to_be_greater_than_b",
     "kwargs": {"column_A": "i", "column_B": "f", "or_equal": True, "ignore_row_if": "neither"}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["k", "s"]}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["k", "maybe"]}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "k"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "dt"}, "severity": "warning"},
]


def edge_suite(expectations=EDGE_EXPECTATIONS) -> SuiteFile:
    exp = [{"severity": "critical", **e} for e in expectations]
    return SuiteFile("edge", ("x",), "x", "", {"name": "edge", "expectations": exp, "meta": {}})


@pytest.mark.parametrize("lineage", [True, False])
def test_every_compiled_kind_gives_the_pandas_routes_outcome_on_awkward_values(runner, lineage):
    query = EDGE_ROWS if lineage else f"select * exclude (_file, _row) from ({EDGE_ROWS}) order by id"
    suite = edge_suite()
    with duckdb.connect() as con:
        describe = [(r[0], r[1]) for r in con.execute(f"describe ({query})").fetchall()]
        assert quality_sql.compile_suite(suite.raw["expectations"], query, describe) is not None
        pandas, sql = both_routes(runner, con, suite, query)
    assert_same(pandas, sql)
    failed = {e.type for e in sql.failed}
    assert len(failed) == len({e["type"] for e in EDGE_EXPECTATIONS}), "each kind failed on some row"
    located = [e.rows for e in sql.failed if e.severity == "critical"]
    assert all(located) is lineage and any(located) is lineage


def test_json_and_regex_verdicts_are_pythons(runner):
    """DuckDB's json_valid and RE2 alone would get these wrong; the routes still agree value by value."""
    values = ["[1,]", "nan", "Infinity", '"\\ud800"', "[" * 600 + "]" * 600, '{"a": "x,]"}', " {} ", "",
              "{'a': 1}", "1e999", "ab\n"]
    suite = edge_suite([{"type": "expect_column_values_to_be_json_parseable", "kwargs": {"column": "v"}},
                        {"type": "expect_column_values_to_match_regex",
                         "kwargs": {"column": "v", "regex": "^[a-z]+$"}}])
    with duckdb.connect() as con:
        con.execute("create table t (v varchar, _file varchar, _row bigint)")
        con.executemany("insert into t values (?, 'f.jsonl', ?)", [[v, n] for n, v in enumerate(values, 1)])
        pandas, sql = both_routes(runner, con, suite, "select * from t")
    assert_same(pandas, sql)
    by_type = {e.type: e for e in sql.expectations}
    bad_json = {v for v in values if not _loads(v)}
    assert by_type["expect_column_values_to_be_json_parseable"].unexpected_count == len(bad_json) == 5


def _loads(v: str) -> bool:
    try:
        json.loads(v)
        return True
    except ValueError:
        return False


def test_an_expectation_not_compiled_sends_the_suite_to_the_pandas_route(runner, monkeypatch):
    expectations = [{"type": "expect_column_mean_to_be_between", "kwargs": {"column": "f", "min_value": 100}},
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "f"}}]
    suite = edge_suite(expectations)
    with duckdb.connect() as con:
        describe = [(r[0], r[1]) for r in con.execute(f"describe ({EDGE_ROWS})").fetchall()]
        assert quality_sql.compile_suite(suite.raw["expectations"], EDGE_ROWS, describe) is None
        pandas, sql = both_routes(runner, con, suite, EDGE_ROWS)
    assert_same(pandas, sql)
    mean = next(e for e in sql.expectations if e.type == "expect_column_mean_to_be_between")
    assert not mean.success and not math.isnan(mean.observed_value)


def test_a_compiled_suite_fetches_no_rows_into_pandas(runner, monkeypatch):
    """The raw_events suite with critical and warning failures: validated without fetch_frame or GE's
    pandas route, and still locating its critical failures by file and row."""
    def refuse(*_a, **_k):
        raise AssertionError("a compiled suite must not fetch its rows into pandas")

    monkeypatch.setattr(quality, "fetch_frame", refuse)
    monkeypatch.setattr(QualityRunner, "validate", refuse)
    bad = [dict(CLEAN["events"][0], event_id=None), dict(CLEAN["events"][1], platform="fax")]
    with raw_con("events", CLEAN["events"] + bad) as con:
        outcome = runner.validate_query(RAW_SUITES["raw_events"], con, RAW_SUITES["raw_events"].query)
    failed = {(e.type, e.column): e for e in outcome.failed}
    assert outcome.critical_failed
    platform = failed[("expect_column_values_to_be_in_set", "platform")]
    assert platform.unexpected_count == 1 and platform.samples == ["fax"]
    assert platform.rows == [{"file": bad[1].get("_file", "events_20260601.csv"),
                              "row": len(CLEAN["events"]) + 2}]


def test_compiled_results_are_stored_and_render_in_data_docs(tmp_path):
    runner = QualityRunner(tmp_path / "gx")
    with duckdb.connect() as con:
        outcome = runner.validate_query(edge_suite(), con, EDGE_ROWS)
    assert not outcome.passed
    assert runner.render_docs() == 1
    pages = list((runner.docs_index.parent / "validations").rglob("*.html"))
    assert len(pages) == 1
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", pages[0].read_text()))
    # GE's renderer on the compiled results: the rule, its count and the sampled values
    assert "values must be parseable as JSON. 3 unexpected values found." in text
    assert "[1,]" in text and "values must be unique. 4 unexpected values found." in text


def test_decimal_frames_match_pandas_float_view():
    assert quality_sql._frame_value(__import__("decimal").Decimal("0.10"), "decimal", False) == 0.1
    widened = quality_sql._frame_value(5, "int", True)
    assert widened == 5.0 and isinstance(widened, float)
    assert quality_sql._frame_value(pd.Timestamp("2024-01-01").date(), "time", False) == pd.Timestamp("2024-01-01")


def test_a_passing_suite_costs_a_scan_of_counts_and_one_of_keys_a_failing_one_a_third_for_its_samples(
        runner, monkeypatch):
    queries = []
    one_row = quality_sql._one_row
    monkeypatch.setattr(quality_sql, "_one_row", lambda con, sql: queries.append(sql) or one_row(con, sql))
    suite = RAW_SUITES["raw_events"]
    with raw_con("events", CLEAN["events"]) as con:
        assert runner.validate_query(suite, con, suite.query).passed
    assert len(queries) == 2 and not any("min_by" in sql or " over (" in sql for sql in queries)
    # the counts have no DISTINCT (DuckDB would materialize every row for it); the keys are hashes
    assert "distinct" not in queries[0].split(" from (")[0] and "count(distinct hash(" in queries[1]
    queries.clear()
    twice = [CLEAN["events"][0], CLEAN["events"][0]]  # the same event twice more in its file
    with raw_con("events", CLEAN["events"] + twice) as con:
        outcome = runner.validate_query(suite, con, suite.query)
    assert len(queries) == 3 and "min_by" in queries[2]
    unique = next(e for e in outcome.failed if e.type == "expect_compound_columns_to_be_unique")
    assert unique.unexpected_count == 3 and len(unique.rows) == 3


def test_keys_sharing_a_hash_are_counted_exactly_not_failed(runner, monkeypatch):
    """Every key hashing alike (the worst collision): the distinct count flags the uniqueness rule,
    the exact count of duplicated rows clears it."""
    monkeypatch.setattr(quality_sql, "_KEY_HASH", "(0 * hash({}))")
    suite = RAW_SUITES["raw_events"]
    with raw_con("events", CLEAN["events"]) as con:
        outcome = runner.validate_query(suite, con, suite.query)
    assert outcome.passed, outcome.summary()
    unique = next(e for e in outcome.expectations if e.type == "expect_compound_columns_to_be_unique")
    assert unique.success and unique.unexpected_count == 0 and unique.element_count == len(CLEAN["events"])
