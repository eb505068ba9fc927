"""Ground truth for the demo data, computed by a deliberately simple, independent implementation.

Plain Python loops and dicts over the generated *good* rows (the tables the files were written from,
before bad rows were planted). Nothing here is shared with the warehouse code, so the marts can be
checked against it. Every metric's definition is written into truth.json next to its values.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import polars as pl

from .truth_acquisition import acquisition_truth
from .truth_behaviour import behaviour_truth
from .truth_referral import referral_truth
from .truth_definitions import definition_truth
from .truth_region import region_truth
from .truth_private_domain import private_domain_truth

DEFINITIONS = {
    "business_date": "local date of a timestamp in the business time zone (default Asia/Shanghai)",
    "customer": "users sharing a non-null phone_hash are one customer; a user without phone_hash is its own "
                "customer (key = phone_hash, else 'user:'+user_id)",
    "cross_channel_customers": "customers whose users span >= 2 distinct channels",
    "current_order_row": "for each order_id the row from the file with the latest file date (one row per "
                         "order per file)",
    "valid_order": "current row has paid_ts not null and status != 'cancelled'",
    "purchase_day": "business date of order_ts of a valid order, per customer (a set of dates)",
    "first_purchase": "customer's earliest valid order (min purchase day); cohort_month = 'YYYY-MM' of it",
    "data_end_date": "last business date of the window = start + days - 1",
    "repurchase_30d": "per cohort_month: customers = customers with first purchase in that month; repurchased = "
                      "those with another purchase day d, first_day < d <= first_day + 30; rate = repurchased/"
                      "customers; is_complete = last day of cohort month + 30 <= data_end_date",
    "cohort_retention": "month cohorts by first purchase, k = 0..12: cohort_size, active_customers = cohort "
                        "customers with a purchase day in calendar month cohort_month + k, rate; only k whose "
                        "month starts on or before data_end_date",
    "tracking_coverage": "paid orders (current row paid_ts not null) on channels app/mini_program/web; covered ="
                         " a payment_success event carries the order_id; coverage = covered/paid",
    "experiment": "per variant: users assigned; converted = the user's customer has a valid order with order_ts"
                  " in (assigned_at, assigned_at + 30 days]; *_complete counts only assignments with "
                  "assigned_at + 30 days <= window end",
    "operations.returns_by_category": "delivered order = its shipment has delivered_at (latest shipment row); "
                                      "primary category = category_l1 of the order's line 1; mature = business "
                                      "date of delivered_at + 7 <= data_end_date; returned = the order has any "
                                      "return row (any status); rate = returned/delivered over mature orders",
    "operations.order_to_ship": "per shipped order: (shipped_at - current paid_ts) in hours; day_type = weekend "
                                "when the business date of paid_ts is a Saturday or Sunday; mean per day_type",
    "operations.return_cycle": "completed returns requested on business dates <= data_end_date - 21: mean of "
                               "(completed_at - requested_at) in days",
    "operations.first_response": "tickets with first_response_at created on business dates <= data_end_date - 2: "
                                 "mean (first_response_at - created_at) in hours per channel; bot_share = bot "
                                 "tickets / all tickets",
    "operations.basket": "valid orders (current row) with their lines' distinct category_l1; for each ordered "
                         "pair (a, b), a != b: support = orders with both / orders, confidence = orders with "
                         "both / orders with a, lift = confidence / (orders with b / orders)",
    "operations.campaign_roi": "per tier (big = planted big_promotion_campaign_ids, else daily): sum of pay_amount "
                               "of valid orders (current row) tagged with a campaign of the tier / sum of the tier's "
                               "campaign cost",
    "rows_per_source": "good rows landed per source (every file row that is not a planted bad row); bad rows "
                       "counted separately",
}


def _bdate(ts: int, offset: int) -> date:
    return (datetime(1970, 1, 1) + timedelta(seconds=ts + offset)).date()


def _add_months(ym: str, k: int) -> str:
    y, m = int(ym[:4]), int(ym[5:7])
    m0 = y * 12 + (m - 1) + k
    return f"{m0 // 12:04d}-{m0 % 12 + 1:02d}"


def _month_last_day(ym: str) -> date:
    nxt = _add_months(ym, 1)
    return date(int(nxt[:4]), int(nxt[5:7]), 1) - timedelta(days=1)


def compute_truth(tables: dict[str, pl.DataFrame], *, start: date, days: int, offset: int, timezone_name: str,
                  planted_params: dict, planted_bad: list[dict], rows_per_file: dict[str, dict[str, int]]) -> dict:
    end_date = start + timedelta(days=days - 1)
    window_end_ts = int((datetime(end_date.year, end_date.month, end_date.day) + timedelta(days=1)
                         - datetime(1970, 1, 1)).total_seconds()) - offset

    # ---------------- customers
    users = tables["users"]
    user_customer: dict[str, str] = {}
    user_channel: dict[str, str] = {}
    user_reg_date: dict[str, date] = {}
    for uid, ph, ch, reg in zip(users["user_id"].to_list(), users["phone_hash"].to_list(),
                                users["channel"].to_list(), users["registered_at"].to_list()):
        user_customer[uid] = ph if ph is not None else "user:" + uid
        user_channel[uid] = ch
        user_reg_date[uid] = _bdate(reg, offset)
    cust_channels: dict[str, set] = defaultdict(set)
    for uid, c in user_customer.items():
        cust_channels[c].add(user_channel[uid])
    cross = sum(1 for s in cust_channels.values() if len(s) >= 2)

    # ---------------- orders: current row
    orders = tables["orders"]
    current: dict[str, tuple] = {}
    for oid, uid, ch, ots, pts, st, day in zip(
            orders["order_id"].to_list(), orders["user_id"].to_list(), orders["channel"].to_list(),
            orders["order_ts"].to_list(), orders["paid_ts"].to_list(), orders["status"].to_list(),
            orders["_day"].to_list()):
        prev = current.get(oid)
        if prev is None or day >= prev[0]:
            current[oid] = (day, uid, ch, ots, pts, st)
    purchase_days: dict[str, set] = defaultdict(set)
    valid_orders = []  # (customer, order_ts)
    for oid, (day, uid, ch, ots, pts, st) in current.items():
        if pts is not None and st != "cancelled":
            c = user_customer[uid]
            purchase_days[c].add(_bdate(ots, offset))
            valid_orders.append((c, ots))
    first_day = {c: min(ds) for c, ds in purchase_days.items()}

    # repurchase 30d
    rep = defaultdict(lambda: [0, 0])
    for c, f in first_day.items():
        ym = f.strftime("%Y-%m")
        rep[ym][0] += 1
        if any(f < d <= f + timedelta(days=30) for d in purchase_days[c]):
            rep[ym][1] += 1
    repurchase_30d = [
        {"cohort_month": ym, "customers": n, "repurchased_30d": r, "repurchase_rate_30d": r / n,
         "is_complete": _month_last_day(ym) + timedelta(days=30) <= end_date}
        for ym, (n, r) in sorted(rep.items())]

    # cohort retention (month)
    cohorts = defaultdict(list)
    for c, f in first_day.items():
        cohorts[f.strftime("%Y-%m")].append(c)
    cohort_retention = []
    for ym in sorted(cohorts):
        members = cohorts[ym]
        for k in range(13):
            mk = _add_months(ym, k)
            if date(int(mk[:4]), int(mk[5:7]), 1) > end_date:
                break
            active = sum(1 for c in members if any(d.strftime("%Y-%m") == mk for d in purchase_days[c]))
            cohort_retention.append({"cohort_month": ym, "period_index": k, "cohort_size": len(members),
                                     "active_customers": active, "retention_rate": active / len(members)})

    # ---------------- events: tracking coverage (funnel and activity retention: truth_definitions)
    ev = tables["events"]
    success_orders = {oid for name, oid in zip(ev["event_name"].to_list(), ev["order_id"].to_list())
                      if name == "payment_success" and oid is not None}
    n_sessions = ev["session_id"].n_unique()

    paid_tracked = [oid for oid, (day, uid, ch, ots, pts, st) in current.items()
                    if pts is not None and ch in ("app", "mini_program", "web")]
    covered = sum(1 for oid in paid_tracked if oid in success_orders)
    coverage = {"paid_orders": len(paid_tracked), "covered": covered,
                "coverage": covered / len(paid_tracked) if paid_tracked else None}

    # ---------------- experiment
    exp = tables["experiment_assignments"]
    cust_orders = defaultdict(list)
    for c, ots in valid_orders:
        cust_orders[c].append(ots)
    arms: dict[str, dict] = {}
    for eid, uid, variant, at in zip(exp["experiment_id"].to_list(), exp["user_id"].to_list(),
                                     exp["variant"].to_list(), exp["assigned_at"].to_list()):
        if eid != planted_params.get("experiment_id"):
            continue
        a = arms.setdefault(variant, {"users": 0, "converted": 0, "users_complete": 0, "converted_complete": 0})
        conv = any(at < t <= at + 30 * 86400 for t in cust_orders.get(user_customer[uid], ()))
        a["users"] += 1
        a["converted"] += conv
        if at + 30 * 86400 <= window_end_ts:
            a["users_complete"] += 1
            a["converted_complete"] += conv
    for a in arms.values():
        a["conversion_rate"] = a["converted"] / a["users"] if a["users"] else None
        a["conversion_rate_complete"] = a["converted_complete"] / a["users_complete"] if a["users_complete"] else None

    # ---------------- returns (measured) and row counts
    ret = tables["returns"]
    ret_final: dict[str, tuple] = {}
    for rid, st, amt, day in zip(ret["return_id"].to_list(), ret["status"].to_list(), ret["amount"].to_list(),
                                 ret["_day"].to_list()):
        if rid not in ret_final or day >= ret_final[rid][0]:
            ret_final[rid] = (day, st, amt)
    delivered = sum(1 for v in current.values() if v[5] in ("delivered", "refunded"))

    rows_per_source = {s: sum(v.values()) for s, v in rows_per_file.items()}
    bad_per_source: dict[str, int] = {s: 0 for s in rows_per_file}
    bad_per_rule: dict[str, dict[str, int]] = {s: {} for s in rows_per_file}
    for b in planted_bad:
        bad_per_source[b["source"]] += 1
        bad_per_rule[b["source"]][b["rule"]] = bad_per_rule[b["source"]].get(b["rule"], 0) + 1

    operations = _operations_truth(tables, current, user_customer, cust_orders, offset=offset,
                                   end_date=end_date, window_end_ts=window_end_ts, planted=planted_params)
    defined = definition_truth(tables, user_customer=user_customer, current=current, start=start,
                               end_date=end_date, offset=offset, window_end_ts=window_end_ts)
    experiments = defined.pop("experiments")
    for eid, e in experiments.items():
        e.update((planted_params.get("experiments_expected") or {}).get(eid, {}))
    operations.update(experiments=experiments, slow_movers=defined.pop("slow_movers"),
                      product_revenue=defined.pop("product_revenue"),
                      coupon_redemption=defined.pop("coupon_redemption"))

    behaviour = behaviour_truth(tables, user_customer=user_customer, offset=offset, bounds=defined["data_bounds"])

    n_customers = len(cust_channels)
    acquisition = acquisition_truth(tables, offset=offset, end_date=end_date)
    region = region_truth(tables, offset=offset, start=start, days=days, bounds=defined["data_bounds"])
    private_domain = private_domain_truth(
        tables, offset=offset, end_date=date.fromisoformat(defined["data_bounds"]["data_end_date"]))
    referral = referral_truth(tables, offset=offset,
                              data_end=date.fromisoformat(defined["data_bounds"]["data_end_date"]))
    return {
        **defined,
        "acquisition": acquisition,
        **behaviour,
        "definitions": {**DEFINITIONS, **defined["definitions"], **acquisition.pop("definitions"),
                        **behaviour["definitions"], **region.pop("definitions"),
                        **private_domain.pop("definitions"), **referral.pop("definitions")},
        "window": {"start_date": start.isoformat(), "data_end_date": end_date.isoformat(), "days": days,
                   "timezone": timezone_name},
        "counts": {
            "users": len(user_customer), "customers": n_customers, "cross_channel_customers": cross,
            "cross_channel_share": cross / n_customers if n_customers else None,
            "buyers": len(first_day), "buyer_share": len(first_day) / n_customers if n_customers else None,
            "orders": len(current), "valid_orders": len(valid_orders), "delivered_or_refunded_orders": delivered,
            "returns": len(ret_final),
            "returns_completed": sum(1 for v in ret_final.values() if v[1] == "completed"),
            "returns_completed_amount": sum(v[2] for v in ret_final.values() if v[1] == "completed") / 100,
            "orders_refunded": sum(1 for v in current.values() if v[5] == "refunded"),
            "sessions": n_sessions, "events": ev.height,
        },
        "repurchase_30d": repurchase_30d,
        "cohort_retention": cohort_retention,
        "tracking_coverage": coverage,
        "experiment": {"experiment_id": planted_params.get("experiment_id"),
                       "planted_factor": planted_params.get("experiment_factor"), "arms": arms},
        "rows_per_source": rows_per_source,
        "rows_per_file": rows_per_file,
        "bad_rows_per_source": bad_per_source,
        "bad_rows_per_rule": bad_per_rule,
        "bad_rows_by_rule": bad_per_rule,  # same mapping; the name tests/test_end_to_end.py reads
        "bad_rows_total": len(planted_bad),
        "bad_rows": planted_bad,
        "planted": planted_params,
        "operations": operations,
        "region": region,
        "private_domain": private_domain,
        **referral,
    }


def _operations_truth(tables, current, user_customer, cust_orders, *, offset, end_date, window_end_ts,
                      planted) -> dict:
    # ---- products: line 1 category, order categories
    sku_cat = dict(zip(tables["products"]["sku_id"].to_list(), tables["products"]["category_l1"].to_list()))
    items = tables["order_items"]
    primary_cat: dict[str, str] = {}
    order_cats: dict[str, set] = defaultdict(set)
    for oid, line_no, sku in zip(items["order_id"].to_list(), items["line_no"].to_list(), items["sku_id"].to_list()):
        if line_no == 1:
            primary_cat[oid] = sku_cat[sku]
        order_cats[oid].add(sku_cat[sku])

    # ---- shipments (latest row per shipment)
    sh = tables["shipments"]
    ship: dict[str, tuple] = {}
    for sid, oid, shipped, delivered, day in zip(sh["shipment_id"].to_list(), sh["order_id"].to_list(),
                                                 sh["shipped_at"].to_list(), sh["delivered_at"].to_list(),
                                                 sh["_day"].to_list()):
        if sid not in ship or day >= ship[sid][0]:
            ship[sid] = (day, oid, shipped, delivered)

    # ---- returns (latest row per return)
    ret = tables["returns"]
    returns: dict[str, tuple] = {}
    for rid, oid, st, req, comp, day in zip(ret["return_id"].to_list(), ret["order_id"].to_list(),
                                           ret["status"].to_list(), ret["requested_at"].to_list(),
                                           ret["completed_at"].to_list(), ret["_day"].to_list()):
        if rid not in returns or day >= returns[rid][0]:
            returns[rid] = (day, oid, st, req, comp)
    returned_orders = {v[1] for v in returns.values()}

    by_cat = defaultdict(lambda: [0, 0])
    ship_hours = {"weekday": [], "weekend": []}
    for _, oid, shipped, delivered in ship.values():
        pts = current[oid][4]
        if pts is not None:
            day_type = "weekend" if _bdate(pts, offset).weekday() >= 5 else "weekday"
            ship_hours[day_type].append((shipped - pts) / 3600)
        if delivered is not None and _bdate(delivered, offset) + timedelta(days=7) <= end_date:
            c = by_cat[primary_cat[oid]]
            c[0] += 1
            c[1] += oid in returned_orders
    returns_by_category = {cat: {"delivered_orders": n, "returned_orders": r, "return_rate": r / n}
                           for cat, (n, r) in sorted(by_cat.items())}
    n_all = sum(v[0] for v in by_cat.values())
    r_all = sum(v[1] for v in by_cat.values())
    mean_h = {k: (sum(v) / len(v) if v else None) for k, v in ship_hours.items()}
    # planted delays: weekday min(Gamma(2, 10h), 60h), weekend 2.3 x Gamma(2, 10h), both + 0.5 h
    import math
    c = 6.0  # 60 h cap / 10 h scale
    cap_loss = 10 * (2 * math.exp(-c) * (1 + c + c * c / 2) - c * math.exp(-c) * (1 + c))
    exp_weekday = 20 - cap_loss + 0.5
    exp_weekend = planted["weekend_shipping_factor"] * 20 + 0.5

    cycle_cut = end_date - timedelta(days=21)
    cycles = [(comp - req) / 86400 for _, _, st, req, comp in returns.values()
              if st == "completed" and comp is not None and _bdate(req, offset) <= cycle_cut]

    tk = tables["cs_tickets"]
    tickets: dict[str, tuple] = {}
    for tid, ch, created, first, day in zip(tk["ticket_id"].to_list(), tk["channel"].to_list(),
                                            tk["created_at"].to_list(), tk["first_response_at"].to_list(),
                                            tk["_day"].to_list()):
        if tid not in tickets or day >= tickets[tid][0]:
            tickets[tid] = (day, ch, created, first)
    resp = defaultdict(list)
    for _, ch, created, first in tickets.values():
        if first is not None and _bdate(created, offset) <= end_date - timedelta(days=2):
            resp[ch].append((first - created) / 3600)
    n_bot = sum(1 for v in tickets.values() if v[1] == "bot")

    # ---- basket (order scope)
    valid = [oid for oid, v in current.items() if v[4] is not None and v[5] != "cancelled" and oid in order_cats]
    n_orders = len(valid)
    single = defaultdict(int)
    pair = defaultdict(int)
    for oid in valid:
        cats = sorted(order_cats[oid])
        for a in cats:
            single[a] += 1
            for b in cats:
                if a != b:
                    pair[(a, b)] += 1
    pairs = {}
    for (a, b), k in sorted(pair.items()):
        pairs[f"{a}|{b}"] = {"orders_with_both": k, "orders_with_a": single[a], "orders_with_b": single[b],
                             "support": k / n_orders, "confidence": k / single[a],
                             "lift": (k / single[a]) / (single[b] / n_orders)}
    # ---- campaign ROI on tagged pay
    camp = tables["campaigns"]
    cost = dict(zip(camp["campaign_id"].to_list(), camp["cost"].to_list()))
    big = set(planted.get("big_promotion_campaign_ids") or [])
    orders = tables["orders"]
    tagged_campaign = {}
    tagged_pay = {}
    for oid, cid, pay_c, day in zip(orders["order_id"].to_list(), orders["campaign_id"].to_list(),
                                    orders["pay_amount"].to_list(), orders["_day"].to_list()):
        tagged_campaign[oid] = cid
        tagged_pay[oid] = pay_c
    tier_pay = defaultdict(int)
    for oid, v in current.items():
        cid = tagged_campaign[oid]
        if cid is not None and v[4] is not None and v[5] != "cancelled":
            tier_pay["big_promotion" if cid in big else "daily"] += tagged_pay[oid]
    tier_cost = defaultdict(int)
    for cid, c in cost.items():
        tier_cost["big_promotion" if cid in big else "daily"] += c
    campaign_roi = {t: {"tagged_pay": tier_pay[t] / 100, "cost": tier_cost[t] / 100,
                        "roi": tier_pay[t] / tier_cost[t] if tier_cost[t] else None,
                        "planted_roi": planted.get("campaign_roi_big" if t == "big_promotion" else "campaign_roi_daily")}
                    for t in sorted(tier_cost)}
    aff = planted.get("affinity_pair")
    return {
        "returns_by_category": returns_by_category,
        "returns_overall": {"delivered_orders": n_all, "returned_orders": r_all,
                            "return_rate": r_all / n_all if n_all else None},
        "order_to_ship_hours": {"orders": {k: len(v) for k, v in ship_hours.items()}, "mean": mean_h,
                                "weekend_weekday_ratio": (mean_h["weekend"] / mean_h["weekday"]
                                                          if mean_h["weekday"] and mean_h["weekend"] is not None
                                                          else None),
                                "expected_mean": {"weekday": exp_weekday, "weekend": exp_weekend},
                                "expected_ratio": exp_weekend / exp_weekday},
        "return_cycle_days": {"returns": len(cycles), "mean": sum(cycles) / len(cycles) if cycles else None,
                              "planted_mean": planted.get("return_cycle_mean_days")},
        "first_response_hours": {ch: {"tickets": len(v), "mean": sum(v) / len(v)} for ch, v in sorted(resp.items())},
        "human_first_response_expected_hours": planted["human_first_response_mean_hours"] + 60 / 3600,
        "tickets": len(tickets), "bot_tickets": n_bot, "bot_share": n_bot / len(tickets) if tickets else None,
        "campaign_roi": campaign_roi,
        "basket": {"orders": n_orders, "pairs": pairs,
                   "planted_pair": f"{aff[0]}|{aff[1]}" if aff else None},
    }
