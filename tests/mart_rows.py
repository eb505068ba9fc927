"""Rows of a query as dicts, for the metric tests: from an open DuckDB connection, a warehouse file
(opened read-only for the query) or a world with a `.db` (the truth_warehouse fixture)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb


def dict_rows(source, sql: str, params: list | None = None) -> list[dict]:
    if isinstance(source, duckdb.DuckDBPyConnection):
        cursor = source.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    con = duckdb.connect(str(getattr(source, "db", source) if not isinstance(source, (str, Path)) else source),
                         read_only=True)
    try:
        return dict_rows(con, sql, params)
    finally:
        con.close()


def dates_between(first: date, last: date) -> list[date]:
    """Every day from first to last, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
