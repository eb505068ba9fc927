"""Mart and cross-source GE suites, and the daily quality mart.

Every mart_*/cross_* suite runs its own query on a small hand-made DuckDB file: clean rows pass,
planted violations fail exactly the expectations they target, with the planted unexpected counts
and the suite's severities. On the generated dataset (truth_warehouse) the mart suites pass, and
tracking coverage and payment-event lag are recomputed here in plain Python from the raw tables and
compared with the suite's observed values, the per-date figures of marts.mart_data_quality (dbt) and
truth.json.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import numpy as np
import pytest

from dagster_project.lib.contract import SOURCE_NAMES
from dagster_project.lib.quality import SUITES_DIR, QualityRunner, discover_suites, load_suite_file

MART_SUITES = ["mart_repurchase_cohort", "mart_cohort_retention", "mart_funnel_daily", "mart_ltv_cohort",
               "mart_customer_segments", "mart_ltv_predicted", "mart_activity_retention"]
CROSS_SUITES = ["cross_order_items_orders", "cross_orders_pay_amount", "cross_tracking_coverage",
                "cross_identity_coverage", "cross_freshness"]
TRACKED_CHANNELS = ("app", "mini_program", "web")


@pytest.fixture(scope="module")
def compiled_view(tmp_path_factory, run_dbt):
    """`compiled_view(model, **env)`: SQL creating the dbt model a suite validates, as dbt compiles it
    (with these environment variables, e.g. an SLA override), over the hand-made tables of a test's
    DuckDB file."""
    def compile_(model: str, **env: str) -> str:
        work = tmp_path_factory.mktemp("dbt_compile")
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            result = run_dbt(work / "compile.duckdb", work, "compile", "--select", model)
        assert result.success, result.exception
        (compiled,) = (work / "target" / "compiled").rglob(f"{model}.sql")
        sql = re.sub(r'"[^"]+"\."(\w+)"\."(\w+)"', r"\1.\2", compiled.read_text())  # drop dbt's database name
        return f"\ncreate schema if not exists intermediate;\ncreate view intermediate.{model} as {sql};"

    return compile_


@pytest.fixture(scope="module")
def payment_tracking_view(compiled_view) -> str:
    return compiled_view("int_quality__payment_tracking")


@pytest.fixture(scope="module")
def identity_coverage_view(compiled_view) -> str:
    return compiled_view("int_quality__identity_coverage")


@pytest.fixture(scope="module")
def freshness_view(compiled_view) -> str:
    return compiled_view("int_quality__source_freshness")


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    r = QualityRunner(tmp_path_factory.mktemp("gx"), build_docs=False)
    r.context  # noqa: B018 - GE's context takes seconds: build it once for the module
    return r


def _db(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / f"t{len(list(tmp_path.glob('*.duckdb')))}.duckdb"
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()
    return path


def _run(runner, name: str, db: Path, query: str | None = None):
    suite = load_suite_file(SUITES_DIR / f"{name}.json")
    con = duckdb.connect(str(db), read_only=True)
    try:
        return runner.validate_query(suite, con, query or suite.query)
    finally:
        con.close()


def _key(e) -> tuple:
    kw = e.kwargs
    if "column_list" in kw:
        return e.type, tuple(kw["column_list"])
    if "column_A" in kw:
        return e.type, (kw["column_A"], kw["column_B"])
    return e.type, kw.get("column")


def _failures(outcome) -> dict:
    for e in outcome.expectations:
        assert e.exception is None, (e.label, e.exception)
    return {_key(e): (e.unexpected_count, e.severity) for e in outcome.failed}


def _observed(outcome, type_: str, column: str):
    (e,) = [e for e in outcome.expectations if e.type == type_ and e.kwargs.get("column") == column]
    return e


def test_suite_files_load_and_name_known_assets():
    suites = {s.name: s for s in discover_suites()}
    for name in MART_SUITES:
        assert suites[name].asset == ("marts", name)
    assert suites["cross_order_items_orders"].asset == ("raw", "order_items")
    assert suites["cross_orders_pay_amount"].asset == ("raw", "orders")
    # these validate a dbt model whole, found through the manifest
    for name, model in (("cross_tracking_coverage", "int_quality__payment_tracking"),
                        ("cross_identity_coverage", "int_quality__identity_coverage"),
                        ("cross_freshness", "int_quality__source_freshness")):
        assert suites[name].asset == ("intermediate", model)
        assert suites[name].query == f"select * from intermediate.{model}"
        assert "query" not in suites[name].raw["meta"]["ew"], name
    for name in CROSS_SUITES:  # silo checks warn, except the order_items key
        sev = {e.get("severity") for e in suites[name].raw["expectations"]}
        assert sev <= ({"critical"} if name == "cross_order_items_orders" else {"warning", "info"}), name


# ------------------------------------------------------------------------------------- marts
def _repurchase_sql(bad: bool) -> str:
    rows = [("2026-01-01", 10, 4, 0.4, True, "final", 0.4, 20 if bad else 30),
            ("2026-02-01", 5, 1, 1.2 if bad else 0.2, True, "final", 0.2, 30),
            ("2026-03-01", 5, 0, 0.0, False, "final" if bad else "provisional", None, 12)]
    if bad:
        rows.append(("2026-04-01", 2, 1, 0.5, False, "provisional", 0.3, 5))
    n_dim = 21 if bad else 20  # bad: cohorts sum to 22, dim_customers says 21
    values = ", ".join(
        f"(date '{m}', {c}, {r}, {rate}, {str(comp).lower()}, '{st}', {'null' if fin is None else fin}, {obs})"
        for m, c, r, rate, comp, st, fin, obs in rows)
    return f"""
        create schema marts;
        create table marts.mart_repurchase_cohort (cohort_month date, customers integer, repurchased_30d integer,
            repurchase_rate_30d double, is_complete boolean, repurchase_status varchar,
            final_repurchase_rate_30d double, min_observed_days integer);
        insert into marts.mart_repurchase_cohort values {values};
        create table marts.dim_customers as
            select 'c' || i as customer_key, case when i <= {n_dim} then date '2026-01-05' end as first_purchase_date
            from range(1, {n_dim + 4}) t(i);
    """


def _cohort_retention_sql(bad: bool) -> str:
    rows = [("month", "2026-01-01", 0, 10, 10), ("month", "2026-01-01", 1, 10, 4), ("month", "2026-01-01", 2, 10, 3),
            ("week", "2026-01-05", 0, 4, 4), ("week", "2026-01-05", 1, 4, 5 if bad else 1)]
    if bad:
        rows += [("month", "2026-02-01", 0, 10, 9), ("month", "2026-01-01", 2, 10, 3)]
    values = ", ".join(f"('{g}', date '{s}', {k}, {n}, {a}, {a / n})" for g, s, k, n, a in rows)
    return f"""
        create schema marts;
        create table marts.mart_cohort_retention (cohort_grain varchar, cohort_start date, period_index integer,
            cohort_size integer, active_customers integer, retention_rate double);
        insert into marts.mart_cohort_retention values {values};
    """


def _funnel_sql(bad: bool) -> str:
    steps = ["product_view", "add_to_cart", "checkout_start", "payment_submit", "payment_success"]
    groups = [("ios", "new", [100, 40, 20, 10, 8])]
    groups.append(("web", "returning", [50, 60, 30, 35, 10] if bad else [50, 30, 20, 15, 10]))
    rows = []
    for plat, ctype, sessions in groups:
        for k, n in enumerate(sessions):
            step_conv = "null" if k == 0 else n / sessions[k - 1]
            rows.append(f"(date '2026-01-01', '{plat}', '{ctype}', {k + 1}, '{steps[k]}', {n}, {step_conv}, "
                        f"{n / sessions[0]})")
    return f"""
        create schema marts;
        create table marts.mart_funnel_daily (event_date date, platform varchar, customer_type varchar,
            step_order integer, step varchar, sessions bigint, step_conversion double, overall_conversion double);
        insert into marts.mart_funnel_daily values {", ".join(rows)};
    """


def _ltv_cohort_sql(bad: bool) -> str:
    rows = [("2026-01-01", "app", 30, 10, 100.0), ("2026-01-01", "app", 90, 10, 150.0),
            ("2026-01-01", "jd", 30, 5, 80.0), ("2026-01-01", "jd", 90, 5, 80.0 - 1e-9)]  # within tolerance
    if bad:
        rows += [("2026-02-01", "web", 30, 8, 120.0), ("2026-02-01", "web", 90, 8, 110.0),
                 ("2026-02-01", "douyin", 30, 0, 0.0)]
    values = ", ".join(f"(date '{m}', '{c}', {h}, {n}, {v!r}, {v / 2!r})" for m, c, h, n, v in rows)
    return f"""
        create schema marts;
        create table marts.mart_ltv_cohort (cohort_month date, first_channel varchar, horizon_days integer,
            customers integer, ltv_net double, ltv_margin double);
        insert into marts.mart_ltv_cohort values {values};
    """


def _segments_sql(bad: bool) -> str:
    segs = ["core_loyal", "potential_loyal", "periodic", "new", "at_risk", "churned"]
    rows = [(f"c{i}", s, 1 + i % 5, 1 + (i + 1) % 5, 1 + (i + 2) % 5) for i, s in enumerate(segs)]
    if bad:
        rows += [("c0", "at_risk", 2, 2, 2),    # c0 in two segments on one date
                 ("c7", "vip", 3, 3, 3),        # unknown segment
                 ("c8", "new", 6, 3, 0)]        # r_score 6, m_score 0
    values = ", ".join(f"('{c}', date '2026-03-31', '{s}', {r}, {f}, {m}, 'novice', false)" for c, s, r, f, m in rows)
    return f"""
        create schema marts;
        create table marts.mart_customer_segments (customer_key varchar, as_of_date date, segment varchar,
            r_score integer, f_score integer, m_score integer, lifecycle_tier varchar, churn_warning boolean);
        insert into marts.mart_customer_segments values {values};
    """


def _ltv_predicted_sql(bad: bool) -> str:
    rows = [("c1", 0.9, 0.5, 1.8, 120.0), ("c2", 0.1, 0.01, 0.02, 1.0), ("c3", 1.0, 1.0, 3.9, 300.0)]
    if bad:
        rows += [("c4", 1.2, 0.5, 1.5, 50.0), ("c5", 0.5, 0.3, 1.0, -5.0), ("c6", 0.5, 0.8, 0.7, 10.0)]
    values = ", ".join(f"('{c}', date '2026-03-31', {p}, {e90}, {e365}, {v})" for c, p, e90, e365, v in rows)
    return f"""
        create schema marts;
        create table marts.mart_ltv_predicted (customer_key varchar, as_of_date date, p_alive double,
            exp_purchases_90d double, exp_purchases_365d double, clv_12m double);
        insert into marts.mart_ltv_predicted values {values};
    """


def _activity_sql(bad: bool) -> str:
    rows = [("2026-01-01", 10, 3, 2, 1), ("2026-01-02", 8, 2, 1, None), ("2026-01-03", 5, None, None, None)]
    if bad:
        rows[0] = ("2026-01-01", 10, 12, 2, 1)
        rows.append(("2026-01-04", 4, 1, -0.4, None))
    def v(x, n):
        return ("null", "null") if x is None else (str(x), str(x / n))
    out = []
    for d, n, a, b, c in rows:
        (a1, r1), (a7, r7), (a30, r30) = v(a, n), v(b, n), v(c, n)
        out.append(f"(date '{d}', {n}, {a1}, {a7}, {a30}, {r1}, {r7}, {r30})")
    return f"""
        create schema marts;
        create table marts.mart_activity_retention (registration_date date, new_users bigint, d1_users bigint,
            d7_users double, d30_users bigint, d1_rate double, d7_rate double, d30_rate double);
        insert into marts.mart_activity_retention values {", ".join(out)};
    """


BETWEEN, NULL, PAIR = ("expect_column_values_to_be_between", "expect_column_values_to_be_null",
                       "expect_column_pair_values_a_to_be_greater_than_b")
COMPOUND, IN_SET = "expect_compound_columns_to_be_unique", "expect_column_values_to_be_in_set"
MART_CASES = {
    "mart_repurchase_cohort": (_repurchase_sql, {
        (BETWEEN, "repurchase_rate_30d"): (1, "critical"),
        (NULL, "incomplete_cohort_reported_final"): (2, "critical"),
        (NULL, "completeness_mismatch_cohort"): (1, "critical"),
        (BETWEEN, "cohort_size_difference"): (1, "critical")}),
    "mart_cohort_retention": (_cohort_retention_sql, {
        (BETWEEN, "period_0_rate"): (1, "critical"),
        (BETWEEN, "retention_rate"): (1, "critical"),
        (PAIR, ("cohort_size", "active_customers")): (1, "critical"),
        (COMPOUND, ("cohort_grain", "cohort_start", "period_index")): (2, "critical")}),
    "mart_funnel_daily": (_funnel_sql, {
        (BETWEEN, "sessions_increase"): (2, "critical"),
        (BETWEEN, "step_conversion"): (2, "critical"),
        (BETWEEN, "overall_conversion"): (1, "critical")}),
    "mart_ltv_cohort": (_ltv_cohort_sql, {
        (BETWEEN, "ltv_net_increase"): (1, "critical"),
        (BETWEEN, "customers"): (1, "critical")}),
    "mart_customer_segments": (_segments_sql, {
        (COMPOUND, ("customer_key", "as_of_date")): (2, "critical"),
        (IN_SET, "segment"): (1, "critical"),
        (BETWEEN, "r_score"): (1, "critical"),
        (BETWEEN, "m_score"): (1, "critical")}),
    "mart_ltv_predicted": (_ltv_predicted_sql, {
        (BETWEEN, "p_alive"): (1, "critical"),
        (BETWEEN, "clv_12m"): (1, "critical"),
        (PAIR, ("exp_purchases_365d", "exp_purchases_90d")): (1, "critical")}),
    "mart_activity_retention": (_activity_sql, {
        (BETWEEN, "d1_rate"): (1, "critical"),
        (BETWEEN, "d7_rate"): (1, "critical"),
        (PAIR, ("new_users", "d1_users")): (1, "critical")}),
}


@pytest.mark.parametrize("name", MART_SUITES)
def test_mart_suite_clean_passes_planted_fails(runner, tmp_path, name):
    build, expected = MART_CASES[name]
    clean = _run(runner, name, _db(tmp_path, build(False)))
    assert _failures(clean) == {} and clean.passed, clean.summary()
    bad = _run(runner, name, _db(tmp_path, build(True)))
    assert _failures(bad) == expected, bad.summary()
    assert bad.critical_failed


def test_repurchase_cohort_samples_name_the_cohorts(runner, tmp_path):
    out = _run(runner, "mart_repurchase_cohort", _db(tmp_path, _repurchase_sql(True)))
    e = _observed(out, NULL, "incomplete_cohort_reported_final")
    assert sorted(e.samples) == ["2026-03-01", "2026-04-01"]


# ------------------------------------------------------------------------------------- cross
def _order_items_sql(bad: bool) -> str:
    lines = [("O1", 1), ("O1", 2), ("O2", 1)] + ([("X9", 1), ("X9", 2), ("Y7", 1)] if bad else [])
    values = ", ".join(f"('{o}', {n}, 'order_items_20260101.csv', {row}, date '2026-01-01')"
                       for row, (o, n) in enumerate(lines, start=1))
    return f"""
        create schema raw;
        create table raw.orders (order_id varchar, order_ts timestamp);
        insert into raw.orders values ('O1', timestamp '2026-01-01 02:00:00'), ('O1', timestamp '2026-01-01 02:00:00'),
                                      ('O2', timestamp '2026-01-01 03:00:00');
        create table raw.order_items (order_id varchar, line_no bigint, _file varchar, _row bigint, _file_date date);
        insert into raw.order_items values {values};
    """


def test_cross_order_items_orders(runner, tmp_path):
    assert _run(runner, "cross_order_items_orders", _db(tmp_path, _order_items_sql(False))).passed
    out = _run(runner, "cross_order_items_orders", _db(tmp_path, _order_items_sql(True)))
    assert _failures(out) == {(IN_SET, "order_exists"): (3, "critical")}
    # where to look: the planted lines are rows 4-6 of the file
    assert sorted(r["row"] for r in _observed(out, IN_SET, "order_exists").rows) == [4, 5, 6]
    assert {r["file"] for r in _observed(out, IN_SET, "order_exists").rows} == {"order_items_20260101.csv"}


def _pay_sql(bad: bool) -> str:
    rows = [("A1", 100, 10, 5, 95), ("A2", 50, None, None, 50), ("A3", 80, 0, 12, 92.01),  # 0.01 is tolerated
            ("A4", 30, 5, None, 25)]
    if bad:
        rows += [("B1", 100, 10, 5, 95.02), ("B2", 60, None, 6, 61)]
    values = ", ".join(
        f"('{o}', 'orders_20260101.csv', date '2026-01-01', timestamp '2026-01-01 02:00:00', {i}, "
        f"{'null' if d is None else d}, {'null' if s is None else s}, {p})" for o, i, d, s, p in rows)
    return f"""
        create schema raw;
        create table raw.orders (order_id varchar, _file varchar, _file_date date, order_ts timestamp,
            items_amount decimal(18,2), discount_amount decimal(18,2), shipping_fee decimal(18,2),
            pay_amount decimal(18,2));
        insert into raw.orders values {values};
    """


def test_cross_orders_pay_amount(runner, tmp_path):
    assert _run(runner, "cross_orders_pay_amount", _db(tmp_path, _pay_sql(False))).passed
    out = _run(runner, "cross_orders_pay_amount", _db(tmp_path, _pay_sql(True)))
    assert _failures(out) == {(BETWEEN, "pay_amount_diff"): (2, "warning"), (NULL, "mismatched_order_id"): (2, "info")}
    assert sorted(_observed(out, NULL, "mismatched_order_id").samples) == ["B1", "B2"]
    assert out.warning_failed and not out.critical_failed


def _tracking_sql(bad: bool) -> str:
    paid0 = datetime(2026, 3, 1, 10, 0, 0)
    orders, events = [], []
    for i in range(100):
        oid = f"T{i:03d}"
        paid = paid0 + timedelta(hours=i)
        orders.append(f"('{oid}', '{TRACKED_CHANNELS[i % 3]}', timestamp '{paid}', date '{paid.date()}')")
        lag = i % 5 + 0.5
        if bad:
            if i < 3:
                continue                 # 3 of 100 paid orders never seen by tracking
            lag = 10 if i < 60 else -10 if i == 60 else 60 if i <= 66 else lag
        events.append(f"('E{i}', '{oid}', 'payment_success', timestamp '{paid + timedelta(minutes=lag)}')")
    events.append(f"('E1000', 'T010', 'payment_success', timestamp '{paid0 + timedelta(days=30)}')")  # a later repeat
    events.append(f"('E1001', 'T011', 'payment_submit', timestamp '{paid0}')")
    orders += [f"('M1', 'tmall', timestamp '{paid0}', date '{paid0.date()}')",       # marketplace: never tracked
               "('U1', 'app', null, null)"]                                          # not paid
    return f"""
        create schema staging;
        create table staging.stg_oms__orders (order_id varchar, channel varchar, paid_at timestamp, paid_date date);
        insert into staging.stg_oms__orders values {", ".join(orders)};
        create table staging.stg_tracking__events (event_id varchar, order_id varchar, event_name varchar,
            event_at timestamp);
        insert into staging.stg_tracking__events values {", ".join(events)};
    """


def _lag_quantiles(db: Path) -> tuple[float, float]:
    """The p50 and p95 the suite's query puts on every row (one value per run)."""
    suite = load_suite_file(SUITES_DIR / "cross_tracking_coverage.json")
    with duckdb.connect(str(db), read_only=True) as con:
        (row,) = con.execute(f"select distinct lag_p50_min, lag_p95_min from ({suite.query})").fetchall()
    return row


