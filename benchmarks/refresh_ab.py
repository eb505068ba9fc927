"""A/B of the one-day refresh on one warehouse: the same full build, the same held-back day, two
versions of the code. Timings drift between benchmark runs on a shared machine by more than most
changes save (docs/performance.md); replaying one day on a copy of one full build, back to back,
does not.

    .venv/bin/python benchmarks/refresh_ab.py build --preset M --dir .ew/ab   # once: ~13 min at M
    .venv/bin/python benchmarks/refresh_ab.py replay --dir .ew/ab             # per version (git checkout)

A version whose incremental models changed columns adds `--settle-full-refresh` to `replay`.

`build` generates the preset, holds back its last day (as make bench does), runs the full build and
keeps a copy of the resulting state. `replay` restores that copy, runs once with nothing new (so a
changed dbt project settles: unit tests, docs page, materializations, the verified-tests mark),
lands the held-back day, times `ecomwh run` and prints where the refresh went and dbt's slowest nodes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

STATE = ("warehouse.duckdb", "warehouse.duckdb.loaded.json", "dbt", "gx", "dagster", "docs", "serving",
         "quarantine")


def copy_state(src: Path, dst: Path) -> None:
    """The pipeline's state folder (STATE) from src to dst, replacing what dst had."""
    dst.mkdir(exist_ok=True)
    for name in STATE:
        target = dst / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if (src / name).is_dir():
            shutil.copytree(src / name, target, symlinks=True)
        elif (src / name).exists():
            shutil.copy2(src / name, target)


def ecomwh_run(home: Path, log_name: str, *args: str) -> Path:
    log_path = home / log_name
    with open(log_path, "w") as log:
        subprocess.run([str(bench.BIN / "ecomwh"), "run", *args], env=bench.env_for(home), check=True,
                       stdout=log, stderr=subprocess.STDOUT, cwd=bench.REPO)
    return log_path


def build(preset: str, home: Path) -> None:
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    bench.generate_landing(preset, home, bench.env_for(home))
    print("held back", bench.hold_back_last_day(home / "landing", home / "held_back"), flush=True)
    ecomwh_run(home, "full_run.log", "--full-refresh")
    copy_state(home, home / "snapshot")
    print(f"full build done; state kept in {home / 'snapshot'}", flush=True)


def replay(home: Path, settle_full_refresh: bool = False) -> dict:
    held_back = [f for f in (home / "held_back").rglob("*") if f.is_file()]
    # back to the state right after the full build, with the day held back again
    for f in held_back:
        (home / "landing" / f.parent.name / f.name).unlink(missing_ok=True)
    copy_state(home / "snapshot", home)
    # a version whose incremental models gained columns cannot build on the snapshot's tables: its
    # settling run rebuilds them from raw first (--settle-full-refresh)
    ecomwh_run(home, "settle_run.log", *(["--full-refresh"] if settle_full_refresh else []))
    for f in held_back:  # copies: the held-back files stay for the next replay
        shutil.copy2(f, home / "landing" / f.parent.name / f.name)
    started = time.perf_counter()
    log_path = ecomwh_run(home, "refresh_run.log")
    out = {"refresh_s": round(time.perf_counter() - started, 1),
           **bench.refresh_breakdown(bench.step_times(log_path), home)}
    print(json.dumps(out, indent=1), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["build", "replay"])
    ap.add_argument("--preset", default="M", choices=sorted(bench.PRESETS))
    ap.add_argument("--dir", type=Path, default=bench.REPO / ".ew" / "ab")
    ap.add_argument("--settle-full-refresh", action="store_true",
                    help="settle with `ecomwh run --full-refresh` (a version that changed incremental models' columns)")
    a = ap.parse_args()
    if a.command == "build":
        build(a.preset, a.dir.resolve())
    else:
        replay(a.dir.resolve(), a.settle_full_refresh)


if __name__ == "__main__":
    main()
