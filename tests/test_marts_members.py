"""Member marts against the generator's truth.json (docs/metrics.md "Members").

The generator makes people who buy more often join and climb levels more often; truth.json counts each
member figure from the generator's own rows by the definition's wording (truth_definitions._members).
"""

from __future__ import annotations

import duckdb
import pytest
from mart_rows import dict_rows as _rows  # tests/ is on sys.path (pytest rootdir conftest)

RATE_TOL = 1e-9
COUNTS = ["customers", "buyers", "repurchase_base", "repurchased_30d", "retention_base", "retained_next_month",
          "ltv_30d_base", "ltv_90d_base"]
RATES = ["customer_share", "repurchase_rate_30d", "retention_rate_next_month", "ltv_net_30d", "ltv_net_90d"]


@pytest.fixture(scope="module")
def mart(truth_warehouse):
    con = duckdb.connect(str(truth_warehouse.db), read_only=True)
    try:
        cursor = con.execute("select * from marts.mart_member_outcomes")
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}
    finally:
        con.close()


def test_member_outcomes_equal_truth(mart, truth_warehouse):
    truth = truth_warehouse.truth["members"]
    assert set(mart) == set(truth) == {"member", "non_member", "all"}
    for status, t in truth.items():
        row = mart[status]
        for col in COUNTS:
            assert row[col] == t[col], (status, col)
        for col in RATES:
            if t[col] is None:
                assert row[col] is None, (status, col)
            else:
                assert row[col] == pytest.approx(t[col], rel=RATE_TOL, abs=RATE_TOL), (status, col)


def test_member_split_adds_up_to_all_and_to_the_purchase_marts(mart, truth_warehouse):
    for col in COUNTS:
        assert mart["member"][col] + mart["non_member"][col] == mart["all"][col], col
    assert mart["all"]["customers"] == truth_warehouse.truth["counts"]["customers"]
    assert mart["all"]["buyers"] == truth_warehouse.truth["counts"]["buyers"]
    complete = [r for r in truth_warehouse.truth["repurchase_30d"] if r["is_complete"]]
    assert mart["all"]["repurchase_base"] == sum(r["customers"] for r in complete)
    assert mart["all"]["repurchased_30d"] == sum(r["repurchased_30d"] for r in complete)


def test_planted_selection_members_buy_more(mart, truth_warehouse):
    """People who buy more often are more often members (the generator's level odds): members repurchase,
    stay and spend more than non-members, and a majority of customers are members (65% planted)."""
    member, non = mart["member"], mart["non_member"]
    assert member["repurchase_rate_30d"] > non["repurchase_rate_30d"]
    assert member["retention_rate_next_month"] > non["retention_rate_next_month"]
    assert member["ltv_net_30d"] > non["ltv_net_30d"]
    planted = truth_warehouse.truth["planted"]
    share = 1 - (planted["member_level_p_above_median_rate"][0] + planted["member_level_p_below_median_rate"][0]) / 2
    assert member["customer_share"] == pytest.approx(share, abs=0.03)


def test_level_moves_equal_truth(truth_warehouse):
    truth = {(r["month"], r["move_type"], r["from_level"], r["to_level"]): r
             for r in truth_warehouse.truth["member_events"]["level_moves"]}
    mart = {(r["month_start"].strftime("%Y-%m"), r["move_type"], r["from_level"], r["to_level"]): r
            for r in _rows(truth_warehouse, "select * from marts.mart_member_level_moves")}
    assert set(mart) == set(truth)
    for key, t in truth.items():
        assert (mart[key]["moves"], mart[key]["customers"]) == (t["moves"], t["customers"]), key
    assert any(k[1] == "level_down" for k in mart), "the generator plants accounts that come back down a level"


def test_points_earned_and_redeemed_equal_truth_and_planted_share(truth_warehouse):
    truth = {r["month"]: r for r in truth_warehouse.truth["member_events"]["points"]}
    mart = {r["month_start"].strftime("%Y-%m"): r
            for r in _rows(truth_warehouse, "select * from marts.mart_member_points_monthly")}
    assert set(mart) == set(truth)
    for month, t in truth.items():
        for col in ("points_earned", "points_redeemed", "earning_customers", "redeeming_customers"):
            assert mart[month][col] == t[col], (month, col)
        assert mart[month]["redeemed_share"] == pytest.approx(t["points_redeemed"] / t["points_earned"], rel=RATE_TOL)
    # each earning is redeemed whole with the planted probability 1-30 days later: over the complete months
    # after the first, the month's redemptions spend earlier, smaller months' points in a growing shop, so
    # the share sits a little under the planted one (0.325 against 0.4 on the test world), never above it
    planted = truth_warehouse.truth["planted"]["member_events"]["redeem_p"]
    later = [r for m, r in sorted(mart.items()) if r["is_complete"]][1:]
    share = sum(r["points_redeemed"] for r in later) / sum(r["points_earned"] for r in later)
    assert 0.6 * planted < share < planted + 0.02


def test_member_activity_and_member_day_effect_equal_truth(truth_warehouse):
    me = truth_warehouse.truth["member_events"]
    daily = {r["event_date"].isoformat(): r
             for r in _rows(truth_warehouse, "select * from marts.mart_member_activity_daily")}
    assert set(daily) == {r["date"] for r in me["daily"]}
    for t in me["daily"]:
        row = daily[t["date"]]
        assert (row["members"], row["active_members"], row["benefit_uses"]) == (
            t["members"], t["active_members"], t["benefit_uses"]), t["date"]
    effect = {r["day_type"]: r for r in _rows(truth_warehouse, "select * from marts.mart_member_day_effect")}
    for day_type, t in me["member_day"].items():
        row = effect[day_type]
        assert (row["days"], row["member_days"], row["benefit_uses"]) == (
            t["days"], t["member_days"], t["benefit_uses"]), day_type
        assert row["benefit_uses_per_member"] == pytest.approx(t["benefit_uses_per_member"], rel=RATE_TOL)
    assert effect["member_day"]["benefit_uplift"] == pytest.approx(me["member_day_uplift"], rel=RATE_TOL)
    # planted: benefits used 3x as often on the 18th; five member days in the test world, so a wide band
    planted = truth_warehouse.truth["planted"]["member_events"]["member_day_factor"]
    assert 0.5 * planted < effect["member_day"]["benefit_uplift"] < 1.5 * planted
