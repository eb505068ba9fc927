"""`ecomwh`: generate demo data, run the pipeline, serve the UIs, show status.

Every command reads its settings from EW_* variables (dagster_project/settings.py) and writes only
under EW_HOME.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from dagster_project.lib.contract import sla_minutes
from dagster_project.settings import REPO_ROOT, Settings, export_env, get_settings

DAGSTER_YAML = """\
# Written by ecomwh: Dagster's instance lives inside EW_HOME.
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  pools:
    # every writer of the DuckDB file is in the duckdb_writer pool: one at a time
    default_limit: 1
"""



def prepare_environment() -> Settings:
    settings = get_settings()
    settings.ensure_dirs()
    make_private(settings.home)
    os.environ.update(export_env(settings))
    os.environ["EW_QUARANTINE_DIR"] = str(settings.quarantine_dir)
    dagster_yaml = settings.dagster_home / "dagster.yaml"
    if not dagster_yaml.exists() or dagster_yaml.read_text() != DAGSTER_YAML:
        dagster_yaml.write_text(DAGSTER_YAML)
    return settings


PRIVATE_STAMP = ".private"


def make_private(home: Path) -> None:
    """Only the owner may read EW_HOME: it holds the warehouse, Superset's password hashes and SQL
    Lab history, the refused rows and the logs. A 0700 folder already keeps everything in it from
    other users; new files are also 0600 by the umask `main` sets, and what an older version left
    readable is fixed once per state folder (symlinks are not followed): walking months of Dagster
    history at every command would cost seconds."""
    os.chmod(home, 0o700)
    if (home / PRIVATE_STAMP).exists():
        return
    for root, _, files in os.walk(home):  # every folder is a root once; files in their folder
        for name in [None, *files]:
            path = os.path.join(root, name) if name else root
            try:
                st = os.lstat(path)
                if st.st_mode & 0o077 and not stat.S_ISLNK(st.st_mode):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
            except OSError:
                continue  # vanished meanwhile, or not ours: the owner's files are what matters
    (home / PRIVATE_STAMP).touch()


# ---------------------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    from dagster_project.lib.generator import generate

    started = time.perf_counter()
    exports_dir = settings.home / "exports" if args.platform_exports else None
    summary = generate(
        settings.landing_dir,
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        bad_rate=args.bad_rate,
        start=date.fromisoformat(args.start),
        timezone=settings.timezone,
        truth_path=settings.home / "truth.json",
        platform_exports=exports_dir,
    )
    took = time.perf_counter() - started
    rows = summary.get("rows_per_source", {})
    print(f"generated {sum(rows.values()) if rows else '?'} rows in {summary.get('files_written', '?')} "
          f"files into {settings.landing_dir} in {took:.1f} s (truth: {settings.home / 'truth.json'})")
    for source, n in sorted(rows.items()):
        print(f"  {source:<24} {n:>10,}")
    if exports_dir is not None:
        files = summary["exports"]["files"]
        print(f"platform exports: {len(files)} files in {exports_dir} (their orders are not in the landing "
              f"folder: import them with `ecomwh import <platform> {exports_dir}/<platform>/*`)")
    return 0


# ---------------------------------------------------------------------------------------------
def cmd_import(args: argparse.Namespace) -> int:
    """Convert seller-centre exports into landing files (docs/imports.md)."""
    settings = prepare_environment()
    from dagster_project.lib import platforms

    try:
        if args.identity_map and not args.args and not args.mapping:
            return _identity_only(settings, Path(args.identity_map))
        if args.mapping:
            mapping, paths = platforms.load_mapping(Path(args.mapping)), args.args
        else:
            if len(args.args) < 1:
                print("ecomwh import: name a platform (" + ", ".join(platforms.shipped_platforms())
                      + ") or give --mapping FILE", file=sys.stderr)
                return 2
            mapping, paths = platforms.shipped_mapping(args.args[0]), args.args[1:]
        rates = platforms.read_rates(Path(args.rates)) if args.rates else None
        if args.identity_map:
            _identity_map(settings, Path(args.identity_map), {mapping.platform: mapping.user_namespace})
    except (platforms.MappingError, platforms.ExportError, ValueError, OSError) as exc:
        print(f"ecomwh import: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print("ecomwh import: no export files given", file=sys.stderr)
        return 2
    started = time.perf_counter()
    failed = 0
    written: dict = {}
    for path in paths:
        try:
            recs, w = platforms.import_exports(settings.home, settings.landing_dir, mapping, [Path(path)],
                                               rates=rates)
        except platforms.ExportError as exc:
            print(f"  {path}: NOT IMPORTED: {exc}", file=sys.stderr)
            failed += 1
            continue
        written.update(w)
        for rec in recs:
            if rec.status == "already_imported":
                print(f"  {rec.export_name}: already imported ({rec.notes[0]}): nothing changes")
                continue
            print(f"  {rec.export_name}: {rec.rows_exported:,} rows exported = {rec.rows_converted:,} converted + "
                  f"{rec.rows_quarantined:,} quarantined" + (f" (as of {rec.as_of})" if rec.as_of else ""))
            for note in rec.notes:
                print(f"    note: {note}")
            for r in _refusals(settings.home, rec)[:args.show]:
                print(f"    {r['file_name']} row {r['row']}: {r['rule']}: {r['reason']}")
            if rec.rows_quarantined > args.show:
                print(f"    … {rec.rows_quarantined - args.show} more in raw.quarantine after `ecomwh run`")
    print(f"{mapping.platform}: {len(written)} landing files written in {time.perf_counter() - started:.1f} s "
          f"into {settings.landing_dir}")
    if args.run:
        return cmd_run(argparse.Namespace(full_refresh=False)) or (1 if failed else 0)
    if written:
        print("load them with `ecomwh run`")
    return 1 if failed else 0


def _identity_map(settings: Settings, path: Path, extra: dict[str, str]) -> None:
    from dagster_project.lib import platforms

    namespaces = {p: platforms.shipped_mapping(p).user_namespace for p in platforms.shipped_platforms()}
    n = platforms.import_identity_map(settings.home, path, namespaces | extra)
    print(f"identity map {path.name}: {n} buyers linked to a phone (kept hashed only)")


def _identity_only(settings: Settings, path: Path) -> int:
    """A new identity map changes users of platforms already imported: rebuild their files."""
    from dagster_project.lib.platforms import store

    _identity_map(settings, path, {})
    written = {}
    for platform in store.all_platforms(settings.home):
        written.update(store.rebuild(settings.home, settings.landing_dir, platform, store.load_identity(settings.home)))
    print(f"{len(written)} landing files rewritten; load them with `ecomwh run`")
    return 0


def _refusals(home: Path, rec) -> list[dict]:
    import polars as pl

    from dagster_project.lib.platforms.store import store_dir

    path = store_dir(home) / rec.platform / rec.export_id / "refusals.parquet"
    return pl.read_parquet(path).to_dicts() if path.exists() else []


# ---------------------------------------------------------------------------------------------
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
            self._print(f"{t} done    {step}")
        elif et == "STEP_FAILURE":
            self.running = None
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
    from dagster._core.instance import DagsterInstance

    from dagster_project.lib import procs, runs

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
        # a failed critical expectation fails the run even when every step ran (a raw one stops only
        # what its source feeds, so the steps themselves may all have succeeded)
        return RunOutcome(result.success and not handler.critical, handler.failures + handler.critical,
                          time.perf_counter() - started, None)
    except Exception as exc:  # noqa: BLE001 - the caller explains it (full disk, unloadable definitions)
        return RunOutcome(False, (handler.failures + handler.critical) if handler else [],
                          time.perf_counter() - started, handler.running if handler else None, exc)
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


def _render_quality_docs(settings: Settings) -> None:
    """A run that failed before its serving/ge_data_docs step leaves its validations' Data Docs
    queued (critical failures render at once): render them, so every result of the run can be read."""
    from dagster_project.defs.quality.checks import QualityResource

    try:
        runner = QualityResource(home=str(settings.home)).runner  # the runner the run's checks used
        if n := runner.render_docs():
            print(f"  GE Data Docs of the run's {n} other validations: {runner.docs_index}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the run already failed; say why the docs did not follow
        print(f"  GE Data Docs not rendered: {exc!r}", file=sys.stderr)


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
    if outcome.error is not None:
        exc = outcome.error
        where = (f"during step {outcome.last_step}" if outcome.last_step
                 else f"after {len(outcome.failures)} failed steps" if outcome.failures else "before any step ran")
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
        _render_quality_docs(settings)
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


# ---------------------------------------------------------------------------------------------
def status_report(settings: Settings, now: datetime | None = None) -> dict:
    """Row counts, quarantine, last load and freshness per source, from the pipeline's file; the
    landing files not loaded and the files loaded with column notes."""
    import duckdb

    from dagster_project.lib import ingest
    from dagster_project.lib.contract import SOURCE_NAMES

    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    sla = sla_minutes()
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        files = {r[0]: r[1:] for r in con.execute(
            "select source, count(*), sum(rows_landed), sum(rows_loaded), "
            "(select count(*) from raw.quarantine q where q.source = f.source), "  # incl. unreadable files
            "max(loaded_at), max(file_date) from raw._files f where status = 'loaded' group by source"
        ).fetchall()}
        rules = con.execute(
            "select source, rule, count(*) from raw.quarantine group by all order by 1, 3 desc").fetchall()
        out = {"duckdb_path": str(settings.duckdb_path), "sources": {}, "quarantine_by_rule": {}}
        for s in SOURCE_NAMES:
            n_files, landed, loaded, quarantined, last_load, last_file_date = files.get(
                s, (0, 0, 0, 0, None, None))
            ts_col = _data_time_column(s)
            # a device clock running ahead must not make a source look fresh: ignore the future
            rows, latest = con.execute(
                f"select count(*), cast(max({ts_col}) filter (where {ts_col} <= ?) as timestamp) "
                f"from raw.{s}", [now + timedelta(minutes=5)]).fetchone()
            # Freshness is the age of the newest data, not of the load: a backfill loaded a minute
            # ago is still stale (and says so).
            age_min = (now - latest).total_seconds() / 60 if latest else None
            out["sources"][s] = {
                "files": n_files, "rows_landed": int(landed or 0), "rows": rows,
                "rows_quarantined": int(quarantined or 0),
                "last_load_utc": last_load.isoformat(timespec="seconds") if last_load else None,
                "last_file_date": last_file_date.isoformat() if last_file_date else None,
                "latest_data_utc": latest.isoformat(timespec="seconds") if latest else None,
                "data_time_column": ts_col,
                "minutes_since_latest_data": round(age_min, 1) if age_min is not None else None,
                "sla_minutes": sla[s],
                "freshness": "no data" if age_min is None else ("ok" if age_min <= sla[s] else "stale"),
            }
        for s, rule, n in rules:
            out["quarantine_by_rule"].setdefault(s, {})[rule] = n
        out["quality"] = _quality_summary(con)
        out["not_loaded"] = [{"path": p, "reason": why} for p, why in ingest.not_loaded(con, settings.landing_dir)]
        out["file_notes"] = [{"path": p, "notes": n} for p, n in ingest.file_notes(con)]
        docs = settings.home / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        out["data_docs"] = docs.as_uri() if docs.exists() else None
    finally:
        con.close()
    published = settings.serving_path.parent / "published.json"
    out["published"] = json.loads(published.read_text()) if published.exists() else None
    return out


def _quality_summary(con) -> dict | None:
    """Latest day of marts.mart_data_quality: status counts and the checks that are not passing."""
    exists = con.execute("select count(*) from information_schema.tables "
                         "where table_schema = 'marts' and table_name = 'mart_data_quality'").fetchall()[0][0]
    if not exists:
        return None
    rows = con.execute("""
        select check_name, source, check_date, status, value, threshold, threshold_op, unexpected_count
        from marts.mart_data_quality q
        where check_date = (select max(check_date) from marts.mart_data_quality i
                            where i.check_name = q.check_name and i.source = q.source)
        order by status desc, check_name, source""").fetchall()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[3]] = counts.get(r[3], 0) + 1
    not_passing = [
        {"check": c, "source": src, "date": d.isoformat(), "status": st, "value": v,
         "threshold": f"{op} {t}" if t is not None else None, "unexpected_count": n}
        for c, src, d, st, v, t, op, n in rows if st != "pass"]
    return {"status_counts": counts, "not_passing": not_passing}


def _data_time_column(source: str) -> str:
    from dagster_project.lib.contract import SOURCES

    return SOURCES[source].data_time_column


def _age(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def cmd_status(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    if not settings.duckdb_path.exists():
        print(f"no warehouse yet at {settings.duckdb_path}: run `ecomwh run`", file=sys.stderr)
        return 1
    try:
        report = status_report(settings)
    except Exception as exc:
        print(f"cannot read {settings.duckdb_path} now ({exc}); is a run writing it?", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"warehouse: {report['duckdb_path']}")
    print(f"{'source':<24}{'files':>6}{'rows':>11}{'quarantined':>12}  {'last load (UTC)':<20}"
          f"{'latest data (UTC)':<20} freshness (age of latest data vs SLA)")
    for s, r in report["sources"].items():
        fresh = r["freshness"]
        if r["minutes_since_latest_data"] is not None:
            fresh += f" ({_age(r['minutes_since_latest_data'])}, SLA {_age(r['sla_minutes'])})"
        print(f"{s:<24}{r['files']:>6}{r['rows']:>11,}{r['rows_quarantined']:>12,}  "
              f"{r['last_load_utc'] or '-':<20}{r['latest_data_utc'] or '-':<20} {fresh}")
    q = report.get("quality")
    if q:
        counts = ", ".join(f"{n} {st}" for st, n in sorted(q["status_counts"].items()))
        print(f"\ndata quality (marts.mart_data_quality, latest day per check): {counts}")
        for item in q["not_passing"][:15]:
            value = f"{item['value']:.4g}" if isinstance(item["value"], (int, float)) else item["value"]
            print(f"  {item['status']:<5} {item['check']:<34} {item['source'] or '-':<22} {item['date']}  "
                  f"value {value} (threshold {item['threshold']}), unexpected {item['unexpected_count']}")
    print(f"\nGreat Expectations Data Docs: {report.get('data_docs') or 'not built yet (run the pipeline)'}")
    pub = report.get("published")
    if pub:
        print(f"published read-only copy: {pub['path']} at {pub['published_at']} "
              f"({len(pub['tables'])} tables; `ecomwh sql`, Superset)")
    else:
        print("published read-only copy: none yet (the pipeline publishes after the marts)")
    if report["quarantine_by_rule"]:
        print("\nquarantined rows by rule (details: raw.quarantine, exports in "
              f"{settings.quarantine_dir}):")
        for s, by_rule in report["quarantine_by_rule"].items():
            print(f"  {s:<24}" + ", ".join(f"{r} {n}" for r, n in by_rule.items()))
    if report["file_notes"]:
        print(f"\nfiles loaded with columns absent (read as empty) or unknown (ignored): {len(report['file_notes'])}")
        for item in report["file_notes"][:30]:
            print(f"  {item['path']}: {item['notes']}")
    if report["not_loaded"]:
        print(f"\nlanding files NOT loaded: {len(report['not_loaded'])}")
        for item in report["not_loaded"][:30]:
            print(f"  {item['path']}: {item['reason']}")
    if len(report["not_loaded"]) > 30 or len(report["file_notes"]) > 30:
        print("  (only the first 30 of each: `ecomwh status --json` lists them all)")
    return 0


# ---------------------------------------------------------------------------------------------
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
        from dagster._core.instance import DagsterInstance

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


def cmd_sql(args: argparse.Namespace) -> int:
    from dagster_project.lib.sql_shell import Shell

    settings = get_settings()
    try:
        shell = Shell(settings.serving_path, mode="csv" if args.csv else "box")
    except FileNotFoundError as exc:
        print(f"ecomwh sql: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command is not None:
            return shell.run_script(args.command)
        if not sys.stdin.isatty():
            return shell.run_script(sys.stdin.read())
        return shell.interactive(settings.home / "sql_history")
    finally:
        shell.close()


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecomwh", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write demo data into the landing folder (+ truth.json)")
    g.add_argument("--customers", type=int, default=20000)
    g.add_argument("--days", type=int, default=180)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--bad-rate", type=float, default=0.002, dest="bad_rate")
    g.add_argument("--start", default="2026-05-20", help="first day (YYYY-MM-DD)")
    g.add_argument("--platform-exports", action="store_true", dest="platform_exports",
                   help="also write the platform channels' orders as seller-centre exports into EW_HOME/exports/ "
                        "(and leave them out of the landing folder)")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("import", help="convert seller-centre exports (taobao, tmall, jd, douyin, pinduoduo, "
                                      "youzan, shopify, or --mapping FILE) into landing files",
                       usage="ecomwh import PLATFORM PATH... | ecomwh import --mapping FILE PATH...")
    i.add_argument("args", nargs="*", metavar="PLATFORM PATH", help="platform, then export files")
    i.add_argument("--mapping", help="a mapping file (YAML) for any other export; then every argument is a path")
    i.add_argument("--rates", help="CSV currency,cny_per_unit: converts amounts of non-CNY exports")
    i.add_argument("--identity-map", dest="identity_map",
                   help="CSV platform,buyer_key,phone (or phone_hash): links platform buyers to a phone")
    i.add_argument("--run", action="store_true", help="run the pipeline afterwards (as `ecomwh run`)")
    i.add_argument("--show", type=int, default=10, help="refused rows to print per export (default 10)")
    i.set_defaults(func=cmd_import)

    r = sub.add_parser("run", help="ingest the landing folder and build every asset, in process")
    r.add_argument("--full-refresh", action="store_true",
                   help="rebuild every date of the incremental dbt models from raw (default: only changed dates)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("status", help="row counts, quarantine, last load and freshness per source")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    v = sub.add_parser("serve", help="start the UIs (Dagster :3000, Superset :8088, dbt docs :8580)")
    v.add_argument("--dagster-port", type=int, default=int(os.environ.get("EW_DAGSTER_PORT", "3000")))
    v.add_argument("--superset-port", type=int, default=int(os.environ.get("EW_SUPERSET_PORT", "8088")))
    v.add_argument("--docs-port", type=int, default=int(os.environ.get("EW_DOCS_PORT", "8580")))
    v.add_argument("--no-superset", action="store_true", help="only Dagster (and the docs page)")
    v.add_argument("--detach", action="store_true", help="start and return; stop with `ecomwh stop`")
    v.set_defaults(func=cmd_serve)

    t = sub.add_parser("stop", help="stop what `ecomwh serve` started")
    t.set_defaults(func=cmd_stop)

    q = sub.add_parser("sql", help="read-only SQL shell on the published copy (marts, docs)")
    q.add_argument("-c", "--command", help="run these statements and exit (otherwise stdin or interactive)")
    q.add_argument("--csv", action="store_true", help="print results as CSV")
    q.set_defaults(func=cmd_sql)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Everything ecomwh and its children write is the owner's alone (docs/serving.md, "Threat model").
    os.umask(0o077)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
