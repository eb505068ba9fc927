"""Segments that explain outcomes (docs/metrics.md "Segments") against the generator's truth.json.

truth_segments.py recomputes every group from the generator's own rows (RFM quintiles, named segments,
tiers, churn warnings, touches, coupons) by the definitions' wording; the marts must match it exactly.
"""

from __future__ import annotations

import duckdb
import pytest


def _rows(truth_warehouse, sql: str) -> list[dict]:
    con = duckdb.connect(str(truth_warehouse.db), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def test_outcomes_by_segment_and_tier_equal_truth(truth_warehouse):
    truth = {(r["as_of_date"], r["group_type"], r["group_value"]): r
             for r in truth_warehouse.truth["segments"]["segment_outcomes"]}
    mart = {(r["as_of_date"].isoformat(), r["group_type"], r["group_value"]): r
            for r in _rows(truth_warehouse, "select * from marts.mart_segment_outcomes")}
    assert set(mart) == set(truth)
    observed = 0
    for key, t in truth.items():
        row = mart[key]
        for col in ("customers", "repurchased_30d", "retained_90d", "upgraded_next_month"):
            assert row[col] == t[col], (key, col)
        if t["repurchased_30d"] is not None:
            observed += 1
            assert row["repurchase_rate_30d"] == pytest.approx(t["repurchased_30d"] / t["customers"])
        else:
            assert row["repurchase_rate_30d"] is None, key
    assert observed >= 10  # the test world has several observed month ends, or the test proves nothing


def test_tier_transitions_equal_truth(truth_warehouse):
    truth = {(r["month"], r["from_tier"], r["to_tier"]): r["customers"]
             for r in truth_warehouse.truth["segments"]["tier_transitions"]}
    rows = _rows(truth_warehouse, "select * from marts.mart_tier_transitions")
    mart = {(r["month_start"].strftime("%Y-%m"), r["from_tier"], r["to_tier"]): r["customers"] for r in rows}
    assert mart == truth
    assert any(f == "novice" and t == "advanced" for _, f, t in truth)  # 试用 → 复购 happens


def test_winback_equal_truth(truth_warehouse):
    truth = {(r["as_of_date"], r["touch_status"]): r for r in truth_warehouse.truth["segments"]["winback"]}
    mart = {(r["as_of_date"].isoformat(), r["touch_status"]): r
            for r in _rows(truth_warehouse, "select * from marts.mart_winback")}
    assert set(mart) == set(truth)
    for key, t in truth.items():
        row = mart[key]
        for col in ("warned_customers", "reactivated_30d", "reactivated_60d", "reactivated_90d", "touches_30d",
                    "coupon_orders_30d"):
            assert row[col] == t[col], (key, col)
        assert float(row["coupon_discount_30d"]) == pytest.approx(t["coupon_discount_30d"], abs=0.005), key
    assert any(t["reactivated_60d"] for t in truth.values())


def test_same_category_repeat_and_due_list_equal_truth(truth_warehouse):
    truth = truth_warehouse.truth["segments"]
    mart = {r["category_l1"]: r for r in _rows(truth_warehouse, "select * from marts.mart_category_repeat")}
    assert set(mart) == set(truth["category_repeat"])
    for cat, t in truth["category_repeat"].items():
        assert (mart[cat]["repeat_buyers"], mart[cat]["same_category_buyers"]) == \
            (t["repeat_buyers"], t["same_category_buyers"]), cat
    # the planted favourite category (generator customers.py) makes most repeat purchases same-category
    assert mart["all"]["same_category_share"] > 0.5

    due = _rows(truth_warehouse, "select customer_key, category_l1, due_date, is_due_now "
                                 "from marts.mart_repurchase_due")
    assert len(due) == truth["repurchase_due"]["rows"]
    due_now = sorted([r["customer_key"], r["category_l1"], r["due_date"].isoformat()] for r in due if r["is_due_now"])
    assert due_now == truth["repurchase_due"]["due_now_rows"]
    assert due_now


def test_member_repurchase_target_has_actuals(truth_warehouse):
    """The seeds' 会员复购率 30% target reads its actual like any target: final months are met or missed."""
    rows = _rows(truth_warehouse, "select period_start, actual_value, is_final, status from marts.mart_kpi_targets "
                                  "where target_id = 'member_repurchase_30d' order by period_start")
    assert rows and all(r["actual_value"] is not None for r in rows)
    assert {r["status"] for r in rows if r["is_final"]} <= {"met", "missed"}
    assert any(r["is_final"] for r in rows)


def test_layers_and_profile_equal_truth(truth_warehouse):
    truth = truth_warehouse.truth["segments"]["layers"]
    mart = _rows(truth_warehouse, "select * from marts.mart_customer_profile")
    assert len(mart) == truth["customers"]
    for flag in ("promotion_sensitive", "price_sensitive", "brand_loyal", "necessity_buyer"):
        assert sum(r[f"is_{flag}"] for r in mart) == truth[flag], flag
    rhythm: dict[str, int] = {}
    profile: dict[str, int] = {}
    for r in mart:
        rhythm[r["buyer_rhythm"]] = rhythm.get(r["buyer_rhythm"], 0) + 1
        key = f"{r['city']}|{r['age_band']}"
        profile[key] = profile.get(key, 0) + 1
    assert rhythm == truth["rhythm"]
    assert profile == truth["profile"]
    assert all(truth[flag] > 0 for flag in ("promotion_sensitive", "brand_loyal", "necessity_buyer"))


def test_planted_winback_effect_shows(truth_warehouse):
    """The planted win-back touches (generator campaign_effects.py, truth.json planted.winback): pooled over
    the as-of dates whose 30 days are observed, the touched churn-warned customers reactivate within 30 days
    at the planted 25% (tolerance 0.04: ~40 touched customers on the truth world, and the generator chooses
    them on its own reading of the rows), clearly above the untouched. An observed difference: the generator
    chooses who is touched, the touch causes nothing."""
    planted = truth_warehouse.truth["planted"]["winback"]
    rate = {r["touch_status"]: r for r in _rows(truth_warehouse, """
        select touch_status, sum(warned_customers) as warned, sum(reactivated_30d) * 1.0 / sum(warned_customers)
            as rate
        from marts.mart_winback where reactivated_30d is not null group by touch_status""")}
    assert rate["touched"]["warned"] >= 30
    assert rate["touched"]["rate"] == pytest.approx(planted["touched_reactivation_30d"], abs=0.04)
    assert rate["touched"]["rate"] - rate["not_touched"]["rate"] >= 0.1
