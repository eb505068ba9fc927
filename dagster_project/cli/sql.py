"""`ecomwh sql`: a read-only SQL shell on the published copy."""

from __future__ import annotations

import argparse
import sys

from dagster_project.settings import get_settings


def cmd_sql(args: argparse.Namespace) -> int:
    from dagster_project.lib.sql_shell import Shell

    settings = get_settings()
    try:
        shell = Shell(settings.serving_path, mode="csv" if args.csv else "box")
    except FileNotFoundError as exc:
        print(f"ecomwh sql: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command is not None:
            return shell.run_script(args.command)
        if not sys.stdin.isatty():
            return shell.run_script(sys.stdin.read())
        return shell.interactive(settings.home / "sql_history")
    finally:
        shell.close()
