"""Raw-source suites (expectations/raw_<source>.json): they load, their queries run, a clean frame
passes, planted violations fail exactly the expectations they target with the right counts and
severity, and the generator's clean data passes every one of them.

Frames go through the suite's own query: each is inserted into an in-memory DuckDB `raw.<source>`
table built from the contract DDL, then the query's result is validated, as the Dagster check does.
That also tests the columns some queries compute (landing lag, transit hours, variants per user).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest

from dagster_project.lib.contract import AMOUNT, DATE, INT, SOURCE_NAMES, SOURCES, TS, raw_table_ddl
from dagster_project.lib.quality import SEVERITIES, LoadScope, QualityRunner, discover_suites, render_scope

RAW_SUITES = {s.name: s for s in discover_suites() if s.name.startswith("raw_")}
OURS = [s for s in SOURCE_NAMES if s != "orders"]  # raw_orders is the model, tested elsewhere

H1 = hashlib.sha256(b"13800000001").hexdigest()
H2 = hashlib.sha256(b"13800000002").hexdigest()


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return QualityRunner(tmp_path_factory.mktemp("gx"), build_docs=False)


# ---------------------------------------------------------------------------------------------
# frames


def _file_date(name: str) -> pd.Timestamp:
    return pd.Timestamp(re.search(r"_(\d{8})", name).group(1))


def frame(source: str, rows: list[dict]) -> pd.DataFrame:
    """Rows (contract columns, `_file` optional) -> a typed frame with lineage columns."""
    src = SOURCES[source]
    default_file = f"{source}_20260601.csv"
    data = {}
    for c in src.columns:
        values = [r.get(c.name) for r in rows]
        if c.kind in (TS, DATE):
            data[c.name] = pd.to_datetime(pd.Series(values, dtype="object")).astype("datetime64[us]")
        elif c.kind == INT:
            data[c.name] = pd.Series(values, dtype="Int64")
        elif c.kind == AMOUNT:
            data[c.name] = pd.Series(values, dtype="float64")
        else:
            data[c.name] = pd.Series(values, dtype="object")
    files = [r.get("_file", default_file) for r in rows]
    data["_file"] = files
    data["_file_date"] = pd.Series([_file_date(f) for f in files]).astype("datetime64[us]")
    data["_row"] = pd.Series(range(1, len(rows) + 1), dtype="int64")
    data["_load_id"] = "test-load"
    data["_loaded_at"] = pd.Timestamp("2026-06-10 00:00:00")
    return pd.DataFrame(data)


def raw_db(source: str, df: pd.DataFrame | None) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse whose raw.<source> holds df (empty when None). The fixtures' dates
    are fixed: none is in the future of any clock but 2099 placeholders."""
    con = duckdb.connect()
    con.execute("create schema raw")
    for s in SOURCE_NAMES:
        con.execute(raw_table_ddl(s))
    if df is not None:
        con.register("frame", df)
        con.execute(f"insert into raw.{source} by name select * from frame")
        con.unregister("frame")
    return con


def query_frame(source: str, df: pd.DataFrame | None) -> pd.DataFrame:
    """What the suite validates: its query over a raw table holding df."""
    with raw_db(source, df) as con:
        return con.sql(RAW_SUITES[f"raw_{source}"].query).df()


def validate_rows(runner, source: str, rows: list[dict] | None):
    """The suite validated as the check does it: compiled to SQL over the rows in DuckDB."""
    suite = RAW_SUITES[f"raw_{source}"]
    with raw_db(source, None if rows is None else frame(source, rows)) as con:
        return runner.validate_query(suite, con, suite.query)


# ---------------------------------------------------------------------------------------------
# naming expectations in tests: (short type, column(s), severity)

SHORT = {
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_unique": "unique",
    "expect_compound_columns_to_be_unique": "unique",
    "expect_column_values_to_be_in_set": "in_set",
    "expect_column_values_to_be_between": "between",
    "expect_column_values_to_match_regex": "regex",
    "expect_column_pair_values_a_to_be_greater_than_b": "after",
    "expect_column_values_to_not_be_in_set": "not_in_set",
    "expect_column_values_to_be_json_parseable": "json",
    "expect_column_unique_value_count_to_be_between": "distinct_count",
    "expect_column_values_to_be_null": "null",
}


def label(type_: str, kwargs: dict, severity: str) -> tuple[str, str, str]:
    if "column_list" in kwargs:
        cols = "+".join(kwargs["column_list"])
    elif "column_A" in kwargs:
        cols = f"{kwargs['column_A']}>{kwargs['column_B']}"
    else:
        cols = kwargs["column"]
    return SHORT.get(type_, type_), cols, severity


@dataclass
class Case:
    name: str
    rows: list[dict]          # appended to the source's clean rows
    failures: dict            # label -> unexpected_count (int) or observed value (float)
    critical: bool            # SuiteOutcome.critical_failed expected


def L(short: str, cols: str, severity: str = "critical") -> tuple[str, str, str]:
    return short, cols, severity


# ---------------------------------------------------------------------------------------------
# clean rows and planted violations, per source

U = dict(registered_at="2026-05-20 02:00:00", channel="app", phone_hash=H1, province="广东省", city="广州市",
         member_level=0, birth_year=1990)
P = dict(spu_id="SPU1001", product_name="维生素C咀嚼片 60粒", category_l1="vitamins", category_l2="维生素",
         brand="汤臣倍健", list_price=99.0, cost_price=45.5)
