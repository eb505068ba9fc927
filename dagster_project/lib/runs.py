"""Runs of this state folder's Dagster instance whose process died, and runs worth waiting for.

A run killed with SIGKILL, by the OOM killer or by a full disk cannot tell Dagster it ended: its
record stays STARTED and it keeps the `duckdb_writer` concurrency slot (one for the whole
instance), so every later run would wait for it forever. Before running, `ecomwh run` (and
`ecomwh serve`) mark such runs failed and free their slots. A run is dead when the process that
executes it is gone: `ecomwh run` tags its runs with its PID and start time; a run launched from the
Dagster UI or a sensor is found by the PID its in-process executor logs when it starts
("Executing steps in process (pid: N)"), which must belong to a process older than the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg

from dagster_project.lib import procs

PID_TAG = "ew/pid"
PID_STARTED_TAG = "ew/pid_started"
WRITER_POOL = "duckdb_writer"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    me = procs.this_process()
    return {PID_TAG: str(me.pid), PID_STARTED_TAG: repr(me.started)}


@dataclass(frozen=True)
class RunProcess:
    run_id: str
    pid: int | None
    alive: bool
    launched_by: str  # "ecomwh run" or "Dagster UI / sensor"

    def describe(self) -> str:
        who = f"{self.launched_by}, " + (procs.describe(self.pid) if self.pid and self.alive
                                         else f"pid {self.pid}" if self.pid else "pid not known yet")
        return f"run {self.run_id[:8]} ({who})"


def run_process(instance: dg.DagsterInstance, record: dg.RunRecord) -> RunProcess:
    run = record.dagster_run
    if PID_TAG in run.tags:
        me = procs.ProcessRecord(int(run.tags[PID_TAG]), float(run.tags[PID_STARTED_TAG]))
        return RunProcess(run.run_id, me.pid, procs.is_running(me), "ecomwh run")
    pid = _executor_pid(instance, run.run_id)
    if pid is None:  # launched, not executing yet (or never will): nothing proves it dead
        return RunProcess(run.run_id, None, True, "Dagster UI / sensor")
    began = record.start_time or record.create_timestamp.timestamp()
    return RunProcess(run.run_id, pid, procs.started_by(pid, began), "Dagster UI / sensor")


def _executor_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    pid = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        value = data.metadata.get("pid") if data and data.metadata else None
        if value is not None:
            pid = int(value.value)
    return pid


def _last_step(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The step the run was in when its process died (started, never ended)."""
    open_steps: list[str] = []
    types = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
             dg.DagsterEventType.STEP_SKIPPED}
    for entry in instance.all_logs(run_id, of_type=types):
        step = entry.step_key
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            open_steps.append(step)
        elif step in open_steps:
            open_steps.remove(step)
    return open_steps[-1] if open_steps else None


def recover_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark runs whose process is gone as failed and free the concurrency slots they held or
    waited for; also free slots still held by runs that ended. Returns what was done, one line each."""
    done = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        proc = run_process(instance, record)
        if proc.alive:
            continue
        step = _last_step(instance, proc.run_id)
        where = f" during step {step}" if step else ""
        instance.report_run_failed(record.dagster_run, message=(
            f"The process running this run (pid {proc.pid}) is gone{where}: killed, out of memory, or the "
            f"machine stopped. Marked failed by ecomwh, which found it dead."))
        held = _free_slots(instance, proc.run_id)
        done.append(f"run {proc.run_id[:8]} ({proc.launched_by}, pid {proc.pid}) died{where}: marked failed"
                    + (f", freed its {' and '.join(held)} slot" if held else ""))
    for run_id in instance.event_log_storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if (run is None or run.is_finished) and (held := _free_slots(instance, run_id)):
            done.append(f"run {run_id[:8]} ended but still held its {' and '.join(held)} slot: freed it")
    return done


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Free the slots `run_id` holds or waits for; returns the pools it held one in."""
    storage = instance.event_log_storage
    held = sorted(key for key in storage.get_concurrency_keys()
                  if any(s.run_id == run_id for s in storage.get_concurrency_info(key).claimed_slots))
    storage.free_concurrency_slots_for_run(run_id)
    return held


def live_runs(instance: dg.DagsterInstance, exclude: str | None = None) -> list[RunProcess]:
    """Runs in progress whose process is alive (or not started yet): the warehouse's writers."""
    out = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        if record.dagster_run.run_id != exclude:
            proc = run_process(instance, record)
            if proc.alive:
                out.append(proc)
    return out


def slot_holders(instance: dg.DagsterInstance, pool: str = WRITER_POOL) -> list[RunProcess]:
    info = instance.event_log_storage.get_concurrency_info(pool)
    out = []
    for run_id in sorted({s.run_id for s in info.claimed_slots}):
        record = next(iter(instance.get_run_records(filters=dg.RunsFilter(run_ids=[run_id]), limit=1)), None)
        if record is not None:
            out.append(run_process(instance, record))
    return out


def wait_for_other_runs(instance: dg.DagsterInstance, say, poll_s: float = 2.0) -> float:
    """Block until no other live run is in progress (recovering runs that die meanwhile); `say`
    gets one line whenever the run waited for changes. Returns the seconds waited. Ctrl-C and
    SIGTERM end the wait: it runs before Dagster takes over the signals."""
    started = time.monotonic()
    announced: set[str] = set()
    while True:
        for line in recover_dead_runs(instance):
            say(f"recovered: {line}")
        others = [r for r in live_runs(instance) if r.pid is not None]
        if not others:
            return time.monotonic() - started
        for run in others:
            if run.run_id not in announced:
                say(f"waiting for {run.describe()} to finish: one run writes the warehouse at a time "
                    f"(Ctrl-C to give up)")
                announced.add(run.run_id)
        time.sleep(poll_s)
