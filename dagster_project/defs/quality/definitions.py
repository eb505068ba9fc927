import dagster as dg

from dagster_project.defs.quality.checks import build_suite_checks, quality_resource
from dagster_project.defs.quality.mart_data_quality import mart_data_quality

defs = dg.Definitions(
    assets=[mart_data_quality],
    asset_checks=build_suite_checks(),
    resources={"quality": quality_resource()},
)
