"""Prometheus metrics of the warehouse on http://127.0.0.1:<EW_METRICS_PORT>/metrics (default 9464).

Started by `ecomwh serve`. Every scrape reads the published read-only copy (never the pipeline's
file, whose writer lock a run holds) and the Dagster instance's run history:

| metric | labels | from |
|---|---|---|
| ew_source_freshness_minutes | source | age of the newest data at the last run (mart_data_quality freshness) |
| ew_source_sla_minutes | source | the freshness SLA |
| ew_source_rows_landed_total / _quarantined_total | source | rows landed / quarantined (mart_data_quality) |
| ew_quality_check_status | check, source | latest day's status: 0 pass, 1 warn, 2 fail |
| ew_alert_firing | rule, team, severity, dims | 1 when the rule's latest evaluated date is firing, else 0 |
| ew_published_timestamp_seconds | | when the read-only copy was published |
| ew_last_run_status / _duration_seconds / _end_timestamp_seconds | job | the job's latest finished run (1 success, 0 failure) |
| ew_runs_total | job, status | finished runs among the last 200 |
| ew_scrape_errors | part | 1 when that part could not be read this scrape |

docs/prometheus.yml and docs/prometheus-alerts.yml are a sample scrape config and alert rules.
"""  # noqa: E501 (a table's rows)

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily

from dagster_project.lib import dbt_outputs
from dagster_project.settings import REPO_ROOT, Settings, get_settings

DEFAULT_PORT = 9464
STATUS_CODE = {"pass": 0, "warn": 1, "fail": 2}


def port() -> int:
    return int(os.environ.get("EW_METRICS_PORT", str(DEFAULT_PORT)))




class WarehouseCollector:
    def __init__(self, settings: Settings, read_runs: bool = True):
        self.settings = settings
        self.read_runs = read_runs

    def collect(self):
        errors = GaugeMetricFamily("ew_scrape_errors", "1 when that part could not be read this scrape",
                                   labels=["part"])
        for part, fn in (("serving", self._serving), ("runs", self._runs)):
            if part == "runs" and not self.read_runs:
                continue
            try:
                yield from fn()
                errors.add_metric([part], 0)
            except Exception:  # noqa: BLE001 - a missing copy or a busy instance is a metric, not a 500
                errors.add_metric([part], 1)
        yield errors

    def _serving(self):
        import duckdb

        published = self.settings.serving_path.parent / "published.json"
        if published.exists():
            at = json.loads(published.read_text())["published_at"]
            g = GaugeMetricFamily("ew_published_timestamp_seconds", "When the read-only copy was published")
            g.add_metric([], datetime.fromisoformat(at).timestamp())
            yield g
        con = duckdb.connect(str(self.settings.serving_path), read_only=True)
        try:
            yield from self._quality(con)
            yield from self._alerts(con)
        finally:
            con.close()

    def _quality(self, con):
        reads = dbt_outputs.exposure_tables("warehouse_monitoring")
        if not dbt_outputs.columns_in(con, reads.sql("{mart_data_quality}")):
            return
        fresh = GaugeMetricFamily("ew_source_freshness_minutes", "Age of the newest data at the last run",
                                  labels=["source"])
        sla = GaugeMetricFamily("ew_source_sla_minutes", "Freshness SLA", labels=["source"])
        for source, value, threshold in con.execute(reads.sql("""
                select source, value, threshold from {mart_data_quality}
                where check_name = 'freshness'
                qualify row_number() over (partition by source order by check_date desc) = 1""")).fetchall():
            if value is not None:
                fresh.add_metric([source], value)
            if threshold is not None:
                sla.add_metric([source], threshold)
        landed = GaugeMetricFamily("ew_source_rows_landed_total", "Rows landed", labels=["source"])
        quarantined = GaugeMetricFamily("ew_source_rows_quarantined_total", "Rows quarantined", labels=["source"])
        for source, n_landed, n_quarantined in con.execute(reads.sql("""
                select source, sum(rows_checked), sum(value) from {mart_data_quality}
                where check_name = 'quarantined_rows' group by source order by source""")).fetchall():
            landed.add_metric([source], n_landed or 0)
            quarantined.add_metric([source], n_quarantined or 0)
        status = GaugeMetricFamily("ew_quality_check_status", "Latest status: 0 pass, 1 warn, 2 fail",
                                   labels=["check", "source"])
        for check, source, st in con.execute(reads.sql("""
                select check_name, source, status from {mart_data_quality}
                qualify row_number() over (partition by check_name, source order by check_date desc) = 1
                order by 1, 2""")).fetchall():
            status.add_metric([check, source], STATUS_CODE.get(st, 2))
        yield from (fresh, sla, landed, quarantined, status)

    def _alerts(self, con):
        reads = dbt_outputs.exposure_tables("warehouse_monitoring")
        if not dbt_outputs.columns_in(con, reads.sql("{mart_metric_alerts}")):
            return
        g = GaugeMetricFamily("ew_alert_firing", "1 when the rule's latest evaluated date is firing",
                              labels=["rule", "team", "severity", "dims"])
        for rule, team, severity, dims, state in con.execute(reads.sql("""
                select rule_id, team, severity, dims, state from {mart_metric_alerts}
                where state <> 'not_evaluated'
                qualify row_number() over (partition by rule_id, dims order by metric_date desc) = 1
                order by 1, 4""")).fetchall():
            g.add_metric([rule, team, severity, dims], 1 if state == "firing" else 0)
        yield g

    def _runs(self):
        import dagster as dg

        status = GaugeMetricFamily("ew_last_run_status", "Latest finished run: 1 success, 0 failure", labels=["job"])
        duration = GaugeMetricFamily("ew_last_run_duration_seconds", "Latest finished run's duration", labels=["job"])
        ended = GaugeMetricFamily("ew_last_run_end_timestamp_seconds", "Latest finished run's end", labels=["job"])
        totals = GaugeMetricFamily("ew_runs_total", "Finished runs among the last 200", labels=["job", "status"])
        finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
        with dg.DagsterInstance.get() as instance:
            records = instance.get_run_records(filters=dg.RunsFilter(statuses=finished), limit=200)
        seen, counts = set(), {}
        for rec in records:  # newest first
            job, st = rec.dagster_run.job_name, rec.dagster_run.status.value.lower()
            counts[(job, st)] = counts.get((job, st), 0) + 1
            if job in seen or rec.start_time is None or rec.end_time is None:
                continue
            seen.add(job)
            status.add_metric([job], 1 if st == "success" else 0)
            duration.add_metric([job], rec.end_time - rec.start_time)
            ended.add_metric([job], rec.end_time)
        for (job, st), n in sorted(counts.items()):
            totals.add_metric([job, st], n)
        yield from (status, duration, ended, totals)


def registry(settings: Settings, read_runs: bool = True) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(WarehouseCollector(settings, read_runs))
    return reg


def start(settings: Settings, spawn) -> int:
    """Start the exporter as a service of `ecomwh serve` (spawn: cli/serve.py's _spawn); returns its port."""
    p = port()
    # spawn puts the command in its own session and records it by PID and start time
    spawn(settings, "metrics", [sys.executable, "-m", "dagster_project.lib.metrics_exporter", "--port", str(p)],
          os.environ.copy(), REPO_ROOT)
    return p


def main(argv: list[str] | None = None) -> int:
    from prometheus_client import start_http_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=port())
    args = parser.parse_args(argv)
    start_http_server(args.port, addr="127.0.0.1", registry=registry(get_settings()))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