def test_cross_tracking_coverage(runner, tmp_path, payment_tracking_view):
    db = _db(tmp_path, _tracking_sql(False) + payment_tracking_view)
    clean = _run(runner, "cross_tracking_coverage", db)
    assert clean.passed and clean.rows == 100, clean.summary()
    assert _observed(clean, IN_SET, "has_payment_event").unexpected_count == 0
    clean_lags = np.array([i % 5 + 0.5 for i in range(100)])
    assert _lag_quantiles(db) == pytest.approx((np.quantile(clean_lags, 0.5), np.quantile(clean_lags, 0.95)))

    db = _db(tmp_path, _tracking_sql(True) + payment_tracking_view)
    out = _run(runner, "cross_tracking_coverage", db)
    # coverage 97 of 100; the quantiles are on every row, so all 100 rows carry the too-high value
    assert _failures(out) == {(IN_SET, "has_payment_event"): (3, "warning"),
                              (BETWEEN, "lag_p50_min"): (100, "warning"),
                              (BETWEEN, "lag_p95_min"): (100, "warning"),
                              (BETWEEN, "payment_event_lag_min"): (1, "info")}
    assert _observed(out, IN_SET, "has_payment_event").unexpected_percent == pytest.approx(3.0)
    assert _observed(out, BETWEEN, "lag_p50_min").samples[0] == pytest.approx(10)
    assert _observed(out, BETWEEN, "lag_p95_min").samples[0] == pytest.approx(60)
    assert _lag_quantiles(db) == pytest.approx((10, 60))
    assert not out.critical_failed


