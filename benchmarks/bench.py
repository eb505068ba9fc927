"""`make bench`: the whole warehouse at preset sizes, against the floor and the peers, measured in one run.

    .venv/bin/python benchmarks/bench.py [--presets S M] [--dir .ew/bench] [--out docs/benchmarks.md]
                                         [--landing-cache .ew/bench-landing | --no-landing-cache]

For each preset (S = demo, M, L: dagster_project/lib/generator PRESETS):
1. generate the landing files (time, peak RSS), or reuse those a run before generated for the same
   preset, seed and generator sources (--landing-cache, hard links); the last day's files are held back;
2. full build with `ecomwh run --full-refresh` into a fresh EW_HOME: wall time, peak RSS of any
   process, and time per layer (raw, staging, intermediate, marts, checks, publish) from the run's
   step log and dbt's run_results.json (dbt's wall time is split between its layers in proportion to
   their summed node times, dbt runs 2 threads);
3. ingest rows/s per landing format (from raw._files and the raw steps' times);
4. one-day incremental refresh: the held-back day lands, `ecomwh run` until the published copy is
   swapped in: wall time of the whole command, and which dates dbt rebuilt;
5. the same run's baselines: the floor (one DuckDB scan over all raw data), the pandas peer for
   repurchase_rate_30d, cohort retention and the funnel (its results must equal our marts; not at L,
   where it cannot fit in memory: PEER_SKIPPED), and lifetimes' BG/NBD + Gamma-Gamma on our customer
   summary (parameters must match to 1e-3);
6. docs/benchmarks.md: per preset, issue 21's phases of the full build against the same run's
   floor with their targets (`phases`), the measures, and the ratios against the targets of issue 6.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import duckdb  # noqa: E402

from dagster_project.lib import dbt_outputs  # noqa: E402
from dagster_project.lib.landing import FILE_NAME_RE  # noqa: E402

PEERS = REPO / "benchmarks" / "peers.py"  # the pandas peer


def dbt_tables(home: Path, exposure: str) -> dbt_outputs.ExposureTables:
    """The tables a dbt exposure of dbt/models/_python__exposures.yml lists, from the manifest of the
    pipeline in `home` (the settings' default target folder: env_for sets no EW_DBT_TARGET_DIR). A
    model renamed in dbt fails here, naming the exposure, not as a missing table an hour in."""
    return dbt_outputs.exposure_tables(exposure, dbt_outputs.load_manifest(manifest_path(home)))


def manifest_path(home: Path) -> Path:
    return home / "dbt" / "target" / "manifest.json"


def metric_marts(home: Path) -> tuple[str, ...]:
    """The marts the pandas peer recomputes (the dbt exposure benchmark_metric_marts)."""
    return tuple(sorted(dbt_tables(home, "benchmark_metric_marts").nodes))


def pandas_peer(db: Path, log: Path) -> dict:
    """The pandas peer in a process of its own: it holds the raw tables in memory, and at L that may
    exceed the machine; an out-of-memory kill then fails the peer, not the benchmark. The peer offers
    itself as the kernel's first choice (oom_score_adj 1000), so a kill never lands elsewhere."""
    def first_to_kill() -> None:
        Path("/proc/self/oom_score_adj").write_text("1000")

    try:
        seconds, rss = run_measured([str(BIN / "python"), str(PEERS), str(db),
                                     "--manifest", str(manifest_path(db.parent))], dict(os.environ), log,
                                    ok_codes=(0, 1),  # 1: ran, but differs from our marts
                                    preexec_fn=first_to_kill)
    except RuntimeError as exc:
        return {"error": str(exc).splitlines()[0], "match": False}
    text = log.read_text()
    try:
        result = json.loads(text[text.index("{"):])
    except ValueError:
        return {"error": (text.strip().splitlines() or ["no output"])[-1], "match": False}
    result.update(process_seconds=seconds, process_rss_gb=rss)
    return result

# (customers, days) generated once, then replicated (benchmarks/replicate.py) to the preset's size:
# the generator holds its whole world in memory, the replicas are written file by file.
PRESETS = {
    "S": {"customers": 20000, "days": 180, "replicas": 1},   # the demo
    "M": {"customers": 20000, "days": 365, "replicas": 10},  # ~200k customers, ~21M events
    "L": {"customers": 20000, "days": 365, "replicas": 50},  # ~1M customers, ~105M events
    "XS": {"customers": 600, "days": 30, "replicas": 2},     # a smoke test of this script
}
SEED = 42  # the generator's; part of the landing cache's key
# The pandas peer and the dbt rebuild it is compared with measure the "at M" target only. At L the
# peer holds every raw table in pandas: it was killed by the kernel at 23 GiB on a 24 GB machine,
# after the rebuild had cost 204 s of an L run for no ratio.
PEER_SKIPPED = {"L": "skipped at L: the pandas peer holds every raw table in memory (killed by the kernel at "
                     "23 GiB on this 24 GB machine in the L run of 2026-12-04); its target is measured at M"}

BIN = Path(sys.executable).parent
TARGETS = {  # issue 6, on preset L with 2 cores
    "full_build_s": 600, "full_vs_floor": 8.0, "incremental_s": 60, "peak_rss_gb": 6.0,
    "marts_vs_pandas": 10.0, "ltv_vs_lifetimes": 10.0,
}
# issue 21's targets per phase of the full build, on preset L (the metric marts against the peer: at M)
PHASE_TARGETS = {"raw_vs_floor": 3.0, "checks_s": 120, "full_build_s": 600, "full_vs_floor": 8.0,
                 "peak_rss_gb": 6.0, "marts_vs_pandas_m": 2.0}
STEP_RE = re.compile(r"^\[\s*([0-9.]+)s\] (start|done|FAILED)\s+(\S+)")
RAW_CHECKS_RE = re.compile(r"^\[\s*[0-9.]+s\]\s+built raw/(\w+): .*; (\d+) checks? ([0-9.]+) s$")


class RssSampler(threading.Thread):
    """Samples the RSS of every process in a command's tree twice a second and attributes each sample
    to the pipeline steps running at that moment (from the start/done lines of the run's log), so a
    peak can be explained: which process (the pipeline itself or its dbt subprocess) and which step.
    With `spill_dir` (DuckDB's temp folder, where a query beyond its memory_limit spills), the size of
    that folder too: its largest, and the steps running then."""

    def __init__(self, root_pid: int, log: Path, interval: float = 0.5, spill_dir: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.log, self.interval, self.spill_dir = root_pid, log, interval, spill_dir
        self.stop = threading.Event()
        self.peaks: dict[tuple[str, str], float] = {}  # (process kind, steps running) -> peak GB
        self.spill_peak: dict = {"gb": 0.0, "steps": ""}

    def _spilled_gb(self) -> float:
        total = 0
        try:
            for entry in os.scandir(self.spill_dir):
                try:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512  # what the disk holds
                except OSError:
                    continue
        except OSError:
            return 0.0
        return total / 1024 ** 3

    @staticmethod
    def _tree(root: int) -> list[int]:
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d))
        out, todo = [], [root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    @staticmethod
    def _kind(pid: int) -> str:
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            return "?"
        names = [Path(a.decode(errors="replace")).name for a in args[:3] if a]
        for known in ("dbt", "ecomwh", "generator", "replicate.py"):
            if any(n == known or n.endswith(known) for n in names):
                return known
        return names[0] if names else "?"

    def run(self) -> None:
        running: set[str] = set()
        pos = 0
        while not self.stop.wait(self.interval):
            try:
                with open(self.log) as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except OSError:
                chunk = ""
            for line in chunk.splitlines():
                m = STEP_RE.match(line)
                if m:
                    (running.add if m.group(2) == "start" else running.discard)(m.group(3))
            steps = ", ".join(sorted(running)) or "(start-up or between steps)"
            if self.spill_dir is not None and (gb := self._spilled_gb()) > self.spill_peak["gb"]:
                self.spill_peak = {"gb": round(gb, 2), "steps": steps}
            for pid in self._tree(self.root_pid):
                try:
                    rss_kb = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status")
                                  if line.startswith("VmRSS:"))
                except (OSError, StopIteration):
                    continue
                key = (self._kind(pid), steps)
                self.peaks[key] = max(self.peaks.get(key, 0.0), rss_kb / 1024 / 1024)

    def top(self, n: int = 5) -> list[dict]:
        return [{"process": k[0], "steps": k[1], "gb": round(gb, 2)}
                for k, gb in sorted(self.peaks.items(), key=lambda kv: -kv[1])[:n]]


