"""Whether a run has nothing to do, decided in a second from what earlier runs already kept.

A run with no new files used to rebuild and test everything (36 s on the demo: start-up, the
definitions, every raw asset, dbt build, docs, publish). `ecomwh run` now asks first, before it
loads the definitions, and does nothing when all of these hold:

- every landing file is in the raw ledger as ingest would skip it (same size and mtime, inode change
  time older than its load: lib/ingest's rule) and no platform export waits in the drop folder;
- the latest `pipeline` run succeeded, with no critical expectation failed, from the same inputs:
  `ecomwh run` tags a successful run with the fingerprint of the dbt project, the suites, the alert
  rules, this package's code and the EW_* settings (a run launched elsewhere has no tag, so the next
  `ecomwh run` does the work);
- that run published the serving copy and the file is still the one it wrote (same size);
- what depends on the clock would come out the same: each source's freshness verdict (within its
  SLA or not, read from the freshness view now) and the business date are those mart_data_quality
  recorded; and no alert message is due (one held in quiet hours, or whose sending failed).

Any other case runs the whole pipeline, and `--full-refresh` always does.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from dagster_project.lib import landing
from dagster_project.lib.contract import SOURCE_NAMES
from dagster_project.lib.dbt_outputs import exposure_tables, load_manifest, written_by
from dagster_project.lib.ingest import CTIME_MARGIN_S
from dagster_project.settings import DBT_PROJECT_DIR, REPO_ROOT, Settings

INPUTS_TAG = "ew/inputs_fingerprint"
JOB_NAME = "pipeline"
# what a run's steps are made of, besides the dbt project (lib/quality.SUITES_DIR, lib/alerts/rules.RULES_DIR)
INPUT_DIRS = ("dagster_project", "expectations", "alerts")
# settings that change what a run costs, never what it builds
OUTCOME_NEUTRAL_SETTINGS = frozenset({"EW_DBT_SHARED_DIR"})


def project_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """Hash of the dbt project's own files: what unit tests and the docs site depend on."""
    digest = hashlib.sha256()
    for pattern in ("dbt_project.yml", "models/**/*", "macros/**/*", "tests/**/*", "seeds/**/*"):
        for path in sorted(project_dir.glob(pattern)):
            if path.is_file():
                digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def inputs_fingerprint(root: Path = REPO_ROOT, project_dir: Path = DBT_PROJECT_DIR,
                       environ: dict[str, str] | None = None) -> str:
    """Hash of everything a run's result depends on besides the data: the dbt project, the GE
    suites, the alert rules, the pipeline's code and the EW_* settings."""
    digest = hashlib.sha256(project_fingerprint(project_dir).encode())
    for top in INPUT_DIRS:
        for path in sorted((root / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    env = os.environ if environ is None else environ
    for key in sorted(k for k in env if k.startswith("EW_") and k not in OUTCOME_NEUTRAL_SETTINGS):
        digest.update(f"{key}={env[key]}\0".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Decision:
    nothing_new: bool
    reason: str  # the sentence the run prints: why it does nothing, or why it does the work
    files: int = 0  # landing files already loaded
    last_run: str | None = None


def _work(reason: str) -> Decision:
    return Decision(False, reason)


def landing_unchanged(con: duckdb.DuckDBPyConnection, landing_dir: Path) -> tuple[int, str | None]:
    """(landing files, the first one ingest would read again or None): a file is skipped by ingest
    when the ledger holds a load of it with the same size and mtime made after its inode last changed."""
    loads: dict[tuple[str, str, int, int], datetime] = {}
    for source, name, size, mtime, loaded_at in con.execute(
            "select source, file_name, file_size, file_mtime_ns, max(loaded_at) from raw._files "
            "where status in ('loaded', 'refused', 'duplicate') and loaded_at is not null "
            "group by all").fetchall():
        loads[(source, name, size, mtime)] = loaded_at
    count = 0
    for source in SOURCE_NAMES:
        files, _ = landing.discover(landing_dir, source)
        for lf in files:
            count += 1
            try:
                st = os.stat(lf.real or lf.path)
            except OSError:
                return count, f"{source}/{lf.name}"
            loaded_at = loads.get((source, lf.name, st.st_size, st.st_mtime_ns))
            ctime = datetime.fromtimestamp(st.st_ctime_ns / 1e9, timezone.utc).replace(tzinfo=None)
            if loaded_at is None or (loaded_at - ctime).total_seconds() <= CTIME_MARGIN_S:
                return count, f"{source}/{lf.name}"
    return count, None


def freshness_changed(con: duckdb.DuckDBPyConnection, tz: str, manifest: dict) -> str | None:
    """The first source whose freshness verdict (or the business date) differs now from what
    the quality mart recorded at its build, or None when they all hold. The tables are found
    through the dbt exposure run_decision in `manifest`, the one the last run parsed."""
    reads = exposure_tables("run_decision", manifest)
    rows = con.execute(reads.sql(
        "select f.source, case when f.within_sla then 0 else 1 end, q.unexpected_count, cast(q.check_date as date), "
        "cast(timezone(?, now()) as date) "
        "from {int_quality__source_freshness} f "
        "left join {mart_data_quality} q on q.check_name = 'freshness' and q.source = f.source "
        "order by f.source"), [tz]).fetchall()
    for source, now_stale, built_stale, built_date, today in rows:
        if built_date != today:
            return f"the business date moved to {today} since the quality mart measured freshness"
        if now_stale != built_stale:
            return f"{source} is {'past' if now_stale else 'within'} its freshness SLA now"
    return None


def alerts_due(con: duckdb.DuckDBPyConnection, state_path: Path, manifest: dict) -> int:
    """Alert messages a run would send now: held in quiet hours or failed, by the last evaluation.
    The table is found through `manifest`, the one the last run parsed: the inputs are the same,
    and loading dagster-dbt to locate it would cost 3 s."""
    import polars as pl

    from dagster_project.lib.alerts.engine import current_states
    from dagster_project.lib.alerts.notify import StateStore, due_events

    relation = written_by("metric_alerts", manifest)["alerts"].relation
    frame = pl.from_arrow(con.sql(f"select * from {relation}").to_arrow_table())
    return len(due_events(current_states(frame), StateStore(state_path)))


def decide(settings: Settings, instance, fingerprint: str) -> Decision:
    """Whether this run has nothing to do (module docstring); `instance` is the Dagster instance."""
    import dagster as dg

    from dagster_project.lib.platforms import drop_folder_exports

    if any(drop_folder_exports(settings.home).values()):
        return _work(f"platform exports wait in {settings.home / 'imports'}")
    records = instance.get_run_records(dg.RunsFilter(job_name=JOB_NAME), limit=1)
    if not records:
        return _work("no earlier run")
    run = records[0].dagster_run
    if run.status != dg.DagsterRunStatus.SUCCESS:
        return _work(f"the last run ({run.run_id[:8]}) did not succeed")
    if INPUTS_TAG not in run.tags:
        return _work(f"the last run ({run.run_id[:8]}) was not an `ecomwh run` that succeeded in full")
    if run.tags[INPUTS_TAG] != fingerprint:
        return _work("the dbt project, suites, alert rules, code or EW_* settings changed since the last run")
    serving_key = dg.AssetKey(["serving", "warehouse"])
    published = instance.get_latest_materialization_events([serving_key]).get(serving_key)
    serving = Path(settings.serving_path)
    if published is None or published.run_id != run.run_id:
        return _work("the last run did not publish the serving copy")
    size = published.asset_materialization.metadata.get("bytes")
    if not serving.exists() or size is None or serving.stat().st_size != size.value:
        return _work(f"the serving copy {serving} is missing or not the one the last run published")
    if not settings.duckdb_path.exists():
        return _work(f"no warehouse at {settings.duckdb_path}")
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        files, changed = landing_unchanged(con, settings.landing_dir)
        if changed:
            return _work(f"landing file {changed} is new or changed")
        manifest = load_manifest(settings.dbt_target_dir / "manifest.json")
        if moved := freshness_changed(con, settings.timezone, manifest):
            return _work(moved)
        if due := alerts_due(con, settings.alert_state_path, manifest):
            return _work(f"{due} alert message(s) are due")
    finally:
        con.close()
    return Decision(True, f"nothing new: {files} files already loaded, dbt project unchanged, the last run "
                          f"({run.run_id[:8]}) succeeded and its published copy is current", files, run.run_id)


def record_skip(instance, decision: Decision, fingerprint: str) -> None:
    """Say in Dagster's event log (an observation of the serving copy) that a run found nothing new."""
    import dagster as dg

    instance.report_runless_asset_event(dg.AssetObservation(
        asset_key=dg.AssetKey(["serving", "warehouse"]), description=decision.reason,
        metadata={"nothing_new": True, "files_already_loaded": decision.files, "last_run": decision.last_run,
                  INPUTS_TAG: fingerprint}))