OI = dict(sku_id="SKU10001", quantity=1, unit_price=99.0, discount_amount=None)
EV = dict(event_ts="2026-06-01 03:00:00", anonymous_id="A1", user_id="U001", session_id="S1",
          event_name="page_view", platform="ios", _file="events_20260601.jsonl")
R = dict(order_id="O1", sku_id="SKU10001", quantity=1, amount=99.0, reason="质量问题",
         requested_at="2026-06-01 02:00:00", status="requested", _file="returns_20260601.csv")
SH = dict(order_id="O1", carrier="顺丰", warehouse_id="WH-SH", shipped_at="2026-06-01 08:00:00",
          province="广东省", _file="shipments_20260601.parquet")
TK = dict(user_id="U001", order_id="O1", channel="bot", category="物流查询", created_at="2026-06-01 10:00:00",
          first_response_at="2026-06-01 10:00:05", resolved_at="2026-06-01 10:05:00", csat=5,
          _file="cs_tickets_20260601.jsonl")
C = dict(name="88会员节", type="coupon", channel="app", start_at="2026-08-07 16:00:00",
         end_at="2026-08-08 15:59:59", cost=20000.0, _file="campaigns_20260520.csv")
T = dict(campaign_id="C001", user_id="U001", channel="sms", sent_at="2026-06-01 02:00:00",
         _file="marketing_touches_20260601.parquet")
INV = dict(snapshot_date="2026-06-01", sku_id="SKU10001", warehouse_id="WH-SH", on_hand=120, in_transit=0,
           safety_stock=30, _file="inventory_snapshots_20260601.csv.gz")
XA = dict(experiment_id="exp_checkout_v2", variant="control", assigned_at="2026-06-01 02:00:00",
          _file="experiment_assignments_20260601.csv")
ME = dict(user_id="U001", event_ts="2026-06-01 02:00:00", type="join", level=1, points=None, order_id=None,
          _file="member_events_20260601.csv")
AD = dict(date="2026-06-01", channel="douyin", campaign_id=None, spend=1200.5, impressions=30000, clicks=360,
          _file="ad_spend_20260601.csv")
PDE = dict(external_user_id="wm001", user_id="U001", event_ts="2026-06-01 02:00:00", channel="wecom_group",
           event_type="message_read", group_id="G001", campaign_id=None, staff_id="S01",
           sent_at="2026-06-01 01:00:00", _file="private_domain_events_20260601.csv")

