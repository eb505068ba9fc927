"""Where one landing file's load goes, statement by statement, next to a big raw table.

    .venv/bin/python benchmarks/profile_file_costs.py LANDING/<source> --files 5 --table-rows 25000000

Copies the last FILES+1 files of a source folder (e.g. a `make bench` landing cache), loads the
first, grows the raw table to TABLE_ROWS by copying its rows (as a large shop's history), then
loads the others through ingest.load_file, timing every SQL statement by its first words, the
commits included, and the checkpoint that ends a source's ingest. `--checkpoint-threshold` sets
DuckDB's (the loader sets ingest.CHECKPOINT_BYTES; DuckDB's default is 16MB); `--reader exact`
compares the exact reader with DuckDB's on the same files. `--read-ahead` loads the files as
ingest_source does, the next one opened and hashed on a thread while one loads (without it, one
after the other: the A/B of that thread).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster_project.lib import ingest, landing  # noqa: E402


class _Timed:
    """A DuckDB connection whose execute() adds its time to `times` under the statement's start."""

    def __init__(self, con: duckdb.DuckDBPyConnection, times: collections.Counter):
        self.con, self.times = con, times

    def execute(self, sql: str, *args):
        key = re.sub(r"\s+", " ", sql.strip())[:50]
        started = time.perf_counter()
        result = self.con.execute(sql, *args)
        self.times[key] += time.perf_counter() - started
        return result

    def __getattr__(self, name):
        return getattr(self.con, name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source_dir", type=Path)
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--table-rows", type=int, default=0)
    ap.add_argument("--checkpoint-threshold", default=ingest.CHECKPOINT_BYTES)
    ap.add_argument("--reader", choices=("fast", "exact"), default="fast",
                    help="exact: keep JSON-lines, CSV and Parquet files from DuckDB's readers "
                         "(ingest.load_file(fast=False))")
    ap.add_argument("--read-ahead", action="store_true",
                    help="hash the next file on a thread while one loads (ingest_source's way; the fast reader)")
    ap.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    a = ap.parse_args()
    source = a.source_dir.name
    files = sorted(p for p in a.source_dir.iterdir() if not p.name.endswith(landing.DONE_SUFFIX))[-a.files - 1:]
    work = Path(tempfile.mkdtemp(dir=a.dir))
    try:
        land = work / "landing" / source
        land.mkdir(parents=True)
        for f in files:
            shutil.copy(f, land / f.name)
        con = duckdb.connect(str(work / "w.duckdb"))
        con.execute("set TimeZone = 'UTC'")
        con.execute("set memory_limit = '4GB'")
        con.execute(f"set checkpoint_threshold = '{a.checkpoint_threshold}'")
        ingest.ensure_raw_schema(con)

        def load(con, name):
            lf = landing.parse_file_name(land / name)
            lf.real = land / name
            return ingest.load_file(con, lf, tz="Asia/Shanghai", quarantine_dir=work / "quarantine",
                                    fast=a.reader == "fast")

        load(con, files[0].name)
        while con.execute(f"select count(*) from raw.{source}").fetchone()[0] < a.table_rows:
            con.execute(f"insert into raw.{source} select * from raw.{source}")
        con.execute("checkpoint")
        held = con.execute(f"select count(*) from raw.{source}").fetchone()[0]
        times: collections.Counter = collections.Counter()
        timed = _Timed(con, times)
        rows, readers, started = 0, collections.Counter(), time.perf_counter()
        if a.read_ahead:
            lfs = [landing.parse_file_name(land / f.name) for f in files[1:]]
            for lf in lfs:
                lf.real = lf.path
            loaded = ingest.SourceResult(source)
            ingest._load_in_order(timed, lfs, {lf.name for lf in lfs}, {}, loaded, "Asia/Shanghai",
                                  landing.Limits(), work / "quarantine")
            results = loaded.files
        else:
            results = [load(timed, f.name) for f in files[1:]]
        for res in results:
            rows += res.rows_landed
            readers[res.reader] += 1
        timed.execute("checkpoint")
        total = time.perf_counter() - started
        n = len(files) - 1
        print(f"{source}: {n} files, {rows:,} rows next to {held:,} in raw.{source}, checkpoint_threshold "
              f"{a.checkpoint_threshold}: {total:.2f} s = {total / n * 1e3:.0f} ms a file, "
              f"{total / rows * 1e6:.1f} us a row")
        print(f"  readers: {dict(readers)}; read ahead: {a.read_ahead}")
        for key, seconds in times.most_common(10):
            print(f"  {seconds / n * 1e3:8.1f} ms a file  {key}")
        print(f"  {(total - sum(times.values())) / n * 1e3:8.1f} ms a file  outside SQL (reading, hashing, Python)")
        con.close()
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
