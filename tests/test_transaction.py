"""lib/transaction.py: the writes of a block are committed together or not at all."""

from __future__ import annotations

import duckdb
import pytest

from dagster_project.lib.transaction import transaction


@pytest.fixture()
def con():
    con = duckdb.connect()
    con.execute("create table a as select 1 as n")
    con.execute("create table b as select 1 as n")
    yield con
    con.close()


def _tables(con) -> tuple:
    return con.execute("select (select list(n order by n) from a), (select list(n order by n) from b)").fetchone()


def test_a_block_that_ends_commits_every_write(con):
    with transaction(con):
        con.execute("create or replace table a as select 2 as n")
        con.execute("insert into b values (3)")
    assert _tables(con) == ([2], [1, 3])
    assert con.execute("begin transaction") is not None  # none was left open
    con.execute("rollback")


@pytest.mark.parametrize("error", [ValueError("bad frame"), KeyboardInterrupt()])
def test_a_block_that_raises_keeps_none_of_its_writes_and_passes_the_error_on(con, error):
    with pytest.raises(type(error)):
        with transaction(con):
            con.execute("create or replace table a as select 2 as n")  # the first mart replaced...
            con.execute("insert into b values (3)")
            raise error  # ...when the second one fails
    assert _tables(con) == ([1], [1])
    with transaction(con):  # and the connection takes the next transaction
        con.execute("insert into a values (4)")
    assert _tables(con) == ([1, 4], [1])
