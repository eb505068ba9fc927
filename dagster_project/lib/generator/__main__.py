"""python -m dagster_project.lib.generator LANDING_DIR [--customers N] [--days N] ..."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from . import generate


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m dagster_project.lib.generator")
    ap.add_argument("landing_dir", type=Path)
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bad-rate", type=float, default=0.002)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 5, 20))
    ap.add_argument("--timezone", default="Asia/Shanghai")
    ap.add_argument("--truth", type=Path, default=None)
    a = ap.parse_args(argv)
    summary = generate(a.landing_dir, customers=a.customers, days=a.days, seed=a.seed, bad_rate=a.bad_rate,
                       start=a.start, timezone=a.timezone, truth_path=a.truth)
    print(json.dumps(summary, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
