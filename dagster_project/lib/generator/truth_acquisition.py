"""Ground truth of "Acquisition cost and campaigns" (docs/metrics.md), from the generated rows alone.

Plain loops over the world's tables, by the definitions in docs/metrics.md; nothing here is shared with
the generator's planting (ad_spend.py) or the warehouse's SQL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import polars as pl

PAYBACK_MAX_MONTHS = 12
LTV_HORIZON_DAYS = 90

DEFINITIONS = {
    "acquisition": "new customer = a customer (phone_hash, else the user) on the business date of their first "
                   "valid order (earliest order_ts, then order_id, of current rows); first_channel = that order's "
                   "channel. Per spend month (ad_spend.date) and channel, and per channel over the window: spend, "
                   "impressions, clicks, new customers of that channel whose first purchase is in the month "
                   "(window), CAC = spend / new customers (none: null); channel 'all' sums every channel. "
                   "spend_share = the channel's spend / all spend. Per first channel and m = 1..12 months: "
                   "LTV_m = net revenue (pay of the current row minus completed refunds) of valid orders placed "
                   "0..30m days after the first purchase day, per customer, over customers whose first-purchase "
                   "month's last day + 30m <= data_end_date; payback_months = the least m with LTV_m >= the "
                   "window CAC (null when no observed m reaches it); roi_90d = LTV at 90 days / CAC",
    "campaign_outcomes": "per campaign: participants = customers with a valid order tagged with it; new customers = "
                         "customers whose first valid order is tagged with it; observed = first purchase date + 90 <= "
                         "data_end_date. Baseline = observed customers whose first valid order has no tag, per (first-"
                         "purchase month, first channel) cell: share with another purchase day within days 1..90, "
                         "mean net revenue of days 0..90, share with a purchase day in days 61..90 (long-term). "
                         "Matched = observed new customers whose cell has baseline customers; expected_* = the sum of "
                         "their cells' baseline values; cost_share_of_gmv = cost / pay of tagged valid orders",
}


def _bdate(ts: int, offset: int) -> date:
    return (datetime(1970, 1, 1) + timedelta(seconds=ts + offset)).date()


def _month_end(d: date) -> date:
    nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def _latest(rows: dict, key, day: int, value) -> None:
    if key not in rows or day >= rows[key][0]:
        rows[key] = (day, value)


def _customers(tables) -> dict[str, str]:
    users = tables["users"]
    out: dict[str, tuple] = {}
    for uid, ph, day in zip(users["user_id"].to_list(), users["phone_hash"].to_list(), users["_day"].to_list()):
        _latest(out, uid, day, ph if ph is not None else "user:" + uid)
    return {u: v[1] for u, v in out.items()}


def _orders(tables, customer_of, offset):
    """customer -> [(order_ts, order_id, business date, channel, net cents)] of valid orders."""
    orders = tables["orders"]
    current: dict[str, tuple] = {}
    for row in zip(orders["order_id"].to_list(), orders["user_id"].to_list(), orders["channel"].to_list(),
                   orders["order_ts"].to_list(), orders["paid_ts"].to_list(), orders["status"].to_list(),
                   orders["pay_amount"].to_list(), orders["campaign_id"].to_list(), orders["_day"].to_list()):
        _latest(current, row[0], row[-1], row[1:-1])
    ret = tables["returns"]
    returns: dict[str, tuple] = {}
    for rid, oid, amt, st, day in zip(ret["return_id"].to_list(), ret["order_id"].to_list(),
                                      ret["amount"].to_list(), ret["status"].to_list(), ret["_day"].to_list()):
        _latest(returns, rid, day, (oid, amt, st))
    refunded: dict[str, int] = defaultdict(int)
    for _, (oid, amt, st) in returns.values():
        if st == "completed":
            refunded[oid] += amt
    by_customer: dict[str, list] = defaultdict(list)
    for oid, (_, (uid, ch, ots, paid, status, pay, camp)) in current.items():
        if paid is not None and status != "cancelled":
            by_customer[customer_of[uid]].append((ots, oid, _bdate(ots, offset), ch, pay - refunded[oid], camp, pay))
    for v in by_customer.values():
        v.sort()
    return by_customer


def acquisition_truth(tables: dict[str, pl.DataFrame], *, offset: int, end_date: date) -> dict:
    by_customer = _orders(tables, _customers(tables), offset)
    first = {c: v[0] for c, v in by_customer.items()}  # (ts, id, date, channel, net, campaign, pay)
    new = defaultdict(int)
    for _, _, d, ch, *_ in first.values():
        for key in ((d.strftime("%Y-%m"), ch), (d.strftime("%Y-%m"), "all"), ("window", ch), ("window", "all")):
            new[key] += 1
    ad = tables["ad_spend"]
    spend = defaultdict(lambda: [0, 0, 0])
    for d, ch, cents, imp, clk in zip(ad["date"].to_list(), ad["channel"].to_list(), ad["spend"].to_list(),
                                      ad["impressions"].to_list(), ad["clicks"].to_list()):
        for key in ((d[:7], ch), (d[:7], "all"), ("window", ch), ("window", "all")):
            s = spend[key]
            s[0] += cents
            s[1] += imp or 0
            s[2] += clk or 0
    rows = {}
    for key in sorted(set(new) | set(spend)):
        s = spend.get(key, [0, 0, 0])
        n = new.get(key, 0)
        month_total = spend.get((key[0], "all"), [0])[0]
        rows[key] = {"period": key[0], "channel": key[1], "spend": s[0] / 100, "impressions": s[1],
                     "clicks": s[2], "new_customers": n, "cac": s[0] / 100 / n if n and key in spend else None,
                     "spend_share": s[0] / month_total if month_total else None}
    curves = {}
    for ch in sorted({v[3] for v in first.values()} | {"all"}):
        members = [c for c, v in first.items() if ch in ("all", v[3])]
        curve = []
        for m in range(1, PAYBACK_MAX_MONTHS + 1):
            base = [c for c in members if _month_end(first[c][2]) + timedelta(days=30 * m) <= end_date]
            if not base:
                break
            total = sum(net for c in base for _, _, d, _, net, *_ in by_customer[c] if (d - first[c][2]).days <= 30 * m)
            curve.append({"months": m, "customers": len(base), "ltv_net": total / 100 / len(base)})
        curves[ch] = curve
        row = rows.get(("window", ch))
        if row is None:
            continue
        cac = row["cac"]
        row["payback_months"] = next((p["months"] for p in curve if cac is not None and p["ltv_net"] >= cac), None)
        ltv90 = next((p["ltv_net"] for p in curve if p["months"] * 30 == LTV_HORIZON_DAYS), None)
        row["ltv_net_90d"] = ltv90
        row["roi_90d"] = ltv90 / cac if ltv90 is not None and cac else None
    return {
        "definitions": DEFINITIONS,
        "cac": [r for k, r in rows.items() if k[0] != "window"],
        "channels": {k[1]: r for k, r in rows.items() if k[0] == "window"},
        "ltv_curve": curves,
        "campaign_outcomes": _campaign_outcomes(tables, by_customer, end_date),
    }


def _campaign_outcomes(tables, by_customer, end_date) -> dict:
    outcome = {}  # customer -> (cell, tag of the first order, repurchased, net 90d, long-term)
    participants: dict[str, set] = defaultdict(set)
    for c, orders in by_customer.items():
        first = orders[0]
        d0 = first[2]
        for o in orders:
            if o[5] is not None:
                participants[o[5]].add(c)
        days = {o[2] for o in orders}
        outcome[c] = ((d0.strftime("%Y-%m"), first[3]), first[5], d0 + timedelta(days=LTV_HORIZON_DAYS) <= end_date,
                      any(0 < (d - d0).days <= LTV_HORIZON_DAYS for d in days),
                      sum(o[4] for o in orders if (o[2] - d0).days <= LTV_HORIZON_DAYS) / 100,
                      any(60 < (d - d0).days <= LTV_HORIZON_DAYS for d in days))
    cells: dict[tuple, list] = defaultdict(list)
    for cell, tag, observed, rep, net, long_term in outcome.values():
        if tag is None and observed:
            cells[cell].append((rep, net, long_term))
    base = {cell: tuple(sum(x[i] for x in v) / len(v) for i in range(3)) for cell, v in cells.items()}
    camps: dict[str, tuple] = {}
    for cid, cost, day in zip(tables["campaigns"]["campaign_id"].to_list(), tables["campaigns"]["cost"].to_list(),
                              tables["campaigns"]["_day"].to_list()):
        _latest(camps, cid, day, cost)
    gmv: dict[str, int] = defaultdict(int)
    for orders in by_customer.values():
        for o in orders:
            if o[5] is not None:
                gmv[o[5]] += o[6]
    out = {}
    for cid, (_, cost) in sorted(camps.items()):
        mine = [v for v in outcome.values() if v[1] == cid]
        matched = [v for v in mine if v[2] and v[0] in base]
        n = len(matched)
        exp = [sum(base[v[0]][i] for v in matched) for i in range(3)]
        out[cid] = {
            "participants": len(participants[cid]), "new_customers": len(mine),
            "observed_customers": sum(1 for v in mine if v[2]), "matched_customers": n,
            "repurchased_90d": sum(1 for v in matched if v[3]), "long_term_customers": sum(1 for v in matched if v[5]),
            "repurchase_rate_90d": sum(1 for v in matched if v[3]) / n if n else None,
            "baseline_repurchase_rate_90d": exp[0] / n if n else None,
            "ltv_net_90d": sum(v[4] for v in matched) / n if n else None,
            "baseline_ltv_net_90d": exp[1] / n if n else None,
            "long_term_share": sum(1 for v in matched if v[5]) / n if n else None,
            "baseline_long_term_share": exp[2] / n if n else None,
            "cost_share_of_gmv": cost / gmv[cid] if gmv[cid] else None,
        }
    return out