CLEAN: dict[str, list[dict]] = {
    "users": [
        dict(U, user_id="U001"),
        dict(U, user_id="U002", channel="tmall", registered_at="2026-05-21 12:30:00", member_level=3),  # same phone
        dict(U, user_id="U003", channel="web", phone_hash=H2, province=None, city=None, member_level=5,
             birth_year=None),
        dict(U, user_id="U004", channel="offline", phone_hash=None, member_level=1, birth_year=2001),
    ],
    "products": [
        dict(P, sku_id="SKU10001", _file="products_20260520.csv"),
        dict(P, sku_id="SKU10002", product_name="维生素C咀嚼片 90粒", list_price=129.0, cost_price=60.0,
             launched_at="2026-05-22 02:00:00", delisted_at="2026-10-01 02:00:00", _file="products_20260522.csv"),
        dict(P, sku_id="SKU10003", product_name="乳清蛋白粉 900g", category_l1="protein_powder",
             list_price=299.0, cost_price=150.0, launched_at="2012-03-01 00:00:00", _file="products_20260520.csv"),
        # re-sent when delisted: a key in two files is allowed for master data
        dict(P, sku_id="SKU10001", delisted_at="2026-09-01 00:00:00", _file="products_20260901.csv"),
    ],
    "order_items": [
        dict(OI, order_id="O1", line_no=1, quantity=2, discount_amount=10.0),
        dict(OI, order_id="O1", line_no=2, sku_id="SKU10002", unit_price=129.0),
        dict(OI, order_id="O2", line_no=1, sku_id="SKU10003", unit_price=0.0, discount_amount=0.0),  # gift line
    ],
    "events": [
        # 01:00 business time on 2026-06-01 is 17:00 UTC the day before: lag 1 in UTC dates
        dict(EV, event_id="E1", event_ts="2026-05-31 17:00:00", user_id=None, event_name="app_open"),
        dict(EV, event_id="E2", event_name="login"),
        dict(EV, event_id="E3", event_name="product_view", sku_id="SKU10001", properties='{"source":"search"}'),
        dict(EV, event_id="E4", event_name="add_to_cart", sku_id="SKU10001"),
        dict(EV, event_id="E5", event_name="payment_success", order_id="O1", properties='{"pay_method":"wechat"}'),
        dict(EV, event_id="E6", event_ts="2026-05-29 10:00:00", platform="mini_program"),  # 3 days late
    ],
    "returns": [
        dict(R, return_id="R1"),
        dict(R, return_id="R1", approved_at="2026-06-02 03:00:00", status="approved", _file="returns_20260602.csv"),
        dict(R, return_id="R1", approved_at="2026-06-02 03:00:00", completed_at="2026-06-05 04:00:00",
             status="completed", _file="returns_20260605.csv"),
        dict(R, return_id="R2", order_id="O2", sku_id=None, quantity=None, amount=300.0,
             requested_at="2026-06-01 05:00:00", status="rejected", _file="returns_20260602.csv"),
    ],
    "shipments": [
        dict(SH, shipment_id="SH1"),
        dict(SH, shipment_id="SH1", delivered_at="2026-06-03 10:00:00", _file="shipments_20260603.parquet"),
        dict(SH, shipment_id="SH2", order_id="O2", carrier="中通", warehouse_id="WH-GZ", province=None,
             shipped_at="2026-06-02 09:00:00", delivered_at="2026-06-02 20:00:00", _file="shipments_20260602.parquet"),
    ],
    "cs_tickets": [
        dict(TK, ticket_id="TK1"),
        dict(TK, ticket_id="TK2", user_id="U002", order_id=None, channel="human", category="商品咨询",
             created_at="2026-06-01 11:00:00", first_response_at="2026-06-01 13:00:00", resolved_at=None, csat=None),
        dict(TK, ticket_id="TK2", user_id="U002", order_id=None, channel="human", category="商品咨询",
             created_at="2026-06-01 11:00:00", first_response_at="2026-06-01 13:00:00",
             resolved_at="2026-06-02 09:00:00", csat=4, _file="cs_tickets_20260602.jsonl"),
        dict(TK, ticket_id="TK3", user_id=None, created_at="2026-06-02 08:00:00",
             first_response_at="2026-06-02 08:00:10", resolved_at=None, csat=None, _file="cs_tickets_20260602.jsonl"),
    ],
    "campaigns": [
        dict(C, campaign_id="C001", name="618年中大促", type="full_reduction", channel="all",
             start_at="2026-05-31 16:00:00", end_at="2026-06-18 15:59:59", cost=1500000.0),
        dict(C, campaign_id="C002"),
        dict(C, campaign_id="C002", cost=25000.0, _file="campaigns_20260701.csv"),  # budget raised: re-sent
    ],
    "marketing_touches": [
        dict(T, touch_id="T1", opened_at="2026-06-01 03:00:00", clicked_at="2026-06-01 03:05:00"),
        dict(T, touch_id="T2", user_id="U002", channel="push"),
        dict(T, touch_id="T2", user_id="U002", channel="push", opened_at="2026-06-01 09:00:00",
             _file="marketing_touches_20260602.parquet"),  # re-sent once the open is known
        dict(T, touch_id="T3", user_id="U003", channel="email", clicked_at="2026-06-01 05:00:00"),  # open not seen
    ],
    "inventory_snapshots": [
        dict(INV),
        dict(INV, warehouse_id="WH-GZ", on_hand=0, in_transit=50, safety_stock=None),
        dict(INV, sku_id="SKU10002", on_hand=45, in_transit=None, safety_stock=10),
        dict(INV, snapshot_date="2026-05-31", sku_id="SKU10003", warehouse_id="WH-CD"),  # a late snapshot
        dict(INV, snapshot_date="2026-06-02", on_hand=110, _file="inventory_snapshots_20260602.csv.gz"),
    ],
    "experiment_assignments": [
        dict(XA, user_id="U001"),
        dict(XA, user_id="U002", variant="treatment"),
        dict(XA, user_id="U003", assigned_at="2026-06-01 09:00:00"),
        dict(XA, user_id="U004", variant="treatment", assigned_at="2026-06-01 09:30:00"),
    ],
    "member_events": [
        dict(ME, event_id="ME1"),
        dict(ME, event_id="ME2", event_ts="2026-06-01 03:00:00", type="points_earned", level=None, points=128,
             order_id="O1"),
        dict(ME, event_id="ME3", event_ts="2026-06-01 04:00:00", type="level_up", level=2),
        dict(ME, event_id="ME4", event_ts="2026-06-01 05:00:00", type="points_redeemed", level=None, points=100),
        dict(ME, event_id="ME5", event_ts="2026-06-01 06:00:00", type="benefit_used", level=None),
    ],
    "ad_spend": [
        dict(AD),  # brand spend: no campaign
        dict(AD, campaign_id="C001", spend=800.0),
        dict(AD, channel="mini_program", spend=0, impressions=None, clicks=None),
        dict(AD, _file="ad_spend_20260602.csv", spend=1250.0),  # the day's brand spend corrected a day later
    ],
    "private_domain_events": [
        dict(PDE, event_id="PD1", channel="wecom_contact", event_type="contact_added", group_id=None, sent_at=None),
        dict(PDE, event_id="PD2", event_type="message_sent", sent_at=None),
        dict(PDE, event_id="PD3", user_id=None),  # WeCom knows only the external contact
        dict(PDE, event_id="PD4", event_ts="2026-06-01 01:00:00"),  # read the second it was sent
    ],
}

