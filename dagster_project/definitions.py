"""Merges the definitions of each integration folder under defs/; nothing else lives here."""

import dagster as dg

from dagster_project.defs import jobs
from dagster_project.defs.alerts import definitions as alert_defs
from dagster_project.defs.dbt import definitions as dbt_defs
from dagster_project.defs.ingest import definitions as ingest_defs
from dagster_project.defs.models import definitions as model_defs
from dagster_project.defs.quality import definitions as quality_defs
from dagster_project.defs.serving import definitions as serving_defs

defs = dg.Definitions.merge(
    ingest_defs.defs, dbt_defs.defs, model_defs.defs, quality_defs.defs, serving_defs.defs, alert_defs.defs,
    jobs.defs,
)
