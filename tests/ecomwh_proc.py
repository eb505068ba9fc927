"""`ecomwh` as an operator runs it: a subprocess with its own EW_HOME, whose output lines a test can
wait for while it runs (to kill it at a chosen moment, or to see what it says it waits for)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil


_DBT_SHARED_DIR = os.environ.get("EW_DBT_SHARED_DIR")


def shared_env() -> dict[str, str]:
    """What every world of the session shares: the record that dbt's unit tests passed on this
    checkout (tests/conftest.py, pytest_configure). A test's own `ew_home` removes EW_* variables
    from os.environ, so the folder is read once, when this module is imported."""
    return {"EW_DBT_SHARED_DIR": _DBT_SHARED_DIR} if _DBT_SHARED_DIR else {}


def ecomwh_env(home: Path, **extra: str) -> dict[str, str]:
    return {"EW_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home.parent), **shared_env(), **extra}


class Ecomwh:
    started: list["Ecomwh"] = []

    def __init__(self, home: Path, *args: str, **env: str) -> None:
        Ecomwh.started.append(self)
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "dagster_project.cli", *args], env=ecomwh_env(home, **env),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.lines: list[str] = []
        self._matched = 0
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, after_last: bool = False) -> re.Match:
        """The first output line matching `pattern` (after the line the previous wait matched, with
        `after_last`); fails if the process ends or time runs out first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = self._matched if after_last else 0
        with self._changed:
            while True:
                for i, line in enumerate(self.lines[seen:], start=seen):
                    if m := regex.search(line):
                        self._matched = i + 1
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self.proc.poll() is not None and seen == len(self.lines):
                    raise AssertionError(f"`ecomwh {' '.join(self.args)}` ended ({self.proc.returncode}) without "
                                         f"printing /{pattern}/:\n{self.output[-3000:]}")
                if left <= 0:
                    raise AssertionError(f"`ecomwh {' '.join(self.args)}` printed no /{pattern}/ in {timeout:.0f} s:"
                                         f"\n{self.output[-3000:]}")
                self._changed.wait(min(left, 1.0))

    def finish(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"`ecomwh {' '.join(self.args)}` did not end in {timeout:.0f} s:\n"
                                 f"{self.output[-3000:]}") from None

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []

    def kill(self) -> None:
        """SIGKILL the command itself, as `kill -9` or the OOM killer would (not its children)."""
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    @classmethod
    def kill_all(cls) -> None:
        """End every command a test started and left running (a failed test must not leave a run)."""
        while cls.started:
            cls.started.pop().kill()

