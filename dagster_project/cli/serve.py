"""`ecomwh serve` and `ecomwh stop`: the Dagster UI and daemon, Superset, the docs page and the exporter."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dagster_project.settings import REPO_ROOT, Settings
from dagster_project.cli.environment import prepare_environment


def _pid_dir(settings: Settings) -> Path:
    d = settings.home / "run"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _dagster_ready(port: int) -> bool:
    """/server_info answers even when the code location failed: ask GraphQL for asset nodes."""
    query = json.dumps({"query": "{ assetNodes { id } }"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = json.loads(resp.read())
        return bool(body.get("data", {}).get("assetNodes"))
    except Exception:
        return False


def _spawn(settings: Settings, name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """Start a service in its own process group (so stop_all can end it and its workers), and
    record it by PID and start time (so stop_all never signals a later process with that PID)."""
    from dagster_project.lib import procs

    log = open(_pid_dir(settings) / f"{name}.log", "ab")
    proc = subprocess.Popen(["env", "--default-signal=INT,TERM,HUP,QUIT", "setsid", *cmd], cwd=cwd,
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    procs.write_pid_file(_pid_dir(settings) / f"{name}.pid", proc.pid)
    return proc


def start_dagster(settings: Settings, port: int) -> subprocess.Popen:
    """The Dagster daemon (schedules, the landing sensor, runs launched from the UI) and the UI,
    which runs behind a host and origin check (dagster_project/dagster_ui.py) instead of `dagster
    dev`'s open webserver."""
    from dagster_project.defs.dbt.project import prepare_dbt_project

    prepare_dbt_project()  # before the daemon and the UI load the definitions, which read the manifest
    workspace = str(REPO_ROOT / "workspace.yaml")
    _spawn(settings, "dagster-daemon", [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", workspace],
           os.environ.copy(), REPO_ROOT)
    return _spawn(settings, "dagster",
                  [sys.executable, "-m", "dagster_project.dagster_ui", "-w", workspace, "--port", str(port)],
                  os.environ.copy(), REPO_ROOT)


def wait_dagster(settings: Settings, proc: subprocess.Popen, port: int, timeout_s: float = 240) -> None:
    log = _pid_dir(settings) / "dagster.log"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Dagster UI exited with {proc.returncode}; see {log}")
        if _dagster_ready(port):
            return
        time.sleep(2)
    raise RuntimeError(f"Dagster UI not ready after {timeout_s:.0f} s; see {log}")


def start_docs_server(settings: Settings, port: int) -> subprocess.Popen | None:
    """dbt's static docs page (written by the serving/dbt_docs asset), on 127.0.0.1 only."""
    docs = settings.home / "docs" / "dbt"
    if not (docs / "index.html").exists():
        return None
    return _spawn(settings, "dbt-docs",
                  [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(docs)],
                  os.environ.copy(), docs)


def start_superset(settings: Settings, port: int) -> dict:
    """One-time set-up (db upgrade, admin, roles), gunicorn, then the bundle import; returns timings."""
    from dagster_project.defs.serving import superset

    timings = {}
    started = time.perf_counter()
    setup_log = open(_pid_dir(settings) / "superset-setup.log", "ab")
    timings["setup_s"] = superset.initialize(settings, setup_log)
    proc = _spawn(settings, "superset", superset.start_command(port), superset.superset_env(settings),
                  superset.home_dir(settings))
    base_url = f"http://127.0.0.1:{port}"
    superset.wait_healthy(base_url, proc, 180, str(_pid_dir(settings) / "superset.log"))
    timings["start_s"] = time.perf_counter() - started - timings["setup_s"]
    timings.update(superset.provision(settings, base_url))
    timings["total_s"] = time.perf_counter() - started
    return timings


def stop_all(settings: Settings) -> list[str]:
    """Stop what `ecomwh serve` recorded, and only that: a PID file outlives its process (a reboot,
    a kill -9), and its PID may now name an unrelated process."""
    from dagster_project.lib import procs

    stopped = []
    for pid_file in sorted(_pid_dir(settings).glob("*.pid")):
        leader = procs.read_pid_file(pid_file)
        if leader is None:
            print(f"ecomwh: {pid_file} does not record which process it names (no start time): "
                  f"signalled nothing; if {pid_file.stem} still runs, stop it yourself", file=sys.stderr)
        elif procs.stop_group(leader, str(settings.home)):
            stopped.append(pid_file.stem)
        pid_file.unlink(missing_ok=True)
    return stopped


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def cmd_serve(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM, like Ctrl-C, stops what it started
    settings = prepare_environment()
    stop_all(settings)
    started = time.perf_counter()
    # A service already on a port would answer our readiness checks in place of ours.
    from dagster_project.lib import metrics_exporter

    wanted = {"Dagster": args.dagster_port, "dbt docs": args.docs_port, "metrics": metrics_exporter.port()}
    if not args.no_superset:
        wanted["Superset"] = args.superset_port
    busy = [f"{name} port {port}" for name, port in wanted.items() if _port_in_use(port)]
    if busy:
        print(f"ecomwh serve: already in use on 127.0.0.1: {', '.join(busy)} (another `ecomwh serve` with "
              f"a different EW_HOME?). Stop it, or pick ports with EW_DAGSTER_PORT / EW_SUPERSET_PORT / "
              f"EW_DOCS_PORT.", file=sys.stderr)
        return 1
    try:
        from dagster import DagsterInstance

        from dagster_project.lib.runs import recover_dead_runs

        with DagsterInstance.get() as instance:  # runs launched from the UI need the slot too
            for line in recover_dead_runs(instance):
                print(f"ecomwh serve: recovered {line}")
    except Exception as exc:  # noqa: BLE001 - the UI is still worth starting; say what is left
        print(f"ecomwh serve: could not check for runs left by dead processes: {exc}", file=sys.stderr)
    if not settings.serving_path.exists():
        print(f"ecomwh serve: no published copy at {settings.serving_path} yet; dashboards stay empty "
              f"until `ecomwh run` (or the landing sensor's run) publishes one.", file=sys.stderr)
    try:
        dagster = start_dagster(settings, args.dagster_port)
        superset_timings = None if args.no_superset else start_superset(settings, args.superset_port)
        docs = start_docs_server(settings, args.docs_port)
        metrics_port = metrics_exporter.start(settings, _spawn)
        wait_dagster(settings, dagster, args.dagster_port)
    except (RuntimeError, OSError) as exc:
        print(f"ecomwh serve: {exc}", file=sys.stderr)
        stop_all(settings)
        return 1
    except KeyboardInterrupt:
        stop_all(settings)
        print("ecomwh serve: interrupted while starting; stopped what had started", file=sys.stderr)
        return 130
    print(f"\nready in {time.perf_counter() - started:.0f} s")
    print(f"Dagster UI   http://127.0.0.1:{args.dagster_port}")
    if superset_timings is not None:
        from dagster_project.defs.serving.superset import ADMIN_USER, ANALYST_USER, ensure_state

        creds = ensure_state(settings)
        print(f"Superset     http://127.0.0.1:{args.superset_port}   "
              f"({superset_timings['dashboards']} dashboards, {superset_timings['charts']} charts; "
              f"language menu top right: 中文 / English)")
        print(f"  admin      user {ADMIN_USER}    password {creds.admin_password}")
        print(f"  analyst    user {ANALYST_USER}  password {creds.analyst_password}   (read-only: dashboards, SQL Lab)")
        print(f"  (passwords generated once, kept in {settings.home / 'superset' / 'credentials.json'})")
    if docs is not None:
        print(f"dbt docs     http://127.0.0.1:{args.docs_port}")
    print(f"Prometheus   http://127.0.0.1:{metrics_port}/metrics")
    print(f"SQL shell    ecomwh sql   (read-only, on {settings.serving_path})")
    print(f"State folder {settings.home}")
    if args.detach:
        print("Stop with: ecomwh stop")
        return 0
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(settings)
        print("stopped.")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    stopped = stop_all(settings)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0
