"""One raw asset per source of the contract: landing/<source>/ -> raw.<source> (+ raw.quarantine).

Each validates what it loaded with the Great Expectations suites that hang on it, in the same step
(defs/quality/checks.py says why there and not in a check step of their own).
"""

import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from dagster_project.defs.ingest.imports import IMPORTS_KEY
from dagster_project.defs.quality.checks import QualityResource, raw_check_spec, raw_suites, validate_suite
from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib.contract import SOURCES, Source
from dagster_project.lib.platforms.store import LANDED_SOURCES
from dagster_project.lib.quality import SUITES_DIR, SuiteFile


# Dagster's freshness checks read an update's time from this metadata when it is there.
LAST_UPDATED = "dagster/last_updated_timestamp"


def _utc(value) -> datetime:
    """A raw timestamp (UTC without zone) or date as an aware UTC datetime."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    return value.replace(tzinfo=UTC)


def raw_asset_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", source])


def _make_raw_asset(src: Source, suites: list[SuiteFile]) -> dg.AssetsDefinition:
    parents = [raw_asset_key(parent) for _, parent, _ in src.foreign_keys]
    if src.name in LANDED_SOURCES:  # platform exports land their files first
        parents.append(IMPORTS_KEY)

    @dg.asset(
        key=raw_asset_key(src.name),
        group_name="raw",
        kinds={"duckdb", "python"},
        pool=WRITER_POOL,
        deps=parents,
        check_specs=[raw_check_spec(s) for s in suites],
        description=(
            f"Rows of landing/{src.name}/ files loaded by content hash into raw.{src.name}; rows "
            f"that break the contract go to raw.quarantine. Key: {', '.join(src.key)}. Then the "
            f"loads are validated by {', '.join(s.name for s in suites) or 'no suite'}."
        ),
        metadata={"contract_columns": ", ".join(src.column_names)},
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: WarehouseResource, quality: QualityResource):
        result = warehouse.ingest_source(src.name)
        attention = result.attention()
        for line in attention:
            context.log.warning(line)
        changed = [f for f in result.files if f.status in ("loaded", "replaced", "rejected", "refused")]
        if result.released:
            context.log.info(f"released {sum(result.released.values())} rows quarantined as unknown_key "
                             f"whose parent has arrived: {result.released}")
        for f in changed:
            context.log.info(
                f"{f.file_name}: {f.status}, {f.rows_landed} landed = {f.rows_loaded} loaded + "
                f"{f.rows_quarantined} quarantined ({f.encoding}, {f.seconds:.2f} s)"
                + "".join(f"; {n}" for n in f.notes)
            )
        with warehouse.connect(read_only=False) as con:
            total, newest = con.execute(
                # a device clock running ahead must not make the source look fresh
                f"select count(*), max({src.data_time_column}) filter "
                f"(where {src.data_time_column} <= timezone('UTC', now()) + interval 5 minute) "
                f"from raw.{src.name}").fetchone()
            quarantined = con.execute(
                "select count(*) from raw.quarantine where source = ?", [src.name]).fetchone()[0]
        unreadable = sum(f.status in ("rejected", "refused") for f in result.files)
        started = time.perf_counter()
        checks = [validate_suite(s, warehouse, quality, name=raw_check_spec(s).name) for s in suites]
        yield dg.MaterializeResult(
            metadata={
                "files_loaded": len(changed),
                "files_unchanged": sum(f.status == "skipped_same_content" for f in result.files),
                "files_unreadable": unreadable,
                "files_not_loaded": len(result.problems) + sum(
                    f.status in ("not_ready", "not_loaded", "refused", "still_refused") for f in result.files),
                "rows_landed": result.total("rows_landed"),
                "rows_loaded": result.total("rows_loaded") + sum(result.released.values()),
                "rows_released": sum(result.released.values()),
                # an unreadable file is one quarantine row (row 0)
                "rows_quarantined": result.total("rows_quarantined") + unreadable,
                "table_rows": total,
                # What the freshness checks (defs/dbt/freshness.py) measure: the age of the newest
                # data, not of this load (a backfill loaded a minute ago is still stale).
                **({LAST_UPDATED: dg.MetadataValue.timestamp(_utc(newest))} if newest else {}),
                "quarantined_rows_total": quarantined,
                "misnamed_files": len(result.problems),
                "checks": len(checks),
                "check_seconds": round(time.perf_counter() - started, 2),
                # printed by `ecomwh run` under this asset's line
                **({"attention": dg.MetadataValue.text("\n".join(attention))} if attention else {}),
            }
        )
        yield from checks

    return _raw


def build_raw_assets(suites_dir: Path = SUITES_DIR) -> list[dg.AssetsDefinition]:
    suites = raw_suites(suites_dir)
    return [_make_raw_asset(src, suites.get(src.name, [])) for src in SOURCES.values()]


raw_assets = build_raw_assets()
