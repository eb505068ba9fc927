"""The Dagster definitions load, and raw assets and dbt models form one lineage graph."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.quality.checks import is_raw_suite
from dagster_project.lib.contract import SOURCE_NAMES


def test_definitions_load_as_one_graph(ew_home):
    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {"/".join(k.path) for k in graph.get_all_asset_keys()}
    assert {f"raw/{s}" for s in SOURCE_NAMES} <= keys
    staging = {k for k in keys if k.startswith("staging/")}
    assert len(staging) == len(SOURCE_NAMES)

    # every staging model hangs off exactly the raw asset of its source (dbt source -> raw key)
    for key in graph.get_all_asset_keys():
        if key.path[0] == "staging":
            parents = {"/".join(p.path) for p in graph.get(key).parent_keys}
            assert parents and all(p.startswith("raw/") for p in parents), (key, parents)
    assert graph.get(dg.AssetKey(["raw", "order_items"])).parent_keys == {
        dg.AssetKey(["raw", "orders"]), dg.AssetKey(["raw", "platform_imports"])}
    # platform exports are converted into landing files before the raw assets that load them
    assert dg.AssetKey(["raw", "platform_imports"]) in graph.get(dg.AssetKey(["raw", "users"])).parent_keys
    assert dg.AssetKey(["raw", "platform_imports"]) not in graph.get(dg.AssetKey(["raw", "events"])).parent_keys

    # groups come from the dbt layer, not from model names
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys() if k.path[0] == "staging"} == {"staging"}

    # the published copy waits for every mart, whichever integration builds it
    marts = {k for k in graph.get_all_asset_keys() if k.path[0] == "marts"}
    assert dg.AssetKey(["marts", "mart_ltv_predicted"]) in marts and dg.AssetKey(["marts", "fct_orders"]) in marts
    assert graph.get(dg.AssetKey(["serving", "warehouse"])).parent_keys == marts

    job = defs.resolve_job_def("pipeline")
    assert job.executor_def.name == "in_process"
    assert defs.resolve_sensor_def("landing_sensor") is not None
    assert defs.resolve_schedule_def("daily_pipeline").execution_timezone == "Asia/Shanghai"
    # alerts: evaluated after every mart and before the published copy; notifications and the digest
    alerts = dg.AssetKey(["marts", "mart_metric_alerts"])
    assert graph.get(alerts).parent_keys == marts - {alerts}
    assert defs.resolve_sensor_def("pipeline_failure_notifier") is not None
    assert defs.resolve_sensor_def("delivery_deadline") is not None
    assert defs.resolve_schedule_def("daily_digest_0830").job_name == "daily_digest"

    # dbt tests become asset checks in the UI
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert any(c.asset_key.path[0] == "staging" for c in checks)


def test_raw_suites_are_checks_of_their_raw_asset_and_the_rest_block(ew_home):
    """A raw suite's check is computed by its raw asset (so its ERROR cannot stop the one dbt step that
    builds every model: the dbt step leaves out that source's models itself); the others block."""
    from dagster_project.definitions import defs
    from dagster_project.lib.quality import discover_suites

    graph = defs.resolve_asset_graph()
    for suite in discover_suites():
        key = dg.AssetCheckKey(dg.AssetKey(list(suite.asset)), f"ge_{suite.name}")
        node = graph.get(key)
        if is_raw_suite(suite):
            assert not node.blocking and key in graph.get(dg.AssetKey(list(suite.asset))).check_keys, key
            assert graph.get_execution_set_asset_and_check_keys(key) >= {dg.AssetKey(list(suite.asset))}
        else:
            assert node.blocking, key


def _python(tmp_path, code: str, **env: str):
    import subprocess
    import sys

    home = tmp_path / "ew"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"EW_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env})


def test_importing_the_dbt_project_parses_nothing_and_unprepared_definitions_say_what_to_do(tmp_path):
    """Loading the definitions used to run `dbt parse` at import time, in every process that imported
    them (code server, daemon, each run worker). Now whoever loads them prepares the project first."""
    proc = _python(tmp_path, """
from dagster_project.defs.dbt.project import dbt_project
assert not dbt_project.manifest_path.exists(), "importing the dbt project parsed it"
try:
    import dagster_project.definitions
except FileNotFoundError as exc:
    print(exc)
""")
    assert proc.returncode == 0, proc.stderr
    assert "prepare_dbt_project()" in proc.stdout and str(tmp_path / "ew" / "dbt" / "target") in proc.stdout
    assert not (tmp_path / "ew" / "dbt" / "target" / "manifest.json").exists()


def test_dagster_dev_prepares_the_dbt_project_and_a_fresh_manifest_is_not_parsed_again(tmp_path):
    proc = _python(tmp_path, """
import dagster_project.definitions
from dagster_project.defs.dbt.project import dbt_project, prepare_dbt_project
parsed = dbt_project.manifest_path.stat().st_mtime_ns
prepare_dbt_project()
assert dbt_project.manifest_path.stat().st_mtime_ns == parsed, "a fresh manifest was parsed again"
""", DAGSTER_IS_DEV_CLI="1")  # what `dagster dev` sets for the processes it starts
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ew" / "dbt" / "target" / "manifest.json").exists()
