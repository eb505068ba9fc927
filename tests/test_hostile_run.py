"""Hostile landing files through `ecomwh run` and `ecomwh status` (issue 18, the ingest items whose
harm showed in the run itself: docs/quality.md, "Hostile files").

One generated warehouse is loaded (as an earlier run would have), then the landing folder gets what
real deliveries bring: loaded .csv.gz files overwritten by an interrupted transfer, a value no
downstream sum can hold, misnamed and misplaced files, a renamed column. One `ecomwh run` follows;
each test reads what it did.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import duckdb
import pytest

from dagster_project.lib.contract import sources_parents_first
from dagster_project.lib.ingest import ingest_source
from ecomwh_proc import shared_env  # tests/ is on sys.path (pytest rootdir conftest)

pytestmark = pytest.mark.e2e

TZ = "Asia/Shanghai"
MISPLACED = {
    "orders/Orders_20260601.csv": "rename it to orders_20260601.csv",
    "orders/orders_20260601.CSV": "rename it to orders_20260601.csv",
    "orders/2026/orders_20260602.csv": "in a subfolder",
    "order/orders_20260603.csv": "folder 'order' is not a source (did you mean orders?)",
    "orders_20260604.csv": "not in a source folder",
}


def _q(db, sql: str, params=None):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile") / "ew"
    env = {"EW_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home.parent), "EW_LANDING_SETTLE_S": "2",
           **shared_env()}
    exe = [sys.executable, "-m", "dagster_project.cli"]
    gen = subprocess.run(exe + ["generate", "--customers", "300", "--days", "40", "--seed", "7",
                                "--bad-rate", "0.01"], env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    land, db = home / "landing", home / "warehouse.duckdb"

    # sellers' exports are often gzipped: one day of orders arrives as .csv.gz
    orders = sorted((land / "orders").glob("orders_*.csv"))
    plain = orders[len(orders) // 2]
    orders_gz = plain.with_name(plain.name + ".gz")
    orders_gz.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    plain.unlink()
    inventory_gz = sorted((land / "inventory_snapshots").glob("*.csv.gz"))[20]

    for source in sources_parents_first():  # what an earlier run loaded
        ingest_source(db, land, source, tz=TZ, lock_path=home / "warehouse.lock", quarantine_dir=home / "quarantine")
    before = {p.name: _q(db, f"select count(*), count(distinct {key}) from raw.{src} where _file = ?", [p.name])[0]
              for p, src, key in ((orders_gz, "orders", "order_id"), (inventory_gz, "inventory_snapshots", "sku_id"))}
    snapshot_date = _q(db, "select min(snapshot_date) from raw.inventory_snapshots where _file = ?",
                       [inventory_gz.name])[0][0]

    # item 3: interrupted transfers overwrite two loaded .csv.gz files with their first half
    for p in (orders_gz, inventory_gz):
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    # item 7: a quantity no sum downstream can hold, on an order that exists
    (order_id,) = _q(db, "select min(order_id) from raw.orders")[0]
    items = land / "order_items" / "order_items_20260701_late.csv"
    items.write_text("order_id,line_no,sku_id,quantity,unit_price,discount_amount\n"
                     f"{order_id},99,SKU10005,9223372036854775807,129.00,0.00\n")
    # item 12: files no source loads
    sample = orders[0].read_bytes()
    for rel in MISPLACED:
        (land / rel).parent.mkdir(parents=True, exist_ok=True)
        (land / rel).write_bytes(sample)
    # item 18: an optional column renamed by the sender
    header, first = orders[0].read_text(encoding="utf-8").splitlines()[:2]
    renamed = land / "orders" / "orders_20260701_renamed.csv"
    renamed.write_text(header.replace("coupon_id", "coupon") + "\n" + first.replace(first.split(",")[0], "O9000000001")
                       + "\n", encoding="utf-8")

    run = subprocess.run(exe + ["run"], env=env, capture_output=True, text=True, timeout=1800)
    status = subprocess.run(exe + ["status"], env=env, capture_output=True, text=True, timeout=300)
    status_json = subprocess.run(exe + ["status", "--json"], env=env, capture_output=True, text=True, timeout=300)
    return {"run": run, "status": status, "status_json": status_json, "db": db, "before": before,
            "orders_gz": orders_gz.name, "inventory_gz": inventory_gz.name, "snapshot_date": snapshot_date,
            "items": items.name, "renamed": renamed.name}


def test_a_corrupt_redelivery_keeps_the_day_it_would_have_replaced(hostile):
    run, db = hostile["run"], hostile["db"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for source, name in (("orders", hostile["orders_gz"]), ("inventory_snapshots", hostile["inventory_gz"])):
        line = next(x for x in run.stdout.splitlines() if f"REFUSED {source}/{name}" in x)
        assert "cut short" in line and "is kept until a readable one replaces it" in line
    # the loaded version stays, in raw and in the marts built from it
    n_orders, n_order_ids = hostile["before"][hostile["orders_gz"]]
    assert _q(db, "select count(*), count(distinct order_id) from raw.orders where _file = ?",
              [hostile["orders_gz"]]) == [(n_orders, n_order_ids)]
    assert _q(db, "select count(*) from marts.fct_orders where order_id in "
                  "(select order_id from raw.orders where _file = ?)", [hostile["orders_gz"]]) == [(n_order_ids,)]
    n_rows, n_skus = hostile["before"][hostile["inventory_gz"]]
    assert n_skus > 0 and _q(db, "select count(*) from raw.inventory_snapshots where _file = ?",
                             [hostile["inventory_gz"]]) == [(n_rows,)]
    assert _q(db, "select count(distinct sku_id) from marts.mart_inventory_cover where snapshot_date = ?",
              [hostile["snapshot_date"]]) == [(n_skus,)]
    refused = _q(db, "select f.file_name, q.row_number, q.rule from raw._files f join raw.quarantine q "
                     "using (load_id) where f.status = 'refused' order by 1")
    assert refused == sorted([(hostile["inventory_gz"], 0, "unreadable_file"),
                              (hostile["orders_gz"], 0, "unreadable_file")])


def test_a_value_downstream_sums_cannot_hold_is_quarantined_and_the_run_finishes(hostile):
    run, db = hostile["run"], hostile["db"]
    assert run.returncode == 0 and "done in" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert "^^^" not in run.stdout + run.stderr
    assert _q(db, "select row_number, rule, column_name from raw.quarantine where file_name = ?",
              [hostile["items"]]) == [(1, "out_of_range", "quantity")]
    assert _q(db, "select max(quantity) from raw.order_items")[0][0] <= 1_000_000


def test_run_and_status_name_every_landing_file_they_did_not_load(hostile):
    run, status, status_json = hostile["run"], hostile["status"], hostile["status_json"]
    assert status.returncode == 0 and status_json.returncode == 0, status.stderr + status_json.stderr
    summary = run.stdout[run.stdout.index("landing file(s) NOT loaded"):]
    listed = {item["path"]: item["reason"] for item in json.loads(status_json.stdout)["not_loaded"]}
    for path, why in MISPLACED.items():
        assert f"  {path}: " in summary and why in summary.split(f"  {path}: ")[1].splitlines()[0]
        assert why in listed[path]
        assert f"  {path}: " in status.stdout
    for source, name in (("orders", hostile["orders_gz"]), ("inventory_snapshots", hostile["inventory_gz"])):
        assert listed[f"{source}/{name}"].startswith("refused: ")
        assert f"  {source}/{name}: refused: " in summary
    assert set(listed) == set(MISPLACED) | {f"orders/{hostile['orders_gz']}",
                                            f"inventory_snapshots/{hostile['inventory_gz']}"}


def test_a_renamed_column_is_said_on_the_terminal_and_in_status(hostile):
    note = "columns absent from the file (read as empty): coupon_id (renamed coupon?)"
    assert f"NOTE orders/{hostile['renamed']}: {note}" in hostile["run"].stdout
    assert f"  orders/{hostile['renamed']}: {note}" in hostile["status"].stdout
    notes = {item["path"]: item["notes"] for item in json.loads(hostile["status_json"].stdout)["file_notes"]}
    assert notes == {f"orders/{hostile['renamed']}": f"{note}; columns not in the contract (ignored): coupon"}
