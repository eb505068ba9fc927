"""Ground truth for the definitions docs/metrics.md states in words: new-user retention, complete periods,
repeat revenue, fixed-horizon funnel and LTV, 动销率 slow movers, product net revenue, campaign tiers,
experiments per customer, churn warning, coupon redemption after the claim, the payment step and the one
data end date.

Each figure is computed here from the definition's text, with plain loops over the generator's good rows,
never from the marts' SQL: a mistake the SQL and its author share would otherwise pass (the new-user
retention denominator once did). `definition_truth` is called by truth.compute_truth, which passes the
customer of every user and the current row of every order it has already resolved.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import polars as pl

DAY = 86400
TRACKED_CHANNELS = ("app", "mini_program", "web")
FUNNEL_STEPS = ("product_view", "add_to_cart", "checkout_start", "payment_submit", "payment_success")
FUNNEL_HORIZONS = (30, 90, 180)
LTV_HORIZONS = (30, 90, 180, 365)
SLOW_MOVER_SHARE = 0.05
SLOW_MOVER_MONTHS = 3
MEMBER_DAY = 18  # 会员日, dbt var member_day_of_month
ABC_WINDOW_DAYS = 90
TOP_N = 10
EXPERIMENT_WINDOW = 30 * DAY

DEFINITIONS = {
    "data_bounds": "data_end_date = the latest business date with an order or a tracking event; data_start_date "
                   "= the earliest; each source's lag = data_end_date - the latest business date in its rows",
    "activity_retention": "a new user is a customer counted once, on the business date of their first "
                          "registration (earliest registered_at, ties by user_id), only when that registration's "
                          "channel is app, mini_program or web; others are excluded_users. dN_users = new users "
                          "with any event of any of their accounts (event user_id, else the user its anonymous_id "
                          "is tied to) on registration date + N; null while that date is after data_end_date; "
                          "totals = sums over observed dates",
    "period_repurchase": "per period (month 'YYYY-MM', ISO week 'YYYY-Www', quarter 'YYYY-Qn'): buyers (>= 1 "
                         "purchase day), repeat_buyers (>= 2), net_revenue of the period's valid orders, "
                         "repeat_net_revenue of those placed after the customer's first purchase day (a second "
                         "order on the first day is not repeat revenue); complete when the period lies within "
                         "[data_start_date, data_end_date]",
    "repurchase_funnel": "per cohort month and N in 30/90/180: customers, and those with >= k purchase days on "
                         "days 0..N after the first purchase day (k = 2, 3, 4, 5+); only when the month's last "
                         "day + N <= data_end_date",
    "ltv_cohort": "per cohort month and N in 30/90/180/365: net revenue of valid orders with order date - first "
                  "purchase day <= N, per customer; only when the month's last day + N <= data_end_date",
    "slow_movers": "complete months (within the data), SKUs active the whole month: 动销率 = days with a unit on a "
                   "valid order / days in the month; slow month below 5%; slow mover in a month ending a run of "
                   ">= 3 consecutive slow months",
    "product_revenue": "per valid order line: gross - line discount - its share (by that amount) of the order's "
                       "discount beyond its lines' - its share of completed returns (a return naming a SKU: that "
                       "SKU's lines by amount; without one: the refunded share of pay_amount of the line's "
                       "amount after discounts). ABC over the 90 days ending on data_end_date: A while the "
                       "revenue of higher-ranked SKUs is below 80% of the total, B below 95%, else C; no revenue "
                       "C. Top 10 per date by that revenue",
    "experiments": "per experiment, per customer assigned through any account: conflict when the accounts are in "
                   "different variants (left out, counted); else the variant, assigned at the first assignment; "
                   "converted = a valid order in (assigned_at, +30 days]; users_assigned = all such customers, "
                   "users = those with assigned_at + 30 days <= window end",
    "churn_warning": "as of data_end_date, per buyer: no warning with a purchase day in the last 30 days "
                     "(recency < 30); else warning when tracked (any attributed event) with no login/app_open "
                     "in the last 30 days, or purchase days in the last 90 below half of the 90 before",
    "coupon_redemption": "per campaign: claimers = customers with a coupon_click event of the campaign; redeemed = "
                         "claimers with a valid coupon order of the campaign at or after their first click",
    "members": "a customer is a member when the highest member_level of their accounts (latest users row) is >= 1; "
               "customers without a level are not. Per status (member, non_member, all): customers, share of all "
               "customers, buyers; 30-day repurchase and N-day LTV (N = 30, 90: net revenue of days 0..N) over "
               "buyers whose cohort month's last day + N <= data_end_date; next-month retention (a purchase day in "
               "the calendar month after the cohort month) over buyers whose next month ended by data_end_date",
    "member_events": "per account, the level events (join, level_up, level_down) in time order: from_level = the "
                     "previous one's level, 0 before the first; moves per event month, type and (from, to) with "
                     "distinct customers. Points per event month: earned, redeemed, customers. Per business date "
                     "from data_start_date to data_end_date: members = customers whose first join (any account) is "
                     "on or before it, active = customers with any member event that date, benefit uses; the "
                     "member day (18th) against other days: benefit uses / sum of members, pooled",
    "funnel": "per session: steps in time order as before; payment_success is reached by the event at or after "
              "payment_submit, or (untracked) when the order carried by the first payment_submit at or after "
              "that time is paid and the submit event's customer is the order's customer",
}


def _bdate(ts: int, offset: int) -> date:
    return (datetime(1970, 1, 1) + timedelta(seconds=ts + offset)).date()


def _month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def _period(grain: str, d: date) -> tuple[str, date, date]:
    """(label, first day, last day) of the period holding d."""
    if grain == "month":
        first = d.replace(day=1)
        return d.strftime("%Y-%m"), first, _month_end(first)
    if grain == "quarter":
        first = date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
        return f"{d.year}-Q{(d.month - 1) // 3 + 1}", first, _month_end(date(first.year, first.month + 2, 1))
    iy, iw, wd = d.isocalendar()
    first = d - timedelta(days=wd - 1)
    return f"{iy:04d}-W{iw:02d}", first, first + timedelta(days=6)


def _latest(rows: dict, key, day: int, value) -> None:
    """Keep the row of the latest file day per key (a later row of the same day wins)."""
    if key not in rows or day >= rows[key][0]:
        rows[key] = (day, value)


def definition_truth(tables: dict[str, pl.DataFrame], *, user_customer: dict[str, str], current: dict[str, tuple],
                     start: date, end_date: date, offset: int, window_end_ts: int) -> dict:
    """current: order_id -> (file day, user_id, channel, order_ts, paid_ts, status), the order's current row."""
    users = tables["users"]
    user_reg = dict(zip(users["user_id"].to_list(), users["registered_at"].to_list()))
    user_channel = dict(zip(users["user_id"].to_list(), users["channel"].to_list()))
    customer_users: dict[str, list[str]] = defaultdict(list)
    for u, c in user_customer.items():
        customer_users[c].append(u)
    key_of = {c: min(us) for c, us in customer_users.items()}  # the warehouse's customer_key: smallest user_id

    # ---- orders: amounts of the current row, completed refunds, valid orders
    orders = tables["orders"]
    amounts: dict[str, tuple] = {}
    for oid, disc, pay, coupon, camp, day in zip(
            orders["order_id"].to_list(), orders["discount_amount"].to_list(), orders["pay_amount"].to_list(),
            orders["coupon_id"].to_list(), orders["campaign_id"].to_list(), orders["_day"].to_list()):
        _latest(amounts, oid, day, (disc, pay, coupon, camp))
    ret = tables["returns"]
    returns: dict[str, tuple] = {}
    for rid, oid, sku, amt, st, req, day in zip(
            ret["return_id"].to_list(), ret["order_id"].to_list(), ret["sku_id"].to_list(), ret["amount"].to_list(),
            ret["status"].to_list(), ret["requested_at"].to_list(), ret["_day"].to_list()):
        _latest(returns, rid, day, (oid, sku, amt, st, req))
    refund = defaultdict(int)
    for _, (oid, sku, amt, st, _req) in returns.values():
        if st == "completed":
            refund[oid] += amt
    valid = {oid: v for oid, v in current.items() if v[4] is not None and v[5] != "cancelled"}
    net = {oid: amounts[oid][1][1] - refund[oid] for oid in valid}  # cents
    odate = {oid: _bdate(v[3], offset) for oid, v in current.items()}
    purchase_days: dict[str, set] = defaultdict(set)
    for oid, v in valid.items():
        purchase_days[user_customer[v[1]]].add(odate[oid])
    first_day = {c: min(ds) for c, ds in purchase_days.items()}

    # ---- events: attribution (own user, else the user the device logged in as), per session
    ev = tables["events"]
    ev_cols = [ev[c].to_list() for c in ("session_id", "event_ts", "event_name", "platform", "anonymous_id",
                                          "user_id", "order_id", "campaign_id")]
    anon_user: dict[str, str] = {}
    for _, _, _, _, anon, uid, _, _ in zip(*ev_cols):
        if uid is not None:
            anon_user.setdefault(anon, uid)
    active_dates: dict[str, set] = defaultdict(set)
    login_dates: dict[str, set] = defaultdict(set)
    first_claim: dict[tuple, int] = {}
    sessions: dict[str, list] = defaultdict(list)
    session_platform: dict[str, str] = {}
    for sid, ts, name, plat, anon, uid, oid, camp in zip(*ev_cols):
        u = uid if uid is not None else anon_user.get(anon)
        c = user_customer.get(u) if u is not None else None
        session_platform[sid] = plat
        if name in FUNNEL_STEPS:
            sessions[sid].append((ts, FUNNEL_STEPS.index(name), oid, c))
        if c is None:
            continue
        d = _bdate(ts, offset)
        active_dates[c].add(d)
        if name in ("login", "app_open"):
            login_dates[c].add(d)
        if name == "coupon_click" and camp is not None:
            k = (camp, c)
            first_claim[k] = min(ts, first_claim.get(k, ts))

    out = {
        "definitions": DEFINITIONS,
        **_data_bounds(tables, current, odate, start, end_date, offset),
        **_activity_retention(user_customer, customer_users, user_reg, user_channel, active_dates, end_date,
                              offset),
        "period_repurchase": _periods(valid, net, odate, user_customer, first_day, start, end_date),
        **_horizons(valid, net, odate, user_customer, first_day, end_date),
        "members": _members(tables, user_customer, valid, net, odate, first_day, end_date),
        "slow_movers": _slow_movers(tables, valid, odate, start, end_date, offset),
        "product_revenue": _product_revenue(tables, valid, amounts, returns, odate, end_date),
        "experiments": _experiments(tables, user_customer, valid, window_end_ts),
        "churn_warning": _churn_warning(purchase_days, active_dates, login_dates, key_of, end_date),
        "coupon_redemption": _coupons(valid, amounts, user_customer, first_claim),
        "funnel": _funnel(sessions, session_platform, current, user_customer),
    }
    bounds = out["data_bounds"]
    if bounds["data_start_date"] is not None:
        out["member_events"] = _member_events(tables, user_customer, date.fromisoformat(bounds["data_start_date"]),
                                              date.fromisoformat(bounds["data_end_date"]), offset)
        from .truth_segments import segments_truth  # it imports this module's helpers: not at the top

        out["segments"] = segments_truth(
            tables, user_customer=user_customer, valid=valid, net=net, odate=odate, amounts=amounts,
            purchase_days=purchase_days, active_dates=active_dates, login_dates=login_dates, key_of=key_of,
            data_start=date.fromisoformat(bounds["data_start_date"]),
            end_date=date.fromisoformat(bounds["data_end_date"]), offset=offset)
        out["definitions"] = {**out["definitions"], **out["segments"].pop("definitions")}
    return out