def test_coverage_with_nothing_to_measure_passes(runner, tmp_path, payment_tracking_view, identity_coverage_view):
    """A shop without own-channel paid orders (marketplace-only, or not paid yet) has no coverage to
    judge, and one without any event no identity share: nothing to warn about. Paid app orders and no
    events at all is a real gap: 0% coverage warns, and the lag rules, with no lag, stay quiet."""
    no_tracked = _db(tmp_path, """
        create schema staging;
        create table staging.stg_oms__orders (order_id varchar, channel varchar, paid_at timestamp, paid_date date);
        insert into staging.stg_oms__orders values ('M1', 'tmall', timestamp '2026-03-01 10:00:00', date '2026-03-01');
        create table staging.stg_tracking__events (event_id varchar, order_id varchar, event_name varchar,
            event_at timestamp);""" + payment_tracking_view)
    out = _run(runner, "cross_tracking_coverage", no_tracked)
    assert out.rows == 0 and out.passed, out.summary()
    untracked = _db(tmp_path, """
        create schema staging;
        create table staging.stg_oms__orders (order_id varchar, channel varchar, paid_at timestamp, paid_date date);
        insert into staging.stg_oms__orders values ('A1', 'app', timestamp '2026-03-01 10:00:00', date '2026-03-01'),
            ('A2', 'web', timestamp '2026-03-01 11:00:00', date '2026-03-01');
        create table staging.stg_tracking__events (event_id varchar, order_id varchar, event_name varchar,
            event_at timestamp);""" + payment_tracking_view)
    assert _failures(_run(runner, "cross_tracking_coverage", untracked)) == {
        (IN_SET, "has_payment_event"): (2, "warning")}
    no_events = _db(tmp_path, _identity_sql(0).replace("from range(100)", "from range(0)") + identity_coverage_view)
    out = _run(runner, "cross_identity_coverage", no_events)
    assert out.rows == 0 and out.passed, out.summary()


