"""The pipeline job (every asset, in process: no per-step Python start-up), its schedule and sensor."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.ingest.sensors import build_landing_sensor

pipeline_job = dg.define_asset_job(
    "pipeline",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Ingest every landed file, then build every dbt model and run its tests.",
)

daily_schedule = dg.ScheduleDefinition(
    name="daily_pipeline",
    job=pipeline_job,
    cron_schedule="0 6 * * *",
    execution_timezone="Asia/Shanghai",
    description="Morning rebuild before operations staff open their dashboards.",
)

defs = dg.Definitions(
    jobs=[pipeline_job],
    schedules=[daily_schedule],
    sensors=[build_landing_sensor(pipeline_job)],
)
