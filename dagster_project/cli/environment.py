"""The state folder ecomwh works in: EW_HOME with Dagster's instance inside it, private to its owner."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from dagster_project.settings import Settings, export_env, get_settings

DAGSTER_YAML = """\
# Written by ecomwh: Dagster's instance lives inside EW_HOME.
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  pools:
    # every writer of the DuckDB file is in the duckdb_writer pool: one at a time
    default_limit: 1
# Dagster's SQLite event log, with its files kept open between events (lib/dagster_storage.py)
event_log_storage:
  module: dagster_project.lib.dagster_storage
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {events_dir}
"""


def dagster_yaml(settings: Settings) -> str:
    """dagster.yaml for this state folder: Dagster's own layout (history/runs/ holds the event log)."""
    return DAGSTER_YAML.format(events_dir=json.dumps(str(settings.dagster_home / "history" / "runs")))



def prepare_environment() -> Settings:
    settings = get_settings()
    settings.ensure_dirs()
    make_private(settings.home)
    os.environ.update(export_env(settings))
    os.environ["EW_QUARANTINE_DIR"] = str(settings.quarantine_dir)
    dagster_yaml_path = settings.dagster_home / "dagster.yaml"
    text = dagster_yaml(settings)
    if not dagster_yaml_path.exists() or dagster_yaml_path.read_text() != text:
        dagster_yaml_path.write_text(text)
    return settings


PRIVATE_STAMP = ".private"


def make_private(home: Path) -> None:
    """Only the owner may read EW_HOME: it holds the warehouse, Superset's password hashes and SQL
    Lab history, the refused rows and the logs. A 0700 folder already keeps everything in it from
    other users; new files are also 0600 by the umask `main` sets, and what an older version left
    readable is fixed once per state folder (symlinks are not followed): walking months of Dagster
    history at every command would cost seconds."""
    os.chmod(home, 0o700)
    if (home / PRIVATE_STAMP).exists():
        return
    for root, _, files in os.walk(home):  # every folder is a root once; files in their folder
        for name in [None, *files]:
            path = os.path.join(root, name) if name else root
            try:
                st = os.lstat(path)
                if st.st_mode & 0o077 and not stat.S_ISLNK(st.st_mode):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
            except OSError:
                continue  # vanished meanwhile, or not ours: the owner's files are what matters
    (home / PRIVATE_STAMP).touch()
