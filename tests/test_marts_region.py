"""Regional penetration against the generator's truth.json (docs/metrics.md "Regional penetration").

The generator moves a growing share of users to tier-3/4 cities of their province (regions.py, stream
0xC17); truth.json's `region` recomputes buyers, new customers, GMV and 30-day repurchase per month,
province and city tier from the generated rows and the generator's tier table (truth_region.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.generator.regions import CITY_TIERS

SEED = Path(__file__).resolve().parents[1] / "dbt" / "seeds" / "city_tiers.csv"
LOWER = ("tier_3", "tier_4")


def _rows(db, sql: str) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def region(truth_warehouse):
    return _rows(truth_warehouse.db, "select * from marts.mart_region_monthly")


def test_seed_city_tiers_match_the_generator():
    """The seed a shop edits covers every city the generator writes, with the generator's tier."""
    with SEED.open(encoding="utf-8", newline="") as f:
        seed = {r["city"]: r["city_tier"] for r in csv.DictReader(f)}
    assert {c: seed.get(c) for c in CITY_TIERS} == CITY_TIERS


def test_region_monthly_equals_truth(region, truth_warehouse):
    truth = truth_warehouse.truth["region"]
    cells = {(r["month_start"].strftime("%Y-%m"), r["province"], r["city_tier"]): r for r in region}
    nonzero = {k: r for k, r in cells.items() if r["buyers"] or r["new_customers"]}
    expected = {(t["month"], t["province"], t["city_tier"]): t for t in truth["monthly"]}
    assert set(nonzero) == set(expected)
    for key, t in expected.items():
        r = nonzero[key]
        assert (r["buyers"], r["new_customers"], r["repurchased_30d"]) == (
            t["buyers"], t["new_customers"], t["repurchased_30d"]), key
        assert float(r["gmv"]) == pytest.approx(t["gmv"], abs=0.005), key
    # the grid: every month x every cell that ever had an order, the shop's totals on each row
    months = {k[0] for k in cells}
    assert len(cells) == len(months) * len({k[1:] for k in cells})
    for (m, _, _), r in cells.items():
        shop = truth["shop"].get(m, {"buyers": 0, "new_customers": 0, "gmv": 0})
        assert (r["shop_buyers"], r["shop_new_customers"]) == (shop["buyers"], shop["new_customers"]), m
        assert float(r["shop_gmv"]) == pytest.approx(shop["gmv"], abs=0.005), m
        if r["shop_buyers"]:
            assert r["buyer_share"] == pytest.approx(r["buyers"] / r["shop_buyers"], rel=1e-12)


def test_planted_lower_tier_growth_shows(region, truth_warehouse):
    """New customers' share in tier-3/4 cities (provinces with such cities, known city) rises from the first
    month with 100 such new customers to the last, each month near the planted expectation."""
    truth = truth_warehouse.truth["region"]["lower_tier_share"]
    provinces = set(truth_warehouse.truth["planted"]["region"]["provinces"])
    by_month: dict[str, list[int]] = {}
    for r in region:
        if r["province"] in provinces and r["city_tier"] != "unknown":
            n = by_month.setdefault(r["month_start"].strftime("%Y-%m"), [0, 0])
            n[0] += r["new_customers"]
            n[1] += r["new_customers"] if r["city_tier"] in LOWER else 0
    measured = {m: n[1] / n[0] for m, n in by_month.items() if n[0]}
    assert measured == pytest.approx({m: t["share"] for m, t in truth.items()}, abs=1e-12)
    months = sorted(m for m, t in truth.items() if t["new_customers"] >= 100)
    first, last = months[0], months[-1]
    for m in (first, last):
        assert measured[m] == pytest.approx(truth[m]["expected_share"], abs=0.09), m
    assert measured[last] - measured[first] >= 0.1, (first, measured[first], last, measured[last])


def test_growth_and_repurchase_follow_the_definitions(region):
    """Month over month growth only between complete months; repurchase rate only once observable."""
    by_cell: dict[tuple, list[dict]] = {}
    for r in region:
        by_cell.setdefault((r["province"], r["city_tier"]), []).append(r)
    for rows in by_cell.values():
        rows.sort(key=lambda r: r["month_start"])
        for prev, cur in zip([None] + rows[:-1], rows):
            if prev is None or not (cur["is_complete"] and prev["is_complete"]) or not prev["buyers"]:
                assert cur["buyers_mom_growth"] is None
            else:
                assert cur["buyers_mom_growth"] == pytest.approx(cur["buyers"] / prev["buyers"] - 1, rel=1e-12)
            if cur["is_repurchase_complete"] and cur["new_customers"]:
                assert cur["repurchase_rate_30d"] == pytest.approx(cur["repurchased_30d"] / cur["new_customers"])
            else:
                assert cur["repurchase_rate_30d"] is None


def test_profile_city_tier_equals_truth(truth_warehouse):
    rows = _rows(truth_warehouse.db, "select city_tier, count(*) as n from marts.mart_customer_profile group by 1")
    assert {r["city_tier"]: r["n"] for r in rows} == truth_warehouse.truth["region"]["profile_city_tier"]


def test_the_plant_moves_only_cities_within_the_province(monkeypatch):
    """Drawn on its own stream from the finished world: without it every row is the same but the city, and a
    moved user's orders carry the user's new city."""
    from datetime import date

    from dagster_project.lib.generator import world

    kw = dict(customers=300, days=40, seed=7, start=date(2026, 5, 20), timezone="Asia/Shanghai")
    planted = world.build_world(**kw)
    monkeypatch.setattr(world, "move_to_lower_tiers", lambda seed, clock, tables: (tables, {}))
    plain = world.build_world(**kw)
    assert planted.planted["region"]["users_moved"] > 0
    for name, df in planted.tables.items():
        other = [c for c in df.columns if c != "city"]
        assert df.select(other).equals(plain.tables[name].select(other)), name
    before = dict(zip(plain.tables["users"]["user_id"].to_list(), plain.tables["users"]["city"].to_list()))
    after = dict(zip(planted.tables["users"]["user_id"].to_list(), planted.tables["users"]["city"].to_list()))
    moved = {u for u in after if after[u] != before[u]}
    assert moved and all(CITY_TIERS[after[u]] in LOWER and CITY_TIERS[before[u]] not in LOWER for u in moved)
    orders = planted.tables["orders"]
    for uid, city in zip(orders["user_id"].to_list(), orders["city"].to_list()):
        assert city == after[uid], uid
