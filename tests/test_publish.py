"""The published read-only copy: only marts and docs, swapped in atomically, and the SQL shell on it."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from dagster_project.lib.publish import publish
from dagster_project.lib.sql_shell import Shell

MANIFEST = {
    "nodes": {
        "model.ew.mart_a": {"resource_type": "model", "schema": "marts", "name": "mart_a",
                            "alias": "mart_a", "fqn": ["ew", "marts", "sales", "mart_a"],
                            "description": "GMV per day (成交额).", "original_file_path": "models/marts/a.sql",
                            "columns": {"day": {"name": "day", "description": "Business date."}}},
        "model.ew.stg_x": {"resource_type": "model", "schema": "staging", "name": "stg_x", "columns": {}},
    },
    "sources": {
        "source.ew.py.mart_b": {"resource_type": "source", "schema": "marts", "name": "mart_b",
                                "identifier": "mart_b", "description": "Built in Python.", "columns": {}},
    },
}


def _pipeline(path, gmv: float = 10.0):
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists raw; create schema if not exists marts")
    con.execute("create or replace table raw.orders as select 1 as id")
    con.execute(f"create or replace table marts.mart_a as select date '2026-11-01' as day, {gmv} as gmv "
                "union all select date '2026-11-02', 2.5")
    con.execute("create or replace table marts.mart_b as select 'x' as k")
    con.close()


def test_publish_copies_marts_and_docs_only(tmp_path):
    db, serving = tmp_path / "pipeline.duckdb", tmp_path / "serving" / "warehouse.duckdb"
    _pipeline(db)
    summary = publish(db, serving, MANIFEST)
    assert summary["tables"] == {"marts.mart_a": 2, "marts.mart_b": 1}
    con = duckdb.connect(str(serving), read_only=True)
    schemas = {r[0] for r in con.execute(
        "select distinct table_schema from information_schema.tables").fetchall()}
    assert schemas == {"marts", "docs"}  # raw, staging, intermediate stay in the pipeline's file
    assert con.execute("select sum(gmv) from marts.mart_a").fetchone()[0] == 12.5
    docs = dict(con.execute("select table_name, description from docs.tables").fetchall())
    assert docs == {"mart_a": "GMV per day (成交额).", "mart_b": "Built in Python."}
    cols = con.execute("select table_name, column_name, data_type, description from docs.columns "
                       "order by table_name, ordinal_position").fetchall()
    assert cols[0] == ("mart_a", "day", "DATE", "Business date.") and ("mart_b", "k", "VARCHAR", "") in cols
    con.close()
    assert sorted(p.name for p in serving.parent.iterdir()) == ["published.json", "warehouse.duckdb"]


def test_a_reader_keeps_its_copy_while_a_new_one_is_swapped_in(tmp_path):
    db, serving = tmp_path / "pipeline.duckdb", tmp_path / "serving" / "warehouse.duckdb"
    _pipeline(db, gmv=10.0)
    publish(db, serving, MANIFEST)
    reader = duckdb.connect(str(serving), read_only=True)
    assert reader.execute("select sum(gmv) from marts.mart_a").fetchone()[0] == 12.5
    _pipeline(db, gmv=100.0)
    publish(db, serving, MANIFEST)  # the reader holds the old file: no lock conflict
    assert reader.execute("select sum(gmv) from marts.mart_a").fetchone()[0] == 12.5
    # another process (DuckDB shares an open database by path within one process) sees the new one
    fresh = subprocess.run([sys.executable, "-c", "import duckdb, sys; print(duckdb.connect(sys.argv[1], "
                            "read_only=True).execute('select sum(gmv) from marts.mart_a').fetchone()[0])",
                            str(serving)], capture_output=True, text=True)
    assert fresh.stdout.strip() == "102.5", fresh.stderr
    reader.close()
    after = duckdb.connect(str(serving), read_only=True)  # and this one, once its old handle closed
    assert after.execute("select sum(gmv) from marts.mart_a").fetchone()[0] == 102.5
    after.close()


def test_a_failed_publish_leaves_the_previous_copy(tmp_path):
    db, serving = tmp_path / "pipeline.duckdb", tmp_path / "serving" / "warehouse.duckdb"
    _pipeline(db)
    publish(db, serving, MANIFEST)
    before = serving.read_bytes()
    con = duckdb.connect(str(db))
    con.execute("drop table marts.mart_a; drop table marts.mart_b")
    con.close()
    with pytest.raises(RuntimeError, match="no marts"):
        publish(db, serving, MANIFEST)
    assert serving.read_bytes() == before
    assert sorted(p.name for p in serving.parent.iterdir()) == ["published.json", "warehouse.duckdb"]


def test_sql_shell_reads_but_cannot_write_or_touch_files(tmp_path):
    db, serving = tmp_path / "pipeline.duckdb", tmp_path / "serving" / "warehouse.duckdb"
    _pipeline(db)
    publish(db, serving, MANIFEST)
    out = io.StringIO()
    shell = Shell(serving, out=out, mode="csv")
    assert shell.run_script("select day, gmv from marts.mart_a order by day;") == 0
    assert out.getvalue().splitlines() == ["day,gmv", "2026-11-01,10.0", "2026-11-02,2.5"]
    for sql in ("create table marts.x as select 1;", "select * from read_csv('/etc/passwd');",
                f"copy marts.mart_a to '{tmp_path / 'leak.csv'}';", f"attach '{tmp_path / 'o.duckdb'}' as o;"):
        out.seek(0)
        out.truncate(0)
        assert shell.run_script(sql) == 1, sql
        assert out.getvalue().startswith("Error:")
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "o.duckdb").exists()
    out.seek(0)
    out.truncate(0)
    shell.dot(".schema mart_a")
    assert "Business date." in out.getvalue()
    shell.close()


def test_ecomwh_sql_command_runs_statements_from_the_command_line(ew_home):
    _pipeline(ew_home.duckdb_path)
    publish(ew_home.duckdb_path, ew_home.serving_path, MANIFEST)
    run = subprocess.run([sys.executable, "-m", "dagster_project.cli", "sql", "--csv", "-c",
                          "select count(*) as n from marts.mart_a;"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["n", "2"]
    missing = subprocess.run([sys.executable, "-m", "dagster_project.cli", "sql", "-c", "select 1;"],
                             capture_output=True, text=True,
                             env={"EW_HOME": str(ew_home.home / "nothing"), "PATH": "/usr/bin:/bin"})
    assert missing.returncode == 2 and "ecomwh run" in missing.stderr


def test_a_publish_killed_mid_copy_leaves_the_old_copy_and_the_next_publish_clears_its_files(tmp_path):
    """kill -9 during publish: readers keep the previous copy; the half-written temporary copy and
    its WAL (as big as the copy) do not stay in the serving folder forever."""
    db, serving = tmp_path / "pipeline.duckdb", tmp_path / "serving" / "warehouse.duckdb"
    _pipeline(db)
    publish(db, serving, MANIFEST)
    before = serving.read_bytes()
    con = duckdb.connect(str(db))
    con.execute("create table marts.mart_big as select range as id, random() as x, md5(range::varchar) as h "
                "from range(8000000)")
    con.close()
    code = ("import sys; from pathlib import Path; from dagster_project.lib.publish import publish; "
            "publish(Path(sys.argv[1]), Path(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(serving)])
    deadline = time.monotonic() + 120
    while not list(serving.parent.glob(f".{serving.name}.{proc.pid}.tmp*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the publish ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = sorted(p.name for p in serving.parent.glob(".*.tmp*"))
    assert left and all(str(proc.pid) in name for name in left)
    assert serving.read_bytes() == before  # readers still get the previous copy
    con = duckdb.connect(str(db))
    con.execute("drop table marts.mart_big")
    con.close()
    publish(db, serving, MANIFEST)
    assert sorted(p.name for p in serving.parent.iterdir()) == ["published.json", "warehouse.duckdb"]


def test_a_publish_copies_only_the_tables_whose_content_changed(tmp_path):
    db, serving = tmp_path / "pipeline.duckdb", tmp_path / "serving" / "warehouse.duckdb"
    _pipeline(db, gmv=10.0)
    first = publish(db, serving, MANIFEST)
    assert first["mode"] == "full" and first["copied"] == ["mart_a", "mart_b"]
    _pipeline(db, gmv=100.0)  # mart_b is rebuilt too, with the same rows
    con = duckdb.connect(str(db))
    con.execute("create table marts.mart_c as select 7 as n")
    con.close()
    second = publish(db, serving, MANIFEST)
    assert second["mode"] == "changed tables"
    assert second["copied"] == ["mart_a", "mart_c"] and second["kept"] == ["mart_b"]
    assert second["tables"] == {"marts.mart_a": 2, "marts.mart_b": 1, "marts.mart_c": 1}
    con = duckdb.connect(str(serving), read_only=True)
    assert con.execute("select sum(gmv) from marts.mart_a").fetchone()[0] == 102.5
    assert con.execute("select k from marts.mart_b").fetchall() == [("x",)]
    assert con.execute("select n from marts.mart_c").fetchall() == [(7,)]
    assert con.execute("select count(*) from docs.columns where table_name = 'mart_c'").fetchone()[0] == 1
    con.close()
    con = duckdb.connect(str(db))
    con.execute("drop table marts.mart_c")
    con.execute("create or replace table marts.mart_b as select 'x' as k, 1 as extra")  # a new column
    con.close()
    third = publish(db, serving, MANIFEST)
    assert third["copied"] == ["mart_b"] and third["kept"] == ["mart_a"] and third["removed"] == ["mart_c"]
    con = duckdb.connect(str(serving), read_only=True)
    assert {r[0] for r in con.execute("select table_name from information_schema.tables "
                                      "where table_schema = 'marts'").fetchall()} == {"mart_a", "mart_b"}
    assert con.execute("select extra from marts.mart_b").fetchall() == [(1,)]
    assert dict(con.execute("select table_name, row_count from docs.tables").fetchall()) == {"mart_a": 2, "mart_b": 1}
    con.close()


READER = """
import sys, duckdb
seen = set()
for _ in range(int(sys.argv[2])):
    con = duckdb.connect(sys.argv[1], read_only=True)
    a, b = con.execute("select (select sum(v) from marts.mart_a), (select sum(v) from marts.mart_b)").fetchone()
    con.close()
    assert a == b, f"half a publish: mart_a {a}, mart_b {b}"
    seen.add(a)
print(len(seen))
"""


def test_a_reader_never_sees_half_a_publish_of_changed_tables(tmp_path):
    """Two marts that change together (each publish copies both, keeping a third): a reader opening
    the copy over and over during ten publishes always finds them from the same publish."""
    db, serving = tmp_path / "pipeline.duckdb", tmp_path / "serving" / "warehouse.duckdb"

    def build(i: int) -> None:
        con = duckdb.connect(str(db))
        con.execute("create schema if not exists marts")
        for t in ("mart_a", "mart_b"):
            con.execute(f"create or replace table marts.{t} as select range * {i} as v from range(50000)")
        con.execute("create or replace table marts.mart_kept as select 1 as k")
        con.close()

    build(1)
    publish(db, serving)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving), "150"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    summaries = []
    for i in range(2, 12):
        build(i)
        summaries.append(publish(db, serving))
    out, err = reader.communicate(timeout=300)
    assert reader.returncode == 0, err
    assert int(out) >= 2  # it did read across publishes
    assert all(s["copied"] == ["mart_a", "mart_b"] and s["kept"] == ["mart_kept"] for s in summaries
               if s["mode"] == "changed tables")
    assert sum(s["mode"] == "changed tables" for s in summaries) >= 5