def _data_bounds(tables, current, odate, start, end_date, offset) -> dict:
    def ts_bound(source: str, column: str, how: str) -> date | None:
        v = getattr(tables[source][column], how)()
        return None if v is None else _bdate(v, offset)

    # a tiny world may have no returns, tickets or events at all: such a source has no latest date
    ev_dates = [ts_bound("events", "event_ts", "min"), ts_bound("events", "event_ts", "max")]
    o_dates = [min(odate.values()), max(odate.values())] if odate else [None, None]
    line_orders = set(tables["order_items"]["order_id"].to_list()) & set(odate)
    snapshot = tables["inventory_snapshots"]["snapshot_date"].max()
    latest = {
        "orders": o_dates[1],
        "order_items": max((odate[o] for o in line_orders), default=None),
        "events": ev_dates[1],
        "users": ts_bound("users", "registered_at", "max"),
        "returns": ts_bound("returns", "requested_at", "max"),
        "shipments": ts_bound("shipments", "shipped_at", "max"),
        "inventory_snapshots": date.fromisoformat(snapshot) if snapshot else None,
        "cs_tickets": ts_bound("cs_tickets", "created_at", "max"),
        "marketing_touches": ts_bound("marketing_touches", "sent_at", "max"),
        "experiment_assignments": ts_bound("experiment_assignments", "assigned_at", "max"),
        "member_events": ts_bound("member_events", "event_ts", "max"),
        "ad_spend": date.fromisoformat(spent) if (spent := tables["ad_spend"]["date"].max()) else None,
        "private_domain_events": (ts_bound("private_domain_events", "event_ts", "max")
                                  if "private_domain_events" in tables else None),
    }
    # docs/metrics.md: the latest order or event date; with neither, the latest registration
    data_end = max((d for d in (o_dates[1], ev_dates[1]) if d is not None), default=latest["users"])
    starts = [d for d in (o_dates[0], ev_dates[0]) if d is not None]
    return {
        "data_bounds": {"data_start_date": min(starts).isoformat() if starts else None,
                        "data_end_date": data_end.isoformat(),
                        "window_start_date": start.isoformat(), "window_end_date": end_date.isoformat()},
        "source_lag": {s: {"latest_date": d.isoformat(), "lag_days": (data_end - d).days}
                       for s, d in latest.items() if d is not None},
    }


