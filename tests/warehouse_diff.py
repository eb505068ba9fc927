"""Row-for-row comparison of one table in two DuckDB files (a warehouse built one way and another)."""

from __future__ import annotations

from pathlib import Path

import duckdb

# lineage that names a load, a build or an evaluation differs between two warehouses by construction
VOLATILE_COLUMNS = {"built_at", "load_id", "loaded_at", "evaluated_at"}
# rows that differ by design: freshness is minutes between the newest data and the moment of the build
ROWS_COMPARED = {"marts.mart_data_quality": "check_name <> 'freshness'"}


def differences(a: Path, b: Path, table: str, where: str | None = None) -> str | None:
    """None when `table` (schema.name) holds the same rows in both files, up to row order, columns in
    VOLATILE_COLUMNS and rows outside `where` (by default the table's ROWS_COMPARED); else a
    description with examples."""
    where = where or ROWS_COMPARED.get(table, "true")
    con = duckdb.connect()
    try:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        cols = con.execute(
            "select column_name, data_type from information_schema.columns where table_catalog = 'a' "
            "and table_schema = ? and table_name = ? order by ordinal_position",
            table.split(".")).fetchall()
        # doubles: sums may add in another order; 9 decimals is far below any reported precision
        exprs = ", ".join(f"round({c}, 9) as {c}" if t in ("DOUBLE", "FLOAT") else c
                          for c, t in cols if c not in VOLATILE_COLUMNS)
        n_a, n_b = (con.execute(f"select count(*) from {db}.{table}").fetchone()[0] for db in "ab")
        only_a = con.execute(f"select {exprs} from a.{table} where {where} except all "
                             f"select {exprs} from b.{table} where {where}").fetchall()
        only_b = con.execute(f"select {exprs} from b.{table} where {where} except all "
                             f"select {exprs} from a.{table} where {where}").fetchall()
    finally:
        con.close()
    if only_a or only_b:
        return (f"{table}: {n_a} vs {n_b} rows; {len(only_a)} only in {a}, e.g. {only_a[:2]}; "
                f"{len(only_b)} only in {b}, e.g. {only_b[:2]}")
    return None
