"""Truth for "Segments that explain outcomes" (docs/metrics.md "Segments"), from the generator's own rows.

Plain loops over the customers' purchase days, order lines, touches and coupons, following the wording of
each definition; the RFM quintiles, named segments, tiers and churn warnings are recomputed here from the
rows, never read from a mart. Called from truth_definitions.definition_truth with what it has already
derived (customers, valid orders, attributed tracking days).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from .truth_definitions import _bdate, _churn_warning

TIER_RANK = {"none": 0, "novice": 1, "advanced": 2, "expert": 3}

DEFINITIONS = {
    "segments.as_of_dates": "every month end from the data start date's month to the data end date, and the "
                            "data end date",
    "segments.segment": "per as-of date d, customers with a purchase day <= d: R = days since the last purchase "
                        "day, F = purchase days and M = net revenue in d-364..d; scores = ntile(5) worst to best, "
                        "equal values take the lowest score any of them got; new (1 purchase day, R <= 30), "
                        "core_loyal (R,F,M >= 4), potential_loyal (R >= 3), periodic (F >= 4), at_risk (R = 2), "
                        "churned",
    "segments.tier": "expert = purchase days to date >= 4 and distinct category_l1 >= 3; advanced = >= 2 "
                     "purchase days or >= 2 categories; novice",
    "segments.segment_outcomes": "per as-of date and group: customers; repurchased_30d = a purchase day in "
                                 "d+1..d+30 (only when d+30 <= data end); retained_90d likewise d+1..d+90; tiers: "
                                 "upgraded_next_month = a higher tier at the next month end (d a month end whose "
                                 "next month has ended)",
    "segments.tier_transitions": "per month ended by the data end: (tier at the previous month end, 'none' without "
                                 "a purchase day by then) -> tier at the month end, customers",
    "segments.winback": "churn-warned customers on each as-of date; touched = a marketing touch sent (business "
                        "date) in d+1..d+30 to any account; reactivated_N = a purchase day in d+1..d+N (null until "
                        "d+N <= data end); touches_30d; coupon orders and their discount in d+1..d+30",
    "segments.category_repeat": "customers with a second purchase day: same category = the second purchase day "
                                "holds a category_l1 of the first; per first-day category and 'all'",
    "segments.layers": "per customer with a valid order by the data end: promotion-sensitive = >= 2 valid "
                       "orders, all with discount_amount > 0; over valid lines of products with a category: "
                       "price-sensitive = mean(list_price / category median list_price) <= 0.8, brand-loyal = >= 3 "
                       "branded lines and one brand >= 80% of them, necessity = >= 50% of lines in fresh_food/home; "
                       "rhythm = single (1 purchase day), compact (median gap <= 14), cyclical (>= 3 days, "
                       "population std of gaps <= 0.5 x mean), irregular; profile = city and age band (data end "
                       "year - birth_year: under_25, 25_34, 35_44, 45_plus) of the customer's smallest user_id",
    "segments.repurchase_due": "per customer and category: interval = own mean gap ((last-first)/(days-1)) with "
                               ">= 2 category days, else the category's median gap over all customers' consecutive "
                               "category days; due = last + round(interval); due now = due in end-14..end+7",
}


def _month_end(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1) - timedelta(days=1)


def _scores(values: dict[str, float], descending: bool) -> dict[str, int]:
    """ntile(5) from worst to best; equal values take the lowest score any of them got."""
    order = sorted(values, key=lambda c: (-values[c] if descending else values[c], c))
    n = len(order)
    q, r = divmod(n, 5)
    score, pos = {}, 0
    for bucket in range(5):
        size = q + (1 if bucket < r else 0)
        for c in order[pos:pos + size]:
            score[c] = bucket + 1
        pos += size
    lowest: dict[float, int] = {}
    for c in order:
        lowest.setdefault(values[c], score[c])
    return {c: lowest[values[c]] for c in order}


def _segment(days_total: int, r: int, rs: int, fs: int, ms: int) -> str:
    if days_total == 1 and r <= 30:
        return "new"
    if rs >= 4 and fs >= 4 and ms >= 4:
        return "core_loyal"
    if rs >= 3:
        return "potential_loyal"
    if fs >= 4:
        return "periodic"
    return "at_risk" if rs == 2 else "churned"


def segments_truth(tables, *, user_customer, valid, net, odate, amounts, purchase_days, active_dates,
                   login_dates, key_of, data_start: date, end_date: date, offset: int) -> dict:
    day_revenue: dict[tuple, int] = defaultdict(int)
    for oid, v in valid.items():
        day_revenue[(user_customer[v[1]], odate[oid])] += net[oid]
    products = tables["products"]
    sku_category = dict(zip(products["sku_id"].to_list(), products["category_l1"].to_list()))
    items = tables["order_items"]
    category_days: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for oid, sku in zip(items["order_id"].to_list(), items["sku_id"].to_list()):
        cat = sku_category.get(sku)
        if oid in valid and cat is not None and odate[oid] <= end_date:
            category_days[user_customer[valid[oid][1]]][cat].add(odate[oid])

    as_of = sorted({_month_end(date(y, m, 1)) for y in range(data_start.year, end_date.year + 1)
                    for m in range(1, 13) if data_start.replace(day=1) <= date(y, m, 1) <= end_date}
                   | {end_date})
    as_of = [d for d in as_of if d <= end_date]
    groups: dict[date, dict[str, tuple]] = {}
    for d in as_of:
        rec, freq, mon, total = {}, {}, {}, {}
        for c, ds in purchase_days.items():
            seen = [x for x in ds if x <= d]
            if not seen:
                continue
            window = [x for x in seen if (d - x).days < 365]
            rec[c], freq[c], total[c] = (d - max(seen)).days, len(window), len(seen)
            mon[c] = sum(day_revenue[(c, x)] for x in window)
        rs, fs, ms = _scores(rec, True), _scores(freq, False), _scores(mon, False)
        rows = {}
        for c in rec:
            cats = sum(1 for days in category_days[c].values() if min(days) <= d)
            tier = "expert" if total[c] >= 4 and cats >= 3 else "advanced" if total[c] >= 2 or cats >= 2 \
                else "novice"
            rows[c] = (_segment(total[c], rec[c], rs[c], fs[c], ms[c]), tier)
        groups[d] = rows

    def bought(c, d, n):
        return any(d < x <= d + timedelta(days=n) for x in purchase_days[c])

    month_ends = [d for d in as_of if d == _month_end(d)]
    transitions: dict[tuple, int] = defaultdict(int)
    for d in month_ends:
        prev = groups.get(d.replace(day=1) - timedelta(days=1), {})
        for c, (_, tier) in groups[d].items():
            transitions[(d.strftime("%Y-%m"), prev[c][1] if c in prev else "none", tier)] += 1

    outcomes = []
    for d in as_of:
        nxt = _month_end(d + timedelta(days=1))
        upgrade_known = d == _month_end(d) and nxt <= end_date
        by_group: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, 0])
        for c, (seg, tier) in groups[d].items():
            up = upgrade_known and TIER_RANK[groups[nxt][c][1]] > TIER_RANK[tier]
            for key in (("segment", seg), ("lifecycle_tier", tier)):
                acc = by_group[key]
                acc[0] += 1
                acc[1] += bought(c, d, 30)
                acc[2] += bought(c, d, 90)
                acc[3] += up
        for (gtype, gval), (n, r30, r90, up) in sorted(by_group.items()):
            outcomes.append({
                "as_of_date": d.isoformat(), "group_type": gtype, "group_value": gval, "customers": n,
                "repurchased_30d": r30 if d + timedelta(days=30) <= end_date else None,
                "retained_90d": r90 if d + timedelta(days=90) <= end_date else None,
                "upgraded_next_month": up if gtype == "lifecycle_tier" and upgrade_known else None})

    return {
        "definitions": DEFINITIONS,
        "segment_outcomes": outcomes,
        "tier_transitions": [{"month": m, "from_tier": f, "to_tier": t, "customers": n}
                             for (m, f, t), n in sorted(transitions.items())],
        "winback": _winback(tables, user_customer, valid, odate, amounts, purchase_days, active_dates,
                            login_dates, key_of, as_of, end_date, offset, bought),
        "category_repeat": _category_repeat(purchase_days, category_days, end_date),
        "repurchase_due": _due(category_days, key_of, end_date),
        "layers": _layers(tables, user_customer, valid, odate, amounts, purchase_days, key_of, end_date),
    }


def _winback(tables, user_customer, valid, odate, amounts, purchase_days, active_dates, login_dates, key_of,
             as_of, end_date, offset, bought) -> list[dict]:
    touches = tables["marketing_touches"]
    touch_rows: dict[str, tuple] = {}
    for tid, uid, sent in zip(touches["touch_id"].to_list(), touches["user_id"].to_list(),
                              touches["sent_at"].to_list()):
        touch_rows[tid] = (user_customer.get(uid), _bdate(sent, offset))
    touch_days: dict[str, list] = defaultdict(list)
    for c, d in touch_rows.values():
        if c is not None:
            touch_days[c].append(d)
    coupon_orders: dict[str, list] = defaultdict(list)
    for oid, v in valid.items():
        disc, _pay, coupon, _camp = amounts[oid][1]
        if coupon is not None:
            coupon_orders[user_customer[v[1]]].append((odate[oid], disc))
    customer_of_key = {k: c for c, k in key_of.items()}
    out = []
    for d in as_of:
        warned = [customer_of_key[k] for k in _churn_warning(purchase_days, active_dates, login_dates, key_of,
                                                             d)["warned"]]
        acc: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0])
        for c in warned:
            t = sum(1 for x in touch_days[c] if d < x <= d + timedelta(days=30))
            coupons = [disc for x, disc in coupon_orders[c] if d < x <= d + timedelta(days=30)]
            for status in ("touched" if t else "not_touched", "all"):
                a = acc[status]
                a[0] += 1
                a[1] += bought(c, d, 30)
                a[2] += bought(c, d, 60)
                a[3] += bought(c, d, 90)
                a[4] += t
                a[5] += len(coupons)
                a[6] += sum(coupons)
        for status, a in sorted(acc.items()):
            row = {"as_of_date": d.isoformat(), "touch_status": status, "warned_customers": a[0],
                   "touches_30d": a[4], "coupon_orders_30d": a[5], "coupon_discount_30d": a[6] / 100}
            for i, n in enumerate((30, 60, 90), start=1):
                row[f"reactivated_{n}d"] = a[i] if d + timedelta(days=n) <= end_date else None
            out.append(row)
    return out


def _category_repeat(purchase_days, category_days, end_date) -> dict:
    acc: dict[str, list] = defaultdict(lambda: [0, 0])
    for c, ds in purchase_days.items():
        ds = sorted(x for x in ds if x <= end_date)
        if len(ds) < 2:
            continue
        first = {cat for cat, days in category_days[c].items() if ds[0] in days}
        second = {cat for cat, days in category_days[c].items() if ds[1] in days}
        if not first:
            continue
        for cat in first:
            acc[cat][0] += 1
            acc[cat][1] += cat in second
        acc["all"][0] += 1
        acc["all"][1] += bool(first & second)
    return {cat: {"repeat_buyers": n, "same_category_buyers": s, "same_category_share": s / n}
            for cat, (n, s) in sorted(acc.items())}


def _median(xs: list[int]) -> float:
    xs = sorted(xs)
    mid = len(xs) // 2
    return float(xs[mid]) if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def _due(category_days, key_of, end_date) -> dict:
    gaps: dict[str, list] = defaultdict(list)
    for cats in category_days.values():
        for cat, days in cats.items():
            ds = sorted(days)
            gaps[cat] += [(b - a).days for a, b in zip(ds, ds[1:])]
    category_median = {cat: _median(g) for cat, g in gaps.items() if g}
    due_now, rows = [], 0
    for c, cats in category_days.items():
        for cat, days in cats.items():
            if len(days) >= 2:
                interval = (max(days) - min(days)).days / (len(days) - 1)
            elif cat in category_median:
                interval = category_median[cat]
            else:
                continue
            rows += 1
            due = max(days) + timedelta(days=_round_half_away(interval))
            if end_date - timedelta(days=14) <= due <= end_date + timedelta(days=7):
                due_now.append([key_of[c], cat, due.isoformat()])
    return {"rows": rows, "due_now": len(due_now), "due_now_rows": sorted(due_now)}


def _round_half_away(x: float) -> int:
    """SQL round(x, 0) on a positive double: halves go up (Python's round goes to even)."""
    return int(x + 0.5)


def _layers(tables, user_customer, valid, odate, amounts, purchase_days, key_of, end_date) -> dict:
    products = tables["products"]
    product = {}
    for sku, brand, cat, price in zip(products["sku_id"].to_list(), products["brand"].to_list(),
                                      products["category_l1"].to_list(), products["list_price"].to_list()):
        product[sku] = (brand, cat, price)
    prices: dict[str, list] = defaultdict(list)
    for _brand, cat, price in product.values():
        if cat is not None:
            prices[cat].append(price)
    median_price = {cat: _median(ps) for cat, ps in prices.items()}
    orders: dict[str, list] = defaultdict(list)
    for oid, v in valid.items():
        if odate[oid] <= end_date:
            orders[user_customer[v[1]]].append(amounts[oid][1][0] > 0)
    lines: dict[str, list] = defaultdict(list)
    items = tables["order_items"]
    for oid, sku in zip(items["order_id"].to_list(), items["sku_id"].to_list()):
        if oid in valid and odate[oid] <= end_date and sku in product and product[sku][1] is not None:
            brand, cat, price = product[sku]
            lines[user_customer[valid[oid][1]]].append((brand, cat, price / median_price[cat]))
    users = tables["users"]
    profile_of: dict[str, tuple] = {}
    for uid, city, birth, day in zip(users["user_id"].to_list(), users["city"].to_list(),
                                     users["birth_year"].to_list(), users["_day"].to_list()):
        if uid not in profile_of or day >= profile_of[uid][0]:
            profile_of[uid] = (day, city, birth)
    out = {"customers": 0, "promotion_sensitive": 0, "price_sensitive": 0, "brand_loyal": 0, "necessity_buyer": 0}
    rhythm: dict[str, int] = defaultdict(int)
    profile: dict[str, int] = defaultdict(int)
    for c, discounted in orders.items():
        out["customers"] += 1
        out["promotion_sensitive"] += len(discounted) >= 2 and all(discounted)
        ls = lines.get(c, [])
        if ls:
            out["price_sensitive"] += sum(x[2] for x in ls) / len(ls) <= 0.8
            out["necessity_buyer"] += sum(1 for x in ls if x[1] in ("fresh_food", "home")) >= 0.5 * len(ls)
        brands = [x[0] for x in ls if x[0] is not None]
        if len(brands) >= 3:
            out["brand_loyal"] += max(brands.count(b) for b in set(brands)) >= 0.8 * len(brands)
        days = sorted(d for d in purchase_days[c] if d <= end_date)
        gaps = [(b - a).days for a, b in zip(days, days[1:])]
        if not gaps:
            kind = "single"
        elif _median(gaps) <= 14:
            kind = "compact"
        else:
            mean = sum(gaps) / len(gaps)
            std = (sum((g - mean) ** 2 for g in gaps) / len(gaps)) ** 0.5
            kind = "cyclical" if len(days) >= 3 and std <= 0.5 * mean else "irregular"
        rhythm[kind] += 1
        _, city, birth = profile_of.get(key_of[c], (None, None, None))
        age = end_date.year - birth if birth is not None else None
        band = "unknown" if age is None else "under_25" if age < 25 else "25_34" if age < 35 else "35_44" \
            if age < 45 else "45_plus"
        profile[f"{city}|{band}"] += 1
    return {**out, "rhythm": dict(sorted(rhythm.items())), "profile": dict(sorted(profile.items()))}