def _activity_retention(user_customer, customer_users, user_reg, user_channel, active_dates, end_date,
                        offset) -> dict:
    by_date: dict[date, list] = defaultdict(list)
    for c, us in customer_users.items():
        first = min(us, key=lambda u: (user_reg[u], u))
        by_date[_bdate(user_reg[first], offset)].append((c, user_channel[first] in TRACKED_CHANNELS))
    rows = []
    totals = {n: [0, 0] for n in (1, 7, 30)}
    excluded_total = [0, 0]
    for d in sorted(by_date):
        if d > end_date:
            continue
        new = [c for c, tracked in by_date[d] if tracked]
        excluded = len(by_date[d]) - len(new)
        excluded_total[0] += excluded
        excluded_total[1] += len(by_date[d])
        row = {"registration_date": d.isoformat(), "new_users": len(new), "excluded_users": excluded}
        for n in (1, 7, 30):
            dn = d + timedelta(days=n)
            if dn <= end_date:
                k = sum(1 for c in new if dn in active_dates.get(c, ()))
                row[f"d{n}_users"] = k
                totals[n][0] += len(new)
                totals[n][1] += k
            else:
                row[f"d{n}_users"] = None
        rows.append(row)
    return {
        "activity_retention": rows,
        "activity_retention_totals": {
            **{f"d{n}": {"new_users": a, "active_users": b, "rate": b / a if a else None}
               for n, (a, b) in totals.items()},
            "excluded_users": excluded_total[0],
            "excluded_share": excluded_total[0] / excluded_total[1] if excluded_total[1] else None},
    }


