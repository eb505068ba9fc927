"""`ecomwh`: generate demo data, run the pipeline, serve the UIs, show status.

Every command reads its settings from EW_* variables (dagster_project/settings.py) and writes only
under EW_HOME. One module per command: generate.py, imports.py (`ecomwh import`), run.py, status.py,
serve.py (serve and stop), sql.py; environment.py prepares the state folder they all work in.
"""

from __future__ import annotations

import argparse
import os

from dagster_project.cli.generate import cmd_generate
from dagster_project.cli.imports import cmd_import
from dagster_project.cli.run import cmd_run
from dagster_project.cli.serve import cmd_serve, cmd_stop
from dagster_project.cli.sql import cmd_sql
from dagster_project.cli.status import cmd_status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecomwh", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write demo data into the landing folder (+ truth.json)")
    g.add_argument("--customers", type=int, default=20000)
    g.add_argument("--days", type=int, default=180)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--bad-rate", type=float, default=0.002, dest="bad_rate")
    g.add_argument("--start", default="2026-05-20", help="first day (YYYY-MM-DD)")
    g.add_argument("--platform-exports", action="store_true", dest="platform_exports",
                   help="also write the platform channels' orders as seller-centre exports into EW_HOME/exports/ "
                        "(and leave them out of the landing folder)")
    g.add_argument("--no-incidents", action="store_false", dest="incidents",
                   help="plant no alert incidents (retention dip, payment-failure spike, stopped source); "
                        "truth.json records each as skipped")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("import", help="convert seller-centre exports (taobao, tmall, jd, douyin, pinduoduo, "
                                      "youzan, shopify, or --mapping FILE) into landing files",
                       usage="ecomwh import PLATFORM PATH... | ecomwh import --mapping FILE PATH...")
    i.add_argument("args", nargs="*", metavar="PLATFORM PATH", help="platform, then export files")
    i.add_argument("--mapping", help="a mapping file (YAML) for any other export; then every argument is a path")
    i.add_argument("--rates", help="CSV currency,cny_per_unit: converts amounts of non-CNY exports")
    i.add_argument("--identity-map", dest="identity_map",
                   help="CSV platform,buyer_key,phone (or phone_hash): links platform buyers to a phone")
    i.add_argument("--run", action="store_true", help="run the pipeline afterwards (as `ecomwh run`)")
    i.add_argument("--show", type=int, default=10, help="refused rows to print per export (default 10)")
    i.set_defaults(func=cmd_import)

    r = sub.add_parser("run", help="ingest the landing folder and build every asset, in process")
    r.add_argument("--full-refresh", action="store_true",
                   help="rebuild every date of the incremental dbt models from raw (default: only changed dates)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("status", help="row counts, quarantine, last load and freshness per source")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    v = sub.add_parser("serve", help="start the UIs (Dagster :3000, Superset :8088, dbt docs :8580)")
    v.add_argument("--dagster-port", type=int, default=int(os.environ.get("EW_DAGSTER_PORT", "3000")))
    v.add_argument("--superset-port", type=int, default=int(os.environ.get("EW_SUPERSET_PORT", "8088")))
    v.add_argument("--docs-port", type=int, default=int(os.environ.get("EW_DOCS_PORT", "8580")))
    v.add_argument("--no-superset", action="store_true", help="only Dagster (and the docs page)")
    v.add_argument("--detach", action="store_true", help="start and return; stop with `ecomwh stop`")
    v.set_defaults(func=cmd_serve)

    t = sub.add_parser("stop", help="stop what `ecomwh serve` started")
    t.set_defaults(func=cmd_stop)

    q = sub.add_parser("sql", help="read-only SQL shell on the published copy (marts, docs)")
    q.add_argument("-c", "--command", help="run these statements and exit (otherwise stdin or interactive)")
    q.add_argument("--csv", action="store_true", help="print results as CSV")
    q.set_defaults(func=cmd_sql)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Everything ecomwh and its children write is the owner's alone (docs/serving.md, "Threat model").
    os.umask(0o077)
    return args.func(args)
