"""What was built from which version of the dbt project lives in Dagster's materialization metadata
(`built_from`), not in stamp files: the dbt docs page and the dbt unit tests are skipped only when the
asset's latest materialization in this instance recorded the project's current fingerprint."""

from __future__ import annotations

import subprocess

import dagster as dg
import duckdb
import pytest

from dagster_project.defs.dbt.assets import FINGERPRINT_KEY, built_from


def test_built_from_reads_each_keys_latest_materialization():
    a, b = dg.AssetKey(["x", "a"]), dg.AssetKey(["x", "b"])

    @dg.multi_asset(specs=[dg.AssetSpec(a, skippable=True), dg.AssetSpec(b, skippable=True)],
                    config_schema={"fp": str, "keys": [str]})
    def built(context):
        for key in (a, b):
            if key.path[-1] in context.op_config["keys"]:
                yield dg.MaterializeResult(asset_key=key, metadata={FINGERPRINT_KEY: context.op_config["fp"]})

    instance = dg.DagsterInstance.ephemeral()

    def run(fp: str, keys: list[str]):
        cfg = {"ops": {"built": {"config": {"fp": fp, "keys": keys}}}}
        assert dg.materialize([built], instance=instance, run_config=cfg).success

    assert not built_from(instance, [a], "v1")  # never materialized
    run("v1", ["a", "b"])
    assert built_from(instance, [a, b], "v1") and not built_from(instance, [a, b], "v2")
    run("v2", ["a"])  # b's last build is still from v1: the pair is not built from v2
    assert built_from(instance, [a], "v2") and not built_from(instance, [a, b], "v2")


def test_dbt_docs_page_is_regenerated_when_the_project_changed_and_leaves_no_stamp(ew_home, monkeypatch):
    from dagster_project.defs.resources import warehouse_resource
    from dagster_project.defs.serving import assets as serving

    generated = []

    def fake_dbt(cmd, **kw):  # `dbt docs generate --static`: writes the page into --target-path
        target = cmd[cmd.index("--target-path") + 1]
        generated.append(target)
        (ew_home.home / "dbt" / "docs-target").mkdir(parents=True, exist_ok=True)
        (ew_home.home / "dbt" / "docs-target" / "static_index.html").write_text(f"page {len(generated)}")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(serving.subprocess, "run", fake_dbt)
    fingerprint = {"value": "v1"}
    monkeypatch.setattr(serving, "project_fingerprint", lambda: fingerprint["value"])
    instance = dg.DagsterInstance.ephemeral()

    def build() -> dict:
        result = dg.materialize([serving.dbt_docs_site], instance=instance,
                                resources={"warehouse": warehouse_resource()})
        return {k: v.value for k, v in result.asset_materializations_for_node("serving__dbt_docs")[0].metadata.items()}

    assert build()["regenerated"] is True
    second = build()
    assert second["regenerated"] is False and second[FINGERPRINT_KEY] == "v1"
    fingerprint["value"] = "v2"
    assert build()["regenerated"] is True and len(generated) == 2
    docs = ew_home.home / "docs" / "dbt"
    assert (docs / "index.html").read_text() == "page 2"
    assert sorted(p.name for p in docs.iterdir()) == ["index.html"]  # no fingerprint.txt beside it


@pytest.mark.e2e  # five materializations of the whole dbt asset (~5 s each on the shared machine)
def test_dbt_unit_tests_run_once_for_state_folders_sharing_a_record(tmp_path, monkeypatch):
    """EW_DBT_SHARED_DIR: the first state folder's whole build runs the unit tests and records it,
    a fresh folder of the same checkout skips them; a changed project, or no shared folder, runs them."""
    from dagster_dbt import DbtCliResource

    from dagster_project.defs.dbt import assets
    from dagster_project.defs.resources import warehouse_resource
    from dagster_project.lib.procs import dbt_executable

    calls = []

    class Invocation:
        def stream(self):
            return iter(())

        def is_successful(self):
            return True

    class FakeDbt(DbtCliResource):
        def cli(self, args, **kw):  # what `dbt build` was asked to leave out
            calls.append("resource_type:unit_test" not in args)
            return Invocation()

    monkeypatch.setattr(assets, "blocked_sources", lambda instance: {})
    fingerprint = {"value": "v1"}
    monkeypatch.setattr(assets, "project_fingerprint", lambda: fingerprint["value"])

    def build(folder: str | None, shared: str | None) -> bool:
        """A first whole build in a fresh state folder; whether it ran the unit tests."""
        home = tmp_path / folder
        for var, value in {"EW_HOME": home, "EW_DUCKDB_PATH": home / "wh.duckdb", "EW_LANDING_DIR": home,
                           "EW_QUARANTINE_DIR": home / "q", "EW_TIMEZONE": "Asia/Shanghai"}.items():
            monkeypatch.setenv(var, str(value))
        if shared:
            monkeypatch.setenv("EW_DBT_SHARED_DIR", str(tmp_path / shared))
        else:
            monkeypatch.delenv("EW_DBT_SHARED_DIR", raising=False)
        home.mkdir()
        duckdb.connect(str(home / "wh.duckdb")).execute("create schema raw").close()  # what ingest made
        result = dg.materialize([assets.dbt_models], instance=dg.DagsterInstance.ephemeral(), resources={
            "dbt": FakeDbt(project_dir=str(assets.dbt_project.project_dir), dbt_executable=dbt_executable()),
            "warehouse": warehouse_resource()})
        assert result.success
        return calls[-1]

    assert build("a", "shared") is True
    assert build("b", "shared") is False  # the same project's unit tests passed in a
    assert build("c", None) is True  # nothing shared: each state folder tests its own first build
    fingerprint["value"] = "v2"  # the SQL changed: tested again, once
    assert build("d", "shared") is True
    assert build("e", "shared") is False


def test_the_shared_folder_is_not_an_input_of_a_run_with_nothing_new():
    """EW_DBT_SHARED_DIR changes what a run costs, not what it builds: a world's second run with
    nothing new is one whether or not it shares the folder; a setting the build reads still counts."""
    from dagster_project.lib.nothing_new import inputs_fingerprint

    base = inputs_fingerprint(environ={"EW_TIMEZONE": "Asia/Shanghai"})
    assert inputs_fingerprint(environ={"EW_TIMEZONE": "Asia/Shanghai", "EW_DBT_SHARED_DIR": "/tmp/x"}) == base
    assert inputs_fingerprint(environ={"EW_TIMEZONE": "UTC", "EW_DBT_SHARED_DIR": "/tmp/x"}) != base
