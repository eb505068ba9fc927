"""Simulate the demo world: persons, users, catalogue, campaigns, purchases, tracking, logistics.

Everything is vectorised with numpy and driven by one ``numpy.random.Generator(PCG64(seed))``,
so the same arguments give the same world. The result is one typed polars DataFrame per source
(timestamps as Int64 epoch seconds UTC, amounts as Int64 cents), each with a ``_day`` column: the
index (0 = ``start``) of the business-date file the row lands in. ``writers.py`` turns these
tables into files; ``truth.py`` computes the ground truth from them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from . import incidents as inc

DAY = 86400
HOUR = 3600

CATS = ("vitamins", "protein_powder", "clothing", "home", "beauty", "fresh_food")
CAT_ZH = ("维生素", "蛋白粉", "服饰", "家居", "美妆", "生鲜")
FAV_CAT_W = np.array([0.26, 0.16, 0.15, 0.14, 0.15, 0.14])
# category-dependent repurchase: multiplies the person's purchase rate lambda
CAT_RATE_MULT = np.array([1.5, 1.4, 0.8, 0.7, 1.0, 1.2])
# planted return probability of a delivered order by the category of its first line
RETURN_P = np.array([0.030, 0.032, 0.073, 0.065, 0.050, 0.036])
RETURN_REASONS = ("尺码不合适", "质量问题", "不想要了", "发错货", "破损")
RETURN_REASON_W = np.array([
    [0.00, 0.40, 0.35, 0.15, 0.10],   # vitamins
    [0.00, 0.40, 0.30, 0.15, 0.15],   # protein_powder
    [0.55, 0.15, 0.20, 0.07, 0.03],   # clothing
    [0.00, 0.40, 0.25, 0.10, 0.25],   # home
    [0.00, 0.35, 0.40, 0.15, 0.10],   # beauty
    [0.00, 0.45, 0.10, 0.05, 0.40],   # fresh_food
])

# Primary channels of persons (contract enum values only).
CHANNELS = ("app", "mini_program", "web", "tmall", "jd", "douyin", "offline")
CHANNEL_W = np.array([0.25, 0.22, 0.08, 0.18, 0.12, 0.10, 0.05])
TRACKED = np.array([True, True, True, False, False, False, False])
PLATFORMS = ("ios", "android", "mini_program", "web")

# Evening peak 20-22h; 23h and 0h non-trivial (business-date edge cases).
HOUR_W = np.array([1.4, 0.6, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 2.6, 3.0, 3.2,
                   3.4, 3.0, 3.0, 3.1, 3.2, 3.3, 3.6, 4.4, 5.6, 6.2, 5.6, 3.4])
HOUR_P = HOUR_W / HOUR_W.sum()

REGIONS = (
    ("广东省", "广州市", 8), ("广东省", "深圳市", 8), ("浙江省", "杭州市", 7), ("江苏省", "南京市", 5),
    ("江苏省", "苏州市", 5), ("上海市", "上海市", 8), ("北京市", "北京市", 7), ("四川省", "成都市", 6),
    ("湖北省", "武汉市", 5), ("山东省", "济南市", 4), ("福建省", "厦门市", 3), ("河南省", "郑州市", 4),
    ("湖南省", "长沙市", 4), ("陕西省", "西安市", 4), ("重庆市", "重庆市", 5), ("云南省", "昆明市", 2),
)
REGION_P = np.array([r[2] for r in REGIONS], float) / sum(r[2] for r in REGIONS)
# warehouse serving a region: south -> WH-GZ, west -> WH-CD, else WH-SH
WAREHOUSES = ("WH-SH", "WH-GZ", "WH-CD")
REGION_WH = np.array([1, 1, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 1, 2, 2, 2])

CARRIERS = ("顺丰", "中通", "圆通", "京东物流", "EMS")
CARRIER_W = np.array([0.2, 0.3, 0.25, 0.15, 0.1])
CARRIER_SPEED = np.array([0.75, 1.0, 1.05, 0.8, 1.3])

TICKET_CATS = ("物流查询", "退换货", "商品咨询", "支付问题", "售后投诉", "发票开具")
TOUCH_CHANNELS = ("sms", "push", "wechat", "email")
TOUCH_W = np.array([0.30, 0.35, 0.25, 0.10])
OPEN_P = np.array([0.12, 0.09, 0.28, 0.06])
CLICK_P = np.array([0.25, 0.30, 0.35, 0.20])  # given opened

# Holiday sales (节日促销) the seeds tier with the big promotions (1:5.3 against daily 1:3.1): they are
# short, so no length rule finds them; the warehouse reads them off the promotion calendar (dim_date).
FESTIVAL_CAMPAIGNS = ("中秋团圆礼", "国庆黄金周", "双12年终盛典")

EXPERIMENT_ID = "exp_checkout_v2"
# A/A test: the same users, assigned the same way, split by an independent hash; nothing differs.
AA_EXPERIMENT_ID = "exp_aa_checkout_copy"
# planted cross-category affinity: orders led by protein powder pick up vitamins
AFFINITY = ("protein_powder", "vitamins")
# planted slow movers (滞销品): the last catalogue SKU of these categories is almost never chosen, so it
# sells on a day or two a month at most (outside the affinity pair, whose extra lines pick any SKU)
SLOW_MOVER_CATEGORIES = ("home", "beauty")
SLOW_MOVER_WEIGHT = 0.01
# planted overstock: days of average demand the best-selling SKU starts with
DEEP_STOCK_DAYS = 1500

PARAMS = {
    "purchase_rate_gamma_r": 0.7,
    "purchase_rate_gamma_alpha": 35.0,   # rate parameter: lambda ~ Gamma(shape=r, rate=alpha) per day
    "dropout_beta_a": 1.2,
    "dropout_beta_b": 2.8,
    "category_rate_multiplier": dict(zip(CATS, CAT_RATE_MULT.tolist())),
    "same_day_second_order_p": 0.05,
    "cancel_p": 0.04,
    "second_user_p": 0.10,
    "no_phone_p": 0.10,
    "weekend_purchase_factor": 1.15,
    "weekend_shipping_factor": 2.3,
    "return_rate_by_category": dict(zip(CATS, RETURN_P.tolist())),
    "return_rejected_p": 0.10,
    "return_cycle_mean_days": 5.8,
    "payment_success_missing_p": 0.02,
    "payment_submit_dropoff_share": 0.28,
    "late_event_session_p": 0.05,
    "experiment_factor": 1.25,
    "click_purchase_boost": 3.0,
    "cs_ticket_order_p": 0.06,
    "bot_share": 0.60,
    "human_first_response_mean_hours": 4.2,
    "affinity_pair": list(AFFINITY),
    "affinity_p": 0.6,
    "aa_experiment_id": AA_EXPERIMENT_ID,
    # seeds: big promotions return 1:5.3, daily campaigns 1:3.1 (pay of tagged valid orders / cost)
    "campaign_roi_big": 5.3,
    "campaign_roi_daily": 3.1,
}

PRODUCT_BASES = {
    "vitamins": (
        [("维生素C咀嚼片", "维生素"), ("复合维生素B片", "维生素"), ("维生素D3软胶囊", "维生素"),
         ("钙镁锌片", "矿物质"), ("深海鱼油软胶囊", "鱼油"), ("叶黄素酯片", "眼部健康"),
         ("辅酶Q10胶囊", "心脑健康"), ("益生菌粉", "肠道健康")],
        ("60粒", "90粒", "120粒", "30袋"), ("汤臣倍健", "Swisse", "善存", "Blackmores", "GNC", "自然之宝"),
        (59, 299)),
    "protein_powder": (
        [("乳清蛋白粉", "乳清蛋白"), ("分离乳清蛋白", "乳清蛋白"), ("植物蛋白粉", "植物蛋白"),
         ("增肌粉", "增肌"), ("胶原蛋白肽", "胶原蛋白")],
        ("500g", "900g", "2磅", "5磅"), ("Myprotein", "康比特", "ON", "汤臣倍健", "诺特兰德"), (129, 599)),
    "clothing": (
        [("速干运动T恤", "上衣"), ("高腰瑜伽裤", "裤装"), ("轻薄防晒衣", "外套"), ("跑步短裤", "裤装"),
         ("运动内衣", "内衣"), ("连帽卫衣", "上衣")],
        ("S码", "M码", "L码", "XL码"), ("李宁", "安踏", "Lululemon", "迪卡侬", "优衣库"), (79, 499)),
    "home": (
        [("收纳箱", "收纳"), ("保温杯", "杯壶"), ("空气炸锅", "厨电"), ("电动牙刷", "个护电器"),
         ("香薰加湿器", "家电"), ("折叠晾衣架", "收纳")],
        ("白色", "灰色", "大号", "小号"), ("小米", "米家", "膳魔师", "苏泊尔", "宜家"), (39, 899)),
    "beauty": (
        [("玻尿酸面膜", "面膜"), ("清爽防晒霜", "防晒"), ("氨基酸洁面乳", "洁面"), ("修护精华液", "精华"),
         ("丝绒口红", "彩妆"), ("保湿护手霜", "护手")],
        ("30ml", "50ml", "10片装", "3.5g"), ("珀莱雅", "欧莱雅", "薇诺娜", "完美日记", "资生堂"), (49, 399)),
    "fresh_food": (
        [("有机纯牛奶", "乳品"), ("即食燕麦片", "谷物"), ("每日坚果礼盒", "坚果"), ("低脂鸡胸肉", "肉类"),
         ("希腊酸奶", "乳品"), ("85%黑巧克力", "零食")],
        ("12盒", "1kg", "750g", "6袋"), ("蒙牛", "三只松鼠", "伊利", "良品铺子", "百草味"), (19, 199)),
}


@dataclass
class Clock:
    start: date
    days: int
    offset: int  # seconds east of UTC of the business time zone
    t0: int = 0  # epoch seconds (UTC) of start 00:00 local
    end: int = 0  # epoch seconds (UTC) of (start + days) 00:00 local, exclusive

    def __post_init__(self):
        naive = int(datetime(self.start.year, self.start.month, self.start.day).timestamp()
                    - datetime(1970, 1, 1).timestamp())
        self.t0 = naive - self.offset
        self.end = self.t0 + self.days * DAY

    def day_of(self, ts):
        return (np.asarray(ts) - self.t0) // DAY

    def date(self, day: int) -> date:
        return self.start + timedelta(days=int(day))

    @property
    def weekday(self) -> np.ndarray:
        return (self.start.weekday() + np.arange(self.days + 8)) % 7

    def day_index(self, d: date) -> int:
        return (d - self.start).days


def tz_offset_seconds(tzname: str, start: date) -> int:
    z = ZoneInfo(tzname)
    return int(datetime(start.year, start.month, start.day, 12, tzinfo=z).utcoffset().total_seconds())


@dataclass
class World:
    clock: Clock
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    planted: dict = field(default_factory=dict)
    incidents: list = field(default_factory=list)


def _tod(rng, n):
    return rng.choice(24, size=n, p=HOUR_P) * HOUR + rng.integers(0, HOUR, size=n)


def _ids(prefix: str, n: int, width: int, first: int = 1) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(first, first + n)]


def _idx_by_time(ts: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Rank (0-based) of each element when sorted by (ts, tiebreak, position)."""
    keys = (np.arange(len(ts)),) + ((tiebreak,) if tiebreak is not None else ()) + (ts,)
    order = np.lexsort(keys)
    rank = np.empty(len(ts), np.int64)
    rank[order] = np.arange(len(ts))
    return rank