def run_measured(cmd: list[str], env: dict[str, str], log: Path, rss_peaks: list | None = None,
                 ok_codes: tuple[int, ...] = (0,), preexec_fn=None, spill: dict | None = None,
                 spill_dir: Path | None = None) -> tuple[float, float]:
    """Run to completion; (wall seconds, peak RSS in GB of the largest process in the tree).
    With rss_peaks, the largest sampled RSS by process and running step is appended to it; with
    `spill` and `spill_dir`, `spill` gets the largest size of that folder and the steps running then."""
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                preexec_fn=preexec_fn)
        sampler = RssSampler(proc.pid, log, spill_dir=spill_dir) if rss_peaks is not None else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        if sampler:
            sampler.stop.set()
            sampler.join()
            rss_peaks.extend(sampler.top())
            if spill is not None:
                spill.update(sampler.spill_peak)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_gb = usage.ru_maxrss / 1024 / 1024  # Linux: KiB; for a child, the max over its tree
    if proc.returncode not in ok_codes:
        how = (f"killed by {signal.Signals(-proc.returncode).name} after {seconds:,.0f} s at {rss_gb:.1f} GB RSS"
               if proc.returncode < 0 else f"failed ({proc.returncode})")
        raise RuntimeError(f"{' '.join(cmd)} {how}; see {log}:\n"
                           + log.read_text()[-3000:])
    return seconds, rss_gb


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EW_") and k != "DAGSTER_HOME"}
    env.update({"EW_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    return env


def hold_back_last_day(landing: Path, holdback: Path) -> str:
    """Move the last daily delivery (every file dated on or after the last day with a tracking export)
    out of the landing folder. At 365 days the generator also writes a few order status changes dated
    the day after its horizon: holding back only those would measure a two-row refresh."""
    last = max(m.group("date") for f in (landing / "events").iterdir() if (m := FILE_NAME_RE.match(f.name)))
    for f in landing.rglob("*"):
        m = FILE_NAME_RE.match(f.name)
        if m and m.group("date") >= last:
            target = holdback / f.parent.name / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), target)
    return last


