"""Ground truth of referral / social fission (docs/metrics.md "Referral"), counted from the generated rows.

Plain loops over the events, users and orders tables, written from the definitions' wording and sharing
nothing with the warehouse: a share is a share event carrying properties.share_code; a referred customer is
one whose first session (the session of their earliest event) carries a properties.ref_share_code that
matches an earlier share of another customer (the earliest such share when there are several).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta

import polars as pl

DEFINITIONS = {
    "referral.monthly": "per business month and platform ('all' too): shares = share events with "
                        "properties.share_code of a known customer, sharers = their distinct customers; referred "
                        "users by the month and platform of their first event; converted_30d = first valid order "
                        "on days 0..30 after the arrival date, counted over referred users observed 30 days; "
                        "new_customers_from_shares = referred customers converted within 30 days, by the month "
                        "and platform of the share that brought them",
    "referral.compare": "per first-purchase month: new customers acquired by referral (referred, first valid "
                        "order on days 0..30 after arrival) vs the other new customers: first order pay amount "
                        "(yuan) and 90-day repurchase (another purchase day on days 1..90, over customers "
                        "observed 90 days)",
    "referral.profile": "customer_key (smallest user_id of the person) -> referrer customer_key, for every "
                        "customer acquired by referral",
}
CONVERSION_DAYS = 30
REPURCHASE_DAYS = 90


def _bdate(ts: int, offset: int) -> date:
    return (datetime(1970, 1, 1) + timedelta(seconds=ts + offset)).date()


def _code(props: str | None, key: str) -> str | None:
    if not props:
        return None
    try:
        v = json.loads(props).get(key)
    except ValueError:
        return None
    return v or None


def referral_truth(tables: dict[str, pl.DataFrame], *, offset: int, data_end: date) -> dict:
    users = tables["users"]
    person_of: dict[str, str] = {}
    for uid, ph in zip(users["user_id"].to_list(), users["phone_hash"].to_list()):
        person_of[uid] = ph if ph is not None else "user:" + uid
    key_of_person: dict[str, str] = {}
    for uid, pk in person_of.items():
        key_of_person[pk] = min(uid, key_of_person.get(pk, uid))
    customer = {uid: key_of_person[pk] for uid, pk in person_of.items()}

    ev = tables["events"]
    cols = [ev[c].to_list() for c in ("event_id", "event_ts", "anonymous_id", "user_id", "session_id",
                                      "event_name", "platform", "properties")]
    device: dict[str, tuple] = {}  # anonymous_id -> (ts, event_id, user) of its latest identified event
    for eid, ts, anon, uid, *_ in zip(*cols):
        if uid is not None and (anon not in device or (ts, eid) > device[anon][:2]):
            device[anon] = (ts, eid, uid)
    first: dict[str, tuple] = {}  # customer -> (ts, event_id, session, platform)
    shares: dict[str, tuple] = {}  # code -> earliest (ts, event_id, customer, platform)
    landing: list[tuple] = []  # (customer, session, ts, code)
    for eid, ts, anon, uid, sid, name, plat, props in zip(*cols):
        u = uid if uid is not None else (device[anon][2] if anon in device else None)
        c = customer.get(u, u) if u is not None else None
        if c is None:
            continue
        if c not in first or (ts, eid) < first[c][:2]:
            first[c] = (ts, eid, sid, plat)
        if name == "share":
            code = _code(props, "share_code")
            if code and (code not in shares or (ts, eid) < shares[code][:2]):
                shares[code] = (ts, eid, c, plat)
        ref = _code(props, "ref_share_code")
        if ref:
            landing.append((c, sid, ts, ref))

    referrer: dict[str, tuple] = {}  # customer -> (share ts, share event_id, sharer, share platform)
    for c, sid, ts, ref in landing:
        s = shares.get(ref)
        if sid != first[c][2] or s is None or s[2] == c or s[0] >= ts:
            continue
        if c not in referrer or s[:2] < referrer[c][:2]:
            referrer[c] = s

    # valid orders per customer (current version), first order and purchase days
    orders = tables["orders"]
    current: dict[str, tuple] = {}
    for oid, uid, ots, pts, st, pay, day in zip(
            orders["order_id"].to_list(), orders["user_id"].to_list(), orders["order_ts"].to_list(),
            orders["paid_ts"].to_list(), orders["status"].to_list(), orders["pay_amount"].to_list(),
            orders["_day"].to_list()):
        if oid not in current or day >= current[oid][0]:
            current[oid] = (day, uid, ots, pts, st, pay)
    first_order: dict[str, tuple] = {}  # customer -> (ts, order_id, pay cents)
    days: dict[str, set] = defaultdict(set)
    for oid, (_, uid, ots, pts, st, pay) in current.items():
        if pts is None or st == "cancelled":
            continue
        c = customer[uid]
        days[c].add(_bdate(ots, offset))
        if c not in first_order or (ots, oid) < first_order[c][:2]:
            first_order[c] = (ots, oid, pay)

    def month(d: date) -> str:
        return d.strftime("%Y-%m")

    monthly: dict[tuple, dict] = defaultdict(lambda: {"shares": 0, "sharers": set(), "referred_users": 0,
                                                      "observed_30d": 0, "converted_30d": 0,
                                                      "new_customers_from_shares": 0})
    for ts, _, c, plat in shares.values():
        for p in (plat, "all"):
            m = monthly[(month(_bdate(ts, offset)), p)]
            m["shares"] += 1
            m["sharers"].add(c)
    acquired: dict[str, str] = {}
    for c, s in referrer.items():
        arrival = _bdate(first[c][0], offset)
        fo = first_order.get(c)
        fdate = _bdate(fo[0], offset) if fo else None
        converted = fdate is not None and 0 <= (fdate - arrival).days <= CONVERSION_DAYS
        observed = arrival + timedelta(days=CONVERSION_DAYS) <= data_end
        for p in (first[c][3], "all"):
            m = monthly[(month(arrival), p)]
            m["referred_users"] += 1
            m["observed_30d"] += observed
            m["converted_30d"] += observed and converted
        if converted:
            acquired[c] = s[2]
            for p in (s[3], "all"):
                monthly[(month(_bdate(s[0], offset)), p)]["new_customers_from_shares"] += 1
    rows = []
    for (mo, plat), m in sorted(monthly.items()):
        sharers = len(m["sharers"])
        rows.append({"month": mo, "platform": plat, "shares": m["shares"], "sharers": sharers,
                     "referred_users": m["referred_users"], "observed_30d": m["observed_30d"],
                     "converted_30d": m["converted_30d"],
                     "conversion_30d": m["converted_30d"] / m["observed_30d"] if m["observed_30d"] else None,
                     "new_customers_from_shares": m["new_customers_from_shares"],
                     "new_customers_per_sharer": m["new_customers_from_shares"] / sharers if sharers else None})

    compare: dict[str, dict] = {}
    for c, (ots, _, pay) in first_order.items():
        fdate = _bdate(ots, offset)
        kind = "referred" if c in acquired else "organic"
        m = compare.setdefault(month(fdate), {k: [0, 0, 0, 0] for k in ("referred", "organic")})[kind]
        m[0] += 1
        m[1] += pay
        if fdate + timedelta(days=REPURCHASE_DAYS) <= data_end:
            m[2] += 1
            m[3] += any(fdate < d <= fdate + timedelta(days=REPURCHASE_DAYS) for d in days[c])
    compare_rows = []
    for mo, kinds in sorted(compare.items()):
        row = {"month": mo}
        for k, (n, pay, obs, rep) in kinds.items():
            row.update({f"{k}_new_customers": n, f"{k}_first_order_aov": pay / 100 / n if n else None,
                        f"{k}_observed_90d": obs, f"{k}_repurchased_90d": rep,
                        f"{k}_repurchase_90d": rep / obs if obs else None})
        compare_rows.append(row)
    referred_all = [r for r in rows if r["platform"] == "all"]
    obs = sum(r["observed_30d"] for r in referred_all)
    return {"referral": {
        "monthly": rows, "compare": compare_rows, "acquired_by": acquired,
        "referred_customers": len(referrer),
        "conversion_30d": sum(r["converted_30d"] for r in referred_all) / obs if obs else None,
    }, "definitions": DEFINITIONS}