def _identity_sql(attributed: int) -> str:
    return f"""
        create schema intermediate;
        create table intermediate.int_events_attributed as
            select 'e' || i as event_id, date '2026-01-01' + cast(i % 3 as integer) as event_date,
                   case when i < {attributed} then 'c' || (i % 7) end as customer_key
            from range(100) t(i);
    """


def test_cross_identity_coverage(runner, tmp_path, identity_coverage_view):
    ok = _run(runner, "cross_identity_coverage", _db(tmp_path, _identity_sql(95) + identity_coverage_view))
    assert ok.passed and ok.rows == 1
    out = _run(runner, "cross_identity_coverage", _db(tmp_path, _identity_sql(90) + identity_coverage_view))
    assert _failures(out) == {(BETWEEN, "is_attributed"): (1, "warning")}
    assert _observed(out, BETWEEN, "is_attributed").samples == [pytest.approx(0.9)]


FRESH_COLUMNS = {"users": "registered_at", "products": "_loaded_at", "orders": "order_ts",
                 "order_items": "_loaded_at", "events": "event_ts", "returns": "requested_at",
                 "shipments": "shipped_at", "cs_tickets": "created_at", "campaigns": "start_at",
                 "marketing_touches": "sent_at", "inventory_snapshots": "snapshot_date",
                 "experiment_assignments": "assigned_at", "member_events": "event_ts", "ad_spend": "date",
                 "private_domain_events": "event_ts"}


