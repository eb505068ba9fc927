"""Incremental builds equal full rebuilds (docs/incremental.md).

A generated history arrives day by day, with the awkward deliveries real sources make: a file sent
twice, a later file repeating earlier events, late events in a later file, corrected redeliveries of
events, orders and users (values changed, an event moved to another day, rows dropped). After every
day the warehouse ingests and runs dbt incrementally (the incremental models and their parents; every
model on the last two days); one of those runs is killed half-way and rerun.
At the end every mart (and every incremental model) must equal a rebuild from scratch of the final
landing folder, row for row, and a further run with nothing new must change nothing.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib import dbt_outputs
from dagster_project.lib.contract import sources_parents_first
from dagster_project.lib.generator import generate
from dagster_project.lib.ingest import ingest_source
from dagster_project.settings import DBT_PROJECT_DIR
from warehouse_diff import differences  # tests/ is on sys.path (pytest rootdir conftest)

START = date(2026, 6, 12)  # day 18 is a month end (06-30): an as-of date of the segments before the data end date
DAYS = 24
FIRST_LOAD_DAYS = 16  # the first run loads days 0..15 at once; then one run per day (16..23)
TZ = "Asia/Shanghai"
# the days before the last two build only the incremental models and what they are built from: a
# table model is rebuilt whole by every run, so only the incremental ones carry state from day to day
# (the last two days, the killed run and the nothing-new run build everything)
INCREMENTAL_LINEAGE = ("--select", "+config.materialized:incremental")


@functools.cache
def _incremental_models() -> list[str]:
    """Every incremental model, from dbt's manifest (a new or renamed one is covered without editing this)."""
    return sorted(dbt_outputs.relation(node) for node in dbt_outputs.load_manifest()["nodes"].values()
                  if node["resource_type"] == "model" and node["config"].get("materialized") == "incremental")




class Warehouse:
    def __init__(self, root: Path, landing: Path):
        self.root = root
        self.landing = landing
        self.db = root / "warehouse.duckdb"
        root.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ, "EW_DUCKDB_PATH": str(self.db), "EW_TIMEZONE": TZ,
            "DBT_TARGET_PATH": str(root / "dbt-target"), "DBT_LOG_PATH": str(root / "dbt-logs"),
            "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }

    def ingest(self) -> None:
        for source in sources_parents_first():
            ingest_source(self.db, self.landing, source, tz=TZ, lock_path=self.root / "lock")

    def dbt_command(self, *extra: str) -> list[str]:
        dbt = str(Path(sys.executable).with_name("dbt"))
        # models and the seed only: the data tests run in the pipeline; here only results matter
        return [dbt, "build", "--project-dir", str(DBT_PROJECT_DIR), "--exclude",
                "resource_type:test", "resource_type:unit_test", *extra]

    def build(self, *extra: str) -> None:
        done = subprocess.run(self.dbt_command(*extra), env=self.env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

    def run_day(self, *extra: str) -> None:
        self.ingest()
        self.build(*extra)


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line.strip()]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n" if lines else b"")


def _day(i: int) -> str:
    return (START + timedelta(days=i)).strftime("%Y%m%d")


def _land_day(gen: Path, landing: Path, i: int) -> None:
    """Copy every generated file dated day i (or earlier, for the first load) into the landing folder."""
    for src_dir in gen.iterdir():
        for f in src_dir.iterdir():
            file_day = f.name[len(src_dir.name) + 1:len(src_dir.name) + 9]
            if (i == FIRST_LOAD_DAYS - 1 and file_day <= _day(i)) or file_day == _day(i):
                target = landing / src_dir.name / f.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)


