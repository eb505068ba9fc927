"""`ecomwh status`: row counts, quarantine, last load, freshness and data quality per source."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone

from dagster_project.lib.contract import sla_minutes
from dagster_project.settings import Settings
from dagster_project.cli.environment import prepare_environment


def status_report(settings: Settings, now: datetime | None = None) -> dict:
    """Row counts, quarantine, last load and freshness per source, from the pipeline's file; the
    landing files not loaded and the files loaded with column notes."""
    import duckdb

    from dagster_project.lib import ingest
    from dagster_project.lib.contract import SOURCE_NAMES

    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    sla = sla_minutes()
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        files = {r[0]: r[1:] for r in con.execute(
            "select source, count(*), sum(rows_landed), sum(rows_loaded), "
            "(select count(*) from raw.quarantine q where q.source = f.source), "  # incl. unreadable files
            "max(loaded_at), max(file_date) from raw._files f where status = 'loaded' group by source"
        ).fetchall()}
        rules = con.execute(
            "select source, rule, count(*) from raw.quarantine group by all order by 1, 3 desc").fetchall()
        out = {"duckdb_path": str(settings.duckdb_path), "sources": {}, "quarantine_by_rule": {}}
        for s in SOURCE_NAMES:
            n_files, landed, loaded, quarantined, last_load, last_file_date = files.get(
                s, (0, 0, 0, 0, None, None))
            ts_col = _data_time_column(s)
            # a device clock running ahead must not make a source look fresh: ignore the future
            rows, latest = con.execute(
                f"select count(*), cast(max({ts_col}) filter (where {ts_col} <= ?) as timestamp) "
                f"from raw.{s}", [now + timedelta(minutes=5)]).fetchone()
            # Freshness is the age of the newest data, not of the load: a backfill loaded a minute
            # ago is still stale (and says so).
            age_min = (now - latest).total_seconds() / 60 if latest else None
            out["sources"][s] = {
                "files": n_files, "rows_landed": int(landed or 0), "rows": rows,
                "rows_quarantined": int(quarantined or 0),
                "last_load_utc": last_load.isoformat(timespec="seconds") if last_load else None,
                "last_file_date": last_file_date.isoformat() if last_file_date else None,
                "latest_data_utc": latest.isoformat(timespec="seconds") if latest else None,
                "data_time_column": ts_col,
                "minutes_since_latest_data": round(age_min, 1) if age_min is not None else None,
                "sla_minutes": sla[s],
                "freshness": "no data" if age_min is None else ("ok" if age_min <= sla[s] else "stale"),
            }
        for s, rule, n in rules:
            out["quarantine_by_rule"].setdefault(s, {})[rule] = n
        out["quality"] = _quality_summary(con)
        out["not_loaded"] = [{"path": p, "reason": why} for p, why in ingest.not_loaded(con, settings.landing_dir)]
        out["file_notes"] = [{"path": p, "notes": n} for p, n in ingest.file_notes(con)]
        docs = settings.home / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        out["data_docs"] = docs.as_uri() if docs.exists() else None
    finally:
        con.close()
    published = settings.serving_path.parent / "published.json"
    out["published"] = json.loads(published.read_text()) if published.exists() else None
    return out


def _quality_summary(con) -> dict | None:
    """Latest day of marts.mart_data_quality: status counts and the checks that are not passing."""
    from dagster_project.lib import dbt_outputs

    reads = dbt_outputs.exposure_tables("warehouse_monitoring")
    if not dbt_outputs.columns_in(con, reads.sql("{mart_data_quality}")):
        return None
    rows = con.execute(reads.sql("""
        select check_name, source, check_date, status, value, threshold, threshold_op, unexpected_count
        from {mart_data_quality} q
        where check_date = (select max(check_date) from {mart_data_quality} i
                            where i.check_name = q.check_name and i.source = q.source)
        order by status desc, check_name, source""")).fetchall()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[3]] = counts.get(r[3], 0) + 1
    not_passing = [
        {"check": c, "source": src, "date": d.isoformat(), "status": st, "value": v,
         "threshold": f"{op} {t}" if t is not None else None, "unexpected_count": n}
        for c, src, d, st, v, t, op, n in rows if st != "pass"]
    return {"status_counts": counts, "not_passing": not_passing}


def _data_time_column(source: str) -> str:
    from dagster_project.lib.contract import SOURCES

    return SOURCES[source].data_time_column


def _age(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def cmd_status(args: argparse.Namespace) -> int:
    settings = prepare_environment()
    if not settings.duckdb_path.exists():
        print(f"no warehouse yet at {settings.duckdb_path}: run `ecomwh run`", file=sys.stderr)
        return 1
    try:
        report = status_report(settings)
    except Exception as exc:
        print(f"cannot read {settings.duckdb_path} now ({exc}); is a run writing it?", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"warehouse: {report['duckdb_path']}")
    print(f"{'source':<24}{'files':>6}{'rows':>11}{'quarantined':>12}  {'last load (UTC)':<20}"
          f"{'latest data (UTC)':<20} freshness (age of latest data vs SLA)")
    for s, r in report["sources"].items():
        fresh = r["freshness"]
        if r["minutes_since_latest_data"] is not None:
            fresh += f" ({_age(r['minutes_since_latest_data'])}, SLA {_age(r['sla_minutes'])})"
        print(f"{s:<24}{r['files']:>6}{r['rows']:>11,}{r['rows_quarantined']:>12,}  "
              f"{r['last_load_utc'] or '-':<20}{r['latest_data_utc'] or '-':<20} {fresh}")
    q = report.get("quality")
    if q:
        counts = ", ".join(f"{n} {st}" for st, n in sorted(q["status_counts"].items()))
        print(f"\ndata quality (marts.mart_data_quality, latest day per check): {counts}")
        for item in q["not_passing"][:15]:
            value = f"{item['value']:.4g}" if isinstance(item["value"], (int, float)) else item["value"]
            print(f"  {item['status']:<5} {item['check']:<34} {item['source'] or '-':<22} {item['date']}  "
                  f"value {value} (threshold {item['threshold']}), unexpected {item['unexpected_count']}")
    print(f"\nGreat Expectations Data Docs: {report.get('data_docs') or 'not built yet (run the pipeline)'}")
    pub = report.get("published")
    if pub:
        print(f"published read-only copy: {pub['path']} at {pub['published_at']} "
              f"({len(pub['tables'])} tables; `ecomwh sql`, Superset)")
    else:
        print("published read-only copy: none yet (the pipeline publishes after the marts)")
    if report["quarantine_by_rule"]:
        print("\nquarantined rows by rule (details: raw.quarantine, exports in "
              f"{settings.quarantine_dir}):")
        for s, by_rule in report["quarantine_by_rule"].items():
            print(f"  {s:<24}" + ", ".join(f"{r} {n}" for r, n in by_rule.items()))
    if report["file_notes"]:
        print(f"\nfiles loaded with columns absent (read as empty) or unknown (ignored): {len(report['file_notes'])}")
        for item in report["file_notes"][:30]:
            print(f"  {item['path']}: {item['notes']}")
    if report["not_loaded"]:
        print(f"\nlanding files NOT loaded: {len(report['not_loaded'])}")
        for item in report["not_loaded"][:30]:
            print(f"  {item['path']}: {item['reason']}")
    if len(report["not_loaded"]) > 30 or len(report["file_notes"]) > 30:
        print("  (only the first 30 of each: `ecomwh status --json` lists them all)")
    return 0
