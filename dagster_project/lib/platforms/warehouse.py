"""The importer's side of the warehouse: the drop folder `$EW_HOME/imports/<platform>/`, and the
record of imports in DuckDB (raw._imports, raw._import_lineage, refused rows in raw.quarantine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from dagster_project.lib.contract import QUARANTINE_DDL
from dagster_project.lib.platforms import read
from dagster_project.lib.platforms.convert import ExportError, read_rates
from dagster_project.lib.platforms.mapping import Mapping, MappingError, load_mapping, shipped_mapping
from dagster_project.lib.platforms.store import (
    ExportRecord, all_platforms, import_exports, imports_dir, known_exports, store_dir,
)
from dagster_project.lib.transaction import transaction

LOAD_ID_PREFIX = "import:"

IMPORTS_DDL = """
create table if not exists raw._imports (
    platform varchar, export_id varchar, export_name varchar, file_name varchar, report varchar,
    kind varchar, encoding varchar, header_row bigint, rows_exported bigint, rows_converted bigint,
    rows_quarantined bigint, as_of varchar, seq bigint, imported_at varchar
)"""
LINEAGE_DDL = """
create table if not exists raw._import_lineage (
    platform varchar, source varchar, landing_file varchar, landing_row bigint,
    export_file varchar, export_row bigint
)"""


@dataclass
class DropFolderResult:
    platform: str
    records: list[ExportRecord] = field(default_factory=list)
    written: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def drop_folder_exports(home: Path) -> dict[str, list[Path]]:
    """Export files waiting in $EW_HOME/imports/<platform>/ (a folder per platform or mapping)."""
    root = imports_dir(home)
    out: dict[str, list[Path]] = {}
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = []
        for p in sorted(folder.iterdir()):
            if p.is_file() and not p.name.startswith((".", "~$")):
                try:
                    read.export_kind(p)
                except read.ExportFileError:
                    continue
                files.append(p)
        if files:
            out[folder.name] = files
    return out


def drop_folder_mapping(home: Path, name: str) -> Mapping:
    own = imports_dir(home) / name / "mapping.yml"
    mapping = load_mapping(own) if own.exists() else shipped_mapping(name)
    if mapping.platform != name:
        raise MappingError(f"{own}: platform '{mapping.platform}' must equal its folder's name '{name}'")
    return mapping


def import_drop_folder(home: Path, landing_dir: Path) -> list[DropFolderResult]:
    """Import every new export of the drop folder. An export that cannot be read is reported and
    left for the user to replace; it does not stop the others or the run."""
    rates_path = imports_dir(home) / "rates.csv"
    rates = read_rates(rates_path) if rates_path.exists() else None
    results = []
    for name, files in drop_folder_exports(home).items():
        res = DropFolderResult(name)
        results.append(res)
        try:
            mapping = drop_folder_mapping(home, name)
        except MappingError as exc:
            res.errors.append(str(exc))
            continue
        for path in files:
            try:
                recs, written = import_exports(home, landing_dir, mapping, [path], rates=rates)
            except ExportError as exc:
                res.errors.append(str(exc))
                continue
            res.records += recs
            res.written.update(written)
    return results


def sync_warehouse(con: duckdb.DuckDBPyConnection, home: Path) -> dict:
    """Make raw._imports, raw._import_lineage and the import rows of raw.quarantine say what the
    store holds, in one transaction (idempotent: every sync rewrites them whole)."""
    con.execute("create schema if not exists raw")
    con.execute(QUARANTINE_DDL)
    con.execute(IMPORTS_DDL)
    con.execute(LINEAGE_DDL)
    imports, refusals, lineage = [], [], []
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for platform in all_platforms(home):
        for rec in known_exports(home, platform):
            for s in rec.sheets:
                imports.append((platform, rec.export_id, rec.export_name, s["file_name"], s["report"], s["kind"],
                                s["encoding"], s["header_row"], s["rows_exported"], s["rows_converted"],
                                s["rows_quarantined"], rec.as_of, rec.seq, rec.imported_at))
            ref = pl.read_parquet(store_dir(home) / platform / rec.export_id / "refusals.parquet")
            load_id = f"{LOAD_ID_PREFIX}{platform}:{rec.export_id}"
            for r in ref.iter_rows(named=True):
                refusals.append((r["source"], r["file_name"], r["row"], r["raw_text"], r["rule"], r["column"],
                                 r["reason"], load_id, now))
        lp = store_dir(home) / platform / "lineage.parquet"
        if lp.exists():
            lineage.append(pl.read_parquet(lp).with_columns(pl.lit(platform).alias("platform")))
    with transaction(con):
        con.execute("delete from raw.quarantine where load_id like ?", [LOAD_ID_PREFIX + "%"])
        if refusals:
            con.executemany("insert into raw.quarantine values (?, ?, ?, ?, ?, ?, ?, ?, ?)", refusals)
        con.execute("delete from raw._imports")
        if imports:
            con.executemany("insert into raw._imports values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", imports)
        con.execute("delete from raw._import_lineage")
        if lineage:
            frame = pl.concat(lineage).select("platform", "source", "landing_file", "landing_row",
                                              "export_file", "export_row")
            con.register("lineage_frame", frame.to_arrow())
            con.execute("insert into raw._import_lineage select * from lineage_frame")
            con.unregister("lineage_frame")
    return {"exports": len({(i[0], i[1]) for i in imports}), "refused_rows": len(refusals),
            "lineage_rows": sum(f.height for f in lineage)}


__all__ = ["DropFolderResult", "drop_folder_exports", "import_drop_folder", "sync_warehouse"]