def _awkward_deliveries(gen: Path, landing: Path, i: int, changed: dict[str, set[str]]) -> None:
    """What real sources do, on fixed days of the history (each mutation is deterministic); the ids
    of events it drops or renames go to `changed`."""
    ev = landing / "events"
    _awkward_wecom_deliveries(gen, landing, i, changed)
    if i == FIRST_LOAD_DAYS - 1:
        # day 16's file arrives with 40% of its events missing: they come late, in day 19's file
        lines = _lines(gen / "events" / f"events_{_day(16)}.jsonl")
        keep, late = lines[: int(len(lines) * 0.6)], lines[int(len(lines) * 0.6):]
        _write_lines(gen.parent / "late" / "events_on_time.jsonl", keep)
        _write_lines(gen.parent / "late" / "events_late.jsonl", late)
    if i == 16:
        shutil.copy2(gen.parent / "late" / "events_on_time.jsonl", ev / f"events_{_day(16)}.jsonl")
        # the same file sent again under another name: same content, loaded once
        shutil.copy2(ev / f"events_{_day(15)}.jsonl", ev / f"events_{_day(16)}_resend.jsonl")
        # a later file that repeats 50 events of day 15 (the newer file's row becomes current)
        _write_lines(ev / f"events_{_day(16)}_repeat.jsonl", _lines(ev / f"events_{_day(15)}.jsonl")[:50])
    if i == 19:
        _write_lines(ev / f"events_{_day(19)}_late.jsonl", _lines(gen.parent / "late" / "events_late.jsonl"))
    if i == 18:
        # corrected redelivery of day 14's events: some renamed, some moved a day back, some dropped
        path = ev / f"events_{_day(14)}.jsonl"
        out = []
        for n, line in enumerate(_lines(path)):
            row = json.loads(line)
            if n % 17 == 0:
                changed["dropped"].add(row["event_id"])
                continue
            if n % 11 == 0 and row.get("event_name") != "page_view":
                row["event_name"] = "page_view"
                changed["renamed"].add(row["event_id"])
            if n % 13 == 0:
                ts = row["event_ts"]
                row["event_ts"] = (date.fromisoformat(ts[:10]) - timedelta(days=1)).isoformat() + ts[10:]
            out.append(json.dumps(row, ensure_ascii=False).encode())
        _write_lines(path, out)
    if i == 23:
        # corrected orders of day 15: some refunded or cancelled after all. On the last day, so the final
        # equality rests on the segments finding it through the purchase digests alone: nothing else
        # changes a date before the 06-30 month end that day
        changed["recategorized"] = {_recategorize_a_product(landing)}
        path = landing / "orders" / f"orders_{_day(15)}.csv"
        lines = _lines(path)
        header = lines[0].decode().lstrip("\ufeff").split(",")  # the export may open with a BOM
        status, order_id = header.index("status"), header.index("order_id")
        # an order a later file sends again keeps that later version: correct the ones it does not
        later = {line.split(b",")[order_id] for f in (landing / "orders").iterdir()
                 if f.suffix == ".csv" and f.name > path.name for line in _lines(f)[1:]}
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.decode().split(",")
            if (len(cells) == len(header) and cells[status] in ("paid", "shipped", "delivered")
                    and cells[order_id].encode() not in later):
                # cancelled, which takes the order out of every purchase, or refunded (the amount stays:
                # a refund's money comes from the returns), in turn
                cells[status] = "cancelled" if len(changed["cancelled"]) <= len(changed["refunded"]) else "refunded"
                changed[cells[status]].add(cells[order_id])
            out.append(",".join(cells).encode())
        _write_lines(path, out)
    if i == 20:
        # the late file is withdrawn: a corrected redelivery without rows. Its events are gone from raw
        # and only the superseded load says which dates they were on.
        _write_lines(ev / f"events_{_day(19)}_late.jsonl", [])
    if i == 21:
        # corrected users file: one user's phone now matches another user's, so two become one customer
        files = sorted(p for p in (landing / "users").iterdir() if not p.name.endswith(".done"))
        path = files[3]
        lines = _lines(path)
        header = lines[0].decode().split(",")
        phone = header.index("phone_hash")
        donor = next(line.decode().split(",")[phone] for f in files[:3] for line in _lines(f)[1:]
                     if len(line.decode().split(",")) == len(header) and line.decode().split(",")[phone])
        cells = lines[1].decode().split(",")
        cells[phone] = donor
        _write_lines(path, [lines[0], ",".join(cells).encode(), *lines[2:]])


def _recategorize_a_product(landing: Path) -> str:
    """A corrected products file: the most ordered product moves to another category (the order
    lines keep their orders, dates and amounts; only the customer's categories change)."""
    path = min(p for p in (landing / "products").iterdir() if p.suffix == ".csv")
    # latin-1 round-trips any bytes, so the file's own encoding stays as it was
    with open(path, newline="", encoding="latin-1") as f:
        header, *rows = list(csv.reader(f))
    sku, category = header.index("sku_id"), header.index("category_l1")
    counts: dict[str, int] = {}
    for items in (landing / "order_items").iterdir():
        if items.suffix == ".csv":
            for line in _lines(items)[1:]:
                cells = line.decode("latin-1").split(",")
                counts[cells[2]] = counts.get(cells[2], 0) + 1
    items_header = _lines(min(p for p in (landing / "order_items").iterdir() if p.suffix == ".csv"))[0]
    assert items_header.decode().split(",")[2] == "sku_id", items_header
    target = max((r for r in rows if r[sku] in counts), key=lambda r: counts[r[sku]])
    target[category] = next(r[category] for r in rows if r[category] != target[category])
    with open(path, "w", newline="", encoding="latin-1") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    return target[sku]


