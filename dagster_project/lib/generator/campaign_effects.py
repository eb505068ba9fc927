"""Planted campaign and win-back effects (docs/metrics.md "Campaigns beyond ROI" and "Segments").

Both are drawn on their own random stream ``PCG64([seed, 0xCA3])``, so no draw of the main stream moves:

* ``restamp_campaign_orders`` (called in orders.py right after the main stream has drawn which orders a
  campaign tags, before prices, coupons and costs are computed from that choice): for the customers whose
  first purchase day falls on a planted campaign's days and who are observed 90 days, it re-chooses which of
  them have their first-day orders tagged, keeping the number tagged, conditional on what they do later (a
  purchase day in days 1..90, and in days 61..90 = long-term). The tagged orders then get the campaign's
  prices and coupons as any tagged order does, so price, discount, coupon, campaign cost and ROI stay
  coherent. The behaviour itself is not changed: who buys when is the main stream's; the plant chooses which
  buyers the campaign acquired (an observed difference, not a causal lift).
* ``make_winback_touches`` (called after the events exist): on each month end whose 30 days are observed,
  the customers the churn warning flags (the rule of docs/metrics.md, as truth_definitions._churn_warning)
  and not yet touched in days 1..30 get win-back touches of the next campaign starting in days 3..28, chosen
  conditional on whether they buy again in days 1..30, so that the touched reactivate at
  ``touched_reactivation_30d``. Opens and clicks are drawn at the channel rates every touch has. The touches
  are drawn from the finished orders and give no purchase boost: the difference is observed, chosen by the
  generator, not caused by the touch.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from .model import CLICK_P, DAY, HOUR, OPEN_P, TOUCH_CHANNELS, TOUCH_W, Clock

CAMPAIGN_EFFECTS_STREAM = 0xCA3
HORIZON = 90
LONG_TERM_FROM = 60

CAMPAIGN_EFFECT_PARAMS = {
    # share of a campaign's observed new customers (first purchase day on its days, 90 days observed) with
    # another purchase day in days 1..90, by campaign type: gift (赠品) keeps its buyers, 满减 buys one-off
    "repurchase_90d_by_type": {"gift": 0.80, "full_reduction": 0.50},
    # the seeds' "only 5% became long-term customers": a purchase day in days 61..90, of this campaign's
    # observed new customers
    "long_term_campaign": "618年中大促",
    "long_term_share": 0.05,
    # the calendar's 夏日清凉节 (July 1-10) is a gift campaign (was discount; the type is a label, no draw
    # depends on it), so a gift campaign with many new customers has 90 days of data
    "gift_campaigns_observed": ["520告白季", "夏日清凉节"],
}

WINBACK_PARAMS = {
    # of the churn-warned customers on a month end (30 days observed) touched in days 1..30, the share with a
    # purchase day in days 1..30
    "touched_reactivation_30d": 0.25,
    # win-back touches added, as a share of the warned customers not touched by a campaign in days 1..30
    "winback_touch_share": 0.10,
    "send_days": [3, 28],
}


def _stream(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([seed, CAMPAIGN_EFFECTS_STREAM]))


def restamp_campaign_orders(seed: int, clock: Clock, campaigns: pl.DataFrame, camp: np.ndarray,
                            in_camp: np.ndarray, o_person: np.ndarray, o_day: np.ndarray) -> np.ndarray:
    """in_camp with the first-day orders of planted campaigns' observed new customers re-chosen."""
    rng = _stream(seed)
    in_camp = in_camp.copy()
    if len(o_person) == 0:
        return in_camp
    P = int(o_person.max()) + 1
    first = np.full(P, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, o_person, o_day)
    d0 = first[o_person]
    delta = o_day - d0
    rep = np.bincount(o_person, weights=((delta > 0) & (delta <= HORIZON)), minlength=P) > 0
    lt = np.bincount(o_person, weights=((delta > LONG_TERM_FROM) & (delta <= HORIZON)), minlength=P) > 0
    observed = first + HORIZON <= clock.days - 1
    names, types = campaigns["name"].to_list(), campaigns["type"].to_list()
    rates = CAMPAIGN_EFFECT_PARAMS["repurchase_90d_by_type"]
    first_day_order = (delta == 0) & (camp >= 0)
    for ci, (name, ctype) in enumerate(zip(names, types)):
        if ctype not in rates:
            continue
        sel = first_day_order & (camp == ci) & observed[o_person]
        persons = np.unique(o_person[sel])
        if len(persons) == 0:
            continue
        tagged_before = np.zeros(P, bool)
        tagged_before[o_person[sel & in_camp]] = True
        total = int(tagged_before[persons].sum())
        cls = np.where(~rep[persons], 0, np.where(lt[persons], 2, 1))  # 0 one-off, 1 repurchased, 2 long-term
        pools = [rng.permutation(persons[cls == k]) for k in range(3)]
        k_rep = int(round(rates[ctype] * total))
        if name == CAMPAIGN_EFFECT_PARAMS["long_term_campaign"]:
            k_lt = int(round(CAMPAIGN_EFFECT_PARAMS["long_term_share"] * total))
            want = [total - k_rep, k_rep - k_lt, k_lt]
        else:  # repurchasers split between plain and long-term as they come
            n1, n2 = len(pools[1]), len(pools[2])
            k_lt = int(round(k_rep * n2 / (n1 + n2))) if n1 + n2 else 0
            want = [total - k_rep, k_rep - k_lt, k_lt]
        chosen = np.concatenate([pools[k][:max(0, min(want[k], len(pools[k])))] for k in range(3)])
        tag = np.zeros(P, bool)
        tag[chosen] = True
        in_camp[sel] = tag[o_person[sel]]
    return in_camp