def step_times(run_log: Path) -> dict[str, float]:
    """Seconds per step of an `ecomwh run` log. A raw step also validates its loads (its suites run
    in the step: docs/quality.md); its `built raw/<source>: ...; N checks S s` line says how long
    that took, which is moved to N pseudo-steps `raw__<source>_ge_<i>` of S/N each, so the suites
    count as GE time and as suites, and the raw step as ingest only."""
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    checks: dict[str, tuple[int, float]] = {}
    for line in run_log.read_text().splitlines():
        if c := RAW_CHECKS_RE.match(line):
            checks[f"raw__{c.group(1)}"] = (int(c.group(2)), float(c.group(3)))
        m = STEP_RE.match(line)
        if not m:
            continue
        t, what, step = float(m.group(1)), m.group(2), m.group(3)
        if what == "start":
            started[step] = t
        elif step in started:
            took[step] = t - started[step]
    for step, (n, seconds) in checks.items():
        if step in took and n:
            took[step] -= seconds
            took.update({f"{step}_ge_{i}": seconds / n for i in range(1, n + 1)})
    return took


def latest_run_results(home: Path) -> dict:
    """The newest run_results.json of the pipeline's dbt (one folder per invocation under target/)."""
    results = max((home / "dbt" / "target").rglob("run_results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(results.read_text())


def dbt_layer_shares(home: Path) -> dict[str, float]:
    """Summed node execution time per layer from the newest run_results.json of the pipeline's dbt."""
    sums = {"staging": 0.0, "intermediate": 0.0, "marts": 0.0, "checks": 0.0}
    for r in latest_run_results(home)["results"]:
        uid = r["unique_id"]
        t = r.get("execution_time") or 0.0
        if uid.startswith(("test.", "unit_test.")):
            sums["checks"] += t
        elif uid.startswith("seed."):
            sums["staging"] += t
        elif uid.startswith("model."):
            layer = "staging" if ".stg_" in uid else "intermediate" if ".int_" in uid else "marts"
            sums[layer] += t
    return sums


def layers(took: dict[str, float], home: Path) -> dict[str, float]:
    """Time per layer of a full build from its step times (step_times) and dbt's run_results.json."""
    dbt_wall = took.get("dbt_models", 0.0)
    shares = dbt_layer_shares(home)
    total_share = sum(shares.values()) or 1.0
    out = {
        "raw": sum(t for s, t in took.items() if s.startswith("raw__") and "_ge_" not in s),
        "staging": dbt_wall * shares["staging"] / total_share,
        "intermediate": dbt_wall * shares["intermediate"] / total_share,
        "marts": dbt_wall * shares["marts"] / total_share
                 + took.get("predicted_ltv", 0.0),
        "ge": sum(t for s, t in took.items() if "_ge_" in s),
        "dbt_tests": dbt_wall * shares["checks"] / total_share,
        "publish": took.get("serving__warehouse", 0.0),
        "docs": took.get("serving__dbt_docs", 0.0),
    }
    out["checks"] = out["ge"] + out["dbt_tests"]
    out["steps_total"] = sum(took.values())
    return out


def refresh_breakdown(took: dict[str, float], home: Path) -> dict:
    """Where a one-day refresh spends its time: the pipeline's steps by kind (`took`, from
    step_times), and the dbt step's nodes (summed execution time of models and of tests, over 2
    threads, and the slowest ones)."""
    run = latest_run_results(home)
    nodes = {r["unique_id"]: r.get("execution_time") or 0.0 for r in run["results"]}
    return {
        "dbt_step": took.get("dbt_models", 0.0),
        "dbt_elapsed": run.get("elapsed_time") or 0.0,
        "dbt_models_sum": sum(t for u, t in nodes.items() if u.startswith("model.")),
        "dbt_tests_sum": sum(t for u, t in nodes.items() if u.startswith(("test.", "unit_test."))),
        "dbt_slowest": {u.split(".")[2]: round(t, 2) for u, t in sorted(nodes.items(), key=lambda kv: -kv[1])[:6]},
        # a test's node name says its kind, model and column (not_null_stg_tracking__events_event_id)
        "dbt_slowest_tests": {u.split(".")[2]: round(t, 2) for u, t in
                              sorted(((u, t) for u, t in nodes.items() if u.startswith("test.")),
                                     key=lambda kv: -kv[1])[:8]},
        "ge_suites": sum(1 for s in took if "_ge_" in s),
        # Data Docs are rendered after the run's steps (defs/quality/docs.py): in "between steps"
        "ge": sum(t for s, t in took.items() if "_ge_" in s),
        "raw": sum(t for s, t in took.items() if s.startswith("raw__") and "_ge_" not in s),
        "publish": took.get("serving__warehouse", 0.0),
        "steps_total": sum(took.values()),
    }


def ingest_rates(db: Path, raw_step_seconds: dict[str, float]) -> dict[str, dict[str, float]]:
    """Rows landed per second of raw step, per landing format (a source has one format here)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "select source, regexp_extract(file_name, '\\.(csv\\.gz|csv|jsonl|parquet)$', 1), "
            "sum(rows_landed), sum(file_size) from raw._files where status = 'loaded' group by all").fetchall()
    finally:
        con.close()
    per_format: dict[str, dict[str, float]] = {}
    for source, fmt, n, size in rows:
        d = per_format.setdefault(fmt, {"rows": 0, "bytes": 0, "seconds": 0.0})
        d["rows"] += n
        d["bytes"] += size
        d["seconds"] += raw_step_seconds.get(f"raw__{source}", 0.0)
    for d in per_format.values():
        d["rows_per_s"] = d["rows"] / d["seconds"] if d["seconds"] else 0.0
    return per_format


def raw_counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("select source, sum(rows_loaded) from raw._files where status = 'loaded' "
                                "group by 1 order by 1").fetchall())
    finally:
        con.close()


def rebuilt_dates(db: Path) -> tuple[int, int]:
    events = dbt_tables(db.parent, "benchmark_harness").table("stg_tracking__events")
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            f"select count(distinct event_date) filter (where built_at = (select max(built_at) from {events})), "
            f"count(distinct event_date) from {events}"
        ).fetchone()
    finally:
        con.close()


def generate_landing(preset: str, home: Path, env: dict[str, str]) -> tuple[float, float]:
    """The preset's landing folder under `home` (one generated world, replicated file by file for
    M and L) and its truth.json; returns (seconds, peak RSS GB) of generating it."""
    p = PRESETS[preset]
    generated = home / "landing" if p["replicas"] == 1 else home / "generated"
    seconds, rss_gb = run_measured(
        [str(BIN / "python"), "-m", "dagster_project.lib.generator", str(generated),
         "--customers", str(p["customers"]), "--days", str(p["days"]), "--seed", str(SEED),
         "--truth", str(home / "truth.json")],
        env, home / "generate.log")
    if p["replicas"] > 1:
        more, _ = run_measured([str(BIN / "python"), str(REPO / "benchmarks" / "replicate.py"), str(generated),
                                str(home / "landing"), "--replicas", str(p["replicas"])], env,
                               home / "replicate.log")
        seconds += more
        shutil.rmtree(generated)
    return seconds, rss_gb


# What the landing files are made by: a change to any of these makes a new cache key.
GENERATOR_SOURCES = ("dagster_project/lib/generator", "dagster_project/lib/platforms",
                     "dagster_project/lib/contract.py", "dagster_project/lib/landing.py", "benchmarks/replicate.py")


def generator_version() -> str:
    import hashlib

    h = hashlib.sha256()
    for name in GENERATOR_SOURCES:
        root = REPO / name
        for f in sorted([root] if root.is_file() else root.rglob("*.py")):
            h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def landing_cache_key(preset: str) -> str:
    p = PRESETS[preset]
    return f"{preset}-c{p['customers']}-d{p['days']}-r{p['replicas']}-seed{SEED}-gen{generator_version()}"


def _link_tree(src: Path, dst: Path) -> None:
    """`src`'s files under `dst` as hard links (a copy across file systems): no second 27 GB at L.
    The pipeline only reads landing files and the harness only moves them (hold_back_last_day), so
    the cache's copy stays as generated."""
    for f in src.rglob("*"):
        if f.is_file():
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)


