from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_project.defs.dbt.assets import dbt_models
from dagster_project.defs.dbt.project import dbt_project

defs = dg.Definitions(
    assets=[dbt_models],
    resources={
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            profiles_dir=str(dbt_project.profiles_dir),
            # the dbt of this interpreter's environment, whether or not the venv is on PATH
            dbt_executable=str(Path(sys.executable).parent / "dbt"),
        )
    },
)