def _bdate_days(ts: pl.Expr, clock: Clock) -> pl.Expr:
    return (ts - clock.t0) // DAY


def _warned(purchase: pl.DataFrame, active: pl.DataFrame, login: pl.DataFrame, d: int) -> pl.DataFrame:
    """Customers the churn warning flags on day index d (truth_definitions._churn_warning's rule)."""
    p = purchase.filter(pl.col("day") <= d).group_by("customer").agg(
        last=pl.col("day").max(),
        last90=(d - pl.col("day") < 90).sum(),
        prev90=((d - pl.col("day") >= 90) & (d - pl.col("day") < 180)).sum())
    a = active.filter(pl.col("day") <= d).select("customer").unique().with_columns(tracked=pl.lit(True))
    g = login.filter(pl.col("day") <= d).group_by("customer").agg(last_login=pl.col("day").max())
    p = p.join(a, on="customer", how="left").join(g, on="customer", how="left").with_columns(
        pl.col("tracked").fill_null(False))
    lapsed = pl.col("tracked") & (pl.col("last_login").is_null() | (d - pl.col("last_login") >= 30))
    declining = 2 * pl.col("last90") < pl.col("prev90")
    return p.filter((d - pl.col("last") >= 30) & (lapsed | declining)).select("customer")


def make_winback_touches(seed: int, clock: Clock, users: pl.DataFrame, orders: pl.DataFrame,
                         events: pl.DataFrame, touches: pl.DataFrame, campaigns: pl.DataFrame) -> pl.DataFrame:
    """marketing_touches with the planted win-back touches appended (see the module's docstring)."""
    rng = _stream(seed)
    if touches.is_empty() or events.is_empty() or orders.is_empty():
        # a tiny world (a few customers over a few days) may have none: its empty tables come typed Null
        return touches
    customer = users.sort("_day").unique("user_id", keep="last").select(
        "user_id", customer=pl.coalesce("phone_hash", pl.lit("user:") + pl.col("user_id")))
    cur = orders.with_row_index("_row").sort(["_day", "_row"]).unique("order_id", keep="last")
    purchase = (cur.filter(pl.col("paid_ts").is_not_null() & (pl.col("status") != "cancelled"))
                .join(customer, on="user_id").select("customer", day=_bdate_days(pl.col("order_ts"), clock))
                .unique())
    if purchase.is_empty():
        return touches
    anon = (events.filter(pl.col("user_id").is_not_null()).with_row_index("_row").sort("_row")
            .unique("anonymous_id", keep="first").select("anonymous_id", anon_user="user_id"))
    ev = (events.select("anonymous_id", "user_id", "event_name", "event_ts")
          .join(anon, on="anonymous_id", how="left")
          .with_columns(uid=pl.coalesce("user_id", "anon_user"))
          .join(customer.rename({"user_id": "uid"}), on="uid")
          .select("customer", "event_name", day=_bdate_days(pl.col("event_ts"), clock)))
    active = ev.select("customer", "day").unique()
    login = ev.filter(pl.col("event_name").is_in(["login", "app_open"])).select("customer", "day").unique()
    tcust = touches.join(customer, on="user_id").select(
        "customer", day=_bdate_days(pl.col("sent_at"), clock))
    # the customer's touch address: the customer_key account (smallest user_id)
    key_user = customer.group_by("customer").agg(user_id=pl.col("user_id").min())
    camp_start = np.array(((campaigns["start_at"].to_numpy() - clock.t0) // DAY), np.int64)
    camp_ids = campaigns["campaign_id"].to_list()
    last_day = clock.days - 1
    lo, hi = WINBACK_PARAMS["send_days"]
    target = WINBACK_PARAMS["touched_reactivation_30d"]
    new_rows = []
    done_touched = done_back = 0
    month_ends = [i for i in range(clock.days) if (clock.date(i) + timedelta(days=1)).day == 1]
    for d in month_ends:
        if d + 30 > last_day:
            continue
        starts = [(s, cid) for s, cid in zip(camp_start, camp_ids) if d + lo <= s <= d + hi]
        if not starts:
            continue
        warned = _warned(purchase, active, login, d)
        back = purchase.filter((pl.col("day") > d) & (pl.col("day") <= d + 30)).select("customer").unique()
        touched = tcust.filter((pl.col("day") > d) & (pl.col("day") <= d + 30)).select("customer").unique()
        w = warned.with_columns(
            back=pl.col("customer").is_in(back["customer"].implode()),
            touched=pl.col("customer").is_in(touched["customer"].implode())).sort("customer")
        n_t = int(w["touched"].sum()) + done_touched
        r_t = int((w["touched"] & w["back"]).sum()) + done_back
        free = w.filter(~pl.col("touched"))
        pos = rng.permutation(np.array(free.filter(pl.col("back"))["customer"].to_list(), dtype=object))
        neg = rng.permutation(np.array(free.filter(~pl.col("back"))["customer"].to_list(), dtype=object))
        k = int(round(WINBACK_PARAMS["winback_touch_share"] * len(free)))
        k_pos = min(len(pos), max(0, int(round(target * (n_t + k))) - r_t), k)
        k_neg = min(len(neg), k - k_pos)
        chosen = np.concatenate([pos[:k_pos], neg[:k_neg]])
        # the target is pooled over the month ends: a month's rounding is made up in the next
        done_touched, done_back = n_t + len(chosen), r_t + k_pos
        if len(chosen) == 0:
            continue
        pick = rng.integers(0, len(starts), len(chosen))
        for c, j in zip(chosen.tolist(), pick.tolist()):
            new_rows.append((c, starts[j][0], starts[j][1]))
    if not new_rows:
        return touches
    add = pl.DataFrame({"customer": [r[0] for r in new_rows], "_start": [int(r[1]) for r in new_rows],
                        "campaign_id": [r[2] for r in new_rows]}).join(key_user, on="customer", how="left")
    n = add.height
    sent = clock.t0 + add["_start"].to_numpy() * DAY + 10 * HOUR + rng.integers(0, 10 * HOUR, n)
    ch = rng.choice(4, size=n, p=TOUCH_W)
    opened = rng.random(n) < OPEN_P[ch]
    clicked = opened & (rng.random(n) < CLICK_P[ch])
    o_ts = np.where(opened, sent + rng.exponential(2 * HOUR, n).astype(np.int64) + 30, -1)
    c_ts = np.where(clicked, o_ts + rng.exponential(600, n).astype(np.int64) + 5, -1)
    o_ts = np.where(o_ts >= clock.end, -1, o_ts)
    c_ts = np.where((c_ts >= clock.end) | (o_ts < 0), -1, c_ts)
    first_id = len(touches) + 100000001
    new = pl.DataFrame({
        "touch_id": [f"T{first_id + i}" for i in range(n)],
        "campaign_id": add["campaign_id"].to_list(),
        "user_id": add["user_id"].to_list(),
        "channel": [TOUCH_CHANNELS[c] for c in ch],
        "sent_at": sent.astype(np.int64),
        "opened_at": pl.Series(np.where(o_ts < 0, None, o_ts).tolist(), dtype=pl.Int64),
        "clicked_at": pl.Series(np.where(c_ts < 0, None, c_ts).tolist(), dtype=pl.Int64),
        "_day": clock.day_of(sent).astype(np.int64),
    }).cast(touches.schema)
    return pl.concat([touches, new]).sort(["sent_at", "touch_id"])


def planted() -> dict:
    return {"campaign_effects": {**CAMPAIGN_EFFECT_PARAMS, "stream": hex(CAMPAIGN_EFFECTS_STREAM)},
            "winback": {**WINBACK_PARAMS, "stream": hex(CAMPAIGN_EFFECTS_STREAM)}}
