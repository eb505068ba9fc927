import dagster as dg

from dagster_project.defs.quality.checks import build_suite_checks, quality_resource

defs = dg.Definitions(asset_checks=build_suite_checks(), resources={"quality": quality_resource()})
