"""The dbt project as Dagster sees it. Its manifest is parsed into EW_HOME (never into the repo)."""

from __future__ import annotations

from pathlib import Path

from dagster_dbt import DbtProject

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
    # `dagster dev` would parse only in dev mode; `ecomwh run` and tests need a fresh manifest too.
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(DBT_PROJECT_DIR):
        project.preparer.prepare(project)
    return project


dbt_project = build_dbt_project()
