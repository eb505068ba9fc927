"""The dbt project as Dagster sees it. Its manifest is parsed into EW_HOME (never into the repo)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dagster_dbt import DbtProject

from dagster_project.lib.procs import dbt_executable
from dagster_project.settings import DBT_PROJECT_DIR, get_settings


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for pattern in ("dbt_project.yml", "profiles.yml", "models/**/*", "macros/**/*", "tests/**/*"):
        for p in project_dir.glob(pattern):
            if p.is_file():
                newest = max(newest, p.stat().st_mtime)
    return newest


def build_dbt_project() -> DbtProject:
    settings = get_settings()
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR,
        profiles_dir=DBT_PROJECT_DIR,
        target_path=settings.dbt_target_dir,
    )
    manifest = project.manifest_path
    # Dagster would parse only under `dagster dev`; `ecomwh run`, the UI and tests need a fresh manifest too.
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(DBT_PROJECT_DIR):
        parse_manifest(project)
    return project


def parse_manifest(project: DbtProject) -> None:
    """`dbt parse` with this environment's dbt (it need not be on PATH), into EW_HOME."""
    settings = get_settings()
    env = {**os.environ, "DBT_LOG_PATH": str(settings.dbt_log_dir),
           "EW_DUCKDB_PATH": os.environ.get("EW_DUCKDB_PATH", str(settings.duckdb_path)),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    proc = subprocess.run(
        [dbt_executable(), "parse", "--quiet",
         "--project-dir", str(project.project_dir), "--profiles-dir", str(project.profiles_dir),
         "--target-path", str(project.target_path)],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0 or not project.manifest_path.exists():
        raise RuntimeError(f"dbt parse failed for {project.project_dir}:\n{proc.stdout}{proc.stderr}")


dbt_project = build_dbt_project()
