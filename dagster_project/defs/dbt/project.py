"""The dbt project as Dagster sees it. Its manifest is parsed into EW_HOME (never into the repo).

Importing this module parses nothing: whoever loads the definitions prepares the project first
(`prepare_dbt_project()`: `ecomwh run` and `ecomwh serve` before they load them, the tests in
conftest.py), and `dagster dev` prepares it through dagster-dbt's own `prepare_if_dev()`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import DagsterDbtProjectPreparer

from dagster_project.lib.procs import dbt_executable
from dagster_project.settings import DBT_PROJECT_DIR, get_settings


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for pattern in ("dbt_project.yml", "profiles.yml", "models/**/*", "macros/**/*", "tests/**/*"):
        for p in project_dir.glob(pattern):
            if p.is_file():
                newest = max(newest, p.stat().st_mtime)
    return newest


class EwDbtProjectPreparer(DagsterDbtProjectPreparer):
    """dagster-dbt's preparer runs `dbt` from PATH with its logs beside the manifest; ours runs this
    environment's dbt (it need not be on PATH), and only when the manifest is older than the project."""

    def prepare(self, project: DbtProject) -> None:
        import fcntl

        manifest = project.manifest_path
        manifest.parent.mkdir(parents=True, exist_ok=True)
        # `ecomwh serve` and an `ecomwh run` may prepare at once: one parses, the other then finds it fresh
        with open(manifest.parent / ".prepare.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime(Path(project.project_dir)):
                return
            parse_manifest(project)


class EwDbtProject(DbtProject):
    @property
    def preparer(self) -> EwDbtProjectPreparer:  # DbtProject takes no preparer argument
        return EwDbtProjectPreparer()


def build_dbt_project() -> EwDbtProject:
    settings = get_settings()
    return EwDbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR,
                        target_path=settings.dbt_target_dir)


def parse_manifest(project: DbtProject) -> None:
    """`dbt parse` with this environment's dbt (it need not be on PATH), into EW_HOME."""
    settings = get_settings()
    env = {**os.environ, "DBT_LOG_PATH": str(settings.dbt_log_dir),
           "EW_DUCKDB_PATH": os.environ.get("EW_DUCKDB_PATH", str(settings.duckdb_path)),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if settings.dbt_shared_dir:  # state folders of one checkout: start from another one's parse
        cmd = [sys.executable, "-m", "dagster_project.lib.dbt_parse_seed", str(project.project_dir),
               str(project.profiles_dir), str(project.target_path), str(settings.dbt_shared_dir)]
    else:
        cmd = [dbt_executable(), "parse", "--quiet",
               "--project-dir", str(project.project_dir), "--profiles-dir", str(project.profiles_dir),
               "--target-path", str(project.target_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not project.manifest_path.exists():
        raise RuntimeError(f"dbt parse failed for {project.project_dir}:\n{proc.stdout}{proc.stderr}")


def prepare_dbt_project() -> Path:
    """A manifest as new as the project's files, before anything loads the definitions."""
    dbt_project.preparer.prepare(dbt_project)
    return dbt_project.manifest_path


def require_manifest() -> Path:
    if not dbt_project.manifest_path.exists():
        raise FileNotFoundError(
            f"no dbt manifest at {dbt_project.manifest_path}: prepare the dbt project before loading the "
            "definitions (dagster_project.defs.dbt.project.prepare_dbt_project(); `ecomwh run`, `ecomwh "
            "serve` and `dagster dev` do it themselves)")
    return dbt_project.manifest_path


dbt_project = build_dbt_project()
dbt_project.prepare_if_dev()