def _freshness_sql(bad: bool) -> str:
    stmts = ["create schema raw;"]
    for s, col in FRESH_COLUMNS.items():
        if col in ("snapshot_date", "date"):  # a source whose newest data is a date
            stmts.append(f"create table raw.{s} as select cast(timezone('UTC', now()) as date) as {col};")
            continue
        age = {"orders": 20, "users": 2 * 1440}.get(s, 1) if bad else 1
        stmts.append(f"create table raw.{s} as select timezone('UTC', now()) - interval {age} minute as {col};")
        if bad and s == "events":
            stmts.append("delete from raw.events;")
    return "\n".join(stmts)


def test_cross_freshness(runner, tmp_path, freshness_view, compiled_view):
    assert _run(runner, "cross_freshness", _db(tmp_path, _freshness_sql(False) + freshness_view)).passed
    db = _db(tmp_path, _freshness_sql(True) + freshness_view)
    out = _run(runner, "cross_freshness", db)
    assert _failures(out) == {(IN_SET, "within_sla"): (3, "warning"), (NULL, "stale_source"): (3, "info")}
    samples = sorted(_observed(out, NULL, "stale_source").samples)
    assert [s.split(":")[0] for s in samples] == ["events", "orders", "users"]
    assert "events: newest data missing, SLA 60 min" in samples
    with duckdb.connect(str(db), read_only=True) as con:
        slas = dict(con.sql("select source, sla_minutes from intermediate.int_quality__source_freshness").fetchall())
    assert (slas["orders"], slas["events"], slas["users"]) == (15, 60, 1440)  # the contract's
    # SLA overrides: EW_SLA_ORDERS_MIN=30 at dbt time makes 20-minute-old orders fresh
    relaxed = _db(tmp_path, _freshness_sql(True) + compiled_view("int_quality__source_freshness",
                                                                 EW_SLA_ORDERS_MIN="30"))
    assert _failures(_run(runner, "cross_freshness", relaxed)) == {
        (IN_SET, "within_sla"): (2, "warning"), (NULL, "stale_source"): (2, "info")}