def _periods(valid, net, odate, user_customer, first_day, start, end_date) -> dict:
    out = {}
    for grain in ("week", "month", "quarter"):
        days: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
        revenue: dict[str, list] = defaultdict(lambda: [0, 0])
        bounds: dict[str, tuple] = {}
        for oid, v in valid.items():
            c, d = user_customer[v[1]], odate[oid]
            label, first, last = _period(grain, d)
            bounds[label] = (first, last)
            days[label][c].add(d)
            revenue[label][0] += net[oid]
            if d > first_day[c]:
                revenue[label][1] += net[oid]
        rows = []
        for label in sorted(days):
            buyers = days[label]
            repeat = sum(1 for ds in buyers.values() if len(ds) >= 2)
            total, rep = revenue[label]
            rows.append({"period": label, "buyers": len(buyers), "repeat_buyers": repeat,
                         "rate": repeat / len(buyers), "net_revenue": total / 100,
                         "repeat_net_revenue": rep / 100, "repeat_revenue_share": rep / total if total else None,
                         "is_complete": bounds[label][0] >= start and bounds[label][1] <= end_date})
        out[grain] = rows
    return out


def _horizons(valid, net, odate, user_customer, first_day, end_date) -> dict:
    by_customer: dict[str, list] = defaultdict(list)
    for oid, v in valid.items():
        by_customer[user_customer[v[1]]].append((odate[oid], net[oid]))
    cohorts: dict[str, list] = defaultdict(list)
    for c, f in first_day.items():
        cohorts[f.strftime("%Y-%m")].append(c)
    funnel, ltv = [], []
    for ym in sorted(cohorts):
        members = cohorts[ym]
        last_day = _month_end(date(int(ym[:4]), int(ym[5:]), 1))
        for n in FUNNEL_HORIZONS:
            if last_day + timedelta(days=n) > end_date:
                continue
            within = [len({d for d, _ in by_customer[c] if (d - first_day[c]).days <= n}) for c in members]
            funnel.append({"cohort_month": ym, "horizon_days": n, "customers": len(members),
                           **{f"reached_{k}": sum(1 for w in within if w >= m)
                              for k, m in (("2nd", 2), ("3rd", 3), ("4th", 4), ("5plus", 5))}})
        for n in LTV_HORIZONS:
            if last_day + timedelta(days=n) > end_date:
                continue
            total = sum(a for c in members for d, a in by_customer[c] if (d - first_day[c]).days <= n)
            ltv.append({"cohort_month": ym, "horizon_days": n, "customers": len(members),
                        "ltv_net": total / 100 / len(members)})
    return {"repurchase_funnel": funnel, "ltv_cohort": ltv}


