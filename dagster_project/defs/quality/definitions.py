import dagster as dg

from dagster_project.defs.quality.checks import build_suite_checks, quality_resource
from dagster_project.defs.quality.docs import ge_data_docs_after_failure, ge_data_docs_after_success
from dagster_project.defs.quality.mart_data_quality import mart_data_quality

defs = dg.Definitions(
    assets=[mart_data_quality],
    asset_checks=build_suite_checks(),
    sensors=[ge_data_docs_after_success, ge_data_docs_after_failure],
    resources={"quality": quality_resource()},
)
