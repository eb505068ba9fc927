"""`ecomwh run`: the whole pipeline in process, one line per step, and the failures said plainly."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dagster_project.settings import Settings
from dagster_project.cli.environment import prepare_environment


class _ProgressHandler(logging.Handler):
    """Prints one line per step and per asset from Dagster's structured events."""

    def __init__(self, started: float, stream, quiet: bool = False, instance=None) -> None:
        super().__init__()
        self.started = started
        self.stream = stream
        self.quiet = quiet  # collect failures, print nothing
        self.instance = instance
        self.failures: list[str] = []
        self.critical: list[str] = []  # one line per failed critical expectation: where and what to do
        self.running: str | None = None  # the step in progress, for a run that dies in it
        self.last_done: str | None = None  # the last step that ended, for a run that dies between steps

    def _print(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.stream, flush=True)

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None)
        event = meta.get("dagster_event") if meta else None
        if event is None:
            return
        t = f"[{time.perf_counter() - self.started:6.1f}s]"
        et = event.event_type_value
        step = event.step_key or ""
        if et == "STEP_START":
            self.running = step
            self._print(f"{t} start   {step}")
        elif et == "STEP_SUCCESS":
            self.running = None
            self.last_done = step
            self._print(f"{t} done    {step}")
        elif et == "STEP_FAILURE":
            self.running = None
            self.last_done = step
            err = event.step_failure_data.error if event.step_failure_data else None
            msg = _root_message(err) if err else "unknown error"
            if err is None or err.cls_name != "DagsterAssetCheckFailedError":  # said rule by rule instead
                self.failures.append(f"{step}: {msg}")
            if err is not None:  # the whole story goes to the run log (stderr is the log file here)
                print(f"STEP FAILURE {step}:\n{err.to_string()}", file=sys.stderr, flush=True)
            self._print(f"{t} FAILED  {step}: {msg}")
        elif et == "STEP_SKIPPED":
            self._print(f"{t} skipped {step}: what it reads was not rebuilt in this run")
        elif et == "ENGINE_EVENT" and "blocked by limit for pool" in (event.message or ""):
            # another run started after this one holds the slot; Dagster polls until it is free
            from dagster_project.lib.runs import slot_holders

            holders = ", ".join(h.describe() for h in slot_holders(self.instance)) if self.instance else ""
            self._print(f"{t} waiting {step}: {event.message}" + (f", held by {holders}" if holders else ""))
        elif et == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            key = "/".join(mat.asset_key.path)
            md = mat.metadata
            extra = ""
            if "rows_loaded" in md:
                extra = (f": +{md['rows_loaded'].value} rows, {md['rows_quarantined'].value} quarantined, "
                         f"{md['files_loaded'].value} new files")
                if md.get("checks") and md["checks"].value:
                    n = md["checks"].value
                    extra += f"; {n} check{'s' if n > 1 else ''} {md['check_seconds'].value} s"
            if "model_status" in md and md["model_status"].value != "fitted":
                extra = f": {md['model_status'].value.replace('_', ' ')} ({md['model_reason'].value})"
            self._print(f"{t}   built {key}{extra}")
            if "attention" in md:  # files a raw asset refused, could not read or did not load
                for line in str(md["attention"].value).splitlines():
                    self._print(f"{' ' * len(t)}     {line}")
        elif et == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            if not ev.passed:
                sev = getattr(ev.severity, "value", str(ev.severity))
                self._print(f"{t}   check {'/'.join(ev.asset_key.path)} {ev.check_name}: FAILED ({sev})")
                failures = ev.metadata.get("failures")
                if failures is None and ev.description:  # not a GE suite: its sentence (freshness)
                    self._print(f"{' ' * len(t)}     {ev.description}")
                for f in (failures.value if failures is not None else []) or []:
                    if f.get("severity") == "critical":
                        self.critical.append(critical_line(ev.asset_key.path, ev.check_name, f))
                    else:
                        self._print(f"{' ' * len(t)}     {f.get('severity')}: {expectation_line(f)}")


def _count(f: dict) -> str:
    n, of = f.get("unexpected_count"), f.get("element_count")
    if n is None:
        return f"observed {f.get('observed_value')!r}"
    return f"{n} of {of} rows" if of is not None else f"{n} rows"


