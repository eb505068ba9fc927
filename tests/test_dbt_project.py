"""`dbt build` of the dbt project on a small hand-written raw fixture in a temp DuckDB file.

One build per module (the fixture below); the tests then read the staging views it made. The rows
are chosen so each rule shows: an order re-delivered with a newer status, an event re-sent in a later
file, a UTC timestamp that falls on the next business day in Asia/Shanghai, composite keys loaded twice,
and one order whose amounts do not add up (the reconciliation test must warn, not fail the build).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.contract import FILES_DDL, QUARANTINE_DDL, SOURCE_NAMES, SOURCES, raw_table_ddl

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt"

T = dt.datetime.fromisoformat
D = dt.date.fromisoformat

# (source, file name, _loaded_at, rows); each row gives contract columns by name, the rest are null.
# _file_date comes from the file name and _row from the row's position, as the loader sets them.
RAW_FILES: list[tuple[str, str, str, list[dict]]] = [
    ("orders", "orders_20260601.csv", "2026-06-01 01:00:00", [
        # 16:30 UTC on 31 May is 00:30 on 1 June in Shanghai.
        dict(order_id="O1", user_id="U1", channel="tmall", order_ts=T("2026-05-31 16:30:00"),
             paid_ts=T("2026-05-31 16:35:00"), status="paid", items_amount=100, discount_amount=10,
             shipping_fee=5, pay_amount=95, campaign_id="C1", province="浙江", city="杭州"),
        dict(order_id="O2", user_id="U2", channel="app", order_ts=T("2026-06-01 02:00:00"),
             status="created", items_amount=50, pay_amount=50),
        # pay should be 100: the reconciliation test warns about this one.
        dict(order_id="O3", user_id="U2", channel="jd", order_ts=T("2026-06-01 03:00:00"),
             paid_ts=T("2026-06-01 03:01:00"), status="paid", items_amount=100, discount_amount=0,
             shipping_fee=0, pay_amount=90),
    ]),
    # Loaded earlier than the 0601 file (a backfill): the date in the file name still decides.
    ("orders", "orders_20260602.csv", "2026-05-31 23:00:00", [
        dict(order_id="O1", user_id="U1", channel="tmall", order_ts=T("2026-05-31 16:30:00"),
             paid_ts=T("2026-05-31 16:35:00"), status="shipped", items_amount=100, discount_amount=10,
             shipping_fee=5, pay_amount=95, campaign_id="C1", province="浙江", city="杭州"),
    ]),
    ("order_items", "order_items_20260601.csv", "2026-06-01 01:00:00", [
        dict(order_id="O1", line_no=1, sku_id="SKU1", quantity=1, unit_price=60, discount_amount=10),
        dict(order_id="O1", line_no=2, sku_id="SKU2", quantity=2, unit_price=20),
        dict(order_id="O2", line_no=1, sku_id="SKU2", quantity=1, unit_price=50),
        dict(order_id="O3", line_no=1, sku_id="SKU1", quantity=1, unit_price=100),
    ]),
    ("order_items", "order_items_20260602.csv", "2026-06-02 01:00:00", [
        dict(order_id="O1", line_no=2, sku_id="SKU2", quantity=3, unit_price=20),
    ]),
    ("events", "events_20260601.jsonl", "2026-06-01 01:00:00", [
        dict(event_id="E1", event_ts=T("2026-05-31 16:30:00"), anonymous_id="A1", user_id="U1",
             session_id="S1", event_name="payment_success", platform="ios", order_id="O1",
             properties='{"amount": 95}'),
        dict(event_id="E2", event_ts=T("2026-05-31 16:00:00"), anonymous_id="A1",
             session_id="S1", event_name="page_view", platform="ios", page="home"),
    ]),
    # E1 re-sent in the next day's file: staging keeps it once.
    ("events", "events_20260602.jsonl", "2026-06-02 01:00:00", [
        dict(event_id="E1", event_ts=T("2026-05-31 16:30:00"), anonymous_id="A1", user_id="U1",
             session_id="S1", event_name="payment_success", platform="ios", order_id="O1",
             properties='{"amount": 95}'),
    ]),
    ("returns", "returns_20260601.csv", "2026-06-01 01:00:00", [
        dict(return_id="R1", order_id="O1", sku_id="SKU2", quantity=1, amount=20, reason="size",
             requested_at=T("2026-06-01 05:00:00"), status="requested"),
    ]),
    ("returns", "returns_20260602.csv", "2026-06-02 01:00:00", [
        dict(return_id="R1", order_id="O1", sku_id="SKU2", quantity=1, amount=20, reason="size",
             requested_at=T("2026-06-01 05:00:00"), approved_at=T("2026-06-01 20:00:00"),
             status="approved"),
    ]),
    ("products", "products_20260601.csv", "2026-06-01 01:00:00", [
        dict(sku_id="SKU1", spu_id="SPU1", product_name="保温杯", category_l1="家居", list_price=60,
             cost_price=25, launched_at=T("2026-01-01 00:00:00")),
        dict(sku_id="SKU2", spu_id="SPU2", product_name="袜子", category_l1="服饰", list_price=20),
    ]),
    ("shipments", "shipments_20260601.csv", "2026-06-01 01:00:00", [
        dict(shipment_id="SH1", order_id="O1", carrier="SF", warehouse_id="WH1",
             shipped_at=T("2026-06-01 04:00:00"), province="浙江"),
    ]),
    ("shipments", "shipments_20260603.csv", "2026-06-03 01:00:00", [
        dict(shipment_id="SH1", order_id="O1", carrier="SF", warehouse_id="WH1",
             shipped_at=T("2026-06-01 04:00:00"), delivered_at=T("2026-06-02 16:10:00"), province="浙江"),
    ]),
    ("users", "users_20260601.csv", "2026-06-01 01:00:00", [
        # 15:59:59 UTC is still 31 May in Shanghai; 16:00:00 is 1 June.
        dict(user_id="U1", registered_at=T("2026-05-31 15:59:59"), channel="tmall",
             phone_hash="a" * 64, province="浙江", city="杭州", member_level=2, birth_year=1990),
        dict(user_id="U2", registered_at=T("2026-05-31 16:00:00"), channel="app"),
    ]),
    ("cs_tickets", "cs_tickets_20260601.csv", "2026-06-01 01:00:00", [
        dict(ticket_id="T1", user_id="U1", order_id="O1", channel="bot", category="logistics",
             created_at=T("2026-06-01 06:00:00"), first_response_at=T("2026-06-01 06:00:05"), csat=4),
    ]),
    ("campaigns", "campaigns_20260601.csv", "2026-06-01 01:00:00", [
        dict(campaign_id="C1", name="618 预热", type="full_reduction", channel="tmall",
             start_at=T("2026-05-31 16:00:00"), end_at=T("2026-06-18 15:59:59"), cost=10000),
    ]),
    ("marketing_touches", "marketing_touches_20260601.csv", "2026-06-01 01:00:00", [
        dict(touch_id="M1", campaign_id="C1", user_id="U1", channel="sms",
             sent_at=T("2026-06-01 01:00:00"), opened_at=T("2026-06-01 02:00:00")),
    ]),
    ("inventory_snapshots", "inventory_snapshots_20260601.csv", "2026-06-01 01:00:00", [
        dict(snapshot_date=D("2026-06-01"), sku_id="SKU1", warehouse_id="WH1", on_hand=10,
             in_transit=0, safety_stock=2),
        dict(snapshot_date=D("2026-06-01"), sku_id="SKU2", warehouse_id="WH1", on_hand=5),
    ]),
    # A corrected count for SKU1 on the same day arrives in the next file.
    ("inventory_snapshots", "inventory_snapshots_20260602.csv", "2026-06-02 01:00:00", [
        dict(snapshot_date=D("2026-06-01"), sku_id="SKU1", warehouse_id="WH1", on_hand=12,
             in_transit=0, safety_stock=2),
    ]),
    ("experiment_assignments", "experiment_assignments_20260601.csv", "2026-06-01 01:00:00", [
        dict(experiment_id="X1", user_id="U1", variant="control", assigned_at=T("2026-06-01 00:00:00")),
        dict(experiment_id="X1", user_id="U2", variant="treatment", assigned_at=T("2026-06-01 00:00:00")),
    ]),
    ("experiment_assignments", "experiment_assignments_20260602.csv", "2026-06-02 01:00:00", [
        dict(experiment_id="X1", user_id="U1", variant="treatment", assigned_at=T("2026-06-01 00:00:00")),
    ]),
    ("member_events", "member_events_20260601.csv", "2026-06-01 01:00:00", [
        dict(event_id="ME1", user_id="U1", event_ts=T("2026-06-01 00:00:00"), type="join", level=1),
        dict(event_id="ME2", user_id="U1", event_ts=T("2026-06-01 02:00:00"), type="points_earned", points=99,
             order_id="O1"),
        dict(event_id="ME3", user_id="U1", event_ts=T("2026-06-01 03:00:00"), type="level_up", level=2),
    ]),
    ("ad_spend", "ad_spend_20260601.csv", "2026-06-01 01:00:00", [
        dict(date=D("2026-06-01"), channel="tmall", campaign_id="C1", spend=300, impressions=10000, clicks=200),
        dict(date=D("2026-06-01"), channel="tmall", spend=100),
    ]),
    # the brand row (no campaign) of the same day, corrected in the next file
    ("ad_spend", "ad_spend_20260602.csv", "2026-06-02 01:00:00", [
        dict(date=D("2026-06-01"), channel="tmall", spend=120, impressions=4000, clicks=50),
    ]),
    # a contact known to WeCom only as an external contact: no user_id; its read is corrected in the next file
    ("private_domain_events", "private_domain_events_20260601.csv", "2026-06-01 01:00:00", [
        dict(event_id="PD1", external_user_id="wm1", user_id="U1", event_ts=T("2026-06-01 00:00:00"),
             channel="wecom_contact", event_type="contact_added", staff_id="S01"),
        dict(event_id="PD2", external_user_id="wm2", event_ts=T("2026-06-01 00:10:00"),
             channel="wecom_group", event_type="group_joined", group_id="G001"),
        dict(event_id="PD3", external_user_id="wm2", event_ts=T("2026-06-01 02:00:00"),
             channel="wecom_group", event_type="message_read", group_id="G001", sent_at=T("2026-06-01 01:00:00")),
    ]),
    ("private_domain_events", "private_domain_events_20260602.csv", "2026-06-02 01:00:00", [
        dict(event_id="PD3", external_user_id="wm2", event_ts=T("2026-06-01 02:30:00"),
             channel="wecom_group", event_type="message_read", group_id="G001", sent_at=T("2026-06-01 01:00:00")),
    ]),
]


def _file_date(file_name: str) -> dt.date:
    stem = file_name.split(".")[0]
    return dt.datetime.strptime(stem.rsplit("_", 1)[1], "%Y%m%d").date()


def _write_raw(db_path: Path) -> None:
    con = duckdb.connect(str(db_path))
    try:
        con.execute("create schema raw")
        for source in SOURCE_NAMES:
            con.execute(raw_table_ddl(source))
        # ingest's ledger and quarantine, which the data-quality mart reads: every file loaded whole
        con.execute(QUARANTINE_DDL)
        con.execute(FILES_DDL)
        for source, file_name, loaded_at, rows in RAW_FILES:
            con.execute("insert into raw._files (source, file_name, file_date, load_id, loaded_at, rows_landed, "
                        "rows_loaded, rows_quarantined, status) values (?, ?, ?, ?, ?, ?, ?, 0, 'loaded')",
                        [source, file_name, _file_date(file_name), f"load-{file_name}", T(loaded_at),
                         len(rows), len(rows)])
            columns = SOURCES[source].column_names
            all_columns = (*columns, "_file", "_file_date", "_row", "_load_id", "_loaded_at")
            placeholders = ", ".join("?" for _ in all_columns)
            for row_no, row in enumerate(rows, start=1):
                assert set(row) <= set(columns), (source, set(row) - set(columns))
                values = [row.get(c) for c in columns]
                values += [file_name, _file_date(file_name), row_no, f"load-{file_name}", T(loaded_at)]
                con.execute(
                    f"insert into raw.{source} ({', '.join(all_columns)}) values ({placeholders})", values
                )
    finally:
        con.close()


@pytest.fixture(scope="module")
def dbt_build(tmp_path_factory, run_dbt):
    """Raw fixture -> `dbt build`; yields (result, path of the DuckDB file)."""
    tmp = tmp_path_factory.mktemp("dbt_build")
    db_path = tmp / "warehouse.duckdb"
    _write_raw(db_path)
    yield run_dbt(db_path, tmp, "build"), db_path


@pytest.fixture(scope="module")
def query(dbt_build):
    _, db_path = dbt_build
    con = duckdb.connect(str(db_path), read_only=True)

    def run(sql: str) -> list[tuple]:
        return con.execute(sql).fetchall()

    yield run
    con.close()


def _statuses(result) -> dict[str, str]:
    return {r.node.name: str(r.status) for r in result.result.results}


def test_build_succeeds_and_every_node_passes(dbt_build):
    result, _ = dbt_build
    assert result.exception is None, result.exception
    assert result.success
    statuses = _statuses(result)
    by_type: dict[str, int] = {}
    for r in result.result.results:
        by_type[str(r.node.resource_type)] = by_type.get(str(r.node.resource_type), 0) + 1
    built = {r.node.name for r in result.result.results if str(r.node.resource_type) == "model"}
    assert len([n for n in built if n.startswith("stg_")]) == len(SOURCE_NAMES)
    # every model of the project was built on this tiny fixture, marts included
    assert built == {p.stem for p in (DBT_PROJECT_DIR / "models").rglob("*.sql")}
    assert by_type["unit_test"] >= 2
    # exposures (one per Superset dashboard) are listed by dbt build as no-ops: nothing to run
    exposures = {r.node.name for r in result.result.results if str(r.node.resource_type) == "exposure"}
    assert all(statuses[e] == "no-op" for e in exposures) and "superset_overview" in exposures
    not_ok = {n: s for n, s in statuses.items() if s not in ("success", "pass") and n not in exposures}
    # Only the amounts check may speak up, and only as a warning (order O3 in the fixture).
    assert not_ok == {"assert_order_pay_amount_reconciles": "warn"}


def test_pay_amount_check_flags_only_the_bad_order(dbt_build):
    result, _ = dbt_build
    (check,) = [r for r in result.result.results if r.node.name == "assert_order_pay_amount_reconciles"]
    assert check.failures == 1


def test_staging_models_live_in_staging_schema(query):
    rows = dict(query("select table_name, table_type from information_schema.tables where table_schema = 'staging'"))
    assert len(rows) == len(SOURCE_NAMES)
    # the two event-sized sources (tracking events, WeCom events) are incremental tables (docs/incremental.md)
    assert rows.pop("stg_tracking__events") == "BASE TABLE"
    assert rows.pop("stg_marketing__private_domain_events") == "BASE TABLE"
    assert set(rows.values()) == {"VIEW"}


def test_newest_order_status_wins_and_business_date_is_shanghai(query):
    rows = query("""
        select order_id, order_status, ordered_at, order_date, paid_date, is_paid,
               discount_amount, shipping_fee_amount, source_file, source_row
        from staging.stg_oms__orders order by order_id
    """)
    assert [r[0] for r in rows] == ["O1", "O2", "O3"]
    o1, o2, _ = rows
    assert o1[1] == "shipped"
    assert o1[2] == T("2026-05-31 16:30:00")  # stays UTC
    assert o1[3] == D("2026-06-01")           # 00:30 in Shanghai
    assert o1[4] == D("2026-06-01")
    assert o1[5] is True
    assert (o1[8], o1[9]) == ("orders_20260602.csv", 1)
    # Empty discount and shipping fee read as 0; an unpaid order has no paid date.
    assert o2[1:] == ("created", T("2026-06-01 02:00:00"), D("2026-06-01"), None, False,
                      Decimal("0.00"), Decimal("0.00"), "orders_20260601.csv", 2)


def test_duplicate_event_is_kept_once(query):
    rows = query("select event_id, event_at, event_date from staging.stg_tracking__events order by event_id")
    assert rows == [
        ("E1", T("2026-05-31 16:30:00"), D("2026-06-01")),
        ("E2", T("2026-05-31 16:00:00"), D("2026-06-01")),
    ]


def test_registration_date_boundary(query):
    rows = query("select user_id, registration_date from staging.stg_crm__users order by user_id")
    assert rows == [("U1", D("2026-05-31")), ("U2", D("2026-06-01"))]


def test_latest_status_for_returns_and_shipments(query):
    assert query("select return_id, return_status, return_amount from staging.stg_oms__returns") == [
        ("R1", "approved", Decimal("20.00"))
    ]
    assert query("""
        select shipment_id, is_delivered, delivered_at, delivered_date, shipped_date
        from staging.stg_logistics__shipments
    """) == [("SH1", True, T("2026-06-02 16:10:00"), D("2026-06-03"), D("2026-06-01"))]


def test_composite_keys_keep_the_latest_row(query):
    assert query("""
        select order_id, line_no, quantity, gross_amount, discount_amount
        from staging.stg_oms__order_items order by order_id, line_no
    """) == [
        ("O1", 1, 1, Decimal("60.00"), Decimal("10.00")),
        ("O1", 2, 3, Decimal("60.00"), Decimal("0.00")),
        ("O2", 1, 1, Decimal("50.00"), Decimal("0.00")),
        ("O3", 1, 1, Decimal("100.00"), Decimal("0.00")),
    ]
    assert query("""
        select sku_id, on_hand from staging.stg_logistics__inventory_snapshots order by sku_id
    """) == [("SKU1", 12), ("SKU2", 5)]
    assert query("""
        select user_id, variant from staging.stg_marketing__experiment_assignments order by user_id
    """) == [("U1", "treatment"), ("U2", "treatment")]
    # ad_spend's key holds a null campaign_id (brand spend): its correction replaces it, the campaign row stays
    assert query("""
        select campaign_id, spend_amount, clicks from staging.stg_marketing__ad_spend order by campaign_id
    """) == [("C1", Decimal("300.00"), 200), (None, Decimal("120.00"), 50)]
    # a private-domain event re-delivered keeps its latest version; the unbound contact has no user_id
    assert query("""
        select event_id, user_id, event_at, sent_date
        from staging.stg_marketing__private_domain_events order by event_id
    """) == [("PD1", "U1", T("2026-06-01 00:00:00"), None), ("PD2", None, T("2026-06-01 00:10:00"), None),
             ("PD3", None, T("2026-06-01 02:30:00"), D("2026-06-01"))]


def test_every_source_has_one_staging_model_with_rows(query):
    counts = {
        "stg_oms__products": 2,
        "stg_cs__tickets": 1,
        "stg_marketing__campaigns": 1,
        "stg_marketing__touches": 1,
    }
    for model, expected in counts.items():
        assert query(f"select count(*) from staging.{model}") == [(expected,)], model
    assert query("select campaign_type, cost_amount, start_date from staging.stg_marketing__campaigns") == [
        ("full_reduction", Decimal("10000.00"), D("2026-06-01"))
    ]


def test_business_timezone_follows_ew_timezone_and_rejects_non_zone_names(dbt_build, run_dbt, tmp_path):
    # Runs after the build (it depends on the fixture) so the two dbt invocations never overlap.
    sql = "select {{ to_business_date('ts') }} as d"
    compile_db = tmp_path / "compile.duckdb"
    ok = run_dbt(compile_db, tmp_path, "compile", "--quiet", "--inline", sql, timezone="America/New_York")
    assert ok.success, ok.exception
    assert "timezone('America/New_York', timezone('UTC', ts))" in ok.result.results[0].node.compiled_code

    bad = run_dbt(compile_db, tmp_path, "compile", "--quiet", "--inline", sql,
                  timezone="UTC'; drop schema raw; --")
    assert not bad.success
    assert "IANA time zone name" in str(bad.exception or bad.result)


def _dbt_test(run_dbt, db_path: Path, tmp: Path, select: str) -> tuple[str, int]:
    result = run_dbt(db_path, tmp, "test", "--quiet", "--select", select)
    (res,) = result.result.results
    return str(res.status), res.failures


def test_unique_since_verified_counts_keys_built_after_the_last_passing_build(dbt_build, run_dbt, tmp_path):
    """The key tests of incremental models count only keys of rows built after the pipeline's mark
    (the last whole-project build whose tests passed), and every key when there is no valid mark."""
    import shutil

    from dagster_project.defs.dbt.assets import prepare_verified_mark, record_verified_mark

    # a copy: the module's `query` fixture holds the built file open read-only
    db_path = tmp_path / "warehouse.duckdb"
    shutil.copy(dbt_build[1], db_path)
    select = "stg_tracking__events,test_name:unique_since_verified"
    assert _dbt_test(run_dbt, db_path, tmp_path, select) == ("pass", 0)

    con = duckdb.connect(str(db_path))
    try:
        # a second copy of event E1, written by a build long before the mark
        con.execute("insert into staging.stg_tracking__events select * replace "
                    "(timestamp '2000-01-01' as built_at) from staging.stg_tracking__events "
                    "where event_id = 'E1'")
        assert prepare_verified_mark(con, "project-a", full_refresh=False) is None  # no mark yet
        record_verified_mark(con, "project-a")
    finally:
        con.close()
    try:
        # before the mark: tested by that passing build already, not counted again
        assert _dbt_test(run_dbt, db_path, tmp_path, select) == ("pass", 0)

        con = duckdb.connect(str(db_path))
        con.execute("update staging.stg_tracking__events set built_at = now() + interval 1 day "
                    "where built_at = timestamp '2000-01-01'")
        con.close()
        # built after the mark: the duplicate fails the test
        assert _dbt_test(run_dbt, db_path, tmp_path, select) == ("fail", 1)

        con = duckdb.connect(str(db_path))
        con.execute("update staging.stg_tracking__events set built_at = timestamp '2000-01-01' "
                    "where built_at > now()")
        assert prepare_verified_mark(con, "project-a", full_refresh=False) is not None  # kept
        assert prepare_verified_mark(con, "project-b", full_refresh=False) is None  # project changed
        con.close()
        # no valid mark: every key counts, the old duplicate fails too
        assert _dbt_test(run_dbt, db_path, tmp_path, select) == ("fail", 1)

        con = duckdb.connect(str(db_path))
        record_verified_mark(con, "project-a")
        assert prepare_verified_mark(con, "project-a", full_refresh=True) is None  # full refresh
        assert con.execute("select count(*) from raw._dbt_verified").fetchone() == (0,)
    finally:
        con.close()


def test_unique_is_ours_and_counts_hashes_then_keys(dbt_build, run_dbt, tmp_path):
    """dbt's `unique` is replaced by dbt/tests/generic/unique.sql (hashes first, then the keys whose hash
    is repeated): a repeated key fails it with its count, nulls are not keys, and a clean column passes."""
    import json
    import shutil

    db_path = tmp_path / "warehouse.duckdb"
    shutil.copy(dbt_build[1], db_path)
    select = "fct_orders,test_name:unique"
    assert _dbt_test(run_dbt, db_path, tmp_path, select) == ("pass", 0)
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    tests = [n for n in manifest["nodes"].values()
             if n["resource_type"] == "test" and n.get("test_metadata", {}).get("name") == "unique"
             and n["attached_node"] == "model.ecom_warehouse.fct_orders"]
    assert tests and all("macro.ecom_warehouse.test_unique" in n["depends_on"]["macros"] for n in tests)

    con = duckdb.connect(str(db_path))
    try:
        # two rows without a key: not a duplicate
        con.execute("insert into marts.fct_orders select * replace (null as order_id) "
                    "from marts.fct_orders where order_id in ('O1', 'O2')")
    finally:
        con.close()
    assert _dbt_test(run_dbt, db_path, tmp_path, select) == ("pass", 0)
    con = duckdb.connect(str(db_path))
    try:
        con.execute("insert into marts.fct_orders select * from marts.fct_orders where order_id = 'O1'")
        con.execute("insert into marts.fct_orders select * from marts.fct_orders where order_id = 'O1'")
    finally:
        con.close()
    assert _dbt_test(run_dbt, db_path, tmp_path, select) == ("fail", 1)  # one key, held by 4 rows


INTEGRITY_TESTS = {"fct_orders": "assert_fct_orders_reconciles_to_staging",
                   "dim_customers": "assert_dim_customers_reconciles_to_staging",
                   "fct_sessions": "assert_fct_sessions_reconciles_to_staging"}


def test_integrity_tests_reconcile_the_core_marts_to_staging_and_fail_on_drift(dbt_build, run_dbt, tmp_path):
    """dbt/tests/integrity: fct_orders, dim_customers and fct_sessions add up to staging in the build, and
    each test counts exactly the measures that drift when a mart loses a row or changes an amount."""
    import shutil

    statuses = _statuses(dbt_build[0])
    assert {statuses[name] for name in INTEGRITY_TESTS.values()} == {"pass"}

    db_path = tmp_path / "warehouse.duckdb"
    shutil.copy(dbt_build[1], db_path)
    con = duckdb.connect(str(db_path))
    try:
        # one valid order's net revenue off by a yuan: only the net_revenue measure
        con.execute("update marts.fct_orders set net_revenue = net_revenue + 1 "
                    "where order_id = (select min(order_id) from marts.fct_orders where is_valid)")
        # one customer claims a user it does not have: only the users measure
        con.execute("update marts.dim_customers set n_users = n_users + 1 "
                    "where customer_key = (select min(customer_key) from marts.dim_customers)")
        # a session lost: sessions, distinct session ids, events, and the paid sessions if it was one
        (paid,) = con.execute("delete from marts.fct_sessions where session_id = "
                              "(select min(session_id) from marts.fct_sessions) returning has_payment_success"
                              ).fetchone()
    finally:
        con.close()
    expected = {"fct_orders": 1, "dim_customers": 1, "fct_sessions": 4 if paid else 3}
    for mart, name in INTEGRITY_TESTS.items():
        assert _dbt_test(run_dbt, db_path, tmp_path, name) == ("fail", expected[mart]), mart
