"""Superset configuration for ecom-warehouse (loaded through SUPERSET_CONFIG_PATH by `ecomwh serve`).

Everything Superset keeps lives in EW_SUPERSET_HOME (inside EW_HOME): the SQLite metadata database
and the secret key, which `ecomwh serve` generates once. Nothing here is a default credential.
"""

import os
from pathlib import Path

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

# No upload into the warehouse from the UI: the pipeline is the only writer.
CSV_EXTENSIONS: set = set()
EXCEL_EXTENSIONS: set = set()
COLUMNAR_EXTENSIONS: set = set()

# Local HTTP on 127.0.0.1; HTTPS belongs to whatever proxy a shop puts in front.
TALISMAN_ENABLED = False
SESSION_COOKIE_SAMESITE = "Lax"
