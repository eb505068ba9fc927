"""Every test gets its own EW_HOME, so nothing is written into the repo or the real state folder.

Tiers: a test that needs a warehouse built by the pipeline, Superset, a browser or `ecomwh run`/`serve` as
a subprocess is marked `e2e`. `make test` runs everything; `make check` runs `-m "not e2e"`, the fast
tier, in under 3 minutes. Asking for the `truth_warehouse` fixture marks a test `e2e` by itself, so a
new metric test cannot slip into the fast tier. A test that lands a file it wrote whole puts a `.done`
marker beside it: otherwise ingest waits EW_LANDING_SETTLE_S (10 s) for the file to settle.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from dagster_project.settings import export_env, get_settings


DBT_SHARED_VAR = "EW_DBT_SHARED_DIR"
_DBT_SHARED_KEY = pytest.StashKey[str]()

# fixtures that generate a world and run the whole pipeline: whoever asks for one is end to end
PIPELINE_FIXTURES = {"truth_warehouse", "incident_world", "incident_home"}
# ... and the one built once per session, shared by many modules (the others are a module's own)
SESSION_WORLDS = {"truth_warehouse"}


def pytest_configure(config):
    """Test modules load the Dagster definitions, which read the dbt manifest: parse it first (only
    when the dbt project changed since), as `ecomwh run` does.

    Every pipeline world is a fresh state folder built from this checkout, and dbt's unit tests check
    the SQL, not a world's data: the first world of the session to build runs them and records it in
    EW_DBT_SHARED_DIR (defs/dbt/assets.py), the others skip them (~34 s of dbt node time each;
    tests/test_dbt_project.py runs every unit test itself). xdist's workers inherit the folder."""
    from dagster_project.defs.dbt.project import prepare_dbt_project

    prepare_dbt_project()
    if DBT_SHARED_VAR not in os.environ and not hasattr(config, "workerinput"):
        config.stash[_DBT_SHARED_KEY] = os.environ[DBT_SHARED_VAR] = tempfile.mkdtemp(prefix="ew-dbt-shared-")


def pytest_unconfigure(config):
    if folder := config.stash.get(_DBT_SHARED_KEY, None):
        shutil.rmtree(folder, ignore_errors=True)
        del os.environ[DBT_SHARED_VAR]


# `make test` runs on three xdist workers (`-n 3 --dist loadscope --no-loadscope-reorder`), with the
# scheduler below: a module is one unit of work, so its module fixtures are built once, and every module
# that asks for a session-built world is in one unit, so each world is built once. Units start heaviest
# first (seconds in `make test`'s three workers on 2 cores, from --durations): a long unit started last
# would leave the others idle at the end. A module not listed starts after the listed ones, e2e ones
# before fast ones. (xdist's own --dist loadgroup cannot be used: it renames items through an attribute
# pytest 9.2 no longer reads.)
SHARED_WORLDS = "shared worlds"
SLOW_UNITS = {
    SHARED_WORLDS: 1000, "tests/test_fault_injection.py": 690, "tests/test_valid_data_loads.py": 560,
    "tests/test_platform_imports_e2e.py": 430, "tests/test_alerts_incidents.py": 420,
    "tests/test_incremental.py": 400, "tests/test_end_to_end.py": 270, "tests/test_faults.py": 250,
    "tests/test_hostile_run.py": 250, "tests/test_nothing_new.py": 150, "tests/test_experiment_power.py": 95,
    "tests/test_dbt_project.py": 70, "tests/test_sensor_and_serve.py": 45,
}
_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _unit(module: str) -> str:
    """The unit of work of a test module (a rootdir-relative path, as in node ids)."""
    text = (_ROOT / module).read_text(encoding="utf-8")
    return SHARED_WORLDS if re.search(rf"\b({'|'.join(sorted(SESSION_WORLDS))})\b", text) else module


