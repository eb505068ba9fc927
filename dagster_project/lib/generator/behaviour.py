"""The daily simulation: each day, which persons buy and which users visit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from . import incidents as inc
from .model import CAT_RATE_MULT, EXPERIMENT_ID, PARAMS, TRACKED, Clock


@dataclass
class Behaviour:
    """Who buys (buy_p persons on buy_d days) and who visits (vis_u users on vis_d days), and the
    checkout experiment's assignment that the purchase rates depend on."""

    exp_day: object
    variant_treat: object
    assigned_day: object
    alive_at_assign: object
    day_mult: object
    base_rate: object
    buy_p: object
    buy_d: object
    vis_u: object
    vis_d: object


def simulate_days(rng, clock: Clock, people, plan: dict, promo_mult, weekend, boost) -> Behaviour:
    days, P, U = clock.days, len(people.p_reg_day), people.U
    p_reg_day, p_ch, user_ids, lam, pdrop = people.p_reg_day, people.p_ch, people.user_ids, people.lam, people.pdrop
    fav, engage, u_person, u_primary = people.fav, people.engage, people.u_person, people.u_primary
    u_track, u_anonweb, u_reg_day = people.u_track, people.u_anonweb, people.u_reg_day
    exp_day = 60 if days >= 120 else max(1, days // 3)
    eligible = TRACKED[p_ch]
    p_user_ids = user_ids[:P]
    variant_treat = np.array([hashlib.sha256(f"{EXPERIMENT_ID}:{u}".encode()).digest()[0] % 2 == 1
                              for u in p_user_ids])
    assigned_day = np.full(P, -1)
    alive_at_assign = np.zeros(P, bool)
    day_mult = promo_mult * np.where(weekend, PARAMS["weekend_purchase_factor"], 1.0)
    visit_mult = np.minimum(promo_mult, 2.0) ** 0.5 * np.where(weekend, 1.1, 1.0)
    base_rate = lam * CAT_RATE_MULT[fav]
    alive = np.ones(P, bool)
    u_alive_src = u_person
    u_can_visit = u_track | u_anonweb
    u_engage = engage[u_person] * np.where(u_primary, 1.0, 0.5) * np.where(u_anonweb, 0.3, 1.0)
    # planted retention dip: the dip's new users seldom come back on their first day after registering
    u_day1_factor = np.ones(U)
    if plan["dip"] is not None:
        dip_cohort = (u_reg_day >= plan["dip"]) & (u_reg_day < plan["dip"] + inc.DIP_DAYS)
        u_day1_factor[dip_cohort] = inc.DIP_VISIT_FACTOR
    buy_p, buy_d, vis_u, vis_d = [], [], [], []
    exp_factor = PARAMS["experiment_factor"]
    for d in range(days):
        reg = p_reg_day <= d
        rate = base_rate * day_mult[d] * boost[d]
        rate = np.where(variant_treat & (assigned_day >= 0) & (assigned_day < d), rate * exp_factor, rate)
        buy = reg & alive & (rng.random(P) < -np.expm1(-rate))
        drop = buy & (rng.random(P) < pdrop)
        alive &= ~drop
        bi = np.nonzero(buy)[0]
        buy_p.append(bi); buy_d.append(np.full(len(bi), d))
        age = d - u_reg_day
        pv = u_engage * (0.3 + 0.7 * np.exp(-np.maximum(age, 0) / 5.0)) * visit_mult[d]
        pv = pv * np.where(alive[u_alive_src], 1.0, 0.4) * np.where(age == 1, u_day1_factor, 1.0)
        vis = u_can_visit & (age >= 1) & (rng.random(U) < pv)
        vi = np.nonzero(vis)[0]
        vis_u.append(vi); vis_d.append(np.full(len(vi), d))
        if d >= exp_day:
            new = eligible & (assigned_day < 0) & vis[:P]
            assigned_day[new] = d
            alive_at_assign[new] = alive[new]
    buy_p = np.concatenate(buy_p); buy_d = np.concatenate(buy_d)
    vis_u = np.concatenate(vis_u); vis_d = np.concatenate(vis_d)
    return Behaviour(
        exp_day=exp_day, variant_treat=variant_treat, assigned_day=assigned_day, alive_at_assign=alive_at_assign,
        day_mult=day_mult, base_rate=base_rate, buy_p=buy_p, buy_d=buy_d, vis_u=vis_u, vis_d=vis_d,
    )
