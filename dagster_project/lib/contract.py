"""The raw data contract (shared/spec/raw_contract.md v1) as data.

One place describes every source: columns, types, required fields, keys, enums, ranges and the
one cross-source key checked at ingest, the enums with their labels and each source's freshness
SLA. The loader, the generator, the raw DDL and the tests read it; lib/contract_render.py renders it
into the dbt sources, dbt's contract_enum(), the enum labels seed and the raw suites' critical rules
(docs/quality.md, "The contract, rendered"), so the contract cannot drift between them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

# Column kinds. Raw tables store: str/json -> VARCHAR, int -> BIGINT, amount -> DECIMAL(18,2),
# ts -> TIMESTAMP holding UTC (a value without offset is read as business local time), date -> DATE.
STR, INT, AMOUNT, TS, DATE, JSON = "str", "int", "amount", "ts", "date", "json"

DUCKDB_TYPES = {
    STR: "VARCHAR",
    JSON: "VARCHAR",
    INT: "BIGINT",
    AMOUNT: "DECIMAL(18,2)",
    TS: "TIMESTAMP",
    DATE: "DATE",
}

CHANNELS = (
    "app", "mini_program", "web", "taobao", "tmall", "jd", "douyin",
    "pinduoduo", "youzan", "shopify", "offline",
)
ORDER_STATUSES = ("created", "paid", "shipped", "delivered", "cancelled", "refunded")
EVENT_NAMES = (
    "app_open", "page_view", "search", "product_view", "add_to_cart", "checkout_start",
    "payment_submit", "payment_success", "coupon_click", "content_view", "live_view", "share",
    "login",
)
PLATFORMS = ("ios", "android", "mini_program", "web")
RETURN_STATUSES = ("requested", "approved", "rejected", "completed")
TICKET_CHANNELS = ("bot", "human")
CAMPAIGN_TYPES = ("discount", "full_reduction", "gift", "coupon", "kol", "live", "bundle")
TOUCH_CHANNELS = ("sms", "push", "wechat", "email")
MEMBER_EVENT_TYPES = ("join", "level_up", "level_down", "points_earned", "points_redeemed", "benefit_used")
PRIVATE_DOMAIN_CHANNELS = ("wecom_contact", "wecom_group", "moments")
PRIVATE_DOMAIN_EVENT_TYPES = ("contact_added", "contact_lost", "group_joined", "group_left", "message_sent",
                              "message_read", "link_clicked", "member_posted")

# Every enum of the contract by name, and the labels readers see (zh, en). The name is what the
# rendered files call it: dbt's contract_enum('<name>'), the enum column of dbt/seeds/enum_labels.csv
# that Superset's label columns read. To change a value, edit its tuple above and its label here,
# then `make generate-contract` (tests/test_contract_render.py fails while a rendered file is stale).
ENUMS: dict[str, tuple[str, ...]] = {
    "channel": CHANNELS,
    "order_status": ORDER_STATUSES,
    "event_name": EVENT_NAMES,
    "platform": PLATFORMS,
    "return_status": RETURN_STATUSES,
    "ticket_channel": TICKET_CHANNELS,
    "campaign_type": CAMPAIGN_TYPES,
    "touch_channel": TOUCH_CHANNELS,
    "member_event_type": MEMBER_EVENT_TYPES,
    "private_domain_channel": PRIVATE_DOMAIN_CHANNELS,
    "private_domain_event_type": PRIVATE_DOMAIN_EVENT_TYPES,
}
ENUM_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "channel": {
        "app": ("自有App", "Own app"), "mini_program": ("小程序", "Mini program"), "web": ("官网", "Web"),
        "taobao": ("淘宝", "Taobao"), "tmall": ("天猫", "Tmall"), "jd": ("京东", "JD"),
        "douyin": ("抖音", "Douyin"), "pinduoduo": ("拼多多", "Pinduoduo"), "youzan": ("有赞", "Youzan"),
        "shopify": ("Shopify", "Shopify"), "offline": ("线下", "Offline"),
    },
    "order_status": {
        "created": ("已下单", "Created"), "paid": ("已支付", "Paid"), "shipped": ("已发货", "Shipped"),
        "delivered": ("已签收", "Delivered"), "cancelled": ("已取消", "Cancelled"),
        "refunded": ("已退款", "Refunded"),
    },
    "event_name": {
        "app_open": ("打开应用", "App open"), "page_view": ("浏览页面", "Page view"),
        "search": ("搜索", "Search"), "product_view": ("浏览商品", "Product view"),
        "add_to_cart": ("加购", "Add to cart"), "checkout_start": ("下单", "Checkout start"),
        "payment_submit": ("提交支付", "Payment submit"), "payment_success": ("支付成功", "Payment success"),
        "coupon_click": ("点击优惠券", "Coupon click"), "content_view": ("浏览内容", "Content view"),
        "live_view": ("观看直播", "Live view"), "share": ("分享", "Share"), "login": ("登录", "Login"),
    },
    "platform": {
        "ios": ("iOS", "iOS"), "android": ("安卓", "Android"), "mini_program": ("小程序", "Mini program"),
        "web": ("网页", "Web"),
    },
    "return_status": {
        "requested": ("已申请", "Requested"), "approved": ("已同意", "Approved"),
        "rejected": ("已拒绝", "Rejected"), "completed": ("已完成", "Completed"),
    },
    "ticket_channel": {"bot": ("机器人", "Bot"), "human": ("人工", "Human")},
    "campaign_type": {
        "discount": ("折扣", "Discount"), "full_reduction": ("满减", "Spend & save"), "gift": ("赠品", "Gift"),
        "coupon": ("优惠券", "Coupon"), "kol": ("达人", "KOL"), "live": ("直播", "Live stream"),
        "bundle": ("组合", "Bundle"),
    },
    "touch_channel": {"sms": ("短信", "SMS"), "push": ("推送", "Push"), "wechat": ("微信", "WeChat"),
                      "email": ("邮件", "Email")},
    "member_event_type": {
        "join": ("入会", "Join"), "level_up": ("升级", "Level up"), "level_down": ("降级", "Level down"),
        "points_earned": ("获得积分", "Points earned"), "points_redeemed": ("使用积分", "Points redeemed"),
        "benefit_used": ("使用权益", "Benefit used"),
    },
    "private_domain_channel": {
        "wecom_contact": ("企微好友", "WeCom contact"), "wecom_group": ("社群", "WeCom group"),
        "moments": ("朋友圈", "Moments"),
    },
    "private_domain_event_type": {
        "contact_added": ("添加好友", "Contact added"), "contact_lost": ("好友流失", "Contact lost"),
        "group_joined": ("入群", "Group joined"), "group_left": ("退群", "Group left"),
        "message_sent": ("消息发送", "Message sent"), "message_read": ("消息已读", "Message read"),
        "link_clicked": ("链接点击", "Link clicked"), "member_posted": ("成员发言", "Member posted"),
    },
}

# Freshness SLA: minutes from a source's newest data (Source.data_time_column) to now. A source
# without its own (Source.sla_minutes) gets a day. EW_SLA_<SOURCE>_MIN overrides, see sla_minutes().
DEFAULT_SLA_MINUTES = 24 * 60

# The source systems, as dbt groups the raw tables (one sources file per system).
SYSTEMS: dict[str, str] = {
    "crm": "Customer relationship management: registered users and their membership (levels, points, benefits).",
    "cs": "Customer service desk (bot and human agents).",
    "logistics": "Warehouse and delivery systems: shipments and daily stock snapshots.",
    "marketing": "Marketing platform: campaigns, message touches and A/B experiment assignments.",
    "oms": "Order management system: orders, their lines, returns and the product catalogue.",
    "tracking": "App and mini-program behaviour tracking (client events).",
}

# Bounds that downstream arithmetic needs, checked at ingest (out_of_range): far beyond any real
# row, so none is refused, and near enough that no row can make a later step fail. dbt casts
# quantity x unit_price to DECIMAL(18,2) (under 10^16: 10^6 x 10^9 = 10^15) and sums amounts into
# DECIMAL(18,2) marts; integers are BIGINT and are summed and added (on_hand + in_transit), so one
# value near 2^63 overflowed fct_orders and stopped every run.
MAX_AMOUNT = 1_000_000_000  # yuan in one value (10 亿)
MAX_QUANTITY = 1_000_000    # units on one order line or one return
MAX_INT = 1_000_000_000     # any other integer without a range of its own (line_no, stock)
# Timestamps and dates, stored as UTC, must be what Python's datetime holds (years 1..9999): GE's
# samples, Superset and every client fetch them as datetime, and DuckDB reads year 0000 as 1 BC.
TS_MIN, TS_MAX = "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999"

# Lineage columns every raw table carries after the contract columns.
LINEAGE_COLUMNS = (
    ("_file", "VARCHAR"),        # file name as landed
    ("_file_date", "DATE"),      # the <YYYYMMDD> in the file name: orders "newest status wins" by it
    ("_row", "BIGINT"),          # 1-based data row number in the file
    ("_load_id", "VARCHAR"),
    ("_loaded_at", "TIMESTAMP"),  # UTC
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = False
    enum: tuple[str, ...] | None = None
    min_value: float | None = None  # inclusive
    max_value: float | None = None  # inclusive
    pattern: str | None = None      # regex the text must match (after trimming)
    why: str | None = None          # why the rule matters, where it is not obvious (GE's meta.why)


@dataclass(frozen=True)
class Source:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # (column, parent source, parent column): the value must exist in the parent raw table
    # (loaded before, or in the same run: the parent asset is materialized first).
    foreign_keys: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)
    system: str = ""        # SYSTEMS key: the dbt source it belongs to
    description: str = ""
    sla_minutes: int = DEFAULT_SLA_MINUTES
    # Whether the source system exports every day. False for sources that only have rows when someone
    # acts (a campaign is set up, a message is sent, an experiment starts, the catalogue changes): a
    # day without their file is normal, so the delivery-deadline notice never expects one.
    delivers_daily: bool = True

    @property
    def data_time_column(self) -> str:
        """The column that says how recent the data is: the first required timestamp, else the first
        required date, else the load time (products and order lines carry no time of their own)."""
        for kinds in ((TS,), (DATE,)):
            for c in self.columns:
                if c.required and c.kind in kinds:
                    return c.name
        return "_loaded_at"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name, kind=STR, required=False, **kw) -> Column:
    return Column(name, kind, required, **kw)


def _amount(name, required=False) -> Column:
    # Amounts are yuan with up to 2 decimals and never negative.
    return Column(name, AMOUNT, required, min_value=0, max_value=MAX_AMOUNT)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "users",
            (
                _c("user_id", required=True),
                _c("registered_at", TS, True),
                _c("channel", required=True, enum=CHANNELS),
                _c("phone_hash", pattern=r"^[0-9a-f]{64}$",
                   why="phone_hash is a lowercase sha256 (64 hex): anything else (raw phone number, "
                       "uppercase, md5) never matches another channel's hash and silently splits customers"),
                _c("province"),
                _c("city"),
                _c("member_level", INT, min_value=0, max_value=5),
                _c("birth_year", INT, min_value=1900, max_value=2030),
            ),
            key=("user_id",),
            system="crm",
            description=("Registered user accounts, one per channel account (accounts of one person share "
                         "phone_hash)."),
        ),
        Source(
            "products",
            (
                _c("sku_id", required=True),
                _c("spu_id"),
                _c("product_name", required=True),
                _c("category_l1", required=True),
                _c("category_l2"),
                _c("brand"),
                _amount("list_price", True),
                _amount("cost_price"),
                _c("launched_at", TS),
                _c("delisted_at", TS),
            ),
            key=("sku_id",),
            system="oms",
            description="Product catalogue: one row per SKU.",
            delivers_daily=False,
        ),
        Source(
            "orders",
            (
                _c("order_id", required=True),
                _c("user_id", required=True),
                _c("channel", required=True, enum=CHANNELS),
                _c("order_ts", TS, True),
                _c("paid_ts", TS),
                _c("status", required=True, enum=ORDER_STATUSES),
                _amount("items_amount", True),
                _amount("discount_amount"),
                _amount("shipping_fee"),
                _amount("pay_amount", True),
                _c("coupon_id"),
                _c("campaign_id"),
                _c("province"),
                _c("city"),
            ),
            key=("order_id",),
            system="oms",
            description=("Orders as exported by the order system; an order is re-delivered each time its "
                         "status changes."),
            sla_minutes=15,
        ),
        Source(
            "order_items",
            (
                _c("order_id", required=True),
                _c("line_no", INT, True, min_value=1, max_value=MAX_INT),
                _c("sku_id", required=True),
                _c("quantity", INT, True, min_value=1, max_value=MAX_QUANTITY),
                _amount("unit_price", True),
                _amount("discount_amount"),
            ),
            key=("order_id", "line_no"),
            foreign_keys=(("order_id", "orders", "order_id"),),
            system="oms",
            description="Order lines: one row per SKU line of an order.",
        ),
        Source(
            "events",
            (
                _c("event_id", required=True),
                _c("event_ts", TS, True),
                _c("anonymous_id", required=True),
                _c("user_id"),
                _c("session_id", required=True),
                _c("event_name", required=True, enum=EVENT_NAMES),
                _c("platform", required=True, enum=PLATFORMS),
                _c("sku_id"),
                _c("order_id"),
                _c("page"),
                _c("campaign_id"),
                _c("properties", JSON),
            ),
            key=("event_id",),
            system="tracking",
            description=("Client behaviour events from the app, mini-program and web; events may land up "
                         "to 3 days late."),
            sla_minutes=60,
        ),
        Source(
            "returns",
            (
                _c("return_id", required=True),
                _c("order_id", required=True),
                _c("sku_id"),
                _c("quantity", INT, min_value=1, max_value=MAX_QUANTITY),
                _amount("amount", True),
                _c("reason"),
                _c("requested_at", TS, True),
                _c("approved_at", TS),
                _c("completed_at", TS),
                _c("status", required=True, enum=RETURN_STATUSES),
            ),
            key=("return_id",),
            system="oms",
            description="Return and refund requests; a return is re-delivered each time its status changes.",
        ),
        Source(
            "shipments",
            (
                _c("shipment_id", required=True),
                _c("order_id", required=True),
                _c("carrier"),
                _c("warehouse_id"),
                _c("shipped_at", TS, True),
                _c("delivered_at", TS),
                _c("province"),
            ),
            key=("shipment_id",),
            system="logistics",
            description=("Parcels shipped for orders; a shipment row is sent again, now with "
                         "`delivered_at`, once the parcel arrives."),
        ),
        Source(
            "cs_tickets",
            (
                _c("ticket_id", required=True),
                _c("user_id"),
                _c("order_id"),
                _c("channel", required=True, enum=TICKET_CHANNELS),
                _c("category"),
                _c("created_at", TS, True),
                _c("first_response_at", TS),
                _c("resolved_at", TS),
                _c("csat", INT, min_value=1, max_value=5),
            ),
            key=("ticket_id",),
            system="cs",
            description="Customer service tickets.",
        ),
        Source(
            "campaigns",
            (
                _c("campaign_id", required=True),
                _c("name", required=True),
                _c("type", required=True, enum=CAMPAIGN_TYPES),
                _c("channel"),
                _c("start_at", TS, True),
                _c("end_at", TS, True),
                _amount("cost", True),
            ),
            key=("campaign_id",),
            system="marketing",
            description="Marketing campaigns.",
            delivers_daily=False,
        ),
        Source(
            "marketing_touches",
            (
                _c("touch_id", required=True),
                _c("campaign_id", required=True),
                _c("user_id", required=True),
                _c("channel", required=True, enum=TOUCH_CHANNELS),
                _c("sent_at", TS, True),
                _c("opened_at", TS),
                _c("clicked_at", TS),
            ),
            key=("touch_id",),
            system="marketing",
            description="Marketing messages sent to users (SMS, push, WeChat, email).",
            delivers_daily=False,
        ),
        Source(
            "inventory_snapshots",
            (
                _c("snapshot_date", DATE, True),
                _c("sku_id", required=True),
                _c("warehouse_id", required=True),
                _c("on_hand", INT, True, min_value=0, max_value=MAX_INT),
                _c("in_transit", INT, min_value=0, max_value=MAX_INT),
                _c("safety_stock", INT, min_value=0, max_value=MAX_INT),
            ),
            key=("snapshot_date", "sku_id", "warehouse_id"),
            system="logistics",
            description="Daily stock per SKU and warehouse.",
        ),
        Source(
            "experiment_assignments",
            (
                _c("experiment_id", required=True),
                _c("user_id", required=True),
                _c("variant", required=True),
                _c("assigned_at", TS, True),
            ),
            key=("experiment_id", "user_id"),
            system="marketing",
            description="A/B experiment assignments: one variant per user per experiment.",
            delivers_daily=False,
        ),
        Source(
            "member_events",
            (
                _c("event_id", required=True),
                _c("user_id", required=True),
                _c("event_ts", TS, True),
                _c("type", required=True, enum=MEMBER_EVENT_TYPES),
                _c("level", INT, min_value=0, max_value=5,
                   why="the member level after the event, on the users file's scale (0 = not a member, 1-5)"),
                _c("points", INT, min_value=0, max_value=MAX_INT,
                   why="points earned or redeemed by the event, never negative: the type says which way"),
                _c("order_id"),
            ),
            key=("event_id",),
            system="crm",
            description=("Membership events from the CRM: joining, level changes (level = the level after), "
                         "points earned (on a paid order, order_id) and redeemed, member benefits used."),
        ),
        Source(
            "ad_spend",
            (
                _c("date", DATE, True),
                _c("channel", required=True, enum=CHANNELS),
                _c("campaign_id",
                   why="empty for spend outside any campaign (brand, always-on); a key column, so one such row per "
                       "date and channel"),
                _amount("spend", True),
                _c("impressions", INT, min_value=0, max_value=MAX_INT),
                _c("clicks", INT, min_value=0, max_value=MAX_INT),
            ),
            key=("date", "channel", "campaign_id"),
            system="marketing",
            description=("Paid acquisition spend per day, sales channel and campaign (empty campaign_id: brand and "
                         "always-on spend), with the ads' impressions and clicks."),
        ),
        Source(
            "private_domain_events",
            (
                _c("event_id", required=True),
                _c("external_user_id", required=True,
                   why="WeCom's external contact id (external_userid): always known, unlike the shop account"),
                _c("user_id",
                   why="the shop account the contact is bound to; empty when WeCom knows only the external contact"),
                _c("event_ts", TS, True),
                _c("channel", required=True, enum=PRIVATE_DOMAIN_CHANNELS),
                _c("event_type", required=True, enum=PRIVATE_DOMAIN_EVENT_TYPES),
                _c("group_id"),
                _c("campaign_id"),
                _c("staff_id"),
                _c("sent_at", TS,
                   why="on message_read and link_clicked: when the message read or clicked was sent"),
            ),
            key=("event_id",),
            system="marketing",
            description=("Private-domain events exported daily from WeCom (企业微信): contacts added and lost (1v1), "
                         "customer groups joined and left (社群), the shop's messages to contacts, groups and "
                         "moments (朋友圈) per recipient with their reads and link clicks, and members' group posts."),
        ),
    )
}

SOURCE_NAMES: tuple[str, ...] = tuple(SOURCES)


def sla_minutes(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Freshness SLA per source in minutes: the contract's, EW_SLA_<SOURCE>_MIN overriding (read now,
    not at import, so a test or a deployment sets it in the environment)."""
    env = os.environ if env is None else env
    out = {}
    for name, src in SOURCES.items():
        var = f"EW_SLA_{name.upper()}_MIN"
        value = env.get(var) or src.sla_minutes
        try:
            out[name] = int(value)
        except ValueError:
            raise ValueError(f"{var} must be a whole number of minutes, got {value!r}") from None
        if out[name] <= 0:
            raise ValueError(f"{var} must be a whole number of minutes above 0, got {value!r}")
    return out


