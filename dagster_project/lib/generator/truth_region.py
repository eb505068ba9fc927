"""Ground truth of "Regional penetration" (docs/metrics.md), from the generated rows and the tier table.

Plain loops over the world's users and orders, by the definitions in docs/metrics.md; the city tiers
come from the generator's own table (regions.CITY_TIERS, which dbt's seed city_tiers must agree with),
nothing from the warehouse's SQL. The planted chance of a lower-tier city (regions.lower_tier_probability)
gives only the *expected* lower-tier share, next to the measured one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import polars as pl

from .regions import CITY_TIERS, LOWER_TIER_CITIES, lower_tier_probability

DEFINITIONS = {
    "region": "orders located by their own address (current row's province and city): tier = CITY_TIERS of the "
              "city, 'other' for a city not in it, province and tier 'unknown' without one. Per month of the "
              "order's business date, province and tier: buyers = distinct customers (phone_hash, else the user) "
              "with a valid order there; gmv = pay_amount of those valid orders; new_customers = customers whose "
              "first valid order (earliest order_ts, then order_id) is in the month and goes there; repurchased_30d "
              "= those new customers with another purchase day within days 1..30 of the first purchase day. "
              "shop = the month's distinct buyers, new customers and GMV over all cells. lower_tier_share: per "
              "first-purchase month, of new customers whose first order goes to a city of a province with planted "
              "lower-tier cities, the share in tier_3 or tier_4; expected = the mean planted chance at the "
              "registration day of that order's user. profile_city_tier: customers with a valid order by the data "
              "end date, by the tier of the city on the users row of their smallest user_id",
}


def _bdate(ts: int, offset: int) -> date:
    return (datetime(1970, 1, 1) + timedelta(seconds=ts + offset)).date()


def _tier(city: str | None) -> str:
    return "unknown" if city is None else CITY_TIERS.get(city, "other")


def region_truth(tables: dict[str, pl.DataFrame], *, offset: int, start: date, days: int, bounds: dict) -> dict:
    end = date.fromisoformat(bounds["data_end_date"]) if bounds.get("data_end_date") else None
    users = tables["users"]
    latest_user: dict[str, tuple] = {}
    for uid, ph, city, reg, day in zip(users["user_id"].to_list(), users["phone_hash"].to_list(),
                                       users["city"].to_list(), users["registered_at"].to_list(),
                                       users["_day"].to_list()):
        if uid not in latest_user or day >= latest_user[uid][0]:
            latest_user[uid] = (day, ph, city, reg)
    customer_of = {u: (v[1] if v[1] is not None else "user:" + u) for u, v in latest_user.items()}
    key_of: dict[str, str] = {}
    for u, c in customer_of.items():
        if c not in key_of or u < key_of[c]:
            key_of[c] = u

    orders = tables["orders"]
    current: dict[str, tuple] = {}
    for oid, uid, ots, pts, st, pay, prov, city, day in zip(
            orders["order_id"].to_list(), orders["user_id"].to_list(), orders["order_ts"].to_list(),
            orders["paid_ts"].to_list(), orders["status"].to_list(), orders["pay_amount"].to_list(),
            orders["province"].to_list(), orders["city"].to_list(), orders["_day"].to_list()):
        if oid not in current or day >= current[oid][0]:
            current[oid] = (day, uid, ots, pts, st, pay, prov, city)
    valid = []  # (customer, order_ts, order_id, date, pay cents, province, city, user)
    for oid, (_, uid, ots, pts, st, pay, prov, city) in current.items():
        d = _bdate(ots, offset)
        if pts is not None and st != "cancelled" and (end is None or d <= end):
            valid.append((customer_of[uid], ots, oid, d, pay, prov, city, uid))

    first: dict[str, tuple] = {}
    purchase_days: dict[str, set] = defaultdict(set)
    for v in valid:
        purchase_days[v[0]].add(v[3])
        if v[0] not in first or (v[1], v[2]) < (first[v[0]][1], first[v[0]][2]):
            first[v[0]] = v

    cells: dict[tuple, dict] = defaultdict(lambda: {"buyers": set(), "gmv": 0, "new_customers": 0,
                                                    "repurchased_30d": 0})
    shop: dict[str, dict] = defaultdict(lambda: {"buyers": set(), "gmv": 0, "new_customers": 0})
    for c, _, _, d, pay, prov, city, _ in valid:
        m = d.strftime("%Y-%m")
        cell = cells[(m, prov or "unknown", _tier(city))]
        cell["buyers"].add(c)
        cell["gmv"] += pay
        shop[m]["buyers"].add(c)
        shop[m]["gmv"] += pay
    share: dict[str, dict] = defaultdict(lambda: {"new_customers": 0, "lower_tier": 0, "expected_sum": 0.0})
    t0 = datetime(start.year, start.month, start.day) - datetime(1970, 1, 1)
    t0_s = int(t0.total_seconds()) - offset
    for c, (_, _, _, d, _, prov, city, uid) in first.items():
        m = d.strftime("%Y-%m")
        cell = cells[(m, prov or "unknown", _tier(city))]
        cell["new_customers"] += 1
        cell["repurchased_30d"] += any(d < x <= d + timedelta(days=30) for x in purchase_days[c])
        shop[m]["new_customers"] += 1
        if city is not None and prov in LOWER_TIER_CITIES:
            s = share[m]
            s["new_customers"] += 1
            s["lower_tier"] += _tier(city) in ("tier_3", "tier_4")
            reg_day = (latest_user[uid][3] - t0_s) // 86400
            s["expected_sum"] += float(lower_tier_probability(reg_day, days))

    profile: dict[str, int] = defaultdict(int)
    for c in first:
        profile[_tier(latest_user[key_of[c]][2])] += 1

    return {
        "definitions": dict(DEFINITIONS),
        "monthly": [
            {"month": m, "province": p, "city_tier": t, "buyers": len(v["buyers"]), "new_customers": v["new_customers"],
             "gmv": v["gmv"] / 100, "repurchased_30d": v["repurchased_30d"]}
            for (m, p, t), v in sorted(cells.items())],
        "shop": {m: {"buyers": len(v["buyers"]), "new_customers": v["new_customers"], "gmv": v["gmv"] / 100}
                 for m, v in sorted(shop.items())},
        "lower_tier_share": {
            m: {"new_customers": v["new_customers"], "lower_tier": v["lower_tier"],
                "share": v["lower_tier"] / v["new_customers"] if v["new_customers"] else None,
                "expected_share": v["expected_sum"] / v["new_customers"] if v["new_customers"] else None}
            for m, v in sorted(share.items())},
        "profile_city_tier": dict(sorted(profile.items())),
    }