# --------------------------------------------------------------------------- generated dataset
@pytest.fixture(scope="module")
def truth_con(truth_warehouse):
    con = duckdb.connect(str(truth_warehouse.db), read_only=True)
    yield con
    con.close()


@pytest.mark.parametrize("name", MART_SUITES)
def test_mart_suites_pass_on_truth_warehouse(runner, truth_warehouse, name):
    out = _run(runner, name, truth_warehouse.db)
    assert out.rows > 0
    assert out.passed and _failures(out) == {}, out.summary()


def _independent_tracking(con) -> tuple[dict, dict]:
    """Plain Python: paid app/mini_program/web orders (newest row per order by _file_date, _loaded_at,
    _row) -> (paid business date, paid_ts), and each order's first payment_success event time."""
    newest: dict[str, tuple] = {}
    for oid, ch, paid, fd, la, row in con.execute(
            "select order_id, channel, paid_ts, _file_date, _loaded_at, _row from raw.orders").fetchall():
        k = (fd, la, row)
        if oid not in newest or k > newest[oid][0]:
            newest[oid] = (k, ch, paid)
    paid = {oid: p for oid, (_, ch, p) in newest.items() if p is not None and ch in TRACKED_CHANNELS}
    ev_newest: dict[str, tuple] = {}
    for eid, name, oid, ts, fd, la, row in con.execute(
            "select event_id, event_name, order_id, event_ts, _file_date, _loaded_at, _row from raw.events "
            "where event_name = 'payment_success'").fetchall():
        k = (fd, la, row)
        if eid not in ev_newest or k > ev_newest[eid][0]:
            ev_newest[eid] = (k, name, oid, ts)
    first_event: dict[str, datetime] = {}
    for _, _name, oid, ts in ev_newest.values():
        if oid is not None and (oid not in first_event or ts < first_event[oid]):
            first_event[oid] = ts
    return paid, first_event


