"""Where a full build's time goes per row, measured on the demo's real rows scaled up (docs/performance.md).

    .venv/bin/python benchmarks/profile_costs.py [--dir .ew/profile] [--file-rows 240000] [--table-rows 88000000]
                                                 [--only ingest|ge] [--ge-route sql|pandas] [--keep [--reuse-table]]
                                                 [--profile-json PATH]

The preset L full build spends 52 min in raw ingest and 45 min in checks (docs/benchmarks.md), and
L takes two hours to run. This takes ~10 minutes and splits the two big costs into per-row parts:

1. ingest of one events file of ~`--file-rows` rows (an L daily file holds ~241k: 88M events over
   365 days), built by concatenating the demo's biggest daily event files: reading and hashing,
   parsing the JSON lines in Python, building the Arrow table, the contract's validation SQL, the
   fast reader's hashing and line finding, and the whole `load_file` (read, validate, insert,
   ledger) into a fresh DuckDB file with each reader (exact and fast), against the floor's scan of
   that file;
2. the raw_events Great Expectations check on a first load: the demo's raw.events (one generated
   world, ingested) is copied with replica-unique event ids, loads and files until it holds
   ~`--table-rows` rows, then the check's batches are planned as the check plans them (one, unless
   EW_GE_BATCH_ROWS is set) and validated by the suite compiled to SQL (`--ge-route sql`, what the check
   runs); `--ge-route pandas` times the pandas route it replaced instead: a few 2M-row batches
   fetched into frames and validated by GE, the fetch split into the batch's own rows and the count
   of each of its event ids over the whole table (the suite's `_event_id_rows`).

Runs in one process, one step after another (no Dagster, no other load), so it is the cost of the
work itself; the benchmark's numbers add Dagster, process start-up and whatever else the machine
was doing. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench  # noqa: E402
import duckdb  # noqa: E402

from dagster_project.defs.quality.checks import render_query  # noqa: E402
from dagster_project.lib import fast_jsonl, ingest, landing  # noqa: E402
from dagster_project.lib.quality import (  # noqa: E402
    QualityRunner, batch_rows_setting, fetch_frame, load_suite_file, plan_scope,
)

TZ = "Asia/Shanghai"
MEMORY_LIMIT = os.environ.get("EW_DUCKDB_MEMORY_LIMIT", "4GB")  # as the check's connection has it


def generate(home: Path) -> Path:
    """The demo's landing folder (make bench's preset S), generated once under `home`."""
    land = home / "landing"
    if not (land / "events").is_dir():
        bench.generate_landing("S", home, bench.env_for(home))
    return land


def one_big_file(land: Path, home: Path, rows: int) -> Path:
    """The demo's biggest daily event files, concatenated into one file of at least `rows` lines
    (event ids repeat across days only where the generator planted redeliveries)."""
    out = home / "one" / "events" / "events_20991231.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("wb") as f:
        for p in sorted((land / "events").glob("*.jsonl"), key=lambda p: -p.stat().st_size):
            data = p.read_bytes()
            f.write(data if data.endswith(b"\n") else data + b"\n")
            n += data.count(b"\n")
            if n >= rows:
                break
    return out


def profile_ingest(path: Path, home: Path) -> list[tuple[str, str]]:
    lf = landing.parse_file_name(path)
    src = ingest.SOURCES[lf.source]
    db = home / "ingest.duckdb"
    best: dict[str, float] = {}
    n = 0
    for _ in range(2):  # the first pass warms imports and allocators; keep each part's faster pass
        t = time.perf_counter()
        raw = path.read_bytes()
        landing.content_hash(raw)
        parts = {"read and hash": time.perf_counter() - t}
        t = time.perf_counter()
        parsed = landing.parse(lf, raw)
        parts["parse (Python, per line)"] = time.perf_counter() - t
        t = time.perf_counter()
        table = ingest._landed_table(parsed)
        parts["Arrow table"] = time.perf_counter() - t
        db.unlink(missing_ok=True)
        with duckdb.connect(str(db)) as con:
            ingest.ensure_raw_schema(con)
            con.register("landed", table)
            t = time.perf_counter()
            con.execute(f"create temp table checked as {ingest.validation_sql(src, TZ)}")
            parts["contract validation SQL"] = time.perf_counter() - t
        t = time.perf_counter()
        scan = fast_jsonl.LineScan()
        landing.content_hash(scan.feed(landing.BytesFile(raw).chunks()))
        scan.lines()
        parts["fast reader: hash and find the lines (numpy)"] = time.perf_counter() - t
        for fast, label in ((False, "whole load_file, exact reader (parse, Arrow, validation, insert, ledger)"),
                            (True, "whole load_file, fast reader (DuckDB read_json, validation, insert, ledger)")):
            db.unlink(missing_ok=True)
            with duckdb.connect(str(db)) as con:
                con.execute("set TimeZone = 'UTC'")
                ingest.ensure_raw_schema(con)
                t = time.perf_counter()
                res = ingest.load_file(con, lf, tz=TZ, fast=fast)
                parts[label] = time.perf_counter() - t
                assert res.reader == ("fast" if fast else "exact"), res.reader
        t = time.perf_counter()
        with duckdb.connect() as con:  # bench.floor's scan, of this one file
            cols = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in src.column_names) + "}"
            con.execute(f"select count(*) from (select * from read_json('{path}', format='newline_delimited', "
                        f"columns={cols}, ignore_errors=true))").fetchall()
        parts["floor: one DuckDB scan of the file (as bench.py's floor)"] = time.perf_counter() - t
        n = parsed.n_rows
        for k, v in parts.items():
            best[k] = min(best.get(k, v), v)
        del parsed, table
    db.unlink(missing_ok=True)
    rows = [(f"ingest, one events file of {n:,} rows ({res.rows_loaded:,} loaded, "
             f"{res.rows_quarantined:,} quarantined): {k}", f"{v * 1e6 / n:.2f} us/row ({v:.2f} s)")
            for k, v in best.items()]
    floor_s = best["floor: one DuckDB scan of the file (as bench.py's floor)"]
    for reader in ("exact", "fast"):
        total = next(v for k, v in best.items() if k.startswith(f"whole load_file, {reader} reader"))
        rows.append((f"ingest rows/s of that file, in one process, {reader} reader",
                     f"{n / total:,.0f} ({total / floor_s:.1f}x the floor)"))
    return rows


def scaled_events(land: Path, home: Path, table_rows: int, reuse: bool = False) -> tuple[Path, int]:
    """raw.events of the demo, ingested, then copied with replica-unique ids up to `table_rows`
    (`reuse`: the table an earlier `--keep` run left, as it is)."""
    demo = home / "demo.duckdb"
    big = home / "events_scaled.duckdb"
    if reuse and big.exists():
        with duckdb.connect(str(big), read_only=True) as con:
            return big, con.execute("select count(*) from raw.events").fetchone()[0]
    if not demo.exists():
        ingest.ingest_source(demo, land, "events", tz=TZ, lock_path=home / "demo.lock")
    big.unlink(missing_ok=True)
    with duckdb.connect(str(big)) as con:
        con.execute(f"attach '{demo}' as d (read_only)")
        base = con.execute("select count(*) from d.raw.events").fetchone()[0]
        copies = max(1, round(table_rows / base))
        cols = [r[0] for r in con.execute("describe d.raw.events").fetchall()]
        renamed = {"event_id": "event_id || '_r{r}'", "_load_id": "_load_id || '_r{r}'", "_file": "_file || '_r{r}'"}
        con.execute("create schema raw")
        con.execute("create table raw.events as select * from d.raw.events where false")
        for r in range(copies):
            sel = ", ".join(f"{renamed[c].format(r=r)} as {c}" if c in renamed else c for c in cols)
            con.execute(f"insert into raw.events select {sel} from d.raw.events order by _load_id, _row")
        total = con.execute("select count(*) from raw.events").fetchone()[0]
    return big, total


def profile_ge(db: Path, total: int, home: Path, which: int, route: str) -> list[tuple[str, str]]:
    """The raw_events check's first load of the whole table, as the check plans it (EW_GE_BATCH_ROWS)."""
    suite = load_suite_file(REPO / "expectations" / "raw_events.json")
    runner = QualityRunner(home / "gx", build_docs=False)
    batch_rows = batch_rows_setting(compiled=route == "sql")
    with duckdb.connect(str(db), read_only=True) as con:
        plan = plan_scope(con, "events", {}, batch_rows)
    return (profile_ge_sql if route == "sql" else profile_ge_pandas)(db, total, suite, runner, plan, which)


