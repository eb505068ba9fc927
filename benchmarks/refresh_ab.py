"""A/B of the one-day refresh on one warehouse: the same full build, the same held-back day, two
versions of the code. Timings drift between benchmark runs on a shared machine by more than most
changes save (docs/performance.md); replaying one day on a copy of one full build, back to back,
does not.

    .venv/bin/python benchmarks/refresh_ab.py build --preset M --dir .ew/ab   # once: ~13 min at M
    .venv/bin/python benchmarks/refresh_ab.py replay --dir .ew/ab             # per version (git checkout)

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


def build(preset: str, home: Path) -> None:
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    env = bench.env_for(home)
    p = bench.PRESETS[preset]
    generated = home / "landing" if p["replicas"] == 1 else home / "generated"
    subprocess.run([str(bench.BIN / "python"), "-m", "dagster_project.lib.generator", str(generated),
                    "--customers", str(p["customers"]), "--days", str(p["days"])], env=env, check=True,
                   cwd=bench.REPO, stdout=subprocess.DEVNULL)
    if p["replicas"] > 1:
        subprocess.run([str(bench.BIN / "python"), str(bench.REPO / "benchmarks" / "replicate.py"),
                        str(generated), str(home / "landing"), "--replicas", str(p["replicas"])], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(generated)
    print("held back", bench.hold_back_last_day(home / "landing", home / "held_back"), flush=True)
    with open(home / "full_run.log", "w") as log:
        subprocess.run([str(bench.BIN / "ecomwh"), "run", "--full-refresh"], env=env, check=True,
                       stdout=log, stderr=subprocess.STDOUT, cwd=bench.REPO)
    snapshot = home / "snapshot"
    snapshot.mkdir()
    for name in STATE:
        src = home / name
        if src.is_dir():
            shutil.copytree(src, snapshot / name, symlinks=True)
        elif src.exists():
            shutil.copy2(src, snapshot / name)
    print(f"full build done; state kept in {snapshot}", flush=True)


def replay(home: Path) -> dict:
    env = bench.env_for(home)
    snapshot = home / "snapshot"
    landed = [f for f in (home / "held_back").rglob("*") if f.is_file()]
    # back to the state right after the full build, with the day held back again
    for f in (home / "landing").rglob("*"):
        if f.is_file() and (home / "held_back" / f.parent.name / f.name).exists():
            f.unlink()
    for name in STATE:
        target = home / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        src = snapshot / name
        if src.is_dir():
            shutil.copytree(src, target, symlinks=True)
        elif src.exists():
            shutil.copy2(src, target)
    ecomwh = [str(bench.BIN / "ecomwh"), "run"]
    with open(home / "settle_run.log", "w") as log:
        subprocess.run(ecomwh, env=env, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=bench.REPO)
    for f in landed:  # copies: the held-back files stay for the next replay
        shutil.copy2(f, home / "landing" / f.parent.name / f.name)
    log_path = home / "refresh_run.log"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        subprocess.run(ecomwh, env=env, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=bench.REPO)
    out = {"refresh_s": round(time.perf_counter() - started, 1), **bench.refresh_breakdown(log_path, home)}
    print(json.dumps(out, indent=1), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["build", "replay"])
    ap.add_argument("--preset", default="M", choices=sorted(bench.PRESETS))
    ap.add_argument("--dir", type=Path, default=bench.REPO / ".ew" / "ab")
    a = ap.parse_args()
    build(a.preset, a.dir.resolve()) if a.command == "build" else replay(a.dir.resolve())


if __name__ == "__main__":
    main()