CASES: dict[str, list[Case]] = {
    "users": [
        Case("warnings", [
            dict(U, user_id="U001", member_level=1, _file="users_20260602.csv"),  # a profile update
            dict(U, user_id="U005", phone_hash=H2, birth_year=1910),
            *[dict(U, user_id=f"U10{i}", phone_hash=None) for i in range(3)],
        ], {L("between", "_user_id_rows", "warning"): 2, L("between", "birth_year", "warning"): 1,
            L("not_null", "phone_hash", "warning"): 4}, critical=False),
        Case("criticals", [
            dict(U, user_id="U010", phone_hash=H1.upper()),
            dict(U, user_id="U011", member_level=7),
            dict(U, user_id="U012", registered_at="1970-01-01 00:00:00"),
            dict(U, user_id="U013", channel="myspace"),
            dict(U, user_id="U014"), dict(U, user_id="U014"),
            dict(U, user_id="U015", registered_at=None),
        ], {L("regex", "phone_hash"): 1, L("between", "member_level"): 1,
            L("null", "_registered_at_implausible", "warning"): 1,
            L("in_set", "channel"): 1, L("unique", "user_id+_file"): 2, L("between", "_user_id_rows", "warning"): 2,
            L("not_null", "registered_at"): 1}, critical=True),
    ],
    "products": [
        Case("warnings", [
            dict(P, sku_id="SKU4", list_price=0.0, cost_price=0.0),
            dict(P, sku_id="SKU5", cost_price=None),
            dict(P, sku_id="SKU6", list_price=150.0, cost_price=200.0),
            dict(P, sku_id="SKU7", product_name="Ã§Â»Â´Ã§Â”ŸÃ§Â´Â C 60"),
            dict(P, sku_id="SKU8", launched_at="2026-02-01 00:00:00", delisted_at="2026-01-01 00:00:00"),
        ], {L("between", "list_price", "warning"): 1, L("not_null", "cost_price", "warning"): 1,
            L("after", "list_price>cost_price", "warning"): 1, L("regex", "product_name", "warning"): 1,
            L("after", "delisted_at>launched_at", "warning"): 1}, critical=False),
        Case("criticals", [
            dict(P, sku_id="SKU9", list_price=None),
            dict(P, sku_id="SKU10", product_name=None),
            dict(P, sku_id="SKU11", launched_at="2099-01-01 00:00:00"),
            dict(P, sku_id="SKU10003", _file="products_20260520.csv"),  # twice in one file
        ], {L("not_null", "list_price"): 1, L("not_null", "product_name"): 1,
            L("null", "_launched_at_implausible", "warning"): 1,
            L("unique", "sku_id+_file"): 2}, critical=True),
        Case("category_l1 fragments", [
            dict(P, sku_id=f"SKU2{i:02d}", category_l1=f"类目{i}") for i in range(30)
        ], {L("between", "_category_l1_values", "warning"): 34}, critical=False),
    ],
    "order_items": [
        Case("warnings", [
            dict(OI, order_id="O1", line_no=1, quantity=2, discount_amount=10.0, _file="order_items_20260602.csv"),
            dict(OI, order_id="O3", line_no=1, quantity=500),
            dict(OI, order_id="O4", line_no=1, unit_price=99999.0),
        ], {L("between", "_order_line_rows", "warning"): 2, L("between", "quantity", "warning"): 1,
            L("between", "unit_price", "warning"): 1}, critical=False),
        Case("criticals", [
            dict(OI, order_id="O5", line_no=1, discount_amount=300.0),
            dict(OI, order_id="O6", line_no=0),
            dict(OI, order_id="O7", line_no=1, quantity=0),
            dict(OI, order_id="O8", line_no=1, sku_id=None),
            dict(OI, order_id="O2", line_no=1, sku_id="SKU10003", unit_price=0.0, discount_amount=0.0),
        ], {L("after", "_line_gross_amount>discount_amount", "warning"): 1, L("between", "line_no"): 1,
            L("between", "quantity"): 1, L("not_null", "sku_id"): 1, L("unique", "order_id+line_no+_file"): 2,
            L("between", "_order_line_rows", "warning"): 2}, critical=True),
    ],
    "events": [
        Case("warnings", [
            dict(EV, event_id="E1", event_ts="2026-05-31 17:00:00", user_id=None, event_name="app_open",
                 _file="events_20260602.jsonl"),
            dict(EV, event_id="E7", event_ts="2026-05-20 10:00:00"),
            dict(EV, event_id="E8", event_name="payment_success"),
            dict(EV, event_id="E9", event_name="login", user_id=None),
            dict(EV, event_id="E10", event_name="product_view"),
            dict(EV, event_id="E11", properties='{"source":'),
        ], {L("between", "_event_id_rows", "warning"): 2, L("between", "_landing_lag_days", "warning"): 1,
            L("not_null", "order_id", "warning"): 1, L("not_null", "user_id", "warning"): 1,
            L("not_null", "sku_id", "warning"): 1, L("json", "properties", "warning"): 1}, critical=False),
        Case("criticals", [
            dict(EV, event_id="E12", event_ts="1970-01-01 00:00:00"),
            dict(EV, event_id="E13", platform="harmonyos"),
            dict(EV, event_id="E14", session_id=None),
            dict(EV, event_id="E2", event_name="login"),
        ], {L("null", "_event_ts_implausible", "warning"): 1, L("between", "_landing_lag_days", "warning"): 1,
            L("in_set", "platform"): 1, L("not_null", "session_id"): 1, L("unique", "event_id+_file"): 2,
            L("between", "_event_id_rows", "warning"): 2}, critical=True),
    ],
    "returns": [
        Case("warnings", [
            dict(R, return_id="R3", amount=250000.0),
            dict(R, return_id="R4", approved_at="2026-06-01 01:00:00", status="approved"),
            dict(R, return_id="R5", approved_at="2026-06-02 01:00:00", status="completed"),
            dict(R, return_id="R6", status="approved"),
        ], {L("between", "amount", "warning"): 1, L("after", "approved_at>requested_at", "warning"): 1,
            L("not_null", "completed_at", "warning"): 1, L("not_null", "approved_at", "warning"): 1},
            critical=False),
        Case("criticals", [
            dict(R, return_id="R7", status="lost_in_space"),
            dict(R, return_id="R8", quantity=0),
            dict(R, return_id="R9", requested_at="2099-01-01 00:00:00"),
            dict(R, return_id="R10", order_id=None),
            dict(R, return_id="R1"),
        ], {L("in_set", "status"): 1, L("between", "quantity"): 1, L("null", "_requested_at_implausible", "warning"): 1,
            L("not_null", "order_id"): 1, L("unique", "return_id+_file"): 2}, critical=True),
    ],
    "shipments": [
        Case("warnings", [
            dict(SH, shipment_id="SH3", shipped_at="2026-06-02 08:00:00", delivered_at="2026-06-01 08:00:00"),
            dict(SH, shipment_id="SH4", delivered_at="2026-08-15 08:00:00"),
            dict(SH, shipment_id="SH5", order_id="O5"),
            dict(SH, shipment_id="SH5", order_id="O6", _file="shipments_20260603.parquet"),
        ], {L("after", "delivered_at>shipped_at", "warning"): 1, L("between", "_transit_hours", "warning"): 1,
            L("between", "_orders_per_shipment", "warning"): 2}, critical=False),
        Case("criticals", [
            dict(SH, shipment_id="SH6", shipped_at=None),
            dict(SH, shipment_id="SH7", delivered_at="2099-01-01 00:00:00"),
            dict(SH, shipment_id="SH2", order_id="O2", shipped_at="2026-06-02 09:00:00",
                 delivered_at="2026-06-02 20:00:00", _file="shipments_20260602.parquet"),
        ], {L("not_null", "shipped_at"): 1, L("null", "_delivered_at_implausible", "warning"): 1,
            L("between", "_transit_hours", "warning"): 1, L("unique", "shipment_id+_file"): 2}, critical=True),
    ],
    "cs_tickets": [
        Case("warnings", [
            dict(TK, ticket_id="TK4", first_response_at="2026-06-01 09:59:00", resolved_at=None),
            dict(TK, ticket_id="TK5", channel="human", first_response_at=None, resolved_at="2026-06-01 09:00:00"),
            dict(TK, ticket_id="TK6", channel="human", first_response_at="2026-06-01 12:00:00",
                 resolved_at="2026-06-01 11:00:00"),
        ], {L("after", "first_response_at>created_at", "warning"): 1,
            L("after", "resolved_at>created_at", "warning"): 1,
            L("after", "resolved_at>first_response_at", "warning"): 1}, critical=False),
        Case("criticals", [
            dict(TK, ticket_id="TK7", csat=6),
            dict(TK, ticket_id="TK8", channel="carrier_pigeon"),
            dict(TK, ticket_id="TK9", created_at=None),
            dict(TK, ticket_id="TK1"),
        ], {L("between", "csat"): 1, L("in_set", "channel"): 1, L("not_null", "created_at"): 1,
            L("unique", "ticket_id+_file"): 2}, critical=True),
        Case("bot share", [dict(TK, ticket_id=f"TK1{i:02d}") for i in range(20)],
             {L("between", "_bot_share", "warning"): 24}, critical=False),
    ],
    "campaigns": [
        Case("warnings", [
            dict(C, campaign_id="C003", start_at="2025-09-01 00:00:00", end_at="2026-06-30 00:00:00"),
            dict(C, campaign_id="C004", cost=50000000.0),
            dict(C, campaign_id="C005", channel="wechat_group"),
        ], {L("between", "_duration_days", "warning"): 1, L("between", "cost", "warning"): 1,
            L("in_set", "channel", "warning"): 1}, critical=False),
        Case("criticals", [
            dict(C, campaign_id="C006", start_at="2026-08-08 16:00:00", end_at="2026-08-07 16:00:00"),
            dict(C, campaign_id="C007", type="lottery"),
            dict(C, campaign_id="C008", name=None),
            dict(C, campaign_id="C009", start_at="1970-01-01 00:00:00"),
            dict(C, campaign_id="C001"),
        ], {L("after", "end_at>start_at", "warning"): 1, L("in_set", "type"): 1, L("not_null", "name"): 1,
            L("null", "_start_at_implausible", "warning"): 1, L("between", "_duration_days", "warning"): 1,
            L("unique", "campaign_id+_file"): 2}, critical=True),
    ],
    "marketing_touches": [
        Case("warnings", [
            dict(T, touch_id="T4", opened_at="2026-06-01 01:00:00"),
            dict(T, touch_id="T5", clicked_at="2026-06-01 01:00:00"),
            dict(T, touch_id="T6", opened_at="2026-06-01 04:00:00", clicked_at="2026-06-01 03:30:00"),
        ], {L("after", "opened_at>sent_at", "warning"): 1, L("after", "clicked_at>sent_at", "warning"): 1,
            L("after", "clicked_at>opened_at", "warning"): 1}, critical=False),
        Case("criticals", [
            dict(T, touch_id="T7", channel="carrier_pigeon"),
            dict(T, touch_id="T8", user_id=None),
            dict(T, touch_id="T9", sent_at="2099-01-01 00:00:00"),
            dict(T, touch_id="T10", opened_at="2099-01-01 00:00:00"),
            dict(T, touch_id="T1"),
        ], {L("in_set", "channel"): 1, L("not_null", "user_id"): 1, L("null", "_sent_at_implausible", "warning"): 1,
            L("null", "_opened_at_implausible", "warning"): 1,
            L("unique", "touch_id+_file"): 2}, critical=True),
    ],
    "inventory_snapshots": [
        Case("warnings", [
            dict(INV, _file="inventory_snapshots_20260602.csv.gz"),  # 06-01 reported again by the 06-02 file
            dict(INV, sku_id="SKU10009", on_hand=2000000),
            dict(INV, snapshot_date="2026-06-05", sku_id="SKU10002", warehouse_id="WH-GZ"),
        ], {L("between", "_snapshot_key_rows", "warning"): 2, L("between", "on_hand", "warning"): 1,
            L("after", "_file_date>snapshot_date", "warning"): 1}, critical=False),
        Case("criticals", [
            dict(INV, sku_id="SKU10010", on_hand=None),
            dict(INV, sku_id="SKU10011", in_transit=-1),
            dict(INV, sku_id="SKU10012", snapshot_date="1970-01-01"),
            dict(INV, sku_id="SKU10002", on_hand=45, in_transit=None, safety_stock=10),
        ], {L("not_null", "on_hand"): 1, L("between", "in_transit"): 1,
            L("null", "_snapshot_date_implausible", "warning"): 1,
            L("unique", "snapshot_date+sku_id+warehouse_id+_file"): 2,
            L("between", "_snapshot_key_rows", "warning"): 2}, critical=True),
    ],
    "experiment_assignments": [
        Case("warnings", [dict(XA, user_id="U001", _file="experiment_assignments_20260602.csv")],
             {L("between", "_assignment_rows", "warning"): 2}, critical=False),
        Case("criticals", [
            dict(XA, user_id="U002", variant="control", _file="experiment_assignments_20260602.csv"),  # flipped
            dict(XA, user_id=None),
            dict(XA, user_id="U020", assigned_at="1970-01-01 00:00:00"),
            dict(XA, user_id="U003", assigned_at="2026-06-01 09:00:00"),
        ], {L("between", "_variants_per_user", "warning"): 2, L("not_null", "user_id"): 1,
            L("null", "_assigned_at_implausible", "warning"): 1,
            L("unique", "experiment_id+user_id+_file"): 2, L("between", "_assignment_rows", "warning"): 4},
            critical=True),
        Case("sample ratio mismatch", [
            dict(XA, experiment_id="exp_srm", user_id=f"V{i:05d}", variant="control" if i < 700 else "treatment")
            for i in range(1200)
        ], {L("between", "_variant_share_gap", "warning"): 1200}, critical=False),
    ],
    "member_events": [
        Case("warnings", [
            dict(ME, event_id="ME10", type="points_earned", level=None, points=None, order_id="O2"),
            dict(ME, event_id="ME11", event_ts="1970-01-01 00:00:00", type="benefit_used", level=None),
        ], {L("not_null", "points", "warning"): 1, L("null", "_event_ts_implausible", "warning"): 1}, critical=False),
        Case("criticals", [
            dict(ME, event_id="ME1"),  # the same event twice in one file
            dict(ME, event_id="ME12", user_id=None),
            dict(ME, event_id="ME13", type="vip_party"),
            dict(ME, event_id="ME14", type="level_up", level=7),
        ], {L("unique", "event_id+_file"): 2, L("not_null", "user_id"): 1, L("in_set", "type"): 1,
            L("between", "level"): 1}, critical=True),
    ],
    "ad_spend": [
        Case("warnings", [
            dict(AD, channel="jd", impressions=100, clicks=101),
            dict(AD, channel="tmall", date="1970-01-01"),
        ], {L("after", "impressions>clicks", "warning"): 1, L("null", "_date_implausible", "warning"): 1},
            critical=False),
        Case("criticals", [
            dict(AD),  # the same brand spend twice in one file: a null campaign_id is one key value
            dict(AD, channel="jd", spend=None),
            dict(AD, channel="myspace"),
            dict(AD, channel="tmall", spend=-5),
        ], {L("unique", "date+channel+campaign_id+_file"): 2, L("not_null", "spend"): 1, L("in_set", "channel"): 1,
            L("between", "spend"): 1}, critical=True),
    ],
    "private_domain_events": [
        Case("warnings", [
            dict(PDE, event_id="PD5", event_ts="2026-06-01 00:59:00"),  # read before it was sent
            dict(PDE, event_id="PD6", event_type="member_posted", group_id=None, sent_at=None),
        ], {L("after", "event_ts>sent_at", "warning"): 1, L("not_null", "group_id", "warning"): 1},
            critical=False),
        Case("criticals", [
            dict(PDE, event_id="PD1"),
            dict(PDE, event_id="PD7", external_user_id=None),
            dict(PDE, event_id="PD8", channel="carrier_pigeon"),
            dict(PDE, event_id="PD9", event_type="poke"),
        ], {L("unique", "event_id+_file"): 2, L("not_null", "external_user_id"): 1, L("in_set", "channel"): 1,
            L("in_set", "event_type"): 1}, critical=True),
    ],
}


