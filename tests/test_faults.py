"""An operator's worst day, through the real commands on a small generated shop: `ecomwh run` killed
with SIGKILL (as by `kill -9` or the OOM killer), a full disk, runs started side by side, PID files
that outlived their processes, a state folder created readable by everyone (docs/quality.md,
"When a run dies"; docs/serving.md, "Threat model")."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ecomwh_proc import Ecomwh, ecomwh_env  # tests/ is on sys.path (pytest rootdir conftest)

pytestmark = pytest.mark.e2e
STEP_TIMEOUT = 300  # seconds; a shared 2-core machine can be slow, a hang is forever


@pytest.fixture(autouse=True)
def _no_command_outlives_its_test():
    yield
    Ecomwh.kill_all()


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """Landing files of a small shop, generated once; each test copies them into its own EW_HOME."""
    home = tmp_path_factory.mktemp("shop") / "ew"
    gen = subprocess.run([sys.executable, "-m", "dagster_project.cli", "generate", "--customers", "300",
                          "--days", "20", "--seed", "5"], env=ecomwh_env(home), capture_output=True, text=True,
                         timeout=300)
    assert gen.returncode == 0, gen.stderr
    return home / "landing"


def _home(tmp_path: Path, shop: Path) -> Path:
    home = tmp_path / "ew"
    shutil.copytree(shop, home / "landing")
    return home


def _instance_state(home: Path) -> tuple[list[str], list[str]]:
    """(runs still in progress, runs holding a duckdb_writer slot) in the state folder's Dagster."""
    code = """
import dagster as dg
from dagster import DagsterInstance
with DagsterInstance.get() as i:
    live = [r.run_id for r in i.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]))]
    held = sorted({s.run_id for s in i.event_log_storage.get_concurrency_info("duckdb_writer").claimed_slots})
    print(",".join(live)); print(",".join(held))
"""
    out = subprocess.run([sys.executable, "-c", code], env=ecomwh_env(home, DAGSTER_HOME=str(home / "dagster")),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    live, held = (out.stdout.splitlines() + ["", ""])[:2]
    return [r for r in live.split(",") if r], [r for r in held.split(",") if r]


# ---------------------------------------------------------------------------------------------
def test_a_run_killed_in_ingest_does_not_block_the_next_and_a_waiting_run_says_why(tmp_path, shop):
    """Item 1: the killed run kept Dagster's single duckdb_writer slot, and every later run hung
    silently, deaf to Ctrl-C and SIGTERM."""
    home = _home(tmp_path, shop)
    killed = Ecomwh(home, "run")
    killed.wait_for(r"start   raw__inventory_snapshots", STEP_TIMEOUT)  # the longest load of this shop
    time.sleep(0.3)
    killed.kill()

    nxt = Ecomwh(home, "run")
    nxt.wait_for(rf"recovered: run \w+ \(ecomwh run, pid {killed.pid}\) died during step raw__inventory_snapshots: "
                 r"marked failed, "
                 r"freed its duckdb_writer slot", STEP_TIMEOUT)
    nxt.wait_for(r"done    raw__users", STEP_TIMEOUT)  # past the slot the dead run held

    third = Ecomwh(home, "run")
    third.wait_for(rf"waiting for pid {nxt.pid}, .* to finish", STEP_TIMEOUT)
    third.signal(signal.SIGTERM)
    assert third.finish(30) == 130
    assert "interrupted before it started; nothing was written" in third.output

    nxt.signal(signal.SIGINT)
    assert nxt.finish(STEP_TIMEOUT) != 0
    live, held = _instance_state(home)
    assert not live and not held


def test_a_run_killed_during_dbt_leaves_no_dbt_running(tmp_path, shop):
    """Item 22: dbt ran on, writing the warehouse without the writer lock, next to the next run.

    An orphaned dbt that prints a line dies of the closed pipe; one inside a long model (minutes at
    benchmark scale) prints nothing and goes on. dbt is stopped (SIGSTOP) before the kill to stand
    for that silent stretch: only a signal that comes with the run's death can end it."""
    home = _home(tmp_path, shop)
    run = Ecomwh(home, "run")
    run.wait_for(r"start   dbt_models", STEP_TIMEOUT)
    deadline = time.monotonic() + 60
    while not (dbt := [p for p in run.descendants() if _is_dbt_build(p)]):
        assert time.monotonic() < deadline, "no dbt process under the run"
        time.sleep(0.2)
    time.sleep(2)
    try:
        for p in dbt:
            p.suspend()
        run.kill()
        gone, alive = psutil.wait_procs(dbt, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        for p in dbt:
            if p.is_running():
                p.kill()


def _is_dbt_build(proc: psutil.Process) -> bool:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return "build" in cmd and any(Path(a).name in ("dbt", "ecomwh-dbt") for a in cmd[:2])


def test_concurrent_runs_write_separate_logs(tmp_path, shop):
    """Item 24: logs were named by the second a run started, so two runs shared one file."""
    home = _home(tmp_path, shop)
    first, second = Ecomwh(home, "run"), Ecomwh(home, "run")
    logs = {}
    for run in (first, second):
        m = run.wait_for(r"\(run (\w+), log (\S+)\)", 120)
        logs[m.group(1)] = Path(m.group(2))
    waiting = next(r for r in (first, second) if r.wait_for(r"waiting for|start   raw__", STEP_TIMEOUT)
                   .group(0).startswith("waiting"))
    waiting.signal(signal.SIGTERM)
    waiting.finish(30)
    running = first if waiting is second else second
    running.signal(signal.SIGINT)
    running.finish(STEP_TIMEOUT)
    assert len(set(logs.values())) == 2
    for run_id, log in logs.items():
        text = log.read_text()
        assert run_id in log.name and text.startswith(f"ecomwh run: Dagster run {run_id}")
        assert not [other for other in logs if other != run_id and other in text]


def test_a_full_disk_is_reported_as_a_full_disk(tmp_path, shop):
    """Item 24: a run that filled the disk in its fifth step said "FAILED before any step ran".

    EW_HOME is a 12 MB tmpfs in a private mount namespace (`unshare`, as root or in an unprivileged
    user namespace): a real ENOSPC, nothing simulated."""
    mnt = tmp_path / "small_disk"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size=12m tmpfs {mnt} && cp -r {shop} {mnt}/landing && "
              f"exec {sys.executable} -m dagster_project.cli run")
    run = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                         env=ecomwh_env(mnt, EW_HOME=str(mnt)), capture_output=True, text=True,
                         timeout=STEP_TIMEOUT)
    out = run.stdout + run.stderr
    assert "mount:" not in out and "unshare:" not in out, out  # the test needs a mount namespace
    assert run.returncode == 1, out
    assert re.search(rf"The disk holding {mnt} is full \(\d+\.\d MB free\)", out), out[-3000:]
    assert "before any step ran" not in out and "start   raw__" in out


