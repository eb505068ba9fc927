"""Pipeline notifications (a failed run, a missed delivery deadline), the morning digest, and the
Prometheus /metrics endpoint scraped over HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from datetime import date, datetime, timedelta

import dagster as dg
import duckdb
import pytest
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from dagster_project.lib import metrics_exporter
from dagster_project.lib.alerts.digest import build_digest
from dagster_project.lib.alerts.notify import StateStore
from dagster_project.lib.alerts.pipeline import missed_deliveries, notify_failed_run, notify_missed_deliveries
from dagster_project.settings import get_alert_settings


class Outbox:
    """A Sender that keeps what it was asked to send."""

    def __init__(self):
        self.sent = []

    def __call__(self, urls, title, body, failed):
        self.sent.append((urls, title, body))
        return True


def test_a_failed_run_names_the_step_the_check_and_the_file_once(ew_home, monkeypatch):
    @dg.asset
    def raw_orders():
        raise ValueError("orders_20261114.csv: row 7 column pay_amount: not a number")

    @dg.asset
    def quality_gate():
        return 1

    @dg.asset_check(asset=quality_gate, blocking=True)
    def ge_raw_events():
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   metadata={"summary": "2 critical failures in events_20261114_2.jsonl"})

    monkeypatch.setenv("EW_ALERT_URLS", "json://127.0.0.1:9/unused")
    monkeypatch.setenv("EW_ALERT_LANGUAGE", "en")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([raw_orders], instance=instance, raise_on_error=False)
        check = dg.materialize([quality_gate, ge_raw_events], instance=instance, raise_on_error=False)
        assert not result.success
        outbox = Outbox()
        store = StateStore(ew_home.home / "alerts" / "n.sqlite")
        now = datetime(2026, 11, 15)
        cfg = get_alert_settings()
        assert notify_failed_run(instance, result.run_id, cfg, store, now, "http://127.0.0.1:3000", outbox) == "sent"
        assert notify_failed_run(instance, result.run_id, cfg, store, now, "http://127.0.0.1:3000", outbox) \
            == "already_sent"
        notify_failed_run(instance, check.run_id, cfg, store, now, "http://127.0.0.1:3000", outbox)
    (urls, title, body), (_, _, check_body) = outbox.sent
    assert urls == ["json://127.0.0.1:9/unused"] and title == "[PIPELINE FAILED] The warehouse run failed"
    assert "Failed step: raw_orders - " in body and "orders_20261114.csv: row 7 column pay_amount" in body
    assert "Files: orders_20261114.csv" in body and f"/runs/{result.run_id}" in body
    assert "Critical check failed: ge_raw_events on quality_gate" in check_body
    assert "events_20261114_2.jsonl" in check_body


def test_a_daily_source_missing_yesterdays_file_after_the_deadline_is_announced_once(ew_home, monkeypatch):
    landing = ew_home.landing_dir
    # orders every day up to 11-14; products only once; marketing_touches every day too, during a
    # campaign, but the contract says touches are sent only when a campaign runs: not expected daily
    for d in range(1, 15):
        day = date(2026, 11, d)
        for source in ("orders", "marketing_touches"):
            (landing / source).mkdir(exist_ok=True)
            (landing / source / f"{source}_{day:%Y%m%d}.csv").write_text("x\n")
    (landing / "products").mkdir(exist_ok=True)
    (landing / "products" / "products_20261101.csv").write_text("x\n")
    before = datetime(2026, 11, 15, 22, 0)   # 06:00 on 11-16 in Shanghai: before the 07:00 deadline
    after = datetime(2026, 11, 15, 23, 30)   # 07:30
    assert missed_deliveries(landing, before, "Asia/Shanghai", "07:00") == []
    missed = missed_deliveries(landing, after, "Asia/Shanghai", "07:00")
    assert [(m.source, m.expected_date, m.newest_file) for m in missed] == [
        ("orders", date(2026, 11, 15), "orders_20261114.csv")]

    monkeypatch.setenv("EW_ALERT_URLS", "json://127.0.0.1:9/unused")
    outbox = Outbox()
    store = StateStore(ew_home.home / "alerts" / "n.sqlite")
    first = notify_missed_deliveries(landing, get_alert_settings(), store, after, outbox)
    again = notify_missed_deliveries(landing, get_alert_settings(), store, after + timedelta(minutes=5), outbox)
    assert [s for _, s in first] == ["sent"] and [s for _, s in again] == ["already_sent"]
    assert outbox.sent[0][1] == "【数据未送达】orders 未在 07:00 前送达 2026-11-15 的文件"
    assert "最新文件：orders_20261114.csv" in outbox.sent[0][2]


def serving_copy(path, day: date) -> None:
    """A published copy with the marts the digest and the exporter read, filled by hand."""
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.fct_orders (order_date date, is_valid boolean, pay_amount decimal(18,2), "
                "customer_key varchar)")
    # the day: 3 orders (300 yuan), the day before: 2 (100), a week before: 4 (400)
    rows = [(day, True, 100, "a"), (day, True, 100, "b"), (day, True, 100, "b"), (day, False, 999, "c"),
            (day - timedelta(days=1), True, 50, "a"), (day - timedelta(days=1), True, 50, "d"),
            *[(day - timedelta(days=7), True, 100, k) for k in "abcd"]]
    con.executemany("insert into marts.fct_orders values (?, ?, ?, ?)", rows)
    con.execute("create table marts.mart_kpi_targets (target_id varchar, period_start date, metric_name_zh varchar, "
                "metric_name_en varchar, unit varchar, actual_value double, target_value double, "
                "direction varchar, status varchar)")
    con.execute("insert into marts.mart_kpi_targets values ('d1', date '2026-11-01', '新用户次日留存率', "
                "'New-user D1 retention', 'share', 0.25, 0.40, 'at_least', 'missed')")
    con.execute("create table marts.mart_data_quality (check_name varchar, source varchar, check_date date, "
                "status varchar, value double, threshold double, rows_checked bigint)")
    con.executemany("insert into marts.mart_data_quality values (?, ?, ?, ?, ?, ?, ?)", [
        ("freshness", "orders", day, "warn", 2000.0, 15.0, 10),
        ("quarantined_rows", "orders", day - timedelta(days=1), "warn", 3.0, 0.0, 100),
        ("quarantined_rows", "orders", day, "pass", 0.0, 0.0, 50),
        ("tracking_coverage", "events", day - timedelta(days=1), "fail", 0.9, 0.98, 40),
        ("tracking_coverage", "events", day, "pass", 0.99, 0.98, 40)])
    con.execute("create table marts.mart_metric_alerts (rule_id varchar, team varchar, severity varchar, "
                "dims varchar, metric_date date, state varchar, title_zh varchar, title_en varchar, "
                "since date, value double, unit varchar, chart varchar)")
    con.executemany("insert into marts.mart_metric_alerts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        ("ops.pay", "ops", "critical", "platform=ios", day - timedelta(days=1), "firing", "支付成功率下降",
         "Payment success dropped", day - timedelta(days=1), 0.6, "share", "funnel"),
        ("ops.pay", "ops", "critical", "platform=ios", day, "not_evaluated", "支付成功率下降",
         "Payment success dropped", None, None, "share", "funnel"),
        ("ops.pay", "ops", "critical", "platform=web", day, "resolved", "支付成功率下降",
         "Payment success dropped", day - timedelta(days=2), 0.95, "share", "funnel"),
        ("growth.d1", "growth", "warning", "", day, "ok", "留存", "Retention", None, 0.4, "share", "cohorts")])
    con.close()
    (path.parent / "published.json").write_text(json.dumps({"published_at": "2026-11-15T07:05:00+00:00"}))


def test_the_morning_digest_compares_with_yesterday_last_week_and_target_and_lists_firing_alerts(tmp_path):
    day = date(2026, 11, 15)
    db = tmp_path / "warehouse.duckdb"
    serving_copy(db, day)
    con = duckdb.connect(str(db), read_only=True)
    title, body = build_digest(con, "zh", "http://bi.example.com")
    en_title, en_body = build_digest(con, "en", "http://bi.example.com")
    con.close()
    assert title == "数据日报 2026-11-15" and en_title == "Daily report 2026-11-15"
    # GMV 300 vs 100 the day before (+200%) and 400 a week before (-25%); AOV 100 vs 50 and 100
    assert "GMV：¥300（较前日 +200.0%，较上周同日 -25.0%）" in body
    assert "买家数：2（较前日 +0.0%，较上周同日 -50.0%）" in body
    assert "AOV: ¥100 (vs previous day +100.0%, vs same weekday last week +0.0%)" in en_body
    assert "- 新用户次日留存率: 25.0% / ≥ 40.0% (missed)" in body
    assert "正在告警: 1" in body
    assert "- Payment success dropped [platform=ios]: 60.0%, since 2026-11-14 " \
           "http://bi.example.com/superset/dashboard/funnel/" in en_body


def test_metrics_endpoint_serves_warehouse_state_parsed_by_prometheus_client(ew_home):
    serving_copy(ew_home.serving_path, date(2026, 11, 15))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, thread = start_http_server(port, addr="127.0.0.1",
                                       registry=metrics_exporter.registry(ew_home, read_runs=False))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    finally:
        server.shutdown()
        thread.join(5)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("ew_source_freshness_minutes", (("source", "orders"),))] == 2000
    assert samples[("ew_source_sla_minutes", (("source", "orders"),))] == 15
    assert samples[("ew_source_rows_landed_total", (("source", "orders"),))] == 150
    assert samples[("ew_source_rows_quarantined_total", (("source", "orders"),))] == 3
    # the latest day of each check: coverage passed on 11-15 after failing on 11-14
    assert samples[("ew_quality_check_status", (("check", "tracking_coverage"), ("source", "events")))] == 0
    assert samples[("ew_quality_check_status", (("check", "freshness"), ("source", "orders")))] == 1
    # ios: latest evaluated date is firing (the not_evaluated 11-15 does not change it); web resolved
    firing = {k[1]: v for k, v in samples.items() if k[0] == "ew_alert_firing"}
    assert firing[(("dims", "platform=ios"), ("rule", "ops.pay"), ("severity", "critical"), ("team", "ops"))] == 1
    assert firing[(("dims", "platform=web"), ("rule", "ops.pay"), ("severity", "critical"), ("team", "ops"))] == 0
    assert firing[(("dims", ""), ("rule", "growth.d1"), ("severity", "warning"), ("team", "growth"))] == 0
    assert samples[("ew_published_timestamp_seconds", ())] == datetime.fromisoformat(
        "2026-11-15T07:05:00+00:00").timestamp()
    assert samples[("ew_scrape_errors", (("part", "serving"),))] == 0


def test_metrics_report_the_last_runs_status_and_duration(ew_home):
    @dg.asset
    def ok_asset():
        return 1

    @dg.asset
    def bad_asset():
        raise ValueError("boom")

    with dg.DagsterInstance.get() as instance:
        dg.materialize([ok_asset], instance=instance)
        dg.materialize([bad_asset], instance=instance, raise_on_error=False)
    text = "\n".join(f"{s.name} {s.labels} {s.value}" for fam in metrics_exporter.registry(ew_home).collect()
                     for s in fam.samples)
    # materialize() runs are named __ephemeral_asset_job__; the latest finished one failed
    assert "ew_last_run_status {'job': '__ephemeral_asset_job__'} 0" in text
    assert "ew_runs_total {'job': '__ephemeral_asset_job__', 'status': 'success'} 1" in text
    assert "ew_runs_total {'job': '__ephemeral_asset_job__', 'status': 'failure'} 1" in text
    assert "ew_scrape_errors {'part': 'runs'} 0" in text
    assert "ew_scrape_errors {'part': 'serving'} 1" in text   # no published copy in this EW_HOME
