"""All settings in one place. Every one is an environment variable prefixed EW_.

EW_HOME is the state folder: landing files, the pipeline's DuckDB file, the published read-only
copy, quarantine exports, dbt's target folder and DAGSTER_HOME all live under it, and nothing the
warehouse does writes outside it, except into EW_DBT_SHARED_DIR when that is set (a folder several
state folders of one checkout share: docs/incremental.md).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt"

# Defaults of the landing guards, shared with the Dagster resource `warehouse` (defs/resources.py).
LANDING_SETTLE_S = 10.0
MAX_FILE_MB = 4096
MAX_COMPRESSION_RATIO = 100.0
DUCKDB_MEMORY_LIMIT = "4GB"
ALERT_TEAM_URLS_PREFIX = "EW_ALERT_URLS_"


def default_serving_path(home: Path) -> Path:
    return home / "serving" / "warehouse.duckdb"


@dataclass(frozen=True)
class Settings:
    home: Path
    timezone: str
    landing_dir: Path
    duckdb_path: Path
    serving_path: Path
    quarantine_dir: Path
    dagster_home: Path
    dbt_target_dir: Path
    dbt_log_dir: Path
    sensor_interval_s: int
    ltv_as_of: str | None          # calibration end (YYYY-MM-DD); default: the last loaded day
    ltv_time_unit_days: float      # BG/NBD time unit; 7 = weeks, as in the literature
    ltv_monthly_discount: float    # discount rate per month for the 12-month value
    ltv_backtest_days: int         # holdout of the standing backtest (calibration end = data end - this)
    landing_settle_s: float        # a landed file loads once unchanged this long (or with <file>.done)
    landing_require_done: bool     # load only files with a <file>.done marker
    max_file_mb: int               # a landed file's content, decompressed, above this is refused
    max_compression_ratio: float   # a .csv.gz inflating more than this many times is refused
    duckdb_memory_limit: str       # DuckDB spills to disk above this (ingest, and dbt's profile)
    dbt_shared_dir: Path | None  # shared by state folders of one checkout: dbt unit tests passed

    @property
    def lock_path(self) -> Path:
        return self.home / "warehouse.lock"

    @property
    def alert_state_path(self) -> Path:
        """What was notified, so that nothing is sent twice (lib/alerts/notify.py StateStore)."""
        return self.home / "alerts" / "notifications.sqlite"

    def ensure_dirs(self) -> None:
        for d in (self.home, self.landing_dir, self.duckdb_path.parent, self.serving_path.parent,
                  self.quarantine_dir, self.dagster_home, self.dbt_target_dir, self.dbt_log_dir):
            d.mkdir(parents=True, exist_ok=True)


def _path(env: str, default: Path | None) -> Path | None:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


def get_settings() -> Settings:
    """Read settings from the environment now (not at import time), so tests can point EW_HOME anywhere."""
    home = _path("EW_HOME", (Path.cwd() / ".ew").resolve())
    return Settings(
        home=home,
        timezone=os.environ.get("EW_TIMEZONE", "Asia/Shanghai"),
        landing_dir=_path("EW_LANDING_DIR", home / "landing"),
        duckdb_path=_path("EW_DUCKDB_PATH", home / "warehouse.duckdb"),
        serving_path=_path("EW_SERVING_PATH", default_serving_path(home)),
        quarantine_dir=_path("EW_QUARANTINE_DIR", home / "quarantine"),
        dagster_home=_path("DAGSTER_HOME", home / "dagster"),
        dbt_target_dir=_path("EW_DBT_TARGET_DIR", home / "dbt" / "target"),
        dbt_log_dir=_path("EW_DBT_LOG_DIR", home / "dbt" / "logs"),
        sensor_interval_s=int(os.environ.get("EW_SENSOR_INTERVAL_S", "30")),
        ltv_as_of=os.environ.get("EW_LTV_AS_OF") or None,
        ltv_time_unit_days=float(os.environ.get("EW_LTV_TIME_UNIT_DAYS", "7")),
        ltv_monthly_discount=float(os.environ.get("EW_LTV_MONTHLY_DISCOUNT", "0.01")),
        ltv_backtest_days=int(os.environ.get("EW_LTV_BACKTEST_DAYS", "60")),
        landing_settle_s=float(os.environ.get("EW_LANDING_SETTLE_S", LANDING_SETTLE_S)),
        landing_require_done=os.environ.get("EW_LANDING_REQUIRE_DONE", "0").lower() in ("1", "true", "yes"),
        max_file_mb=int(os.environ.get("EW_MAX_FILE_MB", MAX_FILE_MB)),
        max_compression_ratio=float(os.environ.get("EW_MAX_COMPRESSION_RATIO", MAX_COMPRESSION_RATIO)),
        duckdb_memory_limit=os.environ.get("EW_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY_LIMIT),
        dbt_shared_dir=_path("EW_DBT_SHARED_DIR", None),
    )


# Plausibility of timestamps in the raw suites (docs/quality.md): a value more than this many hours
# after the run, or outside the middle half of its own column by more than this many interquartile
# ranges and this many days, warns. Warns only: a valid but unusual date never blocks a load.
DEFAULT_TIME_PLAUSIBILITY = {
    "quality_future_hours": 24.0,
    "quality_outlier_iqr": 3.0,
    "quality_outlier_min_days": 365.0,
}


def time_plausibility() -> dict[str, float]:
    """The thresholds above, EW_QUALITY_FUTURE_HOURS / _OUTLIER_IQR / _OUTLIER_MIN_DAYS overriding."""
    out = {}
    for name, default in DEFAULT_TIME_PLAUSIBILITY.items():
        env = "EW_" + name.upper()
        value = float(os.environ.get(env) or default)
        if not value >= 0:
            raise ValueError(f"{env} must be a number >= 0, got {os.environ.get(env)!r}")
        out[name] = value
    return out


def export_env(settings: Settings) -> dict[str, str]:
    """Environment that child processes (dbt, the Dagster UI and daemon) need so they also write only under EW_HOME."""
    return {
        "EW_HOME": str(settings.home),
        "EW_TIMEZONE": settings.timezone,
        "EW_LANDING_DIR": str(settings.landing_dir),
        "EW_DUCKDB_PATH": str(settings.duckdb_path),
        "EW_SERVING_PATH": str(settings.serving_path),
        "DAGSTER_HOME": str(settings.dagster_home),
        "DBT_TARGET_PATH": str(settings.dbt_target_dir),
        "DBT_LOG_PATH": str(settings.dbt_log_dir),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # dbt's log file at its default level (debug) holds the SQL of every query: ~12% of a build's
        # time on a small shop, spent formatting ~1,000 tests' events. Errors, warnings and each node's
        # result are at info; set DBT_LOG_LEVEL_FILE=debug to have the SQL again.
        "DBT_LOG_LEVEL_FILE": os.environ.get("DBT_LOG_LEVEL_FILE") or "info",
        "DO_NOT_TRACK": "1",
    }


@dataclass(frozen=True)
class AlertSettings:
    """Alert delivery (docs/alerts.md): destinations are apprise URLs, from the environment only."""

    urls: tuple[str, ...]           # EW_ALERT_URLS: every team's messages, unless the team has its own
    team_urls: dict[str, tuple[str, ...]]   # EW_ALERT_URLS_<TEAM>
    quiet_hours: str | None         # EW_ALERT_QUIET_HOURS, e.g. 22:00-08:00 (business time)
    language: str | None            # EW_ALERT_LANGUAGE (zh / en) overrides each team file's language
    public_url: str                 # EW_PUBLIC_URL: where readers open Superset (links in messages)
    timezone: str
    deadline: str                   # EW_DELIVERY_DEADLINE: by then (business time) yesterday's files are in

    def __post_init__(self) -> None:
        if self.language not in (None, "zh", "en"):
            raise ValueError(f"EW_ALERT_LANGUAGE must be zh or en, got {self.language!r}")

    def urls_for(self, team: str) -> list[str]:
        return list(self.team_urls.get(team, self.urls))


def split_urls(value: str | None) -> tuple[str, ...]:
    """EW_ALERT_URLS and EW_ALERT_URLS_<TEAM> list apprise URLs separated by commas or white space."""
    return tuple(u for u in re.split(r"[\s,]+", value or "") if u)


def alert_team_url_vars() -> dict[str, str]:
    """Team name -> the variable that holds its destinations (EW_ALERT_URLS_<TEAM>)."""
    prefix = ALERT_TEAM_URLS_PREFIX
    return {k[len(prefix):].lower(): k for k in os.environ if k.startswith(prefix)}


def get_alert_settings() -> AlertSettings:
    return AlertSettings(
        urls=split_urls(os.environ.get("EW_ALERT_URLS")),
        team_urls={team: split_urls(os.environ[var]) for team, var in alert_team_url_vars().items()},
        language=os.environ.get("EW_ALERT_LANGUAGE") or None,
        quiet_hours=os.environ.get("EW_ALERT_QUIET_HOURS") or None,
        public_url=os.environ.get("EW_PUBLIC_URL") or f"http://127.0.0.1:{os.environ.get('EW_SUPERSET_PORT', '8088')}",
        timezone=os.environ.get("EW_TIMEZONE", "Asia/Shanghai"),
        deadline=os.environ.get("EW_DELIVERY_DEADLINE", "07:00"),
    )