def _wecom_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def _write_wecom(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])


def _awkward_wecom_deliveries(gen: Path, landing: Path, i: int, changed: dict[str, set[str]]) -> None:
    """The WeCom export (CSV, incremental in staging like the events) gets late rows in a later file
    and a corrected redelivery that drops rows and moves others a day back."""
    name = "private_domain_events"
    if i == FIRST_LOAD_DAYS - 1:
        # day 17's export arrives with a third of its rows missing: they come late, in day 19's
        header, rows = _wecom_rows(gen / name / f"{name}_{_day(17)}.csv")
        cut = len(rows) * 2 // 3
        _write_wecom(gen.parent / "late" / "wecom_on_time.csv", header, rows[:cut])
        _write_wecom(gen.parent / "late" / "wecom_late.csv", header, rows[cut:])
    if i == 17:
        shutil.copy2(gen.parent / "late" / "wecom_on_time.csv", landing / name / f"{name}_{_day(17)}.csv")
    if i == 19:
        shutil.copy2(gen.parent / "late" / "wecom_late.csv", landing / name / f"{name}_{_day(19)}_late.csv")
    if i == 18:
        # corrected redelivery of day 13's export: every 7th row dropped, every 5th a day earlier
        path = landing / name / f"{name}_{_day(13)}.csv"
        header, rows = _wecom_rows(path)
        event_id, ts = header.index("event_id"), header.index("event_ts")
        out = []
        for n, row in enumerate(rows):
            if n % 7 == 0:
                changed["wecom_dropped"].add(row[event_id])
                continue
            if n % 5 == 0:
                row[ts] = (date.fromisoformat(row[ts][:10]) - timedelta(days=1)).isoformat() + row[ts][10:]
                changed["wecom_moved"].add(row[event_id])
            out.append(row)
        _write_wecom(path, header, out)