def _members(tables, user_customer, valid, net, odate, first_day, end_date) -> dict:
    users = tables["users"]
    latest: dict[str, tuple] = {}
    for uid, level, day in zip(users["user_id"].to_list(), users["member_level"].to_list(), users["_day"].to_list()):
        _latest(latest, uid, day, level)
    is_member: dict[str, bool] = defaultdict(bool)
    for uid, c in user_customer.items():
        level = latest[uid][1] if uid in latest else None
        is_member[c] |= level is not None and level >= 1
    by_customer: dict[str, list] = defaultdict(list)
    for oid, v in valid.items():
        by_customer[user_customer[v[1]]].append((odate[oid], net[oid]))
    for c in first_day:
        is_member.setdefault(c, False)  # a buyer is a customer even without a users row

    def next_month_end(d: date) -> date:
        return _month_end(_month_end(d) + timedelta(days=1))

    out = {}
    for status in ("member", "non_member", "all"):
        group = [c for c, m in is_member.items() if status == "all" or m == (status == "member")]
        buyers = [c for c in group if c in first_day]
        row = {"customers": len(group), "customer_share": len(group) / len(is_member), "buyers": len(buyers)}
        base = [c for c in buyers if _month_end(first_day[c]) + timedelta(days=30) <= end_date]
        rep = sum(1 for c in base if any(first_day[c] < d <= first_day[c] + timedelta(days=30)
                                         for d, _ in by_customer[c]))
        row.update(repurchase_base=len(base), repurchased_30d=rep,
                   repurchase_rate_30d=rep / len(base) if base else None)
        base = [c for c in buyers if next_month_end(first_day[c]) <= end_date]
        nxt = {c: _month_end(first_day[c]) + timedelta(days=1) for c in base}
        kept = sum(1 for c in base if any((d.year, d.month) == (nxt[c].year, nxt[c].month) for d, _ in by_customer[c]))
        row.update(retention_base=len(base), retained_next_month=kept,
                   retention_rate_next_month=kept / len(base) if base else None)
        for n in (30, 90):
            base = [c for c in buyers if _month_end(first_day[c]) + timedelta(days=n) <= end_date]
            total = sum(a for c in base for d, a in by_customer[c] if (d - first_day[c]).days <= n)
            row.update({f"ltv_{n}d_base": len(base), f"ltv_net_{n}d": total / 100 / len(base) if base else None})
        out[status] = row
    return out


