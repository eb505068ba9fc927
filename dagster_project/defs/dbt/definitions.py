from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_project.defs.dbt.assets import dbt_models
from dagster_project.defs.dbt.freshness import build_freshness_checks, build_freshness_sensor
from dagster_project.defs.dbt.project import dbt_project
from dagster_project.lib.procs import dbt_executable

freshness_checks = build_freshness_checks(dbt_project.manifest_path)

defs = dg.Definitions(
    assets=[dbt_models],
    asset_checks=freshness_checks,
    sensors=[build_freshness_sensor(freshness_checks)],
    resources={
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            profiles_dir=str(dbt_project.profiles_dir),
            # this environment's dbt (on PATH or not), in a process that dies with the run
            dbt_executable=dbt_executable(),
        )
    },
)
