"""A run with nothing new does nothing (lib/nothing_new.py), and every kind of change defeats that.

One tiny generated shop, run twice: the second run must not execute the pipeline job (no new dbt
materialization, an observation saying why on serving/warehouse). Each change class is then
checked against that state with the decision itself, which is what `ecomwh run` asks first; a
`--full-refresh` run does the work again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid

import dagster as dg
import duckdb
import pytest

from dagster_project.lib import dbt_outputs, nothing_new
from tests.ecomwh_proc import Ecomwh, ecomwh_env

pytestmark = pytest.mark.e2e

MART = dg.AssetKey(["marts", "mart_data_quality"])
SERVING = dg.AssetKey(["serving", "warehouse"])


def _ecomwh(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=ecomwh_env(home),
                          capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    home = tmp_path_factory.mktemp("nothing_new") / "ew"
    gen = _ecomwh(home, "generate", "--customers", "50", "--days", "7", "--seed", "3")
    assert gen.returncode == 0, gen.stderr
    first = _ecomwh(home, "run")
    assert first.returncode == 0, first.stdout + first.stderr
    second = _ecomwh(home, "run")
    if "business date moved" in second.stdout:  # midnight in business time fell between the two runs
        second = _ecomwh(home, "run")
    return home, first, second


@pytest.fixture()
def state(shop):
    """The shop's settings and Dagster instance, as `ecomwh run` sees them."""
    from dagster_project.cli.environment import prepare_environment

    saved = dict(os.environ)
    for var in [v for v in os.environ if v.startswith("EW_") or v == "DAGSTER_HOME"]:
        del os.environ[var]
    os.environ.update(ecomwh_env(shop[0]))
    try:
        settings = prepare_environment()  # exports the settings' EW_* variables, as the run does
        with dg.DagsterInstance.get() as instance:
            yield settings, instance
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _decide(state, fingerprint: str | None = None) -> nothing_new.Decision:
    settings, instance = state
    return nothing_new.decide(settings, instance, fingerprint or nothing_new.inputs_fingerprint())


def _mart_builds(instance) -> int:
    return len(instance.fetch_materializations(MART, limit=100).records)


def test_a_second_run_with_nothing_new_builds_nothing_and_says_so(shop, state):
    home, first, second = shop
    _, instance = state
    assert second.returncode == 0, second.stdout + second.stderr
    files = int(second.stdout.split("nothing new: ")[1].split(" files")[0])
    landed = [p for p in (home / "landing").glob("*/*") if not p.name.endswith(".done")]
    assert files == len(landed) and "dbt project unchanged" in second.stdout
    assert "start   dbt_models" in first.stdout and "start   " not in second.stdout
    assert _mart_builds(instance) == 1  # the second run built no dbt model
    pipeline_runs = instance.get_run_records(dg.RunsFilter(job_name=nothing_new.JOB_NAME))
    assert len(pipeline_runs) == 1
    observed = instance.fetch_observations(SERVING, limit=1).records[0].asset_observation
    assert observed.metadata["nothing_new"].value is True
    assert observed.metadata["files_already_loaded"].value == files
    assert observed.metadata["last_run"].value == pipeline_runs[0].dagster_run.run_id


def test_the_state_after_two_runs_is_nothing_new(state):
    assert _decide(state).nothing_new


def test_a_new_landing_file_defeats_it(shop, state):
    landing = shop[0] / "landing" / "orders"
    first = sorted(landing.iterdir())[0]
    extra = landing / f"{first.name.split('.')[0]}_again{''.join(first.suffixes)}"  # a well-formed name
    shutil.copyfile(first, extra)
    try:
        decision = _decide(state)
    finally:
        extra.unlink()
    assert not decision.nothing_new and "is new or changed" in decision.reason
    assert _decide(state).nothing_new


