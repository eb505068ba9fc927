"""Dagster's SQLite event log, with its connections kept open between events.

Dagster's `SqliteEventLogStorage` creates a SQLAlchemy engine, opens the SQLite file, commits and
closes it again for every event it stores, and asset events are stored twice (the run's shard and the
cross-run index shard). A run of this project stores about two thousand events (a planned and an
evaluated event for each of some 500 dbt tests and GE suites, a materialization per model), and the
opening and closing cost ~40 s of a 100 s run on a small shop (docs/performance.md, "Dagster's event
log"). This subclass keeps one engine per shard for the shards a process used last (the index shard and
the run it is executing, in `ecomwh run`; the runs a page shows, in the UI), so an event costs one
INSERT and one COMMIT. Each event is still committed before the next one is written: what is on disk
after a crash is what Dagster's own storage would have left. The files, their schema and WAL mode are
Dagster's; the UI, the daemon and `ecomwh status` read them as before.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# The index shard, the run being executed and a few runs a UI page reads at once.
OPEN_SHARDS = 8
SQLITE_BUSY_TIMEOUT_SECONDS = 30  # as Dagster's
# Dagster closed each file after every event, which checkpointed the write-ahead log into the file
# and deleted it. A connection that stays open leaves that to SQLite's automatic checkpoint (every
# 1,000 pages, 4 MB, and the log keeps its size after it): checkpoint every 64 pages and truncate
# the log back to 256 kB, so a run's files take the room they took before (a nearly full disk
# still fails in the step that fills it, tests/test_faults.py).
WAL_AUTOCHECKPOINT_PAGES = 64
WAL_SIZE_LIMIT_BYTES = 256 * 1024


def _wal_limits(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose shards keep an open connection (see the module docstring)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # the base class names itself here
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            if self._engines_pid != os.getpid():  # a forked child must not share the parent's files
                self._engines = OrderedDict()
                self._engines_pid = os.getpid()
            engine = self._engines.get(shard)
            if engine is not None and not os.path.exists(self.path_for_shard(shard)):
                engine.dispose()  # the file was deleted (a wiped run): create it again, tables too
                engine = None
                self._initialized_dbs.discard(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard), poolclass=QueuePool, pool_size=1, max_overflow=4,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
                event.listen(engine, "connect", _wal_limits)
                self._engines[shard] = engine
                while len(self._engines) > OPEN_SHARDS:
                    _, old = self._engines.popitem(last=False)
                    old.dispose()
            else:
                self._engines.move_to_end(shard)
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._dispose_engines()
        super().wipe()

    def delete_events(self, run_id: str) -> None:
        super().delete_events(run_id)
        with self._engines_lock:
            if (engine := self._engines.pop(run_id, None)) is not None:
                engine.dispose()

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()
