"""Valid data must load (issue 17 A), through the real `ecomwh run`:

- a shop whose history runs from 1996 to 1999 and whose users have no phone numbers builds every
  mart, and the run says, in its warnings, what is unusual and why it matters;
- a young shop (one day, one channel, one purchase per customer, no events, campaigns, inventory,
  returns or shipments) builds every mart; the LTV model, which cannot be fitted on it yet, leaves its
  marts empty with the reason recorded;
- a critical failure on one source (order lines whose order a corrected redelivery dropped) stops
  only what that source feeds, and the run says in one line which rows to look at and how to re-run;
  after the fix the next run builds everything.

The landings are written here, row by row, so every count below is known by construction.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import yaml
from ecomwh_proc import shared_env  # tests/ is on sys.path (pytest rootdir conftest)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
HEADERS = {
    "users": ["user_id", "registered_at", "channel", "phone_hash", "province", "city", "member_level", "birth_year"],
    "products": ["sku_id", "spu_id", "product_name", "category_l1", "category_l2", "brand", "list_price",
                 "cost_price", "launched_at", "delisted_at"],
    "orders": ["order_id", "user_id", "channel", "order_ts", "paid_ts", "status", "items_amount",
               "discount_amount", "shipping_fee", "pay_amount", "coupon_id", "campaign_id", "province", "city"],
    "order_items": ["order_id", "line_no", "sku_id", "quantity", "unit_price", "discount_amount"],
    "events": ["event_id", "event_ts", "anonymous_id", "user_id", "session_id", "event_name", "platform",
               "sku_id", "order_id", "page", "campaign_id", "properties"],
}


def write(landing: Path, source: str, name: str, rows: list[tuple]) -> Path:
    path = landing / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADERS[source])
        w.writerows(rows)
    return path


def ecomwh(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"EW_HOME": str(home), "HOME": str(home.parent), "PATH": "/usr/bin:/bin", **shared_env()}
    return subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=env, capture_output=True,
                          text=True, timeout=1500)


def mart_tables() -> set[str]:
    """Every table of schema marts the project declares: dbt models and the Python-built sources."""
    names = {p.stem for p in (REPO / "dbt" / "models" / "marts").rglob("*.sql")}
    for path in (REPO / "dbt" / "models" / "marts").rglob("*.yml"):
        for source in (yaml.safe_load(path.read_text()) or {}).get("sources") or []:
            if source.get("schema") == "marts":
                names |= {t["name"] for t in source["tables"]}
    return names


def tables_in(db: Path, schema: str) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [schema]).fetchall()}


def query(db: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


# ---------------------------------------------------------------------------------------------
# A catalogue business bringing its history: orders 1996-1999, no phone numbers, no cost prices.

OLD_USERS = 120


def old_shop(landing: Path) -> dict:
    users = [(f"U{i:03d}", f"{1996 + i % 3}-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00", "offline", "",
              "浙江省", "杭州市", i % 6, 1940 + i % 50) for i in range(OLD_USERS)]
    write(landing, "users", "users_19991231.csv", users)
    write(landing, "products", "products_19991231.csv", [
        (f"S{i}", f"P{i}", f"目录商品{i}号", "家居", "", "", f"{20 + i}.00", "", "1994-03-01 09:00:00", "")
        for i in range(8)])
    orders, items = {}, {}
    for i, (user_id, registered, *_) in enumerate(users):
        t = datetime.fromisoformat(registered) + timedelta(days=i % 20)
        for k in range(1 + i % 4):  # one to four orders, months apart: repeat buyers for the model
            if t >= datetime(2000, 1, 1):
                break
            oid = f"O{i:03d}{k}"
            sku, qty = (i + k) % 8, 1 + k % 3
            amount = f"{(20 + sku) * qty}.00"
            orders.setdefault(t.year, []).append(
                (oid, user_id, "offline", f"{t:%Y-%m-%d %H:%M:%S}", f"{t + timedelta(minutes=3):%Y-%m-%d %H:%M:%S}",
                 "delivered", amount, "0.00", "0.00", amount, "", "", "浙江省", "杭州市"))
            items.setdefault(t.year, []).append((oid, 1, f"S{sku}", qty, f"{20 + sku}.00", "0.00"))
            t += timedelta(days=60 + 37 * k)
    for year in orders:
        write(landing, "orders", f"orders_{year}1231.csv", orders[year])
        write(landing, "order_items", f"order_items_{year}1231.csv", items[year])
    every = [o for rows in orders.values() for o in rows]
    return {"orders": len(every), "first": min(o[3] for o in every)[:10], "last": max(o[3] for o in every)[:10],
            "years": sorted(orders)}


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    home = tmp_path_factory.mktemp("old") / "ew"
    facts = old_shop(home / "landing")
    return home, facts, ecomwh(home, "run")


def test_old_history_without_phone_numbers_builds_every_mart(old):
    home, facts, run = old
    assert facts["years"] == [1996, 1997, 1998, 1999]
    assert run.returncode == 0, run.stdout + run.stderr
    db = home / "warehouse.duckdb"
    assert mart_tables() <= tables_in(db, "marts"), sorted(mart_tables() - tables_in(db, "marts"))
    assert mart_tables() <= tables_in(home / "serving" / "warehouse.duckdb", "marts")
    # every order arrived, with its own dates, and feeds the marts
    assert query(db, "select count(*), min(cast(order_ts as date)), max(cast(order_ts as date)) from raw.orders") \
        == [(facts["orders"], date.fromisoformat(facts["first"]), date.fromisoformat(facts["last"]))]
    assert query(db, "select count(*) from marts.fct_orders where is_valid") == [(facts["orders"],)]
    assert query(db, "select count(*) from raw.quarantine") == [(0,)]
    assert query(db, "select count(*), min(cohort_month) >= date '1996-01-01', max(cohort_month) < date '2000-01-01' "
                     "from marts.mart_repurchase_cohort")[0][1:] == (True, True)
    # enough customers and repeat buyers: the model is fitted on 1990s data
    status = query(db, "select status, reason, year(as_of_date) from marts.mart_ltv_status")
    assert status == [("fitted", None, 1999)]
    assert query(db, "select count(*) from marts.mart_ltv_predicted")[0][0] > 0


def test_old_history_warns_about_what_is_unusual_and_why(old):
    _, _, run = old
    out = run.stdout
    # users without a phone: a warning naming the rule and why it matters
    assert "expect_column_values_to_not_be_null(phone_hash): 120 of 120 rows" in out, out
    assert "phone_hash unifies one person's accounts across channels" in out
    assert "expect_column_values_to_not_be_null(cost_price): 8 of 8 rows" in out
    assert "COGS and margin use cost_price" in out
    # dates from the 1990s are far from today, not from the rest of the data: no plausibility warning
    assert "_implausible" not in out
    assert "FAILED (ERROR)" not in out and "critical" not in out


# ---------------------------------------------------------------------------------------------
# A shop that opened yesterday: one day, one channel, every customer bought once.

DAY = date(2026, 11, 14)
YOUNG_ORDERS = 8


def young_shop(landing: Path) -> None:
    stamp = f"{DAY:%Y%m%d}"
    write(landing, "users", f"users_{stamp}.csv",
          [(f"N{i:02d}", f"{DAY} 0{i % 10}:00:00", "tmall", "", "", "", "", "") for i in range(12)])
    write(landing, "products", f"products_{stamp}.csv",
          [(f"S{i}", "", f"新品{i}号", "美妆", "", "", f"{50 + i}.00", f"{20 + i}.00", f"{DAY} 00:00:00", "")
           for i in range(3)])
    orders(landing, range(YOUNG_ORDERS))
    write(landing, "order_items", f"order_items_{stamp}.csv",
          [(f"Y{i}", 1, "S0", 1, "50.00", "") for i in range(YOUNG_ORDERS)])


def orders(landing: Path, which) -> Path:
    return write(landing, "orders", f"orders_{DAY:%Y%m%d}.csv", [
        (f"Y{i}", f"N{i:02d}", "tmall", f"{DAY} 1{i}:00:00", f"{DAY} 1{i}:01:00", "paid", "50.00", "", "", "50.00",
         "", "", "", "") for i in which])


@pytest.fixture(scope="module")
def young(tmp_path_factory):
    home = tmp_path_factory.mktemp("young") / "ew"
    young_shop(home / "landing")
    return home, ecomwh(home, "run")


def test_young_shop_builds_every_mart(young):
    home, run = young
    assert run.returncode == 0, run.stdout + run.stderr
    db = home / "warehouse.duckdb"
    assert mart_tables() <= tables_in(db, "marts"), sorted(mart_tables() - tables_in(db, "marts"))
    assert mart_tables() <= tables_in(home / "serving" / "warehouse.duckdb", "marts")
    assert query(db, "select count(*) from marts.fct_orders where is_valid") == [(YOUNG_ORDERS,)]
    assert "FAILED (ERROR)" not in run.stdout and "] FAILED  " not in run.stdout  # warnings only


def test_young_shop_ltv_is_empty_with_its_reason(young):
    home, run = young
    db = home / "warehouse.duckdb"
    assert query(db, "select as_of_date, status, reason, customers, repeat_customers from marts.mart_ltv_status") == [
        (DAY, "not_fitted", f"{YOUNG_ORDERS} customers bought by {DAY}; the model needs at least 50",
         YOUNG_ORDERS, 0)]
    for table in ("mart_ltv_predicted", "mart_ltv_model", "mart_ltv_backtest"):
        assert query(db, f"select count(*) from marts.{table}") == [(0,)], table
    # the same status is what the LTV dashboard reads, from the published copy
    assert query(home / "serving" / "warehouse.duckdb", "select status from marts.mart_ltv_status") == [("not_fitted",)]
    assert (f"built marts/mart_ltv_status: not fitted ({YOUNG_ORDERS} customers bought by {DAY}; "
            "the model needs at least 50)") in run.stdout


# ---------------------------------------------------------------------------------------------
# On the young shop's warehouse: a corrected orders file drops an order whose line is loaded.

DROPPED = 3  # order Y3, line 1: row 4 of order_items_20261114.csv


@pytest.fixture(scope="module")
def broken(young):
    home, first = young
    assert first.returncode == 0
    published = json.loads((home / "serving" / "published.json").read_text())
    landing = home / "landing"
    orders(landing, [i for i in range(YOUNG_ORDERS) if i != DROPPED])
    # tracking starts the same day: its models do not read order lines
    write(landing, "events", f"events_{DAY:%Y%m%d}.csv", [
        (f"E{i}", f"{DAY} 09:0{i}:00", "D1", "N00", "S1", name, "ios", "S0" if name == "product_view" else "",
         "", "", "", "") for i, name in enumerate(["app_open", "login", "product_view"])])
    return home, published, ecomwh(home, "run")


def test_a_critical_failure_says_which_rows_and_how_to_rerun(broken):
    _, _, run = broken
    assert run.returncode == 1, run.stdout + run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("  - ")]
    assert lines == [
        "  - raw/order_items ge_cross_order_items_orders: expect_column_values_to_be_in_set(order_exists) failed on "
        "1 of 1 rows (order_items.order_id exists in orders): look at order_items_20261114.csv row 4. Fix or "
        "redeliver landing/order_items/order_items_20261114.csv, then run `ecomwh run`; the models fed by "
        "raw/order_items were not rebuilt"], run.stderr


def test_a_critical_failure_stops_only_what_its_source_feeds(broken):
    home, published, run = broken
    out = run.stdout
    # what does not read order lines is rebuilt: today's events and who they belong to, users, orders
    for built in ("staging/stg_tracking__events", "intermediate/int_events_attributed",
                  "marts/mart_activity_retention", "staging/stg_oms__orders", "staging/stg_crm__users"):
        assert f"built {built}\n" in out, built
    assert query(home / "warehouse.duckdb", "select count(*) from intermediate.int_events_attributed "
                                            "where event_id in ('E0', 'E1', 'E2')") == [(3,)]
    # what order lines feed keeps its last good build (sessions are new or returning by the first
    # purchase, which order lines decide; the payment step reads the order system's payments), and
    # what reads it waits
    for kept in ("staging/stg_oms__order_items", "marts/fct_order_items", "marts/fct_orders",
                 "intermediate/int_sessions_funnel_steps", "marts/fct_sessions", "marts/mart_funnel_daily"):
        assert f"built {kept}\n" not in out, kept
    assert query(home / "warehouse.duckdb", "select count(*) from marts.fct_orders") == [(YOUNG_ORDERS,)]
    assert "skipped predicted_ltv" in out
    # the published copy stays the last complete one
    assert json.loads((home / "serving" / "published.json").read_text()) == published


@pytest.fixture(scope="module")
def fixed(broken):
    home, _, run = broken
    assert run.returncode == 1
    orders(home / "landing", range(YOUNG_ORDERS))  # the order is back
    return home, ecomwh(home, "run")


def test_after_the_fix_the_next_run_builds_everything(fixed):
    home, run = fixed
    assert run.returncode == 0, run.stdout + run.stderr
    for built in ("marts/fct_order_items", "marts/fct_orders", "marts/mart_ltv_status", "serving/warehouse"):
        assert f"built {built}" in run.stdout, built
    assert query(home / "warehouse.duckdb", "select count(*) from marts.fct_orders where is_valid") == [(YOUNG_ORDERS,)]