# ---------------------------------------------------------------------------------------------
# structure


def test_every_raw_source_has_a_suite():
    assert set(RAW_SUITES) == {f"raw_{s}" for s in SOURCE_NAMES}


@pytest.mark.parametrize("name", sorted(RAW_SUITES))
def test_suite_names_asset_and_severities(name):
    suite = RAW_SUITES[name]
    source = name.removeprefix("raw_")
    assert suite.name == name == suite.raw["name"]
    assert suite.asset == ("raw", source)
    assert suite.description and suite.expectation_count > 0
    for e in suite.raw["expectations"]:
        assert e.get("severity") in SEVERITIES, e
        assert e.get("severity") != "info", "raw suites block or warn; info would never be seen"
    labels = [label(e["type"], e["kwargs"], e["severity"]) for e in suite.raw["expectations"]]
    assert len(labels) == len(set(labels)), "tests name expectations by (type, columns, severity)"


@pytest.mark.parametrize("name", sorted(RAW_SUITES))
def test_query_runs_on_empty_raw_schema_and_expectations_are_real(runner, name):
    source = name.removeprefix("raw_")
    df = query_frame(source, None)
    assert len(df) == 0
    outcome = validate_rows(runner, source, None)
    assert outcome.passed, f"a source that has not delivered yet must not warn: {outcome.summary()}"
    assert sorted(label(e.type, e.kwargs, e.severity) for e in outcome.expectations) == sorted(
        label(e["type"], e["kwargs"], e["severity"]) for e in RAW_SUITES[name].raw["expectations"])
    assert [e.exception for e in outcome.expectations if e.exception] == []


