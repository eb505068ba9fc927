from __future__ import annotations

import dagster as dg

from dagster_project.defs.ingest.assets import raw_assets
from dagster_project.defs.ingest.imports import platform_imports
from dagster_project.defs.resources import warehouse_resource

defs = dg.Definitions(assets=[platform_imports, *raw_assets], resources={"warehouse": warehouse_resource()})