def cached_landing(preset: str, home: Path, env: dict[str, str], cache: Path | None) -> dict:
    """generate_landing, or the landing folder and truth.json a run before generated for the same
    preset, seed and generator sources (`cache`/<key>): generation costs 5 min at L and measures
    nothing the targets ask. The cache keeps one key per preset."""
    if cache is None:
        seconds, rss = generate_landing(preset, home, env)
        return {"generate_s": seconds, "generate_rss_gb": rss, "landing_reused": None}
    key = landing_cache_key(preset)
    entry = cache / key
    meta = entry / "generated.json"
    if not meta.exists():
        seconds, rss = generate_landing(preset, home, env)
        for stale in cache.glob(f"{preset}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = cache / f".{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        _link_tree(home / "landing", tmp / "landing")
        shutil.copy2(home / "truth.json", tmp / "truth.json")
        (tmp / "generated.json").write_text(json.dumps({"generate_s": seconds, "generate_rss_gb": rss}))
        tmp.rename(entry)
        return {"generate_s": seconds, "generate_rss_gb": rss, "landing_reused": None}
    _link_tree(entry / "landing", home / "landing")
    shutil.copy2(entry / "truth.json", home / "truth.json")
    return json.loads(meta.read_text()) | {"landing_reused": key}


def bench_preset(preset: str, root: Path, cache: Path | None = None) -> dict:
    home = root / preset
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    env = env_for(home)
    res: dict = {"preset": preset, "stage_s": {}}
    lap = time.perf_counter()

    def stage_done(name: str) -> None:  # the bench's own wall time per stage: what a rerun costs
        nonlocal lap
        res["stage_s"][name] = time.perf_counter() - lap
        lap = time.perf_counter()

    print(f"== preset {preset}: generating", flush=True)
    res |= cached_landing(preset, home, env, cache)
    res["landing_bytes"] = sum(f.stat().st_size for f in (home / "landing").rglob("*") if f.is_file())
    res["held_back_day"] = hold_back_last_day(home / "landing", home / "held_back")
    stage_done("landing")

    print(f"== preset {preset}: full build", flush=True)
    full_log = home / "full_run.log"
    res["full_rss_peaks"], res["full_spill"] = [], {}
    res["full_s"], res["full_rss_gb"] = run_measured([str(BIN / "ecomwh"), "run", "--full-refresh"], env, full_log,
                                                     res["full_rss_peaks"], spill=res["full_spill"],
                                                     spill_dir=home / "warehouse.duckdb.tmp")
    res["full_steps"] = step_times(full_log)
    res["layers"] = layers(res["full_steps"], home)
    res["full_breakdown"] = refresh_breakdown(res["full_steps"], home)
    res["rows"] = raw_counts(home / "warehouse.duckdb")
    res["ingest"] = ingest_rates(home / "warehouse.duckdb", res["full_steps"])
    stage_done("full build")

    print(f"== preset {preset}: one-day incremental refresh", flush=True)
    for f in (home / "held_back").rglob("*"):
        if f.is_file():
            target = home / "landing" / f.parent.name / f.name
            shutil.move(str(f), target)
    published_before = (home / "serving" / "published.json").read_text()
    inc_log = home / "incremental_run.log"
    res["incremental_rss_peaks"] = []
    res["incremental_s"], res["incremental_rss_gb"] = run_measured([str(BIN / "ecomwh"), "run"], env, inc_log,
                                                                   res["incremental_rss_peaks"])
    assert (home / "serving" / "published.json").read_text() != published_before, "no new published copy"
    res["incremental_steps"] = step_times(inc_log)
    res["incremental_breakdown"] = refresh_breakdown(res["incremental_steps"], home)
    res["incremental_dates_rebuilt"], res["dates_total"] = rebuilt_dates(home / "warehouse.duckdb")
    stage_done("incremental refresh")
    # issue 22: the same command again with no new files must stop before any step (lib/nothing_new.py)
    nothing_log = home / "nothing_new_run.log"
    res["nothing_new_s"], _ = run_measured([str(BIN / "ecomwh"), "run"], env, nothing_log)
    res["nothing_new_skipped"] = "nothing new: " in nothing_log.read_text()
    stage_done("run with nothing new")

    print(f"== preset {preset}: baselines", flush=True)
    db = home / "warehouse.duckdb"
    res["floor"] = floor(home / "landing")
    stage_done("floor")
    res["lifetimes"] = ltv_peer(db)
    stage_done("LTV peer")
    if preset in PEER_SKIPPED:
        res["pandas"] = {"skipped": PEER_SKIPPED[preset]}
    elif PEERS.exists():
        res["metric_marts"] = list(metric_marts(home))
        res["ours_metric_marts_s"], res["ours_metric_marts_nodes"] = ours_metric_marts(home, env)
        res["pandas"] = pandas_peer(db, home / "pandas_peer.log")
        stage_done("pandas peer and our metric marts")
    return res


def floor(landing: Path) -> dict:
    """The floor: one DuckDB scan over all raw data as it lands (every landing file read once, every
    column as text, bad rows skipped), i.e. what any build must at least do."""
    from dagster_project.lib.contract import SOURCES

    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    started = time.perf_counter()
    rows = 0
    try:
        for source, spec in SOURCES.items():
            folder = landing / source
            cols = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in spec.column_names) + "}"
            for ext in ("jsonl", "csv", "csv.gz", "parquet"):
                if not list(folder.glob(f"*.{ext}")):
                    continue
                glob = f"'{folder}/*.{ext}'"
                if ext == "jsonl":
                    rel = f"read_json({glob}, format='newline_delimited', columns={cols}, ignore_errors=true)"
                elif ext == "parquet":
                    rel = f"read_parquet({glob}, union_by_name=true)"
                else:
                    rel = f"read_csv({glob}, all_varchar=true, header=true, ignore_errors=true, union_by_name=true)"
                rows += con.execute(f"select count(*) from (select * from {rel})").fetchone()[0]
    finally:
        con.close()
    return {"seconds": time.perf_counter() - started, "rows": rows}


def ltv_peer(db: Path) -> dict:
    """Our BG/NBD + Gamma-Gamma fits against lifetimes' on the customer summary the pipeline fits."""
    import numpy as np
    import polars as pl
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from dagster_project.lib import clv

    orders = dbt_tables(db.parent, "benchmark_harness").table("fct_orders")
    con = duckdb.connect(str(db), read_only=True)
    try:
        purchases = pl.from_arrow(con.sql(
            "select customer_key, order_date as purchase_date, cast(sum(net_revenue) as double) as amount "
            f"from {orders} where is_valid group by all").to_arrow_table())
        as_of = con.execute(f"select max(order_date) from {orders}").fetchone()[0]
    finally:
        con.close()
    unit = 7.0  # weeks, as the pipeline fits (EW_LTV_TIME_UNIT_DAYS)
    s = clv.summarize(purchases, as_of, unit)
    x, t_x, T = (s[c].to_numpy().astype(np.float64) for c in ("frequency", "recency", "T"))
    m = s["monetary"].to_numpy()
    t0 = time.perf_counter()
    bg = clv.fit_bgnbd(x, t_x, T, time_unit_days=unit)
    gg = clv.fit_gamma_gamma(x, m)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    lbg = BetaGeoFitter().fit(x, t_x, T)
    repeat = (x > 0) & (m > 0)  # as our fit: Gamma-Gamma on repeat buyers with spend
    lgg = GammaGammaFitter().fit(x[repeat], m[repeat])
    theirs = time.perf_counter() - t0
    o = np.array([bg.params.r, bg.params.alpha, bg.params.a, bg.params.b, gg.params.p, gg.params.q, gg.params.gamma])
    t = np.array([lbg.params_["r"], lbg.params_["alpha"], lbg.params_["a"], lbg.params_["b"],
                  lgg.params_["p"], lgg.params_["q"], lgg.params_["v"]])
    return {"customers": int(len(x)), "ours_seconds": ours, "lifetimes_seconds": theirs,
            "max_rel_diff": float(np.max(np.abs(o - t) / np.abs(t)))}


def ours_metric_marts(home: Path, env: dict[str, str]) -> float:
    """Our dbt path from raw to the three marts the pandas peer computes, rebuilt from scratch."""
    from dagster_project.settings import DBT_PROJECT_DIR, export_env, get_settings

    os.environ["EW_HOME"] = str(home)
    dbt_env = {**env, **export_env(get_settings())}
    cmd = [str(BIN / "dbt"), "run", "--full-refresh", "--project-dir", str(DBT_PROJECT_DIR),
           "--select", *(f"+{m}" for m in metric_marts(home))]
    started = time.time()
    seconds, _ = run_measured(cmd, dbt_env, home / "ours_metric_marts.log")
    results = [p for p in (home / "dbt" / "target").rglob("run_results.json") if p.stat().st_mtime >= started]
    nodes = {}
    if results:
        for r in json.loads(max(results, key=lambda p: p.stat().st_mtime).read_text())["results"]:
            nodes[r["unique_id"].rsplit(".", 1)[-1]] = round(r.get("execution_time") or 0.0, 2)
    return seconds, dict(sorted(nodes.items(), key=lambda kv: -kv[1]))


def fmt_s(x: float) -> str:
    return f"{x:,.1f} s" if x < 600 else f"{x / 60:,.1f} min"


def phases(r: dict) -> list[tuple[str, str, str, str, bool | None]]:
    """Issue 21's phases of the full build, each against the same run's floor, with its target:
    (phase, measured, / floor, target, met: None where the phase has no target or was not measured)."""
    lay, floor_s = r["layers"], r["floor"]["seconds"]
    t = PHASE_TARGETS

    def row(name: str, seconds: float | None, target: str = "", met: bool | None = None):
        if seconds is None:
            return (name, "not recorded (a result from before the phase was)", "", target, None)
        return (name, fmt_s(seconds), f"{seconds / floor_s:,.1f}x", target, met)

    ge, tests = lay.get("ge"), lay.get("dbt_tests")
    checks = lay.get("checks")
    models = sum(lay[k] for k in ("staging", "intermediate", "marts"))
    startup = r["full_s"] - lay["steps_total"]
    peak = max(r["full_rss_gb"], r["incremental_rss_gb"])
    pandas = r.get("pandas") or {}
    out = [
        row("raw ingest", lay["raw"], f"<= {t['raw_vs_floor']:g}x floor", lay["raw"] <= t["raw_vs_floor"] * floor_s),
        row("checks: GE suites", ge),
        row("checks: dbt tests", tests),
        row("checks: GE suites + dbt tests", checks, f"<= {t['checks_s'] / 60:g} min", checks <= t["checks_s"]),
        row("dbt models (staging, intermediate, marts; the LTV asset)", models),
        row("publish", lay["publish"]),
        row("Data Docs", lay["docs"]),
        row("Dagster, process start-up and between steps", startup),
        row("**full build**", r["full_s"], f"<= {t['full_build_s'] / 60:g} min and <= {t['full_vs_floor']:g}x floor",
            r["full_s"] <= t["full_build_s"] and r["full_s"] <= t["full_vs_floor"] * floor_s),
        ("peak RSS, any process (full build, incremental)", f"{peak:.2f} GB", "", f"<= {t['peak_rss_gb']:g} GB",
         peak <= t["peak_rss_gb"]),
    ]
    target = f">= {t['marts_vs_pandas_m']:g}x (at M)"
    name = "raw -> the 3 metric marts, pandas peer / ours"
    if "read_seconds" in pandas and "error" not in pandas and r.get("ours_metric_marts_s"):
        ratio = (pandas["read_seconds"] + pandas["compute_seconds"]) / r["ours_metric_marts_s"]
        out.append((name, f"{ratio:,.2f}x", "", target, ratio >= t["marts_vs_pandas_m"]))
    else:
        why = pandas.get("skipped") or (f"the peer failed: {pandas['error']}" if "error" in pandas else "not measured")
        out.append((name, why, "", target, None))
    return out


def phase_table(r: dict) -> list[str]:
    verdict = {True: "met", False: "**not met**", None: ""}
    return ["| phase of the full build (issue 21) | measured | / floor | target (on L) | |",
            "|---|---:|---:|---|---|",
            *(f"| {name} | {value} | {ratio} | {target} | {verdict[met]} |"
              for name, value, ratio, target, met in phases(r)),
            f"| floor: one DuckDB scan over all landing files | {fmt_s(r['floor']['seconds'])} | 1.0x | | |",
            ""]


def report(results: list[dict], out: Path, started: str) -> str:
    runs: dict[str, list[str]] = {}  # when each preset was measured; one run, or runs merged by --report-from
    for r in results:
        runs.setdefault(r.get("measured_at", started), []).append(r["preset"])
    when = "; ".join(f"{' and '.join(ps)} on {at} UTC" for at, ps in runs.items())
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` ({when}): "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, duckdb {duckdb.__version__}. "
        "Every number below comes from that command (benchmarks/bench.py); ratios compare "
        "measurements taken in the same run of the same preset. Rerun with `make bench` (S and M) or "
        "`make bench PRESETS=\"S M L\"`"
        + (" (presets measured in separate runs were put together with `--report-from`)." if len(runs) > 1 else "."),
        "",
        "Each preset opens with issue 21's phases of its full build (`ecomwh run --full-refresh`), each "
        "against the same run's floor (one DuckDB scan over all landing files) and with its target on L: "
        "raw ingest, checks (the GE suites, the dbt tests, and the two summed), dbt models, publish, "
        "Data Docs, Dagster and process start-up, the whole build, peak RSS, and (at M) the pandas peer "
        "against our dbt path to the metric marts. The raw steps' time is ingest only: the suites a raw "
        "step runs are counted as GE. dbt's wall time is split between its models and its tests in "
        "proportion to their summed node times (2 threads). At L the pandas peer and the dbt rebuild it "
        "is compared with are skipped (the peer cannot fit in this machine's memory; its target is "
        "measured at M), and a landing folder generated before for the same preset, seed and generator "
        "sources is reused (`--landing-cache`, default .ew/bench-landing; `--no-landing-cache` "
        "regenerates): the generation row then gives the time it took when generated.",
        "",
    ]
    for r in results:
        lay = r["layers"]
        floor_s = r["floor"]["seconds"]
        pandas = r.get("pandas")
        lines += [
            f"## Preset {r['preset']}",
            "",
            "| raw rows | " + " | ".join(r["rows"]) + " |",
            "|---|" + "---:|" * len(r["rows"]),
            "| | " + " | ".join(f"{n:,}" for n in r["rows"].values()) + " |",
            "",
            *phase_table(r),
            "| measure | value |",
            "|---|---:|",
            f"| generation (landing {r['landing_bytes'] / 1e9:,.2f} GB) | {fmt_s(r['generate_s'])}, "
            f"peak RSS {r['generate_rss_gb']:.2f} GB"
            + (f" (when generated; this run reused the landing cache {r['landing_reused']})"
               if r.get("landing_reused") else "") + " |",
        ]
        for fmt, d in sorted(r["ingest"].items()):
            lines.append(f"| ingest {fmt} ({d['rows']:,} rows, {d['bytes'] / 1e6:,.0f} MB) | "
                         f"{d['rows_per_s']:,.0f} rows/s |")
        lines += [
            f"| **full build** (`ecomwh run --full-refresh`, whole command) | **{fmt_s(r['full_s'])}** |",
            *(f"| &nbsp;&nbsp;{k} | {fmt_s(lay[k])} |" for k in
              ("raw", "staging", "intermediate", "marts", "checks", "publish", "docs")),
            f"| &nbsp;&nbsp;Dagster, process start-up and between steps | "
            f"{fmt_s(r['full_s'] - lay['steps_total'])} |",
            *(["| &nbsp;&nbsp;slowest steps of the full build | " + "; ".join(
                f"{k} {fmt_s(v)}" for k, v in sorted(r["full_steps"].items(), key=lambda kv: -kv[1])[:6]) + " |",
               "| &nbsp;&nbsp;slowest dbt nodes of the full build | "
               + "; ".join(f"{k} {v:.1f} s" for k, v in r["full_breakdown"]["dbt_slowest"].items()) + " |",
               *(["| &nbsp;&nbsp;slowest dbt tests of the full build | "
                  + "; ".join(f"{k} {v:.1f} s" for k, v in r["full_breakdown"]["dbt_slowest_tests"].items())
                  + " |"] if r["full_breakdown"].get("dbt_slowest_tests") else [])]
              if r.get("full_breakdown") else []),
            f"| **one-day incremental refresh**, landing to published copy (`ecomwh run`, whole command) | "
            f"**{fmt_s(r['incremental_s'])}** ({r['incremental_dates_rebuilt']} of {r['dates_total']} "
            "event dates rebuilt) |",
            *([f"| &nbsp;&nbsp;where it goes | dbt {fmt_s(b['dbt_step'])} (dbt's own {fmt_s(b['dbt_elapsed'])}; "
               f"node time on 2 threads: models {fmt_s(b['dbt_models_sum'])}, tests {fmt_s(b['dbt_tests_sum'])}); "
               f"{b['ge_suites']} GE suites{' and their Data Docs' if b.get('ge_docs') is not None else ''} "
               f"{fmt_s(b['ge'])}; raw {fmt_s(b['raw'])}; publish {fmt_s(b['publish'])}; "
               f"start-up and between steps {fmt_s(r['incremental_s'] - b['steps_total'])} |",
               "| &nbsp;&nbsp;slowest dbt nodes of the refresh | "
               + "; ".join(f"{k} {v:.1f} s" for k, v in b["dbt_slowest"].items()) + " |"]
              if (b := r.get("incremental_breakdown")) else []),
            *([f"| **a run with no new files** (`ecomwh run` again after the refresh, whole command) | "
               f"**{fmt_s(r['nothing_new_s'])}**"
               f"{'' if r['nothing_new_skipped'] else ' (it did the work: see nothing_new_run.log)'} |"]
              if "nothing_new_s" in r else []),
            f"| peak RSS, any process (full build / incremental) | {r['full_rss_gb']:.2f} GB / "
            f"{r['incremental_rss_gb']:.2f} GB |",
            *(["| &nbsp;&nbsp;largest processes in the full build (sampled every 0.5 s) | "
               + "; ".join(f"{x['process']} {x['gb']:.2f} GB during {x['steps']}"
                           for x in r["full_rss_peaks"][:3]) + " |"] if r.get("full_rss_peaks") else []),
            *([f"| &nbsp;&nbsp;DuckDB's spill folder in the full build (most it held, sampled every 0.5 s) | "
               f"{s['gb']:.2f} GB" + (f" during {s['steps']}" if s["gb"] else "") + " |"]
              if (s := r.get("full_spill")) else []),
            f"| floor: one DuckDB scan over all landing files ({r['floor']['rows']:,} rows) | {fmt_s(floor_s)} |",
            *([*([f"| our dbt path raw -> the 3 metric marts (full refresh, incl. dbt start-up) | "
                  f"{fmt_s(r['ours_metric_marts_s'])} |"] if "ours_metric_marts_s" in r else []),
               *(["| &nbsp;&nbsp;slowest models of that run | " + "; ".join(
                   f"{k} {v:.1f} s" for k, v in list(r["ours_metric_marts_nodes"].items())[:4])
                  + (f"; the {len(marts)} marts themselves "
                     f"{sum(v for k, v in r['ours_metric_marts_nodes'].items() if k in marts):.1f} s"
                     if (marts := r.get("metric_marts")) else "") + " |"]
                 if r.get("ours_metric_marts_nodes") else []),
               (f"| pandas peer: read raw {fmt_s(pandas['read_seconds'])} + compute "
                f"{fmt_s(pandas['compute_seconds'])}; results equal ours: {pandas['match']}"
                + (" (rows " + ", ".join(f"{k} {v['peer']:,}" for k, v in pandas["rows"].items()) + ")"
                   if pandas.get("rows") else "")
                + (f"; peak RSS {pandas['process_rss_gb']:.2f} GB" if "process_rss_gb" in pandas else "")
                + " | |") if "read_seconds" in pandas and "error" not in pandas else
               f"| pandas peer | {pandas['skipped']} |" if "skipped" in pandas else
               f"| pandas peer | failed: {pandas.get('error', '?')} |"] if pandas else
              ["| pandas peer | not measured (benchmarks/peers.py absent) |"]),
            f"| LTV fit: ours {r['lifetimes']['ours_seconds']:.2f} s vs lifetimes "
            f"{r['lifetimes']['lifetimes_seconds']:.2f} s on {r['lifetimes']['customers']:,} customers; "
            f"max rel. parameter difference {r['lifetimes']['max_rel_diff']:.1e} | |",
            *([f"| this preset's share of `make bench` (wall time) | {fmt_s(sum(r['stage_s'].values()))}: "
               + "; ".join(f"{k} {fmt_s(v)}" for k, v in r["stage_s"].items()) + " |"] if r.get("stage_s") else []),
            "",
            "| ratio (target on L) | value |",
            "|---|---:|",
            f"| full build / floor (<= {TARGETS['full_vs_floor']:g}x) | {r['full_s'] / floor_s:,.1f}x |",
            *([f"| pandas peer (read + compute) / our metric marts (>= {TARGETS['marts_vs_pandas']:g}x) | "
               f"{(pandas['read_seconds'] + pandas['compute_seconds']) / r['ours_metric_marts_s']:,.2f}x |"]
              if pandas and "read_seconds" in pandas and "error" not in pandas else
              [f"| pandas peer (read + compute) / our metric marts (>= {TARGETS['marts_vs_pandas']:g}x) | "
               + ("no ratio: the peer was skipped (above) |" if "skipped" in pandas else
                  "no ratio: the peer did not finish (above) |")] if pandas else []),
            f"| lifetimes / our LTV fit (>= {TARGETS['ltv_vs_lifetimes']:g}x) | "
            f"{r['lifetimes']['lifetimes_seconds'] / r['lifetimes']['ours_seconds']:,.1f}x |",
            f"| full build (<= {TARGETS['full_build_s'] / 60:g} min) | {fmt_s(r['full_s'])} |",
            f"| incremental refresh (<= {TARGETS['incremental_s']} s) | {fmt_s(r['incremental_s'])} |",
            f"| peak RSS (<= {TARGETS['peak_rss_gb']:g} GB) | "
            f"{max(r['full_rss_gb'], r['incremental_rss_gb']):.2f} GB |",
            "",
        ]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1, default=str))
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["S", "M"])
    ap.add_argument("--dir", type=Path, default=REPO / ".ew" / "bench")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    ap.add_argument("--keep", action="store_true", help="keep each preset's folder (landing, DuckDB files)")
    ap.add_argument("--landing-cache", type=Path, default=REPO / ".ew" / "bench-landing",
                    help="reuse the landing folder generated for the same preset, seed and generator sources")
    ap.add_argument("--no-landing-cache", action="store_true", help="generate every preset's landing files")
    ap.add_argument("--report-from", nargs="+", type=Path, metavar="JSON",
                    help="measure nothing: write --out from the results of earlier runs (their .json files); "
                         "a preset in a later file replaces the same preset of an earlier one")
    a = ap.parse_args()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    if a.report_from:
        merged: dict[str, dict] = {}
        for path in a.report_from:
            for r in json.loads(path.read_text()):
                merged[r["preset"]] = r
        order = list(PRESETS)
        print(report(sorted(merged.values(), key=lambda r: order.index(r["preset"])), a.out, started))
        return
    results = []
    for preset in a.presets:
        t0 = time.perf_counter()
        cache = None if a.no_landing_cache else a.landing_cache.resolve()
        results.append(bench_preset(preset, a.dir.resolve(), cache) | {"measured_at": started})
        print(f"== preset {preset}: {time.perf_counter() - t0:,.0f} s in all", flush=True)
        if not a.keep:
            shutil.rmtree(a.dir.resolve() / preset, ignore_errors=True)
        print(report(results, a.out, started), flush=True)


if __name__ == "__main__":
    main()
