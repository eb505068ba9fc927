"""Platform import: seller-centre exports (Taobao/Tmall, JD, Douyin, Pinduoduo, Youzan, Shopify, or
any export described by a mapping file) -> the raw contract's landing files. docs/imports.md.

The interface to the rest of the warehouse is small: `import_exports` writes contract files into the
landing folder (ingest loads them like any other), and `sync_warehouse` records the imports, their
refused rows (in raw.quarantine, at the export's file and row) and the lineage of every converted
row in the warehouse. Nothing here depends on how ingest reads files.
"""

from __future__ import annotations

from dagster_project.lib.platforms.convert import IMPORT_RULES, ExportError, convert_export, read_rates
from dagster_project.lib.platforms.mapping import (
    MappingError, load_mapping, shipped_mapping, shipped_platforms,
)
from dagster_project.lib.platforms.store import (
    ExportRecord, import_exports, import_identity_map, imports_dir,
)
from dagster_project.lib.platforms.warehouse import drop_folder_exports, import_drop_folder, sync_warehouse

__all__ = [
    "IMPORT_RULES", "ExportError", "ExportRecord", "MappingError", "convert_export", "drop_folder_exports",
    "import_drop_folder", "import_exports", "import_identity_map", "imports_dir", "load_mapping",
    "read_rates", "shipped_mapping", "shipped_platforms", "sync_warehouse",
]
