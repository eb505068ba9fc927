"""Tracking events (sessions, funnels, the planted payment-failure spike) and experiment assignments."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from . import incidents as inc
from .model import (AA_EXPERIMENT_ID, CATS, DAY, EXPERIMENT_ID, HOUR_W, PARAMS, PLATFORMS, Clock, _expand, _idx_by_time,
                    _tod)

# Planted behaviour (docs/metrics.md "Behaviour"; truth_behaviour.py counts the result from the rows).
# A product view's source and a payment's method come from a stream of their own (seed + BEHAVIOUR_STREAM),
# so planting them changes no other row. Browse sessions' gaps between events are stretched per platform
# (PC users stay longer, mini-program users browse quickly; seeds 002) without new draws.
BEHAVIOUR_STREAM = 2024
BEHAVIOUR_PARAMS = {
    "view_source_weights": {"search": 0.40, "recommend": 0.35, "banner": 0.15, "live": 0.10},
    "pay_method_weights": {"wechat": 0.55, "alipay": 0.38, "unionpay": 0.07},
    "search_keyword_weights": {"维生素C": 0.22, "蛋白粉": 0.18, "瑜伽裤": 0.15, "保温杯": 0.12, "防晒霜": 0.11,
                               "燕麦": 0.09, "鱼油": 0.07, "益生菌": 0.06},
    "browse_gap_factor_by_platform": {"ios": 1.0, "android": 1.0, "mini_program": 0.7, "web": 1.6},
    "session_start_hour_weights": HOUR_W.tolist(),
    # The seeds' targets as plants (stream PLANT_STREAM; docs/metrics.md "Behaviour"): browse sessions
    # start in the evening (hour >= 18) often enough that 65% of all events fall there (C7); content_view
    # and live_view are added to purchasing or browsing sessions until sessions with them convert at 3%
    # (C15) and 25% (C16). Orders, registrations and the experiment's assignment sessions keep their times.
    "evening_event_share_target": 0.65,
    "evening_start_hour": 18,
    "touchpoint_conversion_targets": {"content_view": 0.03, "live_view": 0.25},
}
PLANT_STREAM = 0xE7E


def make_experiments(clock: Clock, people, behaviour, boost, exp_rows) -> tuple[pl.DataFrame, dict, int, int]:
    """The assignments table of the checkout experiment and its A/A twin (a user assigned in the
    tracking events; a second account of the same person is assigned on its own), the expected lift,
    the second accounts assigned, and how many of them landed in the other arm."""
    user_ids, u_person = people.user_ids, people.u_person
    variant_treat, assigned_day = behaviour.variant_treat, behaviour.assigned_day
    alive_at_assign = behaviour.alive_at_assign
    base_rate, day_mult = behaviour.base_rate, behaviour.day_mult
    ea_user, ea_ts, ea2_user, ea2_ts = exp_rows
    aa_treat = np.array([hashlib.sha256(f"{AA_EXPERIMENT_ID}:{u}".encode()).digest()[0] % 2 == 1
                         for u in user_ids[ea_user]], dtype=bool)
    acc_user = np.concatenate([ea_user, ea2_user])
    acc_ts = np.concatenate([ea_ts, ea2_ts])
    acc_treat = {exp_id: np.array([hashlib.sha256(f"{exp_id}:{u}".encode()).digest()[0] % 2 == 1
                                   for u in user_ids[acc_user]], dtype=bool)
                 for exp_id in (EXPERIMENT_ID, AA_EXPERIMENT_ID)}
    n_acc = len(acc_user)
    exp = pl.DataFrame({
        "experiment_id": [EXPERIMENT_ID] * n_acc + [AA_EXPERIMENT_ID] * n_acc,
        "user_id": user_ids[acc_user].tolist() * 2,
        "variant": (np.where(acc_treat[EXPERIMENT_ID], "treatment", "control").tolist()
                    + np.where(acc_treat[AA_EXPERIMENT_ID], "treatment", "control").tolist()),
        "assigned_at": np.concatenate([acc_ts, acc_ts]).astype(np.int64),
        "_day": np.concatenate([clock.day_of(acc_ts)] * 2).astype(np.int64),
    }).sort(["_day", "assigned_at", "user_id", "experiment_id"])
    second_arms = acc_treat[EXPERIMENT_ID][len(ea_user):] != variant_treat[u_person[ea2_user]]
    experiments_expected = _expected_experiment_lift(
        clock, ea_user, ea_ts, assigned_day, alive_at_assign, base_rate, day_mult, boost,
        {EXPERIMENT_ID: variant_treat[ea_user], AA_EXPERIMENT_ID: aa_treat})

    return exp, experiments_expected, len(ea2_user), int(second_arms.sum())


def _expected_experiment_lift(clock, ea_user, ea_ts, assigned_day, alive_at_assign, base_rate, day_mult, boost,
                              treated_by_experiment: dict) -> dict:
    """Expected 30-day conversion of the assigned users with and without the treatment, from the
    simulation's own rates (no draws): a user alive at assignment converts unless no valid order comes
    on any of the 30 days after it, P = 1 - exp(-(1 - cancel_p) * sum of daily rates). Dropping out only
    follows a purchase, so it cannot stop a first conversion. Approximate (the assignment day itself
    and the partial 30th day are left out); only users observed the full 30 days."""
    days = clock.days
    window_end = clock.end
    complete = ea_ts + 30 * DAY <= window_end
    p0, p1 = [], []
    keep = np.nonzero(complete)[0]
    for k in keep:
        i = ea_user[k]
        a = assigned_day[i]
        d = np.arange(a + 1, min(a + 31, days))
        r = float((base_rate[i] * day_mult[d] * boost[d, i]).sum()) * (1 - PARAMS["cancel_p"])
        alive = float(alive_at_assign[i])
        p0.append(alive * -np.expm1(-r))
        p1.append(alive * -np.expm1(-r * PARAMS["experiment_factor"]))
    p0, p1 = np.array(p0), np.array(p1)
    if len(keep) == 0:
        return {exp_id: {"users_complete": 0} for exp_id in treated_by_experiment}
    pop_c, pop_t = float(p0.mean()), float(p1.mean())
    out = {}
    for exp_id, treated in treated_by_experiment.items():
        t = np.asarray(treated)[keep]
        if exp_id == EXPERIMENT_ID:
            # population effect: everyone treated vs everyone not, on the same users
            rel, ab = pop_t / pop_c - 1, pop_t - pop_c
            arm_t = float(p1[t].mean()) if t.any() else None
            arm_c = float(p0[~t].mean()) if (~t).any() else None
        else:
            # an A/A split holds the same mix of the other experiment's arms on both sides: no effect
            rel, ab = 0.0, 0.0
            mixed = np.where(np.asarray(treated_by_experiment[EXPERIMENT_ID])[keep], p1, p0)
            arm_t = float(mixed[t].mean()) if t.any() else None
            arm_c = float(mixed[~t].mean()) if (~t).any() else None
        out[exp_id] = {"users_complete": int(len(keep)), "expected_rate_treatment_arm": arm_t,
                       "expected_rate_control_arm": arm_c, "expected_relative_lift": float(rel),
                       "expected_absolute_lift": float(ab)}
    return out


def _make_events(rng, clock, W, *, seed, users_arrays, orders_arrays, visits, assigned_day, sku_cat, sku_ids,
                 sku_launch, active_camp, spike_first):
    ua, oa = users_arrays, orders_arrays
    user_ids, u_person, u_primary, u_reg_ts = ua["user_ids"], ua["u_person"], ua["u_primary"], ua["u_reg_ts"]
    u_track, u_anonweb, u_platform, fav = ua["u_track"], ua["u_anonweb"], ua["u_platform"], ua["fav"]
    U = len(user_ids)
    EN = ("app_open", "page_view", "search", "product_view", "add_to_cart", "checkout_start",
          "payment_submit", "payment_success", "coupon_click", "content_view", "live_view", "share", "login")
    APP_OPEN, PAGE, SEARCH, PV, ATC, CO, SUB, SUCC, COUPON, CONTENT, LIVE, SHARE, LOGIN = range(13)
    ENTRY = np.array([PAGE, SEARCH, CONTENT, LIVE, COUPON, PAGE])
    ENTRY_P = np.array([0.45, 0.25, 0.1, 0.05, 0.05, 0.10])
    TRAIL = np.array([PAGE, CONTENT, SHARE, SEARCH])
    is_app = u_platform <= 1
    # anonymous ids: one device per user (tracked users and anonymous web browsers)
    anon_of_user = np.array([f"A{300000001 + i}" for i in range(U)], dtype=object)

    parts = []  # dicts of arrays: s_(session-level) and e_(event-level)

    def gaps(k):
        return (rng.exponential(35.0, k) + 3).astype(np.int64)

    # --- registration sessions (first session of tracked users: anonymous until login)
    ru = np.nonzero(u_track)[0]
    S = len(ru)
    k_anon = rng.integers(1, 4, S)
    k_after = rng.integers(0, 4, S)
    cnt = k_anon + 1 + k_after
    own, pos = _expand(cnt)
    code = np.where(pos < k_anon[own], rng.choice(ENTRY, size=len(own), p=ENTRY_P), PAGE)
    code = np.where((pos == 0) & is_app[ru[own]], APP_OPEN, code)
    code = np.where(pos == k_anon[own], LOGIN, code)
    after = pos > k_anon[own]
    code = np.where(after, np.where(rng.random(len(own)) < 0.5, PV, PAGE), code)
    g = gaps(len(own))
    g[pos == 0] = 0
    off = np.cumsum(g)
    off = off - np.repeat(off[np.cumsum(cnt) - cnt], cnt)
    login_off = off[np.cumsum(cnt) - cnt + k_anon]
    s_start = u_reg_ts[ru] - login_off
    ts = np.maximum(s_start[own] + off, clock.t0)
    ev_user = np.where(pos >= k_anon[own], ru[own], -1)
    parts.append(dict(kind=0, s_user=ru, s_start=s_start, own=own, pos=pos, code=code, ts=ts,
                      ev_user=ev_user, order=np.full(len(own), -1)))

    # --- browse sessions
    vu, vd = visits
    S = len(vu)
    v_start = clock.t0 + vd * DAY + _tod(rng, S)
    anon_only = ~u_track[vu]
    k_e = 1 + np.minimum(rng.poisson(1.1, S), 3)
    reach_pv = rng.random(S) < 0.72
    n_pv = np.where(reach_pv, 1 + np.minimum(rng.poisson(1.5, S), 5), 0)
    atc = reach_pv & (rng.random(S) < 0.33)
    co = atc & (rng.random(S) < 0.55)
    n_purchase_sessions = int(((oa["paid"] >= 0) | oa["cancelled"]).__and__(u_track[oa["o_user"]]).sum())
    target_sub = PARAMS["payment_submit_dropoff_share"] / (1 - PARAMS["payment_submit_dropoff_share"]) \
        * n_purchase_sessions - int((oa["cancelled"] & u_track[oa["o_user"]]).sum())
    q = min(1.0, max(target_sub, 0) / max(int(co.sum()), 1))
    u_sub = rng.random(S)
    sub = co & (u_sub < q)
    if spike_first is not None:
        atc, co, sub = _plant_payment_failures(clock, spike_first, u_platform, vu, vd, reach_pv, u_sub,
                                               atc, co, sub, oa)
    n_f = atc.astype(int) + co + sub
    k_t = rng.integers(0, 4, S)
    cnt = k_e + n_pv + n_f + k_t
    own, pos = _expand(cnt)
    E = len(own)
    ke, npv, nf = k_e[own], n_pv[own], n_f[own]
    step = pos - ke - npv
    code = np.select(
        [pos < ke, pos < ke + npv, step < nf],
        [rng.choice(ENTRY, size=E, p=ENTRY_P), np.full(E, PV),
         np.array([ATC, CO, SUB])[np.clip(step, 0, 2)]],
        TRAIL[rng.integers(0, len(TRAIL), E)])
    code = np.where((pos == 0) & ~anon_only[own] & is_app[vu[own]], APP_OPEN, code)
    gap_factor = np.array([BEHAVIOUR_PARAMS["browse_gap_factor_by_platform"][p] for p in PLATFORMS])
    g = (gaps(E) * gap_factor[u_platform[vu[own]]]).astype(np.int64)
    g[pos == 0] = 0
    off = np.cumsum(g)
    off = off - np.repeat(off[np.cumsum(cnt) - cnt], cnt)
    ts = v_start[own] + off
    # a few sessions log add_to_cart before the product_view preceding it
    swap_s = atc & (rng.random(S) < 0.03)
    atc_idx = (np.cumsum(cnt) - cnt + k_e + n_pv)[swap_s]
    t_a = ts[atc_idx].copy()
    ts[atc_idx] = ts[atc_idx - 1]
    ts[atc_idx - 1] = t_a
    ev_user = np.where(anon_only[own], -1, vu[own])
    parts.append(dict(kind=1, s_user=vu, s_start=v_start, own=own, pos=pos, code=code, ts=ts,
                      ev_user=ev_user, order=np.full(E, -1)))

    # experiment assignments: first visit session on the assigned day (primary users)
    P = len(assigned_day)
    a_day = np.where(vu < P, assigned_day[np.minimum(vu, P - 1)], -1)
    m = (vu < P) & (a_day >= 0) & (vd == a_day)
    ea_user = vu[m]
    ea_ts = v_start[m] + 1
    # a person's second (tracked) account is assigned too, on its first visit from the person's
    # assignment day on, by its own account id: a person with accounts in two arms, as happens when a
    # test randomises accounts (no draws: the visits are already made)
    person_day = assigned_day[u_person[vu]]
    m2 = (vu >= P) & u_track[vu] & (person_day >= 0) & (vd >= person_day)
    first = np.unique(vu[m2], return_index=True)[1]
    ea2_user = vu[m2][first]
    ea2_ts = v_start[m2][first] + 1
    # the sessions an assignment is timed by keep their start (the assignments change in no way)
    assignment_session = m.copy()
    assignment_session[np.nonzero(m2)[0][first]] = True

    # --- purchase sessions (tracked users' orders)
    o_user, o_ts, paid, cancelled = oa["o_user"], oa["o_ts"], oa["paid"], oa["cancelled"]
    po = np.nonzero(u_track[o_user] & ((paid >= 0) | cancelled))[0]
    S = len(po)
    k_e = 1 + np.minimum(rng.poisson(0.6, S), 2)
    n_pv = 1 + np.minimum(rng.poisson(1.0, S), 3)
    succ = (paid[po] >= 0) & (rng.random(S) >= PARAMS["payment_success_missing_p"])
    cnt = k_e + n_pv + 3 + succ
    own, pos = _expand(cnt)
    E = len(own)
    ke, npv = k_e[own], n_pv[own]
    step = pos - ke - npv
    code = np.select([pos < ke, pos < ke + npv], [rng.choice(ENTRY, size=E, p=ENTRY_P), np.full(E, PV)],
                     np.array([ATC, CO, SUB, SUCC])[np.clip(step, 0, 3)])
    code = np.where((pos == 0) & is_app[o_user[po][own]], APP_OPEN, code)
    g = gaps(E)
    g[pos == 0] = 0
    off = np.cumsum(g)
    off = off - np.repeat(off[np.cumsum(cnt) - cnt], cnt)
    co_off = off[np.cumsum(cnt) - cnt + k_e + n_pv + 1]
    p_start = o_ts[po] - rng.integers(5, 90, S) - co_off
    ts = p_start[own] + off
    oo = po[own]
    sub_ts = np.where(paid[oo] >= 0, paid[oo] - np.minimum(rng.integers(1, 20, E), paid[oo] - o_ts[oo]),
                      o_ts[oo] + rng.integers(5, 60, E))
    ts = np.where(step == 2, sub_ts, ts)
    ts = np.where(step == 3, paid[oo] + rng.integers(0, 301, E), ts)
    ts = np.maximum(ts, u_reg_ts[o_user[oo]])  # never before the user registered (login session)
    order_col = np.where(step >= 2, oo, -1)
    parts.append(dict(kind=2, s_user=o_user[po], s_start=p_start, own=own, pos=pos, code=code, ts=ts,
                      ev_user=o_user[oo], order=order_col))

    # --- assemble
    s_user = np.concatenate([p["s_user"] for p in parts])
    s_start = np.concatenate([p["s_start"] for p in parts])
    s_kind = np.concatenate([np.full(len(p["s_user"]), p["kind"]) for p in parts])
    s_base = np.cumsum([0] + [len(p["s_user"]) for p in parts])[:-1]
    own = np.concatenate([p["own"] + b for p, b in zip(parts, s_base)])
    pos = np.concatenate([p["pos"] for p in parts])
    code = np.concatenate([p["code"] for p in parts])
    ts = np.concatenate([p["ts"] for p in parts]).astype(np.int64)
    ev_user = np.concatenate([p["ev_user"] for p in parts])
    ev_order = np.concatenate([p["order"] for p in parts])
    s_rank = _idx_by_time(s_start, s_kind)
    srt = np.lexsort((pos, s_rank[own]))
    own, pos, code, ts, ev_user, ev_order = (a[srt] for a in (own, pos, code, ts, ev_user, ev_order))
    keep = (ts >= clock.t0) & (ts < clock.end)
    own, pos, code, ts, ev_user, ev_order = (a[keep] for a in (own, pos, code, ts, ev_user, ev_order))
    E = len(own)
    su = s_user[own]
    plat = u_platform[su]
    # sku on product views / carts: favourite category mostly; cart = previous product view
    n_sku = len(sku_cat)
    base_skus = np.nonzero(sku_launch == 0)[0]
    cat_pool = [base_skus[sku_cat[base_skus] == c] for c in range(len(CATS))]
    ev_cat = np.where(rng.random(E) < 0.7, fav[u_person[su]], rng.integers(0, len(CATS), E))
    ev_sku = np.full(E, -1)
    for c in range(len(CATS)):
        mm = ev_cat == c
        ev_sku[mm] = cat_pool[c][rng.integers(0, len(cat_pool[c]), int(mm.sum()))]
    ev_sku = np.where((code == PV) | (code == ATC) | (code == SHARE), ev_sku, -1)
    # the cart shows the product viewed just before; in purchase sessions that is the order's first sku
    s_order = np.concatenate([np.full(len(p["s_user"]), -1) if p["kind"] != 2 else po for p in parts])
    atc_i = np.nonzero(code == ATC)[0]
    atc_i = atc_i[(atc_i > 0)]
    atc_i = atc_i[(code[atc_i - 1] == PV) & (own[atc_i - 1] == own[atc_i])]
    pur = s_order[own[atc_i]] >= 0
    ev_sku[atc_i[pur]] = oa["first_sku"][s_order[own[atc_i[pur]]]]
    ev_sku[atc_i[pur] - 1] = ev_sku[atc_i[pur]]
    ev_sku[atc_i[~pur]] = ev_sku[atc_i[~pur] - 1]
    # order on payment events
    session_ids = np.array([f"S{1000000001 + k}" for k in range(len(s_user))], dtype=object)
    day = clock.day_of(ts)
    camp = np.where((code == COUPON) | (code == LIVE), active_camp[np.clip(day, 0, clock.days - 1)], -1)
    PAGES = np.array(["home", "home", "search", "pdp", "pdp", "checkout", "checkout", "pay_result", "activity",
                      "content", "live", "pdp", "login"], dtype=object)
    PV_PAGES = np.array(["home", "category", "activity", "member"], dtype=object)
    page = PAGES[code]
    page = np.where(code == PAGE, PV_PAGES[rng.integers(0, 4, E)], page)
    # properties (JSON text) for some event types
    own_rng = np.random.Generator(np.random.PCG64([seed, BEHAVIOUR_STREAM]))
    src_w, pay_w = BEHAVIOUR_PARAMS["view_source_weights"], BEHAVIOUR_PARAMS["pay_method_weights"]
    src = own_rng.choice(np.array(list(src_w), dtype=object), size=E, p=list(src_w.values()))
    pay = own_rng.choice(np.array(list(pay_w), dtype=object), size=E, p=list(pay_w.values()))
    kw_w = BEHAVIOUR_PARAMS["search_keyword_weights"]
    kw = own_rng.choice(np.array(list(kw_w), dtype=object), size=E, p=list(kw_w.values()))
    prop_kind = np.select([code == SEARCH, code == PV, code == SUB], [1, 2, 3], 0)
    rng.integers(0, 8, E)  # the keyword draw before planting: kept, so every later draw stays the same
    # late landing per session
    late = np.where(rng.random(len(s_user)) < PARAMS["late_event_session_p"], rng.integers(1, 4, len(s_user)), 0)
    fday = np.minimum(day + late[own], clock.days - 1)
    # The seeds' targets, planted after every draw of the main stream on events already in place, so that
    # nothing else moves (not even which sku or page an event draws): content and live-room views added to
    # chosen sessions (ids after the last one), then new start hours for the browse sessions.
    plant_rng = np.random.Generator(np.random.PCG64([seed, PLANT_STREAM]))
    add_own, add_code, add_ts, add_at = _plant_touchpoint_conversion(plant_rng, own, code, ts, SUCC,
                                                                      {"content_view": CONTENT, "live_view": LIVE})
    n_add = len(add_own)
    own, code, ts = np.concatenate([own, add_own]), np.concatenate([code, add_code]), np.concatenate([ts, add_ts])
    ev_user = np.concatenate([ev_user, ev_user[add_at]])
    ev_order, ev_sku, prop_kind = (np.concatenate([a, np.full(n_add, v, a.dtype)])
                                   for a, v in ((ev_order, -1), (ev_sku, -1), (prop_kind, 0)))
    page = np.concatenate([page, PAGES[add_code]])
    src, pay, kw = (np.concatenate([a, np.full(n_add, None, dtype=object)]) for a in (src, pay, kw))
    browse_first = int(s_base[1])
    movable = np.zeros(len(s_user), bool)
    movable[browse_first:browse_first + len(vu)] = ~assignment_session
    ts = _plant_evening_hours(plant_rng, clock, own, ts, s_start, movable=movable, browse_first=browse_first,
                              n_browse=len(vu))
    E = len(own)
    su = s_user[own]
    plat = u_platform[su]
    day = clock.day_of(ts)
    camp = np.where((code == COUPON) | (code == LIVE), active_camp[np.clip(day, 0, clock.days - 1)], -1)
    fday = np.minimum(day + late[own], clock.days - 1)
    anon = anon_of_user[su]
    evs = pl.DataFrame({
        "event_id": pl.int_range(1000000001, 1000000001 + E, eager=True).cast(pl.Utf8),
        "event_ts": ts,
        "anonymous_id": anon.tolist(),
        "_u": ev_user,
        "session_id": session_ids[s_rank[own]].tolist(),
        "_code": code,
        "_plat": plat,
        "_sku": ev_sku,
        "_order": ev_order,
        "page": page.tolist(),
        "_camp": camp,
        "_pk": prop_kind,
        "_day": fday.astype(np.int64),
        "_evday": day.astype(np.int64),
    })
    uid_s = pl.Series(user_ids.tolist(), dtype=pl.Utf8)
    evs = evs.with_columns(
        ("E" + pl.col("event_id")).alias("event_id"),
        pl.when(pl.col("_u") >= 0).then(pl.col("_u")).otherwise(None).alias("_u"),
        pl.when(pl.col("_sku") >= 0).then(pl.col("_sku")).otherwise(None).alias("_sku"),
        pl.when(pl.col("_order") >= 0).then(pl.col("_order")).otherwise(None).alias("_order"),
        pl.when(pl.col("_camp") >= 0).then(pl.col("_camp")).otherwise(None).alias("_camp"),
    )
    # gather with nulls
    evs = evs.with_columns(
        pl.Series("user_id", _gather_nullable(user_ids, evs["_u"])),
        pl.Series("event_name", np.array(EN, dtype=object)[code].tolist()),
        pl.Series("platform", np.array(PLATFORMS, dtype=object)[plat].tolist()),
        pl.Series("sku_id", _gather_nullable(sku_ids, evs["_sku"])),
        pl.Series("order_id", _gather_nullable(oa["order_ids"], evs["_order"])),
        pl.Series("campaign_id", _gather_nullable(np.array([f"C{i + 1:03d}" for i in range(int(active_camp.max(initial=-1)) + 1)], dtype=object), evs["_camp"])),
        pl.when(pl.col("_pk") == 1).then(pl.lit('{"keyword":"') + pl.Series(kw.tolist()) + pl.lit('"}'))
        .when(pl.col("_pk") == 2).then(pl.lit('{"source":"') + pl.Series(src.tolist()) + pl.lit('"}'))
        .when(pl.col("_pk") == 3).then(pl.lit('{"pay_method":"') + pl.Series(pay.tolist()) + pl.lit('"}'))
        .otherwise(None).alias("properties"),
    )
    evs = evs.select(["event_id", "event_ts", "anonymous_id", "user_id", "session_id", "event_name", "platform",
                      "sku_id", "order_id", "page", "campaign_id", "properties", "_day", "_evday"])
    evs = evs.sort(["_day", "_evday", "event_ts", "event_id"], maintain_order=True).drop("_evday")
    return evs, (ea_user, ea_ts, ea2_user, ea2_ts)


def _plant_evening_hours(rng, clock, own, ts, s_start, *, movable, browse_first, n_browse):
    """New start hours for the movable sessions (browse sessions but the experiment's assignment ones), so
    that the planted share of all events falls at or after the evening start hour of the business clock.
    The other events' hours are fixed: the share the movable ones need follows from them, and each browse
    session's hour is drawn from the base hour profile with its evening hours scaled to that share. A
    session keeps its day, its events their offsets from its start; one whose events would pass the
    window's end keeps its start. Sessions that run past an hour's end and sampling miss the share a
    little; a second pass on the same draws corrects the scale by the miss. Returns the new timestamps."""
    evening_from = BEHAVIOUR_PARAMS["evening_start_hour"]
    target = BEHAVIOUR_PARAMS["evening_event_share_target"]
    moves = movable[own]
    n_moving = max(int(moves.sum()), 1)
    fixed_evening = int((((ts + clock.offset) // 3600 % 24 >= evening_from) & ~moves).sum())
    evening = np.arange(24) >= evening_from
    u = rng.random(n_browse)  # one draw per browse session, moved or not
    second = rng.integers(0, 3600, n_browse)
    browse = slice(browse_first, browse_first + n_browse)
    start = s_start[browse]
    day_start = clock.t0 + clock.day_of(start) * DAY
    last = np.full(len(s_start), clock.t0, np.int64)
    np.maximum.at(last, own, ts)

    def shifted(need):
        need = min(max(need, 0.0), 1.0)
        p = np.where(evening, HOUR_W * need / HOUR_W[evening].sum(), HOUR_W * (1 - need) / HOUR_W[~evening].sum())
        hour = np.minimum(np.searchsorted(np.cumsum(p / p.sum()), u, side="right"), 23)
        shift = np.zeros(len(s_start), np.int64)
        shift[browse] = np.where(movable[browse], day_start + hour * 3600 + second - start, 0)
        shift[last + shift >= clock.end] = 0
        new_ts = ts + shift[own]
        return new_ts, float(((new_ts + clock.offset) // 3600 % 24 >= evening_from).mean())

    need = (target * len(ts) - fixed_evening) / n_moving
    new_ts, share = shifted(need)
    if len(ts):
        new_ts, share = shifted(need + (target - share) * len(ts) / n_moving)
    return new_ts


def _plant_touchpoint_conversion(rng, own, code, ts, succ_code, touch_codes: dict):
    """Events to add so that the sessions holding each touchpoint convert (hold a payment_success) at the
    planted rate: below it, the touchpoint is added to converting sessions without it; above it, to
    non-converting ones. Each added event lies between its session's first and second event (the first's
    user). Returns the sessions, codes, timestamps and the index of the event each new one follows."""
    n_s = int(own.max()) + 1 if len(own) else 0
    first_at = np.full(n_s, -1)
    idx = np.arange(len(own))
    starts = np.r_[True, own[1:] != own[:-1]] if len(own) else np.zeros(0, bool)
    first_at[own[starts]] = idx[starts]
    next_at = np.where(np.r_[starts[1:], True], idx, idx + 1)  # second event, or the first if alone
    has_session = first_at >= 0
    paying = np.zeros(n_s, bool)
    paying[own[code == succ_code]] = True
    targets = BEHAVIOUR_PARAMS["touchpoint_conversion_targets"]
    out_own, out_code = [], []
    for name, c in touch_codes.items():
        holds = np.zeros(n_s, bool)
        holds[own[code == c]] = True
        x, y, t = int(holds.sum()), int((holds & paying).sum()), targets[name]
        if x == 0:
            continue
        if y / x < t:
            k, cand = (t * x - y) / (1 - t), has_session & ~holds & paying
        else:
            k, cand = y / t - x, has_session & ~holds & ~paying
        cand = np.nonzero(cand)[0]
        k = min(int(round(k)), len(cand))
        pick = np.sort(rng.choice(cand, size=k, replace=False)) if k > 0 else np.zeros(0, np.int64)
        out_own.append(pick)
        out_code.append(np.full(k, c))
    if not out_own:
        return (np.zeros(0, np.int64),) * 4
    add_own = np.concatenate(out_own).astype(np.int64)
    add_code = np.concatenate(out_code).astype(code.dtype)
    a = first_at[add_own]
    b = next_at[a]
    add_ts = ts[a] + (rng.random(len(add_own)) * (ts[b] - ts[a] + 1)).astype(np.int64)
    return add_own, add_code, np.minimum(add_ts, ts[b]), a


def _plant_payment_failures(clock, spike_first, u_platform, vu, vd, reach_pv, u_sub, atc, co, sub, oa):
    """The payment-failure spike: on each of its days, enough browse sessions of the platform that saw
    a product go through checkout and submit a payment that fails to bring the platform's success
    rate after submit down to SPIKE_SUCCESS_RATE (failures = successes x (1 - rate) / rate)."""
    plat = PLATFORMS.index(inc.SPIKE_PLATFORM)
    o_user, o_ts, paid, cancelled = oa["o_user"], oa["o_ts"], oa["paid"], oa["cancelled"]
    o_plat = u_platform[o_user] == plat
    o_day = clock.day_of(o_ts)
    atc, co, sub = atc.copy(), co.copy(), sub.copy()
    for d in range(spike_first, spike_first + inc.SPIKE_DAYS):
        on_day = o_plat & (o_day == d)
        successes = int((on_day & (paid >= 0)).sum()) * (1 - PARAMS["payment_success_missing_p"])
        failed_orders = int((on_day & cancelled).sum())
        wanted = successes * (1 - inc.SPIKE_SUCCESS_RATE) / inc.SPIKE_SUCCESS_RATE - failed_orders
        cand = (u_platform[vu] == plat) & (vd == d) & reach_pv
        p = min(1.0, max(wanted, 0.0) / max(int(cand.sum()), 1))
        pick = cand & (u_sub < p)
        atc |= pick
        co |= pick
        sub = np.where(cand, pick, sub)
    return atc, co, sub


def _gather_nullable(values: np.ndarray, idx: pl.Series) -> list:
    arr = idx.fill_null(-1).to_numpy()
    out = np.full(len(arr), None, dtype=object)
    m = arr >= 0
    out[m] = values[arr[m]]
    return out.tolist()

