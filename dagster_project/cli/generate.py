"""`ecomwh generate`: demo data (and its truth.json) into the landing folder."""

from __future__ import annotations

import argparse
import time
from datetime import date
from dagster_project.cli.environment import prepare_environment


def cmd_generate(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    from dagster_project.lib.generator import generate

    started = time.perf_counter()
    exports_dir = settings.home / "exports" if args.platform_exports else None
    summary = generate(
        settings.landing_dir,
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        bad_rate=args.bad_rate,
        start=date.fromisoformat(args.start),
        timezone=settings.timezone,
        truth_path=settings.home / "truth.json",
        platform_exports=exports_dir,
        incidents=args.incidents,
    )
    took = time.perf_counter() - started
    rows = summary.get("rows_per_source", {})
    print(f"generated {sum(rows.values()) if rows else '?'} rows in {summary.get('files_written', '?')} "
          f"files into {settings.landing_dir} in {took:.1f} s (truth: {settings.home / 'truth.json'})")
    for source, n in sorted(rows.items()):
        print(f"  {source:<24} {n:>10,}")
    if exports_dir is not None:
        files = summary["exports"]["files"]
        print(f"platform exports: {len(files)} files in {exports_dir} (their orders are not in the landing "
              f"folder: import them with `ecomwh import <platform> {exports_dir}/<platform>/*`)")
    return 0
