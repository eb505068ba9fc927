"""What dbt models' SQL costs on a built warehouse, alone or side by side, under DuckDB settings of your choice.

    .venv/bin/python benchmarks/profile_model.py WAREHOUSE.duckdb COMPILED.sql [MORE.sql ...] [--set name=value ...]

Runs `create table <scratch> as <the model's compiled select>` in WAREHOUSE (e.g. the one a
`make bench --keep` run leaves, with the compiled SQL from its dbt/target/<invocation>/compiled/...),
at the dbt profile's settings (memory_limit EW_DUCKDB_MEMORY_LIMIT or 4GB, 2 threads, UTC) plus any
`--set`, then drops the table. Several files run at the same time, one connection each, as dbt's two
threads run two models in one DuckDB instance and share its memory_limit. Prints wall seconds per
model, the most DuckDB's temp folder held (sampled every 0.5 s: what spilled beyond memory_limit),
the peak RSS of this process, and the rows. Never point it at a warehouse a pipeline is writing:
DuckDB takes one writer.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from pathlib import Path

import duckdb


def _folder_gb(folder: Path) -> float:
    try:
        return sum(e.stat(follow_symlinks=False).st_blocks * 512 for e in os.scandir(folder)) / 1024 ** 3
    except OSError:
        return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("sql", type=Path, nargs="+", help="models' compiled selects (dbt's target/.../compiled/...)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a DuckDB setting")
    a = ap.parse_args()
    temp = Path(f"{a.warehouse}.profile.tmp")
    settings = {"memory_limit": os.environ.get("EW_DUCKDB_MEMORY_LIMIT", "4GB"), "threads": "2",
                "TimeZone": "UTC", "temp_directory": str(temp)}
    settings |= dict(s.split("=", 1) for s in a.set)
    peak = {"gb": 0.0}
    done = threading.Event()
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def sample() -> None:
        while not done.wait(0.5):
            peak["gb"] = max(peak["gb"], _folder_gb(temp))

    def build(cur, i: int, sql: Path) -> None:
        table = f"main.profile_model_scratch_{i}"
        try:
            started = time.perf_counter()
            cur.execute(f"create table {table} as {sql.read_text().strip().rstrip(';')}")
            seconds = time.perf_counter() - started
            rows = cur.execute(f"select count(*) from {table}").fetchone()[0]
            cur.execute(f"drop table {table}")
            results[sql.stem] = f"{seconds:.1f} s, {rows:,} rows"
        except BaseException as exc:  # reported after the others finish
            errors.append(exc)

    with duckdb.connect(str(a.warehouse)) as con:
        for name, value in settings.items():
            con.execute(f"set {name} = '{value}'")
        for i in range(len(a.sql)):
            con.execute(f"drop table if exists main.profile_model_scratch_{i}")
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        workers = [threading.Thread(target=build, args=(con.cursor(), i, sql)) for i, sql in enumerate(a.sql)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    if errors:
        raise errors[0]
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    for name, what in results.items():
        print(f"{name}: {what}")
    print(f"all: {wall:.1f} s, spilled at most {peak['gb']:.2f} GB, peak RSS {rss_gb:.2f} GB; settings {settings}")


if __name__ == "__main__":
    main()
