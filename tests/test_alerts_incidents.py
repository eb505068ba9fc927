"""The shipped alert rules catch the generator's planted incidents, on their dates from truth.json,
and stay quiet on promotion days.

One world built by the whole pipeline: 16,000 customers over 87 days from 2026-08-20, so it holds
the incidents (the retention dip after 28 normal days of history, the payment-failure spike at the
end of October, the stopped source on the last days) and the promotion days of National Day and
11.11, with ~100 new users and ~70 mini-program payments a day: the incidents are many binomial
standard deviations from the usual rates, which the 2,500-customer session world
(the session world of conftest.py, ~10 new users and payments a day per platform) cannot show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import duckdb
import pytest

from dagster_project.lib.generator.incidents import plan_incidents
from mart_rows import dates_between  # tests/ is on sys.path (pytest rootdir conftest)
from ecomwh_proc import shared_env  # tests/ is on sys.path (pytest rootdir conftest)


@pytest.fixture(scope="module")
def incident_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("incidents") / "ew"
    env = {"EW_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home.parent), **shared_env()}
    exe = [sys.executable, "-m", "dagster_project.cli"]
    gen = subprocess.run(exe + ["generate", "--customers", "16000", "--days", "87", "--seed", "42",
                                "--start", "2026-08-20"], env=env, capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stderr
    run = subprocess.run(exe + ["run"], env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    return home


@pytest.fixture(scope="module")
def incident_world(incident_home):
    home = incident_home
    truth = json.loads((home / "truth.json").read_text())
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.sql("select rule_id, dims, metric_date, state, since from marts.mart_metric_alerts").fetchall()
        promo = {r[0] for r in con.sql("select date_day from marts.dim_date where is_promotion_day").fetchall()}
    alerts = [r[:4] for r in rows]
    since = {(r[0], r[1], r[2]): r[4] for r in rows if r[3] == "firing"}
    return truth, alerts, promo, since


def _incident(truth, kind):
    inc = next(i for i in truth["incidents"] if i["kind"] == kind)
    assert not inc["skipped"], inc
    return inc, date.fromisoformat(inc["first_date"]), date.fromisoformat(inc["last_date"])


def _states(alerts, rule_id, dims=""):
    return {d: s for r, g, d, s in alerts if r == rule_id and g == dims}


def test_retention_dip_fires_on_its_week_and_resolves_the_day_after(incident_world):
    truth, alerts, _, _ = incident_world
    inc, first, last = _incident(truth, "retention_dip")
    states = _states(alerts, inc["rule_id"])
    firing = sorted(d for d, s in states.items() if s == "firing")
    assert firing == dates_between(first, last), states
    assert states[last + timedelta(days=1)] == "resolved"


def test_payment_failure_spike_fires_on_its_platform_only(incident_world):
    truth, alerts, _, _ = incident_world
    inc, first, last = _incident(truth, "payment_failure_spike")
    states = _states(alerts, inc["rule_id"], inc["dims"])
    firing = sorted(d for d, s in states.items() if s == "firing")
    assert firing == dates_between(first, last), states
    assert states[last + timedelta(days=1)] == "resolved"
    others = {(g, d) for r, g, d, s in alerts if r == inc["rule_id"] and g != inc["dims"] and s == "firing"}
    assert not others
    assert {g for r, g, _, _ in alerts if r == inc["rule_id"]} >= {"platform=ios", "platform=android", inc["dims"]}


def test_stopped_source_fires_from_its_second_missing_day_to_the_end(incident_world):
    truth, alerts, _, since = incident_world
    inc, first, last = _incident(truth, "source_stopped")
    assert last == date.fromisoformat(truth["generator"]["start"]) + timedelta(days=truth["generator"]["days"] - 1)
    states = _states(alerts, inc["rule_id"], inc["dims"])
    firing = sorted(d for d, s in states.items() if s == "firing")
    # two days without a ticket in a row: firing from the second, since the first
    assert firing == dates_between(first + timedelta(days=1), last), states
    assert {since[(inc["rule_id"], inc["dims"], d)] for d in firing} == {first}
    # the sources the general rule watches delivered on those days (its last 2 dates still settling)
    for dims in ("source=orders", "source=order_items", "source=events"):
        states = _states(alerts, "data.source_stopped_delivering", dims)
        assert [states[d] for d in dates_between(first, last)] == ["ok", "not_evaluated", "not_evaluated"]


def test_nothing_fires_on_promotion_days(incident_world):
    """Rules are evaluated on every promotion day of the world (threshold rules always; a change rule
    on 11.11 against 11.04, both promotion days), and none fires there."""
    truth, alerts, promo, _ = incident_world
    assert date(2026, 11, 11) in promo and date(2026, 10, 1) in promo
    start = date.fromisoformat(truth["generator"]["start"])
    in_world = {d for d in promo if start <= d < start + timedelta(days=truth["generator"]["days"])}
    assert len(in_world) >= 11
    fired = sorted((r, g, d) for r, g, d, s in alerts if s == "firing" and d in promo)
    assert not fired
    evaluated = {(r, d) for r, g, d, s in alerts if d in promo and s != "not_evaluated"}
    for d in sorted(in_world):
        assert ("data.source_stopped_delivering", d) in evaluated, d
        assert ("growth.d1_retention_floor", d) in evaluated, d
    assert ("operations.orders_down_vs_last_week", date(2026, 11, 11)) in evaluated


def test_nothing_fires_on_the_aa_experiment(incident_world):
    """The A/A experiment's treatment is compared with its control on every assignment date whose
    30-day windows are complete (from its start to 30 days before the data end: 28 dates in this
    world, ~75 customers per arm and date), and never differs beyond noise."""
    truth, alerts, _, _ = incident_world
    aa = truth["planted"]["aa_experiment_id"]
    states = _states(alerts, "operations.experiment_variant_worse", f"experiment_id={aa}, variant=treatment")
    evaluated = [d for d, s in states.items() if s != "not_evaluated"]
    assert len(evaluated) >= 25, states
    assert "firing" not in states.values()


def test_nothing_else_fires(incident_world):
    """Every firing row belongs to a planted incident: the rules raise no alarm on an ordinary day."""
    truth, alerts, _, _ = incident_world
    planted = set()
    for inc in truth["incidents"]:
        _, first, last = _incident(truth, inc["kind"])
        planted |= {(inc["rule_id"], inc.get("dims") or "", d) for d in dates_between(first, last)}
    # the floor under D1 retention is breached by the same dip (3 days running, then firing)
    _, first, last = _incident(truth, "retention_dip")
    planted |= {("growth.d1_retention_floor", "", d) for d in dates_between(first, last)}
    fired = {(r, g, d) for r, g, d, s in alerts if s == "firing"}
    assert fired - planted == set()


@pytest.mark.parametrize("days", [7, 20, 40])
def test_a_short_world_records_its_incidents_as_skipped(days):
    plan = plan_incidents(date(2026, 5, 20), days)
    skipped = {i["kind"] for i in plan["truth"] if i["skipped"]}
    assert all(i["reason"] for i in plan["truth"] if i["skipped"])
    if days == 7:
        assert skipped == {"retention_dip", "payment_failure_spike", "source_stopped"}
        assert plan["dip"] is plan["spike"] is plan["stop_first"] is None
    else:
        # 618 (June 1-18) and the Dragon Boat holiday leave no 28 normal days before a window
        assert skipped == {"retention_dip", "payment_failure_spike"}
        assert plan["stop_first"] == days - 3


def test_missing_days_count_as_zero_only_once_a_source_delivers_daily():
    """A young shop's sparse source (a ticket every few days) is no outage; once it delivered on each
    of 7 days, a day without rows is a 0 and a breach."""
    import polars as pl

    from dagster_project.lib.alerts.series import SERIES_SCHEMA, _fill_missing_days

    d0 = date(2026, 6, 1)
    sparse = [0, 3, 6, 7, 8, 9, 10, 11, 12, 14, 15]  # daily from day 13 (days 6..12 delivered)
    rows = ([(d0 + timedelta(days=i), "source=orders", 5.0, None) for i in range(20)]
            + [(d0 + timedelta(days=i), "source=cs_tickets", 2.0, None) for i in sparse])
    filled = _fill_missing_days(pl.DataFrame(rows, schema=SERIES_SCHEMA, orient="row"))
    tickets = dict(filled.filter(pl.col("dims") == "source=cs_tickets").select("metric_date", "value").iter_rows())
    assert {(d - d0).days for d, v in tickets.items() if v == 0} == {13, 16, 17, 18, 19}
    assert {(d - d0).days for d in tickets} == set(sparse) | {13, 16, 17, 18, 19}
    assert filled.filter(pl.col("dims") == "source=orders").height == 20
    # watched alone, the tickets still run to the table's latest date (the other sources' days)
    alone = _fill_missing_days(pl.DataFrame(rows[20:], schema=SERIES_SCHEMA, orient="row"), d0 + timedelta(days=19))
    assert dict(alone.select("metric_date", "value").iter_rows()) == tickets


def test_no_incidents_plants_none_and_says_so_in_truth(tmp_path):
    """`ecomwh generate --no-incidents`: every incident skipped with the reason, recorded in
    truth.json's generator block, and the stopped source's last days delivered like the others."""
    plan = plan_incidents(date(2026, 5, 20), 180, enabled=False)
    assert plan["dip"] is plan["spike"] is plan["stop_first"] is None
    assert {i["reason"] for i in plan["truth"]} == {"generated with --no-incidents"}
    home = tmp_path / "ew"
    env = {"EW_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    exe = [sys.executable, "-m", "dagster_project.cli", "generate", "--customers", "300", "--days", "30"]
    for flag, wanted in (([], True), (["--no-incidents"], False)):
        gen = subprocess.run(exe + flag, env=env, capture_output=True, text=True, timeout=600)
        assert gen.returncode == 0, gen.stderr
        truth = json.loads((home / "truth.json").read_text())
        assert truth["generator"]["incidents"] is wanted
        stopped = next(i for i in truth["incidents"] if i["kind"] == "source_stopped")
        assert stopped["skipped"] is not wanted
        last_day = date(2026, 5, 20) + timedelta(days=29)
        tickets = {p.name for p in (home / "landing").rglob("*cs_tickets*") if last_day.strftime("%Y%m%d") in p.name
                   or last_day.isoformat() in p.name}
        assert bool(tickets) is not wanted, tickets



def test_the_deadline_sensor_announces_the_stopped_source_once_a_day(incident_home, monkeypatch):
    """The delivery-deadline check (what sensor delivery_deadline runs), ticked every 30 minutes over
    the world's last days on its landing folder: one message per missing date of cs_tickets, after
    the 07:00 deadline of the day after, naming the source, and no repeat; nothing before the stop.
    marketing_touches, sent only during campaigns, is never announced when the 11.11 campaign ends:
    the contract says it is not exported daily."""
    from datetime import datetime

    from dagster_project.lib.alerts.notify import StateStore
    from dagster_project.lib.alerts.pipeline import notify_missed_deliveries
    from dagster_project.settings import get_alert_settings

    truth = json.loads((incident_home / "truth.json").read_text())
    _, first, last = _incident(truth, "source_stopped")
    for k in [k for k in os.environ if k.startswith("EW_ALERT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("EW_ALERT_URLS", "json://127.0.0.1:9/unused")
    monkeypatch.setenv("EW_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("EW_DELIVERY_DEADLINE", "07:00")
    sent = []

    def outbox(urls, title, body, failed):
        sent.append((title, body))
        return True

    store = StateStore(incident_home.parent / "deadline.sqlite")
    # Shanghai is UTC+8: from 08:00 five days before the stop to 06:30 on the day after the world ends
    tick = datetime.combine(first - timedelta(days=5), datetime.min.time())
    end = datetime.combine(last, datetime.min.time()) + timedelta(hours=22, minutes=30)
    statuses = []
    while tick <= end:
        statuses += [(m.source, m.expected_date, s)
                     for m, s in notify_missed_deliveries(incident_home / "landing", get_alert_settings(), store,
                                                          tick, outbox)]
        tick += timedelta(minutes=30)
    # the world's last date is announced the day after it ends, when every source misses: not ticked
    missing = [d for d in dates_between(first, last) if d < last]
    tickets = [(d, s) for src, d, s in statuses if src == "cs_tickets"]
    assert sorted(d for d, s in tickets if s == "sent") == missing
    assert {s for _, s in tickets} == {"sent", "already_sent"}
    before = {src for src, d, _ in statuses if d < first}
    assert not before
    titles = [title for title, _ in sent if "cs_tickets" in title]
    assert len(titles) == len(missing)
    assert not [title for title, _ in sent if "marketing_touches" in title]
