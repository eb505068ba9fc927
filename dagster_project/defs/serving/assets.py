"""Serving: the published read-only copy (marts + docs) and the dbt docs site.

They run after every mart, in the pipeline job. The copy is what Superset, `ecomwh sql` and
analysts open; the pipeline keeps writing its own file.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import dagster as dg

from dagster_project.defs.alerts.assets import mart_metric_alerts
from dagster_project.defs.dbt.assets import FINGERPRINT_KEY, built_from, dbt_models, project_fingerprint
from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.models.ltv import predicted_ltv
from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib.dbt_parse_seed import PARTIAL_PARSE_FILE
from dagster_project.lib.procs import dbt_executable
from dagster_project.lib.publish import publish

# Every asset in the marts schema, whichever integration builds it (dbt or Python).
MART_KEYS = sorted(
    {k for a in (dbt_models, predicted_ltv, mart_metric_alerts) for k in a.keys
     if k.path[0] == "marts"},
    key=lambda k: k.to_user_string(),
)
SERVING_COPY = dg.AssetKey(["serving", "warehouse"])
DBT_DOCS = dg.AssetKey(["serving", "dbt_docs"])


def _manifest() -> dict:
    path = Path(dbt_project.manifest_path)
    return json.loads(path.read_text()) if path.exists() else {}


@dg.asset(
    key=SERVING_COPY,
    deps=MART_KEYS,
    group_name="serving",
    kinds={"duckdb"},
    pool=WRITER_POOL,
    description="Read-only copy of schemas marts and docs, published by atomic swap for Superset, "
                "`ecomwh sql` and analysts. Readers never open the pipeline's file.",
)
def serving_warehouse(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    serving_path = warehouse.published_path
    with warehouse.writer():
        summary = publish(Path(warehouse.duckdb_path), serving_path, _manifest())
    context.log.info(f"published {len(summary['tables'])} tables to {serving_path} in {summary['seconds']} s: "
                     f"{len(summary['copied'])} changed and copied, {len(summary['kept'])} unchanged "
                     f"({summary['mode']})")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(serving_path)),
        "tables": len(summary["tables"]),
        "rows": sum(summary["tables"].values()),
        "bytes": summary["bytes"],
        "publish_seconds": summary["seconds"],
        "publish_mode": summary["mode"],
        "tables_copied": dg.MetadataValue.json(summary["copied"]),
        "tables_kept": len(summary["kept"]),
    })


@dg.asset(
    key=DBT_DOCS,
    deps=MART_KEYS,
    group_name="serving",
    kinds={"dbt"},
    pool=WRITER_POOL,
    description="dbt's documentation site (lineage, every model and column) as one static page, "
                "$EW_HOME/docs/dbt/index.html; `ecomwh serve` serves it on 127.0.0.1:8580.",
)
def dbt_docs_site(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    home = Path(warehouse.home)
    target = home / "dbt" / "docs-target"
    out_dir = home / "docs" / "dbt"
    # The page shows the project (models, columns, lineage): regenerate it (12 s) only when the
    # project changed, not on every run that brings new data.
    fingerprint = project_fingerprint()
    metadata = {"path": dg.MetadataValue.path(str(out_dir / "index.html")), FINGERPRINT_KEY: fingerprint}
    if (out_dir / "index.html").exists() and built_from(context.instance, [DBT_DOCS], fingerprint):
        context.log.info("dbt docs unchanged: the project is the same as when they were generated")
        return dg.MaterializeResult(metadata={**metadata, "regenerated": False})
    # Two thirds of what `dbt docs generate` costs on a small warehouse is not the catalog: parsing the
    # project from scratch in its own target folder, and compiling every data test, whose SQL the page
    # never shows (docs/performance.md). The manifest prepared for this run gives dbt a partial parse,
    # and the tests are still in the page's manifest, listed under their models' columns.
    target.mkdir(parents=True, exist_ok=True)
    prepared = Path(dbt_project.project_dir) / dbt_project.target_path / PARTIAL_PARSE_FILE
    if prepared.exists():
        shutil.copyfile(prepared, target / PARTIAL_PARSE_FILE)
    cmd = [dbt_executable(), "docs", "generate", "--static", "--quiet",
           "--project-dir", str(dbt_project.project_dir), "--profiles-dir", str(dbt_project.profiles_dir),
           "--target-path", str(target), "--exclude", "resource_type:test", "resource_type:unit_test"]
    # the catalog query opens the pipeline's file, so dbt is a writer here like in `dbt build`
    with warehouse.writer():
        proc = subprocess.run(cmd, env={**os.environ, "EW_DUCKDB_PATH": warehouse.duckdb_path,
                                        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
                              capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt docs generate failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".index.html.tmp"
    shutil.copyfile(target / "static_index.html", tmp)
    os.replace(tmp, out_dir / "index.html")
    return dg.MaterializeResult(metadata={**metadata, "regenerated": True})
