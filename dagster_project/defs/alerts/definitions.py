import dagster as dg

from dagster_project.defs.alerts.assets import mart_metric_alerts
from dagster_project.defs.alerts.notifications import (
    daily_digest_job,
    daily_digest_schedule,
    delivery_deadline,
    pipeline_failure_notifier,
)
from dagster_project.defs.alerts.resources import alerts_resource

defs = dg.Definitions(
    assets=[mart_metric_alerts],
    jobs=[daily_digest_job],
    schedules=[daily_digest_schedule],
    sensors=[pipeline_failure_notifier, delivery_deadline],
    resources={"alerts": alerts_resource()},
)