def _member_events(tables, user_customer, start, end_date, offset) -> dict:
    me = tables["member_events"]
    rows = sorted(zip(me["event_ts"].to_list(), me["event_id"].to_list(), me["user_id"].to_list(),
                      me["type"].to_list(), me["level"].to_list(), me["points"].to_list()))
    level_now: dict[str, int] = {}
    moves: dict[tuple, list] = defaultdict(lambda: [0, set()])
    points: dict[str, list] = defaultdict(lambda: [0, 0, set(), set()])
    first_join: dict[str, date] = {}
    active: dict[date, set] = defaultdict(set)
    uses: dict[date, int] = defaultdict(int)
    for ts, _eid, uid, kind, level, pts in rows:
        d = _bdate(ts, offset)
        c = user_customer.get(uid, uid)
        month = d.strftime("%Y-%m")
        active[d].add(c)
        if kind in ("join", "level_up", "level_down"):
            m = moves[(month, kind, level_now.get(uid, 0), level)]
            m[0] += 1
            m[1].add(c)
            level_now[uid] = level
        if kind == "join":
            first_join[c] = min(d, first_join.get(c, d))
        if kind == "points_earned":
            points[month][0] += pts
            points[month][2].add(c)
        if kind == "points_redeemed":
            points[month][1] += pts
            points[month][3].add(c)
        if kind == "benefit_used":
            uses[d] += 1
    daily = []
    pooled = {"member_day": [0, 0, 0, 0], "other_day": [0, 0, 0, 0]}  # days, member-days, uses, active
    d = start
    while d <= end_date:
        members = sum(1 for j in first_join.values() if j <= d)
        daily.append({"date": d.isoformat(), "members": members, "active_members": len(active[d]),
                      "benefit_uses": uses[d]})
        p = pooled["member_day" if d.day == MEMBER_DAY else "other_day"]
        p[0] += 1
        p[1] += members
        p[2] += uses[d]
        p[3] += len(active[d])
        d += timedelta(days=1)
    rate = {k: (v[2] / v[1] if v[1] else None) for k, v in pooled.items()}
    return {
        "level_moves": [{"month": k[0], "move_type": k[1], "from_level": k[2], "to_level": k[3], "moves": v[0],
                         "customers": len(v[1])} for k, v in sorted(moves.items())],
        "final_level": dict(sorted(level_now.items())),
        "points": [{"month": k, "points_earned": v[0], "points_redeemed": v[1], "earning_customers": len(v[2]),
                    "redeeming_customers": len(v[3])} for k, v in sorted(points.items())],
        "daily": daily,
        "member_day": {k: {"days": v[0], "member_days": v[1], "benefit_uses": v[2], "active_member_days": v[3],
                           "benefit_uses_per_member": rate[k]} for k, v in pooled.items()},
        "member_day_uplift": (rate["member_day"] / rate["other_day"]
                              if rate["member_day"] is not None and rate["other_day"] else None),
    }


def _slow_movers(tables, valid, odate, start, end_date, offset) -> dict:
    products = tables["products"]
    launched = {s: (_bdate(t, offset) if t is not None else None)
                for s, t in zip(products["sku_id"].to_list(), products["launched_at"].to_list())}
    sale_days: dict[str, set] = defaultdict(set)
    items = tables["order_items"]
    for oid, sku, qty in zip(items["order_id"].to_list(), items["sku_id"].to_list(), items["quantity"].to_list()):
        if oid in valid and qty > 0:
            sale_days[sku].add(odate[oid])
    months = []
    m = start.replace(day=1)
    while m <= end_date:
        if m >= start and _month_end(m) <= end_date:
            months.append(m)
        m = _month_end(m) + timedelta(days=1)
    run: dict[str, int] = defaultdict(int)
    slow_movers, share = {}, {}
    previous = None
    for m in months:
        last = _month_end(m)
        listed = []
        for sku in sorted(launched):
            if launched[sku] is not None and launched[sku] > m:
                continue
            days = sum(1 for d in sale_days[sku] if m <= d <= last)
            rate = days / ((last - m).days + 1)
            share[f"{m.isoformat()}|{sku}"] = rate
            consecutive = previous is not None and (m - timedelta(days=1)).replace(day=1) == previous
            run[sku] = (run[sku] + 1 if consecutive else 1) if rate < SLOW_MOVER_SHARE else 0
            if run[sku] >= SLOW_MOVER_MONTHS:
                listed.append(sku)
        slow_movers[m.isoformat()] = listed
        previous = m
    return {"months": [m.isoformat() for m in months], "slow_movers": slow_movers, "sell_through_rate": share}


