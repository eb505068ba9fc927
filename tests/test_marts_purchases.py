"""Purchase metric marts (repurchase, cohort retention, LTV) against the generator's truth.json.

The generator computes these metrics from its own rows with a separate, deliberately simple
implementation (see truth["definitions"]); the marts must agree exactly on counts, to 1e-9 on rates.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from mart_rows import dict_rows as _rows  # tests/ is on sys.path (pytest rootdir conftest)

RATE_TOL = 1e-9


@pytest.fixture(scope="module")
def con(truth_warehouse):
    connection = duckdb.connect(str(truth_warehouse.db), read_only=True)
    yield connection
    connection.close()


def period_label(grain: str, start: dt.date) -> str:
    """The truth's period names: 'YYYY-MM', ISO week 'YYYY-Www', quarter 'YYYY-Qn'."""
    if grain == "month":
        return start.strftime("%Y-%m")
    if grain == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    iso_year, iso_week, _ = start.isocalendar()
    return f"{iso_year}-W{iso_week:02d}"


def test_period_label_iso_week_year():
    # 2026-12-28 is a Monday in ISO week 53 of 2026; 2024-12-30 is in week 1 of 2025.
    assert period_label("week", dt.date(2026, 12, 28)) == "2026-W53"
    assert period_label("week", dt.date(2024, 12, 30)) == "2025-W01"
    assert period_label("quarter", dt.date(2026, 10, 1)) == "2026-Q4"


def _assert_rows_match(actual: dict, expected: dict, counts: list[str], rates: list[str], label: str) -> None:
    assert actual.keys() == expected.keys(), f"{label}: keys differ: {sorted(actual.keys() ^ expected.keys())}"
    for key, exp in expected.items():
        got = actual[key]
        for col in counts:
            assert got[col] == exp[col], f"{label} {key} {col}: mart {got[col]} != truth {exp[col]}"
        for col in rates:
            assert got[col] == pytest.approx(exp[col], abs=RATE_TOL), (
                f"{label} {key} {col}: mart {got[col]} != truth {exp[col]}"
            )


def test_data_end_date_is_one_date_for_every_mart(con, truth_warehouse):
    """B10: one model defines the data end date (and where the data starts); every mart is measured
    against it, and it is the truth's: the latest business date with an order or an event."""
    bounds = truth_warehouse.truth["data_bounds"]
    start, end = con.execute(
        "select data_start_date, data_end_date from intermediate.int_data_end_dates_resolved").fetchone()
    assert (start.isoformat(), end.isoformat()) == (bounds["data_start_date"], bounds["data_end_date"])
    # on generated data with orders and events every day it is the generator's window
    assert bounds["data_end_date"] == truth_warehouse.truth["window"]["data_end_date"]
    per_mart = {
        "repurchase": "select max(data_end_date) from marts.mart_repurchase_cohort",
        "activity retention": "select max(data_end_date) from marts.mart_activity_retention",
        "segments": "select max(as_of_date) from marts.mart_customer_segments where is_data_end_date",
        "predicted LTV": "select max(as_of_date) from marts.mart_ltv_predicted",
        "source lag": "select max(data_end_date) from marts.mart_source_lag",
    }
    assert {name: con.execute(sql).fetchone()[0] for name, sql in per_mart.items()} == dict.fromkeys(per_mart, end)


def test_source_lag_equals_truth(con, truth_warehouse):
    """B10: each source's lag from the data end date, for the quality dashboard."""
    mart = {r["source"]: r for r in _rows(con, "select * from marts.mart_source_lag")}
    truth = truth_warehouse.truth["source_lag"]
    assert set(mart) == set(truth)
    for source, t in truth.items():
        assert mart[source]["latest_date"].isoformat() == t["latest_date"], source
        assert mart[source]["lag_days"] == t["lag_days"], source
    assert {s for s, r in mart.items() if r["defines_data_end_date"]} == {"orders", "events"}


def test_repurchase_30d_matches_truth(con, truth_warehouse):
    truth = {r["cohort_month"]: r for r in truth_warehouse.truth["repurchase_30d"]}
    mart = {
        r["cohort_month"].strftime("%Y-%m"): r
        for r in _rows(con, "select * from marts.mart_repurchase_cohort")
    }
    _assert_rows_match(
        mart, truth, counts=["customers", "repurchased_30d", "is_complete"], rates=["repurchase_rate_30d"],
        label="mart_repurchase_cohort",
    )
    # an incomplete cohort never looks final
    for key, row in mart.items():
        assert (row["repurchase_status"] == "final") == row["is_complete"], key
        assert (row["final_repurchase_rate_30d"] is None) != row["is_complete"], key
    assert not all(r["is_complete"] for r in mart.values()), "the latest cohorts must be incomplete"


@pytest.mark.parametrize("grain", ["week", "month", "quarter"])
def test_period_repurchase_matches_truth(con, truth_warehouse, grain):
    truth_rows = truth_warehouse.truth["period_repurchase"].get(grain)
    if truth_rows is None:
        pytest.skip(f"truth.json has no {grain} periods")
    truth = {r["period"]: r for r in truth_rows}
    mart = {
        period_label(grain, r["period_start"]): {**r, "rate": r["period_repurchase_rate"],
                                                 "net_revenue": float(r["net_revenue"]),
                                                 "repeat_net_revenue": float(r["repeat_net_revenue"])}
        for r in _rows(con, "select * from marts.mart_repurchase_period where period_grain = ?", [grain])
    }
    # B2: complete only when the data covers the period at both ends; B12: repeat revenue is revenue of
    # purchase days after the first, as the repurchase rate counts purchase days
    _assert_rows_match(
        mart, truth, counts=["buyers", "repeat_buyers", "is_complete"],
        rates=["rate", "repeat_revenue_share"], label=f"mart_repurchase_period {grain}"
    )
    for key, exp in truth.items():
        for col in ("net_revenue", "repeat_net_revenue"):
            assert mart[key][col] == pytest.approx(exp[col], abs=0.005), (grain, key, col)
    first = min(truth)
    assert not truth[first]["is_complete"], "the demo starts mid-period: the first period is partial"


