"""Superset configuration for ecom-warehouse (loaded through SUPERSET_CONFIG_PATH by `ecomwh serve`).

Everything Superset keeps lives in EW_SUPERSET_HOME (inside EW_HOME): the SQLite metadata database
and the secret key, which `ecomwh serve` generates once. Nothing here is a default credential.
"""

import os
import threading
from pathlib import Path

import duckdb
import sqlalchemy
import sqlalchemy.pool

_home = Path(os.environ["EW_SUPERSET_HOME"])

SECRET_KEY = (_home / "secret_key").read_text().strip()
SQLALCHEMY_DATABASE_URI = f"sqlite:///{_home / 'superset.db'}?check_same_thread=false"
DATA_DIR = str(_home / "data")

# One machine, no Redis: rate limits and caches in memory. Chart data is not cached, so a
# dashboard always shows the copy most recently published by the pipeline.
RATELIMIT_STORAGE_URI = "memory://"
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}

# Operations staff read Chinese; analysts often English. The language menu switches between both.
BABEL_DEFAULT_LOCALE = os.environ.get("EW_SUPERSET_LOCALE", "zh")
LANGUAGES = {
    "zh": {"flag": "cn", "name": "简体中文"},
    "en": {"flag": "us", "name": "English"},
}
CURRENCIES = ["CNY"]

FEATURE_FLAGS = {
    # Render every chart when the dashboard opens (not only those scrolled into view): the
    # morning read is a scroll through the whole page, and a partly drawn page looks broken.
    "DASHBOARD_VIRTUALIZATION": False,
    "ALLOW_FULL_CSV_EXPORT": True,
}

# Queries over the serving copy are short; a failing one should say so, not hang a worker.
SUPERSET_WEBSERVER_TIMEOUT = 120
SQLLAB_TIMEOUT = 120
ROW_LIMIT = 50000
SQL_MAX_ROW = 100000

# Superset's own SQLLAB_TIMEOUT is a SIGALRM that gunicorn's worker threads never get, and even when it
# fires the DuckDB query goes on, holding a core: every statement on the warehouse is interrupted by
# DuckDB itself after EW_SQL_TIMEOUT_S (below the web timeout, so the analyst sees why), and its
# sorts and hash tables may use EW_SQL_QUERY_MEMORY (the bundle caps each worker's DuckDB at 2 GB
# and gives it no temporary directory: a query that needs more fails instead of filling the disk).
EW_SQL_TIMEOUT_S = float(os.environ.get("EW_SQL_TIMEOUT_S", "110"))
EW_SQL_QUERY_MEMORY = os.environ.get("EW_SQL_QUERY_MEMORY", "1GB")


class _InterruptingCursor:
    def __init__(self, cursor, connection) -> None:
        object.__setattr__(self, "_cursor", cursor)
        object.__setattr__(self, "_connection", connection)

    def execute(self, *args, **kwargs):
        fired = threading.Event()

        def interrupt() -> None:
            fired.set()
            self._connection.interrupt()

        timer = threading.Timer(EW_SQL_TIMEOUT_S, interrupt)
        timer.daemon = True
        timer.start()
        try:
            return self._cursor.execute(*args, **kwargs)
        except duckdb.InterruptException:
            if not fired.is_set():
                raise
            raise duckdb.InterruptException(
                f"Query stopped after {EW_SQL_TIMEOUT_S:.0f} s, the limit for one query on this server "
                f"(EW_SQL_TIMEOUT_S). Aggregate in SQL or filter to fewer rows.") from None
        finally:
            timer.cancel()

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __setattr__(self, name, value) -> None:
        setattr(self._cursor, name, value)


@sqlalchemy.event.listens_for(sqlalchemy.pool.Pool, "connect")
def _limit_duckdb_connection(dbapi_connection, _record) -> None:
    """Every new connection to the warehouse (Superset opens one per query): the per-query memory
    cap, and cursors whose statements DuckDB interrupts on timeout. Superset's metadata is SQLite."""
    if type(dbapi_connection).__module__.split(".")[0] != "duckdb_engine":
        return
    dbapi_connection.execute(f"set operator_memory_limit = '{EW_SQL_QUERY_MEMORY}'")
    make_cursor = dbapi_connection.cursor
    dbapi_connection.cursor = lambda *a, **kw: _InterruptingCursor(make_cursor(*a, **kw), dbapi_connection)


# No upload into the warehouse from the UI: the pipeline is the only writer.
CSV_EXTENSIONS: set = set()
EXCEL_EXTENSIONS: set = set()
COLUMNAR_EXTENSIONS: set = set()

# Local HTTP on 127.0.0.1; HTTPS belongs to whatever proxy a shop puts in front. Talisman sends the
# anti-framing and content-security headers: no other site may frame Superset (clickjacking an
# analyst into a click) or make it load scripts, images or connections from elsewhere.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "frame-ancestors": ["'self'"],
        "form-action": ["'self'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "frame_options": "SAMEORIGIN",
    "force_https": False,
    "session_cookie_secure": False,
}
SESSION_COOKIE_SAMESITE = "Lax"
