"""The loader against hand-written landing files: every contract rule, idempotency, redelivery,
encodings, formats, time zones and atomicity (exception and SIGKILL mid-file)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_project.lib import ingest, landing
from dagster_project.lib.contract import RULES, SOURCES

TZ = "Asia/Shanghai"
ORDERS_HEADER = ("order_id,user_id,channel,order_ts,paid_ts,status,items_amount,discount_amount,"
                 "shipping_fee,pay_amount,coupon_id,campaign_id,province,city")


def orders_csv(rows: list[str], bom: bool = False, encoding: str = "utf-8") -> bytes:
    text = "\n".join([ORDERS_HEADER, *rows]) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


GOOD = "O1,U1,app,2026-05-20 23:59:00,2026-05-20 23:59:30,paid,100.00,10.00,0,90.00,,,浙江省,杭州市"


def test_every_rule_is_quarantined_with_its_reason_and_nothing_else_is_lost(wh):
    bad_rows = {
        "missing_required": ("O2,U1,app,,,created,50,0,6,56,,,,", "order_ts"),
        "bad_type": ("O3,U1,app,2026-05-20 10:00:00,,created,12.345,0,6,56,,,,", "items_amount"),
        "bad_enum": ("O4,U1,myspace,2026-05-20 10:00:00,,created,50,0,6,56,,,,", "channel"),
        "negative_amount": ("O5,U1,app,2026-05-20 10:00:00,,created,50,-1.00,6,56,,,,", "discount_amount"),
        "duplicate_key": (GOOD, "order_id"),
        "malformed_row": ("O6,U1,app", None),
    }
    rows = [GOOD] + [r for r, _ in bad_rows.values()]
    data = orders_csv(rows) + "O7,U1,app,2026-05-20 10:00:00,,created,5,0,6,11,,,".encode() + b"\xff\xfe,\n"
    wh.write("orders", "orders_20260520.csv", data)
    # order_items: unknown_key (no such order), out_of_range (quantity 0); one good line
    wh.write("order_items", "order_items_20260520.csv",
             b"order_id,line_no,sku_id,quantity,unit_price,discount_amount\n"
             b"O1,1,SKU1,1,100.00,10\nO404,1,SKU1,1,5,0\nO1,2,SKU2,0,5,0\n")
    wh.write("users", "users_20260520.csv",
             b"user_id,registered_at,channel,phone_hash,province,city,member_level,birth_year\n"
             b"U1,2026-05-20 10:00:00,app,nothex,,,1,1990\n")
    r_orders = wh.ingest("orders")
    r_items = wh.ingest("order_items")
    wh.ingest("users")

    got = {(row, rule, col) for row, rule, col in wh.q(
        "select row_number, rule, column_name from raw.quarantine where source = 'orders'")}
    expected = {(i + 2, rule, col) for i, (rule, (_, col)) in enumerate(bad_rows.items())}
    expected.add((8, "bad_encoding", None))
    assert got == expected
    assert wh.q("select order_id, _row from raw.orders") == [("O1", 1)]
    assert r_orders.total("rows_landed") == 8 == r_orders.total("rows_loaded") + r_orders.total("rows_quarantined")

    items = wh.q("select row_number, rule, column_name from raw.quarantine where source = 'order_items' order by 1")
    assert items == [(2, "unknown_key", "order_id"), (3, "out_of_range", "quantity")]
    assert r_items.total("rows_loaded") == 1
    assert wh.q("select rule, column_name from raw.quarantine where source = 'users'") == [("bad_format", "phone_hash")]

    # every row-level rule of the contract was exercised above (unreadable_file: its own test)
    assert {r for (r,) in wh.q("select distinct rule from raw.quarantine")} == set(RULES) - {"unreadable_file"}
    reason, raw = wh.q("select reason, raw_text from raw.quarantine where rule = 'bad_type'")[0]
    assert "items_amount" in reason and "'12.345'" in reason and raw.startswith("O3,U1,app")
    (raw_bad,) = wh.q("select raw_text from raw.quarantine where rule = 'bad_encoding'")[0]
    assert "\\xff\\xfe" in raw_bad
    export = wh.quarantine / "orders" / "orders_20260520.csv.quarantine.csv"
    assert export.exists() and len(export.read_text().splitlines()) == 1 + 7


def test_same_file_again_changes_nothing_and_copy_under_new_name_is_skipped(wh):
    p = wh.write("orders", "orders_20260520.csv", orders_csv([GOOD]))
    wh.ingest("orders")
    before = wh.snapshot()
    os.utime(p, ns=(1, 1))  # new mtime: forces a re-read and a hash comparison
    again = wh.ingest("orders")
    assert [f.status for f in again.files] == ["skipped_same_content"]
    wh.write("orders", "orders_20260520_copy.csv", orders_csv([GOOD]))
    third = wh.ingest("orders")
    assert sorted(f.status for f in third.files) == ["skipped_same_content"] * 2
    after = wh.snapshot()
    # the copy is recorded as a duplicate (so it is neither read again nor reported as new), and
    # nothing else changes
    assert wh.q("select file_name, status, rows_landed from raw._files where status = 'duplicate'") == [
        ("orders_20260520_copy.csv", "duplicate", 0)]
    assert {k: v for k, v in after.items() if k != "_files"} == {k: v for k, v in before.items() if k != "_files"}
    assert [r for r in after["_files"] if "duplicate" not in r] == before["_files"]


def test_corrected_redelivery_replaces_exactly_that_files_rows(wh):
    wh.write("orders", "orders_20260520.csv",
             orders_csv([GOOD, "O2,U2,web,2026-05-20 10:00:00,,created,abc,0,0,0,,,,"]))
    wh.write("orders", "orders_20260521.csv", orders_csv([GOOD.replace(",paid,", ",shipped,")]))
    wh.ingest("orders")
    assert wh.q("select count(*) from raw.quarantine")[0][0] == 1
    wh.write("orders", "orders_20260520.csv",
             orders_csv([GOOD, "O2,U2,web,2026-05-20 10:00:00,,created,50.00,0,0,50.00,,,,"]))
    res = wh.ingest("orders")
    assert [f.status for f in res.files] == ["replaced", "skipped_same_content"]
    rows = wh.q("select _file, order_id, status from raw.orders order by _file, order_id")
    assert rows == [("orders_20260520.csv", "O1", "paid"), ("orders_20260520.csv", "O2", "created"),
                    ("orders_20260521.csv", "O1", "shipped")]
    assert wh.q("select count(*) from raw.quarantine")[0][0] == 0
    assert wh.q("select status, count(*) from raw._files group by 1 order by 1") == [("loaded", 2), ("superseded", 1)]


def test_gbk_and_bom_files_load_with_correct_chinese_text(wh):
    wh.write("orders", "orders_20260520.csv", orders_csv([GOOD], encoding="gb18030"))
    wh.write("orders", "orders_20260521.csv",
             orders_csv([GOOD.replace("O1", "O2").replace("杭州市", "宁波市")], bom=True))
    res = wh.ingest("orders")
    assert [f.encoding for f in res.files] == ["gb18030", "utf-8-sig"]
    assert wh.q("select order_id, province, city from raw.orders order by 1") == [
        ("O1", "浙江省", "杭州市"), ("O2", "浙江省", "宁波市")]


def test_timestamps_without_offset_are_business_time_and_stored_as_utc(wh):
    rows = [
        "O1,U1,app,2026-05-20 23:59:00,2026-05-21T00:01:00+08:00,paid,1,0,0,1,,,,",
        "O2,U1,app,2026-05-20T16:01:00Z,,created,1,0,0,1,,,,",
    ]
    wh.write("orders", "orders_20260520.csv", orders_csv(rows))
    wh.ingest("orders")
    assert wh.q("select order_id, order_ts, paid_ts from raw.orders order by 1") == [
        ("O1", datetime(2026, 5, 20, 15, 59), datetime(2026, 5, 20, 16, 1)),
        ("O2", datetime(2026, 5, 20, 16, 1), None),
    ]


def test_jsonl_parquet_and_gzip_formats(wh):
    ev = {"event_id": "E1", "event_ts": "2026-05-20T12:00:00Z", "anonymous_id": "A1", "user_id": None,
          "session_id": "S1", "event_name": "login", "platform": "ios", "properties": json.dumps({"k": 1})}
    lines = [json.dumps(ev), json.dumps({**ev, "event_id": "E2", "platform": "symbian"}), "{not json",
             json.dumps({**ev, "event_id": "E3", "extra": 1})]
    wh.write("events", "events_20260520.jsonl", ("\n".join(lines) + "\n").encode())
    res = wh.ingest("events")
    assert res.total("rows_landed") == 4 and res.total("rows_loaded") == 2
    assert wh.q("select row_number, rule from raw.quarantine order by 1") == [(2, "bad_enum"), (3, "malformed_row")]
    assert any("extra" in n for n in res.files[0].notes)

    table = pa.table({
        "shipment_id": ["SH1", "SH2"], "order_id": ["O1", None], "carrier": ["顺丰", "EMS"],
        "warehouse_id": ["WH-SH", "WH-SH"],
        "shipped_at": pa.array([datetime(2026, 5, 21, 2), datetime(2026, 5, 21, 3)], pa.timestamp("us", tz="UTC")),
        "delivered_at": pa.array([None, None], pa.timestamp("us", tz="UTC")), "province": ["上海市", None],
    })
    path = wh.landing_dir / "shipments" / "shipments_20260521.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    wh.ingest("shipments")
    assert wh.q("select shipment_id, carrier, shipped_at from raw.shipments") == [
        ("SH1", "顺丰", datetime(2026, 5, 21, 2))]
    assert wh.q("select row_number, rule, column_name from raw.quarantine where source='shipments'") == [
        (2, "missing_required", "order_id")]

    csv_text = "snapshot_date,sku_id,warehouse_id,on_hand,in_transit,safety_stock\n2026-05-20,SKU1,WH-SH,5,,2\n"
    wh.write("inventory_snapshots", "inventory_snapshots_20260520.csv.gz", gzip.compress(csv_text.encode(), mtime=0))
    wh.ingest("inventory_snapshots")
    assert wh.q("select sku_id, on_hand, in_transit from raw.inventory_snapshots") == [("SKU1", 5, None)]


def test_unreadable_file_is_quarantined_as_a_whole_and_a_corrected_one_replaces_it(wh):
    wh.write("inventory_snapshots", "inventory_snapshots_20260520.csv.gz", b"this is not gzip")
    wh.write("shipments", "shipments_20260520.parquet", b"PAR1 truncated")
    res = wh.ingest("inventory_snapshots")
    wh.ingest("shipments")
    assert [f.status for f in res.files] == ["rejected"]
    rows = wh.q("select source, row_number, rule, reason from raw.quarantine order by 1")
    assert [(s, n, r) for s, n, r, _ in rows] == [("inventory_snapshots", 0, "unreadable_file"),
                                                  ("shipments", 0, "unreadable_file")]
    assert "inventory_snapshots_20260520.csv.gz" in rows[0][3] and "gzip" in rows[0][3]
    assert [f.status for f in wh.ingest("inventory_snapshots").files] == ["skipped_same_content"]
    csv_text = "snapshot_date,sku_id,warehouse_id,on_hand,in_transit,safety_stock\n2026-05-20,SKU1,WH-SH,5,,2\n"
    wh.write("inventory_snapshots", "inventory_snapshots_20260520.csv.gz", gzip.compress(csv_text.encode(), mtime=0))
    assert [f.status for f in wh.ingest("inventory_snapshots").files] == ["replaced"]
    assert wh.q("select count(*) from raw.quarantine where source = 'inventory_snapshots'") == [(0,)]
    assert wh.q("select count(*) from raw.inventory_snapshots") == [(1,)]


def test_misnamed_files_are_reported_not_loaded(wh):
    wh.write("orders", "orders-may.csv", orders_csv([GOOD]))
    res = wh.ingest("orders")
    assert res.files == [] and "orders-may.csv" in res.problems[0]


def test_exception_mid_file_leaves_the_warehouse_as_before(wh):
    wh.write("orders", "orders_20260520.csv", orders_csv([GOOD]))
    wh.ingest("orders")
    before = wh.snapshot()
    wh.write("orders", "orders_20260521.csv", orders_csv([GOOD.replace("O1", "O9"), "O8,bad"]))
    wh.write("orders", "orders_20260520.csv", orders_csv([GOOD, GOOD.replace("O1", "O3")]))  # redelivery

    def boom(con):
        assert con.execute("select count(*) from raw.orders").fetchone()[0] > 1  # rows were written
        raise RuntimeError("disk full (injected)")

    con = duckdb.connect(str(wh.db))
    try:
        for name in ("orders_20260520.csv", "orders_20260521.csv"):
            lf = landing.parse_file_name(wh.landing_dir / "orders" / name)
            with pytest.raises(ingest.IngestError, match=f"{name}.*injected"):
                ingest.load_file(con, lf, tz=TZ, before_commit=boom)
    finally:
        con.close()
    assert wh.snapshot() == before


def test_a_file_whose_books_do_not_balance_is_not_kept(wh, monkeypatch):
    """landed = loaded + quarantined is checked on the inserts' own counts: a validation that lost a
    row (here: one made to drop row 2) fails the file, and nothing of it is kept."""
    wh.write("orders", "orders_20260520.csv", orders_csv([GOOD]))
    wh.ingest("orders")
    before = wh.snapshot()
    wh.write("orders", "orders_20260521.csv", orders_csv([GOOD.replace("O1", "O9"), GOOD.replace("O1", "O8")]))
    real = ingest.validation_sql
    monkeypatch.setattr(ingest, "validation_sql",
                        lambda *a, **k: f"select * from ({real(*a, **k)}) where _row <> 2")
    con = duckdb.connect(str(wh.db))
    try:
        lf = landing.parse_file_name(wh.landing_dir / "orders" / "orders_20260521.csv")
        with pytest.raises(ingest.IngestError, match="orders_20260521.csv: 2 rows landed but 1 loaded "
                                                     r"\+ 0 quarantined; nothing of this file was kept"):
            ingest.load_file(con, lf, tz=TZ)
    finally:
        con.close()
    assert wh.snapshot() == before


def test_kill_mid_file_leaves_the_warehouse_as_before(wh, tmp_path):
    wh.write("orders", "orders_20260520.csv", orders_csv([GOOD]))
    wh.ingest("orders")
    before = wh.snapshot()
    many = [GOOD.replace("O1", f"O{i}") for i in range(2, 20000)]
    wh.write("orders", "orders_20260521.csv", orders_csv(many))
    script = textwrap.dedent(f"""
        import os, signal, duckdb
        from pathlib import Path
        from dagster_project.lib import ingest, landing
        con = duckdb.connect({str(wh.db)!r})
        lf = landing.parse_file_name(Path({str(wh.landing_dir / 'orders' / 'orders_20260521.csv')!r}))
        def die(con):
            os.kill(os.getpid(), signal.SIGKILL)
        ingest.load_file(con, lf, tz={TZ!r}, before_commit=die)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert wh.snapshot() == before
    # and the file loads normally afterwards
    res = wh.ingest("orders")
    assert [f.rows_loaded for f in res.files if f.status == "loaded"] == [19998]


