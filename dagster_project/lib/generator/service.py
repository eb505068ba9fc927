"""Customer service: tickets, their first response, resolution and satisfaction."""

from __future__ import annotations

import numpy as np
import polars as pl

from .model import DAY, HOUR, PARAMS, TICKET_CATS, Clock, _idx_by_time


def make_tickets(rng, clock: Clock, people, o) -> pl.DataFrame:
    """Customer-service tickets: about orders (a late shipment or a return raises the odds) and
    without one, answered by the bot or a person, resolved or not, rated or not."""
    days, U, u_reg_ts, user_ids = clock.days, people.U, people.u_reg_ts, people.user_ids
    n, paid, ship, ri, ret_req, o_user, order_ids = o.n, o.paid, o.ship, o.ri, o.ret_req, o.o_user, o.order_ids
    delayed = (ship >= 0) & (ship - np.maximum(paid, 0) > 36 * HOUR)
    tp = np.full(n, PARAMS["cs_ticket_order_p"])
    tp = tp + np.where(delayed, 0.12, 0.0)
    tp[ri] += 0.45
    has_t = (paid >= 0) & (rng.random(n) < tp)
    ti = np.nonzero(has_t)[0]
    anchor = np.where(ret_req[ti] >= 0, ret_req[ti] - rng.integers(0, 3 * HOUR, len(ti)),
                      np.where(delayed[ti], paid[ti] + 30 * HOUR,
                               paid[ti] + rng.integers(HOUR, 3 * DAY, len(ti))))
    t_cat_o = np.where(ret_req[ti] >= 0, 1, np.where(delayed[ti], 0, rng.choice([0, 2, 3, 4, 5], size=len(ti))))
    # tickets without an order
    nn = max(1, len(ti) // 4)
    nu = rng.integers(0, U, nn)
    nt = np.maximum(u_reg_ts[nu] + HOUR, clock.t0 + rng.integers(0, days * DAY, nn))
    tk_user = np.concatenate([o_user[ti], nu])
    tk_order = np.concatenate([ti, np.full(nn, -1)])
    tk_created = np.concatenate([anchor, nt]).astype(np.int64)
    tk_cat = np.concatenate([t_cat_o, rng.choice([2, 3, 4, 5], size=nn)])
    T = len(tk_user)
    bot = rng.random(T) < PARAMS["bot_share"]
    fr = np.where(bot, rng.integers(2, 30, T),
                  (rng.exponential(PARAMS["human_first_response_mean_hours"] * HOUR, T)).astype(np.int64) + 60)
    tk_first = tk_created + fr
    resolved_p = np.where(bot, 0.65, 0.9)
    tk_res = np.where(rng.random(T) < resolved_p,
                      tk_first + np.where(bot, rng.integers(60, 900, T),
                                          rng.exponential(10 * HOUR, T).astype(np.int64) + 300), -1)
    csat = np.where(rng.random(T) < 0.4, -1, rng.choice([1, 2, 3, 4, 5], size=T, p=[0.05, 0.08, 0.17, 0.35, 0.35]))
    keep = tk_created < clock.end
    tk_first = np.where(tk_first >= clock.end, -1, tk_first)
    tk_res = np.where((tk_res >= clock.end) | (tk_first < 0), -1, tk_res)
    tk_last = np.maximum(tk_created, np.maximum(tk_first, tk_res))
    tk_rank = _idx_by_time(np.where(keep, tk_created, clock.end + 1))
    tk = pl.DataFrame({
        "ticket_id": [f"TK{100000001 + k}" for k in tk_rank],
        "user_id": user_ids[tk_user].tolist(),
        "order_id": pl.Series([order_ids[o] if o >= 0 else None for o in tk_order], dtype=pl.Utf8),
        "channel": np.where(bot, "bot", "human").tolist(),
        "category": [TICKET_CATS[c] for c in tk_cat],
        "created_at": tk_created,
        "first_response_at": pl.Series(tk_first.astype(np.int64)),
        "resolved_at": pl.Series(tk_res.astype(np.int64)),
        "csat": pl.Series(csat.astype(np.int64)),
        "_day": clock.day_of(tk_last).astype(np.int64),
        "_ts": tk_last.astype(np.int64),
        "_keep": keep,
    }).filter(pl.col("_keep")).drop("_keep").with_columns(
        *[pl.when(pl.col(c) < 0).then(None).otherwise(pl.col(c)).alias(c)
          for c in ("first_response_at", "resolved_at", "csat")]
    ).sort(["_day", "_ts", "ticket_id"]).drop("_ts")
    return tk