def _shorten(text, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def expectation_line(f: dict) -> str:
    """A failed warning or info expectation in one line: rule, how many rows, an example, why."""
    samples = [v for v in f.get("sample_values") or [] if v is not None]
    example = f", e.g. {_shorten(samples[0], 160)!s}" if samples and isinstance(samples[0], str) else ""
    why = f" — {_shorten(f['why'])}" if f.get("why") else ""
    return f"{f.get('expectation')}: {_count(f)}{example}{why}"


def critical_line(asset_path, check_name: str, f: dict) -> str:
    """One failed critical expectation: which rows (file and row), which rule, why it matters, and
    what to do. Raw rows carry their landed file, so the fix is to correct or redeliver that file."""
    rows = f.get("rows") or []
    files: dict[str, list[int]] = {}
    for r in rows:
        files.setdefault(r["file"], []).append(r["row"])
    where = "; ".join(f"{name} row{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}"
                      for name, rs in files.items())
    why = f" ({_shorten(f['why'], 160)})" if f.get("why") else ""
    asset = "/".join(asset_path)
    head = f"{asset} {check_name}: {f.get('expectation')} failed on {_count(f)}{why}"
    if asset_path[0] == "raw" and files:
        landing = ", ".join(f"landing/{asset_path[1]}/{name}" for name in files)
        return (f"{head}: look at {where}. Fix or redeliver {landing}, then run `ecomwh run`; "
                f"the models fed by {asset} were not rebuilt")
    if asset_path[0] == "raw":
        return (f"{head}. Fix or redeliver the files of landing/{asset_path[1]}/ loaded in this run, then run "
                f"`ecomwh run`; the models fed by {asset} were not rebuilt")
    return f"{head}. Fix the model or the data it reads, then run `ecomwh run`; what depends on {asset} was stopped"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DBT_ERROR = re.compile(r"^\w+ Error in (model|test|seed|snapshot|unit_test|operation) ")
_DBT_FAILURE = re.compile(r"^Failure in (model|test|seed|snapshot|unit_test) ")


def _root_message(err) -> str:
    """The line that says what went wrong. dbt's and DuckDB's messages end with where it happened
    (`LINE 186: ...` over a row of ^), which used to be all the terminal showed ("^^^^^"): take
    each failing dbt node with the error under it, else the last line that is not such context."""
    while err.cause is not None:
        err = err.cause
    lines = [_ANSI.sub("", line).strip() for line in err.message.splitlines()]
    lines = [line for line in lines if line.strip("^~ ") and not re.match(r"LINE \d+:", line)]
    for pattern in (_DBT_ERROR, _DBT_FAILURE):
        found = [f"{line}: {lines[i + 1]}" if i + 1 < len(lines) and not pattern.match(lines[i + 1]) else line
                 for i, line in enumerate(lines) if pattern.match(line)]
        if found:
            more = f" (and {len(found) - 3} more in the log)" if len(found) > 3 else ""
            return "; ".join(found[:3]) + more
    return lines[-1] if lines else err.cls_name or "error"


@dataclass
class RunOutcome:
    success: bool  # every step succeeded and no critical expectation failed
    failures: list[str]  # failed steps, then one line per failed critical rule (where, what to do)
    seconds: float
    last_step: str | None  # the step in progress when the run failed outside any step's handling
    error: BaseException | None = None  # what ended the run outside a step (a full disk, ...)
    last_done: str | None = None  # the last step that ended before `error`: it died between steps
    skipped: bool = False  # nothing new: no step ran (lib/nothing_new.py)


def new_run_log(settings: Settings, run_id: str) -> Path:
    """One log file per run, named by its Dagster run id: two runs never share one."""
    log_path = settings.home / "logs" / f"run-{datetime.now():%Y%m%d-%H%M%S}-{run_id[:8]}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as log:
        log.write(f"ecomwh run: Dagster run {run_id}, pid {os.getpid()}, started {datetime.now():%Y-%m-%d %H:%M:%S}\n")
    return log_path


def run_pipeline(settings: Settings, run_id: str, log_path: Path, quiet: bool = False,
                 full_refresh: bool = False) -> RunOutcome:
    """Build every asset in this process, as Dagster run `run_id`.

    Dagster's and dbt's own output (thousands of lines) goes to `log_path`; the terminal gets one
    line per step and per asset, and a line for anything the run waits for. Runs whose process
    died are recovered first, and the run waits (interruptibly) for any other live run to finish.
    """
    import dagster as dg
    from dagster import DagsterInstance

    from dagster_project.lib import nothing_new, procs, runs

    started = time.perf_counter()
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)

    def say(line: str) -> None:
        print(f"ecomwh run: {line}", file=terminal, flush=True)

    wait_handler = logging.StreamHandler(terminal)
    wait_handler.setFormatter(logging.Formatter("ecomwh run: %(message)s"))
    procs.WAIT_LOG.addHandler(wait_handler)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    handler = None
    try:
        with open(log_path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            # the lock first: two runs starting at once on a new state folder would otherwise both
            # create Dagster's sqlite tables ("table runs already exists")
            with procs.exclusive(settings.home / "run" / "ecomwh-run.lock", say, "one `ecomwh run` at a time"), \
                    DagsterInstance.get() as instance:
                runs.wait_for_other_runs(instance, say)
                # before the definitions load (seconds): a run with nothing new stops here
                fingerprint = nothing_new.inputs_fingerprint()
                if not full_refresh:
                    try:
                        decision = nothing_new.decide(settings, instance, fingerprint)
                    except Exception as exc:  # noqa: BLE001 - a question without an answer means work
                        decision = nothing_new.Decision(False, f"could not tell whether anything is new ({exc})")
                    if decision.nothing_new:
                        nothing_new.record_skip(instance, decision, fingerprint)
                        say(f"{decision.reason}: nothing to rebuild, test or publish "
                            f"(`ecomwh run --full-refresh` rebuilds everything)")
                        return RunOutcome(True, [], time.perf_counter() - started, None, skipped=True)
                    say(f"work to do: {decision.reason}")
                from dagster_project.defs.dbt.project import prepare_dbt_project
                prepare_dbt_project()  # the definitions load the dbt manifest
                from dagster_project.definitions import defs

                handler = _ProgressHandler(started, terminal, quiet, instance)
                progress_logger = dg.logger(lambda init_context: _make_logger(handler))
                job_defs = dg.Definitions.merge(defs, dg.Definitions(loggers={"console": progress_logger}))
                job = job_defs.resolve_job_def("pipeline")
                # a logger runs only when run_config names it; otherwise Dagster uses its default
                run_config = {"loggers": {"console": {}}}
                if full_refresh:
                    run_config["ops"] = {"dbt_models": {"config": {"full_refresh": True}}}
                result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config,
                                                run_id=run_id, tags=runs.process_tags())
                if result.success and not handler.critical:  # what the next run compares its inputs with
                    instance.add_run_tags(run_id, {nothing_new.INPUTS_TAG: fingerprint})
        # a failed critical expectation fails the run even when every step ran (a raw one stops only
        # what its source feeds, so the steps themselves may all have succeeded)
        return RunOutcome(result.success and not handler.critical, handler.failures + handler.critical,
                          time.perf_counter() - started, None)
    except Exception as exc:  # noqa: BLE001 - the caller explains it (full disk, unloadable definitions)
        return RunOutcome(False, (handler.failures + handler.critical) if handler else [],
                          time.perf_counter() - started, handler.running if handler else None, exc,
                          last_done=handler.last_done if handler else None)
    finally:
        procs.WAIT_LOG.removeHandler(wait_handler)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):  # the log's disk may be full: the terminal must come back
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        terminal.close()


