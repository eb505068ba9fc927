"""The generator's vocabulary: catalogue and channel constants, the planted parameters (PARAMS),
the business-day Clock, the World it fills, and the small draw helpers every part shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

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
    # membership follows buying: a person whose purchase rate is above the median joins and climbs levels
    # more often (level 0 = not a member), so members repurchase more, by selection, not by a planted uplift
    "member_level_p_above_median_rate": [0.20, 0.25, 0.22, 0.17, 0.11, 0.05],
    "member_level_p_below_median_rate": [0.50, 0.25, 0.14, 0.07, 0.03, 0.01],
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
