"""Platform exports dropped into $EW_HOME/imports/<platform>/ become contract files in the landing
folder before the raw assets load it (dagster_project/lib/platforms, docs/imports.md)."""

from pathlib import Path

import dagster as dg

from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib import platforms
from dagster_project.lib.platforms.store import LANDED_SOURCES

IMPORTS_KEY = dg.AssetKey(["raw", "platform_imports"])


@dg.asset(
    key=IMPORTS_KEY,
    group_name="raw",
    kinds={"python", "duckdb"},
    pool=WRITER_POOL,
    description=(
        "Seller-centre exports in $EW_HOME/imports/<platform>/ (Taobao/Tmall, JD, Douyin, Pinduoduo, Youzan, "
        "Shopify, or a folder with its own mapping.yml) converted into landing files of "
        f"{', '.join(LANDED_SOURCES)}; refused export rows go to raw.quarantine at the export's file and row, "
        "imports to raw._imports, row lineage to raw._import_lineage."
    ),
)
def platform_imports(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    home = Path(warehouse.home)
    results = platforms.import_drop_folder(home, Path(warehouse.landing_dir))
    new = 0
    for res in results:
        for err in res.errors:
            context.log.warning(err)
        for rec in res.records:
            if rec.status == "imported":
                new += 1
                context.log.info(f"{res.platform}/{rec.export_name}: {rec.rows_exported} rows exported = "
                                 f"{rec.rows_converted} converted + {rec.rows_quarantined} quarantined")
    with warehouse.connect() as con:
        synced = platforms.sync_warehouse(con, home)
    return dg.MaterializeResult(metadata={
        "exports_imported": new, "exports_total": synced["exports"], "refused_rows": synced["refused_rows"],
        "landing_files_written": sum(len(r.written) for r in results),
        "unreadable_exports": sum(len(r.errors) for r in results),
    })
