"""One DuckDB transaction around a block of writes, e.g. the replace of Python-written marts
(`dbt_outputs.PythonMart.replace`): all of it is committed together, or on any exception (an
interrupt too) none of it, so a reader never sees half a replace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("begin transaction")
    try:
        yield con
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
