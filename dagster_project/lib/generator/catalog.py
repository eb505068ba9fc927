"""The catalogue (products with launch days and prices) and the campaign calendar."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from .model import CAT_ZH, CATS, DAY, HOUR, PRODUCT_BASES, Clock, _ids


def make_products(rng, clock: Clock):
    rows = []
    n = 0
    spu = 0
    for ci, cat in enumerate(CATS):
        bases, variants, brands, (lo, hi) = PRODUCT_BASES[cat]
        for bi, (base, l2) in enumerate(bases):
            spu += 1
            brand = brands[int(rng.integers(len(brands)))]
            k = 50 // len(bases) + (1 if bi < 50 % len(bases) else 0)
            for vi in range(k):
                n += 1
                var = variants[vi % len(variants)]
                suffix = "" if vi < len(variants) else f" {['经典款', '升级款', '家庭装', '礼盒装'][(vi // len(variants)) % 4]}"
                price = int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
                price = max(9, (price // 10) * 10 + 9)
                cents = price * 100 - (10 if rng.random() < 0.3 else 0)
                rows.append((ci, spu, f"{base} {var}{suffix}", l2, brand, cents, -1))
    # new launches mid-window
    launch_day = 90 if clock.days >= 120 else max(1, clock.days // 2)
    for j in range(10):
        ci = j % len(CATS)
        bases, variants, brands, (lo, hi) = PRODUCT_BASES[CATS[ci]]
        base, l2 = bases[j % len(bases)]
        spu += 1
        price = int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        price = max(9, (price // 10) * 10 + 9)
        rows.append((ci, spu, f"{base} {variants[j % len(variants)]} 新品", l2,
                     brands[int(rng.integers(len(brands)))], price * 100, launch_day))
    cat = np.array([r[0] for r in rows])
    list_c = np.array([r[5] for r in rows], np.int64)
    cost_c = np.rint(list_c * rng.uniform(0.4, 0.7, len(rows))).astype(np.int64)
    launch = np.array([r[6] for r in rows])
    launch_ts = np.where(launch >= 0, clock.t0 + launch * DAY + 10 * HOUR, -1)
    sku_ids = _ids("SKU", len(rows), 5, 10001)
    df = pl.DataFrame({
        "sku_id": sku_ids,
        "spu_id": [f"SPU{r[1] + 1000:04d}" for r in rows],
        "product_name": [r[2] for r in rows],
        "category_l1": [CATS[c] for c in cat],
        "category_l2": [r[3] for r in rows],
        "brand": [r[4] for r in rows],
        "list_price": list_c,
        "cost_price": cost_c,
        "launched_at": pl.Series(launch_ts, dtype=pl.Int64),
        "delisted_at": pl.Series([None] * len(rows), dtype=pl.Int64),
        "_day": np.maximum(launch, 0),
    }).with_columns(pl.when(pl.col("launched_at") < 0).then(None).otherwise(pl.col("launched_at"))
                    .alias("launched_at"))
    return df, cat, list_c, cost_c, np.maximum(launch, 0)


def make_campaigns(rng, clock: Clock):
    """Calendar campaigns inside the window; returns table and per-day arrays."""
    cands = []  # (start_date, end_date, name, type, channel, kind) kind: 0 major 1 holiday 2 category day
    for y in range(clock.start.year, clock.date(clock.days).year + 1):
        D = lambda m, d: date(y, m, d)  # noqa: E731
        cands += [
            (D(6, 1), D(6, 18), "618年中大促", "full_reduction", "all", 0),
            (D(11, 1), D(11, 11), "双11狂欢节", "full_reduction", "all", 0),
            (D(5, 20), D(5, 21), "520告白季", "gift", "douyin", 1),
            # a gift (满赠) festival: with 520 the gift campaign early enough for 90 days of data (campaign_effects.py;
            # the type is a label, no draw depends on it)
            (D(7, 1), D(7, 10), "夏日清凉节", "gift", "app", 1),
            (D(7, 20), D(7, 22), "达人直播专场", "live", "douyin", 1),
            (D(8, 8), D(8, 8), "88会员节", "coupon", "app", 1),
            (D(8, 19), D(8, 19), "七夕礼遇季", "gift", "mini_program", 1),
            (D(8, 25), D(9, 3), "开学季", "coupon", "all", 1),
            (D(9, 9), D(9, 9), "99划算节", "discount", "tmall", 1),
            (D(9, 20), D(9, 25), "中秋团圆礼", "gift", "all", 1),
            (D(10, 1), D(10, 7), "国庆黄金周", "full_reduction", "all", 1),
            (D(10, 20), D(10, 24), "秋冬换季", "discount", "web", 1),
            (D(12, 12), D(12, 12), "双12年终盛典", "full_reduction", "all", 1),
        ]
    busy = np.zeros(clock.days, bool)
    kept = []
    for c in cands:
        s, e = clock.day_index(c[0]), clock.day_index(c[1])
        if s < 0 or e >= clock.days:
            continue
        kept.append((s, e) + c[2:])
        busy[s:e + 1] = True
    # bi-weekly category days (1 day each) on Fridays not inside another campaign
    first_fri = next(i for i in range(3, 10) if (clock.start.weekday() + i) % 7 == 4)
    types = ("kol", "bundle", "discount", "coupon", "live", "gift")
    k = 0
    for d in range(first_fri, clock.days, 14):
        if busy[d]:
            continue
        ci = k % len(CATS)
        kept.append((d, d, f"{CAT_ZH[ci]}超级品类日", types[k % len(types)], "app", 2))
        k += 1
    kept.sort(key=lambda c: (c[0], c[1], c[2]))
    n = len(kept)
    s = np.array([c[0] for c in kept], np.int64)
    e = np.array([c[1] for c in kept], np.int64)
    kind = np.array([c[5] for c in kept], np.int64)
    cost = np.where(kind == 0, rng.integers(500_000, 2_000_000, n), rng.integers(5_000, 80_000, n)) * 100
    start_ts = clock.t0 + s * DAY
    end_ts = clock.t0 + (e + 1) * DAY - 1
    df = pl.DataFrame({
        "campaign_id": _ids("C", n, 3),
        "name": [c[2] for c in kept],
        "type": [c[3] for c in kept],
        "channel": [c[4] for c in kept],
        "start_at": start_ts,
        "end_at": end_ts,
        "cost": cost.astype(np.int64),
        "_day": np.zeros(n, np.int64),
    }, schema_overrides={"start_at": pl.Int64, "end_at": pl.Int64, "cost": pl.Int64})
    # per day: active campaign (major > holiday > category day), purchase multiplier
    active = np.full(clock.days, -1)
    mult = np.ones(clock.days)
    for pri in (2, 1, 0):
        for i in range(n):
            if kind[i] != pri:
                continue
            active[s[i]:e[i] + 1] = i
            L = e[i] - s[i] + 1
            if pri == 0:
                ramp = 1.25 + 0.9 * np.arange(L) / max(L - 1, 1)
                ramp[-1] = 4.0 if "618" in kept[i][2] else 5.0
                mult[s[i]:e[i] + 1] = ramp
            else:
                mult[s[i]:e[i] + 1] = 1.4 if kept[i][3] == "live" else 1.25
    return df, active, mult, kind, s, e

