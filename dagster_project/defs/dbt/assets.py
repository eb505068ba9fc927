"""dbt models as Dagster assets: one lineage graph from raw files to marts.

Keys and groups come from dbt itself (schema and folder), not from model names in Python:
sources carry meta.dagster.asset_key = ["raw", <table>] so they join the raw assets.
"""


import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from dagster_project.defs.dbt.project import dbt_project, require_manifest
from dagster_project.defs.quality.checks import blocked_sources
from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib.nothing_new import project_fingerprint
from dagster_project.lib.transaction import transaction


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


# Metadata on each materialization built from the dbt project: Dagster's own event log says which
# version of the project an asset was last built (and unit-tested) from, with no stamp file beside it.
FINGERPRINT_KEY = "dbt_project_fingerprint"


def built_from(instance: dg.DagsterInstance, keys, fingerprint: str) -> bool:
    """Whether the latest materialization of every key recorded this dbt project fingerprint."""
    events = instance.get_latest_materialization_events(list(keys))
    for key in keys:
        event = events.get(key)
        value = event.asset_materialization.metadata.get(FINGERPRINT_KEY) if event else None
        if value is None or value.value != fingerprint:
            return False
    return True


def _with_fingerprint(event, fingerprint: str):
    if isinstance(event, (dg.Output, dg.AssetMaterialization)):
        return event.with_metadata({**event.metadata, FINGERPRINT_KEY: fingerprint})
    return event


def source_selectors(tables, manifest_path: Path | None = None) -> list[str]:
    """dbt selectors of the raw tables' sources and everything built on them: `source:<name>.<table>+`."""
    manifest = json.loads(Path(manifest_path or dbt_project.manifest_path).read_text())
    wanted = {dg.AssetKey(["raw", t]) for t in tables}
    return sorted(f"source:{node['source_name']}.{node['name']}+" for node in manifest["sources"].values()
                  if translator.get_asset_key(node) in wanted)


def unit_tested_record(folder: str | None, fingerprint: str) -> Path | None:
    """The file that says the unit tests of this project passed in some state folder sharing `folder`
    (EW_DBT_SHARED_DIR: the test suite's worlds, each a fresh state folder built from one
    checkout, so its first build need not test the same SQL again). Keyed by the project, the
    setting its SQL reads through env_var() (the business time zone) and dbt's version."""
    if not folder:
        return None
    from dbt.version import __version__ as dbt_version

    key = hashlib.sha256(f"{fingerprint}\0{os.environ.get('EW_TIMEZONE', '')}\0{dbt_version}".encode())
    return Path(folder) / f"dbt-unit-tests-passed-{key.hexdigest()[:32]}"


def record_unit_tested(record: Path) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    tmp.write_text(datetime.now(UTC).isoformat())
    os.replace(tmp, record)


# The mark of the last whole-project dbt build whose tests all passed, kept in the warehouse itself
# (a restored backup brings its own mark): read by dbt/tests/generic/unique_since_verified.sql.
VERIFIED_TABLE = "raw._dbt_verified"


def _verified_marks(con):
    con.execute(f"create table if not exists {VERIFIED_TABLE} "
                "(verified_at timestamp not null, project_fingerprint varchar not null)")
    return con


def prepare_verified_mark(con, fingerprint: str, full_refresh: bool) -> str | None:
    """Keep the mark only if it fits this build; the unique_since_verified tests then count only keys
    of rows built after it. Dropped (every row tested) on --full-refresh and when the dbt project
    changed since (a new or changed test must see the old rows too). Returns the kept mark (UTC)."""
    mark = _verified_marks(con).execute(
        f"select cast(verified_at as varchar), project_fingerprint from {VERIFIED_TABLE}").fetchone()
    if mark and (full_refresh or mark[1] != fingerprint):
        con.execute(f"delete from {VERIFIED_TABLE}")
        return None
    return mark[0] if mark else None


def record_verified_mark(con, fingerprint: str) -> None:
    """After a passing whole-project build: a time later than every built_at it wrote (dbt's
    run_started_at) and earlier than the next build's."""
    ended = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with transaction(_verified_marks(con)):
        con.execute(f"delete from {VERIFIED_TABLE}")
        con.execute(f"insert into {VERIFIED_TABLE} values (cast(? as timestamp), ?)", [ended, fingerprint])


@dbt_assets(
    manifest=require_manifest(),
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
    # skipped (14 s) on the runs that only bring new data. dbt builds a model only after its unit
    # tests pass, so a model materialized from this project's fingerprint was tested on it.
    fingerprint = project_fingerprint()
    unit_tested = unit_tested_record(warehouse.dbt_shared_dir, fingerprint)
    if built_from(context.instance, context.selected_asset_keys, fingerprint) or (
            unit_tested is not None and unit_tested.exists()):
        args += ["--exclude", "resource_type:unit_test"]
        context.log.info("dbt unit tests skipped: they passed on this exact project already")
        unit_tested = None
    # A source whose raw validation failed a critical expectation feeds nothing until it validates
    # clean: its models keep their last good build, everything else is built as usual.
    blocked = blocked_sources(context.instance)
    if blocked:
        args += ["--exclude", " ".join(source_selectors(blocked))]
        for source, checks in sorted(blocked.items()):
            context.log.warning(f"not rebuilt: the models fed by raw/{source} (critical failure in "
                                f"{', '.join(checks)}); they keep their last good build")
    # Not a --vars flag: changing vars makes dbt reparse the whole project (~6 s at every run).
    with warehouse.connect() as con:
        since = prepare_verified_mark(con, fingerprint, config.full_refresh)
    if since:
        context.log.info(f"incremental keys checked for duplicates among rows built after {since} UTC")
    # dbt runs in a subprocess that opens the DuckDB file as a writer: hold the writer lock.
    with warehouse.writer():
        invocation = dbt.cli(args, context=context)
        for event in invocation.stream():
            yield _with_fingerprint(event, fingerprint)
    if not invocation.is_successful() or blocked:
        return  # a partial build tested only its part of the project: no mark
    if not context.is_subset:
        # A build that failed leaves the mark where it was: the rows it wrote are tested again next
        # time. A subset build tested only its part of the project.
        with warehouse.connect() as con:
            record_verified_mark(con, fingerprint)
        if unit_tested is not None:  # every unit test ran and passed: a whole build succeeded
            record_unit_tested(unit_tested)
