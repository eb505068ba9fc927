import dagster as dg

from dagster_project.defs.alerts.assets import mart_metric_alerts

defs = dg.Definitions(assets=[mart_metric_alerts])
