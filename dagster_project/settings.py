"""All settings in one place. Every one is an environment variable prefixed EW_.

EW_HOME is the state folder: landing files, the pipeline's DuckDB file, the published read-only
copy, quarantine exports, dbt's target folder and DAGSTER_HOME all live under it, and nothing the
warehouse does writes outside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt"


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

    @property
    def lock_path(self) -> Path:
        return self.home / "warehouse.lock"

    def ensure_dirs(self) -> None:
        for d in (self.home, self.landing_dir, self.duckdb_path.parent, self.serving_path.parent,
                  self.quarantine_dir, self.dagster_home, self.dbt_target_dir, self.dbt_log_dir):
            d.mkdir(parents=True, exist_ok=True)


def _path(env: str, default: Path) -> Path:
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
        serving_path=_path("EW_SERVING_PATH", home / "serving" / "warehouse.duckdb"),
        quarantine_dir=_path("EW_QUARANTINE_DIR", home / "quarantine"),
        dagster_home=_path("DAGSTER_HOME", home / "dagster"),
        dbt_target_dir=_path("EW_DBT_TARGET_DIR", home / "dbt" / "target"),
        dbt_log_dir=_path("EW_DBT_LOG_DIR", home / "dbt" / "logs"),
        sensor_interval_s=int(os.environ.get("EW_SENSOR_INTERVAL_S", "30")),
        ltv_as_of=os.environ.get("EW_LTV_AS_OF") or None,
        ltv_time_unit_days=float(os.environ.get("EW_LTV_TIME_UNIT_DAYS", "7")),
        ltv_monthly_discount=float(os.environ.get("EW_LTV_MONTHLY_DISCOUNT", "0.01")),
        ltv_backtest_days=int(os.environ.get("EW_LTV_BACKTEST_DAYS", "60")),
    )


# Freshness SLA in minutes per source (issue 4 defaults: orders 15 min, events 60 min, others 24 h).
DEFAULT_SLA_MIN = {"orders": 15, "events": 60}


def sla_minutes() -> dict[str, int]:
    """SLA per source, EW_SLA_<SOURCE>_MIN overriding the defaults; read now, not at import."""
    from dagster_project.lib.contract import SOURCE_NAMES

    return {s: int(os.environ.get(f"EW_SLA_{s.upper()}_MIN", DEFAULT_SLA_MIN.get(s, 24 * 60)))
            for s in SOURCE_NAMES}


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
        "DO_NOT_TRACK": "1",
    }
