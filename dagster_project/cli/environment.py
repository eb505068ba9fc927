"""The state folder ecomwh works in: EW_HOME with Dagster's instance inside it, private to its owner."""

from __future__ import annotations

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
"""



def prepare_environment() -> Settings:
    settings = get_settings()
    settings.ensure_dirs()
    make_private(settings.home)
    os.environ.update(export_env(settings))
    os.environ["EW_QUARANTINE_DIR"] = str(settings.quarantine_dir)
    dagster_yaml = settings.dagster_home / "dagster.yaml"
    if not dagster_yaml.exists() or dagster_yaml.read_text() != DAGSTER_YAML:
        dagster_yaml.write_text(DAGSTER_YAML)
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