def _quality_mart(con) -> pl.DataFrame:
    """marts.mart_data_quality as the pipeline's dbt step built it."""
    return pl.from_arrow(con.sql("select * from marts.mart_data_quality").to_arrow_table())


def _shanghai_date(ts: datetime) -> date:
    return (ts + timedelta(hours=8)).date()  # raw timestamps are UTC; Asia/Shanghai has no DST


def test_tracking_coverage_and_lag_match_independent_figures(runner, truth_warehouse, truth_con):
    paid, first_event = _independent_tracking(truth_con)
    covered = [oid for oid in paid if oid in first_event]
    lags = np.array([(first_event[o] - paid[o]).total_seconds() / 60 for o in covered])
    assert len(paid) > 500 and len(covered) > 0.9 * len(paid)

    # truth.json (the generator's own count)
    truth = truth_warehouse.truth["tracking_coverage"]
    assert (truth["paid_orders"], truth["covered"]) == (len(paid), len(covered))

    # (a) the suite's observed values
    out = _run(runner, "cross_tracking_coverage", truth_warehouse.db)
    assert out.rows == len(paid)
    assert _observed(out, IN_SET, "has_payment_event").unexpected_count == len(paid) - len(covered)
    assert _lag_quantiles(truth_warehouse.db) == pytest.approx(
        (float(np.quantile(lags, 0.5)), float(np.quantile(lags, 0.95))), abs=1e-9)

    # (b) the data-quality mart, per paid date and in total
    dq = _quality_mart(truth_con)
    cov = {r["check_date"]: r for r in dq.filter(dq["check_name"] == "tracking_coverage").iter_rows(named=True)}
    assert sum(r["rows_checked"] for r in cov.values()) == len(paid)
    assert sum(r["rows_checked"] - r["unexpected_count"] for r in cov.values()) == len(covered)
    by_day_paid, by_day_lags = defaultdict(int), defaultdict(list)
    for ts in paid.values():
        by_day_paid[_shanghai_date(ts)] += 1
    for oid, lag in zip(covered, lags):
        by_day_lags[_shanghai_date(paid[oid])].append(lag)
    assert {d: r["rows_checked"] for d, r in cov.items()} == dict(by_day_paid)
    for check, q in (("payment_event_lag_p50", 0.5), ("payment_event_lag_p95", 0.95)):
        rows = {r["check_date"]: r for r in dq.filter(dq["check_name"] == check).iter_rows(named=True)}
        assert set(rows) == set(by_day_lags)
        for d, values in by_day_lags.items():
            assert rows[d]["value"] == pytest.approx(float(np.quantile(values, q)), abs=1e-9), (check, d)
            assert rows[d]["rows_checked"] == len(values)

    # (c) mart_kpi_targets' actuals (docs/metrics.md): by paid month, the share of paid tracked orders
    # tracking saw, and the p95 of the covered orders' lag in hours
    by_month_paid, by_month_lags = defaultdict(int), defaultdict(list)
    for ts in paid.values():
        by_month_paid[_shanghai_date(ts).replace(day=1)] += 1
    for oid, lag in zip(covered, lags):
        by_month_lags[_shanghai_date(paid[oid]).replace(day=1)].append(lag)
    kpi = {(target, month): value for target, month, value in truth_con.execute(
        "select target_id, period_start, actual_value from marts.mart_kpi_targets "
        "where target_id in ('tracking_coverage', 'order_behaviour_lag')").fetchall()}
    for month, n in by_month_paid.items():
        assert kpi[("tracking_coverage", month)] == pytest.approx(len(by_month_lags[month]) / n, abs=1e-12)
        month_lags = by_month_lags[month]
        assert kpi[("order_behaviour_lag", month)] == (pytest.approx(
            float(np.quantile(month_lags, 0.95)) / 60, abs=1e-9) if month_lags else None), month
    assert {month for (_, month), value in kpi.items() if value is not None} == set(by_month_paid)


