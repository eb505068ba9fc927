"""Referral / social fission (裂变) marts against the generator's truth.json (docs/metrics.md "Referral").

The generator plants share codes on share events and on the first events of a chosen share of the window's
new users (referral.py, its own random stream), choosing more buyers than the others so that referred users
convert at a planted rate. truth.json's `referral` recomputes every figure from the generated rows alone
(truth_referral.py), by the definitions' wording.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from mart_rows import dict_rows as _rows  # tests/ is on sys.path (pytest rootdir conftest)

TOL = 1e-9
# the truth world has ~100 referred users observed 30 days: a binomial standard error of ~0.05 around the plant
CONVERSION_TOL = 0.12


def _same(actual, expected) -> bool:
    if expected is None:
        return actual is None
    return actual == pytest.approx(expected, rel=TOL, abs=TOL)


@pytest.fixture(scope="module")
def monthly(truth_warehouse):
    rows = _rows(truth_warehouse.db, "select * from marts.mart_referral_monthly")
    return {(r["month"].strftime("%Y-%m"), r["platform"]): r for r in rows}


def test_referral_monthly_equals_truth(monthly, truth_warehouse):
    truth = truth_warehouse.truth["referral"]["monthly"]
    assert truth, "the truth world plants no referral"
    expected = {(t["month"], t["platform"]): t for t in truth}
    assert {k for k, r in monthly.items() if r["shares"] or r["referred_users"] or r["new_customers_from_shares"]} \
        == set(expected)
    pairs = {"shares": "shares", "sharers": "sharers", "referred_users": "referred_users",
             "referred_observed_30d": "observed_30d", "referred_converted_30d": "converted_30d",
             "referral_conversion_30d": "conversion_30d", "new_customers_from_shares": "new_customers_from_shares",
             "new_customers_per_sharer": "new_customers_per_sharer"}
    for key, t in expected.items():
        for col, tcol in pairs.items():
            assert _same(monthly[key][col], t[tcol]), (key, col, monthly[key][col], t[tcol])


def test_referred_vs_organic_new_customers_equal_truth(monthly, truth_warehouse):
    truth = truth_warehouse.truth["referral"]["compare"]
    assert truth
    for t in truth:
        row = monthly[(t["month"], "all")]
        for kind in ("referred", "organic"):
            for col in ("new_customers", "first_order_aov", "observed_90d", "repurchased_90d", "repurchase_90d"):
                name = f"{kind}_{col}"
                assert _same(row[name], t[name]), (t["month"], name, row[name], t[name])
    # the comparison sits on the 'all' rows only
    assert all(r["organic_new_customers"] is None for k, r in monthly.items() if k[1] != "all")


def test_planted_referral_share_and_conversion_show(monthly, truth_warehouse):
    planted = truth_warehouse.truth["planted"]["referral"]
    referred = sum(r["referred_users"] for k, r in monthly.items() if k[1] == "all")
    observed = sum(r["referred_observed_30d"] for k, r in monthly.items() if k[1] == "all")
    converted = sum(r["referred_converted_30d"] for k, r in monthly.items() if k[1] == "all")
    # every linked user is a referred customer (their first session carries a valid code), nobody else is
    assert referred == planted["linked_users"] > 0
    assert planted["linked_users"] == pytest.approx(planted["referred_share"] * planted["eligible_new_users"], abs=6)
    assert observed >= 30
    assert converted / observed == pytest.approx(planted["referred_conversion"], abs=CONVERSION_TOL)
    # an observed difference by design: the linked users are drawn more from the buyers than the others
    assert planted["linked_conversion"] > planted["eligible_others_conversion"] + 0.1


def test_profile_acquired_by_referral_equals_truth(truth_warehouse):
    rows = _rows(truth_warehouse.db, "select customer_key, acquired_by_referral, referrer_customer_key "
                                     "from marts.mart_customer_profile")
    got = {r["customer_key"]: r["referrer_customer_key"] for r in rows if r["acquired_by_referral"]}
    assert got == truth_warehouse.truth["referral"]["acquired_by"]
    assert all(r["referrer_customer_key"] is None for r in rows if not r["acquired_by_referral"])


def test_referral_plant_changes_only_the_properties_it_codes(monkeypatch):
    from dagster_project.lib.generator import world as world_module

    start = date(2026, 5, 1)
    planted = world_module.build_world(customers=300, days=60, seed=7, start=start, timezone="Asia/Shanghai")
    monkeypatch.setattr(world_module, "plant_referrals", lambda seed, clock, events, users, orders: (events, {}))
    bare = world_module.build_world(customers=300, days=60, seed=7, start=start, timezone="Asia/Shanghai")
    assert planted.tables.keys() == bare.tables.keys()
    for name, table in bare.tables.items():
        if name != "events":
            assert planted.tables[name].equals(table), name
    ev, ev0 = planted.tables["events"], bare.tables["events"]
    assert ev.drop("properties").equals(ev0.drop("properties"))
    changed = ev.with_columns(ev0["properties"].alias("_before")).filter(
        pl.col("properties").ne_missing(pl.col("_before")))
    assert changed.height > 0
    # each change adds one code in front of what was there, and only share codes
    for name, after, before in zip(changed["event_name"], changed["properties"], changed["_before"]):
        key = "share_code" if name == "share" else "ref_share_code"
        assert after.startswith('{"' + key + '":"SH')
        assert before is None or after.endswith("," + before[1:])
    assert set(changed.filter(pl.col("event_name") == "share")["event_id"]) \
        == set(ev.filter(pl.col("event_name") == "share")["event_id"])
