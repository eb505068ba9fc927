from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_project.defs.dbt.assets import dbt_models
from dagster_project.defs.dbt.project import dbt_project

defs = dg.Definitions(
    assets=[dbt_models],
    resources={"dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(dbt_project.profiles_dir))},
)
