"""Paid acquisition spend (ad_spend): per day, sales channel and campaign, with impressions and clicks.

Drawn after the rest of the world from a stream of its own, so adding it changed no other row. Planted:
a channel's spend in a calendar month is exactly ACQUISITION_PARAMS["cac_yuan"][channel] times the
customers whose first valid order (the earliest by order time, then order id, of the order's current
row) is on that channel in that month, so CAC by channel and month is the planted figure to the cent.
Douyin buys customers dearest, the own mini-program (私域) cheapest; offline has no paid spend (its CAC
is undefined). The month's spend is spread over its days at random; on a day a campaign of the channel
(or of every channel) runs, "campaign_share" of it carries that campaign's id, the rest is brand spend
(empty campaign_id). The platform exports a week at a time: a row lands in the file of the last day of
its 7-day block (the window's last day for the last block), ~26 files for 180 days instead of 180.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .model import Clock

ACQUISITION_PARAMS = {
    # against first orders of ~800 yuan and a 90-day LTV of ~1,200: douyin pays back in the third month,
    # tmall and jd in the second, the rest in the first
    "cac_yuan": {"douyin": 1100.0, "tmall": 900.0, "jd": 950.0, "web": 600.0, "app": 450.0, "mini_program": 150.0},
    "campaign_share": 0.6,
    "cpm_yuan": {"douyin": 40.0, "tmall": 30.0, "jd": 28.0, "web": 15.0, "app": 12.0, "mini_program": 8.0},
    "ctr": {"douyin": 0.012, "tmall": 0.02, "jd": 0.018, "web": 0.01, "app": 0.03, "mini_program": 0.05},
}


def _first_orders(users: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """customer, channel and order time of each customer's first valid order."""
    customer = users.sort("_day").unique("user_id", keep="last").select(
        "user_id", pl.coalesce("phone_hash", pl.lit("user:") + pl.col("user_id")).alias("customer"))
    current = orders.sort("_day").group_by("order_id", maintain_order=True).last()
    # a world without orders has them typed Null: the key is text on both sides
    valid = current.filter(pl.col("paid_ts").is_not_null() & (pl.col("status") != "cancelled")).with_columns(
        pl.col("user_id").cast(pl.Utf8))
    return (valid.join(customer, on="user_id").sort("order_ts", "order_id")
            .group_by("customer", maintain_order=True).first().select("customer", "channel", "order_ts"))


def make_ad_spend(seed: int, clock: Clock, users: pl.DataFrame, orders: pl.DataFrame,
                  campaigns: pl.DataFrame) -> pl.DataFrame:
    rng = np.random.Generator(np.random.PCG64([seed, 0xAD5]))
    first = _first_orders(users, orders)
    first_day = clock.day_of(first["order_ts"].to_numpy())
    month_of_day = np.array([clock.date(d).year * 12 + clock.date(d).month for d in range(clock.days)])
    first_month = month_of_day[first_day]
    channels = np.array(first["channel"].to_list(), dtype=object)
    camp = list(zip(campaigns["campaign_id"].to_list(), campaigns["channel"].to_list(),
                    clock.day_of(campaigns["start_at"].to_numpy()).tolist(),
                    clock.day_of(campaigns["end_at"].to_numpy()).tolist()))
    share = ACQUISITION_PARAMS["campaign_share"]
    rows: dict[str, list] = {k: [] for k in ("date", "channel", "campaign_id", "spend", "impressions", "clicks",
                                             "_day")}

    def add(day: int, ch: str, cid, cents: int) -> None:
        impressions = int(rng.poisson(cents / 100 / ACQUISITION_PARAMS["cpm_yuan"][ch] * 1000))
        rows["date"].append(clock.date(day).isoformat())
        rows["channel"].append(ch)
        rows["campaign_id"].append(cid)
        rows["spend"].append(cents)
        rows["impressions"].append(impressions)
        rows["clicks"].append(int(rng.binomial(impressions, ACQUISITION_PARAMS["ctr"][ch])))
        rows["_day"].append(min(day - day % 7 + 6, clock.days - 1))

    for ch, cac in ACQUISITION_PARAMS["cac_yuan"].items():
        for month in np.unique(month_of_day):
            total = int(round(cac * 100)) * int(((channels == ch) & (first_month == month)).sum())
            if total == 0:
                continue
            days = np.nonzero(month_of_day == month)[0]
            weights = rng.uniform(0.5, 1.5, len(days))
            cents = np.floor(total * weights / weights.sum()).astype(np.int64)
            cents[-1] += total - int(cents.sum())  # the month sums to the planted total exactly
            for day, c in zip(days.tolist(), cents.tolist()):
                running = [cid for cid, cch, s, e in camp if s <= day <= e and cch in (ch, "all")]
                if running and c > 1:
                    on_campaign = int(c * share)
                    add(day, ch, running[0], on_campaign)
                    c -= on_campaign
                add(day, ch, None, c)
    return pl.DataFrame(rows, schema={"date": pl.Utf8, "channel": pl.Utf8, "campaign_id": pl.Utf8,
                                      "spend": pl.Int64, "impressions": pl.Int64, "clicks": pl.Int64,
                                      "_day": pl.Int64})