def test_stop_signals_only_processes_it_started(tmp_path):
    """Item 9: `ecomwh stop` (and `serve`, which calls it first) signalled whatever process group
    now had a PID recorded before a crash or reboot."""
    home = tmp_path / "ew"
    (home / "run").mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)  # leads its own group
    try:
        (home / "run" / "dagster.pid").write_text(str(bystander.pid))  # the old format: a bare PID
        started = psutil.Process(bystander.pid).create_time()
        (home / "run" / "superset.pid").write_text(f'{{"pid": {bystander.pid}, "started": {started - 3600}}}')
        stop = subprocess.run([sys.executable, "-m", "dagster_project.cli", "stop"], env=ecomwh_env(home),
                              capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr
        assert bystander.poll() is None, "ecomwh stop killed a process it did not start"
        assert "stopped: nothing was running" in stop.stdout
        assert "dagster.pid does not record which process it names" in stop.stderr
        assert not list((home / "run").glob("*.pid"))
    finally:
        bystander.kill()
        bystander.wait()


def test_state_folder_is_private(tmp_path):
    """Item 15: the warehouse, Superset's password hashes, quarantined rows and logs were 0644 in
    0755 folders. New state is the owner's only, and what an older version left is fixed on start."""
    home = tmp_path / "ew"
    (home / "logs").mkdir(parents=True)
    os.chmod(home, 0o755)
    old_log = home / "logs" / "run-20260101-000000.log"
    old_log.write_text("an old run")
    os.chmod(old_log, 0o644)
    gen = subprocess.run([sys.executable, "-m", "dagster_project.cli", "generate", "--customers", "50", "--days", "7"],
                         env=ecomwh_env(home), capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    readable = [f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}" for p in home.rglob("*")
                if stat.S_IMODE(p.lstat().st_mode) & 0o077]
    assert not readable, readable[:10]
    assert len(list(home.rglob("*.csv"))) + len(list(home.rglob("*.jsonl"))) > 10  # generate wrote files
