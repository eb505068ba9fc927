"""The raw contract is typed once (lib/contract.py) and rendered everywhere else: these tests fail when a
rendered file is stale, when an enum list is typed by hand again, and when the freshness checks stop
following the contract's SLAs."""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from dagster_project.lib import contract, contract_render
from dagster_project.lib.contract import ENUMS, SOURCES, sla_minutes

REPO = Path(__file__).resolve().parent.parent


def test_generated_files_are_up_to_date():
    stale = [str(p.relative_to(REPO)) for p in contract_render.stale()]
    assert stale == [], f"stale generated files {stale}: run `{contract_render.GENERATOR}`"


def test_check_mode_names_a_stale_file_and_writing_fixes_it(tmp_path, monkeypatch, capsys):
    # a copy of the generated files' folders, one of them edited by hand
    for rel in ("dbt/models/staging", "dbt/macros", "dbt/seeds", "expectations"):
        shutil.copytree(REPO / rel, tmp_path / rel)
    labels = tmp_path / "dbt/seeds/enum_labels.csv"
    labels.write_text(labels.read_text().replace("天猫", "天猫商城"))
    assert contract_render.stale(tmp_path) == [labels]
    # one edit of the contract (a channel's label) reaches the seed and nothing else
    relabelled = {**contract.ENUM_LABELS["channel"], "tmall": ("天猫商城", "Tmall")}
    monkeypatch.setitem(contract.ENUM_LABELS, "channel", relabelled)
    assert contract_render.stale(tmp_path) == []
    # the command line names the stale file and exits 1
    monkeypatch.undo()
    monkeypatch.setattr(contract_render, "REPO_ROOT", tmp_path)
    assert contract_render.main(["--check"]) == 1
    assert "stale: dbt/seeds/enum_labels.csv" in capsys.readouterr().err
    assert contract_render.main([]) == 0
    assert contract_render.main(["--check"]) == 0


def test_an_enum_value_edited_in_the_contract_reaches_dbt_ge_and_the_labels(tmp_path, monkeypatch):
    for rel in ("dbt/models/staging", "dbt/macros", "dbt/seeds", "expectations"):
        shutil.copytree(REPO / rel, tmp_path / rel)
    # the one-line edit: CHANNELS gains a value (its label is the second line of the change)
    channels = (*contract.CHANNELS, "kuaishou")
    for name in ("users", "orders", "ad_spend"):
        src = SOURCES[name]
        cols = tuple(replace(c, enum=channels) if c.enum == contract.CHANNELS else c for c in src.columns)
        monkeypatch.setitem(SOURCES, name, replace(src, columns=cols))
    monkeypatch.setitem(ENUMS, "channel", channels)
    labels = {**contract.ENUM_LABELS["channel"], "kuaishou": ("快手", "Kuaishou")}
    monkeypatch.setitem(contract.ENUM_LABELS, "channel", labels)
    stale = {str(p.relative_to(tmp_path)) for p in contract_render.stale(tmp_path)}
    # raw_campaigns: its campaign-channel plausibility rule names the enum (meta.contract_enum)
    assert stale == {"dbt/macros/contract.sql", "dbt/seeds/enum_labels.csv", "expectations/raw_users.json",
                     "expectations/raw_orders.json", "expectations/raw_campaigns.json",
                     "expectations/raw_ad_spend.json",
                     "dbt/models/staging/crm/_crm__sources.yml", "dbt/models/staging/oms/_oms__sources.yml",
                     "dbt/models/staging/marketing/_marketing__sources.yml"}
    suite = json.loads(contract_render.rendered(tmp_path)[tmp_path / "expectations/raw_orders.json"])
    in_set = [e["kwargs"]["value_set"] for e in suite["expectations"]
              if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "channel"]
    assert in_set == [list(channels)]


def test_a_value_without_a_label_is_refused(monkeypatch):
    monkeypatch.setitem(ENUMS, "platform", (*contract.PLATFORMS, "harmonyos"))
    with pytest.raises(ValueError, match="ENUM_LABELS\\['platform'\\]"):
        contract_render.render_enum_labels()