def test_writer_lock_excludes_other_processes(tmp_path):
    lock = tmp_path / "wh.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from dagster_project.lib.ingest import writer_lock
        with writer_lock(Path({str(lock)!r})):
            print("held", flush=True)
            time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ingest.IngestError, match="writer lock"):
            with ingest.writer_lock(lock, timeout_s=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()
    with ingest.writer_lock(lock, timeout_s=5):  # free again once the holder is gone
        with ingest.writer_lock(lock, timeout_s=0.1):  # re-entrant in one process
            pass


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_validation_sql_compiles_for_every_source(source, tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    ingest.ensure_raw_schema(con)
    src = SOURCES[source]
    empty = pa.table({**{c: pa.array([], pa.string()) for c in src.column_names},
                      "_row": pa.array([], pa.int64()), "_raw_text": pa.array([], pa.string()),
                      "_pre_rule": pa.array([], pa.string()), "_pre_detail": pa.array([], pa.string())})
    con.register("landed", empty)
    assert con.execute(ingest.validation_sql(src, TZ)).fetchall() == []


def test_date_only_timestamp_is_business_midnight_whatever_the_machine_zone(wh, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    wh.write("campaigns", "campaigns_20260520.csv",
             "campaign_id,name,type,channel,start_at,end_at,cost\nC1,618,discount,app,2026-06-01,2026-06-18T23:59:59+08:00,1\n"
             .encode())
    wh.ingest("campaigns")
    # 2026-06-01 00:00 in Shanghai is 2026-05-31 16:00 UTC
    assert wh.q("select start_at, end_at from raw.campaigns") == [
        (datetime(2026, 5, 31, 16, 0), datetime(2026, 6, 18, 15, 59, 59))]


def test_unicode_line_separators_inside_a_field_do_not_split_the_row(wh):
    wh.write("products", "products_20260520.csv",
             "sku_id,spu_id,product_name,category_l1,category_l2,brand,list_price,cost_price,launched_at,delisted_at\n"
             "S1,P1,连衣裙\u2028夏季\x1c款,clothing,,,19.90,9.00,,\nS2,P2,短袖,clothing,,,9.90,4.00,,\n".encode())
    res = wh.ingest("products")
    assert res.total("rows_landed") == 2 and res.total("rows_quarantined") == 0
    assert wh.q("select sku_id, product_name, _row from raw.products order by 1") == [
        ("S1", "连衣裙\u2028夏季\x1c款", 1), ("S2", "短袖", 2)]


def test_corrected_file_with_same_size_and_mtime_is_still_replaced(wh):
    p = wh.write("orders", "orders_20260520.csv", orders_csv([GOOD]))
    wh.ingest("orders")
    st = p.stat()
    p.write_bytes(orders_csv([GOOD.replace("O1", "O2")]))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # like `cp -p`: same size, same mtime
    assert p.stat().st_size == st.st_size
    assert [f.status for f in wh.ingest("orders").files] == ["replaced"]
    assert wh.q("select order_id from raw.orders") == [("O2",)]


def test_file_untouched_since_its_load_is_not_read_again(wh, monkeypatch):
    p = wh.write("orders", "orders_20260520.csv", orders_csv([GOOD]))
    wh.ingest("orders")
    before = wh.snapshot()
    con = duckdb.connect(str(wh.db))
    # as if the load happened an hour after the file last changed (its ctime)
    con.execute("update raw._files set loaded_at = loaded_at + interval 1 hour")
    con.close()

    def no_hashing(data):
        raise AssertionError("an unchanged file was read and hashed again")

    monkeypatch.setattr(ingest.landing, "content_hash", no_hashing)
    again = wh.ingest("orders")
    assert [(f.status, f.notes) for f in again.files] == [
        ("skipped_same_content", ["unchanged since it was loaded (size, mtime and ctime)"])]
    assert wh.snapshot() == before
    os.utime(p, ns=(1, 1))  # a changed mtime: the content is hashed again
    with pytest.raises(AssertionError, match="read and hashed again"):
        wh.ingest("orders")


def test_file_name_with_a_quote_loads_and_exports_its_quarantine(wh):
    wh.write("orders", "orders_20260520_o'neil.csv", orders_csv([GOOD, "O2,U1,app,,,created,1,0,0,1,,,,"]))
    res = wh.ingest("orders")
    assert res.total("rows_loaded") == 1 and res.total("rows_quarantined") == 1
    assert (wh.quarantine / "orders" / "orders_20260520_o'neil.csv.quarantine.csv").exists()


def test_jsonl_keys_are_matched_like_csv_headers(wh):
    line = json.dumps({"Event_ID": "E1", " event_ts": "2026-05-20T12:00:00Z", "ANONYMOUS_ID": "A1",
                       "session_id": "S1", "event_name": "login", "platform": "ios", "user_id": "U1"})
    wh.write("events", "events_20260520.jsonl", (line + "\n").encode())
    assert wh.ingest("events").total("rows_loaded") == 1


def test_parquet_float32_amounts_keep_their_decimal_value(wh):
    table = pa.table({"campaign_id": ["C1"], "name": ["618"], "type": ["discount"], "channel": ["app"],
                      "start_at": pa.array([datetime(2026, 6, 1)], pa.timestamp("us", tz="UTC")),
                      "end_at": pa.array([datetime(2026, 6, 2)], pa.timestamp("us", tz="UTC")),
                      "cost": pa.array([19.9], pa.float32())})
    path = wh.landing_dir / "campaigns" / "campaigns_20260520.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    res = wh.ingest("campaigns")
    assert res.total("rows_quarantined") == 0
    assert str(wh.q("select cost from raw.campaigns")[0][0]) == "19.90"


def test_order_lines_that_land_before_their_order_are_released_when_it_arrives(wh):
    wh.write("order_items", "order_items_20260520.csv",
             b"order_id,line_no,sku_id,quantity,unit_price,discount_amount\nO1,1,SKU1,1,100.00,10\nO404,1,SKU1,1,5,0\n")
    wh.ingest("orders")
    first = wh.ingest("order_items")
    assert first.total("rows_quarantined") == 2 and first.released == {}
    wh.write("orders", "orders_20260520.csv", orders_csv([GOOD]))  # O1 arrives late; O404 never does
    wh.ingest("orders")
    again = wh.ingest("order_items")
    assert again.released == {"order_items_20260520.csv": 1}
    assert wh.q("select order_id, line_no, _file, _row from raw.order_items") == [
        ("O1", 1, "order_items_20260520.csv", 1)]
    assert wh.q("select row_number, rule from raw.quarantine where source = 'order_items'") == [(2, "unknown_key")]
    # the file's books still balance: landed = loaded + quarantined
    assert wh.q("select rows_landed, rows_loaded, rows_quarantined from raw._files "
                "where source = 'order_items'") == [(2, 1, 1)]
    export = wh.quarantine / "order_items" / "order_items_20260520.csv.quarantine.csv"
    assert len(export.read_text().splitlines()) == 2  # header + O404
    assert wh.ingest("order_items").released == {}  # nothing left to release, nothing released twice


# --- the next file read ahead (ingest._load_in_order) ----------------------------------------------

def _order(i: int) -> str:
    return GOOD.replace("O1,", f"O{i},", 1)


def test_the_next_new_file_is_hashed_on_a_thread_while_the_one_before_loads(wh, monkeypatch):
    for day in (20, 21, 22):
        wh.write("orders", f"orders_202605{day}.csv", orders_csv([_order(day)]))
    wh.ingest("orders")
    con = duckdb.connect(str(wh.db))  # as if loaded an hour after they last changed: not read again
    con.execute("update raw._files set loaded_at = loaded_at + interval 1 hour")
    con.close()
    wh.write("orders", "orders_20260523.csv", orders_csv([_order(23)]))
    wh.write("orders", "orders_20260524.csv", orders_csv([_order(24)]))
    hashed_by = {}
    real_hash = ingest.landing.content_hash

    def recorded(data):
        digest = real_hash(data)
        hashed_by[digest] = threading.current_thread().name
        return digest

    monkeypatch.setattr(ingest.landing, "content_hash", recorded)
    res = wh.ingest("orders")
    assert [(f.file_name, f.status) for f in res.files] == [
        ("orders_20260520.csv", "skipped_same_content"), ("orders_20260521.csv", "skipped_same_content"),
        ("orders_20260522.csv", "skipped_same_content"), ("orders_20260523.csv", "loaded"),
        ("orders_20260524.csv", "loaded")]
    # the three loaded files were not read at all; the first new one was read ahead of its load (while
    # the loads of the unchanged files ran), and so was the second, while the first loaded
    assert sorted(hashed_by.values()) == ["ew-hash-ahead_0", "ew-hash-ahead_0"]
    assert wh.q("select order_id from raw.orders order by 1") == [(f"O{d}",) for d in range(20, 25)]


def test_a_file_that_changes_after_it_was_read_ahead_is_not_loaded_with_its_old_hash(wh, monkeypatch):
    wh.write("orders", "orders_20260520.csv", orders_csv([_order(1)]))
    p = wh.write("orders", "orders_20260521.csv", orders_csv([_order(2)]))
    real = ingest.open_and_hash

    def then_rewritten(lf, *a):
        ready = real(lf, *a)
        p.write_bytes(orders_csv([_order(3)]))  # its writer was not done: same name, new bytes
        os.utime(p, ns=(ready.f.stat.st_mtime_ns + 10**9,) * 2)
        return ready

    monkeypatch.setattr(ingest, "open_and_hash", then_rewritten)
    res = wh.ingest("orders")
    assert [f.status for f in res.files] == ["loaded", "not_ready"]
    assert "changed while it was being read" in res.files[1].notes[0]
    monkeypatch.undo()
    again = wh.ingest("orders")
    assert [f.status for f in again.files] == ["skipped_same_content", "loaded"]
    assert wh.q("select order_id from raw.orders order by 1") == [("O1",), ("O3",)]
    (digest,) = wh.q("select content_hash from raw._files where file_name = 'orders_20260521.csv' "
                     "and status = 'loaded'")[0]
    assert digest == landing.content_hash(p.read_bytes())


def test_a_load_that_fails_lets_go_of_the_file_read_ahead(wh, monkeypatch):
    for day in (20, 21):
        wh.write("orders", f"orders_202605{day}.csv", orders_csv([_order(day)]))

    def open_landing_files() -> list[str]:
        fds = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                fds.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        return [t for t in fds if t.startswith(str(wh.landing_dir))]

    monkeypatch.setattr(ingest, "validation_sql", lambda *a, **k: "select no_such_column from landed")
    with pytest.raises(ingest.IngestError, match="orders_20260520.csv: load failed, nothing of this file was kept"):
        wh.ingest("orders")
    assert open_landing_files() == []
    assert wh.q("select count(*) from raw.orders") == [(0,)]


def test_a_file_read_ahead_still_loads_by_the_exact_reader_when_asked(wh):
    line = json.dumps({"event_id": "E1", "event_ts": "2026-05-20T12:00:00Z", "anonymous_id": "A1",
                       "session_id": "S1", "event_name": "app_open", "platform": "ios"})
    p = wh.write("events", "events_20260520.jsonl", (line + "\n").encode())
    lf = landing.parse_file_name(p)
    lf.real = p
    from concurrent.futures import Future

    ahead: Future = Future()
    ahead.set_result(ingest.open_and_hash(lf))  # hashed with the fast reader's line scan
    assert ahead.result().scan is not None
    with duckdb.connect(str(wh.db)) as con:
        con.execute("set TimeZone = 'UTC'")
        ingest.ensure_raw_schema(con)
        res = ingest.load_file(con, lf, tz="Asia/Shanghai", fast=False, opened=ahead)
    assert (res.status, res.reader, res.rows_loaded) == ("loaded", "exact", 1)