def sources_parents_first() -> list[str]:
    """Source names with each foreign key's parent before its child: the order a loader that runs
    the sources one by one must take (Dagster orders the raw assets by their deps itself)."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        for _, parent, _ in SOURCES[name].foreign_keys:
            visit(parent)
        if name not in ordered:
            ordered.append(name)

    for name in SOURCES:
        visit(name)
    return ordered

# Rule names used in raw.quarantine.rule, in the order they are checked: a row gets the first.
RULES = (
    "bad_encoding",      # bytes that are not valid in the file's encoding
    "malformed_row",     # wrong number of CSV fields, or a JSONL line that is not a JSON object
    "missing_required",  # a required column is empty
    "bad_type",          # the text does not parse as the column's type
    "bad_enum",          # a value outside the contract's list (unknown status, channel, ...)
    "bad_format",        # text that does not match the column's pattern (phone_hash)
    "negative_amount",   # an amount below zero
    "out_of_range",      # a value outside its range (member_level 0-5, quantity 1..10^6, amounts up to
                         # 10^9 yuan, timestamps in years 1..9999 UTC: MAX_* and TS_* above)
    "duplicate_key",     # the key appears earlier in the same file (the first one is kept)
    "unknown_key",       # a foreign key with no parent (order_items.order_id not in orders)
    "unreadable_file",   # the whole file cannot be read (corrupt, cut short or oversized gzip/Parquet, no
                         # header, a column twice in the header): one row, number 0
)


def raw_table_ddl(source: str, schema: str = "raw") -> str:
    """CREATE TABLE statement for raw.<source>: contract columns, then lineage columns."""
    src = SOURCES[source]
    cols = [f"    {c.name} {DUCKDB_TYPES[c.kind]}" for c in src.columns]
    cols += [f"    {name} {typ}" for name, typ in LINEAGE_COLUMNS]
    return f"create table if not exists {schema}.{source} (\n" + ",\n".join(cols) + "\n)"


QUARANTINE_DDL = """
create table if not exists raw.quarantine (
    source varchar,
    file_name varchar,
    row_number bigint,
    raw_text varchar,
    rule varchar,
    column_name varchar,
    reason varchar,
    load_id varchar,
    quarantined_at timestamp
)
"""

# The ingest's ledger, one row per version of a landed file. status: loaded (the current version of
# its name; an unreadable new file is loaded as its one quarantine row), superseded (replaced by a
# later version), refused (an unreadable redelivery: the loaded version of the name stays current),
# duplicate (the same content as a loaded file under another name: not loaded again).
# notes: what the file's header or keys said that a reader should know (absent or unknown columns).
FILES_DDL = """
create table if not exists raw._files (
    source varchar,
    file_name varchar,
    file_date date,
    content_hash varchar,
    load_id varchar,
    loaded_at timestamp,
    rows_landed bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    encoding varchar,
    status varchar,
    file_size bigint,
    file_mtime_ns bigint,
    notes varchar
)
"""
# Columns added to the ledger after its first version: ensure_raw_schema adds them to older files.
FILES_COLUMNS_ADDED = ("notes varchar",)
