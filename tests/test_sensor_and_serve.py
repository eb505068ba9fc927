"""The landing sensor asks for a run exactly when files appear or change; `ecomwh serve` brings up
a Dagster UI whose code location loaded (checked through GraphQL, not /server_info) and
`ecomwh stop` ends it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

import dagster as dg
import pytest


def test_landing_sensor_requests_runs_only_for_new_or_changed_files(ew_home):
    from dagster_project.definitions import defs

    sensor = defs.resolve_sensor_def("landing_sensor")
    landing = ew_home.landing_dir / "orders"
    landing.mkdir(parents=True, exist_ok=True)

    def tick(cursor):
        ctx = dg.build_sensor_context(cursor=cursor)
        result = sensor.evaluate_tick(ctx)
        return result, ctx.cursor

    result, cursor = tick(None)
    assert not result.run_requests and "no new or changed files" in (result.skip_message or "")

    f = landing / "orders_20260520.csv"
    f.write_text("order_id\n")
    (landing / "not_a_landing_name.txt").write_text("x")
    result, cursor = tick(cursor)
    assert len(result.run_requests) == 1 and result.run_requests[0].tags["ew/changed_files"] == "1"

    result, cursor2 = tick(result.cursor)
    assert not result.run_requests  # same files, same fingerprints

    f.write_text("order_id\nO1\n")  # corrected redelivery under the same name
    result, _ = tick(cursor2)
    assert len(result.run_requests) == 1


def test_landing_sensor_first_tick_ignores_files_a_run_already_loaded(ew_home):
    from dagster_project.definitions import defs
    from dagster_project.lib.ingest import ingest_source

    landing = ew_home.landing_dir / "campaigns"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "campaigns_20260520.csv").write_text(
        "campaign_id,name,type,channel,start_at,end_at,cost\nC1,618,discount,app,2026-06-01,2026-06-18,100\n")
    # a writer's marker beside a loaded file (the generator and `ecomwh import` write them) is not news
    (landing / "campaigns_20260520.csv.done").touch()
    ingest_source(ew_home.duckdb_path, ew_home.landing_dir, "campaigns", tz="Asia/Shanghai",
                  lock_path=ew_home.lock_path)
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert not sensor.evaluate_tick(dg.build_sensor_context(cursor=None)).run_requests
    (landing / "campaigns_20260521.csv").write_text("campaign_id,name,type,channel,start_at,end_at,cost\n")
    assert len(sensor.evaluate_tick(dg.build_sensor_context(cursor=None)).run_requests) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
def test_serve_starts_a_loaded_dagster_ui_and_stop_ends_it(tmp_path):
    port, metrics_port = _free_port(), _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EW_") and k != "DAGSTER_HOME"},
           "EW_HOME": str(tmp_path / "ew"), "EW_METRICS_PORT": str(metrics_port)}
    exe = [sys.executable, "-m", "dagster_project.cli"]
    started = subprocess.run(exe + ["serve", "--detach", "--no-superset", "--dagster-port", str(port)], env=env,
                             capture_output=True, text=True, timeout=300)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"http://127.0.0.1:{port}" in started.stdout
        # the Prometheus exporter is up too; with nothing published yet it says so in a metric
        assert f"Prometheus   http://127.0.0.1:{metrics_port}/metrics" in started.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30) as resp:
            metrics = resp.read().decode()
        assert 'ew_scrape_errors{part="serving"} 1.0' in metrics
        query = {"query": "{ assetNodes { assetKey { path } } }"}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps(query).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            nodes = json.loads(resp.read())["data"]["assetNodes"]
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert "raw/orders" in keys and "staging/stg_oms__orders" in keys
        assert (tmp_path / "ew" / "dagster" / "dagster.yaml").exists()
    finally:
        stopped = subprocess.run(exe + ["stop"], env=env, capture_output=True, text=True, timeout=60)
    assert "dagster" in stopped.stdout and "metrics" in stopped.stdout
    for p in (port, metrics_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", p)) != 0  # nothing listens any more


def test_serve_refuses_a_port_another_service_holds(tmp_path):
    """Otherwise the readiness checks would talk to the other service and call ours ready."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("EW_") and k != "DAGSTER_HOME"},
               "EW_HOME": str(tmp_path / "ew")}
        run = subprocess.run([sys.executable, "-m", "dagster_project.cli", "serve", "--detach", "--no-superset",
                              "--dagster-port", str(port), "--docs-port", str(_free_port())],
                             env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert f"Dagster port {port}" in run.stderr and "EW_DAGSTER_PORT" in run.stderr
    assert not list((tmp_path / "ew" / "run").glob("*.pid"))  # nothing was started