def _product_revenue(tables, valid, amounts, returns, odate, end_date) -> dict:
    items = tables["order_items"]
    lines = defaultdict(list)  # order -> [(sku, line amount in cents, line discount)]
    for oid, sku, qty, unit, disc in zip(items["order_id"].to_list(), items["sku_id"].to_list(),
                                         items["quantity"].to_list(), items["unit_price"].to_list(),
                                         items["discount_amount"].to_list()):
        if oid in valid:
            lines[oid].append((sku, qty * unit - disc, disc))
    sku_refund = defaultdict(int)
    whole_refund = defaultdict(int)
    for _, (oid, sku, amt, st, _req) in returns.values():
        if st == "completed":
            if sku is None:
                whole_refund[oid] += amt
            else:
                sku_refund[(oid, sku)] += amt
    daily = defaultdict(float)  # (date, sku) -> yuan
    for oid, ls in lines.items():
        order_disc, pay = amounts[oid][1][0], amounts[oid][1][1]
        total = sum(a for _, a, _ in ls)
        extra = order_disc - sum(d for _, _, d in ls)
        by_sku = defaultdict(int)
        for sku, a, _ in ls:
            by_sku[sku] += a
        for sku, a, _ in ls:
            after = a - (extra * a / total if total else 0)
            r = sku_refund[(oid, sku)] * a / by_sku[sku] if by_sku[sku] else 0
            r += after * whole_refund[oid] / pay if pay else 0
            daily[(odate[oid], sku)] += (after - r) / 100
    window_start = end_date - timedelta(days=ABC_WINDOW_DAYS - 1)
    revenue = defaultdict(float)
    for (d, sku), v in daily.items():
        if window_start <= d <= end_date:
            revenue[sku] += v
    skus = sorted(tables["products"]["sku_id"].to_list(), key=lambda s: (-revenue.get(s, 0.0), s))
    total = sum(revenue.get(s, 0.0) for s in skus)
    abc, before = {}, 0.0
    for s in skus:
        r = revenue.get(s, 0.0)
        share_before = before / total if total else 0
        abc[s] = {"revenue": r, "class": "C" if r <= 0 else "A" if share_before < 0.8 else "B"
                  if share_before < 0.95 else "C"}
        before += r
    top10 = defaultdict(list)
    for (d, sku), v in daily.items():
        top10[d.isoformat()].append((v, sku))
    # one more than the top N, so a tie at the cut can be told from a wrong rank
    top10 = {d: sorted(((round(v, 6), s) for v, s in vs), key=lambda t: (-t[0], t[1]))[:TOP_N + 1]
             for d, vs in top10.items()}
    return {"abc": abc, "top10_revenue": top10}


def _experiments(tables, user_customer, valid, window_end_ts) -> dict:
    orders_of = defaultdict(list)
    for v in valid.values():
        orders_of[user_customer[v[1]]].append(v[3])
    exp = tables["experiment_assignments"]
    assigned: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for eid, uid, variant, at in zip(exp["experiment_id"].to_list(), exp["user_id"].to_list(),
                                     exp["variant"].to_list(), exp["assigned_at"].to_list()):
        assigned[eid][user_customer.get(uid, "user:" + uid)].append((variant, at))
    out = {}
    for eid, customers in sorted(assigned.items()):
        arms: dict[str, dict] = {}
        conflicts = 0
        for c, accounts in customers.items():
            if len({v for v, _ in accounts}) > 1:
                conflicts += 1
                continue
            variant, at = accounts[0][0], min(a for _, a in accounts)
            arm = arms.setdefault(variant, {"users_assigned": 0, "users": 0, "converted": 0})
            arm["users_assigned"] += 1
            if at + EXPERIMENT_WINDOW <= window_end_ts:
                arm["users"] += 1
                arm["converted"] += any(at < t <= at + EXPERIMENT_WINDOW for t in orders_of.get(c, ()))
        for arm in arms.values():
            arm["conversion_rate"] = arm["converted"] / arm["users"] if arm["users"] else None
        out[eid] = {"arms": arms, "conflicting_customers": conflicts}
    return out