# ---------------------------------------------------------------------------------------------
# behaviour


def _observed(outcome) -> dict:
    out = {}
    for e in outcome.failed:
        key = label(e.type, e.kwargs, e.severity)
        out[key] = e.unexpected_count if e.unexpected_count is not None else e.observed_value
    return out


@pytest.mark.parametrize("source", OURS)
def test_clean_frame_passes(runner, source):
    outcome = validate_rows(runner, source, CLEAN[source])
    assert outcome.rows == len(CLEAN[source])
    assert [e.exception for e in outcome.expectations if e.exception] == []
    assert outcome.passed, outcome.summary()


@pytest.mark.parametrize("source,case", [(s, c) for s in OURS for c in CASES[s]],
                         ids=[f"{s}-{c.name}" for s in OURS for c in CASES[s]])
def test_planted_violations_fail_exactly_their_expectations(runner, source, case):
    suite = RAW_SUITES[f"raw_{source}"]
    known = {label(e["type"], e["kwargs"], e["severity"]) for e in suite.raw["expectations"]}
    assert set(case.failures) <= known, set(case.failures) - known
    outcome = validate_rows(runner, source, CLEAN[source] + case.rows)
    observed = _observed(outcome)
    assert set(observed) == set(case.failures), outcome.summary()
    for key, want in case.failures.items():
        if isinstance(want, float):
            assert observed[key] == pytest.approx(want), key
        else:
            assert observed[key] == want, key
    assert outcome.critical_failed is case.critical
    assert outcome.warning_failed is any(sev == "warning" for _, _, sev in case.failures)


