"""The warehouse resource: where the DuckDB file and the landing folder are, and the writer lock."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb

from dagster_project.lib import ingest, landing
from dagster_project.settings import get_settings

# All writers to the pipeline's DuckDB file share this pool; dagster.yaml gives it one slot.
WRITER_POOL = "duckdb_writer"


class WarehouseResource(dg.ConfigurableResource):
    """Paths come from EW_* variables (see dagster_project/settings.py); `ecomwh` exports them."""

    home: str
    duckdb_path: str
    landing_dir: str
    quarantine_dir: str
    timezone: str = "Asia/Shanghai"

    @property
    def lock_path(self) -> Path:
        return Path(self.home) / "warehouse.lock"

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
        # the guards against files still being written and oversized ones (EW_LANDING_*, EW_MAX_*,
        # EW_DUCKDB_MEMORY_LIMIT)
        settings = get_settings()
        limits = landing.Limits(max_bytes=settings.max_file_mb << 20,
                                max_ratio=settings.max_compression_ratio)
        return ingest.ingest_source(
            Path(self.duckdb_path), Path(self.landing_dir), source, tz=self.timezone,
            lock_path=self.lock_path, quarantine_dir=Path(self.quarantine_dir), limits=limits,
            settle_s=settings.landing_settle_s, require_done=settings.landing_require_done,
            memory_limit=settings.duckdb_memory_limit,
        )


def warehouse_resource() -> WarehouseResource:
    return WarehouseResource(
        home=dg.EnvVar("EW_HOME"),
        duckdb_path=dg.EnvVar("EW_DUCKDB_PATH"),
        landing_dir=dg.EnvVar("EW_LANDING_DIR"),
        quarantine_dir=dg.EnvVar("EW_QUARANTINE_DIR"),
        timezone=dg.EnvVar("EW_TIMEZONE"),
    )
