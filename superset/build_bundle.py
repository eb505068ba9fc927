"""Generate the Superset dashboard bundle (Superset 6.1 native export format) and the dbt exposures.

    .venv/bin/python superset/build_bundle.py           # (re)write superset/bundle/ and _exposures.yml
    .venv/bin/python superset/build_bundle.py --check   # exit 1 if the checked-in files differ

The bundle is what `dagster_project.defs.serving.superset.provision` zips and POSTs to
/api/v1/assets/import/. Import overwrites by UUID, so every UUID here is uuid5 of a fixed
namespace and the object's name: re-importing updates objects in place and never duplicates them.

Dataset columns (names, types, descriptions) come from the dbt YAML beside the marts, the one
place they are documented; only chart logic lives here. Our own texts carry Chinese and English,
because Superset's language switch translates only Superset's UI.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / "superset" / "bundle"
MARTS_YAML = REPO / "dbt" / "models" / "marts"
EXPOSURES = MARTS_YAML / "_exposures.yml"
SUPERSET_URL = "http://127.0.0.1:8088"
DATABASE = "ecom_warehouse"
SCHEMA = "marts"
VERSION = "1.0.0"
# A fixed timestamp keeps the output byte-identical between runs (the import ignores it).
TIMESTAMP = "2026-01-01T00:00:00+00:00"
NAMESPACE = uuid.UUID("5b0f6a52-8c1e-4d4e-9a55-ecb0a2e7d001")
NO_FILTER = "No filter"


def uid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


# ---------------------------------------------------------------------------------------------
# Columns from dbt
# The Python-built marts are dbt sources without data_type; their types are the DDL in
# dagster_project/lib/ltv_marts.py and quality_daily.py, repeated here so the generator needs
# neither the warehouse nor the pipeline's dependencies.
PYTHON_MART_TYPES = {
    "mart_ltv_predicted": dict(customer_key="varchar", as_of_date="date", first_purchase_date="date",
                               frequency="bigint", recency_days="double", t_days="double",
                               avg_order_value="double", p_alive="double", exp_purchases_90d="double",
                               exp_purchases_365d="double", exp_spend_per_purchase="double", clv_12m="double"),
    "mart_ltv_model": dict(as_of_date="date", model="varchar", param="varchar", value="double",
                           std_error="double", log_likelihood="double", n_customers="bigint",
                           time_unit_days="double", converged="boolean"),
    "mart_ltv_backtest": dict(as_of_date="date", holdout_days="bigint", customers="bigint",
                              predicted_purchases="double", actual_purchases="bigint", error_rate="double"),
    "mart_ltv_status": dict(as_of_date="date", status="varchar", reason="varchar", customers="bigint",
                            repeat_customers="bigint"),
    "mart_data_quality": dict(check_name="varchar", source="varchar", check_date="date", status="varchar",
                              unexpected_count="bigint", value="double", threshold="double",
                              threshold_op="varchar", rows_checked="bigint", suite="varchar"),
    "mart_metric_alerts": dict(rule_id="varchar", team="varchar", rule_name="varchar", title_zh="varchar",
                               title_en="varchar", kind="varchar", severity="varchar", metric="varchar",
                               unit="varchar", dims="varchar", metric_date="date", value="double",
                               baseline="double", threshold="double", direction="varchar", deviation="double",
                               z_score="double", is_breach="boolean", state="varchar", since="date",
                               reason="varchar", chart="varchar", evaluated_at="timestamp"),
}


@dataclass(frozen=True)
class DbtTable:
    name: str
    source: str | None  # dbt source name for Python-built marts, None for dbt models
    columns: dict[str, tuple[str | None, str | None]]  # name -> (data_type, description)


def load_dbt_tables(root: Path = MARTS_YAML) -> dict[str, DbtTable]:
    """Every model and source table declared in the marts' YAML, with its documented columns."""
    tables: dict[str, DbtTable] = {}
    for path in sorted(root.rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entries = [(m, None) for m in doc.get("models") or []]
        entries += [(t, s["name"]) for s in doc.get("sources") or [] for t in s.get("tables") or []]
        for entry, source in entries:
            cols = {c["name"]: (c.get("data_type"), _one_line(c.get("description")))
                    for c in entry.get("columns") or []}
            tables[entry["name"]] = DbtTable(entry["name"], source, cols)
    return tables


def _one_line(text: str | None) -> str | None:
    return " ".join(text.split()) if text else None


@functools.cache
def _undeclared(name: str) -> DbtTable:
    """A Python-built mart no dbt YAML declares yet: its DDL columns, and a warning (no exposure ref)."""
    types = PYTHON_MART_TYPES.get(name)
    if not types:
        raise SystemExit(f"{name}: not declared in any YAML under {MARTS_YAML}")
    print(f"warning: {name} is not a dbt source yet; its exposures leave it out", file=sys.stderr)
    return DbtTable(name, None, {col: (None, None) for col in types})


def ref(table: DbtTable) -> str:
    return f"source('{table.source}', '{table.name}')" if table.source else f"ref('{table.name}')"


# ---------------------------------------------------------------------------------------------
# Bilingual labels shared by every dataset that has the column
LABELS = {
    "order_date": "下单日期 · Order date", "channel": "渠道 · Channel", "first_channel": "首购渠道 · First channel",
    "cohort_month": "首购月 · Cohort month", "cohort_start": "同期群起始 · Cohort start",
    "period_start": "周期起始 · Period start", "period_grain": "周期 · Grain", "period_index": "第N期 · Period k",
    "horizon_days": "天数N · Horizon (days)", "as_of_date": "截至日期 · As of", "check_date": "检查日期 · Check date",
    "event_date": "日期 · Date", "registration_date": "注册日期 · Registration date",
    "platform": "平台 · Platform", "customer_type": "新老客 · New/returning", "step": "步骤 · Step",
    "customer_key": "客户 · Customer", "segment": "分层 · Segment", "segment_zh": "分层(中文) · Segment (zh)",
    "lifecycle_tier_zh": "生命周期 · Lifecycle tier", "churn_reason": "预警原因 · Churn reason",
    "recency_days": "最近购买距今天数 · Recency (days)", "frequency": "购买天数(365天) · Frequency (365d)",
    "monetary": "净收入(365天,元) · Monetary (365d, CNY)", "first_purchase_date": "首购日 · First purchase",
    "last_purchase_date": "最近购买日 · Last purchase", "last_active_date": "最近活跃日 · Last active",
    "purchase_days_last_90d": "近90天购买天数 · Purchase days last 90d",
    "purchase_days_prev_90d": "前90天购买天数 · Purchase days prior 90d",
    "p_alive": "存活概率 · P(alive)", "exp_purchases_90d": "预计90天购买天数 · Expected purchase days 90d",
    "clv_12m": "预测12个月价值(元) · Predicted 12m value (CNY)", "category_l1": "一级品类 · Category",
    "source": "数据源 · Source", "check_name": "检查项 · Check", "status": "状态 · Status",
    "value": "值 · Value", "threshold": "阈值 · Threshold", "model": "模型 · Model", "param": "参数 · Parameter",
    "std_error": "标准误 · Std. error", "n_customers": "拟合客户数 · Customers fitted",
    "converged": "已收敛 · Converged", "holdout_days": "验证期天数 · Holdout days",
    "customers": "客户数 · Customers", "predicted_purchases": "预测购买天数 · Predicted purchase days",
    "actual_purchases": "实际购买天数 · Actual purchase days", "error_rate": "误差率 · Error rate",
    "log_likelihood": "对数似然 · Log-likelihood", "unexpected_count": "异常数 · Unexpected",
    "reason": "原因 · Reason", "repeat_customers": "复购客户数 · Repeat customers",
    "rows_checked": "检查行数 · Rows checked",
    # label columns of the virtual dataset (physical datasets define theirs as calculated columns)
    "segment_label": "分层 · Segment", "tier_label": "生命周期 · Lifecycle tier",
    "churn_warning": "流失预警 · Churn warning",
    "excluded_users": "非埋点渠道首次注册 · Untracked first registrations",
    "excluded_share": "未计入占比 · Share left out", "lag_days": "滞后天数 · Lag (days)",
    "latest_date": "最新数据日 · Latest date", "data_end_date": "数据截止日 · Data end date",
    "date_column": "日期字段 · Date column", "untracked_sessions": "埋点丢失的支付会话 · Payments tracking lost",
    "promotion_name_zh": "促销节点 · Promotion",
}

CHANNELS = {"app": "APP app", "tmall": "天猫 tmall", "jd": "京东 jd", "douyin": "抖音 douyin",
            "mini_program": "小程序 mini_program", "web": "官网 web", "offline": "线下 offline", "all": "全部 all"}
PLATFORMS = {"ios": "iOS ios", "android": "安卓 android", "mini_program": "小程序 mini_program", "web": "网页 web"}
STEPS = {"product_view": "1 浏览商品 product_view", "add_to_cart": "2 加购 add_to_cart",
         "checkout_start": "3 下单 checkout_start", "payment_submit": "4 提交支付 payment_submit",
         "payment_success": "5 支付成功 payment_success"}
STATUSES = {"pass": "通过 pass", "warn": "警告 warn", "fail": "失败 fail"}
GRAINS = {"week": "周 week", "month": "月 month", "quarter": "季 quarter"}
CUSTOMER_TYPES = {"new": "新客 new", "returning": "老客 returning"}
STATUS_COLORS = {"通过 pass": "#5AC189", "警告 warn": "#FCC700", "失败 fail": "#EE5A52"}
# Operations marts (docs/metrics.md "Operations")
LABELS |= {
    "sku_id": "SKU", "product_name": "商品 · Product", "rank_no": "排名 · Rank",
    "revenue_amount": "商品净收入(元) · Product net revenue (CNY)", "units_sold": "销量(件) · Units sold",
    "revenue_rank": "收入排名 · Revenue rank", "revenue_share": "收入占比 · Revenue share",
    "cumulative_share": "累计收入占比 · Cumulative share", "abc_class": "ABC分类 · ABC class",
    "month_start": "月份 · Month", "active_skus": "在售SKU数 · Active SKUs", "skus_with_sales": "动销SKU数 · SKUs sold",
    "sell_through_rate": "动销率 · Sell-through", "month_end_on_hand": "月末库存(件) · Month-end on hand",
    "days_with_sales": "有销售天数 · Days with a sale", "days_in_month": "当月天数 · Days in month",
    "sell_out_rate": "售罄率 · Sell-out rate", "is_overstock": "库存积压 · Overstock",
    "is_below_threshold": "低于阈值 · Below threshold",
    "consecutive_slow_months": "连续低动销月数 · Consecutive slow months", "is_slow_mover": "滞销品 · Slow mover",
    "delivered_orders": "已妥投订单 · Delivered orders", "returned_orders": "退货订单 · Returned orders",
    "return_rate": "退货率 · Return rate", "return_reason": "退货原因 · Return reason",
    "delivered_lines": "已妥投商品行 · Delivered lines", "returned_lines": "退货商品行 · Returned lines",
    "top_return_reason": "主要退货原因 · Top reason", "snapshot_date": "库存日期 · Snapshot date",
    "on_hand": "在库(件) · On hand", "in_transit": "在途(件) · In transit",
    "avg_daily_demand": "日均需求(件) · Avg daily demand", "days_of_cover": "可售天数 · Days of cover",
    "safety_stock": "安全库存(件) · Safety stock", "stock_status": "库存状态 · Stock status",
    "is_stockout_risk": "缺货风险 · Stock-out risk", "paid_date": "支付日期 · Paid date",
    "carrier": "快递公司 · Carrier", "day_type": "工作日/周末 · Weekday/weekend",
    "shipped_orders": "已发货订单 · Shipped orders",
    "avg_order_to_ship_hours": "平均发货时长(小时) · Avg order-to-ship (hours)",
    "p50_order_to_ship_hours": "发货时长P50(小时) · Order-to-ship P50 (hours)",
    "p90_order_to_ship_hours": "发货时长P90(小时) · Order-to-ship P90 (hours)",
    "avg_ship_to_deliver_hours": "平均配送时长(小时) · Avg ship-to-deliver (hours)",
    "p50_ship_to_deliver_hours": "配送时长P50(小时) · Ship-to-deliver P50 (hours)",
    "p90_ship_to_deliver_hours": "配送时长P90(小时) · Ship-to-deliver P90 (hours)",
    "weekend_weekday_ratio": "周末/工作日发货时长比 · Weekend/weekday ratio",
    "requested_date": "退货申请日 · Request date", "created_date": "工单创建日 · Ticket date",
    "tickets": "工单数 · Tickets", "share_of_tickets": "工单占比 · Share of tickets",
    "resolved_tickets": "已解决工单 · Resolved tickets", "resolution_share": "解决率 · Resolution share",
    "avg_first_response_hours": "平均首响(小时) · Avg first response (hours)",
    "p50_first_response_hours": "首响P50(小时) · First response P50 (hours)",
    "p90_first_response_hours": "首响P90(小时) · First response P90 (hours)",
    "avg_resolution_hours": "平均解决(小时) · Avg resolution (hours)",
    "p50_resolution_hours": "解决P50(小时) · Resolution P50 (hours)",
    "first_response_breach_share": "首响超时率 · First-response SLA breach share",
    "resolution_breach_share": "解决超时率 · Resolution SLA breach share",
    "campaign_name": "活动 · Campaign", "start_date": "开始日期 · Start date", "end_date": "结束日期 · End date",
    "cost_amount": "投入(元) · Cost (CNY)", "touches_sent": "触达数 · Touches sent",
    "attributed_orders": "归因订单 · Attributed orders", "attributed_revenue": "归因收入(元) · Attributed revenue (CNY)",
    "roi": "归因ROI(1:x) · Attributed ROI (1:x)", "tagged_orders": "活动标记订单 · Tagged orders",
    "tagged_gmv": "标记订单GMV(元) · Tagged GMV (CNY)", "tagged_gmv_roi": "标记GMV ROI(1:x) · Tagged GMV ROI (1:x)",
    "tagged_roi": "标记净收入ROI(1:x) · Tagged revenue ROI (1:x)",
    "coupon_orders": "用券订单 · Coupon orders", "coupon_customers": "用券客户 · Coupon customers",
    "coupon_revenue": "用券订单净收入(元) · Coupon order revenue (CNY)",
    "coupon_claimers": "领券客户 · Coupon claimers", "claimers_redeemed": "领券后核销客户 · Claimers redeemed",
    "redemption_rate": "核销率 · Redemption rate", "experiment_id": "实验 · Experiment",
    "users": "客户数(窗口完整) · Customers (full window)", "conversions": "转化数 · Conversions",
    "users_assigned": "已分组客户 · Customers assigned", "conflicting_customers": "跨组冲突客户 · Customers in two arms",
    "p_value": "p值 · p-value", "p_value_adjusted": "校正后p值(Bonferroni) · Adjusted p-value (Bonferroni)",
    "comparisons": "比较次数 · Comparisons", "transactions_with_both": "同时购买数 · Transactions with both",
    "support": "支持度 · Support", "confidence": "置信度 · Confidence", "lift": "提升度 · Lift",
    "lift_rank": "提升度排名 · Lift rank",
}
CATEGORIES = {"vitamins": "维生素 vitamins", "protein_powder": "蛋白粉 protein powder", "beauty": "美妆 beauty",
              "home": "家居 home", "fresh_food": "生鲜 fresh food", "clothing": "服装 clothing", "all": "全部 all"}
ABC = {"A": "A类 A", "B": "B类 B", "C": "C类 C"}
RETURN_REASONS = {"破损": "破损 damaged", "质量问题": "质量问题 quality issue", "不想要了": "不想要了 changed mind",
                  "发错货": "发错货 wrong item sent", "尺码不合适": "尺码不合适 wrong size"}
STOCK_STATUSES = {"out_of_stock": "缺货 out of stock", "below_safety_stock": "低于安全库存 below safety stock",
                  "ok": "正常 ok"}
CARRIERS = {"顺丰": "顺丰 SF Express", "京东物流": "京东物流 JD Logistics", "圆通": "圆通 YTO", "中通": "中通 ZTO",
            "申通": "申通 STO", "韵达": "韵达 Yunda", "EMS": "EMS", "all": "全部 all"}
PROVINCES = {f"{zh}{suffix}": f"{zh}{suffix} {en}" for zh, suffix, en in (
    ("北京", "市", "Beijing"), ("天津", "市", "Tianjin"), ("上海", "市", "Shanghai"), ("重庆", "市", "Chongqing"),
    ("河北", "省", "Hebei"), ("山西", "省", "Shanxi"), ("辽宁", "省", "Liaoning"), ("吉林", "省", "Jilin"),
    ("黑龙江", "省", "Heilongjiang"), ("江苏", "省", "Jiangsu"), ("浙江", "省", "Zhejiang"), ("安徽", "省", "Anhui"),
    ("福建", "省", "Fujian"), ("江西", "省", "Jiangxi"), ("山东", "省", "Shandong"), ("河南", "省", "Henan"),
    ("湖北", "省", "Hubei"), ("湖南", "省", "Hunan"), ("广东", "省", "Guangdong"), ("海南", "省", "Hainan"),
    ("四川", "省", "Sichuan"), ("贵州", "省", "Guizhou"), ("云南", "省", "Yunnan"), ("陕西", "省", "Shaanxi"),
    ("甘肃", "省", "Gansu"), ("青海", "省", "Qinghai"), ("台湾", "省", "Taiwan"), ("内蒙古", "自治区", "Inner Mongolia"),
    ("广西壮族", "自治区", "Guangxi"), ("西藏", "自治区", "Tibet"), ("宁夏回族", "自治区", "Ningxia"),
    ("新疆维吾尔", "自治区", "Xinjiang"), ("香港", "特别行政区", "Hong Kong"), ("澳门", "特别行政区", "Macao"))}
PROVINCES["unknown"] = "未知 unknown"
DAY_TYPES = {"weekday": "工作日 weekday", "weekend": "周末 weekend"}
TICKET_CHANNELS = {"bot": "机器人 bot", "human": "人工 human", "all": "全部 all"}
TICKET_CATEGORIES = {"售后投诉": "售后投诉 complaint", "退换货": "退换货 return/exchange",
                     "物流查询": "物流查询 delivery inquiry", "发票开具": "发票开具 invoice",
                     "商品咨询": "商品咨询 product question", "支付问题": "支付问题 payment issue"}
CAMPAIGN_TIERS = {"big_promotion": "大促/节日促销 big promotion", "daily": "日常 daily"}
CAMPAIGN_TYPES = {"full_reduction": "满减 spend & save", "discount": "折扣 discount", "coupon": "优惠券 coupon",
                  "gift": "赠品 gift", "kol": "达人 KOL", "live": "直播 live stream", "bundle": "组合 bundle"}
TOUCH_CHANNELS = {"sms": "短信 SMS", "push": "推送 push", "wechat": "微信 WeChat", "email": "邮件 email"}
TOUCH_STEPS = {1: "1 发送 sent", 2: "2 打开 opened", 3: "3 点击 clicked", 4: "4 转化 converted"}
VARIANTS = {"control": "对照组 control", "treatment": "实验组 treatment"}
VERDICTS = {"treatment_wins": "实验组胜出 treatment wins", "treatment_loses": "实验组更差 treatment loses",
            "no_significant_difference": "无显著差异 no significant difference",
            "invalid_srm": "无效:样本比例失衡 invalid (SRM)", "insufficient_sample": "样本不足 insufficient sample"}
ALERT_STATES = {"firing": "告警中 firing", "resolved": "已恢复 resolved", "ok": "正常 ok",
                "not_evaluated": "未评估 not evaluated"}
SEVERITIES = {"critical": "严重 critical", "warning": "警告 warning"}
TARGET_STATUSES = {"met": "达成 met", "missed": "未达成 missed", "no_data": "无数据 no data",
                   "no_actual_yet": "暂无实际值 no actual yet"}
ALERT_COLORS = {"告警中 firing": "#EE5A52", "已恢复 resolved": "#5AC189", "正常 ok": "#A0D6F5",
                "未评估 not evaluated": "#BBBBBB", "达成 met": "#5AC189", "未达成 missed": "#EE5A52",
                "无数据 no data": "#BBBBBB", "暂无实际值 no actual yet": "#FCC700"}
BASKET_SCOPES = {"order": "同一订单 same order", "customer_30d": "同一客户30天内 same customer within 30 days"}


def case(col: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE {col} {whens} ELSE {col} END"


def ratio(num: str, den: str) -> str:
    return f"SUM({num}) / NULLIF(SUM({den}), 0)"


# Label columns: a filter or legend on `channel_label` reads "天猫 tmall", and giving every
# channel-bearing dataset the same column name lets one native filter reach all of them.
def channel_label(col: str) -> dict:
    return {"channel_label": (case(col, CHANNELS), "渠道 · Channel", "VARCHAR")}


def platform_label() -> dict:
    return {"platform_label": (case("platform", PLATFORMS), "平台 · Platform", "VARCHAR")}


def category_label(col: str = "category_l1", label: str = "品类 · Category") -> dict:
    return {"category_label": (case(col, CATEGORIES), label, "VARCHAR")}


def label(name: str, col: str, mapping: dict[str, str], text: str) -> dict:
    return {name: (case(col, mapping), text, "VARCHAR")}


# ---------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    dttm: str | None
    metrics: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # name -> (sql, label, d3format)
    calc: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # name -> (sql, label, type)
    sql: str | None = None  # virtual dataset
    columns: dict[str, str] | None = None  # virtual dataset: name -> type
    description: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # column labels where LABELS' would mislead
    totals: str | None = None  # column whose value 'all' marks total rows (never a select filter's source)

    @property
    def uuid(self) -> str:
        return uid("dataset", self.name)

    def tables(self) -> set[str]:
        """The marts this dataset reads."""
        return set(re.findall(rf"\b{SCHEMA}\.(\w+)", self.sql)) if self.sql else {self.name}


CUSTOMERS = ("customers", "COUNT(*)", "客户数 · Customers", ",d")


def m(name: str, sql: str, label: str, fmt: str = ",.0f") -> tuple:
    return name, sql, label, fmt


def metrics(*items: tuple) -> dict:
    return {name: (sql, label, fmt) for name, sql, label, fmt in items}


# the rule (title in both languages) and severity as every alerts dataset shows them
ALERT_RULE_CALC = {"rule_label": ("title_zh || ' · ' || title_en", "规则 · Rule", "VARCHAR"),
                   **label("severity_label", "severity", SEVERITIES, "级别 · Severity")}
ALERT_LABELS = {"dims": "分组 · Group", "since": "开始日期 · Since", "baseline": "基线 · Baseline",
                "team": "团队 · Team"}

DATASETS = [
    Dataset("fct_orders", "order_date", calc=channel_label("channel"), metrics=metrics(
        m("gmv", "SUM(CASE WHEN is_valid THEN pay_amount ELSE 0 END)", "成交额GMV(元) · GMV (CNY)"),
        m("valid_orders", "COUNT(CASE WHEN is_valid THEN order_id END)", "有效订单数 · Valid orders", ",d"),
        m("aov", "SUM(CASE WHEN is_valid THEN pay_amount END) / NULLIF(COUNT(CASE WHEN is_valid THEN order_id END), 0)",
          "客单价(元) · AOV (CNY)", ",.1f"),
        m("buyers", "COUNT(DISTINCT CASE WHEN is_valid THEN customer_key END)", "购买客户数 · Buyers", ",d"),
        m("net_revenue", "SUM(net_revenue)", "净收入(元) · Net revenue (CNY)"),
    )),
    Dataset("mart_repurchase_period", "period_start",
            calc={"grain_label": (case("period_grain", GRAINS), "周期 · Grain", "VARCHAR")},
            metrics=metrics(
                m("period_repurchase_rate", ratio("repeat_buyers", "buyers"), "周期复购率 · Period repurchase rate", ".1%"),
                m("repeat_revenue_share", ratio("repeat_net_revenue", "net_revenue"),
                  "复购金额占比 · Repeat revenue share", ".1%"),
                m("buyers", "SUM(buyers)", "购买客户数 · Buyers", ",d"))),
    Dataset("mart_repurchase_period_channel", "period_start", calc=channel_label("first_channel"), metrics=metrics(
        m("period_repurchase_rate", ratio("repeat_buyers", "buyers"), "周期复购率 · Period repurchase rate", ".1%"),
        m("repeat_revenue_share", ratio("repeat_net_revenue", "net_revenue"), "复购金额占比 · Repeat revenue share", ".1%"))),
    Dataset("mart_repurchase_cohort", "cohort_month", metrics=metrics(
        # Incomplete cohorts are shown apart, never as the final figure (metrics.md).
        m("repurchase_rate_final", ratio("CASE WHEN is_complete THEN repurchased_30d END",
                                         "CASE WHEN is_complete THEN customers END"),
          "30天复购率(已完整) · 30-day repurchase rate (final)", ".1%"),
        m("repurchase_rate_provisional", ratio("CASE WHEN NOT is_complete THEN repurchased_30d END",
                                               "CASE WHEN NOT is_complete THEN customers END"),
          "30天复购率(观察中) · 30-day repurchase rate (provisional)", ".1%"),
        m("customers", "SUM(customers)", "首购客户数 · New customers", ",d"))),
    Dataset("mart_repurchase_cohort_channel", "cohort_month", calc=channel_label("first_channel"), metrics=metrics(
        m("repurchase_rate_final", ratio("CASE WHEN is_complete THEN repurchased_30d END",
                                         "CASE WHEN is_complete THEN customers END"),
          "30天复购率(已完整) · 30-day repurchase rate (final)", ".1%"))),
    Dataset("mart_repurchase_cycle", "as_of_date", metrics=metrics(
        m("median_gap_days", "AVG(median_gap_days)", "中位复购间隔(天) · Median gap (days)", ".1f"),
        m("mean_gap_days", "AVG(mean_gap_days)", "平均复购间隔(天) · Mean gap (days)", ".1f"),
        m("p25_gap_days", "AVG(p25_gap_days)", "P25 间隔(天) · P25 gap (days)", ".1f"),
        m("p75_gap_days", "AVG(p75_gap_days)", "P75 间隔(天) · P75 gap (days)", ".1f"))),
    Dataset("mart_category_interval", None, metrics=metrics(
        m("p25_days", "AVG(p25_days)", "P25 间隔(天) · P25 interval (days)", ".1f"),
        m("p50_days", "AVG(p50_days)", "中位间隔(天) · Median interval (days)", ".1f"),
        m("p75_days", "AVG(p75_days)", "P75 间隔(天) · P75 interval (days)", ".1f"))),
    Dataset("mart_repurchase_funnel", "cohort_month", calc=channel_label("first_channel"), metrics=metrics(
        m("reached_2nd_share", ratio("reached_2nd", "customers"), "到第2次 · Reached 2nd", ".1%"),
        m("reached_3rd_share", ratio("reached_3rd", "customers"), "到第3次 · Reached 3rd", ".1%"),
        m("reached_4th_share", ratio("reached_4th", "customers"), "到第4次 · Reached 4th", ".1%"),
        m("reached_5plus_share", ratio("reached_5plus", "customers"), "到第5次及以上 · Reached 5th+", ".1%"))),
    Dataset("mart_ltv_cohort", "cohort_month", calc={
        **channel_label("first_channel"),
        "cohort_label": ("strftime(cohort_month, '%Y-%m')", "首购月 · Cohort", "VARCHAR"),
        "horizon_label": ("horizon_days || '天 · ' || horizon_days || 'd'", "N日 · Horizon", "VARCHAR"),
    }, metrics=metrics(
        m("ltv_net", ratio("net_revenue", "customers"), "人均净收入LTV(元) · LTV net (CNY)", ",.1f"),
        m("ltv_margin", ratio("margin_amount", "customers"), "人均毛利LTV(元) · LTV margin (CNY)", ",.1f"))),
    Dataset("mart_ltv_predicted", "first_purchase_date", calc={
        "clv_band": ("CASE WHEN clv_12m < 500 THEN '1 <500' WHEN clv_12m < 1000 THEN '2 500-1千' "
                     "WHEN clv_12m < 2000 THEN '3 1千-2千' WHEN clv_12m < 5000 THEN '4 2千-5千' ELSE '5 ≥5千' END",
                     "预测价值区间(元) · Predicted value band (CNY)", "VARCHAR"),
    }, metrics=metrics(
        CUSTOMERS,
        m("clv_total", "SUM(clv_12m)", "预测12个月总价值(元) · Predicted 12m value (CNY)"),
        m("clv_avg", "AVG(clv_12m)", "人均预测12个月价值(元) · Avg predicted 12m value (CNY)", ",.1f"),
        m("p_alive_avg", "AVG(p_alive)", "平均存活概率 · Avg P(alive)", ".1%"))),
    Dataset("mart_ltv_backtest", None),
    Dataset("mart_ltv_model", None),
    Dataset("mart_ltv_status", None, calc={
        "status_label": ("CASE status WHEN 'fitted' THEN '已拟合 fitted' ELSE '未拟合 not fitted' END",
                         "模型状态 · Model status", "VARCHAR"),
    }),
    Dataset("mart_funnel_daily", "event_date", calc={
        **platform_label(),
        "step_label": (case("step", STEPS), "步骤 · Step", "VARCHAR"),
        "customer_type_label": (case("customer_type", CUSTOMER_TYPES), "新老客 · New/returning", "VARCHAR"),
    }, metrics=metrics(
        m("sessions", "SUM(sessions)", "会话数 · Sessions", ",d"),
        m("step_conversion", ratio("sessions", "previous_step_sessions"), "步骤转化率 · Step conversion", ".1%"),
        m("drop_off", f"1 - {ratio('sessions', 'previous_step_sessions')}", "步骤流失率 · Drop-off", ".1%"),
        m("visit_to_pay", ratio("CASE WHEN step_order = 5 THEN sessions END", "CASE WHEN step_order = 1 THEN sessions END"),
          "浏览到支付转化率 · View-to-payment conversion", ".2%"),
        m("tracking_loss", ratio("untracked_sessions", "CASE WHEN step_order = 5 THEN sessions END"),
          "支付埋点丢失率 · Payments tracking lost", ".1%"))),
    Dataset("mart_cohort_retention", "cohort_start", calc={
        "cohort_label": ("CASE WHEN cohort_grain = 'month' THEN strftime(cohort_start, '%Y-%m') "
                         "ELSE strftime(cohort_start, '%Y-%m-%d') END", "同期群 · Cohort", "VARCHAR"),
    }, metrics=metrics(
        m("retention_rate", ratio("active_customers", "cohort_size"), "留存率 · Retention rate", ".1%"))),
    Dataset("mart_activity_retention", "registration_date", metrics=metrics(
        # Unobserved days are null, so each rate's denominator only counts users observed that long.
        *(m(f"d{n}_rate", ratio(f"d{n}_users", f"CASE WHEN d{n}_users IS NOT NULL THEN new_users END"),
            f"{label}留存率 · D{n} retention", ".1%") for n, label in ((1, "次日"), (7, "7日"), (30, "30日"))),
        m("new_users", "SUM(new_users)", "新用户(埋点渠道首次注册) · New users (first registered where tracked)", ",d"),
        # shown beside every rate: the first registrations the rates leave out (marketplace, offline)
        m("excluded_share", ratio("excluded_users", "new_users + excluded_users"),
          "未计入:非埋点渠道首次注册 · Left out: first registered where tracking cannot see", ".1%"))),
    Dataset("mart_customer_segments", "as_of_date", calc={
        "segment_label": ("segment_zh || ' ' || segment", "分层 · Segment", "VARCHAR"),
        "tier_label": ("lifecycle_tier_zh || ' ' || lifecycle_tier", "生命周期 · Lifecycle tier", "VARCHAR"),
    }, metrics=metrics(
        CUSTOMERS,
        m("monetary_total", "SUM(monetary)", "近365天净收入(元) · Net revenue 365d (CNY)"),
        m("monetary_avg", "AVG(monetary)", "人均近365天净收入(元) · Avg net revenue 365d (CNY)", ",.1f"),
        m("frequency_avg", "AVG(frequency)", "人均购买天数 · Avg purchase days", ".2f"),
        m("recency_avg", "AVG(recency_days)", "平均距上次购买天数 · Avg recency (days)", ".1f"),
        m("churn_warning_share", "AVG(CASE WHEN churn_warning THEN 1.0 ELSE 0 END)",
          "流失预警占比 · Churn-warning share", ".1%"))),
    # Current customers with their predicted value: segments on the data end date, the newest
    # LTV fit and the acquisition channel, so the churn list can be sorted by what is at stake.
    Dataset("customer_value", None, sql=f"""SELECT s.customer_key,
       c.first_channel,
       s.segment_zh || ' ' || s.segment AS segment_label,
       s.lifecycle_tier_zh || ' ' || s.lifecycle_tier AS tier_label,
       s.churn_warning,
       s.churn_reason,
       s.recency_days,
       s.frequency,
       s.monetary,
       s.first_purchase_date,
       s.last_purchase_date,
       s.last_active_date,
       s.purchase_days_last_90d,
       s.purchase_days_prev_90d,
       p.p_alive,
       p.exp_purchases_90d,
       p.clv_12m,
       s.as_of_date
FROM {SCHEMA}.mart_customer_segments AS s
JOIN {SCHEMA}.dim_customers AS c ON c.customer_key = s.customer_key
LEFT JOIN {SCHEMA}.mart_ltv_predicted AS p
  ON p.customer_key = s.customer_key
 AND p.as_of_date = (SELECT max(as_of_date) FROM {SCHEMA}.mart_ltv_predicted)
WHERE s.is_data_end_date""", columns=dict(
        customer_key="VARCHAR", first_channel="VARCHAR", segment_label="VARCHAR", tier_label="VARCHAR",
        churn_warning="BOOLEAN", churn_reason="VARCHAR", recency_days="INTEGER", frequency="INTEGER",
        monetary="DECIMAL(18, 2)", first_purchase_date="DATE", last_purchase_date="DATE", last_active_date="DATE",
        purchase_days_last_90d="INTEGER", purchase_days_prev_90d="INTEGER", p_alive="DOUBLE",
        exp_purchases_90d="DOUBLE", clv_12m="DOUBLE", as_of_date="DATE"),
        calc=channel_label("first_channel"),
        metrics=metrics(CUSTOMERS, m("clv_avg", "AVG(clv_12m)", "人均预测12个月价值(元) · Avg predicted 12m value (CNY)", ",.1f")),
        description="当前客户分层+预测价值 · Current customer segments with predicted 12-month value"),
    Dataset("mart_data_quality", "check_date", calc={
        "status_label": (case("status", STATUSES), "状态 · Status", "VARCHAR"),
        "check_label": (case("check_name", {
            "payment_event_lag_p50": "P50 支付埋点延迟 payment-event lag p50",
            "payment_event_lag_p95": "P95 支付埋点延迟 payment-event lag p95",
            "tracking_coverage": "埋点覆盖率 tracking coverage", "identity_coverage": "身份识别覆盖率 identity coverage",
            "threshold": "阈值 threshold"}), "检查项 · Check", "VARCHAR"),
    }, metrics=metrics(
        m("checks", "COUNT(*)", "检查数 · Checks", ",d"),
        m("value_avg", "AVG(value)", "值 · Value", ",.2f"),
        m("threshold_avg", "AVG(threshold)", "阈值 · Threshold", ",.2f"),
        m("value_sum", "SUM(value)", "合计 · Total", ",d"),
        # The newest row per source, whatever range is selected: freshness is a now-figure.
        m("age_hours_latest", "ARG_MAX(value, check_date) / 60.0", "数据延迟(小时) · Age (hours)", ",.1f"),
        m("sla_hours_latest", "ARG_MAX(threshold, check_date) / 60.0", "时效要求(小时) · SLA (hours)", ",.1f"),
        m("status_latest", f"ARG_MAX({case('status', STATUSES)}, check_date)", "最新状态 · Latest status", ""),
        m("checked_at_latest", "CAST(MAX(check_date) AS VARCHAR)", "检查日期 · Checked on", ""))),
]

DATASETS += [
    Dataset("mart_source_lag", None, metrics=metrics(
        m("lag_days_max", "MAX(lag_days)", "距数据截止日滞后(天) · Days behind the data end date", ",d"))),
]

# Operations marts: products and inventory, service and logistics, marketing, experiments, basket.
SKUS = ("skus", "COUNT(*)", "SKU数 · SKUs", ",d")
DATASETS += [
    Dataset("mart_product_abc", None, calc={**category_label(), **label("abc_label", "abc_class", ABC, "ABC分类 · ABC class")},
            metrics=metrics(
                SKUS,
                m("revenue", "SUM(revenue_amount)", "近90天商品净收入(元) · Product net revenue 90d (CNY)"),
                m("revenue_share_sum", "SUM(revenue_share)", "收入占比 · Revenue share", ".1%"),
                m("a_revenue_share", ratio("CASE WHEN abc_class = 'A' THEN revenue_amount END", "revenue_amount"),
                  "A类收入占比 · A-class revenue share", ".1%"),
                m("units", "SUM(units_sold)", "近90天销量(件) · Units 90d", ",d"))),
    Dataset("mart_product_sell_through", "month_start", calc=category_label(), totals="category_l1", metrics=metrics(
        m("sell_through", ratio("skus_with_sales", "active_skus"), "动销率 · Sell-through", ".1%"),
        m("active_skus_sum", "SUM(active_skus)", "在售SKU数 · Active SKUs", ",d"))),
    # A SKU's 动销率 and 售罄率 by month with the product's name: the slow-mover and overstock lists.
    Dataset("sku_sell_through", "month_start", sql=f"""SELECT s.month_start,
       s.sku_id,
       p.product_name,
       s.category_l1,
       s.units_sold,
       s.days_with_sales,
       s.sell_through_rate,
       s.is_below_threshold,
       s.consecutive_slow_months,
       s.is_slow_mover,
       s.month_end_on_hand,
       s.sell_out_rate,
       s.is_overstock
FROM {SCHEMA}.mart_product_slow_movers AS s
LEFT JOIN {SCHEMA}.dim_products AS p ON p.sku_id = s.sku_id""", columns=dict(
        month_start="DATE", sku_id="VARCHAR", product_name="VARCHAR", category_l1="VARCHAR", units_sold="BIGINT",
        days_with_sales="INTEGER", sell_through_rate="DOUBLE", is_below_threshold="BOOLEAN",
        consecutive_slow_months="INTEGER", is_slow_mover="BOOLEAN", month_end_on_hand="BIGINT",
        sell_out_rate="DOUBLE", is_overstock="BOOLEAN"),
        calc={**category_label(),
              "slow_mover_label": ("CASE WHEN is_slow_mover THEN '滞销 slow mover' ELSE '' END", "滞销品 · Slow mover",
                                   "VARCHAR"),
              "overstock_label": ("CASE WHEN is_overstock THEN '积压 overstock' ELSE '' END",
                                  "库存积压(售罄率<5%) · Overstock (sell-out < 5%)", "VARCHAR")},
        metrics=metrics(
            m("below_threshold_skus", "SUM(CASE WHEN is_below_threshold THEN 1 ELSE 0 END)",
              "低动销SKU数(<5%天数有销售) · SKUs selling on < 5% of days", ",d"),
            m("slow_mover_skus", "SUM(CASE WHEN is_slow_mover THEN 1 ELSE 0 END)", "滞销品数 · Slow movers", ",d"),
            m("overstock_skus", "SUM(CASE WHEN is_overstock THEN 1 ELSE 0 END)",
              "库存积压SKU数(售罄率<5%) · Overstocked SKUs (sell-out < 5%)", ",d")),
        description="单品月动销率与售罄率+商品名 · SKU sell-through (days with a sale) and sell-out rate per complete "
                    "month with the product name"),
    Dataset("mart_product_top10_daily", "order_date", calc=category_label()),
    Dataset("mart_returns_by_category", None, calc=category_label(), totals="category_l1", metrics=metrics(
        m("return_rate_orders", ratio("returned_orders", "delivered_orders"), "退货率 · Return rate", ".1%"))),
    Dataset("mart_return_reasons", None,
            calc={**category_label(), **label("reason_label", "return_reason", RETURN_REASONS, "退货原因 · Reason")},
            metrics=metrics(m("returns_total", "SUM(returns)", "退货数 · Returns", ",d"))),
    Dataset("mart_returns_by_sku", None, calc={
        **category_label(), **label("top_reason_label", "top_return_reason", RETURN_REASONS, "主要退货原因 · Top reason")},
        labels={"returns": "退货数 · Returns"}),
    # Days of cover per snapshot with the product's name, category and ABC class; is_latest_snapshot
    # picks the newest snapshot for the current risk list.
    Dataset("inventory_cover", "snapshot_date", sql=f"""SELECT i.snapshot_date,
       i.sku_id,
       p.product_name,
       p.category_l1,
       a.abc_class,
       i.on_hand,
       i.in_transit,
       i.avg_daily_demand,
       i.days_of_cover,
       i.safety_stock,
       i.stock_status,
       i.is_stockout_risk,
       i.snapshot_date = max(i.snapshot_date) OVER () AS is_latest_snapshot
FROM {SCHEMA}.mart_inventory_cover AS i
LEFT JOIN {SCHEMA}.dim_products AS p ON p.sku_id = i.sku_id
LEFT JOIN {SCHEMA}.mart_product_abc AS a ON a.sku_id = i.sku_id""", columns=dict(
        snapshot_date="DATE", sku_id="VARCHAR", product_name="VARCHAR", category_l1="VARCHAR", abc_class="VARCHAR",
        on_hand="BIGINT", in_transit="BIGINT", avg_daily_demand="DOUBLE", days_of_cover="DOUBLE",
        safety_stock="DOUBLE", stock_status="VARCHAR", is_stockout_risk="BOOLEAN", is_latest_snapshot="BOOLEAN"),
        calc={**category_label(), **label("stock_status_label", "stock_status", STOCK_STATUSES, "库存状态 · Stock status"),
              "risk_label": ("CASE WHEN is_stockout_risk THEN '⚠ 有风险 at risk' ELSE '' END", "缺货风险 · Stock-out risk",
                             "VARCHAR")},
        metrics=metrics(
            m("risk_skus", "SUM(CASE WHEN is_stockout_risk THEN 1 ELSE 0 END)", "缺货风险SKU数 · SKUs at stock-out risk",
              ",d"),
            m("below_safety_skus", "SUM(CASE WHEN stock_status <> 'ok' THEN 1 ELSE 0 END)",
              "缺货或低于安全库存SKU数 · SKUs out of stock or below safety stock", ",d"),
            m("median_days_of_cover", "MEDIAN(days_of_cover)", "可售天数中位数 · Median days of cover", ",.1f")),
        description="库存可售天数+商品信息 · Days of cover per snapshot with product, category and ABC class"),
    Dataset("mart_delivery_times", "paid_date", calc={
        **label("carrier_label", "carrier", CARRIERS, "快递公司 · Carrier"),
        **label("province_label", "province", PROVINCES, "省份 · Province"),
        **label("day_type_label", "day_type", DAY_TYPES, "工作日/周末 · Weekday/weekend")},
        labels={"province": "省份 · Province"}, metrics=metrics(
            m("order_to_ship_hours", ratio("order_to_ship_hours_sum", "shipped_orders"),
              "发货时长(小时) · Order-to-ship (hours)", ",.1f"),
            m("ship_to_deliver_hours", ratio("ship_to_deliver_hours_sum", "delivered_orders"),
              "配送时长(小时) · Ship-to-deliver (hours)", ",.1f"),
            m("shipped_orders_sum", "SUM(shipped_orders)", "已发货订单 · Shipped orders", ",d"))),
    Dataset("mart_delivery_day_type", None, totals="carrier", calc={
        **label("carrier_label", "carrier", CARRIERS, "快递公司 · Carrier"),
        **label("day_type_label", "day_type", DAY_TYPES, "工作日/周末 · Weekday/weekend")}, metrics=metrics(
            m("weekend_ratio", "AVG(weekend_weekday_ratio)", "周末/工作日发货时长倍数 · Weekend/weekday ratio", ".2f"))),
    Dataset("mart_return_cycle", "requested_date", calc=category_label(), metrics=metrics(
        m("return_cycle_days", ratio("cycle_days_sum", "returns_completed"), "平均退货周期(天) · Avg return cycle (days)",
          ",.1f"),
        m("max_return_cycle_days", "MAX(max_cycle_days)", "最长退货周期(天) · Longest return cycle (days)", ",.1f"),
        m("returns_completed_sum", "SUM(returns_completed)", "已完成退货 · Returns completed", ",d"))),
    Dataset("mart_service_tickets", "created_date", calc={
        **label("ticket_channel_label", "channel", TICKET_CHANNELS, "客服渠道 · Service channel"),
        **label("ticket_category_label", "category", TICKET_CATEGORIES, "工单类型 · Ticket category")},
        labels={"channel": "客服渠道 · Service channel", "category": "工单类型 · Ticket category"}, metrics=metrics(
            m("tickets_sum", "SUM(tickets)", "工单数 · Tickets", ",d"),
            m("first_response_hours", ratio("first_response_hours_sum", "responded_tickets"),
              "平均首响时长(小时) · Avg first response (hours)", ",.2f"),
            m("resolution_hours", ratio("resolution_hours_sum", "resolved_tickets"),
              "平均解决时长(小时) · Avg resolution (hours)", ",.1f"),
            m("bot_resolution_share", ratio("CASE WHEN channel = 'bot' THEN resolved_tickets END",
                                            "CASE WHEN channel = 'bot' THEN tickets END"),
              "机器人解决率 · Bot resolution share", ".1%"),
            m("first_response_breaches_sum", "SUM(first_response_breaches)", "首响超时工单 · First-response SLA breaches",
              ",d"),
            m("resolution_breaches_sum", "SUM(resolution_breaches)", "解决超时工单 · Resolution SLA breaches", ",d"),
            m("first_response_breach_rate", ratio("first_response_breaches", "tickets"),
              "首响超时率 · First-response breach share", ".1%"),
            m("resolution_breach_rate", ratio("resolution_breaches", "tickets"), "解决超时率 · Resolution breach share",
              ".1%"))),
    Dataset("mart_service_summary", None, totals="channel",
            calc=label("ticket_channel_label", "channel", TICKET_CHANNELS, "客服渠道 · Service channel"),
            labels={"channel": "客服渠道 · Service channel"}),
    Dataset("mart_campaign_roi", "start_date", calc={
        "campaign_label": ("campaign_id || ' ' || campaign_name", "活动 · Campaign", "VARCHAR"),
        **label("campaign_tier_label", "campaign_tier", CAMPAIGN_TIERS, "活动档位 · Campaign tier"),
        **label("campaign_type_label", "campaign_type", CAMPAIGN_TYPES, "活动形式 · Campaign type"),
        **label("campaign_channel_label", "channel", CHANNELS, "投放渠道 · Campaign channel")},
        labels={"campaign_id": "活动ID · Campaign id", "channel": "投放渠道 · Campaign channel"}, metrics=metrics(
            m("cost", "SUM(cost_amount)", "投入(元) · Cost (CNY)"),
            m("attributed_revenue_sum", "SUM(attributed_revenue)", "归因收入(元) · Attributed revenue (CNY)"),
            m("attributed_roi", ratio("attributed_revenue", "cost_amount"), "归因ROI · Attributed ROI", ".2f"),
            m("tagged_revenue_roi", ratio("tagged_revenue", "cost_amount"), "标记净收入ROI · Tagged revenue ROI", ".2f"),
            m("tagged_gmv_roi_total", ratio("tagged_gmv", "cost_amount"), "标记GMV ROI · Tagged GMV ROI", ".2f"))),
    # One row per campaign, touch channel and funnel step, with the campaign's tier and start date.
    Dataset("touch_funnel", "start_date", sql=f"""SELECT f.campaign_id,
       c.campaign_name,
       c.campaign_tier,
       c.start_date,
       f.channel,
       s.step_order,
       CASE s.step_order WHEN 1 THEN f.sent WHEN 2 THEN f.opened WHEN 3 THEN f.clicked ELSE f.converted END AS touches
FROM {SCHEMA}.mart_touch_funnel AS f
JOIN {SCHEMA}.mart_campaign_roi AS c ON c.campaign_id = f.campaign_id
CROSS JOIN range(1, 5) AS s(step_order)""", columns=dict(
        campaign_id="VARCHAR", campaign_name="VARCHAR", campaign_tier="VARCHAR", start_date="DATE", channel="VARCHAR",
        step_order="BIGINT", touches="INTEGER"),
        calc={**label("touch_channel_label", "channel", TOUCH_CHANNELS, "触达渠道 · Touch channel"),
              **label("campaign_tier_label", "campaign_tier", CAMPAIGN_TIERS, "活动档位 · Campaign tier"),
              "step_label": ("CASE step_order " + " ".join(f"WHEN {k} THEN '{v}'" for k, v in TOUCH_STEPS.items())
                             + " END", "触达步骤 · Step", "VARCHAR")},
        labels={"channel": "触达渠道 · Touch channel", "touches": "触达数 · Touches"},
        metrics=metrics(
            m("touches_sum", "SUM(touches)", "触达数 · Touches", ",d"),
            *(m(f"{step}_count", f"SUM(CASE WHEN step_order = {k} THEN touches END)", text, ",d") for k, step, text in (
                (1, "sent", "发送 · Sent"), (2, "opened", "打开 · Opened"), (3, "clicked", "点击 · Clicked"),
                (4, "converted", "转化 · Converted"))),
            m("open_rate_total", ratio("CASE WHEN step_order = 2 THEN touches END", "CASE WHEN step_order = 1 THEN touches END"),
              "打开率 · Open rate", ".1%"),
            m("click_rate_total", ratio("CASE WHEN step_order = 3 THEN touches END", "CASE WHEN step_order = 2 THEN touches END"),
              "点击率 · Click rate", ".1%"),
            m("conversion_rate_total", ratio("CASE WHEN step_order = 4 THEN touches END",
                                             "CASE WHEN step_order = 1 THEN touches END"),
              "转化率 · Conversion rate", ".2%")),
        description="触达漏斗(每步一行)+活动档位 · Touch funnel, one row per step, with the campaign's tier"),
    Dataset("coupon_redemption", "start_date", sql=f"""SELECT k.campaign_id,
       c.campaign_name,
       c.campaign_tier,
       c.start_date,
       c.tagged_orders,
       k.coupon_orders,
       k.coupon_customers,
       k.coupon_revenue,
       k.coupon_order_share,
       k.coupon_claimers,
       k.claimers_redeemed,
       k.redemption_rate
FROM {SCHEMA}.mart_coupon_redemption AS k
JOIN {SCHEMA}.mart_campaign_roi AS c ON c.campaign_id = k.campaign_id""", columns=dict(
        campaign_id="VARCHAR", campaign_name="VARCHAR", campaign_tier="VARCHAR", start_date="DATE",
        tagged_orders="INTEGER", coupon_orders="INTEGER", coupon_customers="INTEGER", coupon_revenue="DECIMAL(18,2)",
        coupon_order_share="DOUBLE", coupon_claimers="INTEGER", claimers_redeemed="INTEGER", redemption_rate="DOUBLE"),
        calc={"campaign_label": ("campaign_id || ' ' || campaign_name", "活动 · Campaign", "VARCHAR"),
              **label("campaign_tier_label", "campaign_tier", CAMPAIGN_TIERS, "活动档位 · Campaign tier")},
        labels={"coupon_order_share": "用券订单占比 · Coupon order share"},
        metrics=metrics(
            m("redemption_rate_total", ratio("claimers_redeemed", "coupon_claimers"), "核销率 · Redemption rate", ".1%"),
            m("coupon_order_share_total", ratio("coupon_orders", "tagged_orders"), "用券订单占比 · Coupon order share",
              ".1%"),
            m("coupon_orders_sum", "SUM(coupon_orders)", "用券订单 · Coupon orders", ",d")),
        description="优惠券核销+活动信息 · Coupon redemption per campaign with its tier and start date"),
    Dataset("mart_experiment_results", None, calc={
        **label("variant_label", "variant", VARIANTS, "组别 · Variant"),
        **label("verdict_label", "verdict", VERDICTS, "结论 · Verdict"),
        "absolute_lift_ci": ("CASE WHEN absolute_lift IS NULL THEN '— 基准 baseline' ELSE printf('%+.2f pp [%+.2f, %+.2f]', "
                             "100 * absolute_lift, 100 * absolute_lift_ci_low, 100 * absolute_lift_ci_high) END",
                             "绝对提升 [95%CI] · Absolute lift [95% CI]", "VARCHAR"),
        "relative_lift_ci": ("CASE WHEN relative_lift IS NULL THEN '— 基准 baseline' ELSE printf('%+.1f%% [%+.1f%%, %+.1f%%]', "
                             "100 * relative_lift, 100 * relative_lift_ci_low, 100 * relative_lift_ci_high) END",
                             "相对提升 [95%CI] · Relative lift [95% CI]", "VARCHAR"),
        "srm_label": ("CASE WHEN srm_p_value IS NULL THEN '—' WHEN is_srm THEN printf('⚠ 失衡 mismatch (p=%.4f)', srm_p_value) "
                      "ELSE printf('正常 ok (p=%.2f)', srm_p_value) END", "样本比例(SRM) · Sample ratio (SRM)", "VARCHAR"),
        "min_sample_label": ("CASE WHEN has_min_sample THEN '达到 ✓ met' ELSE '不足 ✗ not met' END",
                             "最小样本 · Minimum sample", "VARCHAR")},
        labels={"conversion_rate": "转化率 · Conversion rate"}),
    Dataset("mart_metric_alerts", "metric_date", calc={
        **ALERT_RULE_CALC, **label("state_label", "state", ALERT_STATES, "状态 · State")},
        labels={**ALERT_LABELS, "metric_date": "日期 · Date"},
        metrics=metrics(
            m("firing_days", "COUNT(CASE WHEN state = 'firing' THEN 1 END)", "告警天数 · Firing days", ",d"),
            m("evaluations", "COUNT(*)", "评估次数 · Evaluations", ",d"),
            m("value_avg", "AVG(value)", "值 · Value", ",.3f"),
            m("baseline_avg", "AVG(baseline)", "基线 · Baseline", ",.3f"),
            m("threshold_avg", "AVG(threshold)", "告警阈值 · Alert threshold", ",.3f"))),
    # the latest evaluated date of each rule and group, when it is firing: what needs attention now
    Dataset("alerts_firing_now", "metric_date", sql=f"""SELECT a.rule_id,
       a.team,
       a.title_zh,
       a.title_en,
       a.severity,
       a.dims,
       a.since,
       a.metric_date,
       a.value,
       a.baseline,
       a.threshold,
       a.unit
FROM {SCHEMA}.mart_metric_alerts AS a
JOIN (SELECT l.rule_id, l.dims, MAX(l.metric_date) AS latest_date
      FROM {SCHEMA}.mart_metric_alerts AS l
      WHERE l.state <> 'not_evaluated'
      GROUP BY l.rule_id, l.dims) AS k
  ON k.rule_id = a.rule_id AND k.dims = a.dims AND k.latest_date = a.metric_date
WHERE a.state = 'firing'""", columns=dict(
        rule_id="VARCHAR", team="VARCHAR", title_zh="VARCHAR", title_en="VARCHAR", severity="VARCHAR",
        dims="VARCHAR", since="DATE", metric_date="DATE", value="DOUBLE", baseline="DOUBLE", threshold="DOUBLE",
        unit="VARCHAR"),
        calc=ALERT_RULE_CALC, labels={**ALERT_LABELS, "metric_date": "最新日期 · Latest date"},
        description="正在告警的规则(各规则和分组最新评估日) · Rules firing on their latest evaluated date"),
    # one row per episode: its firing days and the date it resolved (null while it still fires)
    Dataset("alert_episodes", "since", sql=f"""SELECT f.rule_id,
       f.title_zh,
       f.title_en,
       f.severity,
       f.dims,
       f.since,
       MAX(f.metric_date) AS last_firing_date,
       COUNT(DISTINCT f.metric_date) AS days_firing,
       MIN(r.metric_date) AS resolved_date
FROM {SCHEMA}.mart_metric_alerts AS f
LEFT JOIN {SCHEMA}.mart_metric_alerts AS r
  ON r.rule_id = f.rule_id AND r.dims = f.dims AND r.since = f.since AND r.state = 'resolved'
WHERE f.state = 'firing'
GROUP BY f.rule_id, f.title_zh, f.title_en, f.severity, f.dims, f.since""", columns=dict(
        rule_id="VARCHAR", title_zh="VARCHAR", title_en="VARCHAR", severity="VARCHAR", dims="VARCHAR",
        since="DATE", last_firing_date="DATE", days_firing="BIGINT", resolved_date="DATE"),
        calc=ALERT_RULE_CALC, labels={
            **ALERT_LABELS, "last_firing_date": "最后告警日 · Last firing date",
            "days_firing": "告警天数 · Days firing", "resolved_date": "恢复日期 · Resolved on"},
        description="告警事件:开始、持续天数与恢复日期 · Alert episodes: since, days firing, resolved on"),
    Dataset("mart_kpi_targets", "period_start", calc={
        "metric_label": ("metric_name_zh || ' · ' || metric_name_en", "指标 · Metric", "VARCHAR"),
        **label("target_status_label", "status", TARGET_STATUSES, "达成情况 · Status")},
        labels={"period_start": "月份 · Month", "target_value": "目标 · Target", "actual_value": "实际 · Actual",
                "gap": "差距 · Gap", "is_final": "月份已完整 · Month complete"},
        metrics=metrics(
            m("actual_avg", "AVG(actual_value)", "实际 · Actual", ".1%"),
            m("target_avg", "AVG(target_value)", "目标 · Target", ".1%"))),
    Dataset("mart_basket_pairs", None, calc={
        **category_label("category_a", "品类A(已购) · Category A (bought)"),
        **label("category_b_label", "category_b", CATEGORIES, "品类B(连带) · Category B (also bought)"),
        **label("scope_label", "scope", BASKET_SCOPES, "购物篮口径 · Basket scope")},
        metrics=metrics(m("lift_avg", "AVG(lift)", "提升度 · Lift", ".2f"))),
]
DS = {d.name: d for d in DATASETS}


# ---------------------------------------------------------------------------------------------
# Charts: each helper returns form_data (params) and the one query the chart's buildQuery sends,
# so the saved query_context serves /api/v1/chart/<id>/data/ without a browser.
@dataclass
class Chart:
    key: str
    title: str
    viz: str
    dataset: str
    params: dict
    query: dict
    time_col: str | None  # column the dashboard's date filter narrows, None: out of its scope
    description: str | None = None
    id: int = 0

    @property
    def uuid(self) -> str:
        return uid("chart", self.key)


def _filters(filters: list, time_col: str | None) -> tuple[list, list]:
    """(adhoc_filters for params, filters for the query object) from (column, op, value) triples."""
    adhoc, query = [], []
    for col, op, val in filters + ([(time_col, "TEMPORAL_RANGE", NO_FILTER)] if time_col else []):
        adhoc.append({"clause": "WHERE", "expressionType": "SIMPLE", "subject": col, "operator": op,
                      "comparator": val, "isExtra": False, "isNew": False,
                      "filterOptionName": f"filter_{col}_{op.replace(' ', '_').lower()}"})
        query.append({"col": col, "op": op, **({"val": val} if val is not None else {})})
    return adhoc, query


def _axis(col: str, grain: str | None) -> dict:
    return {"columnType": "BASE_AXIS", "sqlExpression": col, "label": col, "expressionType": "SQL",
            **({"timeGrain": grain} if grain else {})}


def chart(key, title, viz, ds, params, *, columns=(), metrics_=(), filters=(), time_col="auto",
          orderby=(), row_limit=10000, description=None, **query_extra) -> Chart:
    time_col = DS[ds].dttm if time_col == "auto" else time_col
    adhoc, qfilters = _filters(list(filters), time_col)
    params = {"datasource": "0__table", "viz_type": viz, "adhoc_filters": adhoc, "row_limit": row_limit,
              "time_range": NO_FILTER, "extra_form_data": {}, "dashboards": [], **params}
    query = {"filters": qfilters, "extras": {"having": "", "where": ""}, "applied_time_extras": {},
             "columns": list(columns), "metrics": list(metrics_), "orderby": [list(o) for o in orderby],
             "annotation_layers": [], "row_limit": row_limit, "series_limit": 0, "order_desc": True,
             "url_params": {}, "custom_params": {}, "custom_form_data": {}, **query_extra}
    if not metrics_:
        del query["metrics"]
    return Chart(key, title, viz, ds, params, query, time_col, description)


def big_number(key, title, ds, metric, fmt, *, trend_grain=None, filters=(), subheader="", time_col="auto"):
    """KPI tile; with trend_grain a trend line of the metric over the dataset's date column."""
    common = {"metric": metric, "y_axis_format": fmt, "header_font_size": 0.4, "subheader_font_size": 0.15,
              "subheader": subheader, "force_timestamp_formatting": False, "time_format": "smart_date"}
    if not trend_grain:
        return chart(key, title, "big_number_total", ds, common, metrics_=[metric], filters=filters,
                     time_col=time_col)
    x = DS[ds].dttm
    return chart(key, title, "big_number", ds, {
        **common, "x_axis": x, "time_grain_sqla": trend_grain, "show_trend_line": True,
        "start_y_axis_at_zero": True, "compare_lag": 1, "compare_suffix": "较上期 · vs prior period",
        "rolling_type": "None", "aggregation": "LAST_VALUE"},
        columns=[_axis(x, trend_grain)], metrics_=[metric], filters=filters,
        orderby=[(_axis(x, trend_grain), True)])


def series(key, title, ds, x, metrics_, *, kind="line", grain=None, groupby=(), filters=(), fmt="SMART_NUMBER",
           stack=False, x_is_time=True, description=None, time_col="auto", extra=None):
    """ECharts time-series family; with x_is_time False the x-axis is a category (bar by channel...)."""
    viz = {"line": "echarts_timeseries_line", "bar": "echarts_timeseries_bar", "area": "echarts_area"}[kind]
    params = {
        "x_axis": x, "time_grain_sqla": grain if x_is_time else None, "metrics": list(metrics_),
        "groupby": list(groupby), "order_desc": True, "truncate_metric": True, "show_empty_columns": True,
        "comparison_type": "values", "x_axis_sort_asc": True, "x_axis_sort_series": "name",
        "x_axis_sort_series_ascending": True, "x_axis_time_format": "smart_date", "x_axis_title_margin": 15,
        "y_axis_format": fmt, "y_axis_title_margin": 15, "y_axis_title_position": "Left",
        "logAxis": False, "minorSplitLine": False, "truncateYAxis": False, "y_axis_bounds": [None, None],
        "rich_tooltip": True, "tooltipTimeFormat": "smart_date", "show_legend": True, "legendType": "scroll",
        "legendOrientation": "top", "sort_series_type": "sum", "color_scheme": "supersetColors",
        "only_total": True, "show_value": False, "zoomable": False, "markerEnabled": kind == "line",
        "markerSize": 6, "seriesType": "line", "opacity": 0.3 if kind == "area" else 0.2,
        "stack": "Stack" if stack else None, "orientation": "vertical", "annotation_layers": [],
        "forecastEnabled": False, "rolling_type": None, "resample_method": None, "resample_rule": None,
    }
    if not x_is_time:
        # every category labelled (ECharts hides "overlapping" ones), tilted when they are words
        params.pop("time_grain_sqla")
        params |= {"xAxisLabelInterval": "0", "xAxisLabelRotation": 30 if kind == "bar" else 0}
    params |= extra or {}
    axis = _axis(x, grain if x_is_time else None)
    return chart(key, title, viz, ds, params, columns=[axis, *groupby], metrics_=metrics_, filters=filters,
                 orderby=[(metrics_[0], False)], series_columns=list(groupby), description=description,
                 time_col=time_col)


def pie(key, title, ds, groupby, metric, *, filters=(), fmt="SMART_NUMBER", time_col="auto", extra=None):
    return chart(key, title, "pie", ds, {
        "groupby": [groupby], "metric": metric, "sort_by_metric": True, "color_scheme": "supersetColors",
        "show_labels_threshold": 3, "show_legend": True, "legendType": "scroll", "legendOrientation": "right",
        "label_type": "key_percent", "number_format": fmt, "date_format": "smart_date", "show_labels": True,
        "labels_outside": True, "label_line": True, "outerRadius": 70, "donut": True, "innerRadius": 40,
        "show_total": True, **(extra or {})}, columns=[groupby], metrics_=[metric], filters=filters, orderby=[(metric, False)],
        time_col=time_col)


def funnel(key, title, ds, groupby, metric, *, filters=()):
    return chart(key, title, "funnel", ds, {
        "groupby": [groupby], "metric": metric, "sort_by_metric": True, "percent_calculation_type": "first_step",
        "color_scheme": "supersetColors", "show_legend": False, "label_type": "key_value_percent",
        "tooltip_label_type": "key_value_percent", "number_format": "SMART_NUMBER", "show_labels": True,
        "show_tooltip_labels": True}, columns=[groupby], metrics_=[metric], filters=filters,
        orderby=[(metric, False)])


def heatmap(key, title, ds, x, y, metric, *, filters=(), fmt=".0%", bounds=(None, None), time_col="auto",
            extra=None):
    return chart(key, title, "heatmap_v2", ds, {
        "x_axis": x, "groupby": y, "metric": metric, "sort_x_axis": "alpha_asc", "sort_y_axis": "alpha_desc",
        "normalize_across": "heatmap", "legend_type": "continuous", "linear_color_scheme": "superset_seq_1",
        "xscale_interval": -1, "yscale_interval": -1, "left_margin": 100, "bottom_margin": "auto",
        "value_bounds": list(bounds), "y_axis_format": fmt, "x_axis_time_format": "smart_date",
        "show_legend": True, "show_percentage": False, "show_values": True, "normalized": False,
        "border_color": {"r": 255, "g": 255, "b": 255, "a": 1}, "border_width": 1, **(extra or {})},
        columns=[x, y], metrics_=[metric], filters=filters, orderby=[(x, True), (y, True)], time_col=time_col)


def histogram(key, title, ds, column, *, bins=20, filters=(), x_title="", y_title="客户数 · Customers"):
    return chart(key, title, "histogram_v2", ds, {
        "column": column, "groupby": [], "bins": bins, "normalize": False, "cumulative": False,
        "x_axis_title": x_title, "y_axis_title": y_title, "x_axis_format": "SMART_NUMBER",
        "y_axis_format": "SMART_NUMBER", "show_value": False, "show_legend": False,
        "color_scheme": "supersetColors"}, columns=[column], filters=filters, row_limit=50000)


def table(key, title, ds, *, groupby=(), metrics_=(), columns=(), order=None, filters=(), page=20,
          row_limit=1000, time_col="auto", description=None, formats=None, bars=None):
    """Aggregated table (groupby + metrics) or, with columns, a raw row list exportable to CSV.

    order is (column or metric, ascending); a raw list may take a list of them (sort by the first, then...).
    """
    raw = bool(columns)
    params = {"query_mode": "raw" if raw else "aggregate", "groupby": list(groupby), "metrics": list(metrics_),
              "all_columns": list(columns), "percent_metrics": [], "order_desc": True, "server_pagination": False,
              "server_page_length": 10, "page_length": page, "include_search": True, "show_cell_bars": (not raw) if bars is None else bars,
              "color_pn": True, "allow_rearrange_columns": True, "table_timestamp_format": "%Y-%m-%d",
              "conditional_formatting": [], "temporal_columns_lookup": {},
              "column_config": {col: {"d3NumberFormat": fmt} for col, fmt in (formats or {}).items()}}
    orderby = []
    if raw and order:
        orders = order if isinstance(order, list) else [order]
        params["order_by_cols"] = [json.dumps([col, asc]) for col, asc in orders]
        orderby = orders
    elif order:
        params["timeseries_limit_metric"] = order[0]
        params["order_desc"] = not order[1]
        orderby = [order]
    return chart(key, title, "table", ds, params, columns=columns if raw else groupby, metrics_=metrics_,
                 filters=filters, orderby=orderby, row_limit=row_limit, time_col=time_col, description=description)


def pivot(key, title, ds, rows, cols, metric, *, filters=(), fmt="SMART_NUMBER"):
    return chart(key, title, "pivot_table_v2", ds, {
        "groupbyRows": list(rows), "groupbyColumns": list(cols), "metrics": [metric], "metricsLayout": "COLUMNS",
        "aggregateFunction": "Sum", "valueFormat": fmt, "date_format": "smart_date", "rowOrder": "key_a_to_z",
        "colOrder": "key_a_to_z", "rowTotals": False, "colTotals": False, "transposePivot": False,
        "combineMetric": False, "conditional_formatting": [], "currency_format": {}},
        columns=[*rows, *cols], metrics_=[metric], filters=filters, orderby=[(metric, False)])


def box_plot(key, title, ds, across, groupby, metric, *, filters=(), time_col="auto"):
    return chart(key, title, "box_plot", ds, {
        "columns": [across], "groupby": [groupby], "metrics": [metric], "whiskerOptions": "Tukey",
        "x_axis_title": "", "y_axis_title": "", "number_format": "SMART_NUMBER", "date_format": "smart_date",
        "x_ticks_layout": "auto", "color_scheme": "supersetColors"},
        columns=[groupby, across], metrics_=[metric], filters=filters, row_limit=50000, time_col=time_col)


# ---------------------------------------------------------------------------------------------
# Dashboards: rows of (chart, width in 12 grid columns); charts are defined where they are placed.
WEEK, MONTH, DAY = "P1W", "P1M", "P1D"
PCT = ".0%"


@dataclass
class Dashboard:
    slug: str
    title: str
    description: str
    note: str  # markdown shown at the top: definitions an analyst needs before reading the numbers
    rows: list[list[tuple[Chart, int]]]
    heights: dict[int, int] = field(default_factory=dict)  # row index -> grid height
    colors: dict[str, str] = field(default_factory=dict)
    note_height: int = 12

    @property
    def uuid(self) -> str:
        return uid("dashboard", self.slug)

    @property
    def charts(self) -> list[Chart]:
        return [c for row in self.rows for c, _ in row]


def dashboards() -> list[Dashboard]:
    wk, mo = ("period_grain", "==", "week"), ("period_grain", "==", "month")
    # a period cut by the start or the end of the data reads low (fewer days to buy twice): never drawn
    complete = ("is_complete", "IS TRUE", None)
    all_ch = ("first_channel", "==", "all")
    not_all = ("first_channel", "!=", "all")
    latest = ("is_data_end_date", "IS TRUE", None)

    def freshness(key):
        return table(key, "数据新鲜度 · Data freshness by source", "mart_data_quality", groupby=["source"],
                     metrics_=["age_hours_latest", "sla_hours_latest", "status_latest", "checked_at_latest"],
                     filters=[("check_name", "==", "freshness")], order=("age_hours_latest", False),
                     time_col=None, page=15, bars=False)

    def repeat_funnel(days, width):
        # a fixed horizon, and only cohorts observed that long (the mart has no row before): cohorts of
        # different ages compared over the same time
        return series(f"repurchase_funnel_{days}d", f"首购后{days}天内复购转化·按首购月 · Reached 2nd..5th purchase "
                      f"within {days} days, by cohort", "mart_repurchase_funnel", "cohort_month",
                      ["reached_2nd_share", "reached_3rd_share", "reached_4th_share", "reached_5plus_share"],
                      kind="bar", grain=MONTH, filters=[all_ch, ("horizon_days", "==", days)], fmt=PCT,
                      extra={"x_axis_time_format": "%Y-%m"}), width

    def period(grain, title, kind, width):
        # one chart per grain: weeks, months and quarters on one time axis would leave gaps
        return series(f"repurchase_period_{grain}", title, "mart_repurchase_period", "period_start",
                      ["period_repurchase_rate", "repeat_revenue_share"], kind=kind,
                      grain={"week": WEEK, "month": MONTH, "quarter": "P3M"}[grain],
                      filters=[("period_grain", "==", grain), complete], fmt=PCT,
                      extra=None if grain == "week" else {"x_axis_time_format": "%Y-%m"}), width

    return [
        Dashboard("overview", "总览 Overview", "经营总览：成交、订单、客单价、买家、复购与数据新鲜度 · "
                  "Sales, orders, AOV, buyers, repurchase and data freshness at a glance.",
                  "**GMV 成交额** = 有效订单实付金额 · paid amount of valid orders (paid, not cancelled); "
                  "**客单价 AOV** = GMV / 有效订单数 · GMV per valid order; **买家 Buyers** = 有效订单的去重客户 · "
                  "distinct customers with a valid order. 趋势按周 · Trends are weekly; 最近一周可能未完整 · "
                  "the latest week may be partial.",
                  [[(big_number("overview_gmv", "成交额GMV · GMV", "fct_orders", "gmv", ",.0f", trend_grain=WEEK), 3),
                    (big_number("overview_orders", "有效订单 · Valid orders", "fct_orders", "valid_orders", ",d",
                                trend_grain=WEEK), 3),
                    (big_number("overview_aov", "客单价 · AOV", "fct_orders", "aov", ",.1f", trend_grain=WEEK), 3),
                    (big_number("overview_buyers", "购买客户 · Buyers", "fct_orders", "buyers", ",d",
                                trend_grain=WEEK), 3)],
                   [(series("overview_gmv_channel", "分渠道周成交额 · Weekly GMV by channel", "fct_orders",
                            "order_date", ["gmv"], kind="bar", grain=WEEK, groupby=["channel_label"], stack=True,
                            fmt=",.0f"), 6),
                    (series("overview_repurchase_trend", "周复购率趋势(完整周) · Weekly repurchase rate (complete "
                            "weeks)", "mart_repurchase_period", "period_start",
                            ["period_repurchase_rate", "repeat_revenue_share"], grain=WEEK, filters=[wk, complete],
                            fmt=PCT), 6)],
                   [(freshness("overview_freshness"), 12)]],
                  heights={0: 34, 2: 56}),
        Dashboard("repurchase", "复购 Repurchase", "复购率、复购周期与同品类间隔 · Repurchase rates, cycle "
                  "and same-category intervals.",
                  "**30天复购率 30-day repurchase rate**: 首购后30天内(首购日为第0天,第30天计入)再次购买的首购客户占比 · "
                  "share of a month's new customers buying again on days 1..30 after the first purchase day (day 30 "
                  "counts). 未满30天观察期的同期群单列为“观察中” · cohorts not yet observed 30 days are shown as "
                  "*provisional*, never as final. **周期复购率 Period repurchase rate** = 周期内购买≥2天的客户 / 购买客户 · "
                  "buyers with ≥2 purchase days in the period / buyers; **复购金额占比 Repeat revenue share**: 首购日之后"
                  "各购买日的净收入占比(首购当日的第二单不算复购) · net revenue of purchase days after the first (a second "
                  "order on the first day is no repurchase). 只画完整周期,被数据起止截断的周期不显示 · only periods the "
                  "data covers whole are drawn. **复购转化漏斗 Funnel**: 首购后N天内 · within N days, 仅显示已观察满N天的同期群 · "
                  "only cohorts observed that long.",
                  [[(series("repurchase_cohort", "30天复购率·按首购月 · 30-day repurchase rate by cohort",
                             "mart_repurchase_cohort", "cohort_month",
                             ["repurchase_rate_final", "repurchase_rate_provisional"], kind="bar", grain=MONTH,
                             fmt=PCT), 6),
                    (series("repurchase_by_channel", "30天复购率·按首购渠道 · 30-day repurchase rate by first channel",
                            "mart_repurchase_cohort_channel", "channel_label", ["repurchase_rate_final"],
                            kind="bar", x_is_time=False, fmt=PCT), 6)],
                   [(series("repurchase_cohort_channel",
                            "各渠道30天复购率·按首购月 · 30-day repurchase rate by cohort and channel",
                            "mart_repurchase_cohort_channel", "cohort_month", ["repurchase_rate_final"],
                            grain=MONTH, groupby=["channel_label"], fmt=PCT), 6),
                    (series("repurchase_period_channel", "各渠道月复购率(完整月) · Monthly repurchase rate by channel "
                            "(complete months)", "mart_repurchase_period_channel", "period_start",
                            ["period_repurchase_rate"], grain=MONTH, groupby=["channel_label"], filters=[mo, complete],
                            fmt=PCT), 6)],
                   [period("week", "周度复购率与复购金额占比(完整周) · Weekly repurchase rate and repeat revenue "
                           "share (complete weeks)", "line", 6),
                    period("month", "月度复购(完整月) · Monthly repurchase (complete months)", "bar", 3),
                    period("quarter", "季度复购(完整季) · Quarterly repurchase (complete quarters)", "bar", 3)],
                   [(series("repurchase_cycle", "90天复购周期(满90天窗口) · 90-day repurchase cycle (full windows)",
                            "mart_repurchase_cycle", "as_of_date",
                            ["median_gap_days", "mean_gap_days", "p25_gap_days", "p75_gap_days"], grain=DAY, fmt=".0f",
                            filters=[("is_full_window", "IS TRUE", None)]), 6),
                    (series("repurchase_category_interval", "同品类购买间隔 · Same-category purchase interval",
                            "mart_category_interval", "category_l1", ["p25_days", "p50_days", "p75_days"],
                            kind="bar", x_is_time=False, fmt=".0f"), 6)],
                   [repeat_funnel(30, 6), repeat_funnel(90, 6)]]),
        Dashboard("ltv", "客户终身价值 LTV", "历史N日LTV与BG/NBD+Gamma-Gamma预测价值 · Historical N-day LTV and "
                  "predicted customer value (BG/NBD + Gamma-Gamma).",
                  "**N日LTV**: 同期群客户首购起N天内的人均净收入(首购日为第0天,第N天计入,与30天复购率同一口径) · average "
                  "net revenue per customer on days 0..N after the first purchase day (day N counts, as for the "
                  "30-day repurchase rate); 未观察满N天的同期群不显示 · horizons not yet observed are absent. "
                  "**预测价值 Predicted value** = 未来12个月预期净收入(月折现1%) · expected net revenue over the next "
                  "12 months, discounted 1%/month. **回测 Backtest**: 用较早数据拟合，对比验证期实际购买天数 · fitted "
                  "on earlier data, compared with the purchase days that followed. **模型状态 Model status**: "
                  "客户太少或尚无复购(新店)时模型暂不拟合，预测表为空并给出原因 · with too few customers or no repeat "
                  "buyers yet (a young shop) the model is not fitted: the predictions stay empty and the reason "
                  "is shown.",
                  [[(series("ltv_curve_cohort", "N日LTV曲线·按首购月 · N-day LTV curve by cohort", "mart_ltv_cohort",
                             "horizon_days", ["ltv_net"], x_is_time=False, groupby=["cohort_label"],
                             filters=[all_ch], fmt=",.0f"), 6),
                    (series("ltv_by_channel", "N日LTV曲线·按首购渠道 · N-day LTV curve by first channel",
                            "mart_ltv_cohort", "horizon_days", ["ltv_net"], x_is_time=False,
                            groupby=["channel_label"], filters=[not_all], fmt=",.0f"), 6)],
                   [(pivot("ltv_cohort_table", "N日LTV明细(元) · N-day LTV by cohort (CNY)", "mart_ltv_cohort",
                           ["cohort_label"], ["horizon_label"], "ltv_net", filters=[all_ch], fmt=",.1f"), 6),
                    (series("ltv_margin_channel", "N日毛利LTV曲线·按首购渠道 · N-day margin LTV curve by first channel",
                            "mart_ltv_cohort", "horizon_days", ["ltv_margin"], x_is_time=False,
                            groupby=["channel_label"], filters=[not_all], fmt=",.0f"), 6)],
                   [(table("ltv_model_status", "模型状态 · Model status", "mart_ltv_status",
                           columns=["status_label", "reason", "as_of_date", "customers", "repeat_customers"],
                           time_col=None, page=1, bars=False), 12)],
                   [(big_number("ltv_predicted_total", "预测12个月总价值 · Predicted 12-month value",
                                "mart_ltv_predicted", "clv_total", ",.0f", subheader="元 · CNY"), 3),
                    (big_number("ltv_predicted_avg", "人均预测价值 · Avg predicted value", "mart_ltv_predicted",
                                "clv_avg", ",.0f", subheader="元/客户 · CNY per customer"), 3),
                    (big_number("ltv_p_alive", "平均存活概率 · Avg P(alive)", "mart_ltv_predicted", "p_alive_avg",
                                ".1%"), 3),
                    (big_number("ltv_customers", "模型覆盖客户 · Customers scored", "mart_ltv_predicted",
                                "customers", ",d"), 3)],
                   [(histogram("ltv_predicted_hist", "预测12个月价值分布(≤8000元) · Predicted 12m value distribution "
                               "(≤ CNY 8,000)", "mart_ltv_predicted", "clv_12m", bins=32,
                               filters=[("clv_12m", "<=", 8000)], x_title="元 · CNY"), 6),
                    (series("ltv_predicted_band", "各预测价值区间客户数 · Customers by predicted value band",
                            "mart_ltv_predicted", "clv_band", ["customers"], kind="bar", x_is_time=False,
                            fmt=",d"), 3),
                    (pie("ltv_predicted_band_value", "各区间预测价值占比 · Predicted value by band",
                         "mart_ltv_predicted", "clv_band", "clv_total", fmt=",.0f"), 3)],
                   [(table("ltv_backtest", "模型回测 · Backtest: predicted vs actual purchase days",
                           "mart_ltv_backtest", columns=["as_of_date", "holdout_days", "customers",
                                                         "predicted_purchases", "actual_purchases", "error_rate"],
                           order=("as_of_date", False), time_col=None, page=10,
                           formats={"predicted_purchases": ",.0f", "error_rate": "+.1%"}), 6),
                    (table("ltv_model_params", "模型参数 · Fitted model parameters", "mart_ltv_model",
                           columns=["as_of_date", "model", "param", "value", "std_error", "n_customers", "converged"],
                           order=("as_of_date", False), time_col=None, page=10,
                           formats={"value": ",.4g", "std_error": ",.3g"}), 6)]],
                  heights={2: 28, 3: 30}, note_height=15),
        Dashboard("funnel", "转化漏斗 Funnel", "会话转化漏斗：分平台、新老客与流失 · Session conversion funnel by "
                  "platform and new vs returning customers, with drop-off.",
                  "会话按时间顺序依次到达 · A session reaches a step only in order: 浏览商品 product_view → 加购 "
                  "add_to_cart → 下单 checkout_start → 提交支付 payment_submit → 支付成功 payment_success. "
                  "**步骤转化率 Step conversion** = 到达本步会话 / 到达上一步会话 · sessions at the step / at the "
                  "previous step; **流失率 Drop-off** = 1 − 步骤转化率. **支付成功 Payment success**: 支付成功埋点,或登录"
                  "会话提交的订单在订单系统已支付 · the payment_success event, or, for a logged-in session, the order "
                  "system's record that the submitted order was paid; 埋点丢失的部分单列,不算流失 · payments tracking "
                  "lost are shown apart, not as drop-off.",
                  [[(funnel("funnel_steps", "转化漏斗 · Conversion funnel", "mart_funnel_daily", "step_label",
                            "sessions"), 6),
                    (pivot("funnel_pivot", "各平台各步会话数 · Sessions by step and platform", "mart_funnel_daily",
                           ["step_label"], ["platform_label"], "sessions", fmt=",d"), 6)],
                   [(series("funnel_platform", "各平台步骤转化率 · Step conversion by platform", "mart_funnel_daily",
                            "step_label", ["step_conversion"], kind="bar", x_is_time=False,
                            groupby=["platform_label"], filters=[("step_order", ">", 1)], fmt=PCT), 6),
                    (series("funnel_customer_type", "新老客步骤转化率 · Step conversion, new vs returning",
                            "mart_funnel_daily", "step_label", ["step_conversion"], kind="bar", x_is_time=False,
                            groupby=["customer_type_label"], filters=[("step_order", ">", 1)], fmt=PCT), 6)],
                   [(series("funnel_drop_off", "各步流失率 · Drop-off by step", "mart_funnel_daily", "step_label",
                            ["drop_off"], kind="bar", x_is_time=False, groupby=["platform_label"],
                            filters=[("step_order", ">", 1)], fmt=PCT), 6),
                    (series("funnel_trend", "浏览到支付转化率趋势 · View-to-payment conversion, weekly",
                            "mart_funnel_daily", "event_date", ["visit_to_pay"], grain=WEEK,
                            groupby=["platform_label"], fmt=".1%"), 6)],
                   [(series("funnel_tracking_loss", "支付埋点丢失率(已按订单系统计为支付) · Payments tracking lost "
                            "(counted as paid from the order system)", "mart_funnel_daily", "event_date",
                            ["tracking_loss"], grain=WEEK, groupby=["platform_label"], fmt=".1%"), 12)]]),
        Dashboard("cohorts", "留存 Cohorts", "购买留存同期群与注册活跃留存 · Purchase retention by cohort and "
                  "activity retention (D1/D7/D30).",
                  "**购买留存 Purchase retention**: 同期群(首购周/月)在第k期有购买的客户占比 · share of a first-purchase "
                  "cohort buying in period k (k=0 is 100%). 最新一期可能未完整 · the latest period may be partial. "
                  "**新用户活跃留存 D1/D7/D30**: 注册后第N天有活跃的新用户占比 · share of new users active exactly N "
                  "days after registering. 新用户 = 客户(一人多账号算一人)首次注册,且在埋点覆盖的渠道(APP、小程序、官网) · "
                  "a new user is a person at their first registration, on a channel tracking covers (app, "
                  "mini-program, web); 首次注册在天猫/京东/抖音/线下的客户埋点看不到,不计入,其占比单列 · people first "
                  "registered on a marketplace or offline cannot be seen by tracking: left out, their share shown "
                  "beside the rates. 尚未观察到的天不计入分母 · days not yet observed are left out.",
                  [[(big_number("cohorts_d1", "次日留存 · D1 retention", "mart_activity_retention", "d1_rate",
                                ".1%", subheader="埋点渠道新用户 · new users where tracked"), 3),
                    (big_number("cohorts_d7", "7日留存 · D7 retention", "mart_activity_retention", "d7_rate",
                                ".1%", subheader="埋点渠道新用户 · new users where tracked"), 3),
                    (big_number("cohorts_d30", "30日留存 · D30 retention", "mart_activity_retention", "d30_rate",
                                ".1%", subheader="埋点渠道新用户 · new users where tracked"), 3),
                    (big_number("cohorts_excluded", "未计入的首次注册 · First registrations left out",
                                "mart_activity_retention", "excluded_share", ".1%",
                                subheader="天猫/京东/抖音/线下 · marketplaces and offline"), 3)],
                   [(heatmap("cohorts_monthly", "月同期群购买留存 · Monthly cohort retention", "mart_cohort_retention",
                             "period_index", "cohort_label", "retention_rate",
                             filters=[("cohort_grain", "==", "month")], bounds=(0, 0.5)), 6),
                    (series("cohorts_curve", "月同期群留存曲线 · Retention curve by monthly cohort",
                            "mart_cohort_retention", "period_index", ["retention_rate"], x_is_time=False,
                            groupby=["cohort_label"], filters=[("cohort_grain", "==", "month"),
                                                               ("period_index", ">", 0)], fmt=PCT), 6)],
                   [(heatmap("cohorts_weekly", "周同期群购买留存 · Weekly cohort retention", "mart_cohort_retention",
                             "period_index", "cohort_label", "retention_rate",
                             filters=[("cohort_grain", "==", "week")], bounds=(0, 0.3)), 12)],
                   [(series("cohorts_activity", "D1/D7/D30活跃留存与未计入占比·按注册周 · D1/D7/D30 retention and the "
                            "share left out, by registration week", "mart_activity_retention", "registration_date",
                            ["d1_rate", "d7_rate", "d30_rate", "excluded_share"], grain=WEEK, fmt=PCT,
                            extra=WRAP_LEGEND), 12)]],
                  heights={0: 26, 2: 70}),
        Dashboard("segments", "客户分层 Segments", "RFM分层、生命周期与流失预警名单 · RFM segments, lifecycle tiers "
                  "and the churn-warning customer list.",
                  "分层按最新数据日计算 · Segments as of the data end date. **RFM**: R=距上次购买天数 days since last "
                  "purchase, F=近365天购买天数 purchase days in 365 days, M=近365天净收入 net revenue in 365 days. "
                  "**流失预警 Churn warning**: 30天未登录 no login in 30 days, 或近90天购买天数少于前90天的一半 or under half "
                  "the purchase days of the 90 days before; 近30天有购买的客户不预警 · never for a customer who bought in "
                  "the last 30 days. 名单可从图表菜单导出CSV · export the list to CSV from the "
                  "chart menu (⋮ → 下载 Download → 导出CSV Export to CSV).",
                  [[(pie("segments_size", "各分层客户数 · Customers by segment", "mart_customer_segments",
                         "segment_label", "customers", filters=[latest], time_col=None), 5),
                    (table("segments_value", "各分层价值 · Segment value", "mart_customer_segments",
                           groupby=["segment_label"], metrics_=["customers", "monetary_total", "monetary_avg",
                                                                "frequency_avg", "recency_avg", "churn_warning_share"],
                           filters=[latest], order=("monetary_total", False), time_col=None, page=10), 7)],
                   [(series("segments_trend", "分层演变·按月末 · Segments over time (month ends)",
                            "mart_customer_segments", "as_of_date", ["customers"], kind="bar", grain=DAY,
                            groupby=["segment_label"], stack=True, fmt=",d",
                            extra={"x_axis_time_format": "%Y-%m-%d"}), 6),
                    (series("segments_tier", "生命周期×分层 · Lifecycle tier by segment", "mart_customer_segments",
                            "tier_label", ["customers"], kind="bar", x_is_time=False, groupby=["segment_label"],
                            stack=True, filters=[latest], fmt=",d", time_col=None), 6)],
                   [(box_plot("segments_clv_box", "各分层预测价值分布 · Predicted 12m value by segment",
                              "customer_value", "customer_key", "segment_label", "clv_avg", time_col=None), 12)],
                   [(table("segments_churn_list", "流失预警客户名单 · Churn-warning customers (export to CSV)",
                           "customer_value", columns=[
                               "customer_key", "channel_label", "segment_label", "tier_label", "churn_reason",
                               "last_purchase_date", "last_active_date", "recency_days", "frequency", "monetary",
                               "purchase_days_last_90d", "purchase_days_prev_90d", "p_alive", "clv_12m"],
                           filters=[("churn_warning", "IS TRUE", None)], order=("clv_12m", False), row_limit=50000,
                           time_col=None, page=20, formats={"p_alive": ".0%", "clv_12m": ",.0f", "monetary": ",.0f"},
                           description="按预测价值降序 · sorted by predicted 12-month value, highest first"), 12)]],
                  heights={0: 60, 3: 90}),
        Dashboard("data-quality", "数据质量 Data quality", "每日数据质量检查、埋点覆盖、支付埋点延迟与数据新鲜度 · "
                  "Daily quality checks, tracking coverage, payment-event lag and freshness.",
                  "来源 Source: marts.mart_data_quality (Great Expectations 套件 suites, docs/quality.md). "
                  "**埋点覆盖率 Tracking coverage**: 有 payment_success 事件的已支付订单占比(目标≥98%) · paid orders in "
                  "tracked channels with a matching payment_success event. **支付埋点延迟 Payment-event lag**: 支付到"
                  "事件的分钟数 · minutes from payment to the event. **新鲜度 Freshness**: 最新数据距今小时数 vs 时效要求 · "
                  "age of the newest data vs its SLA; 历史回放数据必然“过期” · a historical backfill is stale by design. "
                  "**数据截止日 Data end date**: 有订单或埋点事件的最新业务日,所有指标以此为准 · the latest business date "
                  "with an order or a tracking event, the one date every mart is measured against; **滞后 Lag**: "
                  "各数据源最新数据日距它的天数 · days each source's newest data is behind it.",
                  [[(series("dq_status", "每日检查结果 · Check results per day", "mart_data_quality", "check_date",
                            ["checks"], kind="bar", grain=DAY, groupby=["status_label"], stack=True, fmt=",d"), 12)],
                   [(series("dq_coverage", "埋点与身份覆盖率 · Tracking and identity coverage", "mart_data_quality",
                            "check_date", ["value_avg"], grain=DAY, groupby=["check_label"],
                            filters=[("check_name", "IN", ["tracking_coverage", "identity_coverage"])],
                            fmt=".0%", extra={"y_axis_bounds": [0.75, 1.0]}), 6),
                    (series("dq_lag", "支付埋点延迟(分钟) · Payment-event lag (minutes)", "mart_data_quality",
                            "check_date", ["value_avg"], grain=DAY, groupby=["check_label"],
                            filters=[("check_name", "IN", ["payment_event_lag_p50", "payment_event_lag_p95"])],
                            fmt=".1f"), 6)],
                   [(series("dq_quarantine", "每日隔离行数·按数据源 · Quarantined rows per day by source",
                            "mart_data_quality", "check_date", ["value_sum"], kind="bar", grain=DAY,
                            groupby=["source"], stack=True, filters=[("check_name", "==", "quarantined_rows")],
                            fmt=",d"), 6),
                    (freshness("dq_freshness"), 6)],
                   [(table("dq_issues", "未通过的检查 · Checks not passing", "mart_data_quality",
                           columns=["check_date", "check_name", "source", "status_label", "value", "threshold",
                                    "unexpected_count", "rows_checked"],
                           filters=[("status", "!=", "pass")], order=("check_date", False), page=15,
                           formats={"value": ",.2f", "threshold": ",.2f"}), 12)],
                   [(series("dq_source_lag", "各数据源距数据截止日滞后(天) · Days each source is behind the data end date",
                            "mart_source_lag", "source", ["lag_days_max"], kind="bar", x_is_time=False, fmt=",d",
                            extra=sorted_bars("lag_days_max")), 6),
                    (table("dq_source_lag_table", "数据截止日与各源最新数据日 · Data end date and each source's latest date",
                           "mart_source_lag", columns=["source", "latest_date", "data_end_date", "lag_days",
                                                       "date_column"],
                           order=[("lag_days", False), ("source", True)], page=12, formats={"lag_days": ",d"}), 6)]],
                  heights={2: 60, 4: 50}, colors=STATUS_COLORS),
        *operations_dashboards(),
    ]


def sorted_bars(metric: str, *, horizontal: bool = False) -> dict:
    """Bars of a category axis sorted by a metric, largest first (on top when horizontal, for long labels)."""
    # a horizontal category axis runs bottom-up, so ascending puts the largest bar on top
    extra = {"x_axis_sort": metric, "x_axis_sort_asc": horizontal, "show_value": True}
    return extra | ({"orientation": "horizontal", "xAxisLabelRotation": 0} if horizontal else {})


WRAP_LEGEND = {"legendType": "plain"}  # several long bilingual series names: wrap rather than page


def operations_dashboards() -> list[Dashboard]:
    """Products and inventory, service and logistics, marketing and experiments (docs/metrics.md "Operations")."""
    no_all = ("category_l1", "!=", "all")
    latest_snapshot = ("is_latest_snapshot", "IS TRUE", None)

    def top10(metric, title):
        return table(f"products_top10_{metric}", title, "mart_product_top10_daily",
                     columns=["order_date", "rank_no", "product_name", "category_label", "revenue_amount", "units_sold"],
                     filters=[("ranking_metric", "==", metric)], order=[("order_date", False), ("rank_no", True)],
                     row_limit=10000, page=10, formats={"revenue_amount": ",.0f", "units_sold": ",d"},
                     description="按日期倒序、名次正序 · latest day first; use the date filter for a given day")

    def carrier_hours(key, metric, title):
        return series(key, title, "mart_delivery_times", "carrier_label", [metric], kind="bar", x_is_time=False,
                      groupby=["day_type_label"], fmt=",.0f", extra={"show_value": True})

    def weekly_by_channel(key, metric, title, fmt):
        return series(key, title, "mart_service_tickets", "created_date", [metric], grain=WEEK,
                      groupby=["ticket_channel_label"], fmt=fmt)

    return [
        Dashboard("products", "商品与库存 Products", "ABC分类、动销率与滞销品、每日Top10、退货率与退货原因、库存可售天数与"
                  "缺货风险 · ABC classes, sell-through and slow movers, daily top 10, returns, days of cover and "
                  "stock-out risk.",
                  "**ABC分类 ABC class**: 近90天商品净收入(扣除订单级优惠分摊与已完成退货)排名，累计前80%为A、80-95%为B、其余C · "
                  "SKUs ranked by product net revenue (less their share of order coupons and completed returns) over "
                  "the last 90 days: A = first 80% of revenue, B = next 15%, C = rest (no sales: C). "
                  "**动销率 Sell-through** = 当月有销量的在售SKU / 在售SKU · active SKUs with a sale in the month / "
                  "active SKUs (complete months only); 单品动销率 = 当月有销售的天数占比 · for one SKU, the share of the "
                  "month's days with a sale: 连续3个月<5%即**滞销品 slow mover**. **售罄率 Sell-out rate** = 月销量 / "
                  "(月销量+月末库存), <5%为**库存积压 overstock** · units / (units + month-end stock), a separate "
                  "overstock signal. **退货率 Return rate** = 有退货申请的已妥投订单 / "
                  "妥投满7天的订单 · delivered orders (7+ days ago) with a return request. **可售天数 Days of cover** "
                  "= 在库 / 近28天日均需求 · on hand / average daily demand; **缺货风险 Stock-out risk**: 在库+在途 < "
                  "安全库存 · on hand + in transit below safety stock.",
                  [[(big_number("products_a_share", "A类SKU收入占比(近90天) · A-class revenue share (90d)",
                                "mart_product_abc", "a_revenue_share", ".1%"), 3),
                    (big_number("products_sell_through", "月动销率(完整月) · Monthly sell-through",
                                "mart_product_sell_through", "sell_through", ".1%", trend_grain=MONTH,
                                filters=[("category_l1", "==", "all"), ("is_complete", "IS TRUE", None)]), 3),
                    (big_number("products_return_rate", "整体退货率 · Overall return rate", "mart_returns_by_category",
                                "return_rate_orders", ".1%", filters=[("category_l1", "==", "all")],
                                subheader="有退货申请的已妥投订单 · delivered orders with a return request"), 3),
                    (big_number("products_stockout_risk", "缺货风险SKU(最新库存) · SKUs at stock-out risk (latest)",
                                "inventory_cover", "risk_skus", ",d", filters=[latest_snapshot], time_col=None,
                                subheader="在库+在途 < 安全库存 · on hand + in transit < safety stock"), 3)],
                   [(pie("products_abc_revenue", "各ABC类收入占比(近90天) · Revenue share by ABC class (90d)",
                         "mart_product_abc", "abc_label", "revenue", fmt=",.0f", extra={"show_legend": False}), 4),
                    (table("products_abc_summary", "ABC分类汇总 · ABC class summary", "mart_product_abc",
                           groupby=["abc_label"], metrics_=["skus", "revenue", "revenue_share_sum", "units"],
                           order=("revenue", False), page=10, bars=False), 4),
                    (series("products_abc_category", "各品类SKU数·按ABC分类 · SKUs by category and ABC class",
                            "mart_product_abc", "category_label", ["skus"], kind="bar", x_is_time=False,
                            groupby=["abc_label"], stack=True, fmt=",d",
                            extra={"sort_series_type": "name", "sort_series_ascending": True}), 4)],
                   [(series("products_sell_through_category", "月动销率·按品类(完整月) · Monthly sell-through by category "
                            "(complete months)", "mart_product_sell_through", "month_start", ["sell_through"],
                            grain=MONTH, groupby=["category_label"], filters=[no_all, ("is_complete", "IS TRUE", None)],
                            fmt=PCT, extra={"x_axis_time_format": "%Y-%m", "truncateYAxis": True,
                                            "y_axis_bounds": [0, 1]}), 6),
                    (series("products_slow_trend", "低动销SKU、滞销品与库存积压SKU数·按月 · Low sell-through SKUs, slow "
                            "movers and overstocked SKUs per month", "sku_sell_through", "month_start",
                            ["below_threshold_skus", "slow_mover_skus", "overstock_skus"], kind="bar", grain=MONTH,
                            fmt=",d", extra={"x_axis_time_format": "%Y-%m", "show_value": True} | WRAP_LEGEND), 6)],
                   [(table("products_slow_list", "低动销SKU(<5%天数有销售)与滞销品清单 · SKUs selling on under 5% of days, "
                           "and slow movers", "sku_sell_through", columns=[
                               "month_start", "sku_id", "product_name", "category_label", "units_sold",
                               "days_with_sales", "sell_through_rate", "consecutive_slow_months", "slow_mover_label",
                               "month_end_on_hand", "sell_out_rate", "overstock_label"],
                           filters=[("is_below_threshold", "IS TRUE", None)],
                           order=[("month_start", False), ("consecutive_slow_months", False), ("sell_through_rate", True)],
                           page=10, formats={"sell_through_rate": ".1%", "sell_out_rate": ".1%", "units_sold": ",d",
                                             "days_with_sales": ",d", "month_end_on_hand": ",d"},
                           description="最近月份在前，连续低动销月数多者在前 · latest month first, longest runs first"), 12)],
                   [(top10("revenue", "每日Top10·按收入 · Daily top 10 by revenue"), 6),
                    (top10("units", "每日Top10·按销量 · Daily top 10 by units"), 6)],
                   [(series("products_return_rate_category", "品类退货率 · Return rate by category",
                            "mart_returns_by_category", "category_label", ["return_rate_orders"], kind="bar",
                            x_is_time=False, filters=[no_all], fmt=".1%", extra=sorted_bars("return_rate_orders")), 6),
                    (series("products_return_reasons", "退货原因·按品类 · Return reasons by category",
                            "mart_return_reasons", "category_label", ["returns_total"], kind="bar", x_is_time=False,
                            groupby=["reason_label"], stack=True, fmt=",d"), 6)],
                   [(table("products_sku_returns", "高退货率SKU(≥50件已妥投) · SKUs with the highest return rate "
                           "(≥50 delivered lines)", "mart_returns_by_sku", columns=[
                               "product_name", "category_label", "delivered_lines", "returned_lines", "return_rate",
                               "top_reason_label"], filters=[("delivered_lines", ">=", 50)], order=("return_rate", False),
                           page=10, formats={"return_rate": ".1%", "delivered_lines": ",d", "returned_lines": ",d"}), 6),
                    (series("products_days_of_cover", "库存可售天数中位数·按品类 · Median days of cover by category",
                            "inventory_cover", "snapshot_date", ["median_days_of_cover"], grain=WEEK,
                            groupby=["category_label"], fmt=",.0f", extra={"markerEnabled": False}), 6)],
                   [(series("products_stock_risk_daily", "每日缺货风险与低于安全库存SKU数 · SKUs at stock-out risk or "
                            "below safety stock, daily", "inventory_cover", "snapshot_date",
                            ["risk_skus", "below_safety_skus"], kind="bar", grain=DAY, fmt=",d", extra=WRAP_LEGEND), 12)],
                   [(table("products_stock_list", "库存可售天数与缺货风险清单(最新库存日) · Days of cover and stock-out risk "
                           "(latest snapshot)", "inventory_cover", columns=[
                               "sku_id", "product_name", "category_label", "abc_class", "on_hand", "in_transit",
                               "avg_daily_demand", "days_of_cover", "safety_stock", "stock_status_label", "risk_label"],
                           filters=[latest_snapshot], order=[("is_stockout_risk", False), ("days_of_cover", True)],
                           time_col=None, page=15, formats={"avg_daily_demand": ",.1f", "days_of_cover": ",.1f",
                                                             "safety_stock": ",.0f", "on_hand": ",d", "in_transit": ",d"},
                           description="有缺货风险在前，再按可售天数升序 · at-risk SKUs first, then fewest days of cover"),
                     12)]],
                  heights={0: 30, 2: 56, 3: 70, 4: 76, 7: 40, 8: 76}, note_height=17),
        Dashboard("service", "服务与物流 Service", "发货与配送时长(工作日vs周末、快递、省份)、退货周期、客服首响与解决时长、"
                  "机器人解决率与SLA超时 · Order-to-ship and ship-to-deliver hours, return cycle, service response, "
                  "bot resolution and SLA breaches.",
                  "**发货时长 Order-to-ship** = 首次发货 − 支付(小时) · hours from payment to the first shipment; "
                  "**配送时长 Ship-to-deliver** = 签收 − 发货(小时) · hours from shipment to delivery. 周末 weekend = 支付日"
                  "为周六日 · paid on a Saturday or Sunday. **退货周期 Return cycle** = 完成 − 申请(天) · days from request "
                  "to completion. **首响/解决时长 First response / resolution** = 工单创建到首次回复/解决(小时). "
                  "**SLA超时 breach**: 首响>2小时或解决>24小时(含至今未回复/未解决) · first response over 2 h or resolution "
                  "over 24 h, open tickets included. **机器人解决率 Bot resolution share** = 已解决机器人工单 / 机器人工单.",
                  [[(big_number("service_ship_hours", "平均发货时长 · Avg order-to-ship", "mart_delivery_times",
                                "order_to_ship_hours", ",.1f", subheader="小时 · hours"), 2),
                    (big_number("service_deliver_hours", "平均配送时长 · Avg ship-to-deliver", "mart_delivery_times",
                                "ship_to_deliver_hours", ",.1f", subheader="小时 · hours"), 2),
                    (big_number("service_return_cycle", "平均退货周期 · Avg return cycle", "mart_return_cycle",
                                "return_cycle_days", ",.1f", subheader="天 · days"), 2),
                    (big_number("service_bot_resolution", "机器人解决率 · Bot resolution share", "mart_service_tickets",
                                "bot_resolution_share", ".1%"), 2),
                    (big_number("service_first_response_breach", "首响超时率 · First-response breach share",
                                "mart_service_tickets", "first_response_breach_rate", ".1%", subheader="SLA 2小时 · 2 h"), 2),
                    (big_number("service_resolution_breach", "解决超时率 · Resolution breach share",
                                "mart_service_tickets", "resolution_breach_rate", ".1%", subheader="SLA 24小时 · 24 h"), 2)],
                   [(series("service_day_type", "工作日vs周末时长(小时) · Hours, weekday vs weekend",
                            "mart_delivery_times", "day_type_label", ["order_to_ship_hours", "ship_to_deliver_hours"],
                            kind="bar", x_is_time=False, fmt=",.0f",
                            extra={"show_value": True, "xAxisLabelRotation": 0} | WRAP_LEGEND), 6),
                    (series("service_weekend_ratio", "周末/工作日发货时长倍数 · Weekend vs weekday order-to-ship, ratio",
                            "mart_delivery_day_type", "carrier_label", ["weekend_ratio"], kind="bar", x_is_time=False,
                            filters=[("day_type", "==", "weekend")], fmt=".2f", time_col=None,
                            extra=sorted_bars("weekend_ratio")), 6)],
                   [(carrier_hours("service_carrier_ship", "order_to_ship_hours",
                                   "各快递发货时长(小时) · Order-to-ship hours by carrier"), 6),
                    (carrier_hours("service_carrier_deliver", "ship_to_deliver_hours",
                                   "各快递配送时长(小时) · Ship-to-deliver hours by carrier"), 6)],
                   [(series("service_province", "各省份履约时长(小时) · Fulfilment hours by province (order-to-ship + "
                            "ship-to-deliver)", "mart_delivery_times", "province_label",
                            ["order_to_ship_hours", "ship_to_deliver_hours"], kind="bar", x_is_time=False, stack=True,
                            fmt=",.0f", extra=sorted_bars("ship_to_deliver_hours", horizontal=True) | {"show_value": False}),
                     12)],
                   [(table("service_day_type_table", "时长分位数·按快递(全期) · Hour percentiles by carrier (all time)",
                           "mart_delivery_day_type", columns=[
                               "carrier_label", "day_type_label", "shipped_orders", "avg_order_to_ship_hours",
                               "p50_order_to_ship_hours", "p90_order_to_ship_hours", "delivered_orders",
                               "avg_ship_to_deliver_hours", "p50_ship_to_deliver_hours", "p90_ship_to_deliver_hours",
                               "weekend_weekday_ratio"], order=[("carrier", True), ("day_type", True)], time_col=None,
                           page=12, formats={c: ",.1f" for c in (
                               "avg_order_to_ship_hours", "p50_order_to_ship_hours", "p90_order_to_ship_hours",
                               "avg_ship_to_deliver_hours", "p50_ship_to_deliver_hours", "p90_ship_to_deliver_hours")}
                           | {"weekend_weekday_ratio": ".2f", "shipped_orders": ",d", "delivered_orders": ",d"}), 12)],
                   [(series("service_return_cycle_weekly", "退货周期(天)·按申请周 · Return cycle days by request week",
                            "mart_return_cycle", "requested_date", ["return_cycle_days", "max_return_cycle_days"],
                            grain=WEEK, fmt=",.1f", extra=WRAP_LEGEND), 6),
                    (series("service_return_cycle_category", "各品类平均退货周期(天) · Avg return cycle days by category",
                            "mart_return_cycle", "category_label", ["return_cycle_days"], kind="bar", x_is_time=False,
                            fmt=",.1f", extra=sorted_bars("return_cycle_days")), 6)],
                   [(weekly_by_channel("service_first_response", "first_response_hours",
                                       "首响时长(小时)·按周 · First-response hours, weekly", ",.1f"), 6),
                    (weekly_by_channel("service_resolution", "resolution_hours",
                                       "解决时长(小时)·按周 · Resolution hours, weekly", ",.1f"), 6)],
                   [(series("service_breaches_weekly", "每周SLA超时工单 · SLA breaches per week", "mart_service_tickets",
                            "created_date", ["first_response_breaches_sum", "resolution_breaches_sum"], kind="bar",
                            grain=WEEK, fmt=",d", extra=WRAP_LEGEND), 6),
                    (series("service_breaches_category", "各工单类型SLA超时率 · SLA breach share by ticket category",
                            "mart_service_tickets", "ticket_category_label",
                            ["first_response_breach_rate", "resolution_breach_rate"], kind="bar", x_is_time=False,
                            fmt=PCT, extra=WRAP_LEGEND), 6)],
                   [(table("service_summary", "客服渠道概览(全期) · Service by channel, bot vs human (all time)",
                           "mart_service_summary", columns=[
                               "ticket_channel_label", "tickets", "share_of_tickets", "resolution_share",
                               "avg_first_response_hours", "p50_first_response_hours", "p90_first_response_hours",
                               "avg_resolution_hours", "p50_resolution_hours", "first_response_breach_share",
                               "resolution_breach_share"], order=("tickets", False), time_col=None, page=5,
                           formats={"tickets": ",d", "share_of_tickets": ".1%", "resolution_share": ".1%",
                                    "first_response_breach_share": ".1%", "resolution_breach_share": ".1%"}
                           | {c: ",.2f" for c in ("avg_first_response_hours", "p50_first_response_hours",
                                                  "p90_first_response_hours", "avg_resolution_hours",
                                                  "p50_resolution_hours")}), 12)]],
                  heights={0: 26, 3: 60, 4: 64, 8: 38}, note_height=16),
        Dashboard("marketing", "营销与实验 Marketing & Experiments", "活动归因收入与ROI(大促vs日常)、触达漏斗、优惠券核销、"
                  "A/B实验结果与购物篮品类关联 · Campaign attributed revenue and ROI, touch funnel, coupon redemption, "
                  "A/B test results and basket category pairs.",
                  "**归因收入 Attributed revenue**: 订单归给7天内最后一次点击、否则1天内最后一次打开的触达 · an order is "
                  "credited to the last touch clicked within 7 days, else opened within 1 day. **ROI** = 归因收入 / 投入 "
                  "(1:x); **标记ROI Tagged ROI** 用订单系统打上活动标记的订单 · uses orders the order system tags with "
                  "the campaign. **大促/节日促销 big promotion** = 活动期间含促销日历中的一天(38、618、双11、双12、春节、五一、"
                  "中秋、国庆) · a campaign on a day of the promotion calendar (38, 618, 11.11, 12.12 and the holiday "
                  "sales), whatever its length. 日期筛选按活动开始日 · the date "
                  "filter selects campaigns by start date. **触达漏斗 Touch funnel**: 打开率 open rate = 打开/发送 opened/sent, 点击率 "
                  "click rate = 点击/打开 clicked/opened, 转化率 conversion = 转化/发送 converted/sent. "
                  "**核销率 Redemption rate** = 领券后(首次领券之后)用券下单的客户 / 领券客户 · claimers with a coupon order "
                  "at or after their first claim / claimers. "
                  "**A/B**: 按客户计(一人多账号分到两组的客户剔除并计数) · per customer (a person whose accounts landed in "
                  "two arms is left out and counted); 分配后30天内下单即转化，仅统计窗口完整的客户 · converted = order "
                  "within 30 days of assignment; 提升的95%置信区间、双样本比例z检验,多组按Bonferroni校正 · 95% CIs, "
                  "two-proportion z-test, Bonferroni-adjusted for several treatment arms; SRM = 样本比例失衡 sample-ratio "
                  "mismatch (p<0.001), 按全部已分组客户 · on everyone assigned; 每组最少2,000客户 · 2,000 customers per "
                  "arm minimum. **购物篮 Basket**: 支持度 support "
                  "= 同时购买A和B的比例, 置信度 confidence = 买A的里也买B, 提升度 lift >1 = 比随机更常一起买.",
                  [[(big_number("marketing_attributed_revenue", "归因收入 · Attributed revenue", "mart_campaign_roi",
                                "attributed_revenue_sum", ",.0f", subheader="元 · CNY"), 3),
                    (big_number("marketing_cost", "活动投入 · Campaign cost", "mart_campaign_roi", "cost", ",.0f",
                                subheader="元 · CNY"), 3),
                    (big_number("marketing_roi", "归因ROI · Attributed ROI", "mart_campaign_roi", "attributed_roi",
                                ".2f", subheader="1 : x"), 3),
                    (big_number("marketing_redemption", "优惠券核销率 · Coupon redemption rate", "coupon_redemption",
                                "redemption_rate_total", ".1%", subheader="领券客户中用券下单 · claimers who redeemed"), 3)],
                   [(series("marketing_roi_tier", "ROI·大促vs日常 · ROI, big promotion vs daily", "mart_campaign_roi",
                            "campaign_tier_label", ["attributed_roi", "tagged_revenue_roi", "tagged_gmv_roi_total"],
                            kind="bar", x_is_time=False, fmt=".2f",
                            extra={"show_value": True, "xAxisLabelRotation": 0} | WRAP_LEGEND), 6),
                    (series("marketing_revenue_campaign", "各活动归因收入(元) · Attributed revenue by campaign (CNY)",
                            "mart_campaign_roi", "campaign_label", ["attributed_revenue_sum"], kind="bar",
                            x_is_time=False, fmt=",.0f", extra=sorted_bars("attributed_revenue_sum", horizontal=True)), 6)],
                   [(table("marketing_campaigns", "活动明细 · Campaigns: cost, revenue and ROI", "mart_campaign_roi",
                           columns=["campaign_label", "campaign_tier_label", "campaign_type_label",
                                    "campaign_channel_label", "start_date", "end_date", "cost_amount", "touches_sent",
                                    "attributed_orders", "attributed_revenue", "roi", "tagged_orders", "tagged_gmv",
                                    "tagged_gmv_roi", "tagged_roi"], order=("start_date", False), page=10,
                           formats={"cost_amount": ",.0f", "attributed_revenue": ",.0f", "tagged_gmv": ",.0f",
                                    "roi": ".2f", "tagged_gmv_roi": ".2f", "tagged_roi": ".2f", "touches_sent": ",d",
                                    "attributed_orders": ",d", "tagged_orders": ",d"}), 12)],
                   [(funnel("marketing_touch_funnel", "触达漏斗 · Touch funnel", "touch_funnel", "step_label",
                            "touches_sum"), 4),
                    (series("marketing_touch_rates", "各渠道触达转化率 · Touch rates by channel", "touch_funnel",
                            "touch_channel_label", ["open_rate_total", "click_rate_total", "conversion_rate_total"],
                            kind="bar", x_is_time=False, fmt=".1%", extra={"xAxisLabelRotation": 0} | WRAP_LEGEND
                            | {"sort_series_type": "name", "sort_series_ascending": True}), 4),
                    (pivot("marketing_touch_pivot", "各渠道触达漏斗 · Touch funnel by channel", "touch_funnel",
                           ["touch_channel_label"], ["step_label"], "touches_sum", fmt=",d"), 4)],
                   [(series("marketing_redemption_campaign", "各活动优惠券核销率 · Coupon redemption rate by campaign",
                            "coupon_redemption", "campaign_label", ["redemption_rate_total"], kind="bar",
                            x_is_time=False, fmt=".1%", extra=sorted_bars("redemption_rate_total", horizontal=True)), 5),
                    (table("marketing_coupons", "优惠券核销明细 · Coupon redemption by campaign", "coupon_redemption",
                           columns=["campaign_label", "coupon_claimers", "claimers_redeemed", "redemption_rate",
                                    "coupon_orders", "coupon_order_share", "coupon_revenue"],
                           order=("coupon_orders", False), page=10,
                           formats={"redemption_rate": ".1%", "coupon_order_share": ".1%", "coupon_revenue": ",.0f"}
                           | {c: ",d" for c in ("coupon_claimers", "claimers_redeemed", "coupon_orders")}), 7)],
                   [(table("marketing_experiments", "A/B实验结果 · Experiment results", "mart_experiment_results",
                           columns=["experiment_id", "variant_label", "users_assigned", "users", "conversions",
                                    "conversion_rate", "absolute_lift_ci", "relative_lift_ci", "p_value",
                                    "p_value_adjusted", "srm_label", "min_sample_label", "conflicting_customers",
                                    "verdict_label"], order=[("experiment_id", True), ("is_control", False)],
                           time_col=None, page=20, formats={"conversion_rate": ".2%", "p_value": ".4f",
                                                             "p_value_adjusted": ".4f", "users": ",d",
                                                             "users_assigned": ",d", "conversions": ",d",
                                                             "conflicting_customers": ",d"},
                           description="转化=分配后30天内下单 · conversion = an order within 30 days of assignment"), 12)],
                   [(heatmap("marketing_basket_heatmap", "品类关联提升度(同一订单) · Category lift, same order",
                             "mart_basket_pairs", "category_b_label", "category_label", "lift_avg",
                             filters=[("scope", "==", "order")], fmt=".2f",
                             extra={"xscale_interval": 1, "yscale_interval": 1, "xAxisLabelRotation": 45}), 5),
                    (table("marketing_basket_pairs", "品类关联对 · Basket category pairs", "mart_basket_pairs",
                           columns=["scope_label", "category_label", "category_b_label", "transactions_with_both",
                                    "support", "confidence", "lift", "lift_rank"],
                           order=[("scope", False), ("lift_rank", True)], page=10,
                           formats={"support": ".1%", "confidence": ".1%", "lift": ".2f", "transactions_with_both": ",d"},
                           description="可按口径、品类筛选或搜索 · filter by scope or category, or search"), 7)]],
                  heights={0: 26, 1: 72, 2: 60, 4: 72, 5: 50, 6: 66}, note_height=26),
        alerts_dashboard(),
    ]


def alerts_dashboard() -> Dashboard:
    """Alerts of alerts/*.yml and KPI targets (docs/alerts.md): what fires now, history, targets vs actuals."""
    share_targets = [("segment_type", "==", "all"), ("unit", "==", "share")]

    def rule_vs_baseline(rule_id, title, metrics_, fmt, groupby=()):
        # an anomaly rule's threshold on a noisy day can be below 0: the axis starts at 0 all the same
        return series(f"alerts_{rule_id.replace('.', '_')}", title, "mart_metric_alerts", "metric_date", metrics_,
                      grain=DAY, groupby=groupby, filters=[("rule_id", "==", rule_id)], fmt=fmt,
                      extra={"markerSize": 3, "y_axis_bounds": [0, None]})

    return Dashboard(
        "alerts", "告警 Alerts", "指标告警、告警历史与KPI目标达成 · Metric alerts, their history and KPI targets "
        "against actuals.",
        "来源 Source: marts.mart_metric_alerts (规则 rules: alerts/*.yml, docs/alerts.md) 与 and "
        "marts.mart_kpi_targets (dbt/seeds/kpi_targets.csv). **告警中 Firing**: 连续达到规则条件的日期,"
        "自首个违规日起 · dates breaching the rule, since the first breaching date; **已恢复 Resolved**: "
        "告警后第一个正常日 · the first good date after firing; **未评估 Not evaluated**: 数据不足、促销日或节假日"
        "无去年同日可比 · too little history, or a promotion day or holiday without the same day a year "
        "earlier. **基线 Baseline**: 比较对象(固定阈值、上周同日或季节性基线) · what the value was compared with. "
        "**KPI目标 Targets**: 按月比较,未完整的月份为暂估 · compared per month; an incomplete month is "
        "provisional.",
        [[(table("alerts_firing_now", "正在告警 · Firing now", "alerts_firing_now",
                 columns=["rule_label", "severity_label", "dims", "since", "metric_date", "value", "baseline",
                          "threshold"], order=[("since", True)], page=10, time_col=None,
                 formats={"value": ",.3f", "baseline": ",.3f", "threshold": ",.3f"},
                 description="各规则与分组最新评估日仍在告警的 · rules and groups firing on their latest "
                             "evaluated date"), 12)],
         [(series("alerts_history", "告警历史·每周告警天数按规则 · Alert history: firing days per week by rule",
                  "mart_metric_alerts", "metric_date", ["firing_days"], kind="bar", grain=WEEK,
                  groupby=["rule_label"], stack=True, fmt=",d", extra=WRAP_LEGEND), 8),
          (series("alerts_states", "每日评估状态 · Evaluations per day by state", "mart_metric_alerts",
                  "metric_date", ["evaluations"], kind="bar", grain=DAY, groupby=["state_label"], stack=True,
                  fmt=",d"), 4)],
         [(rule_vs_baseline("growth.d1_retention_drop", "新用户次日留存·值/基线/阈值 · D1 retention: value, "
                            "baseline, alert threshold", ["value_avg", "baseline_avg", "threshold_avg"], PCT), 4),
          (rule_vs_baseline("operations.gmv_anomaly", "日GMV·值/基线/阈值 · Daily GMV: value, baseline, alert "
                            "threshold", ["value_avg", "baseline_avg", "threshold_avg"], ",.0f"), 4),
          (rule_vs_baseline("operations.payment_success_drop", "支付成功率·按平台 · Payment success rate by "
                            "platform", ["value_avg"], PCT, groupby=["dims"]), 4)],
         [(series("alerts_targets", "KPI目标与实际·按月 · KPI targets vs actuals by month", "mart_kpi_targets",
                  "period_start", ["actual_avg", "target_avg"], kind="bar", grain=MONTH, groupby=["metric_label"],
                  filters=share_targets, fmt=PCT, extra={"x_axis_time_format": "%Y-%m", **WRAP_LEGEND}), 6),
          (table("alerts_targets_table", "KPI目标达成 · KPI targets and status", "mart_kpi_targets",
                 columns=["period_start", "metric_label", "target_value", "actual_value", "gap", "is_final",
                          "target_status_label"], filters=[("segment_type", "==", "all")],
                 order=[("period_start", False), ("metric", True)], page=12,
                 formats={"target_value": ".3~f", "actual_value": ".3f", "gap": "+.3f"}), 6)],
         [(table("alerts_episodes", "告警事件 · Alert episodes", "alert_episodes",
                 columns=["rule_label", "severity_label", "dims", "since", "last_firing_date", "days_firing",
                          "resolved_date"], order=[("since", False)], page=15, time_col="since",
                 formats={"days_firing": ",d"},
                 description="恢复日期为空表示仍在告警 · no resolved date: still firing"), 12)]],
        heights={1: 60, 2: 50, 3: 56}, colors=ALERT_COLORS, note_height=20)


# ---------------------------------------------------------------------------------------------
# Writers
def _column_entries(ds: Dataset, dbt: dict[str, DbtTable]) -> list[dict]:
    if ds.columns is not None:
        cols = [(name, typ, None) for name, typ in ds.columns.items()]
    else:
        types = PYTHON_MART_TYPES.get(ds.name, {})
        table = dbt.get(ds.name) or _undeclared(ds.name)
        cols = [(name, (dtype or types.get(name) or "varchar").upper(), desc)
                for name, (dtype, desc) in table.columns.items()]
    out = [{"column_name": name, "verbose_name": ds.labels.get(name) or LABELS.get(name), "is_dttm": typ in ("DATE", "TIMESTAMP"),
            "is_active": True, "type": typ, "advanced_data_type": None, "groupby": True, "filterable": True,
            "expression": None, "description": desc, "python_date_format": None, "extra": {}}
           for name, typ, desc in cols]
    out += [{"column_name": name, "verbose_name": label, "is_dttm": False, "is_active": True, "type": typ,
             "advanced_data_type": None, "groupby": True, "filterable": True, "expression": sql,
             "description": None, "python_date_format": None, "extra": {}}
            for name, (sql, label, typ) in ds.calc.items()]
    return out


def dataset_yaml(ds: Dataset, dbt: dict[str, DbtTable]) -> dict:
    return {
        "table_name": ds.name, "main_dttm_col": ds.dttm, "description": ds.description,
        "default_endpoint": None, "offset": 0, "cache_timeout": None, "catalog": None, "schema": SCHEMA,
        "sql": ds.sql, "params": None, "template_params": None, "filter_select_enabled": True,
        "fetch_values_predicate": None, "extra": None, "normalize_columns": False, "always_filter_main_dttm": False,
        "uuid": ds.uuid,
        "metrics": [{"metric_name": name, "verbose_name": label, "metric_type": None, "expression": sql,
                     "description": None, "d3format": fmt or None, "currency": None, "extra": {},
                     "warning_text": None} for name, (sql, label, fmt) in ds.metrics.items()],
        "columns": _column_entries(ds, dbt),
        "version": VERSION, "database_uuid": uid("database", DATABASE),
    }


def database_yaml() -> dict:
    # The serving copy is the pipeline's published file: Superset may read it, never write to it,
    # and DuckDB may not reach files or URLs beyond it (read_csv, ATTACH, httpfs) from SQL Lab.
    return {
        "database_name": DATABASE, "sqlalchemy_uri": "duckdb:///${EW_SERVING_PATH}", "cache_timeout": None,
        "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False, "allow_cvas": False,
        "allow_dml": False, "allow_file_upload": False,
        "extra": {"allows_virtual_table_explore": True, "metadata_params": {}, "schemas_allowed_for_file_upload": [],
                  # the memory cap and the missing temporary directory: superset_config.py explains
                  "engine_params": {"connect_args": {"read_only": True, "config": {
                      "enable_external_access": False, "memory_limit": "2GB", "temp_directory": ""}}}},
        "impersonate_user": False, "uuid": uid("database", DATABASE), "version": VERSION,
    }


def chart_yaml(c: Chart, dash: Dashboard) -> dict:
    ds = DS[c.dataset]
    params = {**c.params, "slice_id": c.id, "dashboards": []}
    query_context = {"datasource": {"id": 0, "type": "table"}, "force": False, "queries": [c.query],
                     "form_data": {**params, "force": False, "result_format": "json", "result_type": "full"},
                     "result_format": "json", "result_type": "full"}
    return {"slice_name": c.title, "description": c.description, "certified_by": None,
            "certification_details": None, "viz_type": c.viz, "params": params,
            "query_context": json.dumps(query_context, ensure_ascii=False, sort_keys=True),
            "cache_timeout": None, "uuid": c.uuid, "version": VERSION, "dataset_uuid": ds.uuid}


def has_column(ds: Dataset, col: str, dbt: dict[str, DbtTable]) -> bool:
    return any(e["column_name"] == col for e in _column_entries(ds, dbt))


# Select filters: label column, name, and the raw columns it labels. A dashboard gets each one
# whose label column some chart's dataset has.
SELECT_FILTERS = [
    ("channel_label", "渠道 · Channel", ()), ("platform_label", "平台 · Platform", ()),
    ("category_label", "品类 · Category", ("category_l1", "category_a")),
    ("carrier_label", "快递公司 · Carrier", ("carrier",)), ("province_label", "省份 · Province", ("province",)),
    ("ticket_channel_label", "客服渠道 · Service channel", ("channel",)),
    ("campaign_tier_label", "活动档位 · Campaign tier", ("campaign_tier",)),
    ("touch_channel_label", "触达渠道 · Touch channel", ("channel",)),
    ("scope_label", "购物篮口径 · Basket scope", ("scope",)),
    ("rule_label", "规则 · Rule", ("rule_id",)),
]


def native_filters(d: Dashboard, dbt: dict[str, DbtTable]) -> list[dict]:
    """Date range, plus a select (channel, platform, category...) where a chart's dataset has the label column.

    A filter only reaches the charts whose dataset has its column (the rest are excluded), so no
    chart errors on a column it lacks; charts over a current snapshot or model fit ignore dates.
    """
    ids = [c.id for c in d.charts]
    specs = [("time", "日期 · Date range", "filter_time", None,
              [c.id for c in d.charts if c.time_col])]
    for col, label, raw in SELECT_FILTERS:
        # "all" rows carry the whole cohort: charts reading them stay out of a channel filter, and so
        # do charts pinned to one value of the column (a heatmap of one basket scope).
        scoped = [c for c in d.charts if has_column(DS[c.dataset], col, dbt)
                  and not any(f["operator"] == "==" and (f["comparator"] == "all" or f["subject"] in raw)
                              for f in c.params["adhoc_filters"])]
        if scoped:
            # the filter's values come from a dataset without 'all' rows where there is one
            source = next((c for c in scoped if not DS[c.dataset].totals), scoped[0])
            specs.append((col, label, "filter_select", source.dataset, [c.id for c in scoped]))
    out = []
    for key, name, ftype, ds, in_scope in specs:
        control = {"enableEmptyFilter": False}
        if ftype == "filter_select":
            control |= {"defaultToFirstItem": False, "multiSelect": True, "searchAllOptions": False,
                        "inverseSelection": False}
        out.append({
            "id": f"NATIVE_FILTER-{d.slug}-{key}".replace("_", "-"), "name": name, "filterType": ftype,
            "targets": [{"column": {"name": key}, "datasetUuid": DS[ds].uuid}] if ds else [{}],
            "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
            "cascadeParentIds": [], "controlValues": control, "type": "NATIVE_FILTER", "description": "",
            # chartsInScope is left to Superset: it derives it from scope with the ids the import assigns.
            "scope": {"rootPath": ["ROOT_ID"], "excluded": [i for i in ids if i not in in_scope]},
            "tabsInScope": [],
        })
    return out


def position(d: Dashboard) -> dict:
    pos: dict = {"DASHBOARD_VERSION_KEY": "v2",
                 "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
                 "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
                 "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": d.title}}}
    rows = [[("MARKDOWN-note", 12, None)]] + [[(c, w, None) for c, w in row] for row in d.rows]
    for r, row in enumerate(rows):
        row_id = f"ROW-{r}"
        pos["GRID_ID"]["children"].append(row_id)
        pos[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                       "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        height = d.note_height if r == 0 else d.heights.get(r - 1, 50)
        for item, width, _ in row:
            parents = ["ROOT_ID", "GRID_ID", row_id]
            if isinstance(item, str):
                pos[item] = {"type": "MARKDOWN", "id": item, "children": [], "parents": parents,
                             "meta": {"width": width, "height": height, "code": d.note}}
                pos[row_id]["children"].append(item)
                continue
            cid = f"CHART-{item.key}"
            pos[cid] = {"type": "CHART", "id": cid, "children": [], "parents": parents,
                        "meta": {"width": width, "height": height, "chartId": item.id, "uuid": item.uuid,
                                 "sliceName": item.title}}
            pos[row_id]["children"].append(cid)
    return pos


def dashboard_yaml(d: Dashboard, dbt: dict[str, DbtTable]) -> dict:
    metadata = {
        "native_filter_configuration": native_filters(d, dbt), "chart_configuration": {},
        "global_chart_configuration": {"scope": {"rootPath": ["ROOT_ID"], "excluded": []}, "chartsInScope": []},
        "color_scheme": "supersetColors", "label_colors": d.colors, "shared_label_colors": [],
        "map_label_colors": {}, "color_scheme_domain": [], "cross_filters_enabled": False,
        "refresh_frequency": 0, "timed_refresh_immune_slices": [], "expanded_slices": {},
        "default_filters": "{}", "positions": {},
    }
    return {"dashboard_title": d.title, "description": d.description, "css": "", "slug": d.slug,
            "uuid": d.uuid, "position": position(d), "metadata": metadata, "version": VERSION,
            "published": True, "certified_by": None, "certification_details": None}


def dashboard_tables(d: Dashboard) -> set[str]:
    return set().union(*(DS[c.dataset].tables() for c in d.charts))


def exposures_yaml(dash: list[Dashboard], dbt: dict[str, DbtTable]) -> dict:
    out = []
    for d in dash:
        out.append({
            "name": f"superset_{d.slug.replace('-', '_')}", "label": d.title, "type": "dashboard",
            "maturity": "medium", "url": f"{SUPERSET_URL}/superset/dashboard/{d.slug}/",
            "description": d.description, "owner": {"name": "Operations analytics"},
            "depends_on": [ref(dbt[t]) for t in sorted(dashboard_tables(d)) if t in dbt],
        })
    return {"version": 2, "exposures": out}


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def render() -> dict[Path, str]:
    """Every generated file, path -> text."""
    dbt = load_dbt_tables()
    dash = dashboards()
    keys = [c.key for d in dash for c in d.charts]
    if len(keys) != len(set(keys)):
        raise SystemExit("chart keys must be unique")
    for n, c in enumerate((c for d in dash for c in d.charts), start=1):
        c.id = n
    used = {c.dataset for d in dash for c in d.charts}
    files = {BUNDLE / "metadata.yaml": _dump({"version": VERSION, "type": "assets", "timestamp": TIMESTAMP}),
             BUNDLE / "databases" / f"{DATABASE}.yaml": _dump(database_yaml())}
    for ds in DATASETS:
        if ds.name in used:
            files[BUNDLE / "datasets" / DATABASE / f"{ds.name}.yaml"] = _dump(dataset_yaml(ds, dbt))
    for d in dash:
        for c in d.charts:
            files[BUNDLE / "charts" / f"{_slug(c.key)}_{c.id}.yaml"] = _dump(chart_yaml(c, d))
        files[BUNDLE / "dashboards" / f"{d.slug}.yaml"] = _dump(dashboard_yaml(d, dbt))
    header = ("# Generated by superset/build_bundle.py from the dashboard definitions: edit those, then run\n"
              "# `.venv/bin/python superset/build_bundle.py`. One exposure per Superset dashboard.\n")
    files[EXPOSURES] = header + _dump(exposures_yaml(dash, dbt))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in files differ")
    args = parser.parse_args(argv)
    files = render()
    stale = [p for p in BUNDLE.rglob("*.yaml") if p not in files] if BUNDLE.exists() else []
    if args.check:
        differ = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for p in differ + stale:
            print(f"out of date: {p.relative_to(REPO)}", file=sys.stderr)
        if differ or stale:
            print("run: .venv/bin/python superset/build_bundle.py", file=sys.stderr)
            return 1
        return 0
    for p in stale:
        p.unlink()
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            p.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files ({len(stale)} stale removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
