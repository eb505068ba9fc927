"""Lower-tier cities (下沉市场): a share of users lives in a tier-3 or tier-4 city of their province.

Drawn after the rest of the world from a stream of its own (PCG64([seed, 0xC17])), from the finished
users, so no other row changes: a user of a province that has lower-tier cities below (the
municipalities 北京, 上海, 重庆 have none) moves, with probability REGION_PARAMS["lower_tier_share_first_day"]
for a user registered on the window's first day rising linearly to "lower_tier_share_last_day" for one
registered on its last day (a planted 下沉 growth), to one of the province's LOWER_TIER_CITIES, tier-3
cities twice as likely as tier-4 ones. The province stays, so the warehouse serving the order and the
delivery times by province are unchanged; every row carrying the user's city moves with it: the users
row and the user's orders (the shipping address, which the platform exports also print). Shipments
carry the province only. Users without a region (null province and city) never move.

CITY_TIERS is the tier of every city the generator writes (the 2023 城市商业魅力排行榜 of 第一财经·新一线
城市研究所: 一线 tier_1, 新一线 new_tier_1, 二线 tier_2, 三线 tier_3, 四线 tier_4); dbt's seed
city_tiers.csv must agree with it (tests/test_marts_region.py), and the truth reads it from here.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .model import Clock

REGION_STREAM = 0xC17

# province -> its lower-tier cities (tier_3, tier_4) the plant moves users to
LOWER_TIER_CITIES = {
    "广东省": (("湛江市", "tier_3"), ("茂名市", "tier_3"), ("阳江市", "tier_4")),
    "浙江省": (("湖州市", "tier_3"), ("丽水市", "tier_4")),
    "江苏省": (("连云港市", "tier_3"), ("宿迁市", "tier_3")),
    "四川省": (("绵阳市", "tier_3"), ("宜宾市", "tier_3"), ("乐山市", "tier_4")),
    "湖北省": (("宜昌市", "tier_3"), ("襄阳市", "tier_3"), ("十堰市", "tier_4")),
    "山东省": (("淄博市", "tier_3"), ("济宁市", "tier_3"), ("日照市", "tier_4")),
    "福建省": (("漳州市", "tier_3"), ("莆田市", "tier_3"), ("龙岩市", "tier_4")),
    "河南省": (("洛阳市", "tier_3"), ("南阳市", "tier_3"), ("商丘市", "tier_3"), ("平顶山市", "tier_4")),
    "湖南省": (("株洲市", "tier_3"), ("衡阳市", "tier_3"), ("邵阳市", "tier_4")),
    "陕西省": (("咸阳市", "tier_3"), ("汉中市", "tier_4")),
    "云南省": (("曲靖市", "tier_3"), ("玉溪市", "tier_4")),
}

CITY_TIERS = {
    **{c: "tier_1" for c in ("北京市", "上海市", "广州市", "深圳市")},
    **{c: "new_tier_1" for c in ("成都市", "杭州市", "重庆市", "武汉市", "西安市", "苏州市", "南京市", "长沙市",
                                 "郑州市")},
    **{c: "tier_2" for c in ("济南市", "厦门市", "昆明市")},
    **{c: t for cities in LOWER_TIER_CITIES.values() for c, t in cities},
}

REGION_PARAMS = {
    "stream": "0xC17",
    # chance that a user of a province with lower-tier cities lives in one, by registration day (linear)
    "lower_tier_share_first_day": 0.15,
    "lower_tier_share_last_day": 0.35,
    "tier_weights": {"tier_3": 2.0, "tier_4": 1.0},
    "provinces": sorted(LOWER_TIER_CITIES),
}


def lower_tier_probability(reg_day, days: int):
    """The planted chance of a lower-tier city for a user registered on day index reg_day (0-based)."""
    f = np.clip(np.asarray(reg_day, float) / max(days - 1, 1), 0.0, 1.0)
    lo, hi = REGION_PARAMS["lower_tier_share_first_day"], REGION_PARAMS["lower_tier_share_last_day"]
    return lo + (hi - lo) * f


def move_to_lower_tiers(seed: int, clock: Clock, tables: dict[str, pl.DataFrame]) -> tuple[dict, dict]:
    """The tables with the planted moves applied to users.city and orders.city, and the planted record."""
    rng = np.random.Generator(np.random.PCG64([seed, REGION_STREAM]))
    users = tables["users"]
    ids = users.get_column("user_id").to_list()
    provinces = users.get_column("province").to_list()
    cities = users.get_column("city").to_list()
    reg_day = clock.day_of(users.get_column("registered_at").to_numpy())
    u_move = rng.random(users.height)  # one uniform per users row, in the table's order
    u_pick = rng.random(users.height)
    p = lower_tier_probability(reg_day, clock.days)
    moved: dict[str, str] = {}
    for i, (uid, prov, city) in enumerate(zip(ids, provinces, cities)):
        options = LOWER_TIER_CITIES.get(prov)
        if city is None or not options or u_move[i] >= p[i] or uid in moved:
            continue
        w = np.array([REGION_PARAMS["tier_weights"][t] for _, t in options])
        k = int(np.searchsorted(np.cumsum(w) / w.sum(), u_pick[i], side="right"))
        moved[uid] = options[min(k, len(options) - 1)][0]
    out = dict(tables)
    if moved:
        for name in ("users", "orders"):
            df = tables[name]
            out[name] = df.with_columns(
                pl.when(pl.col("city").is_not_null())
                .then(pl.col("user_id").replace_strict(moved, default=pl.col("city"), return_dtype=pl.Utf8))
                .otherwise(pl.col("city")).alias("city"))
    eligible = sum(1 for prov, city in zip(provinces, cities) if city is not None and prov in LOWER_TIER_CITIES)
    planted = {**REGION_PARAMS, "users_eligible": eligible, "users_moved": len(moved),
               "lower_tier_cities": {prov: [c for c, _ in v] for prov, v in LOWER_TIER_CITIES.items()}}
    return out, planted
