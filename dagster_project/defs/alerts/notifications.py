"""Pipeline notifications (a failed run, a missed delivery deadline) and the morning digest (日报),
sent to the alert destinations (dagster_project/lib/alerts/)."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.defs.alerts.resources import AlertsResource
from dagster_project.defs.resources import WarehouseResource
from dagster_project.lib.alerts.digest import build_digest
from dagster_project.lib.alerts.notify import apprise_send
from dagster_project.lib.alerts.pipeline import dagster_url, notify_failed_run, notify_missed_deliveries


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dg.run_failure_sensor(name="pipeline_failure_notifier", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Sends the failed steps, critical checks and files of a failed run "
                                   "to EW_ALERT_URLS (once per run).")
def pipeline_failure_notifier(context: dg.RunFailureSensorContext, alerts: AlertsResource):
    status = notify_failed_run(context.instance, context.dagster_run.run_id, alerts.settings(), alerts.store(),
                               _now(), dagster_url())
    context.log.info(f"run {context.dagster_run.run_id}: notification {status}")


@dg.sensor(name="delivery_deadline", minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
           description="After EW_DELIVERY_DEADLINE (business time, default 07:00), every source that delivers "
                       "daily must have yesterday's file; a missing one is announced once.")
def delivery_deadline(context: dg.SensorEvaluationContext, warehouse: WarehouseResource, alerts: AlertsResource):
    results = notify_missed_deliveries(Path(warehouse.landing_dir), alerts.settings(), alerts.store(), _now())
    if not results:
        return dg.SkipReason("every daily source has delivered (or the deadline has not passed)")
    return dg.SkipReason("; ".join(f"{m.source} {m.expected_date}: {status}" for m, status in results))


@dg.op(description="Builds the morning digest from the published copy and sends it to EW_ALERT_URLS.")
def send_daily_digest(context: dg.OpExecutionContext, warehouse: WarehouseResource, alerts: AlertsResource) -> None:
    cfg = alerts.settings()
    serving = warehouse.published_path
    if not serving.exists():
        context.log.warning(f"no published copy at {serving} yet: no digest")
        return
    con = duckdb.connect(str(serving), read_only=True)
    try:
        title, body = build_digest(con, cfg.language or "zh", cfg.public_url)
    finally:
        con.close()
    context.log.info(f"{title}\n{body}")
    urls = cfg.urls_for("digest")
    if urls and not apprise_send(urls, title, body, failed=False):
        raise dg.Failure(f"the digest could not be delivered to {len(urls)} destination(s)")


@dg.job(name="daily_digest", description="The morning digest (日报).")
def daily_digest_job():
    send_daily_digest()


daily_digest_schedule = dg.ScheduleDefinition(
    name="daily_digest_0830",
    job=daily_digest_job,
    cron_schedule="30 8 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="日报 at 08:30, after the 06:00 rebuild.",
)