def test_a_changed_dbt_model_or_suite_or_setting_defeats_it(state, tmp_path):
    from dagster_project.settings import DBT_PROJECT_DIR, REPO_ROOT

    root = tmp_path / "repo"
    for top in nothing_new.INPUT_DIRS:
        shutil.copytree(REPO_ROOT / top, root / top, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(DBT_PROJECT_DIR, root / "dbt", ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    env = {"EW_TIMEZONE": "Asia/Shanghai"}
    base = nothing_new.inputs_fingerprint(root, root / "dbt", env)
    assert base == nothing_new.inputs_fingerprint(root, root / "dbt", env)
    seen = {base}
    model = next((root / "dbt" / "models" / "marts").rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- changed\n")
    seen.add(nothing_new.inputs_fingerprint(root, root / "dbt", env))
    suite = next((root / "expectations").glob("*.json"))
    suite.write_text(suite.read_text() + " ")
    seen.add(nothing_new.inputs_fingerprint(root, root / "dbt", env))
    seen.add(nothing_new.inputs_fingerprint(root, root / "dbt", {"EW_TIMEZONE": "UTC"}))
    assert len(seen) == 4
    decision = _decide(state, fingerprint=nothing_new.inputs_fingerprint(root, root / "dbt", env))
    assert not decision.nothing_new and "changed since the last run" in decision.reason


def test_a_failed_last_run_defeats_it(state):
    _, instance = state
    failed = instance.create_run_for_job(
        dg.GraphDefinition("pipeline", node_defs=[]).to_job(), run_id=str(uuid.uuid4()))
    instance.report_run_failed(failed)
    try:
        decision = _decide(state)
    finally:
        instance.delete_run(failed.run_id)
    assert not decision.nothing_new and "did not succeed" in decision.reason
    assert _decide(state).nothing_new


def test_a_missing_or_replaced_published_copy_defeats_it(state):
    settings, _ = state
    serving = settings.serving_path
    aside = serving.with_name("aside.duckdb")
    serving.rename(aside)
    try:
        missing = _decide(state)
    finally:
        aside.rename(serving)
    assert not missing.nothing_new and "missing or not the one" in missing.reason
    with open(serving, "ab") as f:
        f.write(b"\0" * 4096)
    try:
        replaced = _decide(state)
    finally:
        os.truncate(serving, serving.stat().st_size - 4096)
    assert not replaced.nothing_new and "missing or not the one" in replaced.reason
    assert _decide(state).nothing_new


def test_a_moved_freshness_verdict_or_business_date_defeats_it(state, tmp_path):
    settings, _ = state
    manifest = dbt_outputs.load_manifest(settings.dbt_target_dir / "manifest.json")
    copy = tmp_path / "wh.duckdb"
    shutil.copyfile(settings.duckdb_path, copy)
    con = duckdb.connect(str(copy))
    try:
        assert nothing_new.freshness_changed(con, settings.timezone, manifest) is None
        con.execute("update marts.mart_data_quality set unexpected_count = 1 - unexpected_count "
                    "where check_name = 'freshness' and source = 'orders'")
        assert "orders is" in nothing_new.freshness_changed(con, settings.timezone, manifest)
        con.execute("update marts.mart_data_quality set unexpected_count = 1 - unexpected_count, "
                    "check_date = check_date - 1 where check_name = 'freshness'")
        assert "business date moved" in nothing_new.freshness_changed(con, settings.timezone, manifest)
    finally:
        con.close()


def test_a_landing_file_rewritten_with_its_old_size_and_mtime_defeats_it(shop, state):
    """`cp -p` of a corrected file of the same size: only the inode change time tells. (Near the end
    of the module: the file's inode change time cannot be set back.)"""
    path = sorted((shop[0] / "landing" / "orders").iterdir())[0]
    st = path.stat()
    path.write_bytes(path.read_bytes())
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    decision = _decide(state)
    assert not decision.nothing_new and path.name in decision.reason


def test_full_refresh_does_the_work_anyway(shop):
    """Last in the module: the run is interrupted once the pipeline job has started its steps."""
    run = Ecomwh(shop[0], "run", "--full-refresh")
    try:
        run.wait_for(r"start   raw__", 900)
    finally:
        run.signal(signal.SIGINT)
        run.finish(300)
    assert "nothing new" not in run.output and "work to do" not in run.output
