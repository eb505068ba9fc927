"""`ecomwh import`: seller-centre exports converted into landing files (docs/imports.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dagster_project.settings import Settings
from dagster_project.cli.environment import prepare_environment
from dagster_project.cli.run import cmd_run


# ---------------------------------------------------------------------------------------------
def cmd_import(args: argparse.Namespace) -> int:
    """Convert seller-centre exports into landing files (docs/imports.md)."""
    settings = prepare_environment()
    from dagster_project.lib import platforms

    try:
        if args.identity_map and not args.args and not args.mapping:
            return _identity_only(settings, Path(args.identity_map))
        if args.mapping:
            mapping, paths = platforms.load_mapping(Path(args.mapping)), args.args
        else:
            if len(args.args) < 1:
                print("ecomwh import: name a platform (" + ", ".join(platforms.shipped_platforms())
                      + ") or give --mapping FILE", file=sys.stderr)
                return 2
            mapping, paths = platforms.shipped_mapping(args.args[0]), args.args[1:]
        rates = platforms.read_rates(Path(args.rates)) if args.rates else None
        if args.identity_map:
            _identity_map(settings, Path(args.identity_map), {mapping.platform: mapping.user_namespace})
    except (platforms.MappingError, platforms.ExportError, ValueError, OSError) as exc:
        print(f"ecomwh import: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print("ecomwh import: no export files given", file=sys.stderr)
        return 2
    started = time.perf_counter()
    failed = 0
    written: dict = {}
    for path in paths:
        try:
            recs, w = platforms.import_exports(settings.home, settings.landing_dir, mapping, [Path(path)],
                                               rates=rates)
        except platforms.ExportError as exc:
            print(f"  {path}: NOT IMPORTED: {exc}", file=sys.stderr)
            failed += 1
            continue
        written.update(w)
        for rec in recs:
            if rec.status == "already_imported":
                print(f"  {rec.export_name}: already imported ({rec.notes[0]}): nothing changes")
                continue
            print(f"  {rec.export_name}: {rec.rows_exported:,} rows exported = {rec.rows_converted:,} converted + "
                  f"{rec.rows_quarantined:,} quarantined" + (f" (as of {rec.as_of})" if rec.as_of else ""))
            for note in rec.notes:
                print(f"    note: {note}")
            for r in _refusals(settings.home, rec)[:args.show]:
                print(f"    {r['file_name']} row {r['row']}: {r['rule']}: {r['reason']}")
            if rec.rows_quarantined > args.show:
                print(f"    … {rec.rows_quarantined - args.show} more in raw.quarantine after `ecomwh run`")
    print(f"{mapping.platform}: {len(written)} landing files written in {time.perf_counter() - started:.1f} s "
          f"into {settings.landing_dir}")
    if args.run:
        return cmd_run(argparse.Namespace(full_refresh=False)) or (1 if failed else 0)
    if written:
        print("load them with `ecomwh run`")
    return 1 if failed else 0


def _identity_map(settings: Settings, path: Path, extra: dict[str, str]) -> None:
    from dagster_project.lib import platforms

    namespaces = {p: platforms.shipped_mapping(p).user_namespace for p in platforms.shipped_platforms()}
    n = platforms.import_identity_map(settings.home, path, namespaces | extra)
    print(f"identity map {path.name}: {n} buyers linked to a phone (kept hashed only)")


def _identity_only(settings: Settings, path: Path) -> int:
    """A new identity map changes users of platforms already imported: rebuild their files."""
    from dagster_project.lib.platforms import store

    _identity_map(settings, path, {})
    written = {}
    for platform in store.all_platforms(settings.home):
        written.update(store.rebuild(settings.home, settings.landing_dir, platform, store.load_identity(settings.home)))
    print(f"{len(written)} landing files rewritten; load them with `ecomwh run`")
    return 0


def _refusals(home: Path, rec) -> list[dict]:
    import polars as pl

    from dagster_project.lib.platforms.store import store_dir

    path = store_dir(home) / rec.platform / rec.export_id / "refusals.parquet"
    return pl.read_parquet(path).to_dicts() if path.exists() else []