def test_cohort_retention_month_matches_truth(con, truth_warehouse):
    truth = {(r["cohort_month"], r["period_index"]): r for r in truth_warehouse.truth["cohort_retention"]}
    mart = {
        (r["cohort_start"].strftime("%Y-%m"), r["period_index"]): r
        for r in _rows(con, "select * from marts.mart_cohort_retention where cohort_grain = 'month'")
    }
    _assert_rows_match(
        mart, truth, counts=["cohort_size", "active_customers"], rates=["retention_rate"],
        label="mart_cohort_retention",
    )


def test_purchase_marts_agree_with_each_other(con, truth_warehouse):
    """Cohort sizes are the same customers in every mart, and channel splits add up to the whole."""
    cohorts = dict(con.execute("select cohort_month, customers from marts.mart_repurchase_cohort").fetchall())
    assert sum(cohorts.values()) == truth_warehouse.truth["counts"]["buyers"]
    by_channel = dict(con.execute(
        "select cohort_month, sum(customers) from marts.mart_repurchase_cohort_channel group by 1"
    ).fetchall())
    assert by_channel == cohorts
    funnel = dict(con.execute(
        "select cohort_month, customers from marts.mart_repurchase_funnel"
        " where first_channel = 'all' and horizon_days = 30"
    ).fetchall())
    assert funnel == {month: n for month, n in cohorts.items() if month in funnel}
    retention = dict(con.execute(
        "select cohort_start, cohort_size from marts.mart_cohort_retention"
        " where cohort_grain = 'month' and period_index = 0"
    ).fetchall())
    assert retention == cohorts
    week_total = con.execute(
        "select sum(cohort_size) from marts.mart_cohort_retention where cohort_grain = 'week' and period_index = 0"
    ).fetchone()[0]
    assert week_total == sum(cohorts.values())
    ltv = _rows(con, "select * from marts.mart_ltv_cohort where first_channel = 'all'")
    assert ltv, "at least the 30-day horizon is observed for the early cohorts"
    for row in ltv:
        assert row["customers"] == cohorts[row["cohort_month"]]
        assert row["ltv_margin"] <= row["ltv_net"]
    # a longer horizon never lowers LTV by more than refunds could (net revenue is never negative)
    ltv_by_horizon = {(r["cohort_month"], r["horizon_days"]): r["ltv_net"] for r in ltv}
    for (month, horizon), value in ltv_by_horizon.items():
        if (month, 30) in ltv_by_horizon and horizon > 30:
            assert value >= ltv_by_horizon[(month, 30)] - 1e-9


def test_repeat_revenue_share_is_a_share(con):
    rows = _rows(con, "select * from marts.mart_repurchase_period")
    assert rows
    for row in rows:
        assert 0 <= row["repeat_revenue_share"] <= 1, row
        assert row["repeat_buyers"] <= row["buyers"], row


def test_first_to_repeat_funnel_uses_fixed_horizons(con, truth_warehouse):
    """B4: reached a 2nd/3rd/4th/5th+ purchase day within 30/90/180 days, only for cohorts observed that
    long, so younger cohorts are not compared over less time."""
    truth = {(r["cohort_month"], r["horizon_days"]): r for r in truth_warehouse.truth["repurchase_funnel"]}
    mart = {(r["cohort_month"].strftime("%Y-%m"), r["horizon_days"]): r for r in _rows(
        con, "select * from marts.mart_repurchase_funnel where first_channel = 'all'")}
    _assert_rows_match(mart, truth, counts=["customers", "reached_2nd", "reached_3rd", "reached_4th",
                                            "reached_5plus"], rates=[], label="mart_repurchase_funnel")
    by_channel = dict(con.execute("""
        select cohort_month || '|' || horizon_days, sum(reached_2nd) from marts.mart_repurchase_funnel
        where first_channel <> 'all' group by all""").fetchall())
    assert by_channel == {f"{m}-01|{n}": r["reached_2nd"] for (m, n), r in truth.items()}


def test_ltv_counts_day_n_like_the_repurchase_rate(con, truth_warehouse):
    """B9: one N-day convention: day 0 is the first purchase day and day N counts, for LTV as for the
    30-day repurchase rate; a horizon appears once the cohort has been observed through day N."""
    truth = {(r["cohort_month"], r["horizon_days"]): r for r in truth_warehouse.truth["ltv_cohort"]}
    mart = {(r["cohort_month"].strftime("%Y-%m"), r["horizon_days"]): r for r in _rows(
        con, "select * from marts.mart_ltv_cohort where first_channel = 'all'")}
    assert mart.keys() == truth.keys()
    for key, t in truth.items():
        assert mart[key]["customers"] == t["customers"], key
        assert mart[key]["ltv_net"] == pytest.approx(t["ltv_net"], abs=1e-6), key
