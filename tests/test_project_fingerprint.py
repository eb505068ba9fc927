"""What was built from which version of the dbt project lives in Dagster's materialization metadata
(`built_from`), not in stamp files: the dbt docs page and the dbt unit tests are skipped only when the
asset's latest materialization in this instance recorded the project's current fingerprint."""

from __future__ import annotations

import subprocess

import dagster as dg

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
