"""Synthetic demo data for the warehouse: landing files for all 15 contract sources plus truth.json.

``generate(landing_dir, customers=20000, days=180, seed=42, bad_rate=0.002)`` writes
``landing_dir/<source>/<source>_<YYYYMMDD>.<ext>`` (formats and encodings: see ``writers.py``) and the
ground truth (``truth.py``) to ``truth_path`` (default ``landing_dir.parent / "truth.json"``, so the
landing folder only holds source folders). Same arguments => byte-identical files. Existing files in
``landing_dir`` are not removed (files of the same name are overwritten): use a fresh folder.

CLI: ``python -m dagster_project.lib.generator LANDING_DIR [--customers N] [--days N] [--seed N]
[--bad-rate X] [--start YYYY-MM-DD] [--timezone TZ] [--truth PATH]``.
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

from dagster_project.lib.contract import SOURCE_NAMES

from .exports import identifiable_world, platform_world, without_exported, write_exports
from .truth import compute_truth
from .world import build_world
from .writers import FORMAT, BadRowPlanter, write_source

__all__ = ["generate", "FORMAT"]


def generate(landing_dir: Path, *, customers: int = 20000, days: int = 180, seed: int = 42,
             bad_rate: float = 0.002, start: date = date(2026, 5, 20), timezone: str = "Asia/Shanghai",
             truth_path: Path | None = None, platform_exports: Path | None = None,
             platform_channels: bool = False, identifiable_only: bool = False, incidents: bool = True) -> dict:
    """platform_exports: also write the orders of platform channels as seller-centre exports into
    that folder (exports.py), and leave them out of the landing folder: importing the exports
    completes it. platform_channels: the world with every shipped platform's buyers (implied by
    platform_exports), so a contract-only build of the same world can be compared with it.
    identifiable_only: without what exports cannot carry (exports.identifiable_world).
    incidents: plant the alert incidents (incidents.py); False records each as skipped."""
    t_start = time.perf_counter()
    landing_dir = Path(landing_dir)
    truth_path = Path(truth_path) if truth_path is not None else landing_dir.parent / "truth.json"
    if days < 7:
        raise ValueError("days must be >= 7")
    world = build_world(customers=customers, days=days, seed=seed, start=start, timezone=timezone,
                        incidents=incidents)
    if platform_channels or platform_exports is not None:
        world.tables = platform_world(world.tables, seed)
    if identifiable_only:
        world.tables = identifiable_world(world.tables)
    t_world = time.perf_counter()
    planter = BadRowPlanter(seed, bad_rate)
    rows_per_file: dict[str, dict[str, int]] = {}
    landed = world.tables
    exports_manifest = None
    if platform_exports is not None:
        exports_manifest = write_exports(world.tables, Path(platform_exports), days=days, offset=world.clock.offset)
        landed = without_exported(world.tables)
    for src in SOURCE_NAMES:
        rows_per_file[src] = write_source(src, landed[src], landing_dir, world.clock, planter)
    t_files = time.perf_counter()
    truth = compute_truth(world.tables, start=start, days=days, offset=world.clock.offset, timezone_name=timezone,
                          planted_params=world.planted, planted_bad=planter.planted, rows_per_file=rows_per_file)
    truth["incidents"] = world.incidents
    truth["generator"] = {"customers": customers, "days": days, "seed": seed, "bad_rate": bad_rate,
                          "start": start.isoformat(), "timezone": timezone, "incidents": incidents}
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    t_end = time.perf_counter()
    return {
        "landing_dir": str(landing_dir),
        "truth_path": str(truth_path),
        "files_written": sum(len(v) for v in rows_per_file.values()),
        "files_per_source": {s: len(v) for s, v in rows_per_file.items()},
        "rows_per_source": truth["rows_per_source"],
        "bad_rows_per_source": truth["bad_rows_per_source"],
        "bad_rows_total": truth["bad_rows_total"],
        "seconds": round(t_end - t_start, 3),
        "exports": exports_manifest,
        "seconds_by_phase": {"world": round(t_world - t_start, 3), "files": round(t_files - t_world, 3),
                             "truth": round(t_end - t_files, 3)},
    }
