"""Membership events of the CRM (member_events): joining, level changes, points and benefits.

Drawn after the rest of the world from a stream of their own, so adding them changed no other row.
Consistent with users.member_level: a user of level L >= 1 joins at level 1, mostly within hours of
registering, and climbs to L (some overshoot to L + 1 and come back down); the last level event's
level is L. Planted:
points earned = whole yuan paid x MEMBER_PARAMS["points_per_yuan"] on each paid, never cancelled order
of the member's account placed after joining; each earning is redeemed whole with probability
"redeem_p" 1-30 days later; members use a benefit on a day with probability "benefit_p_per_day", times
"member_day_factor" on the member day (会员日, the 18th of each month).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .model import DAY

MEMBER_DAY = 18
MEMBER_PARAMS = {
    "member_day": MEMBER_DAY,
    "points_per_yuan": 1,
    "redeem_p": 0.4,
    "level_down_p": 0.15,
    "benefit_p_per_day": 0.01,
    "member_day_factor": 3.0,
}


def make_member_events(seed: int, clock, users: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    rng = np.random.Generator(np.random.PCG64([seed, 0x3E3B]))
    end = clock.end
    members = users.filter(pl.col("member_level") >= 1).select("user_id", "registered_at", "member_level")
    uid = np.array(members["user_id"].to_list(), dtype=object)
    reg = members["registered_at"].to_numpy()
    level = members["member_level"].to_numpy()
    n = len(uid)
    # most members join on signing up (注册即入会), a few later: a delay drawn exponentially with a
    # mean of 6 hours. member_level is the level at the window's end, so a join that would fall after
    # it is moved inside; at this delay few are (a 0-14-day delay clamped to the end piled ~750
    # joins onto the demo's last day, against ~110 a day)
    delay = 60 + rng.exponential(6 * 3600, n).astype(np.int64)
    join = np.minimum(reg + delay, np.maximum(end - 60, reg))
    rows_user, rows_ts, rows_type, rows_level, rows_points, rows_order = [], [], [], [], [], []

    def add(u, ts, kind, lv, pts=None, order=None):
        rows_user.append(u)
        rows_ts.append(int(ts))
        rows_type.append(kind)
        rows_level.append(lv)
        rows_points.append(pts)
        rows_order.append(order)

    down = rng.random(n) < MEMBER_PARAMS["level_down_p"]
    for i in range(n):
        add(uid[i], join[i], "join", 1)
        path = list(range(2, int(level[i]) + 1))
        if down[i] and level[i] < 5:
            path += [int(level[i]) + 1, int(level[i])]
        if not path or join[i] + 1 >= end:
            continue
        times = np.sort(rng.integers(int(join[i]) + 1, end, len(path)))
        for step, (lv, ts) in enumerate(zip(path, times)):
            came_down = step > 0 and lv < path[step - 1]
            add(uid[i], ts, "level_down" if came_down else "level_up", lv)

    joined = dict(zip(uid.tolist(), join.tolist()))
    current = orders.sort("_day").group_by("order_id", maintain_order=True).last()
    paid = current.filter(pl.col("paid_ts").is_not_null() & (pl.col("status") != "cancelled")
                          & pl.col("user_id").is_in(list(joined)))
    for u, oid, ts, pay in zip(paid["user_id"].to_list(), paid["order_id"].to_list(), paid["paid_ts"].to_list(),
                               paid["pay_amount"].to_list()):
        if ts < joined[u]:
            continue
        points = pay // 100 * MEMBER_PARAMS["points_per_yuan"]
        if points <= 0:
            continue
        add(u, ts, "points_earned", None, points, oid)
        if rng.random() < MEMBER_PARAMS["redeem_p"]:
            at = ts + int(rng.integers(DAY, 30 * DAY))
            if at < end:
                add(u, at, "points_redeemed", None, points)

    day_of_month = np.array([clock.date(d).day for d in range(clock.days)])
    p_day = MEMBER_PARAMS["benefit_p_per_day"] * np.where(day_of_month == MEMBER_DAY,
                                                          MEMBER_PARAMS["member_day_factor"], 1.0)
    uses = rng.random((n, clock.days)) < p_day
    for i, d in zip(*np.nonzero(uses)):
        ts = clock.t0 + int(d) * DAY + int(rng.integers(8 * 3600, 22 * 3600))
        if ts > join[i]:
            add(uid[i], ts, "benefit_used", None)

    df = pl.DataFrame({
        "user_id": rows_user, "event_ts": rows_ts, "type": rows_type, "level": rows_level,
        "points": rows_points, "order_id": rows_order,
    }, schema={"user_id": pl.Utf8, "event_ts": pl.Int64, "type": pl.Utf8, "level": pl.Int64,
               "points": pl.Int64, "order_id": pl.Utf8})
    df = df.filter(pl.col("event_ts") < end).sort("event_ts", "user_id", "type")
    df = df.with_columns(
        pl.format("ME{}", pl.int_range(1, df.height + 1).cast(pl.Utf8).str.zfill(8)).alias("event_id"),
        pl.Series("_day", clock.day_of(df["event_ts"].to_numpy()).astype(np.int64)),
    )
    return df.select("event_id", "user_id", "event_ts", "type", "level", "points", "order_id", "_day")
