"""The shipped rules (alerts/*.yml) on hand-built series that a real shop produces: an A/A test,
a file that lands late, payment callbacks still arriving, a small shop's quiet days.

Each test loads the rule from its team file as shipped, so a change to the YAML is tested too.
Expected values are computed here from the definitions (two-proportion z-test, binomial sampling),
not from the engine.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from dagster_project.lib.alerts.engine import evaluate
from dagster_project.lib.alerts.rules import RULES_DIR, load_rules
from dagster_project.lib.alerts.series import _fill_missing_days, fetch_series

NOW = datetime(2026, 12, 1, 7, 0)
D0 = date(2026, 7, 1)


def shipped(rule_id: str):
    return next(r for r in load_rules(RULES_DIR) if r.rule_id == rule_id)


def days(n: int, start: date = D0) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def states(out: pl.DataFrame, dims: str | None = None) -> dict[date, str]:
    if dims is not None:
        out = out.filter(pl.col("dims") == dims)
    return dict(out.select("metric_date", "state").iter_rows())


def experiment_daily(con, rows) -> None:
    con.execute("create schema marts")
    con.execute("create table marts.mart_experiment_daily (experiment_id varchar, variant varchar, "
                "is_control boolean, assignment_date date, users_assigned integer, users integer, "
                "conversions integer)")
    con.executemany("insert into marts.mart_experiment_daily values (?, ?, ?, ?, ?, ?, ?)", rows)


def aa_rows(rng, experiment: str, n_days: int, users: int, rate: float, treatment_rate: float | None = None,
            broken: set[int] = frozenset()):
    rows = []
    for i, d in enumerate(days(n_days)):
        for variant in ("control", "treatment"):
            n = int(rng.poisson(users))
            p = treatment_rate if variant == "treatment" and i in broken else rate
            rows.append((experiment, variant, variant == "control", d, n, n, int(rng.binomial(n, p))))
    return rows


def test_variants_rule_is_a_two_proportion_z_test_against_the_same_dates_control():
    rule = shipped("operations.experiment_variant_worse")
    with duckdb.connect() as con:
        experiment_daily(con, [
            ("e1", "control", True, D0, 400, 400, 80), ("e1", "treatment", False, D0, 400, 400, 40),
            ("e1", "control", True, D0 + timedelta(days=1), 400, 400, 80),
            ("e1", "treatment", False, D0 + timedelta(days=1), 400, 400, 76),
        ])
        series = fetch_series(con, rule)
    assert series["dims"].unique().to_list() == ["experiment_id=e1, variant=treatment"]
    out = evaluate(rule, series, None, NOW).sort("metric_date")
    # 40/400 vs 80/400: pooled 120/800, se = sqrt(p(1-p)(2/400))
    pooled = 120 / 800
    z = (40 / 400 - 80 / 400) / math.sqrt(pooled * (1 - pooled) * (2 / 400))
    assert out["z_score"][0] == pytest.approx(z)
    assert out["baseline"][0] == pytest.approx(0.2)
    assert z < -3.09  # one-sided alpha 0.001
    assert out["is_breach"].to_list() == [True, False]


def test_nothing_fires_on_aa_experiments_and_a_broken_variant_does():
    """40 A/A experiments of 90 days (~300 customers per arm a day, 20% conversion) never fire;
    a treatment that converts at 5% for 5 days (a broken checkout) fires from its second day."""
    rule = shipped("operations.experiment_variant_worse")
    rng = np.random.default_rng(23)
    rows = [r for k in range(40) for r in aa_rows(rng, f"aa{k}", 90, 300, 0.20)]
    rows += aa_rows(rng, "broken", 90, 300, 0.20, 0.05, broken=set(range(40, 45)))
    with duckdb.connect() as con:
        experiment_daily(con, rows)
        out = evaluate(rule, fetch_series(con, rule), None, NOW)
    firing = out.filter(pl.col("state") == "firing")
    assert set(firing["dims"].to_list()) == {"experiment_id=broken, variant=treatment"}
    assert sorted(firing["metric_date"].to_list()) == days(4, D0 + timedelta(days=41))
    assert out.filter(pl.col("state") != "not_evaluated").height == 41 * 90


def test_a_variants_rule_leaves_a_small_arm_unevaluated():
    rule = shipped("operations.experiment_variant_worse")
    assert rule.rule.min_volume is not None
    few = int(rule.rule.min_volume) - 1
    with duckdb.connect() as con:
        experiment_daily(con, [("e", "control", True, d, few, few, few) for d in days(3)]
                         + [("e", "treatment", False, d, 500, 500, 0) for d in days(3)])
        out = evaluate(rule, fetch_series(con, rule), None, NOW)
    assert set(out["state"].to_list()) == {"not_evaluated"}
    assert all("min_volume" in r for r in out["reason"].to_list())


def test_a_file_a_day_late_is_not_a_stopped_source():
    """orders delivers daily; the file of the day before the latest has not landed yet (it comes
    tomorrow, out of order). Filled with 0 as a missing day, it must not fire; three days without
    a file still do once settled."""
    rule = shipped("data.source_stopped_delivering")
    d = days(30)
    late = [(x, "source=orders", 200.0, None) for x in d if x != d[-2]]
    frame = _fill_missing_days(pl.DataFrame(late, schema=["metric_date", "dims", "value", "denominator"],
                                            orient="row"))
    out = evaluate(rule, frame, None, NOW)
    assert "firing" not in states(out).values()
    stopped = [(x, "source=orders", 200.0, None) for x in d[:24]] + [(d[-1], "source=events", 9.0, None)]
    frame = _fill_missing_days(pl.DataFrame(stopped, schema=["metric_date", "dims", "value", "denominator"],
                                            orient="row"), d[-1])
    st = states(evaluate(rule, frame, None, NOW), "source=orders")
    assert [x for x, s in st.items() if s == "firing"] == d[24:28]


def test_payment_success_is_judged_once_late_callbacks_have_landed():
    """Payment-success events land up to 3 days late: the last dates' success rate is still low.
    Those dates are not evaluated; a drop on a settled date is."""
    rule = shipped("operations.payment_success_drop")
    rng = np.random.default_rng(5)
    d = days(80)
    n = 300
    rate = [rng.binomial(n, 0.68) / n for _ in d]
    rate[-3:] = [0.30, 0.45, 0.60]  # callbacks of the last three dates still arriving
    frame = pl.DataFrame({"metric_date": d, "dims": "platform=ios", "value": rate, "denominator": float(n)})
    st = states(evaluate(rule, frame, None, NOW))
    assert "firing" not in st.values()
    assert [st[x] for x in d[-3:]] == ["not_evaluated"] * 3
    rate[-5] = 0.30
    st = states(evaluate(rule, frame.with_columns(value=pl.Series(rate)), None, NOW))
    assert st[d[-5]] == "firing"


def test_min_volume_of_a_count_is_its_usual_size():
    """A value metric's volume is the median of its 28 dates before: a source of ~2 rows a day
    (a small shop's order items) is too small to call a 0 a stop; the first date has no volume."""
    rule = shipped("data.source_stopped_delivering")
    assert rule.rule.min_volume is not None
    d = days(40)
    rng = np.random.default_rng(3)
    small = [float(rng.poisson(2)) for _ in d]
    small[30] = 0.0
    frame = pl.DataFrame({"metric_date": d, "dims": "source=order_items", "value": small})
    out = evaluate(rule, frame, None, NOW)
    assert "firing" not in states(out).values()
    assert out.filter(pl.col("state") != "not_evaluated").height == 0
    big = [200.0] * 40
    big[30] = 0.0
    st = states(evaluate(rule, frame.with_columns(value=pl.Series(big)), None, NOW))
    assert st[d[0]] == "not_evaluated" and st[d[1]] == "ok" and st[d[30]] == "firing"


@pytest.mark.parametrize("rule_id", ["growth.d1_retention_floor", "growth.d1_retention_drop",
                                     "operations.payment_success_drop"])
def test_rate_rules_skip_days_of_few_users(rule_id):
    """~10 new users (or payments) a day: a D1 rate of 0/10 happens by chance (0.6^10 ~ 0.6%, a day
    in six months) and must not count; the shipped rules need min_volume users that day."""
    rule = shipped(rule_id)
    assert rule.rule.min_volume is not None and rule.rule.min_volume > 10
    d = days(60)
    frame = pl.DataFrame({"metric_date": d, "dims": "", "value": [0.0] * 60, "denominator": 10.0})
    out = evaluate(rule, frame, None, NOW)
    assert set(out["state"].to_list()) == {"not_evaluated"}


def retention_world(con, last_session: date | None) -> None:
    """60 registration dates of 100 new users, D1 ~45%; events (sessions) end on last_session, after
    which the mart's d1_users read 0 (the data end date is the orders')."""
    rng = np.random.default_rng(11)
    con.execute("create schema marts")
    con.execute("create table marts.mart_activity_retention (registration_date date, new_users integer, "
                "d1_users integer)")
    con.execute("create table marts.fct_sessions (session_date date)")
    d = days(60)
    con.executemany("insert into marts.mart_activity_retention values (?, ?, ?)", [
        (x, 100, int(rng.binomial(100, 0.45)) if last_session and x + timedelta(days=1) <= last_session else 0)
        for x in d])
    if last_session:
        con.executemany("insert into marts.fct_sessions values (?)", [(x,) for x in d if x <= last_session])


@pytest.mark.parametrize("stop", [50, None])
def test_d1_retention_is_not_judged_after_the_last_event_date(stop):
    """Events trail the orders by 10 days (or the shop has none): D1 of those registration dates is
    0 in the mart but unobserved, not a collapse; nothing fires and those dates are not evaluated."""
    from dagster_project.lib.alerts.evaluate import evaluate_all

    rules = [r for r in load_rules(RULES_DIR) if r.rule_id in ("growth.d1_retention_drop",
                                                                 "growth.d1_retention_floor")]
    last_session = D0 + timedelta(days=stop) if stop else None
    with duckdb.connect() as con:
        retention_world(con, last_session)
        out, problems = evaluate_all(con, rules, NOW)
    assert not problems
    assert out.filter(pl.col("state") == "firing").height == 0
    evaluated = out.filter(pl.col("state") != "not_evaluated")
    if stop is None:
        assert evaluated.height == 0
    else:
        # D1 of a registration date needs the next day's events: the last observed date is stop - 1
        assert evaluated["metric_date"].max() == last_session - timedelta(days=1)
        floor = evaluated.filter(pl.col("rule_id") == "growth.d1_retention_floor")
        assert floor.height == stop


def test_a_variants_message_says_what_was_compared():
    from dagster_project.lib.alerts.notify import why

    row = {"kind": "variants", "unit": "share", "value": 0.10, "baseline": 0.20, "deviation": -0.5,
           "z_score": -3.96, "threshold": 0.16, "direction": "below"}
    assert why(row, "en") == ("converts at 10.0% against the control's 20.0% "
                              "(two-proportion z = 4.0, significantly lower)")
    assert why(row, "zh") == "转化率 10.0%，对照组 20.0%（双比例z检验 z=4.0，显著偏低）"


def test_a_source_quiet_over_the_spring_festival_has_not_stopped():
    """cs_tickets delivers daily from January, nothing over the 2026 Spring Festival holiday
    (02-15..02-23 in the holidays seed, is_public_holiday in dim_date), and stops for real on
    03-02..03-04: only the real stop fires (from its second day). Before, the daily flag stuck and
    each holiday day was a 0."""
    rule = shipped("data.service_tickets_stopped")
    d = days(70, date(2026, 1, 10))
    holiday = set(days(9, date(2026, 2, 15)))
    stop = set(days(3, date(2026, 3, 2)))
    with duckdb.connect() as con:
        con.execute("create schema marts")
        con.execute("create table marts.mart_data_quality (check_date date, check_name varchar, source varchar, "
                    "rows_checked integer)")
        con.executemany("insert into marts.mart_data_quality values (?, 'quarantined_rows', ?, ?)",
                        [(x, "cs_tickets", 40) for x in d if x not in holiday | stop]
                        + [(x, "orders", 300) for x in d])
        con.execute("create table marts.dim_date (date_day date, is_public_holiday boolean)")
        con.executemany("insert into marts.dim_date values (?, ?)", [(x, x in holiday) for x in d])
        out = evaluate(rule, fetch_series(con, rule), None, NOW)
    firing = sorted(out.filter(pl.col("state") == "firing")["metric_date"].to_list())
    assert firing == sorted(stop)[1:]
    assert not holiday & set(out["metric_date"].to_list())