def _make_logger(handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger("ecomwh.progress")
    log.handlers = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def _render_run_docs(settings: Settings) -> None:
    """What the daemon's run-status sensors do after a run (defs/quality/docs.py): `ecomwh run` has no daemon."""
    from dagster_project.defs.quality.checks import QualityResource
    from dagster_project.defs.quality.docs import render_run_docs

    quality = QualityResource(home=str(settings.home))  # the runner the run's checks used
    if n := render_run_docs(quality, lambda msg: print(f"ecomwh run: {msg}", file=sys.stderr)):
        print(f"ecomwh run: GE Data Docs of {n} validations: {quality.runner.docs_index}", flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    # SIGTERM stops a run as Ctrl-C does: a run waiting for another gives up and says so
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    settings = prepare_environment()
    from dagster_project.lib.platforms import drop_folder_exports

    if not any(settings.landing_dir.iterdir()) and not drop_folder_exports(settings.home):
        print(f"ecomwh run: the landing folder {settings.landing_dir} is empty; run `ecomwh generate`, "
              f"copy files to <landing>/<source>/ or exports to {settings.home / 'imports'}/<platform>/",
              file=sys.stderr)
        return 2
    run_id = str(uuid.uuid4())
    try:
        log_path = new_run_log(settings, run_id)
    except OSError as exc:
        print(f"ecomwh run: cannot write its log in {settings.home / 'logs'}: {exc}"
              f"{_disk_hint(settings, exc)}", file=sys.stderr)
        return 1
    print(f"ecomwh run: landing {settings.landing_dir} -> {settings.duckdb_path} "
          f"(run {run_id[:8]}, log {log_path})", flush=True)
    try:
        outcome = run_pipeline(settings, run_id, log_path, full_refresh=args.full_refresh)
    except KeyboardInterrupt:
        print("ecomwh run: interrupted before it started; nothing was written", file=sys.stderr)
        return 130
    if outcome.skipped:
        print(f"ecomwh run: done in {outcome.seconds:.1f} s (nothing new); see `ecomwh status`", flush=True)
        _print_not_loaded(settings)  # misnamed files still need saying
        return 0
    _render_run_docs(settings)
    if outcome.error is not None:
        exc = outcome.error
        # a full disk can also stop Dagster from recording the next step's start: steps did run
        where = (f"during step {outcome.last_step}" if outcome.last_step
                 else f"after {len(outcome.failures)} failed steps" if outcome.failures
                 else f"after step {outcome.last_done}, before the next one started" if outcome.last_done
                 else "before any step ran")
        print(f"ecomwh run: FAILED {where}: {exc}{_disk_hint(settings, exc)}\n  (full log: {log_path})",
              file=sys.stderr)
        return 1
    if not outcome.success:
        print(f"ecomwh run: FAILED after {outcome.seconds:.1f} s (full log: {log_path})", file=sys.stderr)
        for f in outcome.failures:
            print(f"  - {f}", file=sys.stderr)
        hint = _disk_hint(settings, None)
        if hint:
            print(hint.strip(), file=sys.stderr)
        _print_not_loaded(settings)
        from dagster_project.lib.alerts.pipeline import notify_last_failed_run
        notify_last_failed_run()
        return 1
    print(f"ecomwh run: done in {outcome.seconds:.1f} s; see `ecomwh status` (full log: {log_path})", flush=True)
    _print_not_loaded(settings)
    return 0


def _not_loaded_files(settings: Settings) -> list[tuple[str, str]]:
    """Every file under the landing folder whose rows are not in the warehouse, and why."""
    import duckdb

    from dagster_project.lib import ingest, landing

    if not settings.duckdb_path.exists():
        return landing.survey(settings.landing_dir)
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        return ingest.not_loaded(con, settings.landing_dir)
    finally:
        con.close()


def _print_not_loaded(settings: Settings, shown: int = 30) -> None:
    """A file a run skips must not go unnoticed: misnamed (`Orders_…`, `.CSV`), in a subfolder or a
    misspelled source folder, unreadable, refused, still being written."""
    try:
        files = _not_loaded_files(settings)
    except Exception as exc:  # noqa: BLE001 - the run's own outcome is already printed
        print(f"ecomwh run: could not list the landing files not loaded ({exc})", file=sys.stderr)
        return
    if not files:
        return
    print(f"ecomwh run: {len(files)} landing file(s) NOT loaded (also in `ecomwh status`):", flush=True)
    for path, why in files[:shown]:
        print(f"  {path}: {why}", flush=True)
    if len(files) > shown:
        print(f"  ... and {len(files) - shown} more (`ecomwh status --json` lists them all)", flush=True)


LOW_DISK_BYTES = 64 * 1024 * 1024
_DISK_FULL_TEXT = ("no space left", "disk is full", "database or disk is full", "disk i/o error",
                   "could not write", "out of disk")


def _disk_hint(settings: Settings, exc: BaseException | None) -> str:
    """A sentence naming a full disk when that is what stopped the run: SQLite, DuckDB and Python
    each word it differently, and the free space on EW_HOME's disk is the common evidence."""
    import errno
    import shutil

    try:
        free = shutil.disk_usage(settings.home).free
    except OSError:
        return ""
    said_full = False
    while exc is not None:
        said_full |= getattr(exc, "errno", None) == errno.ENOSPC or any(
            t in str(exc).lower() for t in _DISK_FULL_TEXT)
        exc = exc.__cause__ or exc.__context__
    if free < LOW_DISK_BYTES or (said_full and free < 4 * LOW_DISK_BYTES):
        return (f"\n  The disk holding {settings.home} is full ({free / 1e6:.1f} MB free). Free some space and "
                f"run again: every landed file loads in one transaction, so nothing was half-applied.")
    return ""