def _tables(db: Path) -> list[str]:
    """Every model the build keeps as a table (staging, intermediate and marts; the views are queries
    over raw and these tables, so they are equal when those are)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [f"{schema}.{t}" for (schema, t) in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts') "
            "and table_type = 'BASE TABLE' order by 1, 2").fetchall()]
    finally:
        con.close()
    assert set(_incremental_models()) <= set(tables)
    return tables


def _count(db: Path, sql: str, *params) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchone()[0]
    finally:
        con.close()


def _max_built_at(db: Path) -> dict[str, object]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"select max(built_at), count(*) from {t}").fetchone() for t in _incremental_models()}
    finally:
        con.close()


def _build_killed_then_rerun(wh: Warehouse) -> None:
    """Start the day's dbt run, kill it once models are being written, then run again."""
    wh.ingest()
    proc = subprocess.Popen(wh.dbt_command(), env=wh.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    written = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        written += " OK created " in line
        if written >= 12:  # staging done, intermediate and marts under way
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert written >= 12, "the run finished before it could be killed"
    wh.build()


@pytest.mark.e2e
def test_day_by_day_incremental_equals_full_rebuild(tmp_path):
    gen = tmp_path / "generated"
    generate(gen, customers=500, days=DAYS, seed=23, bad_rate=0.002, start=START,
             truth_path=tmp_path / "truth.json")
    inc = Warehouse(tmp_path / "incremental", tmp_path / "landing")
    changed: dict[str, set[str]] = {"dropped": set(), "renamed": set(), "wecom_dropped": set(), "wecom_moved": set(),
                                    "recategorized": set(), "refunded": set(), "cancelled": set()}
    month_end_built: dict[int, object] = {}
    run_built: dict[int, object] = {}
    for i in range(FIRST_LOAD_DAYS - 1, DAYS):
        _land_day(gen, inc.landing, i)
        _awkward_deliveries(gen, inc.landing, i, changed)
        if i == 22:
            _build_killed_then_rerun(inc)
        else:
            inc.run_day(*(INCREMENTAL_LINEAGE if i < 22 else ()))
        if i >= 22:
            # when the segments' 06-30 month end was last rebuilt, and when the run was
            month_end_built[i] = _count(inc.db, "select max(built_at) from marts.mart_customer_segments "
                                        "where as_of_date = ?", START + timedelta(days=18))
            run_built[i] = _count(inc.db, "select max(built_at) from marts.mart_customer_segments")
        if i == 19:
            late_loaded = _count(inc.db, "select count(*) from staging.stg_tracking__events where source_file = ?",
                                 f"events_{_day(19)}_late.jsonl")
            wecom_late = _count(inc.db, "select count(*) from staging.stg_marketing__private_domain_events "
                                "where source_file = ? and event_date = ?",
                                f"private_domain_events_{_day(19)}_late.csv",
                                START + timedelta(days=17))

    full = Warehouse(tmp_path / "full", inc.landing)
    full.ingest()
    full.build("--full-refresh")

    problems = [d for t in _tables(inc.db) if (d := differences(inc.db, full.db, t))]
    assert not problems, "\n".join(problems)

    # the corrections really reached the marts (otherwise equality would prove little)
    con = duckdb.connect(str(inc.db), read_only=True)
    try:
        def ids(kind):
            return "(" + ",".join(f"'{e}'" for e in sorted(changed[kind])) + ")"

        dropped = con.execute(f"select count(*) from staging.stg_tracking__events where event_id in {ids('dropped')}"
                              ).fetchone()[0]
        renamed = con.execute(f"select count(*) from staging.stg_tracking__events where event_id in {ids('renamed')} "
                              "and event_name = 'page_view'").fetchone()[0]
        late_left = con.execute("select count(*) from staging.stg_tracking__events where source_file = ?",
                                [f"events_{_day(19)}_late.jsonl"]).fetchone()[0]
        rebuilt_dates = con.execute("select count(distinct event_date) from staging.stg_tracking__events "
                                    "where built_at > (select min(built_at) from staging.stg_tracking__events)"
                                    ).fetchone()[0]
        all_dates = con.execute("select count(distinct event_date) from staging.stg_tracking__events").fetchone()[0]
        wecom_dropped = con.execute("select count(*) from staging.stg_marketing__private_domain_events "
                                    f"where event_id in {ids('wecom_dropped')}").fetchone()[0]
        wecom_moved = con.execute("select count(*) from staging.stg_marketing__private_domain_events "
                                  f"where event_id in {ids('wecom_moved')} and event_date = ?",
                                  [START + timedelta(days=12)]).fetchone()[0]
        # the purchase digests saw the cancellations on every date of a cancelled order, and the category change
        # on dates the product was bought (not necessarily all: a date where the buyer also bought the new
        # category keeps its customer-category pairs), apart from the cancellations' dates and the new day
        (sku,) = changed["recategorized"]
        digests = dbt_outputs.relation(dbt_outputs.model("int_purchase_dates_digested"))
        last_digest = f"(select max(built_at) from {digests})"
        cancel_dates = f"select order_date from marts.fct_orders where order_id in {ids('cancelled')}"
        cancel_dates_rebuilt = con.execute(
            f"select count(*), count(*) filter (where built_at = {last_digest}) "
            f"from {digests} where input_date in ({cancel_dates})").fetchone()
        sku_dates_rebuilt = con.execute(
            f"select count(*) filter (where built_at = {last_digest}) from {digests} "
            "where input_date in (select order_date from marts.fct_order_items where sku_id = ? and is_valid) "
            f"and input_date not in ({cancel_dates}) and input_date <> ?", [sku, START + timedelta(days=DAYS - 1)]
        ).fetchone()[0]
        wecom_rebuilt, wecom_dates = con.execute(
            "select count(distinct event_date) filter (where built_at > (select min(built_at) from "
            "staging.stg_marketing__private_domain_events)), count(distinct event_date) "
            "from staging.stg_marketing__private_domain_events").fetchone()
    finally:
        con.close()
    assert changed["dropped"] and dropped == 0 and renamed == len(changed["renamed"])
    assert late_loaded > 0 and late_left == 0
    assert 0 < rebuilt_dates < all_dates  # incremental runs rebuilt some dates, not all of them
    # the last day's only change before 06-30 is in the order tables (cancellations, a product's category):
    # the segments rebuilt the month end for it, which only the purchase digests could tell them
    assert month_end_built[23] == run_built[23] and month_end_built[23] > month_end_built[22]
    assert changed["cancelled"]
    assert cancel_dates_rebuilt[0] > 0 and cancel_dates_rebuilt[1] == cancel_dates_rebuilt[0]
    assert sku_dates_rebuilt > 0
    # WeCom's late rows reached their own (older) date, and its corrected export's changes are in
    assert wecom_late > 0 and changed["wecom_dropped"] and wecom_dropped == 0
    assert changed["wecom_moved"] and wecom_moved == len(changed["wecom_moved"])
    assert 0 < wecom_rebuilt < wecom_dates

    # nothing new: a further run rebuilds nothing and changes nothing
    before = _max_built_at(inc.db)
    inc.run_day()
    assert _max_built_at(inc.db) == before
