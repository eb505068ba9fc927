"""Every rule evaluated on the warehouse, written to marts.mart_metric_alerts in one transaction."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from dagster_project.lib.alerts.engine import EVALUATION_SCHEMA, evaluate
from dagster_project.lib.alerts.rules import LoadedRule, RuleFileError
from dagster_project.lib.alerts.series import fetch_calendar, fetch_series, observed_through

TABLE = "marts.mart_metric_alerts"
# Typed DDL of marts.mart_metric_alerts (primary key rule_id, dims, metric_date).
DDL_COLUMNS: dict[str, str] = {
    "rule_id": "varchar not null",
    "team": "varchar not null",
    "rule_name": "varchar not null",
    "title_zh": "varchar not null",
    "title_en": "varchar not null",
    "kind": "varchar not null",
    "severity": "varchar not null",
    "metric": "varchar not null",
    "unit": "varchar not null",
    "dims": "varchar not null",
    "metric_date": "date not null",
    "value": "double",
    "baseline": "double",
    "threshold": "double",
    "direction": "varchar",
    "deviation": "double",
    "z_score": "double",
    "is_breach": "boolean",
    "state": "varchar not null",
    "since": "date",
    "reason": "varchar",
    "chart": "varchar",
    "evaluated_at": "timestamp not null",
}
assert list(DDL_COLUMNS) == list(EVALUATION_SCHEMA)


def evaluate_all(con: duckdb.DuckDBPyConnection, rules: list[LoadedRule],
                 evaluated_at: datetime) -> tuple[pl.DataFrame, list[str]]:
    """All rules' evaluations, and the problems of rules that could not be evaluated (an unknown
    table or column), each naming its file, line and field."""
    calendar = fetch_calendar(con)
    frames, problems = [], []
    for rule in rules:
        try:
            frames.append(evaluate(rule, fetch_series(con, rule), calendar, evaluated_at,
                                   through=observed_through(con, rule)))
        except RuleFileError as exc:
            problems.extend(exc.problems)
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=EVALUATION_SCHEMA)
    return frame, problems


def write_alerts(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> None:
    ddl = ", ".join(f"{c} {t}" for c, t in DDL_COLUMNS.items())
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists marts")
        con.execute(f"create or replace table {TABLE} ({ddl}, primary key (rule_id, dims, metric_date))")
        con.register("alerts_frame", frame.select(list(DDL_COLUMNS)))
        con.execute(f"insert into {TABLE} select * from alerts_frame")
        con.unregister("alerts_frame")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
