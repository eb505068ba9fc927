"""The loader's validation query (ingest.validation_sql) of two checkouts, timed alone on the same landed rows.

    .venv/bin/python benchmarks/ab_validation.py OLD_CHECKOUT NEW_CHECKOUT LANDING_FILE [--rounds 6]

e.g. OLD_CHECKOUT from `git worktree add /tmp/old <commit>`, NEW_CHECKOUT this one, and a file of a
`make bench` landing cache. The file is read once by the exact reader (landing.read_batches) into the
loader's text table in an in-memory DuckDB; each checkout's SQL for the file's source (made by that
checkout's own code, in a subprocess) then runs `create temp table ... as <validation>` in turn,
alternating which goes first. Prints each side's times and median, and how many rows the two results
differ by (EXCEPT ALL both ways: 0 unless one of them changed what is loaded or refused). The
foreign-key parent tables are empty, so every order line is unknown_key on both sides. Only the
query is timed: reading, inserting and committing are profile_file_costs.py's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster_project.lib import ingest, landing  # noqa: E402


def validation_sql_of(checkout: Path, source: str, tz: str) -> str:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from dagster_project.lib import ingest; "
            "from dagster_project.lib.contract import SOURCES; "
            "print(ingest.validation_sql(SOURCES[sys.argv[2]], sys.argv[3]))")
    return subprocess.run([sys.executable, "-c", code, str(checkout), source, tz],
                          capture_output=True, text=True, check=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("file", type=Path)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--tz", default="Asia/Shanghai")
    args = ap.parse_args()

    lf = landing.parse_file_name(args.file)
    lf.real = args.file
    sql = {"old": validation_sql_of(args.old, lf.source, args.tz),
           "new": validation_sql_of(args.new, lf.source, args.tz)}
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    ingest.ensure_raw_schema(con)
    con.execute(ingest._landed_ddl(ingest.SOURCES[lf.source]))
    with landing.OpenedFile(lf) as f:
        _, batches = landing.read_batches(lf, f, f.stat.st_size, landing.Limits())
        for batch in batches:
            ingest._insert_landed(con, batch)
    (n,) = con.execute("select count(*) from landed").fetchone()
    times: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(args.rounds):
        for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
            started = time.perf_counter()
            con.execute(f"create or replace temp table checked_{side} as {sql[side]}")
            times[side].append(time.perf_counter() - started)
    (differ,) = con.execute(
        "select count(*) from ((select * from checked_old except all select * from checked_new) "
        "union all (select * from checked_new except all select * from checked_old))").fetchone()
    (refused,) = con.execute("select count(*) from checked_new where rule is not null").fetchone()
    print(f"{args.file.name}: {n:,} rows, {refused:,} refused; rows that differ between old and new: {differ}")
    for side, ts in times.items():
        med = statistics.median(ts)
        print(f"  {side}: median {med * 1000:,.0f} ms, {med / max(n, 1) * 1e6:.2f} us a row "
              f"(each: {', '.join(f'{t * 1000:,.0f}' for t in ts)} ms)")
    print(f"  new / old: {statistics.median(times['new']) / statistics.median(times['old']):.2f}")


if __name__ == "__main__":
    main()
