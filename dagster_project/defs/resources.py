"""The warehouse resource: where the DuckDB file and the landing folder are, and the writer lock."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb

from dagster_project.lib import ingest, landing
from dagster_project.settings import (
    DUCKDB_MEMORY_LIMIT,
    LANDING_SETTLE_S,
    MAX_COMPRESSION_RATIO,
    MAX_FILE_MB,
    default_serving_path,
    get_settings,
)

# All writers to the pipeline's DuckDB file share this pool; dagster.yaml gives it one slot.
WRITER_POOL = "duckdb_writer"


class WarehouseResource(dg.ConfigurableResource):
    """Paths come from EW_* variables (see dagster_project/settings.py); `ecomwh` exports them. The
    landing guards are the EW_LANDING_* / EW_MAX_* / EW_DUCKDB_MEMORY_LIMIT settings as the definitions
    load (`warehouse_resource`); a run launched from the UI may override any of them."""

    home: str
    duckdb_path: str
    landing_dir: str
    quarantine_dir: str
    timezone: str = "Asia/Shanghai"
    serving_path: str | None = None  # the published read-only copy; None: <home>/serving/warehouse.duckdb
    landing_settle_s: float = LANDING_SETTLE_S  # a landed file loads once unchanged this long
    landing_require_done: bool = False  # load only files with a <file>.done marker
    max_file_mb: int = MAX_FILE_MB  # a file's content, decompressed, above this is refused
    max_compression_ratio: float = MAX_COMPRESSION_RATIO  # a .csv.gz inflating more is refused
    duckdb_memory_limit: str = DUCKDB_MEMORY_LIMIT  # DuckDB spills to disk above this
    # EW_DBT_SHARED_DIR: where a dbt build records that the unit tests of its project passed, for
    # the other state folders of the same checkout (defs/dbt/assets.py); None: each folder tests its own
    dbt_shared_dir: str | None = None

    @property
    def lock_path(self) -> Path:
        return Path(self.home) / "warehouse.lock"

    @property
    def published_path(self) -> Path:
        return Path(self.serving_path) if self.serving_path else default_serving_path(Path(self.home))

    @contextmanager
    def writer(self) -> Iterator[None]:
        with ingest.writer_lock(self.lock_path):
            yield

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with ingest.writer_lock(self.lock_path):
            con = duckdb.connect(self.duckdb_path, read_only=read_only)
            try:
                yield con
            finally:
                con.close()

    def ingest_source(self, source: str) -> ingest.SourceResult:
        limits = landing.Limits(max_bytes=self.max_file_mb << 20, max_ratio=self.max_compression_ratio)
        return ingest.ingest_source(
            Path(self.duckdb_path), Path(self.landing_dir), source, tz=self.timezone,
            lock_path=self.lock_path, quarantine_dir=Path(self.quarantine_dir), limits=limits,
            settle_s=self.landing_settle_s, require_done=self.landing_require_done,
            memory_limit=self.duckdb_memory_limit,
        )


def warehouse_resource() -> WarehouseResource:
    settings = get_settings()
    return WarehouseResource(
        home=dg.EnvVar("EW_HOME"),
        duckdb_path=dg.EnvVar("EW_DUCKDB_PATH"),
        landing_dir=dg.EnvVar("EW_LANDING_DIR"),
        quarantine_dir=dg.EnvVar("EW_QUARANTINE_DIR"),
        timezone=dg.EnvVar("EW_TIMEZONE"),
        serving_path=dg.EnvVar("EW_SERVING_PATH") if os.environ.get("EW_SERVING_PATH") else None,
        landing_settle_s=settings.landing_settle_s,
        landing_require_done=settings.landing_require_done,
        max_file_mb=settings.max_file_mb,
        max_compression_ratio=settings.max_compression_ratio,
        duckdb_memory_limit=settings.duckdb_memory_limit,
        dbt_shared_dir=str(settings.dbt_shared_dir) if settings.dbt_shared_dir else None,
    )
