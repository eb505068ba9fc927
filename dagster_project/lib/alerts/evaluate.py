"""Every rule evaluated on the warehouse, written to marts.mart_metric_alerts in one transaction."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from dagster_project.lib import dbt_outputs
from dagster_project.lib.alerts.engine import EVALUATION_SCHEMA, evaluate
from dagster_project.lib.alerts.rules import LoadedRule, RuleFileError
from dagster_project.lib.alerts.series import fetch_calendar, fetch_series, observed_through
from dagster_project.lib.transaction import transaction


def alerts_mart() -> dbt_outputs.PythonMart:
    """The table as its dbt source declares it (dbt/models/marts/alerts/_alerts__sources.yml)."""
    mart = dbt_outputs.written_by("metric_alerts")["alerts"]
    if list(mart.columns) != list(EVALUATION_SCHEMA):
        raise ValueError(f"the columns of {mart.relation} in its dbt source differ from the engine's "
                         f"EVALUATION_SCHEMA: {list(mart.columns)} vs {list(EVALUATION_SCHEMA)}")
    return mart


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
    mart = alerts_mart()
    with transaction(con):
        mart.replace(con, frame)
