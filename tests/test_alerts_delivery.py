"""Alert delivery through apprise to a local webhook receiver and a local SMTP server (aiosmtpd):
one message when an alert fires, one when it resolves, nothing repeated, quiet hours, failures retried;
and the evaluation of rules on a real DuckDB file into marts.mart_metric_alerts."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from datetime import date, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, HTTPServer

import duckdb
import polars as pl
import pytest

from dagster_project.lib.alerts.engine import current_states, evaluate
from dagster_project.lib.alerts.evaluate import alerts_mart, evaluate_all, write_alerts
from dagster_project.lib.alerts.notify import StateStore, deliver, due_events
from dagster_project.lib.alerts.rules import load_team_file
from dagster_project.settings import get_alert_settings

DAYS = [date(2026, 7, 1) + timedelta(days=i) for i in range(6)]
NOON_SHANGHAI = datetime(2026, 7, 7, 4, 0)      # 12:00 business time
NIGHT_SHANGHAI = datetime(2026, 7, 7, 15, 0)    # 23:00 business time

RULES = """\
team: growth
language: zh
rules:
  - name: d7_floor
    title: {zh: 7日留存低于80%, en: D7 retention under 80%}
    metric: {table: mart_activity_retention, date: registration_date, value: d7_rate, agg: mean, unit: share}
    threshold: {below: 80%}
    chart: cohorts
  - name: pay_floor
    title: {zh: 支付成功率低于90%, en: Payment success under 90%}
    metric: {table: mart_funnel_daily, date: event_date, value: rate, by: [platform], unit: share}
    threshold: {below: 90%}
    severity: critical
    chart: funnel
