"""Ground truth of the behaviour section (docs/metrics.md "Behaviour"), counted from the generated events.

Plain loops over the good rows of the events table, written from the definitions' wording, sharing nothing
with the warehouse: an active user is a customer with an event that business date (the event's user, else
the user its device logged in as); a session's dwell is its last event's time minus its first's.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import polars as pl

DEFINITIONS = {
    "behaviour.active_users": "per platform (and 'all' platforms together) and business date from data_start_date "
                              "to data_end_date: [dau, wau, mau] = customers with an event (own user_id, else the "
                              "user its anonymous_id logged in as) on the date / in the 7 / 30 days ending on it",
    "behaviour.dwell": "per platform and 'all': sessions (session_id) and the sum over them of last event_ts - first "
                       "event_ts (seconds); avg = sum / sessions",
    "behaviour.hours": "events per hour of the business-time clock; evening_share = events in hours >= 18 / events",
    "behaviour.touchpoints": "sessions with a content_view / live_view / share event, and all sessions "
                             "('all_sessions'); paying = of them, sessions with a payment_success event",
    "behaviour.touch_timing": "marketing touches per 'channel|ISO weekday|hour' of sent_at in business time: "
                              "[sent, opened (opened_at set), clicked (clicked_at set)]",
    "kpi_periods": "per grain ('week' ISO from Monday, 'month') and period start: gmv (sum of pay_amount, yuan), "
                   "valid_orders, buyers over valid orders (current row: paid_ts set, status not cancelled) by the "
                   "business date of order_ts; is_complete = period within data_start_date..data_end_date; "
                   "gmv_pop_growth = gmv / previous period's gmv - 1 when both are complete, else null",
    "behaviour.dimensions": "events per event_name; product_view per properties.source, payment_submit per "
                            "properties.pay_method, search per properties.keyword ('unknown' when missing)",
}
PROPERTY_OF = {"product_view": ("view_source", "source"), "payment_submit": ("pay_method", "pay_method"),
               "search": ("search_keyword", "keyword")}
EVENING_START_HOUR = 18
TOUCHPOINTS = ("content_view", "live_view", "share")


def kpi_periods_truth(tables: dict[str, pl.DataFrame], *, user_customer: dict[str, str], offset: int,
                      data_start: date | None, data_end: date) -> dict:
    orders = tables["orders"]
    current: dict[str, tuple] = {}
    for oid, uid, ots, pts, st, amount, day in zip(
            orders["order_id"].to_list(), orders["user_id"].to_list(), orders["order_ts"].to_list(),
            orders["paid_ts"].to_list(), orders["status"].to_list(), orders["pay_amount"].to_list(),
            orders["_day"].to_list()):
        if oid not in current or day >= current[oid][0]:
            current[oid] = (day, uid, ots, pts, st, amount)
    periods: dict[tuple, dict] = {}
    for _, uid, ots, pts, st, amount in current.values():
        if pts is None or st == "cancelled":
            continue
        d = (datetime(1970, 1, 1) + timedelta(seconds=ots + offset)).date()
        for grain, begin in (("week", d - timedelta(days=d.weekday())), ("month", d.replace(day=1))):
            p = periods.setdefault((grain, begin), {"gmv_cents": 0, "valid_orders": 0, "buyers": set()})
            p["gmv_cents"] += amount
            p["valid_orders"] += 1
            p["buyers"].add(user_customer.get(uid, uid))

    def end_of(grain: str, begin: date) -> date:
        if grain == "week":
            return begin + timedelta(days=6)
        nxt = date(begin.year + begin.month // 12, begin.month % 12 + 1, 1)
        return nxt - timedelta(days=1)

    def before(grain: str, begin: date) -> date:
        return begin - timedelta(days=7) if grain == "week" else (begin - timedelta(days=1)).replace(day=1)

    def complete(grain: str, begin: date) -> bool:
        return data_start is not None and begin >= data_start and end_of(grain, begin) <= data_end

    rows = []
    for (grain, begin), p in sorted(periods.items()):
        prev = periods.get((grain, before(grain, begin)))
        grows = prev is not None and complete(grain, begin) and complete(grain, before(grain, begin))
        rows.append({"grain": grain, "period_start": begin.isoformat(), "is_complete": complete(grain, begin),
                     "gmv": p["gmv_cents"] / 100, "valid_orders": p["valid_orders"], "buyers": len(p["buyers"]),
                     "gmv_pop_growth": p["gmv_cents"] / prev["gmv_cents"] - 1 if grows else None})
    return {"kpi_periods": rows}


def behaviour_truth(tables: dict[str, pl.DataFrame], *, user_customer: dict[str, str], offset: int,
                    bounds: dict) -> dict:
    """truth.json's `behaviour` and `kpi_periods`, and their definitions; bounds: truth's data_bounds."""
    data_end = date.fromisoformat(bounds["data_end_date"])
    data_start = date.fromisoformat(bounds["data_start_date"]) if bounds["data_start_date"] else None
    return {**_behaviour(tables, user_customer=user_customer, offset=offset, data_start=data_start, data_end=data_end),
            **kpi_periods_truth(tables, user_customer=user_customer, offset=offset, data_start=data_start,
                                data_end=data_end)}


def _behaviour(tables: dict[str, pl.DataFrame], *, user_customer: dict[str, str], offset: int,
               data_start: date | None, data_end: date) -> dict:
    ev = tables["events"]
    cols = [ev[c].to_list() for c in ("session_id", "event_ts", "event_name", "platform", "anonymous_id",
                                      "user_id", "properties")]
    device_user: dict[str, str] = {}
    for _, _, _, _, anon, uid, _ in zip(*cols):
        if uid is not None:
            device_user.setdefault(anon, uid)

    active: dict[str, dict[date, set]] = defaultdict(lambda: defaultdict(set))
    session_span: dict[str, list] = {}
    hours: Counter = Counter()
    dims: dict[str, Counter] = defaultdict(Counter)
    for sid, ts, name, plat, anon, uid, props in zip(*cols):
        local = datetime(1970, 1, 1) + timedelta(seconds=ts + offset)
        hours[local.hour] += 1
        dims["event_name"][name] += 1
        if name in PROPERTY_OF:
            dim, key = PROPERTY_OF[name]
            value = json.loads(props).get(key) if props else None
            dims[dim][value if value is not None else "unknown"] += 1
        span = session_span.setdefault(sid, [ts, ts, plat, set()])
        span[0], span[1] = min(span[0], ts), max(span[1], ts)
        span[3].add(name)
        u = uid if uid is not None else device_user.get(anon)
        c = user_customer.get(u, u) if u is not None else None
        if c is not None:
            active[plat][local.date()].add(c)
            active["all"][local.date()].add(c)

    active_users: dict[str, dict[str, list[int]]] = {}
    if data_start is not None:
        n_days = (data_end - data_start).days + 1
        for plat, by_day in active.items():
            days = [by_day.get(data_start + timedelta(days=i), set()) for i in range(n_days)]
            active_users[plat] = {
                (data_start + timedelta(days=i)).isoformat(): [
                    len(days[i]), len(set().union(*days[max(0, i - 6):i + 1])),
                    len(set().union(*days[max(0, i - 29):i + 1]))]
                for i in range(n_days)}

    dwell: dict[str, dict] = {}
    touchpoints = {t: {"sessions": 0, "paying_sessions": 0} for t in ("all_sessions", *TOUCHPOINTS)}
    for first, last, plat, names in session_span.values():
        for p in (plat, "all"):
            d = dwell.setdefault(p, {"sessions": 0, "dwell_seconds": 0})
            d["sessions"] += 1
            d["dwell_seconds"] += last - first
        for t in ("all_sessions", *TOUCHPOINTS):
            if t == "all_sessions" or t in names:
                touchpoints[t]["sessions"] += 1
                touchpoints[t]["paying_sessions"] += "payment_success" in names
    for t in touchpoints.values():
        t["conversion_rate"] = t["paying_sessions"] / t["sessions"] if t["sessions"] else None
    for d in dwell.values():
        d["avg_dwell_seconds"] = d["dwell_seconds"] / d["sessions"]

    touch_timing: dict[str, list[int]] = {}
    tt = tables["marketing_touches"]
    for ch, sent, opened, clicked in zip(tt["channel"].to_list(), tt["sent_at"].to_list(), tt["opened_at"].to_list(),
                                         tt["clicked_at"].to_list()):
        local = datetime(1970, 1, 1) + timedelta(seconds=sent + offset)
        counts = touch_timing.setdefault(f"{ch}|{local.isoweekday()}|{local.hour}", [0, 0, 0])
        counts[0] += 1
        counts[1] += opened is not None
        counts[2] += clicked is not None

    n_events = sum(hours.values())
    evening = sum(n for h, n in hours.items() if h >= EVENING_START_HOUR)
    return {
        "definitions": DEFINITIONS,
        "behaviour": {
            "active_users": active_users,
            "dwell": dwell,
            "touchpoints": touchpoints,
            "touch_timing": touch_timing,
            "events_by_hour": {f"{h:02d}": hours[h] for h in sorted(hours)},
            "evening_share": evening / n_events if n_events else None,
            "dimensions": {dim: dict(counts) for dim, counts in dims.items()},
            "shares": {dim: {v: n / sum(counts.values()) for v, n in counts.items()}
                       for dim, counts in dims.items() if dim != "event_name"},
        },
    }
