"""Landing-folder sensor: a run when files appear or change, without opening the DuckDB file
(the running pipeline may hold its writer lock)."""


import hashlib
import json
from pathlib import Path

import dagster as dg

from dagster_project.lib import landing
from dagster_project.lib.contract import SOURCE_NAMES
from dagster_project.lib.ingest import loaded_index_path


def landing_fingerprints(landing_dir: Path) -> dict[str, list[int]]:
    """file path (relative) -> [size, mtime_ns] for every well-named landed file, plus the mtime of
    its `<file>.done` marker when it has one: a marker that appears must start the run that loads
    the file (EW_LANDING_REQUIRE_DONE waits for it)."""
    out: dict[str, list[int]] = {}
    for source in SOURCE_NAMES:
        files, _ = landing.discover(landing_dir, source)
        for lf in files:
            st = lf.path.stat()
            done = landing.done_marker_ns(lf.path)
            out[f"{source}/{lf.name}"] = [st.st_size, st.st_mtime_ns, *([done] if done else [])]
    return out


def import_fingerprints(home: Path) -> dict[str, list[int]]:
    """Exports waiting in the drop folder $EW_HOME/imports/<platform>/: a run imports them."""
    from dagster_project.lib.platforms import drop_folder_exports

    out: dict[str, list[int]] = {}
    for platform, files in drop_folder_exports(home).items():
        for p in files:
            st = p.stat()
            out[f"imports/{platform}/{p.name}"] = [st.st_size, st.st_mtime_ns]
    return out


def build_landing_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts the pipeline when files land or change under EW_LANDING_DIR, or platform "
                    "exports are dropped into EW_HOME/imports/<platform>/.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        landing_dir = Path(dg.EnvVar("EW_LANDING_DIR").get_value())
        current = landing_fingerprints(landing_dir) | import_fingerprints(Path(dg.EnvVar("EW_HOME").get_value()))
        index = loaded_index_path(Path(dg.EnvVar("EW_DUCKDB_PATH").get_value()))
        if context.cursor:
            seen = json.loads(context.cursor)
            changed = sorted(k for k, v in current.items() if seen.get(k) != v)
        else:
            # First tick: files a run (e.g. `ecomwh run`) already loaded are not news. The run's
            # index holds [size, mtime] only: a loaded file's `.done` marker is not news either.
            seen = json.loads(index.read_text()) if index.exists() else {}
            changed = sorted(k for k, v in current.items() if seen.get(k) != v[:2])
        if not changed:
            return dg.SkipReason(f"no new or changed files among {len(current)} landed")
        run_key = hashlib.sha256(json.dumps(changed + [current[k] for k in changed]).encode()).hexdigest()[:16]
        context.update_cursor(json.dumps(current))
        return dg.RunRequest(run_key=run_key, tags={"ew/changed_files": str(len(changed))})

    return landing_sensor