@pytest.mark.parametrize("source,case", [(s, c) for s in OURS for c in CASES[s]],
                         ids=[f"{s}-{c.name}" for s in OURS for c in CASES[s]])
def test_scoped_query_returns_the_new_rows_as_the_whole_table_query_sees_them(source, case):
    """The check's query ({new_rows:raw.<source>} = one new load) returns exactly the new load's rows,
    and every column, including those computed against the whole table (_user_id_rows,
    _variants_per_user, _orders_per_shipment, ...), as the whole-table query has them for those rows."""
    suite = RAW_SUITES[f"raw_{source}"]
    assert suite.scoped_table == source and re.search(r"\{new_rows(_time_checked)?:raw\.", suite.sql_template)
    df = frame(source, CLEAN[source] + case.rows)
    df["_load_id"] = ["old"] * len(CLEAN[source]) + ["new"] * len(case.rows)
    scoped = render_scope(suite.sql_template, LoadScope(source, ("new",), ("new",)))
    with duckdb.connect() as con:
        con.execute("create schema raw")
        con.execute(raw_table_ddl(source))
        con.register("frame", df)
        con.execute(f"insert into raw.{source} by name select * from frame")
        assert con.execute(f"select count(*) from ({scoped})").fetchone()[0] == len(case.rows)
        assert con.execute(f"({scoped}) except all ({suite.query})").fetchall() == []
        # nothing new: no rows
        none = render_scope(suite.sql_template, LoadScope(source, (), ()))
        assert con.execute(f"select count(*) from ({none})").fetchone()[0] == 0


def test_every_suite_has_planted_criticals_and_warnings():
    for source in OURS:
        severities = {sev for c in CASES[source] for _, _, sev in c.failures}
        assert severities == {"critical", "warning"}, source


# ---------------------------------------------------------------------------------------------
# the generator's clean data passes the contract


def test_generated_warehouse_passes_every_raw_suite(runner, truth_warehouse):
    failures = []
    with duckdb.connect(str(truth_warehouse.db), read_only=True) as con:
        for name, suite in RAW_SUITES.items():
            outcome = runner.validate_query(suite, con, suite.query)
            assert outcome.rows > 0, name
            if not outcome.passed or any(e.exception for e in outcome.expectations):
                failures.append(outcome.summary())
    assert failures == []


# ---------------------------------------------------------------------------------------------
# critical means the contract; timestamps are judged against the data, not the calendar


