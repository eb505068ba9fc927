"""Publish the read-only serving copy of the warehouse (schemas marts and docs) by atomic swap.

DuckDB lets one process write a file, and a reader holding it blocks the writer. So readers
(Superset, `ecomwh sql`, analysts' notebooks) never open the pipeline's file: they open a copy.
The copy is written beside the serving path under a temporary name, checkpointed, fsynced and
moved over the old one with os.replace: a reader opens either the previous copy or the new one,
never a half-written file, and a reader that still holds the old copy keeps reading it (its inode
lives until closed). Both files are written by the same duckdb library as the pipeline.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from dagster_project.lib import procs
from dagster_project.lib.ingest import sql_literal

SCHEMAS = ("marts", "docs")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def docs_tables(manifest: dict) -> tuple[list[tuple], list[tuple]]:
    """(tables, columns) descriptions for the marts schema, from dbt's manifest.

    dbt models and the sources that document the Python-built marts (schema marts) both count.
    """
    tables, columns = [], []
    nodes = list(manifest.get("nodes", {}).values()) + list(manifest.get("sources", {}).values())
    for node in nodes:
        if node.get("resource_type") not in ("model", "source") or node.get("schema") != "marts":
            continue
        name = node.get("alias") or node.get("identifier") or node["name"]
        domain = (node.get("fqn") or [None, None, None])[2] if node["resource_type"] == "model" else "python"
        tables.append((name, node.get("description") or "", domain, node.get("original_file_path") or ""))
        for col in (node.get("columns") or {}).values():
            columns.append((name, col["name"], col.get("description") or ""))
    return tables, columns


def publish(pipeline_path: Path, serving_path: Path, manifest: dict | None = None) -> dict:
    """Copy the marts (and docs built from `manifest`) into a new file and swap it in atomically.

    The caller holds the pipeline's writer lock, so the copy is one consistent state of the marts.
    Returns what was published: tables with row counts, bytes, seconds.
    """
    started = time.perf_counter()
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_copies(serving_path)
    tmp = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    published_at = datetime.now(timezone.utc).replace(tzinfo=None)
    rows: dict[str, int] = {}
    con = duckdb.connect()
    try:
        con.execute(f"attach {sql_literal(str(pipeline_path))} as src (read_only)")
        con.execute(f"attach {sql_literal(str(tmp))} as snap")
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'src' "
            "and table_schema = 'marts' order by table_name").fetchall()]
        if not tables:
            raise RuntimeError(f"{pipeline_path} has no marts yet: nothing to publish")
        con.execute("create schema snap.marts")
        for t in tables:
            con.execute(f"create table snap.marts.{_q(t)} as select * from src.marts.{_q(t)}")
            rows[f"marts.{t}"] = con.execute(f"select count(*) from snap.marts.{_q(t)}").fetchone()[0]
        _write_docs(con, manifest or {}, tables, rows, published_at)
        con.execute("checkpoint snap")
        con.execute("detach snap")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, serving_path)
    dir_fd = os.open(serving_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    took = time.perf_counter() - started
    summary = {"published_at": published_at.isoformat() + "Z", "path": str(serving_path),
               "bytes": serving_path.stat().st_size, "seconds": round(took, 3), "tables": rows}
    (serving_path.parent / "published.json").write_text(json.dumps(summary, indent=2))
    return summary


def remove_abandoned_copies(serving_path: Path) -> list[Path]:
    """Delete the temporary copies (and their WAL files) of publishes whose process is gone: a
    publish killed before its swap leaves them, and at the demo's size each is as big as the copy."""
    removed = []
    for path in serving_path.parent.glob(f".{serving_path.name}.*.tmp*"):
        pid = path.name[len(serving_path.name) + 2:].split(".")[0]
        try:
            # the publisher started before it wrote; a younger process only reuses its PID
            if pid.isdigit() and not procs.started_by(int(pid), not_after=path.stat().st_mtime):
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    return removed


def _write_docs(con, manifest: dict, tables: list[str], rows: dict[str, int], published_at: datetime) -> None:
    """docs.tables / docs.columns: what each mart and column means, next to the data in SQL Lab."""
    described, col_docs = docs_tables(manifest)
    by_table = {t[0]: t for t in described}
    col_desc = {(t, c): d for t, c, d in col_docs}
    con.execute("create schema snap.docs")
    con.execute("create table snap.docs.tables (table_schema varchar, table_name varchar, domain varchar, "
                "description varchar, defined_in varchar, row_count bigint, published_at timestamp)")
    con.execute("create table snap.docs.columns (table_schema varchar, table_name varchar, "
                "column_name varchar, ordinal_position integer, data_type varchar, description varchar)")
    table_rows = []
    for t in tables:
        _, description, domain, defined_in = by_table.get(t, (t, "", None, ""))
        table_rows.append((t, domain, description, defined_in, rows[f"marts.{t}"], published_at))
    con.executemany("insert into snap.docs.tables values ('marts', ?, ?, ?, ?, ?, ?)", table_rows)
    cols = con.execute(
        "select table_name, column_name, ordinal_position, data_type from information_schema.columns "
        "where table_catalog = 'snap' and table_schema = 'marts' order by table_name, ordinal_position"
    ).fetchall()
    con.executemany("insert into snap.docs.columns values ('marts', ?, ?, ?, ?, ?)", [
        (t, c, pos, typ, col_desc.get((t, c), "")) for t, c, pos, typ in cols])
