import dagster as dg

from dagster_project.defs.quality.checks import build_suite_checks, quality_resource
from dagster_project.defs.quality.docs import ge_data_docs_after_failure, ge_data_docs_after_success

defs = dg.Definitions(
    asset_checks=build_suite_checks(),
    sensors=[ge_data_docs_after_success, ge_data_docs_after_failure],
    resources={"quality": quality_resource()},
)