def profile_ge_sql(db, total, suite, runner, plan, which) -> list[tuple[str, str]]:
    """The compiled suite (QualityRunner.validate_query), batch by batch; every batch when there are
    at most `which` (the default plans one), else `which` of them and the rest estimated."""
    n_batches = len(plan.batches)
    picks = range(n_batches) if n_batches <= which else sorted({0, n_batches // 2, n_batches - 1})
    rows, spent, seen = [], 0.0, 0
    spill = SpillSampler(Path(f"{db}.tmp"))  # DuckDB's default temp_directory for a database file
    spill.start()
    for i in picks:
        batch = plan.batches[i]
        with duckdb.connect(str(db), read_only=True, config={"memory_limit": MEMORY_LIMIT}) as con:
            t = time.perf_counter()
            outcome = runner.validate_query(suite, con, render_query(suite, batch))
            took = time.perf_counter() - t
        spent, seen = spent + took, seen + outcome.rows
        rows.append((f"GE raw_events compiled to SQL, batch {i + 1} of {n_batches} ({outcome.rows:,} rows) over a "
                     f"{total:,}-row table", f"{took:.1f} s ({took * 1e6 / max(outcome.rows, 1):.2f} us/row); "
                     f"{len(outcome.failed)} expectations failed"))
    if PROFILE_JSON is not None:
        rows += explain_counts(db, suite, runner, plan.batches[0])
    whole = spent if len(picks) == n_batches else spent / len(picks) * n_batches
    rows.append((f"GE raw_events compiled to SQL, first load of all {total:,} rows in {n_batches} batch(es)",
                 f"{'' if len(picks) == n_batches else '~'}{whole:,.0f} s"
                 + (" (measured: every batch ran)" if len(picks) == n_batches
                    else " (estimated from the batches above)")
                 + f"; peak RSS of this process {_peak_rss_gb():.1f} GB (DuckDB memory_limit {MEMORY_LIMIT}), "
                 f"peak spill to disk {spill.finish():.1f} GB"))
    return rows


class SpillSampler(threading.Thread):
    """The largest size DuckDB's temp directory reached (what a query spilled beyond memory_limit),
    sampled every half second."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder, self.peak, self.done = folder, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            try:
                size = sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())
            except OSError:  # not created yet, or a file removed while listing
                continue
            self.peak = max(self.peak, size)

    def finish(self) -> float:
        self.done.set()
        self.join()
        return self.peak / 1e9


PROFILE_JSON: Path | None = None  # --profile-json


def explain_counts(db, suite, runner, batch) -> list[tuple[str, str]]:
    """The first batch's counts query once more under DuckDB's profiler (JSON to PROFILE_JSON):
    the operators that took longest, in operator seconds (summed over threads)."""
    import json

    from dagster_project.lib import quality_sql

    with duckdb.connect(str(db), read_only=True, config={"memory_limit": MEMORY_LIMIT}) as con:
        compiled = runner.compile(suite, con, render_query(suite, batch))
        con.execute(f"pragma enable_profiling = 'json'; pragma profiling_output = '{PROFILE_JSON}'")
        with quality_sql.python_verdicts(con):
            con.execute(compiled.counts_sql()).fetchall()
        con.execute("pragma disable_profiling")
    ops: list[tuple[float, str]] = []

    def walk(node: dict) -> None:
        ops.append((node.get("timing") or 0.0, f"{node.get('type')} ({node.get('intermediate_rows', 0):,} rows)"))
        for child in node.get("children", []):
            walk(child)

    profile = json.loads(PROFILE_JSON.read_text())
    for node in profile.get("operator", []):
        walk(node)
    total = sum(t for t, _ in ops)
    top = "; ".join(f"{name} {t:.0f} s" for t, name in sorted(ops, reverse=True)[:6])
    spilled = profile.get("system", {}).get("peak_temp_dir_size", 0) / 1e9
    return [("DuckDB profile of the counts query of the first batch (operator seconds)",
             f"{total:,.0f} s in all; {top}; spilled {spilled:.1f} GB")]


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def profile_ge_pandas(db, total, suite, runner, plan, which) -> list[tuple[str, str]]:
    """The pandas route (QualityRunner.validate on a fetched frame), in the 2M-row batches it needed:
    a few batches timed, the first load estimated from them."""
    n_batches = len(plan.batches)
    sizes = [sum(plan.loads[i].rows for i in b.loads) for b in plan.batches]
    full = [i for i, n in enumerate(sizes) if n >= max(sizes) / 2]  # a short last batch would flatter the mean
    picks = sorted({full[0], full[len(full) // 2], full[-1]})[:which]
    rows, sums = [], {"own": 0.0, "count": 0.0, "fetch": 0.0, "validate": 0.0, "rows": 0}
    for i in picks:
        batch = plan.batches[i]
        with duckdb.connect(str(db), read_only=True) as con:
            t = time.perf_counter()
            con.execute(f"select count(*), sum(length(properties)) from {batch.new_rows()}").fetchall()
            own = time.perf_counter() - t
            t = time.perf_counter()
            con.execute(f"with n as (select event_id from {batch.new_rows()}) select count(*) from ("
                        "select event_id, count(*) from raw.events where event_id in (select event_id from n) "
                        "group by 1)").fetchall()
            count = time.perf_counter() - t
            t = time.perf_counter()
            df = fetch_frame(con, render_query(suite, batch))
            fetch = time.perf_counter() - t
        t = time.perf_counter()
        outcome = runner.validate(suite, df)
        validate = time.perf_counter() - t
        for k, v in (("own", own), ("count", count), ("fetch", fetch), ("validate", validate), ("rows", len(df))):
            sums[k] += v
        rows.append((f"GE raw_events, batch {i + 1} of {n_batches} ({len(df):,} rows) over a {total:,}-row table",
                     f"fetch {fetch:.1f} s (its rows alone {own:.1f} s, their ids counted over the whole table "
                     f"{count:.1f} s); validate {validate:.1f} s ({validate * 1e6 / len(df):.1f} us/row); "
                     f"{len(outcome.failed)} expectations failed"))
        del df
    k = len(picks)
    per_batch = (sums["fetch"] + sums["validate"]) / k
    per_row = (sums["fetch"] - sums["count"] + sums["validate"]) / sums["rows"]
    rows.append((f"GE raw_events, first load of all {total:,} rows in {n_batches} batches "
                 f"(full batches {per_batch:.1f} s each)",
                 f"~{total * per_row + n_batches * sums['count'] / k:,.0f} s: {per_row * 1e6:.1f} us/row for "
                 f"fetching and validating, plus ~{n_batches * sums['count'] / k:,.0f} s counting each batch's "
                 "ids over the whole table"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=REPO / ".ew" / "profile")
    ap.add_argument("--file-rows", type=int, default=240_000)
    ap.add_argument("--table-rows", type=int, default=88_000_000)
    ap.add_argument("--batches", type=int, default=3, help="GE batches to time (first, middle, last)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files under --dir")
    ap.add_argument("--reuse-table", action="store_true",
                    help="GE part: reuse the scaled raw.events an earlier --keep run left in --dir (A/B runs)")
    ap.add_argument("--only", choices=("ingest", "ge"), help="profile one part (e.g. to A/B a change)")
    ap.add_argument("--ge-route", choices=("sql", "pandas"), default="sql",
                    help="the check's route (sql, the default) or the pandas route it replaced")
    ap.add_argument("--profile-json", type=Path,
                    help="sql route: profile the first batch's counts query with DuckDB's profiler, JSON here")
    a = ap.parse_args()
    global PROFILE_JSON
    PROFILE_JSON = a.profile_json.resolve() if a.profile_json else None
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    home = a.dir.resolve()
    home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    land = generate(home)
    rows = profile_ingest(one_big_file(land, home, a.file_rows), home) if a.only != "ge" else []
    if a.only != "ingest":
        t = time.perf_counter()
        db, total = scaled_events(land, home, a.table_rows, a.reuse_table)
        rows.append((f"{'reusing' if a.reuse_table else 'building'} the {total:,}-row raw.events for the GE part",
                     f"{time.perf_counter() - t:.0f} s"))
        rows += profile_ge(db, total, home, a.batches, a.ge_route)
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\n(profile_costs.py took {time.perf_counter() - started:.0f} s in all)")
    if not a.keep:
        shutil.rmtree(home)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
