"""Campaign touches (SMS, push, WeChat, e-mail) and the purchases their clicks bring."""

from __future__ import annotations

import numpy as np
import polars as pl

from .model import CLICK_P, DAY, HOUR, OPEN_P, PARAMS, TOUCH_CHANNELS, TOUCH_W, Clock, _idx_by_time


def make_touches(rng, clock: Clock, people, camp_kind, camp_s, camp_e):
    """Marketing touches of each campaign (sent, opened, clicked) and the purchase boost a click gives
    its person for three days (days x persons)."""
    days, P = clock.days, len(people.p_reg_day)
    u_reg_day, u_reg_ts, u_person, user_ids = people.u_reg_day, people.u_reg_ts, people.u_person, people.user_ids
    t_user, t_camp, t_sent, t_ch, t_open, t_click = [], [], [], [], [], []
    for ci in range(len(camp_s)):
        frac = 0.25 if camp_kind[ci] == 0 else 0.04
        sent_day = camp_s[ci]
        cand = np.nonzero(u_reg_day < sent_day)[0]
        if len(cand) == 0:
            continue
        pick = cand[rng.random(len(cand)) < frac]
        n = len(pick)
        lead = np.where(rng.random(n) < 0.5, -rng.integers(0, 36 * HOUR, n),
                        rng.integers(0, (camp_e[ci] - camp_s[ci] + 1) * DAY, n))
        sent = clock.t0 + sent_day * DAY + 10 * HOUR + lead
        sent = np.maximum(sent, u_reg_ts[pick] + HOUR)
        ch = rng.choice(4, size=n, p=TOUCH_W)
        opened = rng.random(n) < OPEN_P[ch]
        clicked = opened & (rng.random(n) < CLICK_P[ch])
        o_ts = np.where(opened, sent + rng.exponential(2 * HOUR, n).astype(np.int64) + 30, -1)
        c_ts = np.where(clicked, o_ts + rng.exponential(600, n).astype(np.int64) + 5, -1)
        t_user.append(pick); t_camp.append(np.full(n, ci)); t_sent.append(sent); t_ch.append(ch)
        t_open.append(o_ts); t_click.append(c_ts)
    t_user = np.concatenate(t_user) if t_user else np.zeros(0, np.int64)
    t_camp = np.concatenate(t_camp) if t_camp else np.zeros(0, np.int64)
    t_sent = np.concatenate(t_sent) if t_sent else np.zeros(0, np.int64)
    t_ch = np.concatenate(t_ch) if t_ch else np.zeros(0, np.int64)
    t_open = np.concatenate(t_open) if t_open else np.zeros(0, np.int64)
    t_click = np.concatenate(t_click) if t_click else np.zeros(0, np.int64)
    keep = (t_sent < clock.end) & (t_sent >= clock.t0)
    t_user, t_camp, t_sent, t_ch, t_open, t_click = (a[keep] for a in (t_user, t_camp, t_sent, t_ch, t_open, t_click))
    t_open = np.where(t_open >= clock.end, -1, t_open)
    t_click = np.where((t_click >= clock.end) | (t_open < 0), -1, t_click)
    boost = np.ones((days, P), np.float32)
    cl = t_click >= 0
    cd = clock.day_of(t_click[cl])
    cp = u_person[t_user[cl]]
    for k in range(3):
        ok = cd + k < days
        boost[cd[ok] + k, cp[ok]] = PARAMS["click_purchase_boost"]
    t_rank = _idx_by_time(t_sent)
    touches = pl.DataFrame({
        "touch_id": [f"T{i + 100000001}" for i in t_rank],
        "campaign_id": [f"C{c + 1:03d}" for c in t_camp],
        "user_id": user_ids[t_user].tolist(),
        "channel": [TOUCH_CHANNELS[c] for c in t_ch],
        "sent_at": t_sent.astype(np.int64),
        "opened_at": pl.Series(t_open.astype(np.int64)),
        "clicked_at": pl.Series(t_click.astype(np.int64)),
        "_day": clock.day_of(t_sent).astype(np.int64),
        "_ord": t_rank,
    }).with_columns(
        pl.when(pl.col("opened_at") < 0).then(None).otherwise(pl.col("opened_at")).alias("opened_at"),
        pl.when(pl.col("clicked_at") < 0).then(None).otherwise(pl.col("clicked_at")).alias("clicked_at"),
    ).sort("_ord").drop("_ord")
    return touches, boost