def test_data_quality_mart_on_truth_warehouse(truth_con):
    dq = _quality_mart(truth_con)
    assert dq.select("check_name", "source", "check_date").is_duplicated().sum() == 0
    assert set(dq["status"].unique()) <= {"pass", "warn", "fail"}
    assert set(dq["check_name"].unique()) == {
        "tracking_coverage", "payment_event_lag_p50", "payment_event_lag_p95", "order_items_unknown_order",
        "pay_amount_mismatch", "identity_coverage", "quarantined_rows", "freshness"}
    # thresholds come from the suites
    thresholds = {c: set(dq.filter(dq["check_name"] == c)["threshold"].unique())
                  for c in ("tracking_coverage", "payment_event_lag_p50", "payment_event_lag_p95", "identity_coverage")}
    assert thresholds == {"tracking_coverage": {0.98}, "payment_event_lag_p50": {5.0},
                          "payment_event_lag_p95": {30.0}, "identity_coverage": {0.93}}
    # quarantine per source adds up to raw.quarantine; identity coverage counts every attributed event
    q = dq.filter(dq["check_name"] == "quarantined_rows")
    assert int(q["unexpected_count"].sum()) == truth_con.execute("select count(*) from raw.quarantine").fetchone()[0]
    assert set(q.filter(q["unexpected_count"] > 0)["status"].unique()) == {"warn"}
    ic = dq.filter(dq["check_name"] == "identity_coverage")
    n, ok = truth_con.execute("select count(*), count(customer_key) from intermediate.int_events_attributed").fetchone()
    assert (int(ic["rows_checked"].sum()), int((ic["rows_checked"] - ic["unexpected_count"]).sum())) == (n, ok)
    # a generated history is days old: freshness warns (never fails) for every dated source
    fr = dq.filter(dq["check_name"] == "freshness")
    assert fr.height == len(SOURCE_NAMES) and set(fr["status"].unique()) <= {"pass", "warn"}
    assert fr.filter(fr["source"] == "orders")["status"].item() == "warn"
    assert dq.filter(dq["check_name"].is_in(["order_items_unknown_order", "pay_amount_mismatch"]))[
        "unexpected_count"].sum() == 0


def test_mart_data_quality_has_its_key_and_status_reports_the_latest_days_not_passing(truth_warehouse, truth_con):
    """The dbt model's contract keeps the key the Python mart had, and `ecomwh status` (which finds the
    mart through the dbt manifest) lists exactly the checks that do not pass on their latest date."""
    import json
    import subprocess
    import sys

    (pk,) = truth_con.execute("select count(*) from duckdb_constraints() where table_name = 'mart_data_quality' "
                              "and constraint_type = 'PRIMARY KEY'").fetchall()
    assert pk == (1,)
    dq = _quality_mart(truth_con)
    latest = dq.group_by("check_name", "source").agg(pl.col("check_date").max())
    expected = sorted((r["check_name"], r["source"], r["check_date"].isoformat(), r["status"])
                      for r in dq.join(latest, on=["check_name", "source", "check_date"])
                      .filter(pl.col("status") != "pass").iter_rows(named=True))
    assert ("freshness", "orders") in {(c, s) for c, s, _, _ in expected}  # a generated history is stale

    env = {"EW_HOME": str(truth_warehouse.home), "PATH": "/usr/bin:/bin", "HOME": str(truth_warehouse.home.parent)}
    out = subprocess.run([sys.executable, "-m", "dagster_project.cli", "status", "--json"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    quality = json.loads(out.stdout)["quality"]
    assert sorted((q["check"], q["source"], q["date"], q["status"]) for q in quality["not_passing"]) == expected
    assert sum(quality["status_counts"].values()) == latest.height


def test_every_planted_bad_row_is_counted_by_the_quality_mart(truth_warehouse):
    """The generator's --bad-rate rows, per source: quarantined at ingest and counted in the
    daily quality figures, equal to truth.json's planted counts."""
    con = duckdb.connect(str(truth_warehouse.db), read_only=True)
    try:
        dq = _quality_mart(con)
    finally:
        con.close()
    q = dq.filter(dq["check_name"] == "quarantined_rows").group_by("source").agg(
        pl.col("unexpected_count").sum().alias("n"))
    counted = {r["source"]: int(r["n"]) for r in q.iter_rows(named=True) if r["n"]}
    planted = {s: n for s, n in truth_warehouse.truth["bad_rows_per_source"].items() if n}
    assert counted == planted
    assert sum(counted.values()) == truth_warehouse.truth["bad_rows_total"]
