"""dbt models as Dagster assets: one lineage graph from raw files to marts.

Keys and groups come from dbt itself (schema and folder), not from model names in Python:
sources carry meta.dagster.asset_key = ["raw", <table>] so they join the raw assets.
"""


import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.settings import DBT_PROJECT_DIR, get_settings


class EwDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        meta_key = (dbt_resource_props.get("meta") or {}).get("dagster", {}).get("asset_key")
        if meta_key:
            return dg.AssetKey(meta_key)
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["raw", dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn") or []
        # fqn = [project, layer, (domain,) model]: the layer is the group (staging, intermediate, marts)
        return fqn[1] if len(fqn) > 2 else "dbt"


translator = EwDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False  # rebuild every date of the incremental models from raw


def project_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """Hash of the dbt project's own files: what unit tests and the docs site depend on."""
    digest = hashlib.sha256()
    for pattern in ("dbt_project.yml", "models/**/*", "macros/**/*", "tests/**/*", "seeds/**/*"):
        for path in sorted(project_dir.glob(pattern)):
            if path.is_file():
                digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _unit_tests_stamp() -> Path:
    return get_settings().home / "dbt" / "unit_tests_passed.json"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool=WRITER_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource,
               warehouse: WarehouseResource):
    args = ["build"]
    if config.full_refresh:
        args.append("--full-refresh")
    # Unit tests check the SQL, not the data: they run whenever the project changed, and are
    # skipped (14 s) on the runs that only bring new data.
    fingerprint = project_fingerprint()
    stamp = _unit_tests_stamp()
    tested = stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == fingerprint
    if tested:
        args += ["--exclude", "resource_type:unit_test"]
        context.log.info("dbt unit tests skipped: they passed on this exact project already")
    # dbt runs in a subprocess that opens the DuckDB file as a writer: hold the writer lock.
    with warehouse.writer():
        invocation = dbt.cli(args, context=context)
        yield from invocation.stream()
    if not tested and invocation.is_successful():
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"fingerprint": fingerprint}))