def _expand(counts: np.ndarray):
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    pos = np.arange(total) - np.repeat(first, counts)
    return owner, pos


def _choice_cdf(rng, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


# ----------------------------------------------------------------------------------------------
# catalogue and campaigns


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
            (D(7, 1), D(7, 10), "夏日清凉节", "discount", "app", 1),
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


# ----------------------------------------------------------------------------------------------


def build_world(*, customers: int, days: int, seed: int, start: date, timezone: str, incidents: bool = True) -> World:
    rng = np.random.Generator(np.random.PCG64(seed))
    clock = Clock(start, days, tz_offset_seconds(timezone, start))
    W = World(clock)
    P = customers
    wk = clock.weekday[:days]
    weekend = wk >= 5
    plan = inc.plan_incidents(start, days, enabled=incidents)

    products, sku_cat, sku_list, sku_cost, sku_launch = make_products(rng, clock)
    campaigns, active_camp, promo_mult, camp_kind, camp_s, camp_e = make_campaigns(rng, clock)
    n_sku = len(sku_cat)

    # ---------------- persons and users
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
    member = rng.choice(6, size=U, p=[0.35, 0.25, 0.18, 0.12, 0.07, 0.03])
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

    # ---------------- campaigns: marketing touches (before purchases: clicks boost purchases)
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

    # ---------------- daily simulation: purchases (persons) and visits (users)
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
    # same-day second orders
    extra = rng.random(len(buy_p)) < PARAMS["same_day_second_order_p"]
    o_person = np.concatenate([buy_p, buy_p[extra]])
    o_day = np.concatenate([buy_d, buy_d[extra]])
    n = len(o_person)
    # which user places the order
    u2 = person_user2[o_person]
    use2 = (u2 >= 0) & (o_day >= u_reg_day[np.maximum(u2, 0)]) & (rng.random(n) < 0.4)
    o_user = np.where(use2, u2, o_person)
    o_ts = clock.t0 + o_day * DAY + _tod(rng, n)
    ureg = u_reg_ts[o_user]
    late_fix = o_ts <= ureg + 300
    o_ts = np.where(late_fix, ureg + 300 + rng.integers(0, 3 * HOUR, n), o_ts)
    keep = o_ts < clock.end - 900
    o_person, o_day, o_user, o_ts = o_person[keep], o_day[keep], o_user[keep], o_ts[keep]
    o_day = clock.day_of(o_ts)
    o_rank = _idx_by_time(o_ts)
    order = np.argsort(o_rank)
    o_person, o_day, o_user, o_ts = o_person[order], o_day[order], o_user[order], o_ts[order]
    n = len(o_ts)
    order_ids = np.array([f"O{100000001 + i}" for i in range(n)], dtype=object)
    o_ch = u_ch[o_user]

    # ---------------- order lines
    n_lines = rng.choice([1, 2, 3, 4], size=n, p=[0.55, 0.25, 0.13, 0.07])
    l_order, l_pos = _expand(n_lines)
    L = len(l_order)
    l_cat = np.where(rng.random(L) < 0.75, fav[o_person[l_order]], rng.choice(len(CATS), size=L, p=FAV_CAT_W))
    l_sku = np.zeros(L, np.int64)
    slow_skus = []
    for ci in range(len(CATS)):
        pool = np.nonzero(sku_cat == ci)[0]
        w = 1.0 / (np.arange(len(pool)) + 3.0)
        if CATS[ci] in SLOW_MOVER_CATEGORIES:
            slow = np.nonzero(sku_launch[pool] == 0)[0][-1]
            w[slow] *= SLOW_MOVER_WEIGHT
            slow_skus.append(int(pool[slow]))
        cdf = np.cumsum(w) / w.sum()
        m = l_cat == ci
        l_sku[m] = pool[_choice_cdf(rng, cdf, int(m.sum()))]
        # not yet launched -> replace with a base SKU of the category
        bad = m & (sku_launch[l_sku] > o_day[l_order])
        base_pool = pool[sku_launch[pool] == 0]
        l_sku[bad] = base_pool[rng.integers(0, len(base_pool), int(bad.sum()))]
    qty_heavy = np.isin(l_cat, [0, 1, 5])
    l_qty = np.where(qty_heavy, rng.choice([1, 2, 3], size=L, p=[0.6, 0.28, 0.12]),
                     rng.choice([1, 2, 3], size=L, p=[0.8, 0.15, 0.05])).astype(np.int64)
    # planted category affinity, on its own RNG stream so every other draw stays as it was: an order
    # of >= 2 lines led by one category of the pair and lacking the other gets the other on its last
    # line (the first line, and with it the order's category for returns and tracking, is untouched)
    aff_rng = np.random.Generator(np.random.PCG64([seed, 0xAFF]))
    o_first = np.cumsum(n_lines) - n_lines
    aff_u = aff_rng.random(n)
    aff_hit = np.zeros(n, bool)
    for src, dst in (AFFINITY, AFFINITY[::-1]):
        a_src, a_dst = CATS.index(src), CATS.index(dst)
        has_dst = np.bincount(l_order, weights=(l_cat == a_dst).astype(float), minlength=n) > 0
        hit = (n_lines >= 2) & (l_cat[o_first] == a_src) & ~has_dst & (aff_u < PARAMS["affinity_p"])
        line = (np.cumsum(n_lines) - 1)[hit]
        dst_pool = np.nonzero((sku_cat == a_dst) & (sku_launch == 0))[0]
        l_cat[line] = a_dst
        l_sku[line] = dst_pool[aff_rng.integers(0, len(dst_pool), len(line))]
        aff_hit |= hit
    camp = active_camp[o_day]
    camp_major = (camp >= 0) & (camp_kind[np.maximum(camp, 0)] == 0)
    in_camp = (camp >= 0) & (rng.random(n) < np.where(camp_major, 0.75, 0.35))
    promo_price = in_camp[l_order] & (rng.random(L) < 0.5)
    l_unit = np.where(promo_price, (sku_list[l_sku] * 85 + 50) // 100, sku_list[l_sku]).astype(np.int64)
    l_gross = l_unit * l_qty
    l_disc = np.where(rng.random(L) < 0.15, np.rint(l_gross * rng.uniform(0.03, 0.12, L)), 0).astype(np.int64)
    items = np.rint(np.bincount(l_order, weights=l_gross, minlength=n)).astype(np.int64)
    ldisc = np.rint(np.bincount(l_order, weights=l_disc, minlength=n)).astype(np.int64)
    net0 = items - ldisc
    coupon = in_camp & (rng.random(n) < 0.6)
    tier = np.select([net0 >= 29900, net0 >= 19900, net0 >= 9900, net0 >= 2000], [4, 3, 2, 1], 0)
    coupon &= tier > 0
    c_disc = np.where(coupon, np.array([0, 500, 1500, 3000, 5000])[tier], 0).astype(np.int64)
    disc = ldisc + c_disc
    net = items - disc
    ship_fee = np.where((net >= 9900) | (o_ch == CHANNELS.index("offline")), 0,
                        rng.choice([600, 800, 1000], size=n)).astype(np.int64)
    pay = net + ship_fee
    coupon_id = np.array([f"CP{c + 1:03d}{t:02d}" if cp else None for c, t, cp in zip(camp, tier, coupon)],
                         dtype=object)
    campaign_id = np.array([f"C{c + 1:03d}" if ic else None for c, ic in zip(camp, in_camp)], dtype=object)

    # ---------------- order lifecycle
    NONE = -1
    cancelled = rng.random(n) < PARAMS["cancel_p"]
    paid = np.where(cancelled, NONE, o_ts + np.where(rng.random(n) < 0.9, rng.integers(10, 900, n),
                                                      rng.integers(900, 3600, n)))
    cancel_ts = np.where(cancelled, o_ts + rng.integers(300, 3600, n), NONE)
    # planted campaign ROI: a campaign's cost is the pay of its tagged valid orders / the tier's ROI
    # (no draws; a campaign without orders keeps its drawn cost)
    camp_pay = np.zeros(len(camp_kind))
    tagged = in_camp & (paid >= 0)
    np.add.at(camp_pay, camp[tagged], pay[tagged])
    camp_big = (camp_kind == 0) | np.isin(campaigns["name"].to_numpy(), FESTIVAL_CAMPAIGNS)
    roi_target = np.where(camp_big, PARAMS["campaign_roi_big"], PARAMS["campaign_roi_daily"])
    planted_cost = np.where(camp_pay > 0, np.rint(camp_pay / roi_target), campaigns["cost"].to_numpy())
    campaigns = campaigns.with_columns(pl.Series("cost", planted_cost.astype(np.int64)))
    paid_day = clock.day_of(np.maximum(paid, 0))
    wkend_paid = (clock.weekday[np.clip(paid_day, 0, days)] >= 5)
    delay = rng.gamma(2.0, 10 * HOUR, n)
    delay = np.where(wkend_paid, delay * PARAMS["weekend_shipping_factor"], np.minimum(delay, 60 * HOUR))
    ship = np.where(paid >= 0, paid + 1800 + delay.astype(np.int64), NONE)
    carrier = rng.choice(len(CARRIERS), size=n, p=CARRIER_W)
    o_region = u_region[o_user]
    o_noregion = u_noregion[o_user]
    wh = REGION_WH[o_region]
    tr = np.clip(rng.gamma(3.0, 20 * HOUR, n) * CARRIER_SPEED[carrier], 18 * HOUR, 110 * HOUR)
    deliv = np.where(ship >= 0, ship + tr.astype(np.int64), NONE)
    ship = np.where(ship >= clock.end, NONE, ship)
    deliv = np.where((ship < 0) | (deliv >= clock.end), NONE, deliv)
    # returns
    first_line = np.cumsum(n_lines) - n_lines
    o_cat = l_cat[first_line]
    has_ret = (deliv >= 0) & (rng.random(n) < RETURN_P[o_cat])
    ret_req = np.where(has_ret, deliv + (rng.uniform(0.3, 7.0, n) * DAY).astype(np.int64), NONE)
    has_ret &= ret_req < clock.end
    ri = np.nonzero(has_ret)[0]
    R = len(ri)
    r_req = ret_req[ri]
    r_rej = rng.random(R) < PARAMS["return_rejected_p"]
    r_rej_ts = np.where(r_rej, r_req + (rng.uniform(0.5, 2.0, R) * DAY).astype(np.int64), NONE)
    r_app = np.where(r_rej, NONE, r_req + (rng.uniform(0.2, 1.5, R) * DAY).astype(np.int64))
    cyc = rng.gamma(4.0, PARAMS["return_cycle_mean_days"] / 4.0, R) * DAY
    r_comp = np.where(r_rej, NONE, np.maximum(r_req + cyc.astype(np.int64), r_app + DAY // 2))
    r_rej_ts = np.where(r_rej_ts >= clock.end, NONE, r_rej_ts)
    r_app = np.where(r_app >= clock.end, NONE, r_app)
    r_comp = np.where((r_comp >= clock.end) | (r_app < 0), NONE, r_comp)
    r_whole = (n_lines[ri] == 1) | (rng.random(R) < 0.5)
    r_line = first_line[ri] + (rng.random(R) * n_lines[ri]).astype(np.int64)
    r_line = np.where(n_lines[ri] == 1, first_line[ri], r_line)
    r_amount = np.where(r_whole, pay[ri], np.minimum(l_gross[r_line] - l_disc[r_line], pay[ri]))
    r_sku = np.where(r_whole & (n_lines[ri] > 1), -1, l_sku[r_line])
    r_qty = np.where(r_whole & (n_lines[ri] > 1), -1, l_qty[r_line])
    r_cat = l_cat[r_line]
    r_reason = np.array([rng.choice(5, p=RETURN_REASON_W[c]) for c in r_cat], dtype=np.int64) if R else np.zeros(0, np.int64)
    refund = np.full(n, NONE)
    refund[ri] = np.where(r_whole & (r_comp >= 0), r_comp, NONE)

    # orders status rows: one row per (order, business day with a change), the day's last status
    st_codes = ("created", "paid", "shipped", "delivered", "cancelled", "refunded")
    ev_o = np.concatenate([np.arange(n)] * 6)
    ev_ts = np.concatenate([o_ts, paid, ship, deliv, cancel_ts, refund])
    ev_st = np.repeat(np.arange(6), n)
    ok = ev_ts >= 0
    ev_o, ev_ts, ev_st = ev_o[ok], ev_ts[ok], ev_st[ok]
    ev_day = clock.day_of(ev_ts)
    srt = np.lexsort((ev_st, ev_ts, ev_day, ev_o))
    ev_o, ev_ts, ev_st, ev_day = ev_o[srt], ev_ts[srt], ev_st[srt], ev_day[srt]
    last = np.ones(len(ev_o), bool)
    last[:-1] = (ev_o[1:] != ev_o[:-1]) | (ev_day[1:] != ev_day[:-1])
    so, sts, sst, sday = ev_o[last], ev_ts[last], ev_st[last], ev_day[last]
    paid_known = (paid[so] >= 0) & (paid[so] <= sts)
    orders = pl.DataFrame({
        "order_id": order_ids[so].tolist(),
        "user_id": user_ids[o_user[so]].tolist(),
        "channel": [CHANNELS[c] for c in o_ch[so]],
        "order_ts": o_ts[so].astype(np.int64),
        "paid_ts": pl.Series(np.where(paid_known, paid[so], -1).astype(np.int64)),
        "status": [st_codes[s] for s in sst],
        "items_amount": items[so],
        "discount_amount": disc[so],
        "shipping_fee": ship_fee[so],
        "pay_amount": pay[so],
        "coupon_id": pl.Series(coupon_id[so].tolist(), dtype=pl.Utf8),
        "campaign_id": pl.Series(campaign_id[so].tolist(), dtype=pl.Utf8),
        "province": pl.Series([None if o_noregion[i] else REGIONS[o_region[i]][0] for i in so], dtype=pl.Utf8),
        "city": pl.Series([None if o_noregion[i] else REGIONS[o_region[i]][1] for i in so], dtype=pl.Utf8),
        "_day": sday.astype(np.int64),
        "_ts": sts.astype(np.int64),
    }).with_columns(pl.when(pl.col("paid_ts") < 0).then(None).otherwise(pl.col("paid_ts")).alias("paid_ts"))
    orders = orders.sort(["_day", "_ts", "order_id"]).drop("_ts")

    order_items = pl.DataFrame({
        "order_id": order_ids[l_order].tolist(),
        "line_no": (l_pos + 1).astype(np.int64),
        "sku_id": np.array(products["sku_id"].to_list(), dtype=object)[l_sku].tolist(),
        "quantity": l_qty,
        "unit_price": l_unit,
        "discount_amount": l_disc,
        "_day": o_day[l_order].astype(np.int64),
    })

    # returns rows
    sku_ids = np.array(products["sku_id"].to_list(), dtype=object)
    r_ids = np.array([f"R{100000001 + i}" for i in range(R)], dtype=object)
    rs_codes = ("requested", "approved", "rejected", "completed")
    rev_r = np.concatenate([np.arange(R)] * 4)
    rev_ts = np.concatenate([r_req, r_app, r_rej_ts, r_comp])
    rev_st = np.repeat(np.arange(4), R)
    ok = rev_ts >= 0
    rev_r, rev_ts, rev_st = rev_r[ok], rev_ts[ok], rev_st[ok]
    rev_day = clock.day_of(rev_ts)
    srt = np.lexsort((rev_st, rev_ts, rev_day, rev_r))
    rev_r, rev_ts, rev_st, rev_day = rev_r[srt], rev_ts[srt], rev_st[srt], rev_day[srt]
    last = np.ones(len(rev_r), bool)
    last[:-1] = (rev_r[1:] != rev_r[:-1]) | (rev_day[1:] != rev_day[:-1])
    qr, qts, qst, qday = rev_r[last], rev_ts[last], rev_st[last], rev_day[last]
    app_known = (r_app[qr] >= 0) & (r_app[qr] <= qts)
    comp_known = (r_comp[qr] >= 0) & (r_comp[qr] <= qts)
    returns = pl.DataFrame({
        "return_id": r_ids[qr].tolist(),
        "order_id": order_ids[ri[qr]].tolist(),
        "sku_id": pl.Series([sku_ids[s] if s >= 0 else None for s in r_sku[qr]], dtype=pl.Utf8),
        "quantity": pl.Series(r_qty[qr].astype(np.int64)),
        "amount": r_amount[qr].astype(np.int64),
        "reason": [RETURN_REASONS[x] for x in r_reason[qr]],
        "requested_at": r_req[qr].astype(np.int64),
        "approved_at": pl.Series(np.where(app_known, r_app[qr], -1).astype(np.int64)),
        "completed_at": pl.Series(np.where(comp_known, r_comp[qr], -1).astype(np.int64)),
        "status": [rs_codes[s] for s in qst],
        "_day": qday.astype(np.int64),
        "_ts": qts.astype(np.int64),
    }).with_columns(*[pl.when(pl.col(c) < 0).then(None).otherwise(pl.col(c)).alias(c)
                      for c in ("quantity", "approved_at", "completed_at")])
    returns = returns.sort(["_day", "_ts", "return_id"]).drop("_ts")

    # shipments: a row on the ship day, again on the delivery day
    si = np.nonzero(ship >= 0)[0]
    s_rank = _idx_by_time(ship[si])
    ship_id = np.empty(n, dtype=object)
    ship_id[si] = [f"SH{100000001 + k}" for k in s_rank]
    s_day = clock.day_of(ship[si])
    d_day = np.where(deliv[si] >= 0, clock.day_of(np.maximum(deliv[si], 0)), -1)
    same = d_day == s_day
    a_idx = si
    a_deliv = np.where(same, deliv[si], -1)
    b_idx = si[(d_day >= 0) & ~same]
    sh_o = np.concatenate([a_idx, b_idx])
    sh_deliv = np.concatenate([a_deliv, deliv[b_idx]])
    sh_day = np.concatenate([s_day, clock.day_of(deliv[b_idx])])
    sh_ts = np.concatenate([ship[a_idx], deliv[b_idx]])
    shipments = pl.DataFrame({
        "shipment_id": ship_id[sh_o].tolist(),
        "order_id": order_ids[sh_o].tolist(),
        "carrier": [CARRIERS[c] for c in carrier[sh_o]],
        "warehouse_id": [WAREHOUSES[w] for w in wh[sh_o]],
        "shipped_at": ship[sh_o].astype(np.int64),
        "delivered_at": pl.Series(sh_deliv.astype(np.int64)),
        "province": pl.Series([None if o_noregion[i] else REGIONS[o_region[i]][0] for i in sh_o], dtype=pl.Utf8),
        "_day": sh_day.astype(np.int64),
        "_ts": sh_ts.astype(np.int64),
    }).with_columns(pl.when(pl.col("delivered_at") < 0).then(None).otherwise(pl.col("delivered_at"))
                    .alias("delivered_at")).sort(["_day", "_ts", "shipment_id"]).drop("_ts")

    # ---------------- cs tickets
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

    # ---------------- events
    events, exp_rows = _make_events(
        rng, clock, W, users_arrays=dict(
            user_ids=user_ids, u_person=u_person, u_primary=u_primary, u_reg_ts=u_reg_ts,
            u_track=u_track, u_anonweb=u_anonweb, u_platform=u_platform, fav=fav),
        orders_arrays=dict(o_user=o_user, o_ts=o_ts, paid=paid, cancelled=cancelled, order_ids=order_ids,
                           first_sku=l_sku[first_line]),
        visits=(vis_u, vis_d), assigned_day=assigned_day, sku_cat=sku_cat, sku_ids=sku_ids,
        sku_launch=sku_launch, active_camp=active_camp, spike_first=plan["spike"])
    ea_user, ea_ts, ea2_user, ea2_ts = exp_rows
    aa_treat = np.array([hashlib.sha256(f"{AA_EXPERIMENT_ID}:{u}".encode()).digest()[0] % 2 == 1
                         for u in user_ids[ea_user]], dtype=bool)
    acc_user = np.concatenate([ea_user, ea2_user])
    acc_ts = np.concatenate([ea_ts, ea2_ts])
    acc_treat = {exp_id: np.array([hashlib.sha256(f"{exp_id}:{u}".encode()).digest()[0] % 2 == 1
                                   for u in user_ids[acc_user]], dtype=bool)
                 for exp_id in (EXPERIMENT_ID, AA_EXPERIMENT_ID)}
    n_acc = len(acc_user)
    exp = pl.DataFrame({
        "experiment_id": [EXPERIMENT_ID] * n_acc + [AA_EXPERIMENT_ID] * n_acc,
        "user_id": user_ids[acc_user].tolist() * 2,
        "variant": (np.where(acc_treat[EXPERIMENT_ID], "treatment", "control").tolist()
                    + np.where(acc_treat[AA_EXPERIMENT_ID], "treatment", "control").tolist()),
        "assigned_at": np.concatenate([acc_ts, acc_ts]).astype(np.int64),
        "_day": np.concatenate([clock.day_of(acc_ts)] * 2).astype(np.int64),
    }).sort(["_day", "assigned_at", "user_id", "experiment_id"])
    second_arms = acc_treat[EXPERIMENT_ID][len(ea_user):] != variant_treat[u_person[ea2_user]]
    experiments_expected = _expected_experiment_lift(
        clock, ea_user, ea_ts, assigned_day, alive_at_assign, base_rate, day_mult, boost,
        {EXPERIMENT_ID: variant_treat[ea_user], AA_EXPERIMENT_ID: aa_treat})

    # ---------------- inventory snapshots
    inv, deep_stock_sku = _make_inventory(rng, clock, sku_ids, sku_launch, l_sku, l_qty, o_day[l_order],
                                          wh[l_order], cancelled[l_order])

    W.tables = {
        "users": users, "products": products, "orders": orders, "order_items": order_items,
        "events": events, "returns": returns, "shipments": shipments, "cs_tickets": tk,
        "campaigns": campaigns, "marketing_touches": touches, "inventory_snapshots": inv,
        "experiment_assignments": exp,
    }
    if plan["stop_first"] is not None:
        # planted stopped source: its files of the last days never land, so the rows in them do not exist
        src = inc.STOPPED_SOURCE
        W.tables[src] = W.tables[src].filter(pl.col("_day") < plan["stop_first"])
    W.incidents = plan["truth"]
    W.planted = dict(PARAMS)
    W.planted.update({
        "experiment_id": EXPERIMENT_ID, "experiment_start_day_index": int(exp_day),
        "experiment_start_date": clock.date(exp_day).isoformat(),
        "persons": int(P), "persons_with_second_user": int(second.sum()),
        "persons_without_phone": int((~has_phone).sum()),
        "mean_lambda_per_day": float(lam.mean()), "mean_dropout_p": float(pdrop.mean()),
        "favourite_category_weights": dict(zip(CATS, FAV_CAT_W.tolist())),
        "primary_channel_weights": dict(zip(CHANNELS, CHANNEL_W.tolist())),
        "affinity_orders": int(aff_hit.sum()),
        "big_promotion_campaign_ids": [f"C{i + 1:03d}" for i in np.nonzero(camp_big)[0]],
        "slow_mover_skus": [str(sku_ids[i]) for i in slow_skus],
        "deep_stock_sku": deep_stock_sku,
        "experiments_expected": experiments_expected,
        "experiment_second_accounts": int(len(ea2_user)),
        "experiment_second_accounts_other_arm": int(second_arms.sum()),
    })
    return W


def _expected_experiment_lift(clock, ea_user, ea_ts, assigned_day, alive_at_assign, base_rate, day_mult, boost,
                              treated_by_experiment: dict) -> dict:
    """Expected 30-day conversion of the assigned users with and without the treatment, from the
    simulation's own rates (no draws): a user alive at assignment converts unless no valid order comes
    on any of the 30 days after it, P = 1 - exp(-(1 - cancel_p) * sum of daily rates). Dropping out only
    follows a purchase, so it cannot stop a first conversion. Approximate (the assignment day itself
    and the partial 30th day are left out); only users observed the full 30 days."""
    days = clock.days
    window_end = clock.end
    complete = ea_ts + 30 * DAY <= window_end
    p0, p1 = [], []
    keep = np.nonzero(complete)[0]
    for k in keep:
        i = ea_user[k]
        a = assigned_day[i]
        d = np.arange(a + 1, min(a + 31, days))
        r = float((base_rate[i] * day_mult[d] * boost[d, i]).sum()) * (1 - PARAMS["cancel_p"])
        alive = float(alive_at_assign[i])
        p0.append(alive * -np.expm1(-r))
        p1.append(alive * -np.expm1(-r * PARAMS["experiment_factor"]))
    p0, p1 = np.array(p0), np.array(p1)
    if len(keep) == 0:
        return {exp_id: {"users_complete": 0} for exp_id in treated_by_experiment}
    pop_c, pop_t = float(p0.mean()), float(p1.mean())
    out = {}
    for exp_id, treated in treated_by_experiment.items():
        t = np.asarray(treated)[keep]
        if exp_id == EXPERIMENT_ID:
            # population effect: everyone treated vs everyone not, on the same users
            rel, ab = pop_t / pop_c - 1, pop_t - pop_c
            arm_t = float(p1[t].mean()) if t.any() else None
            arm_c = float(p0[~t].mean()) if (~t).any() else None
        else:
            # an A/A split holds the same mix of the other experiment's arms on both sides: no effect
            rel, ab = 0.0, 0.0
            mixed = np.where(np.asarray(treated_by_experiment[EXPERIMENT_ID])[keep], p1, p0)
            arm_t = float(mixed[t].mean()) if t.any() else None
            arm_c = float(mixed[~t].mean()) if (~t).any() else None
        out[exp_id] = {"users_complete": int(len(keep)), "expected_rate_treatment_arm": arm_t,
                       "expected_rate_control_arm": arm_c, "expected_relative_lift": float(rel),
                       "expected_absolute_lift": float(ab)}
    return out


def _make_events(rng, clock, W, *, users_arrays, orders_arrays, visits, assigned_day, sku_cat, sku_ids,
                 sku_launch, active_camp, spike_first):
    ua, oa = users_arrays, orders_arrays
    user_ids, u_person, u_primary, u_reg_ts = ua["user_ids"], ua["u_person"], ua["u_primary"], ua["u_reg_ts"]
    u_track, u_anonweb, u_platform, fav = ua["u_track"], ua["u_anonweb"], ua["u_platform"], ua["fav"]
    U = len(user_ids)
    EN = ("app_open", "page_view", "search", "product_view", "add_to_cart", "checkout_start",
          "payment_submit", "payment_success", "coupon_click", "content_view", "live_view", "share", "login")
    APP_OPEN, PAGE, SEARCH, PV, ATC, CO, SUB, SUCC, COUPON, CONTENT, LIVE, SHARE, LOGIN = range(13)
    ENTRY = np.array([PAGE, SEARCH, CONTENT, LIVE, COUPON, PAGE])
    ENTRY_P = np.array([0.45, 0.25, 0.1, 0.05, 0.05, 0.10])
    TRAIL = np.array([PAGE, CONTENT, SHARE, SEARCH])
    is_app = u_platform <= 1
    # anonymous ids: one device per user (tracked users and anonymous web browsers)
    anon_of_user = np.array([f"A{300000001 + i}" for i in range(U)], dtype=object)

    parts = []  # dicts of arrays: s_(session-level) and e_(event-level)

    def gaps(k):
        return (rng.exponential(35.0, k) + 3).astype(np.int64)

    # --- registration sessions (first session of tracked users: anonymous until login)
    ru = np.nonzero(u_track)[0]
    S = len(ru)
    k_anon = rng.integers(1, 4, S)
    k_after = rng.integers(0, 4, S)
    cnt = k_anon + 1 + k_after
    own, pos = _expand(cnt)
    code = np.where(pos < k_anon[own], rng.choice(ENTRY, size=len(own), p=ENTRY_P), PAGE)
    code = np.where((pos == 0) & is_app[ru[own]], APP_OPEN, code)
    code = np.where(pos == k_anon[own], LOGIN, code)
    after = pos > k_anon[own]
    code = np.where(after, np.where(rng.random(len(own)) < 0.5, PV, PAGE), code)
    g = gaps(len(own))
    g[pos == 0] = 0
    off = np.cumsum(g)
    off = off - np.repeat(off[np.cumsum(cnt) - cnt], cnt)
    login_off = off[np.cumsum(cnt) - cnt + k_anon]
    s_start = u_reg_ts[ru] - login_off
    ts = np.maximum(s_start[own] + off, clock.t0)
    ev_user = np.where(pos >= k_anon[own], ru[own], -1)
    parts.append(dict(kind=0, s_user=ru, s_start=s_start, own=own, pos=pos, code=code, ts=ts,
                      ev_user=ev_user, order=np.full(len(own), -1)))

    # --- browse sessions
    vu, vd = visits
    S = len(vu)
    v_start = clock.t0 + vd * DAY + _tod(rng, S)
    anon_only = ~u_track[vu]
    k_e = 1 + np.minimum(rng.poisson(1.1, S), 3)
    reach_pv = rng.random(S) < 0.72
    n_pv = np.where(reach_pv, 1 + np.minimum(rng.poisson(1.5, S), 5), 0)
    atc = reach_pv & (rng.random(S) < 0.33)
    co = atc & (rng.random(S) < 0.55)
    n_purchase_sessions = int(((oa["paid"] >= 0) | oa["cancelled"]).__and__(u_track[oa["o_user"]]).sum())
    target_sub = PARAMS["payment_submit_dropoff_share"] / (1 - PARAMS["payment_submit_dropoff_share"]) \
        * n_purchase_sessions - int((oa["cancelled"] & u_track[oa["o_user"]]).sum())
    q = min(1.0, max(target_sub, 0) / max(int(co.sum()), 1))
    u_sub = rng.random(S)
    sub = co & (u_sub < q)
    if spike_first is not None:
        atc, co, sub = _plant_payment_failures(clock, spike_first, u_platform, vu, vd, reach_pv, u_sub,
                                               atc, co, sub, oa)
    n_f = atc.astype(int) + co + sub
    k_t = rng.integers(0, 4, S)
    cnt = k_e + n_pv + n_f + k_t
    own, pos = _expand(cnt)
    E = len(own)
    ke, npv, nf = k_e[own], n_pv[own], n_f[own]
    step = pos - ke - npv
    code = np.select(
        [pos < ke, pos < ke + npv, step < nf],
        [rng.choice(ENTRY, size=E, p=ENTRY_P), np.full(E, PV),
         np.array([ATC, CO, SUB])[np.clip(step, 0, 2)]],
        TRAIL[rng.integers(0, len(TRAIL), E)])
    code = np.where((pos == 0) & ~anon_only[own] & is_app[vu[own]], APP_OPEN, code)
    g = gaps(E)
    g[pos == 0] = 0
    off = np.cumsum(g)
    off = off - np.repeat(off[np.cumsum(cnt) - cnt], cnt)
    ts = v_start[own] + off
    # a few sessions log add_to_cart before the product_view preceding it
    swap_s = atc & (rng.random(S) < 0.03)
    atc_idx = (np.cumsum(cnt) - cnt + k_e + n_pv)[swap_s]
    t_a = ts[atc_idx].copy()
    ts[atc_idx] = ts[atc_idx - 1]
    ts[atc_idx - 1] = t_a
    ev_user = np.where(anon_only[own], -1, vu[own])
    parts.append(dict(kind=1, s_user=vu, s_start=v_start, own=own, pos=pos, code=code, ts=ts,
                      ev_user=ev_user, order=np.full(E, -1)))

    # experiment assignments: first visit session on the assigned day (primary users)
    P = len(assigned_day)
    a_day = np.where(vu < P, assigned_day[np.minimum(vu, P - 1)], -1)
    m = (vu < P) & (a_day >= 0) & (vd == a_day)
    ea_user = vu[m]
    ea_ts = v_start[m] + 1
    # a person's second (tracked) account is assigned too, on its first visit from the person's
    # assignment day on, by its own account id: a person with accounts in two arms, as happens when a
    # test randomises accounts (no draws: the visits are already made)
    person_day = assigned_day[u_person[vu]]
    m2 = (vu >= P) & u_track[vu] & (person_day >= 0) & (vd >= person_day)
    first = np.unique(vu[m2], return_index=True)[1]
    ea2_user = vu[m2][first]
    ea2_ts = v_start[m2][first] + 1

    # --- purchase sessions (tracked users' orders)
    o_user, o_ts, paid, cancelled = oa["o_user"], oa["o_ts"], oa["paid"], oa["cancelled"]
    po = np.nonzero(u_track[o_user] & ((paid >= 0) | cancelled))[0]
    S = len(po)
    k_e = 1 + np.minimum(rng.poisson(0.6, S), 2)
    n_pv = 1 + np.minimum(rng.poisson(1.0, S), 3)
    succ = (paid[po] >= 0) & (rng.random(S) >= PARAMS["payment_success_missing_p"])
    cnt = k_e + n_pv + 3 + succ
    own, pos = _expand(cnt)
    E = len(own)
    ke, npv = k_e[own], n_pv[own]
    step = pos - ke - npv
    code = np.select([pos < ke, pos < ke + npv], [rng.choice(ENTRY, size=E, p=ENTRY_P), np.full(E, PV)],
                     np.array([ATC, CO, SUB, SUCC])[np.clip(step, 0, 3)])
    code = np.where((pos == 0) & is_app[o_user[po][own]], APP_OPEN, code)
    g = gaps(E)
    g[pos == 0] = 0
    off = np.cumsum(g)
    off = off - np.repeat(off[np.cumsum(cnt) - cnt], cnt)
    co_off = off[np.cumsum(cnt) - cnt + k_e + n_pv + 1]
    p_start = o_ts[po] - rng.integers(5, 90, S) - co_off
    ts = p_start[own] + off
    oo = po[own]
    sub_ts = np.where(paid[oo] >= 0, paid[oo] - np.minimum(rng.integers(1, 20, E), paid[oo] - o_ts[oo]),
                      o_ts[oo] + rng.integers(5, 60, E))
    ts = np.where(step == 2, sub_ts, ts)
    ts = np.where(step == 3, paid[oo] + rng.integers(0, 301, E), ts)
    ts = np.maximum(ts, u_reg_ts[o_user[oo]])  # never before the user registered (login session)
    order_col = np.where(step >= 2, oo, -1)
    parts.append(dict(kind=2, s_user=o_user[po], s_start=p_start, own=own, pos=pos, code=code, ts=ts,
                      ev_user=o_user[oo], order=order_col))

    # --- assemble
    s_user = np.concatenate([p["s_user"] for p in parts])
    s_start = np.concatenate([p["s_start"] for p in parts])
    s_kind = np.concatenate([np.full(len(p["s_user"]), p["kind"]) for p in parts])
    s_base = np.cumsum([0] + [len(p["s_user"]) for p in parts])[:-1]
    own = np.concatenate([p["own"] + b for p, b in zip(parts, s_base)])
    pos = np.concatenate([p["pos"] for p in parts])
    code = np.concatenate([p["code"] for p in parts])
    ts = np.concatenate([p["ts"] for p in parts]).astype(np.int64)
    ev_user = np.concatenate([p["ev_user"] for p in parts])
    ev_order = np.concatenate([p["order"] for p in parts])
    s_rank = _idx_by_time(s_start, s_kind)
    srt = np.lexsort((pos, s_rank[own]))
    own, pos, code, ts, ev_user, ev_order = (a[srt] for a in (own, pos, code, ts, ev_user, ev_order))
    keep = (ts >= clock.t0) & (ts < clock.end)
    own, pos, code, ts, ev_user, ev_order = (a[keep] for a in (own, pos, code, ts, ev_user, ev_order))
    E = len(own)
    su = s_user[own]
    plat = u_platform[su]
    # sku on product views / carts: favourite category mostly; cart = previous product view
    n_sku = len(sku_cat)
    base_skus = np.nonzero(sku_launch == 0)[0]
    cat_pool = [base_skus[sku_cat[base_skus] == c] for c in range(len(CATS))]
    ev_cat = np.where(rng.random(E) < 0.7, fav[u_person[su]], rng.integers(0, len(CATS), E))
    ev_sku = np.full(E, -1)
    for c in range(len(CATS)):
        mm = ev_cat == c
        ev_sku[mm] = cat_pool[c][rng.integers(0, len(cat_pool[c]), int(mm.sum()))]
    ev_sku = np.where((code == PV) | (code == ATC) | (code == SHARE), ev_sku, -1)
    # the cart shows the product viewed just before; in purchase sessions that is the order's first sku
    s_order = np.concatenate([np.full(len(p["s_user"]), -1) if p["kind"] != 2 else po for p in parts])
    atc_i = np.nonzero(code == ATC)[0]
    atc_i = atc_i[(atc_i > 0)]
    atc_i = atc_i[(code[atc_i - 1] == PV) & (own[atc_i - 1] == own[atc_i])]
    pur = s_order[own[atc_i]] >= 0
    ev_sku[atc_i[pur]] = oa["first_sku"][s_order[own[atc_i[pur]]]]
    ev_sku[atc_i[pur] - 1] = ev_sku[atc_i[pur]]
    ev_sku[atc_i[~pur]] = ev_sku[atc_i[~pur] - 1]
    # order on payment events
    session_ids = np.array([f"S{1000000001 + k}" for k in range(len(s_user))], dtype=object)
    day = clock.day_of(ts)
    camp = np.where((code == COUPON) | (code == LIVE), active_camp[np.clip(day, 0, clock.days - 1)], -1)
    PAGES = np.array(["home", "home", "search", "pdp", "pdp", "checkout", "checkout", "pay_result", "activity",
                      "content", "live", "pdp", "login"], dtype=object)
    PV_PAGES = np.array(["home", "category", "activity", "member"], dtype=object)
    page = PAGES[code]
    page = np.where(code == PAGE, PV_PAGES[rng.integers(0, 4, E)], page)
    # properties (JSON text) for some event types
    KW = np.array(["维生素C", "蛋白粉", "瑜伽裤", "保温杯", "防晒霜", "燕麦", "鱼油", "益生菌"], dtype=object)
    SRC = np.array(["recommend", "search", "banner", "live"], dtype=object)
    PAY = np.array(["wechat", "alipay", "unionpay"], dtype=object)
    prop_kind = np.select([code == SEARCH, code == PV, code == SUB], [1, 2, 3], 0)
    pk_idx = rng.integers(0, 8, E)
    # late landing per session
    late = np.where(rng.random(len(s_user)) < PARAMS["late_event_session_p"], rng.integers(1, 4, len(s_user)), 0)
    fday = np.minimum(day + late[own], clock.days - 1)
    anon = anon_of_user[su]
    evs = pl.DataFrame({
        "event_id": pl.int_range(1000000001, 1000000001 + E, eager=True).cast(pl.Utf8),
        "event_ts": ts,
        "anonymous_id": anon.tolist(),
        "_u": ev_user,
        "session_id": session_ids[s_rank[own]].tolist(),
        "_code": code,
        "_plat": plat,
        "_sku": ev_sku,
        "_order": ev_order,
        "page": page.tolist(),
        "_camp": camp,
        "_pk": prop_kind,
        "_pi": pk_idx,
        "_day": fday.astype(np.int64),
        "_evday": day.astype(np.int64),
    })
    uid_s = pl.Series(user_ids.tolist(), dtype=pl.Utf8)
    evs = evs.with_columns(
        ("E" + pl.col("event_id")).alias("event_id"),
        pl.when(pl.col("_u") >= 0).then(pl.col("_u")).otherwise(None).alias("_u"),
        pl.when(pl.col("_sku") >= 0).then(pl.col("_sku")).otherwise(None).alias("_sku"),
        pl.when(pl.col("_order") >= 0).then(pl.col("_order")).otherwise(None).alias("_order"),
        pl.when(pl.col("_camp") >= 0).then(pl.col("_camp")).otherwise(None).alias("_camp"),
    )
    # gather with nulls
    evs = evs.with_columns(
        pl.Series("user_id", _gather_nullable(user_ids, evs["_u"])),
        pl.Series("event_name", np.array(EN, dtype=object)[code].tolist()),
        pl.Series("platform", np.array(PLATFORMS, dtype=object)[plat].tolist()),
        pl.Series("sku_id", _gather_nullable(sku_ids, evs["_sku"])),
        pl.Series("order_id", _gather_nullable(oa["order_ids"], evs["_order"])),
        pl.Series("campaign_id", _gather_nullable(np.array([f"C{i + 1:03d}" for i in range(int(active_camp.max(initial=-1)) + 1)], dtype=object), evs["_camp"])),
        pl.when(pl.col("_pk") == 1).then(pl.lit('{"keyword":"') + pl.Series(KW[pk_idx].tolist()) + pl.lit('"}'))
        .when(pl.col("_pk") == 2).then(pl.lit('{"source":"') + pl.Series(SRC[pk_idx % 4].tolist()) + pl.lit('"}'))
        .when(pl.col("_pk") == 3).then(pl.lit('{"pay_method":"') + pl.Series(PAY[pk_idx % 3].tolist()) + pl.lit('"}'))
        .otherwise(None).alias("properties"),
    )
    evs = evs.select(["event_id", "event_ts", "anonymous_id", "user_id", "session_id", "event_name", "platform",
                      "sku_id", "order_id", "page", "campaign_id", "properties", "_day", "_evday"])
    evs = evs.sort(["_day", "_evday", "event_ts", "event_id"], maintain_order=True).drop("_evday")
    return evs, (ea_user, ea_ts, ea2_user, ea2_ts)


def _plant_payment_failures(clock, spike_first, u_platform, vu, vd, reach_pv, u_sub, atc, co, sub, oa):
    """The payment-failure spike: on each of its days, enough browse sessions of the platform that saw
    a product go through checkout and submit a payment that fails to bring the platform's success
    rate after submit down to SPIKE_SUCCESS_RATE (failures = successes x (1 - rate) / rate)."""
    plat = PLATFORMS.index(inc.SPIKE_PLATFORM)
    o_user, o_ts, paid, cancelled = oa["o_user"], oa["o_ts"], oa["paid"], oa["cancelled"]
    o_plat = u_platform[o_user] == plat
    o_day = clock.day_of(o_ts)
    atc, co, sub = atc.copy(), co.copy(), sub.copy()
    for d in range(spike_first, spike_first + inc.SPIKE_DAYS):
        on_day = o_plat & (o_day == d)
        successes = int((on_day & (paid >= 0)).sum()) * (1 - PARAMS["payment_success_missing_p"])
        failed_orders = int((on_day & cancelled).sum())
        wanted = successes * (1 - inc.SPIKE_SUCCESS_RATE) / inc.SPIKE_SUCCESS_RATE - failed_orders
        cand = (u_platform[vu] == plat) & (vd == d) & reach_pv
        p = min(1.0, max(wanted, 0.0) / max(int(cand.sum()), 1))
        pick = cand & (u_sub < p)
        atc |= pick
        co |= pick
        sub = np.where(cand, pick, sub)
    return atc, co, sub


def _gather_nullable(values: np.ndarray, idx: pl.Series) -> list:
    arr = idx.fill_null(-1).to_numpy()
    out = np.full(len(arr), None, dtype=object)
    m = arr >= 0
    out[m] = values[arr[m]]
    return out.tolist()


def _make_inventory(rng, clock, sku_ids, sku_launch, l_sku, l_qty, l_day, l_wh, l_cancel):
    n_sku = len(sku_ids)
    days = clock.days
    NW = len(WAREHOUSES)
    sales = np.zeros((days, n_sku, NW), np.int64)
    ok = ~l_cancel & (l_day < days)
    np.add.at(sales, (l_day[ok], l_sku[ok], l_wh[ok]), l_qty[ok])
    demand = sales.sum(axis=0) / max(days, 1) + 0.2  # per sku x wh per day
    on_hand = np.rint(demand * rng.uniform(20, 45, demand.shape) + 30).astype(np.int64)
    # planted overstock: the best seller starts with years of stock (a bulk buy). It sells every day, so
    # it is no slow mover, but its 售罄率 (units / (units + stock)) stays far under 5% every month
    deep = int(np.argmax(sales.sum(axis=(0, 2))))
    on_hand[deep] = np.rint(demand[deep] * DEEP_STOCK_DAYS + 30).astype(np.int64)
    safety = np.rint(demand * 7 + 10).astype(np.int64)
    has_safety = rng.random(n_sku) >= 0.1
    transit = np.zeros_like(on_hand)
    arrive = np.full(on_hand.shape, -1)
    rows_d, rows_s, rows_w, rows_oh, rows_it = [], [], [], [], []
    sku_grid, wh_grid = np.meshgrid(np.arange(n_sku), np.arange(NW), indexing="ij")
    for d in range(days):
        arrived = arrive == d
        on_hand = on_hand + np.where(arrived, transit, 0)
        transit = np.where(arrived, 0, transit)
        arrive = np.where(arrived, -1, arrive)
        on_hand = np.maximum(on_hand - sales[d], 0)
        need = (on_hand < safety + demand * 5) & (transit == 0)
        qty = np.rint(demand * 30 + 20).astype(np.int64)
        transit = np.where(need, qty, transit)
        arrive = np.where(need, d + rng.integers(3, 8, on_hand.shape), arrive)
        live = (sku_launch <= d)[:, None] & np.ones((1, NW), bool)
        rows_d.append(np.full(int(live.sum()), d)); rows_s.append(sku_grid[live]); rows_w.append(wh_grid[live])
        rows_oh.append(on_hand[live]); rows_it.append(transit[live])
    d = np.concatenate(rows_d); s = np.concatenate(rows_s); w = np.concatenate(rows_w)
    dates = np.array([clock.date(i).isoformat() for i in range(days)], dtype=object)
    return pl.DataFrame({
        "snapshot_date": dates[d].tolist(),
        "sku_id": sku_ids[s].tolist(),
        "warehouse_id": np.array(WAREHOUSES, dtype=object)[w].tolist(),
        "on_hand": np.concatenate(rows_oh).astype(np.int64),
        "in_transit": np.concatenate(rows_it).astype(np.int64),
        "safety_stock": pl.Series(np.where(has_safety[s], safety[s, w], -1).astype(np.int64)),
        "_day": d.astype(np.int64),
    }).with_columns(pl.when(pl.col("safety_stock") < 0).then(None).otherwise(pl.col("safety_stock"))
                    .alias("safety_stock")), str(sku_ids[deep])
