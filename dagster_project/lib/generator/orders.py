"""Orders and what follows them: lines, prices, payment, shipping, delivery and returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .campaign_effects import restamp_campaign_orders
from .model import (
    AFFINITY,
    CARRIER_SPEED,
    CARRIER_W,
    CARRIERS,
    CATS,
    CHANNELS,
    DAY,
    FAV_CAT_W,
    FESTIVAL_CAMPAIGNS,
    HOUR,
    PARAMS,
    REGION_WH,
    REGIONS,
    RETURN_P,
    RETURN_REASON_W,
    RETURN_REASONS,
    SLOW_MOVER_CATEGORIES,
    SLOW_MOVER_WEIGHT,
    WAREHOUSES,
    Clock,
    _choice_cdf,
    _expand,
    _idx_by_time,
    _tod,
)


@dataclass
class Orders:
    """The order tables (orders, order_items, returns, shipments), the campaigns with their planted
    costs, and the per-order and per-line arrays tickets, events and inventory are drawn from."""

    orders: object
    order_items: object
    returns: object
    shipments: object
    campaigns: object
    n: object
    o_user: object
    o_ts: object
    o_day: object
    paid: object
    cancelled: object
    order_ids: object
    l_sku: object
    l_qty: object
    l_order: object
    first_line: object
    wh: object
    ship: object
    ret_req: object
    ri: object
    sku_ids: object
    aff_hit: object
    camp_big: object
    slow_skus: object


def make_orders(rng, clock: Clock, seed: int, people, behaviour, products, campaigns, active_camp, camp_kind,
                sku_cat, sku_list, sku_launch) -> Orders:
    """Orders from the simulated purchases: the ordering user, lines and prices (with the planted
    category affinity), payment, cancellation, shipping, delivery and returns, as one status row per
    order and business day."""
    days = clock.days
    buy_p, buy_d = behaviour.buy_p, behaviour.buy_d
    person_user2, u_reg_day, u_reg_ts, u_ch = people.person_user2, people.u_reg_day, people.u_reg_ts, people.u_ch
    fav, u_region, u_noregion, user_ids = people.fav, people.u_region, people.u_noregion, people.user_ids
    # same-day second orders
    extra = rng.random(len(buy_p)) < PARAMS["same_day_second_order_p"]
    o_person = np.concatenate([buy_p, buy_p[extra]])
    o_day = np.concatenate([buy_d, buy_d[extra]])
    n = len(o_person)
    # which user places the order
    u2 = person_user2[o_person]
    use2 = (u2 >= 0) & (o_day >= u_reg_day[np.maximum(u2, 0)]) & (rng.random(n) < 0.4)
    o_user = np.where(use2, u2, o_person)
    o_ts = clock.t0 + o_day * DAY + _tod(rng, n)
    ureg = u_reg_ts[o_user]
    late_fix = o_ts <= ureg + 300
    o_ts = np.where(late_fix, ureg + 300 + rng.integers(0, 3 * HOUR, n), o_ts)
    keep = o_ts < clock.end - 900
    o_person, o_day, o_user, o_ts = o_person[keep], o_day[keep], o_user[keep], o_ts[keep]
    o_day = clock.day_of(o_ts)
    o_rank = _idx_by_time(o_ts)
    order = np.argsort(o_rank)
    o_person, o_day, o_user, o_ts = o_person[order], o_day[order], o_user[order], o_ts[order]
    n = len(o_ts)
    order_ids = np.array([f"O{100000001 + i}" for i in range(n)], dtype=object)
    o_ch = u_ch[o_user]

    # ---------------- order lines
    n_lines = rng.choice([1, 2, 3, 4], size=n, p=[0.55, 0.25, 0.13, 0.07])
    l_order, l_pos = _expand(n_lines)
    L = len(l_order)
    l_cat = np.where(rng.random(L) < 0.75, fav[o_person[l_order]], rng.choice(len(CATS), size=L, p=FAV_CAT_W))
    l_sku = np.zeros(L, np.int64)
    slow_skus = []
    for ci in range(len(CATS)):
        pool = np.nonzero(sku_cat == ci)[0]
        w = 1.0 / (np.arange(len(pool)) + 3.0)
        if CATS[ci] in SLOW_MOVER_CATEGORIES:
            slow = np.nonzero(sku_launch[pool] == 0)[0][-1]
            w[slow] *= SLOW_MOVER_WEIGHT
            slow_skus.append(int(pool[slow]))
        cdf = np.cumsum(w) / w.sum()
        m = l_cat == ci
        l_sku[m] = pool[_choice_cdf(rng, cdf, int(m.sum()))]
        # not yet launched -> replace with a base SKU of the category
        bad = m & (sku_launch[l_sku] > o_day[l_order])
        base_pool = pool[sku_launch[pool] == 0]
        l_sku[bad] = base_pool[rng.integers(0, len(base_pool), int(bad.sum()))]
    qty_heavy = np.isin(l_cat, [0, 1, 5])
    l_qty = np.where(qty_heavy, rng.choice([1, 2, 3], size=L, p=[0.6, 0.28, 0.12]),
                     rng.choice([1, 2, 3], size=L, p=[0.8, 0.15, 0.05])).astype(np.int64)
    # planted category affinity, on its own RNG stream so every other draw stays as it was: an order
    # of >= 2 lines led by one category of the pair and lacking the other gets the other on its last
    # line (the first line, and with it the order's category for returns and tracking, is untouched)
    aff_rng = np.random.Generator(np.random.PCG64([seed, 0xAFF]))
    o_first = np.cumsum(n_lines) - n_lines
    aff_u = aff_rng.random(n)
    aff_hit = np.zeros(n, bool)
    for src, dst in (AFFINITY, AFFINITY[::-1]):
        a_src, a_dst = CATS.index(src), CATS.index(dst)
        has_dst = np.bincount(l_order, weights=(l_cat == a_dst).astype(float), minlength=n) > 0
        hit = (n_lines >= 2) & (l_cat[o_first] == a_src) & ~has_dst & (aff_u < PARAMS["affinity_p"])
        line = (np.cumsum(n_lines) - 1)[hit]
        dst_pool = np.nonzero((sku_cat == a_dst) & (sku_launch == 0))[0]
        l_cat[line] = a_dst
        l_sku[line] = dst_pool[aff_rng.integers(0, len(dst_pool), len(line))]
        aff_hit |= hit
    camp = active_camp[o_day]
    camp_major = (camp >= 0) & (camp_kind[np.maximum(camp, 0)] == 0)
    in_camp = (camp >= 0) & (rng.random(n) < np.where(camp_major, 0.75, 0.35))
    # planted campaign effects (own stream): which observed new customers a gift / 满减 campaign tagged
    in_camp = restamp_campaign_orders(seed, clock, campaigns, camp, in_camp, o_person, o_day)
    promo_price = in_camp[l_order] & (rng.random(L) < 0.5)
    l_unit = np.where(promo_price, (sku_list[l_sku] * 85 + 50) // 100, sku_list[l_sku]).astype(np.int64)
    l_gross = l_unit * l_qty
    l_disc = np.where(rng.random(L) < 0.15, np.rint(l_gross * rng.uniform(0.03, 0.12, L)), 0).astype(np.int64)
    items = np.rint(np.bincount(l_order, weights=l_gross, minlength=n)).astype(np.int64)
    ldisc = np.rint(np.bincount(l_order, weights=l_disc, minlength=n)).astype(np.int64)
    net0 = items - ldisc
    coupon = in_camp & (rng.random(n) < 0.6)
    tier = np.select([net0 >= 29900, net0 >= 19900, net0 >= 9900, net0 >= 2000], [4, 3, 2, 1], 0)
    coupon &= tier > 0
    c_disc = np.where(coupon, np.array([0, 500, 1500, 3000, 5000])[tier], 0).astype(np.int64)
    disc = ldisc + c_disc
    net = items - disc
    ship_fee = np.where((net >= 9900) | (o_ch == CHANNELS.index("offline")), 0,
                        rng.choice([600, 800, 1000], size=n)).astype(np.int64)
    pay = net + ship_fee
    coupon_id = np.array([f"CP{c + 1:03d}{t:02d}" if cp else None for c, t, cp in zip(camp, tier, coupon)],
                         dtype=object)
    campaign_id = np.array([f"C{c + 1:03d}" if ic else None for c, ic in zip(camp, in_camp)], dtype=object)

    # ---------------- order lifecycle
    NONE = -1
    cancelled = rng.random(n) < PARAMS["cancel_p"]
    paid = np.where(cancelled, NONE, o_ts + np.where(rng.random(n) < 0.9, rng.integers(10, 900, n),
                                                      rng.integers(900, 3600, n)))
    cancel_ts = np.where(cancelled, o_ts + rng.integers(300, 3600, n), NONE)
    # planted campaign ROI: a campaign's cost is the pay of its tagged valid orders / the tier's ROI
    # (no draws; a campaign without orders keeps its drawn cost)
    camp_pay = np.zeros(len(camp_kind))
    tagged = in_camp & (paid >= 0)
    np.add.at(camp_pay, camp[tagged], pay[tagged])
    camp_big = (camp_kind == 0) | np.isin(campaigns["name"].to_numpy(), FESTIVAL_CAMPAIGNS)
    roi_target = np.where(camp_big, PARAMS["campaign_roi_big"], PARAMS["campaign_roi_daily"])
    planted_cost = np.where(camp_pay > 0, np.rint(camp_pay / roi_target), campaigns["cost"].to_numpy())
    campaigns = campaigns.with_columns(pl.Series("cost", planted_cost.astype(np.int64)))
    paid_day = clock.day_of(np.maximum(paid, 0))
    wkend_paid = (clock.weekday[np.clip(paid_day, 0, days)] >= 5)
    delay = rng.gamma(2.0, 10 * HOUR, n)
    delay = np.where(wkend_paid, delay * PARAMS["weekend_shipping_factor"], np.minimum(delay, 60 * HOUR))
    ship = np.where(paid >= 0, paid + 1800 + delay.astype(np.int64), NONE)
    carrier = rng.choice(len(CARRIERS), size=n, p=CARRIER_W)
    o_region = u_region[o_user]
    o_noregion = u_noregion[o_user]
    wh = REGION_WH[o_region]
    tr = np.clip(rng.gamma(3.0, 20 * HOUR, n) * CARRIER_SPEED[carrier], 18 * HOUR, 110 * HOUR)
    deliv = np.where(ship >= 0, ship + tr.astype(np.int64), NONE)
    ship = np.where(ship >= clock.end, NONE, ship)
    deliv = np.where((ship < 0) | (deliv >= clock.end), NONE, deliv)
    # returns
    first_line = np.cumsum(n_lines) - n_lines
    o_cat = l_cat[first_line]
    has_ret = (deliv >= 0) & (rng.random(n) < RETURN_P[o_cat])
    ret_req = np.where(has_ret, deliv + (rng.uniform(0.3, 7.0, n) * DAY).astype(np.int64), NONE)
    has_ret &= ret_req < clock.end
    ri = np.nonzero(has_ret)[0]
    R = len(ri)
    r_req = ret_req[ri]
    r_rej = rng.random(R) < PARAMS["return_rejected_p"]
    r_rej_ts = np.where(r_rej, r_req + (rng.uniform(0.5, 2.0, R) * DAY).astype(np.int64), NONE)
    r_app = np.where(r_rej, NONE, r_req + (rng.uniform(0.2, 1.5, R) * DAY).astype(np.int64))
    cyc = rng.gamma(4.0, PARAMS["return_cycle_mean_days"] / 4.0, R) * DAY
    r_comp = np.where(r_rej, NONE, np.maximum(r_req + cyc.astype(np.int64), r_app + DAY // 2))
    r_rej_ts = np.where(r_rej_ts >= clock.end, NONE, r_rej_ts)
    r_app = np.where(r_app >= clock.end, NONE, r_app)
    r_comp = np.where((r_comp >= clock.end) | (r_app < 0), NONE, r_comp)
    r_whole = (n_lines[ri] == 1) | (rng.random(R) < 0.5)
    r_line = first_line[ri] + (rng.random(R) * n_lines[ri]).astype(np.int64)
    r_line = np.where(n_lines[ri] == 1, first_line[ri], r_line)
    r_amount = np.where(r_whole, pay[ri], np.minimum(l_gross[r_line] - l_disc[r_line], pay[ri]))
    r_sku = np.where(r_whole & (n_lines[ri] > 1), -1, l_sku[r_line])
    r_qty = np.where(r_whole & (n_lines[ri] > 1), -1, l_qty[r_line])
    r_cat = l_cat[r_line]
    r_reason = np.array([rng.choice(5, p=RETURN_REASON_W[c]) for c in r_cat], dtype=np.int64) if R else np.zeros(0, np.int64)
    refund = np.full(n, NONE)
    refund[ri] = np.where(r_whole & (r_comp >= 0), r_comp, NONE)

    # orders status rows: one row per (order, business day with a change), the day's last status
    st_codes = ("created", "paid", "shipped", "delivered", "cancelled", "refunded")
    ev_o = np.concatenate([np.arange(n)] * 6)
    ev_ts = np.concatenate([o_ts, paid, ship, deliv, cancel_ts, refund])
    ev_st = np.repeat(np.arange(6), n)
    ok = ev_ts >= 0
    ev_o, ev_ts, ev_st = ev_o[ok], ev_ts[ok], ev_st[ok]
    ev_day = clock.day_of(ev_ts)
    srt = np.lexsort((ev_st, ev_ts, ev_day, ev_o))
    ev_o, ev_ts, ev_st, ev_day = ev_o[srt], ev_ts[srt], ev_st[srt], ev_day[srt]
    last = np.ones(len(ev_o), bool)
    last[:-1] = (ev_o[1:] != ev_o[:-1]) | (ev_day[1:] != ev_day[:-1])
    so, sts, sst, sday = ev_o[last], ev_ts[last], ev_st[last], ev_day[last]
    paid_known = (paid[so] >= 0) & (paid[so] <= sts)
    orders = pl.DataFrame({
        "order_id": order_ids[so].tolist(),
        "user_id": user_ids[o_user[so]].tolist(),
        "channel": [CHANNELS[c] for c in o_ch[so]],
        "order_ts": o_ts[so].astype(np.int64),
        "paid_ts": pl.Series(np.where(paid_known, paid[so], -1).astype(np.int64)),
        "status": [st_codes[s] for s in sst],
        "items_amount": items[so],
        "discount_amount": disc[so],
        "shipping_fee": ship_fee[so],
        "pay_amount": pay[so],
        "coupon_id": pl.Series(coupon_id[so].tolist(), dtype=pl.Utf8),
        "campaign_id": pl.Series(campaign_id[so].tolist(), dtype=pl.Utf8),
        "province": pl.Series([None if o_noregion[i] else REGIONS[o_region[i]][0] for i in so], dtype=pl.Utf8),
        "city": pl.Series([None if o_noregion[i] else REGIONS[o_region[i]][1] for i in so], dtype=pl.Utf8),
        "_day": sday.astype(np.int64),
        "_ts": sts.astype(np.int64),
    }).with_columns(pl.when(pl.col("paid_ts") < 0).then(None).otherwise(pl.col("paid_ts")).alias("paid_ts"))
    orders = orders.sort(["_day", "_ts", "order_id"]).drop("_ts")

    order_items = pl.DataFrame({
        "order_id": order_ids[l_order].tolist(),
        "line_no": (l_pos + 1).astype(np.int64),
        "sku_id": np.array(products["sku_id"].to_list(), dtype=object)[l_sku].tolist(),
        "quantity": l_qty,
        "unit_price": l_unit,
        "discount_amount": l_disc,
        "_day": o_day[l_order].astype(np.int64),
    })

    # returns rows
    sku_ids = np.array(products["sku_id"].to_list(), dtype=object)
    r_ids = np.array([f"R{100000001 + i}" for i in range(R)], dtype=object)
    rs_codes = ("requested", "approved", "rejected", "completed")
    rev_r = np.concatenate([np.arange(R)] * 4)
    rev_ts = np.concatenate([r_req, r_app, r_rej_ts, r_comp])
    rev_st = np.repeat(np.arange(4), R)
    ok = rev_ts >= 0
    rev_r, rev_ts, rev_st = rev_r[ok], rev_ts[ok], rev_st[ok]
    rev_day = clock.day_of(rev_ts)
    srt = np.lexsort((rev_st, rev_ts, rev_day, rev_r))
    rev_r, rev_ts, rev_st, rev_day = rev_r[srt], rev_ts[srt], rev_st[srt], rev_day[srt]
    last = np.ones(len(rev_r), bool)
    last[:-1] = (rev_r[1:] != rev_r[:-1]) | (rev_day[1:] != rev_day[:-1])
    qr, qts, qst, qday = rev_r[last], rev_ts[last], rev_st[last], rev_day[last]
    app_known = (r_app[qr] >= 0) & (r_app[qr] <= qts)
    comp_known = (r_comp[qr] >= 0) & (r_comp[qr] <= qts)
    returns = pl.DataFrame({
        "return_id": r_ids[qr].tolist(),
        "order_id": order_ids[ri[qr]].tolist(),
        "sku_id": pl.Series([sku_ids[s] if s >= 0 else None for s in r_sku[qr]], dtype=pl.Utf8),
        "quantity": pl.Series(r_qty[qr].astype(np.int64)),
        "amount": r_amount[qr].astype(np.int64),
        "reason": [RETURN_REASONS[x] for x in r_reason[qr]],
        "requested_at": r_req[qr].astype(np.int64),
        "approved_at": pl.Series(np.where(app_known, r_app[qr], -1).astype(np.int64)),
        "completed_at": pl.Series(np.where(comp_known, r_comp[qr], -1).astype(np.int64)),
        "status": [rs_codes[s] for s in qst],
        "_day": qday.astype(np.int64),
        "_ts": qts.astype(np.int64),
    }).with_columns(*[pl.when(pl.col(c) < 0).then(None).otherwise(pl.col(c)).alias(c)
                      for c in ("quantity", "approved_at", "completed_at")])
    returns = returns.sort(["_day", "_ts", "return_id"]).drop("_ts")

    # shipments: a row on the ship day, again on the delivery day
    si = np.nonzero(ship >= 0)[0]
    s_rank = _idx_by_time(ship[si])
    ship_id = np.empty(n, dtype=object)
    ship_id[si] = [f"SH{100000001 + k}" for k in s_rank]
    s_day = clock.day_of(ship[si])
    d_day = np.where(deliv[si] >= 0, clock.day_of(np.maximum(deliv[si], 0)), -1)
    same = d_day == s_day
    a_idx = si
    a_deliv = np.where(same, deliv[si], -1)
    b_idx = si[(d_day >= 0) & ~same]
    sh_o = np.concatenate([a_idx, b_idx])
    sh_deliv = np.concatenate([a_deliv, deliv[b_idx]])
    sh_day = np.concatenate([s_day, clock.day_of(deliv[b_idx])])
    sh_ts = np.concatenate([ship[a_idx], deliv[b_idx]])
    shipments = pl.DataFrame({
        "shipment_id": ship_id[sh_o].tolist(),
        "order_id": order_ids[sh_o].tolist(),
        "carrier": [CARRIERS[c] for c in carrier[sh_o]],
        "warehouse_id": [WAREHOUSES[w] for w in wh[sh_o]],
        "shipped_at": ship[sh_o].astype(np.int64),
        "delivered_at": pl.Series(sh_deliv.astype(np.int64)),
        "province": pl.Series([None if o_noregion[i] else REGIONS[o_region[i]][0] for i in sh_o], dtype=pl.Utf8),
        "_day": sh_day.astype(np.int64),
        "_ts": sh_ts.astype(np.int64),
    }).with_columns(pl.when(pl.col("delivered_at") < 0).then(None).otherwise(pl.col("delivered_at"))
                    .alias("delivered_at")).sort(["_day", "_ts", "shipment_id"]).drop("_ts")

    return Orders(
        orders=orders, order_items=order_items, returns=returns, shipments=shipments, campaigns=campaigns, n=n,
        o_user=o_user, o_ts=o_ts, o_day=o_day, paid=paid, cancelled=cancelled, order_ids=order_ids, l_sku=l_sku,
        l_qty=l_qty, l_order=l_order, first_line=first_line, wh=wh, ship=ship, ret_req=ret_req, ri=ri,
        sku_ids=sku_ids, aff_hit=aff_hit, camp_big=camp_big, slow_skus=slow_skus,
    )