def _churn_warning(purchase_days, active_dates, login_dates, key_of, end_date) -> dict:
    reasons = {}
    recent_flagged_before = 0
    for c, ds in purchase_days.items():
        ds = {d for d in ds if d <= end_date}
        if not ds:
            continue
        recency = (end_date - max(ds)).days
        last90 = sum(1 for d in ds if (end_date - d).days < 90)
        prev90 = sum(1 for d in ds if 90 <= (end_date - d).days < 180)
        tracked = any(d <= end_date for d in active_dates.get(c, ()))
        logins = [d for d in login_dates.get(c, ()) if d <= end_date]
        lapsed = tracked and (not logins or (end_date - max(logins)).days >= 30)
        declining = 2 * last90 < prev90
        if recency < 30:
            recent_flagged_before += lapsed or declining
            continue
        if lapsed or declining:
            reasons[key_of[c]] = "both" if lapsed and declining else "no_login_30d" if lapsed \
                else "purchase_decline_90d"
    return {"as_of_date": end_date.isoformat(), "buyers": sum(1 for ds in purchase_days.values()
                                                             if min(ds) <= end_date),
            "warned": dict(sorted(reasons.items())), "recent_buyers_flagged_by_old_rule": recent_flagged_before}


def _coupons(valid, amounts, user_customer, first_claim) -> dict:
    coupon_orders = defaultdict(list)
    for oid, v in valid.items():
        _, (_, _, coupon, camp) = amounts[oid]
        if coupon is not None and camp is not None:
            coupon_orders[(camp, user_customer[v[1]])].append(v[3])
    out: dict[str, dict] = {}
    before_only = 0
    for (camp, c), claimed_at in sorted(first_claim.items()):
        row = out.setdefault(camp, {"coupon_claimers": 0, "claimers_redeemed": 0})
        row["coupon_claimers"] += 1
        times = coupon_orders.get((camp, c), [])
        redeemed = any(t >= claimed_at for t in times)
        row["claimers_redeemed"] += redeemed
        before_only += bool(times) and not redeemed
    return {"campaigns": out, "claimers_with_coupon_orders_only_before_the_claim": before_only}


def _funnel(sessions, session_platform, current, user_customer) -> dict:
    total = [0] * 5
    by_platform: dict[str, list] = {}
    untracked = 0
    for sid, plat in session_platform.items():
        evs = sessions.get(sid, [])
        reached, t_prev = 0, None
        for k in range(4):
            cand = [ts for ts, s, _, _ in evs if s == k and (t_prev is None or ts >= t_prev)]
            if not cand:
                break
            t_prev, reached = min(cand), k + 1
        if reached == 4:
            if any(s == 4 and ts >= t_prev for ts, s, _, _ in evs):
                reached = 5
            else:
                submits = sorted((ts, oid, c) for ts, s, oid, c in evs if s == 3 and ts >= t_prev and oid)
                if submits:
                    _, oid, c = submits[0]
                    order = current.get(oid)
                    if order is not None and order[4] is not None and c is not None \
                            and user_customer[order[1]] == c:
                        reached = 5
                        untracked += 1
        counts = by_platform.setdefault(plat, [0] * 5)
        for k in range(reached):
            total[k] += 1
            counts[k] += 1
    return {
        "steps": list(FUNNEL_STEPS),
        "sessions": len(session_platform),
        "all": dict(zip(FUNNEL_STEPS, total)),
        "by_platform": {p: dict(zip(FUNNEL_STEPS, v)) for p, v in sorted(by_platform.items())},
        "payment_dropoff": 1 - total[4] / total[3] if total[3] else None,
        "untracked_payment_sessions": untracked,
    }
