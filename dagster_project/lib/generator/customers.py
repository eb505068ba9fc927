"""Persons and their users: registration, channel, phone, region, purchase and dropout rates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from .model import (
    CATS,
    CHANNEL_W,
    CHANNELS,
    DAY,
    FAV_CAT_W,
    PARAMS,
    REGION_P,
    REGIONS,
    TRACKED,
    Clock,
    _idx_by_time,
    _tod,
)


@dataclass
class People:
    """Persons (index < P) and their users (a person may have a second account, index >= P): who
    registers when and where, how often they buy (lam, pdrop), what they like (fav) and how engaged."""

    p_reg_day: object
    p_ch: object
    has_phone: object
    second: object
    lam: object
    pdrop: object
    fav: object
    engage: object
    u_person: object
    u_primary: object
    u_ch: object
    u_reg_ts: object
    U: object
    user_ids: object
    u_reg_day: object
    u_track: object
    u_platform: object
    u_anonweb: object
    person_user2: object
    u_region: object
    u_noregion: object
    users: object


def make_people(rng, clock: Clock, P: int, promo_mult, weekend) -> People:
    days = clock.days
    reg_w = (1.0 + 0.4 * np.arange(days) / max(days, 1)) * promo_mult ** 0.6 * np.where(weekend, 1.1, 1.0)
    p_reg_day = rng.choice(days, size=P, p=reg_w / reg_w.sum())
    tod = _tod(rng, P)
    tod = np.where(p_reg_day == 0, np.maximum(tod, 1800 + rng.integers(0, 600, P)), tod)
    p_reg_ts = clock.t0 + p_reg_day * DAY + tod
    p_ch = rng.choice(len(CHANNELS), size=P, p=CHANNEL_W)
    has_phone = rng.random(P) >= PARAMS["no_phone_p"]
    second = has_phone & (rng.random(P) < PARAMS["second_user_p"])
    reg2_day = p_reg_day + rng.integers(3, 91, P)
    second &= reg2_day < days
    ch2 = (p_ch + rng.integers(1, len(CHANNELS), P)) % len(CHANNELS)
    reg2_ts = clock.t0 + reg2_day * DAY + _tod(rng, P)
    region = rng.choice(len(REGIONS), size=P, p=REGION_P)
    is_ios = rng.random(P) < 0.45

    r, alpha = PARAMS["purchase_rate_gamma_r"], PARAMS["purchase_rate_gamma_alpha"]
    lam = rng.gamma(r, 1.0 / alpha, P)
    pdrop = rng.beta(PARAMS["dropout_beta_a"], PARAMS["dropout_beta_b"], P)
    fav = rng.choice(len(CATS), size=P, p=FAV_CAT_W)
    engage = rng.beta(1.5, 1.6, P)

    sec_idx = np.nonzero(second)[0]
    u_person = np.concatenate([np.arange(P), sec_idx])
    u_primary = np.concatenate([np.ones(P, bool), np.zeros(len(sec_idx), bool)])
    u_ch = np.concatenate([p_ch, ch2[sec_idx]])
    u_reg_ts = np.concatenate([p_reg_ts, reg2_ts[sec_idx]])
    U = len(u_person)
    u_rank = _idx_by_time(u_reg_ts)
    user_ids = np.array([f"U{i + 1:08d}" for i in u_rank], dtype=object)
    u_reg_day = clock.day_of(u_reg_ts)
    u_track = TRACKED[u_ch]
    u_platform = np.where(u_ch == 0, np.where(is_ios[u_person], 0, 1), np.where(u_ch == 1, 2, 3))
    u_anonweb = ~u_track & (rng.random(U) < 0.2)  # non-tracked users who browse the web anonymously
    person_user2 = np.full(P, -1)
    person_user2[sec_idx] = np.arange(P, U)

    # phone hashes: distinct fake numbers
    base = int(rng.integers(0, 10**8))
    phone_hash = [None] * P
    phone = [None] * P  # kept (hidden column _phone) for the platform exports, which show numbers
    for i in np.nonzero(has_phone)[0]:
        num = 13000000000 + (base + int(i) * 7919) % 10**9
        phone[i] = str(num)
        phone_hash[i] = hashlib.sha256(str(num).encode()).hexdigest()
    u_region = np.concatenate([region, rng.choice(len(REGIONS), size=len(sec_idx), p=REGION_P)])
    u_noregion = rng.random(U) < 0.04
    # one uniform per user, as rng.choice(6, p=...) draws, so every later draw of the world stays the same
    above = (lam > np.median(lam))[u_person]
    cdf_above = np.cumsum(PARAMS["member_level_p_above_median_rate"])
    cdf_below = np.cumsum(PARAMS["member_level_p_below_median_rate"])
    pick = rng.random(U)
    member = np.minimum(np.where(above, np.searchsorted(cdf_above, pick, side="right"),
                                 np.searchsorted(cdf_below, pick, side="right")), 5)
    birth = np.clip(np.rint(rng.triangular(1960, 1993, 2008, U)), 1960, 2008).astype(np.int64)
    users = pl.DataFrame({
        "user_id": user_ids.tolist(),
        "registered_at": u_reg_ts.astype(np.int64),
        "channel": [CHANNELS[c] for c in u_ch],
        "phone_hash": [phone_hash[p] for p in u_person],
        "province": [None if u_noregion[i] else REGIONS[u_region[i]][0] for i in range(U)],
        "city": [None if u_noregion[i] else REGIONS[u_region[i]][1] for i in range(U)],
        "member_level": member.astype(np.int64),
        "birth_year": birth,
        "_day": u_reg_day.astype(np.int64),
        "_ord": u_rank,
        "_person": u_person.astype(np.int64),
        "_phone": [phone[p] for p in u_person],
    }, schema_overrides={"phone_hash": pl.Utf8, "province": pl.Utf8, "city": pl.Utf8, "_phone": pl.Utf8})
    users = users.sort("_ord").drop("_ord")
    return People(
        p_reg_day=p_reg_day, p_ch=p_ch, has_phone=has_phone, second=second, lam=lam, pdrop=pdrop, fav=fav,
        engage=engage, u_person=u_person, u_primary=u_primary, u_ch=u_ch, u_reg_ts=u_reg_ts, U=U,
        user_ids=user_ids, u_reg_day=u_reg_day, u_track=u_track, u_platform=u_platform, u_anonweb=u_anonweb,
        person_user2=person_user2, u_region=u_region, u_noregion=u_noregion, users=users)