def test_every_critical_raw_rule_is_a_contract_rule():
    """raw_contract.md: contract-valid rows are never blocked. A critical expectation of a raw suite is
    the contract itself (required, enum, range, pattern, key within a file), as lib/contract.py has
    it; plausibility (dates, sizes, shares, optional fields) warns."""
    not_contract = []
    for name, suite in RAW_SUITES.items():
        src = SOURCES[name.removeprefix("raw_")]
        for e in suite.raw["expectations"]:
            if e["severity"] != "critical":
                continue
            kw, col = e["kwargs"], e["kwargs"].get("column")
            c = src.column(col) if col in src.column_names else None
            ok = {
                "expect_column_values_to_not_be_null": c is not None and c.required and "row_condition" not in kw,
                "expect_column_values_to_be_in_set": c is not None and tuple(kw.get("value_set", ())) == c.enum,
                "expect_column_values_to_be_between": c is not None and (kw.get("min_value"), kw.get("max_value"))
                == (c.min_value, c.max_value),
                "expect_column_values_to_match_regex": c is not None and kw.get("regex") == c.pattern,
                "expect_compound_columns_to_be_unique": kw.get("column_list") == [*src.key, "_file"],
            }.get(e["type"], False)
            if not ok:
                not_contract.append((name, e["type"], kw))
    assert not_contract == []


def _orders(stamps: list[str]) -> list[dict]:
    return [dict(order_id=f"O{i}", user_id="U1", channel="offline", order_ts=ts, status="created",
                 items_amount=10.0, pay_amount=10.0) for i, ts in enumerate(stamps)]


def _implausible(rows: list[dict], monkeypatch, **env) -> dict[str, str]:
    """order_id -> the verdict on its order_ts, through the check's own rendering of the query."""
    from dagster_project.defs.quality.checks import render_query

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    suite = RAW_SUITES["raw_orders"]
    with duckdb.connect() as con:
        con.execute("create schema raw")
        con.execute(raw_table_ddl("orders"))
        con.register("frame", frame("orders", rows))
        con.execute("insert into raw.orders by name select * from frame")
        out = con.sql(f"select order_id, _order_ts_implausible from ({render_query(suite)})").fetchall()
    return {k: v for k, v in out if v is not None}


def test_a_history_from_the_nineties_is_plausible(runner):
    stamps = [f"{y}-{m:02d}-15 10:00:00" for y in range(1996, 2000) for m in (1, 5, 9)]
    outcome = validate_rows(runner, "orders", _orders(stamps))
    assert outcome.passed, outcome.summary()


def test_epoch_zero_among_this_years_orders_warns_with_its_distance(runner, monkeypatch):
    days = [f"2026-06-{d:02d} 00:00:00" for d in range(1, 11)]
    verdicts = _implausible(_orders(days + ["1970-01-01 00:00:00"]), monkeypatch)
    # 11 values: quartiles (linear) at positions 2.5 and 7.5 -> 2026-06-02 12:00 and 2026-06-07 12:00;
    # fence max(3 x 5 days, 365 days) = 365 days
    gap = (datetime(2026, 6, 2, 12) - datetime(1970, 1, 1)).days
    assert verdicts == {"O10": f"1970-01-01 00:00:00 is {gap} days before the middle half of raw.orders.order_ts "
                               "(2026-06-02 .. 2026-06-07); more than 365 days out is implausible"}
    outcome = validate_rows(runner, "orders", _orders(days + ["1970-01-01 00:00:00"]))
    assert {e.label: (e.severity, e.unexpected_count) for e in outcome.failed} == {
        "expect_column_values_to_be_null(_order_ts_implausible)": ("warning", 1)}
    assert not outcome.critical_failed


def test_outlier_thresholds_are_settings(monkeypatch):
    # 06-01 .. 06-10 and 06-30: quartiles 2026-06-03 12:00 and 2026-06-08 12:00, IQR 5 days
    rows = _orders([f"2026-06-{d:02d} 00:00:00" for d in range(1, 11)] + ["2026-06-30 00:00:00"])
    assert _implausible(rows, monkeypatch) == {}  # 21.5 days out, the default allows 365
    assert _implausible(rows, monkeypatch, EW_QUALITY_OUTLIER_MIN_DAYS="0") == {
        "O10": "2026-06-30 00:00:00 is 21 days after the middle half of raw.orders.order_ts "
               "(2026-06-03 .. 2026-06-08); more than 15 days out is implausible"}
    assert _implausible(rows, monkeypatch, EW_QUALITY_OUTLIER_MIN_DAYS="0", EW_QUALITY_OUTLIER_IQR="5") == {}


def test_the_future_is_judged_against_the_run_time(monkeypatch):
    from datetime import timezone

    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    past = [f"{now - timedelta(days=d):%Y-%m-%d %H:%M:%S}" for d in range(1, 9)]
    soon, later = now + timedelta(hours=12), now + timedelta(days=3)
    rows = _orders(past + [f"{soon:%Y-%m-%d %H:%M:%S}", f"{later:%Y-%m-%d %H:%M:%S}"])  # raw holds UTC
    assert _implausible(rows, monkeypatch) == {
        "O9": f"{later:%Y-%m-%d %H:%M:%S} is more than 24.0 h after this run (UTC)"}
    assert _implausible(rows, monkeypatch, EW_QUALITY_FUTURE_HOURS="100") == {}
    assert set(_implausible(rows, monkeypatch, EW_QUALITY_FUTURE_HOURS="6")) == {"O8", "O9"}