def test_enum_labels_cover_every_value_of_every_enum_in_the_shared_format():
    with (REPO / "dbt/seeds/enum_labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["enum", "value", "label_zh", "label_en"]
    assert [(r["enum"], r["value"]) for r in rows] == [(e, v) for e, values in ENUMS.items() for v in values]
    assert len([r for r in rows if r["enum"] == "channel"]) == 11
    assert {"enum": "channel", "value": "tmall", "label_zh": "天猫", "label_en": "Tmall"} in rows
    assert all(r["label_zh"] and r["label_en"] for r in rows)
    # every enum column of the contract is one of the named enums
    assert {c.enum for s in SOURCES.values() for c in s.columns if c.enum} == set(ENUMS.values())


def test_no_dbt_yaml_types_a_contract_enum_by_hand():
    """The staging tests take the values from contract_enum(); only generated files list them."""
    generated = set(contract_render.rendered())
    typed = []
    for path in sorted((REPO / "dbt").rglob("*.yml")):
        if path in generated:
            continue
        for node in _walk(yaml.safe_load(path.read_text())):
            values = node.get("values") if isinstance(node, dict) else None
            if isinstance(values, list) and tuple(values) in set(ENUMS.values()):
                typed.append(f"{path.relative_to(REPO)}: {values}")
    assert typed == []
    # nor does a GE suite: its in-set rules are generated or name their enum (meta.contract_enum)
    for path in sorted((REPO / "expectations").glob("*.json")):
        for e in json.loads(path.read_text())["expectations"]:
            meta, values = e.get("meta") or {}, e["kwargs"].get("value_set") or []
            if ("generated" not in meta and "contract_enum" not in meta
                    and any(set(enum) <= set(values) for enum in ENUMS.values() if len(enum) > 2)):
                typed.append(f"{path.relative_to(REPO)}: {values}")
    assert typed == []
    staging = "".join(p.read_text() for p in (REPO / "dbt/models/staging").rglob("_*__models.yml"))
    used = set(re.findall(r"contract_enum\('(\w+)'\)", staging))
    assert used == set(ENUMS)  # every enum is tested in staging, by name


def _walk(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def test_settings_imports_nothing_from_lib():
    """settings is the bottom of the import graph: lib reads it, never the other way round."""
    tree = ast.parse((REPO / "dagster_project/settings.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert [m for m in imported if m and m.startswith("dagster_project")] == []


def test_sla_overrides_and_bad_values(monkeypatch):
    assert sla_minutes({})["orders"] == 15 and sla_minutes({})["events"] == 60 and sla_minutes({})["users"] == 1440
    assert sla_minutes({"EW_SLA_ORDERS_MIN": "30"})["orders"] == 30
    with pytest.raises(ValueError, match="EW_SLA_EVENTS_MIN"):
        sla_minutes({"EW_SLA_EVENTS_MIN": "an hour"})
    with pytest.raises(ValueError, match="EW_SLA_EVENTS_MIN"):
        sla_minutes({"EW_SLA_EVENTS_MIN": "0"})


def test_dbt_sources_carry_the_contract_freshness_and_asset_keys():
    sources = {}
    for path in (REPO / "dbt/models/staging").rglob("_*__sources.yml"):
        for system in yaml.safe_load(path.read_text())["sources"]:
            for table in system["tables"]:
                sources[table["name"]] = (system["name"], table)
    assert set(sources) == set(SOURCES)
    for name, (system, table) in sources.items():
        src = SOURCES[name]
        assert system == src.system
        config = table["config"]
        assert config["meta"]["dagster"]["asset_key"] == ["raw", name]
        assert src.data_time_column in config["loaded_at_field"]
        assert config["freshness"]["warn_after"] == {
            "count": f"{{{{ env_var('EW_SLA_{name.upper()}_MIN', '{src.sla_minutes}') | as_number }}}}",
            "period": "minute"}
        assert [c["name"] for c in table["columns"]][: len(src.columns)] == list(src.column_names)


def _manifest(tmp_path: Path) -> Path:
    """The sources part of a dbt manifest, as dbt parses the rendered YAML (count rendered)."""
    nodes = {}
    for name, src in SOURCES.items():
        nodes[f"source.ecom_warehouse.{src.system}.{name}"] = {
            "name": name, "meta": {"dagster": {"asset_key": ["raw", name]}},
            "freshness": {"warn_after": {"count": src.sla_minutes, "period": "minute"}}}
    nodes["source.ecom_warehouse.quality.mart_data_quality"] = {
        "name": "mart_data_quality", "meta": {"dagster": {"asset_key": ["marts", "mart_data_quality"]}},
        "freshness": {"warn_after": {"count": None, "period": None}}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"sources": nodes}))
    return path


def test_freshness_checks_are_built_from_the_dbt_sources_with_the_contract_sla(tmp_path, monkeypatch):
    from dagster_project.defs.dbt.freshness import build_freshness_checks

    monkeypatch.setenv("EW_SLA_ORDERS_MIN", "30")
    checks = build_freshness_checks(_manifest(tmp_path))
    delta = {}
    for check in checks:
        for spec in check.check_specs:
            params = spec.metadata["dagster/freshness_params"].value
            delta[spec.asset_key.path[1]] = params["lower_bound_delta_seconds"] / 60
    # a dbt source without freshness (mart_data_quality) gets none
    assert delta == {**{s: 1440 for s in SOURCES}, "orders": 30, "events": 60}


def test_freshness_check_measures_the_age_of_the_newest_data_not_of_the_load(tmp_path, monkeypatch):
    """The raw asset reports its newest data time as dagster/last_updated_timestamp: a load that ran a
    moment ago of orders 20 minutes old is stale against 15 minutes and fresh against 30."""
    from dagster_project.defs.dbt.freshness import build_freshness_checks
    from dagster_project.defs.ingest.assets import LAST_UPDATED

    newest = datetime.now(UTC) - timedelta(minutes=20)

    @dg.asset(key=["raw", "orders"])
    def orders():
        return dg.MaterializeResult(metadata={LAST_UPDATED: dg.MetadataValue.timestamp(newest)})

    manifest = _manifest(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([orders], instance=instance).success

    def verdict(env_minutes: str) -> bool:
        monkeypatch.setenv("EW_SLA_ORDERS_MIN", env_minutes)
        check = next(c for c in build_freshness_checks(manifest)
                     if dg.AssetKey(["raw", "orders"]) in {s.asset_key for s in c.check_specs})
        job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks_for_assets(orders))
        defs = dg.Definitions(assets=[orders], asset_checks=[check], jobs=[job])
        result = defs.resolve_job_def("freshness").execute_in_process(instance=instance)
        (evaluation,) = [e for e in result.get_asset_check_evaluations()
                         if e.asset_key == dg.AssetKey(["raw", "orders"])]
        return evaluation.passed

    assert verdict("15") is False
    assert verdict("30") is True
