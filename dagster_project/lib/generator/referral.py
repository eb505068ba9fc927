"""Referral / social fission (裂变): share codes on share events and on the landing events of the users they bring.

Real share tracking carries a code: the sharer's ``share`` event holds ``properties.share_code``, and the link
the friend opens tags the friend's first events (the first session, before and at registration) with
``properties.ref_share_code``. The generator's events name no recipient, so the link is planted afterwards,
on a stream of its own (``PCG64([seed, REFERRAL_STREAM])``) and only in the ``properties`` text of rows that
already exist: no row is added or dropped and no other column or table changes.

- every share event gets ``share_code`` = "SH" + the digits of its event_id;
- of the users registered in the window whose first event (their device's earliest) is also their person's
  first event and comes after a share by another person within ``lookback_days``, a share ``referred_share``
  is linked: their first event gets the ``ref_share_code`` of such a share, drawn uniformly among them;
- who is linked depends on whether they bought: ``referred_conversion`` of the linked users are drawn from
  those whose person's first valid order falls on business days 0..30 after that first event, the rest from
  those who did not, so referred users convert at a planted rate that organic new users do not share (an
  observed difference, made by choosing whom to link, not an effect of the share on anyone's behaviour);
- ``unknown_code_share`` of the eligible users who are not linked get a code that matches no share, which the
  definitions ignore.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .model import DAY

REFERRAL_STREAM = 0x5EF
REFERRAL_PARAMS = {
    "stream": "0x5EF",
    "share_code_property": "share_code",
    "ref_code_property": "ref_share_code",
    "referred_share": 0.12,
    "referred_conversion": 0.60,
    "conversion_days": 30,
    "lookback_days": 14,
    "unknown_code_share": 0.01,
}


def plant_referrals(seed: int, clock, events: pl.DataFrame, users: pl.DataFrame,
                    orders: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    rng = np.random.Generator(np.random.PCG64([seed, REFERRAL_STREAM]))
    p = REFERRAL_PARAMS
    # an empty table may come typed Null: the keys joined below are text
    ev = events.with_row_index("_i").with_columns(pl.col("anonymous_id", "user_id", "event_id").cast(pl.Utf8))
    person_of = users.select("user_id", "_person", "registered_at")
    # a device belongs to the user it logged in as (one device per user in the generator)
    device = (ev.filter(pl.col("user_id").is_not_null()).group_by("anonymous_id")
              .agg(pl.col("user_id").min().alias("_dev_user")))
    ev_u = (ev.select("_i", "event_id", "event_ts", "anonymous_id", "user_id", "session_id", "event_name")
            .join(device, on="anonymous_id", how="left")
            .with_columns(pl.coalesce("user_id", "_dev_user").alias("_user"))
            .join(person_of, left_on="_user", right_on="user_id", how="left"))
    shares = (ev_u.filter((pl.col("event_name") == "share") & pl.col("_person").is_not_null())
              .sort("event_ts", "event_id"))
    sh_ts = shares["event_ts"].to_numpy()
    sh_person = shares["_person"].to_numpy()
    sh_code = np.array(["SH" + e[1:] for e in shares["event_id"].to_list()], dtype=object)

    # each person's first event, and the users whose first event it is
    firsts = (ev_u.filter(pl.col("_person").is_not_null()).sort("event_ts", "event_id")
              .group_by("_person", maintain_order=True).first())
    firsts = firsts.filter(pl.col("registered_at") >= clock.t0).sort("_person")
    # the person's first valid order (current version of each order)
    cur = orders.sort("_day").group_by("order_id").last()
    valid = (cur.filter(pl.col("paid_ts").is_not_null() & (pl.col("status") != "cancelled"))
             .with_columns(pl.col("user_id").cast(pl.Utf8)))
    first_order = (valid.join(person_of.select("user_id", "_person"), on="user_id")
                   .group_by("_person").agg(pl.col("order_ts").min().alias("_first_order_ts")))
    firsts = firsts.join(first_order, on="_person", how="left").sort("_person")
    f_ts = firsts["event_ts"].to_numpy()
    f_person = firsts["_person"].to_numpy()
    fo = firsts["_first_order_ts"].fill_null(-1).to_numpy()
    gap = np.where(fo >= 0, clock.day_of(fo) - clock.day_of(f_ts), -1)
    bought = (gap >= 0) & (gap <= p["conversion_days"])
    hi = np.searchsorted(sh_ts, f_ts, side="left")  # shares strictly before the first event
    lo = np.searchsorted(sh_ts, f_ts - p["lookback_days"] * DAY, side="left")
    eligible = hi > lo
    n_ref = int(round(p["referred_share"] * eligible.sum()))
    buyers, others = np.nonzero(eligible & bought)[0], np.nonzero(eligible & ~bought)[0]
    k_buy = min(int(round(p["referred_conversion"] * n_ref)), len(buyers))
    k_other = min(n_ref - k_buy, len(others))
    chosen = np.sort(np.concatenate([rng.choice(buyers, k_buy, replace=False),
                                     rng.choice(others, k_other, replace=False)])).astype(np.int64)
    # a share of another person in the lookback window, uniformly; a few redraws avoid self-referral
    pick = np.full(len(chosen), -1)
    for _ in range(5):
        todo = pick < 0
        j = lo[chosen] + (rng.random(len(chosen)) * (hi[chosen] - lo[chosen])).astype(np.int64)
        ok = todo & (sh_person[np.minimum(j, len(sh_ts) - 1)] != f_person[chosen])
        pick = np.where(ok, j, pick)
    linked = pick >= 0
    chosen, pick = chosen[linked], pick[linked]
    rest = np.setdiff1d(np.nonzero(eligible)[0], chosen)
    unknown = np.sort(rng.choice(rest, min(int(round(p["unknown_code_share"] * eligible.sum())), len(rest)),
                                 replace=False))

    f_row = firsts["_i"].to_numpy()
    ref_rows = np.concatenate([f_row[chosen], f_row[unknown]])
    ref_codes = np.concatenate([sh_code[pick], np.array(["SH0"] * len(unknown), dtype=object)])
    share_rows = ev.filter(pl.col("event_name") == "share")
    codes = pl.DataFrame({"_i": pl.Series(ref_rows, dtype=pl.UInt32), "_ref": ref_codes.tolist()},
                         schema={"_i": pl.UInt32, "_ref": pl.Utf8})
    sc = pl.DataFrame({"_i": share_rows["_i"],
                       "_sc": ["SH" + e[1:] for e in share_rows["event_id"].to_list()]},
                      schema={"_i": pl.UInt32, "_sc": pl.Utf8})
    key = p["ref_code_property"]
    skey = p["share_code_property"]
    out = (ev.join(codes, on="_i", how="left").join(sc, on="_i", how="left").sort("_i")
           .with_columns(
               pl.when(pl.col("_sc").is_not_null())
               .then(pl.when(pl.col("properties").is_null())
                     .then(pl.lit(f'{{"{skey}":"') + pl.col("_sc") + pl.lit('"}'))
                     .otherwise(pl.lit(f'{{"{skey}":"') + pl.col("_sc") + pl.lit('",')
                                + pl.col("properties").str.slice(1)))
               .when(pl.col("_ref").is_not_null())
               .then(pl.when(pl.col("properties").is_null())
                     .then(pl.lit(f'{{"{key}":"') + pl.col("_ref") + pl.lit('"}'))
                     .otherwise(pl.lit(f'{{"{key}":"') + pl.col("_ref") + pl.lit('",')
                                + pl.col("properties").str.slice(1)))
               .otherwise(pl.col("properties")).alias("properties"))
           .drop("_i", "_ref", "_sc"))
    planted = dict(p)
    planted.update({
        "eligible_new_users": int(eligible.sum()), "eligible_buyers": int((eligible & bought).sum()),
        "linked_users": int(len(chosen)), "linked_buyers": int(bought[chosen].sum()),
        "linked_conversion": float(bought[chosen].mean()) if len(chosen) else None,
        "eligible_others_conversion": float(bought[rest].mean()) if len(rest) else None,
        "unknown_code_users": int(len(unknown)), "share_events": int(share_rows.height),
    })
    return out.select(events.columns), planted