"""


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self):
        self.payloads: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.payloads.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def rules(tmp_path):
    path = tmp_path / "growth.yml"
    path.write_text(RULES)
    return {r.rule_id: r for r in load_team_file(path)}


def frame(rules, d7: list[float | None], pay: dict[str, list[float]]) -> pl.DataFrame:
    """Evaluations of both rules on hand-built series, as mart_metric_alerts holds them."""
    now = datetime(2026, 7, 7)
    d7_series = pl.DataFrame({"metric_date": DAYS, "dims": [""] * len(DAYS), "value": d7})
    pay_series = pl.concat([pl.DataFrame({"metric_date": DAYS, "dims": [f"platform={p}"] * len(DAYS), "value": v})
                            for p, v in pay.items()])
    return pl.concat([evaluate(rules["growth.d7_floor"], d7_series, None, now),
                      evaluate(rules["growth.pay_floor"], pay_series, None, now)])


def settings(monkeypatch, urls: str, quiet: str | None = None):
    monkeypatch.setenv("EW_ALERT_URLS", urls)
    monkeypatch.setenv("EW_PUBLIC_URL", "http://bi.example.com")
    if quiet:
        monkeypatch.setenv("EW_ALERT_QUIET_HOURS", quiet)
    return get_alert_settings()


def test_one_message_on_fire_one_on_resolve_and_no_repeats(ew_home, monkeypatch, receiver, rules, tmp_path):
    cfg = settings(monkeypatch, receiver.url)
    store = StateStore(tmp_path / "state.sqlite")
    good = {"ios": [0.95] * 6, "android": [0.95] * 6}

    # run 1: D7 retention under 80% on the last two days -> one fire message
    run1 = frame(rules, [0.9, 0.85, 0.9, 0.88, 0.7, 0.72], good)
    sent = deliver(current_states(run1), cfg, store, NOON_SHANGHAI, rules)
    assert [(d.rule_id, d.event, d.status) for d in sent] == [("growth.d7_floor", "fire", "sent")]
    assert len(receiver.payloads) == 1
    msg = receiver.payloads[0]
    assert msg["title"] == "【告警】7日留存低于80%"
    assert "数值 72.0%" in msg["message"] and "阈值 80.0%" in msg["message"]
    assert "原因：低于下限 80.0%" in msg["message"] and "开始日期：2026-07-05" in msg["message"]
    assert "http://bi.example.com/superset/dashboard/cohorts/" in msg["message"]
    assert msg["type"] == "failure"

    # run 2: the same state (the next run of the pipeline) -> nothing
    assert deliver(current_states(run1), cfg, store, NOON_SHANGHAI, rules) == []
    assert len(receiver.payloads) == 1

    # run 3: a new day is back above 80% -> one resolve message naming the episode
    run3 = frame(rules, [0.85, 0.9, 0.88, 0.7, 0.72, 0.9], good)
    run3 = run3.filter(~((pl.col("rule_id") == "growth.d7_floor") & (pl.col("metric_date") < date(2026, 7, 5))))
    sent = deliver(current_states(run3), cfg, store, NOON_SHANGHAI, rules)
    assert [(d.event, d.since) for d in sent] == [("resolve", "2026-07-05")]
    assert receiver.payloads[1]["title"] == "【已恢复】7日留存低于80%"
    assert "自 2026-07-05 起的告警已恢复" in receiver.payloads[1]["message"]
    assert receiver.payloads[1]["type"] == "success"

    # run 4: still fine -> nothing
    assert deliver(current_states(run3), cfg, store, NOON_SHANGHAI, rules) == []
    assert len(receiver.payloads) == 2


def test_quiet_hours_hold_warnings_but_not_critical_alerts(ew_home, monkeypatch, receiver, rules, tmp_path):
    cfg = settings(monkeypatch, receiver.url, quiet="22:00-08:00")
    store = StateStore(tmp_path / "state.sqlite")
    evaluations = frame(rules, [0.9, 0.9, 0.9, 0.9, 0.9, 0.5], {"ios": [0.95] * 5 + [0.5], "android": [0.95] * 6})

    night = deliver(current_states(evaluations), cfg, store, NIGHT_SHANGHAI, rules)
    assert {(d.rule_id, d.dims, d.status) for d in night} == {
        ("growth.d7_floor", "", "held"), ("growth.pay_floor", "platform=ios", "sent")}
    assert [p["title"] for p in receiver.payloads] == ["【告警】支付成功率低于90%"]
    assert "[platform=ios]" in receiver.payloads[0]["message"]

    # the first evaluation after quiet hours sends what was held, and only that
    morning = deliver(current_states(evaluations), cfg, store, NOON_SHANGHAI, rules)
    assert [(d.rule_id, d.status) for d in morning] == [("growth.d7_floor", "sent")]
    assert len(receiver.payloads) == 2


def test_a_failed_delivery_is_retried_on_the_next_evaluation(ew_home, monkeypatch, rules, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    cfg = settings(monkeypatch, f"json://127.0.0.1:{dead_port}/hook")
    store = StateStore(tmp_path / "state.sqlite")
    evaluations = frame(rules, [0.9] * 5 + [0.5], {"ios": [0.95] * 6})
    first = deliver(current_states(evaluations), cfg, store, NOON_SHANGHAI, rules)
    assert [d.status for d in first] == ["failed"]

    r = Receiver()
    try:
        cfg = settings(monkeypatch, r.url)
        second = deliver(current_states(evaluations), cfg, store, NOON_SHANGHAI, rules)
        assert [d.status for d in second] == ["sent"] and len(r.payloads) == 1
    finally:
        r.close()


def test_team_destinations_and_english_messages_by_e_mail(ew_home, monkeypatch, rules, tmp_path):
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        # the team's own destination wins over EW_ALERT_URLS (which points nowhere here)
        monkeypatch.setenv("EW_ALERT_URLS_GROWTH",
                           f"mailto://example.com:{port}?smtp=127.0.0.1&from=alerts@example.com&to=growth@example.com")
        monkeypatch.setenv("EW_ALERT_LANGUAGE", "en")
        cfg = settings(monkeypatch, "json://127.0.0.1:9/never")
        store = StateStore(tmp_path / "state.sqlite")
        fired = frame(rules, [0.9] * 5 + [0.5], {"ios": [0.95] * 6})
        assert [d.status for d in deliver(current_states(fired), cfg, store, NOON_SHANGHAI, rules)] == ["sent"]
        resolved = frame(rules, [0.9] * 4 + [0.5, 0.9], {"ios": [0.95] * 6})
        assert [d.event for d in deliver(current_states(resolved), cfg, store, NOON_SHANGHAI, rules)] == ["resolve"]
        assert deliver(current_states(resolved), cfg, store, NOON_SHANGHAI, rules) == []
    finally:
        smtp.stop()
    assert [m.rcpt_tos for m in inbox.messages] == [["growth@example.com"], ["growth@example.com"]]
    mails = [message_from_bytes(m.content) for m in inbox.messages]
    subjects = [str(make_header(decode_header(m["Subject"]))) for m in mails]
    assert subjects == ["[FIRING] D7 retention under 80%", "[RESOLVED] D7 retention under 80%"]
    body = next(p for p in mails[0].walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "value 50.0%, baseline 80.0%, threshold 80.0%" in body and "Why: below the floor of 80.0%" in body
    assert "Chart: http://bi.example.com/superset/dashboard/cohorts/" in body


def test_rules_evaluate_on_the_warehouse_and_a_bad_column_names_file_and_line(tmp_path):
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema marts")
    con.execute("create table marts.mart_funnel_daily (event_date date, platform varchar, step varchar, "
                "sessions bigint, previous_step_sessions bigint)")
    rows = []
    for i in range(10):
        d = date(2026, 7, 1) + timedelta(days=i)
        for platform, paid in (("ios", 95 if i != 8 else 60), ("android", 96)):
            rows.append((d, platform, "payment_success", paid, 100))
            rows.append((d, platform, "add_to_cart", 500, 1000))
    con.executemany("insert into marts.mart_funnel_daily values (?, ?, ?, ?, ?)", rows)
    path = tmp_path / "ops.yml"
    path.write_text(textwrap.dedent("""\
        team: ops
        rules:
          - name: pay_rate
            title: {zh: 支付成功率低于80%, en: Payment success under 80%}
            metric:
              table: mart_funnel_daily
              date: event_date
              numerator: sessions
              denominator: previous_step_sessions
              where: {step: payment_success}
              by: [platform]
              unit: share
            threshold: {below: 80%}
          - name: typo
            title: {zh: a, en: b}
            metric:
              table: mart_funnel_daily
              date: event_date
              value: sesions
            threshold: {below: 1}
        """))
    rules = load_team_file(path)
    out, problems = evaluate_all(con, rules, datetime(2026, 7, 11))
    assert problems[0] == f"{path}:19: ops.typo.metric.value: marts.mart_funnel_daily has no column sesions"
    write_alerts(con, out)
    got = con.execute(f"select dims, metric_date, value, state, since from {alerts_mart().relation} "
                      "where state <> 'ok' order by all").fetchall()
    con.close()
    # add_to_cart rows are filtered out: 60 / 100 on 7-9 for ios only, resolved on 7-10
    assert got == [("platform=ios", date(2026, 7, 9), 0.6, "firing", date(2026, 7, 9)),
                   ("platform=ios", date(2026, 7, 10), 0.95, "resolved", date(2026, 7, 9))]


def test_a_held_message_stays_due_until_it_is_sent(ew_home, monkeypatch, receiver, rules, tmp_path):
    """What `ecomwh run` asks before it skips a run with nothing new (lib/nothing_new.py): a message
    held in quiet hours must still go out, so a run has work to do while one is due."""
    cfg = settings(monkeypatch, receiver.url, quiet="22:00-08:00")
    store = StateStore(tmp_path / "state.sqlite")
    current = current_states(frame(rules, [0.9] * 5 + [0.5], {"ios": [0.95] * 6}))
    assert [(row["rule_id"], event) for row, event, _ in due_events(current, store)] == [("growth.d7_floor", "fire")]
    assert [d.status for d in deliver(current, cfg, store, NIGHT_SHANGHAI, rules)] == ["held"]
    assert len(due_events(current, store)) == 1
    assert [d.status for d in deliver(current, cfg, store, NOON_SHANGHAI, rules)] == ["sent"]
    assert due_events(current, store) == []
