"""Processes of one state folder: who they are, and that none outlives the run that started it.

A PID alone names a process only while it lives: after a crash the number is reused, and signalling
it would hit an unrelated process. So a process is recorded as its PID plus its start time, and
every check compares both. Children that write the warehouse (dbt) die with the process that
started them, so a `kill -9` of a run never leaves a writer running without the writer lock.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1
# Waits for a lock print here; `ecomwh run` shows this logger on the terminal.
WAIT_LOG = logging.getLogger("ecomwh.wait")


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    started: float  # psutil's create_time: seconds since the epoch, the same value on every read

    def to_json(self) -> dict:
        return {"pid": self.pid, "started": self.started}


def record_of(pid: int) -> ProcessRecord | None:
    try:
        return ProcessRecord(pid, psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def this_process() -> ProcessRecord:
    record = record_of(os.getpid())
    assert record is not None
    return record


def is_running(record: ProcessRecord) -> bool:
    """The recorded process itself is alive (not a later process that got its PID)."""
    try:
        proc = psutil.Process(record.pid)
        return abs(proc.create_time() - record.started) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def started_by(pid: int, not_after: float) -> bool:
    """Process `pid` is alive and started no later than `not_after` (epoch seconds): it can be the
    process that did something at that time, not a later one that reuses its PID."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() <= not_after + 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def describe(pid: int) -> str:
    try:
        proc = psutil.Process(pid)
        cmd = " ".join(proc.cmdline()[:4]) or proc.name()
        return f"pid {pid}, `{cmd}`, started {time.strftime('%H:%M:%S', time.localtime(proc.create_time()))}"
    except psutil.Error:
        return f"pid {pid} (gone)"


# ---------------------------------------------------------------------------------------------
# Lock files name their holder, so a process that must wait can say for whom.
def mark_lock_holder(fd: int) -> None:
    """Write this process into the lock file whose lock it just took (fd open read-write)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(this_process().to_json()).encode(), 0)


def lock_holder(lock_path: Path) -> str:
    try:
        return describe(int(json.loads(lock_path.read_text())["pid"]))
    except (OSError, ValueError, TypeError, KeyError):
        return "another process"


def announce_lock_wait(lock_path: Path, what: str) -> None:
    WAIT_LOG.warning(f"waiting for {what} {lock_path}, held by {lock_holder(lock_path)}")


@contextmanager
def exclusive(lock_path: Path, say: Callable[[str], None], what: str, poll_s: float = 0.5) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (released by the kernel if this process dies, so it
    cannot go stale); while another process holds it, say once whom this one waits for."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    say(f"waiting for {lock_holder(lock_path)} to finish ({what}; Ctrl-C to give up)")
                    announced = True
                time.sleep(poll_s)
        mark_lock_holder(fd)
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# PID files of the services `ecomwh serve` starts (each the leader of its own process group).
def write_pid_file(path: Path, pid: int) -> None:
    record = record_of(pid)
    data = (record.to_json() if record else {"pid": pid, "started": None}) | {"home": os.environ.get("EW_HOME")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_pid_file(path: Path) -> ProcessRecord | None:
    """The recorded process, or None for a file that does not say which process (a bare number from
    an older version, garbage): such a PID cannot be told apart from a reused one."""
    try:
        data = json.loads(path.read_text())
        return ProcessRecord(int(data["pid"]), float(data["started"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def group_members(leader: ProcessRecord, home: str | None) -> list[psutil.Process]:
    """Live processes of the group `leader` started, found when the leader itself may be gone: same
    process group, started after the leader, and working for the same state folder."""
    members = []
    for proc in psutil.process_iter(["pid", "create_time"]):
        try:
            if (os.getpgid(proc.pid) != leader.pid or proc.info["create_time"] < leader.started - 0.01
                    or (proc.pid != leader.pid and proc.environ().get("EW_HOME") != home)):
                continue
            if proc.pid == leader.pid and not is_running(leader):
                continue
            members.append(proc)
        except (psutil.Error, OSError):
            continue
    return members


def stop_group(leader: ProcessRecord, home: str | None, grace_s: float = 10.0) -> bool:
    """SIGTERM the group `leader` started, then SIGKILL what is left after `grace_s`. Only processes
    proven to be that group's (start time, state folder) are signalled. Returns whether any was."""
    members = group_members(leader, home)
    for proc in members:
        _signal(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=grace_s)
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    return bool(members)


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


# ---------------------------------------------------------------------------------------------
def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0


def dbt_executable() -> str:
    """dbt for the pipeline's own subprocesses: `ecomwh-dbt`, beside this interpreter."""
    return str(Path(sys.executable).parent / "ecomwh-dbt")


def dbt_main() -> None:
    """`ecomwh-dbt`: dbt's own command line in a process that dies with its parent.

    dagster-dbt runs dbt as a subprocess that writes the warehouse while the run holds the writer
    lock; a run killed with SIGKILL (or by the OOM killer) cannot stop it, and the orphan would go on
    writing without the lock, next to the next run."""
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the request took effect
        sys.exit(f"ecomwh-dbt: the process that started dbt (pid {parent}) is gone; not running")
    from dbt.cli.main import cli

    sys.exit(cli())
