"""What publishing costs when all, none or a few marts changed (docs/decisions.md, "Publishing what changed").

    .venv/bin/python benchmarks/publish_costs.py <pipeline warehouse.duckdb> [--changed 3] [--dir /tmp/pub]

Works on a copy of the pipeline file (never the file itself): a first publish writes every mart, a
second one with nothing changed keeps them all, and a third after a row is added to each of the
`--changed` biggest marts copies only those. Prints seconds, tables copied and the copy's size.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import duckdb

from dagster_project.lib.publish import _q, content_hashes, publish


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--changed", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ew-publish-costs"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    pipeline, serving = args.dir / "pipeline.duckdb", args.dir / "serving" / "warehouse.duckdb"
    shutil.copyfile(args.warehouse, pipeline)

    con = duckdb.connect(str(pipeline))
    tables = [r[0] for r in con.execute("select table_name from information_schema.tables "
                                        "where table_schema = 'marts' order by table_name").fetchall()]
    started = time.perf_counter()
    _, rows = content_hashes(con, "pipeline", tables)
    print(f"hash {len(tables)} marts ({sum(rows.values())} rows): {time.perf_counter() - started:.2f} s")
    con.close()

    def report(label: str) -> None:
        s = publish(pipeline, serving)
        print(f"{label}: {s['seconds']:.2f} s, {s['mode']}, {len(s['copied'])} copied, {len(s['kept'])} kept, "
              f"{s['bytes'] / 1e6:.1f} MB")

    report("first publish (every mart)")
    report("nothing changed")
    biggest = sorted(rows, key=rows.get)[-args.changed:]
    con = duckdb.connect(str(pipeline))
    for t in biggest:
        # rebuilt with one row more, as dbt rebuilds a table (and without its constraints)
        con.execute(f"create or replace table marts.{_q(t)} as select * from marts.{_q(t)} "
                    f"union all (select * from marts.{_q(t)} limit 1)")
    con.close()
    report(f"{len(biggest)} biggest changed ({', '.join(biggest)})")
    serving.unlink()
    report("the same state written whole (no previous copy)")


if __name__ == "__main__":
    main()