def _unit_of(nodeid: str) -> str:
    return _unit(nodeid.split("::")[0])


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit_of(nodeid)

    return UnitScheduling(config, log)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    e2e_units = {_unit_of(i.nodeid) for i in items if i.get_closest_marker("e2e")}
    order = {u: n for n, u in enumerate(dict.fromkeys(_unit_of(i.nodeid) for i in items))}
    items.sort(key=lambda i: (-SLOW_UNITS.get(_unit_of(i.nodeid), 0), _unit_of(i.nodeid) not in e2e_units,
                              order[_unit_of(i.nodeid)]))


@pytest.fixture()
def ew_home(tmp_path, monkeypatch):
    home = tmp_path / "ew"
    for var in [v for v in os.environ if v.startswith("EW_")] + ["DAGSTER_HOME"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EW_HOME", str(home))
    settings = get_settings()
    settings.ensure_dirs()
    for k, v in export_env(settings).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("EW_QUARANTINE_DIR", str(settings.quarantine_dir))
    return settings


@pytest.fixture()
def wh(tmp_path):
    """A landing folder and a DuckDB file for the loader alone: write landed files, ingest a
    source (ingest_source's keywords pass through), query the warehouse."""
    import duckdb

    from dagster_project.lib import ingest

    class W:
        db = tmp_path / "wh.duckdb"
        landing_dir = tmp_path / "landing"
        lock = tmp_path / "wh.lock"
        quarantine = tmp_path / "quarantine"

        def write(self, source: str, name: str, data: bytes):
            p = self.landing_dir / source / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            return p

        def ingest(self, source: str, **kw) -> ingest.SourceResult:
            return ingest.ingest_source(self.db, self.landing_dir, source, tz="Asia/Shanghai", lock_path=self.lock,
                                        quarantine_dir=self.quarantine, **kw)

        def q(self, sql: str, params=None):
            con = duckdb.connect(str(self.db), read_only=True)
            try:
                return con.execute(sql, params or []).fetchall()
            finally:
                con.close()

        def snapshot(self):
            # everything except load times (file mtimes are also excluded: tests touch files)
            return {
                "orders": sorted(map(str, self.q("select * exclude (_loaded_at) from raw.orders"))),
                "quarantine": sorted(map(str, self.q("select * exclude (quarantined_at) from raw.quarantine"))),
                "_files": sorted(map(str, self.q(
                    "select * exclude (loaded_at, file_mtime_ns) from raw._files"))),
            }

    return W()


@pytest.fixture(scope="session")
def truth_warehouse(tmp_path_factory):
    """A generated dataset built by the whole pipeline once per test session, with its truth.json.

    Metric tests compare marts against truth.json: values the generator computed from its own rows
    with a separate, deliberately simple implementation.
    """
    import json
    import subprocess
    import sys
    from types import SimpleNamespace

    from ecomwh_proc import ecomwh_env

    home = tmp_path_factory.mktemp("truth") / "ew"
    env = ecomwh_env(home)
    exe = [sys.executable, "-m", "dagster_project.cli"]
    gen = subprocess.run(exe + ["generate", "--customers", "2500", "--days", "150", "--seed", "11",
                                "--bad-rate", "0.003"], env=env, capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stderr
    run = subprocess.run(exe + ["run"], env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    return SimpleNamespace(home=home, db=home / "warehouse.duckdb",
                           truth=json.loads((home / "truth.json").read_text()), run_stdout=run.stdout)


@pytest.fixture(scope="session")
def run_dbt():
    """dbt in this process against one DuckDB file: `run_dbt(db_path, work_dir, "build", ...)` returns
    dbt's result. Target and log folders go under work_dir; the business time zone is Asia/Shanghai
    unless given. dbt-duckdb keeps its in-process database open after a run, and DuckDB refuses a
    second connection to the file with another configuration: it is closed before returning."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    from dagster_project.settings import DBT_PROJECT_DIR

    def run(db_path, work_dir, *args: str, timezone: str = "Asia/Shanghai"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EW_DUCKDB_PATH", str(db_path))
            mp.setenv("EW_TIMEZONE", timezone)
            mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            mp.setenv("DO_NOT_TRACK", "1")
            result = dbtRunner().invoke([
                *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                "--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs"),
            ])
        DuckDBConnectionManager.close_all_connections()
        return result

    return run
