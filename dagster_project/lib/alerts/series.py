"""A rule's daily series from the warehouse: one value per date and group, as engine.evaluate reads it.

Identifiers in rules are validated (lower-case names) and then checked against the table's real
columns here, so a typo is an error naming the rule file, line and field, never SQL; filter values
are bound parameters.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl

from dagster_project.lib import dbt_outputs
from dagster_project.lib.alerts.engine import PAIRED_SCHEMA, SERIES_SCHEMA
from dagster_project.lib.alerts.rules import LoadedRule, RuleFileError

SCHEMA = "marts"


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [SCHEMA, table]).fetchall()]


def check_columns(con: duckdb.DuckDBPyConnection, loaded: LoadedRule) -> None:
    """The rule's table and columns exist; otherwise an error naming the file, line and field."""
    m = loaded.rule.metric
    columns = table_columns(con, m.table)
    if not columns:
        raise RuleFileError([f"{loaded.where('metric', 'table')}: no table {SCHEMA}.{m.table} in the warehouse"])
    fields = [("date", m.date), ("value", m.value), ("numerator", m.numerator),
              ("denominator", m.denominator)] + [("by", c) for c in m.by] + [("where", c) for c in m.where]
    variants = loaded.rule.variants
    bad = [f"{loaded.where('metric', f)}: {SCHEMA}.{m.table} has no column {c}"
           for f, c in fields if c is not None and c not in columns]
    if variants is not None and variants.column not in columns:
        bad.append(f"{loaded.where('variants', 'column')}: {SCHEMA}.{m.table} has no column {variants.column}")
    if bad:
        raise RuleFileError(bad + [f"  ({SCHEMA}.{m.table} has: {', '.join(columns)})"])


def fetch_series(con: duckdb.DuckDBPyConnection, loaded: LoadedRule) -> pl.DataFrame:
    """metric_date, dims ('platform=ios, ...' or ''), value, denominator for one rule."""
    check_columns(con, loaded)
    m = loaded.rule.metric
    conditions, params = [], []
    ungrouped, ungrouped_params = [], []  # the filters on other columns than the groups
    for col, wanted in m.where.items():
        values = list(wanted) if isinstance(wanted, tuple) else [wanted]
        condition = f"{col} in ({', '.join('?' for _ in values)})"
        conditions.append(condition)
        params += values
        if col not in m.by:
            ungrouped.append(condition)
            ungrouped_params += values
    if m.value is not None:
        measure = "count(*)" if m.agg == "count" else f"{m.agg}({m.value})"
        select = f"cast({measure} as double) as value, cast(null as double) as denominator"
    else:
        select = (f"cast(sum({m.numerator}) as double) / nullif(cast(sum({m.denominator}) as double), 0) "
                  f"as value, cast(sum({m.denominator}) as double) as denominator")
    variants = loaded.rule.variants
    grouped = [*m.by, variants.column] if variants is not None else list(m.by)
    by = "".join(f", cast({c} as varchar) as {c}" for c in grouped)
    sql = (f"select cast({m.date} as date) as metric_date{by}, {select} from {SCHEMA}.{m.table} "
           f"where {m.date} is not null" + "".join(f" and {c}" for c in conditions)
           + " group by all order by 1")
    frame = pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
    dims = (pl.concat_str([pl.lit(f"{c}=") + pl.col(c).fill_null("(null)") for c in grouped], separator=", ")
            if grouped else pl.lit(""))
    if variants is not None and frame.height:
        return _paired_with_control(frame.with_columns(dims.alias("dims")), variants.column, str(variants.control))
    frame = frame.with_columns(dims.alias("dims")) if frame.height else pl.DataFrame(schema=SERIES_SCHEMA)
    frame = frame.select(list(SERIES_SCHEMA)).cast(SERIES_SCHEMA)
    if m.missing == "zero" and frame.height:
        # the dates run to the table's latest for this metric, whichever group has it: a source that
        # stopped while the others kept delivering is 0 on their days, also when it is watched alone
        last = con.execute(f"select max(cast({m.date} as date)) from {SCHEMA}.{m.table} where {m.date} is not null"
                           + "".join(f" and {c}" for c in ungrouped), ungrouped_params).fetchone()[0]
        frame = _fill_missing_days(frame, last, public_holidays(con))
    return frame


def _paired_with_control(frame: pl.DataFrame, column: str, control: str) -> pl.DataFrame:
    """A variants rule's series: one group per other variant ('experiment_id=e, variant=b'), each date
    with the control's rate and denominator of the same group and date beside its own."""
    reference = (frame.filter(pl.col(column) == control)
                 .select("metric_date", pl.col("dims").str.replace(f"(, )?{column}=.*$", "").alias("_group"),
                         pl.col("value").alias("reference"), pl.col("denominator").alias("reference_denominator")))
    variants = (frame.filter(pl.col(column) != control)
                .with_columns(pl.col("dims").str.replace(f"(, )?{column}=.*$", "").alias("_group")))
    paired = variants.join(reference, on=["metric_date", "_group"], how="left")
    return paired.select(list(PAIRED_SCHEMA)).cast(PAIRED_SCHEMA).sort("dims", "metric_date")


DAILY_OF = 7  # a group with rows on each of the 7 days before a date is daily from then on


def public_holidays(con: duckdb.DuckDBPyConnection) -> frozenset[date]:
    """The public holidays of the calendar model (none before dbt has built it)."""
    calendar = dbt_outputs.exposure_tables("metric_alerts").sql("{dim_date}")
    if "is_public_holiday" not in dbt_outputs.columns_in(con, calendar):
        return frozenset()
    return frozenset(r[0] for r in con.execute(
        f"select date_day from {calendar} where is_public_holiday").fetchall())


def _fill_missing_days(frame: pl.DataFrame, last: date | None = None,
                       closed: frozenset[date] = frozenset()) -> pl.DataFrame:
    """Every group gets every date up to `last` (default: the series' last over all groups), 0 where
    it had no row, from the first date on which it had rows on each of the DAILY_OF days before: a
    daily source that sent nothing on a day is a 0 that day, not a gap; a young shop's sparse source
    (a few service tickets a week) is not yet daily, and its quiet days are no outage. Once daily, a
    group stays daily, except on `closed` dates (public holidays): a day of the Spring Festival
    without service tickets or shipments is the shop closed, not a source that stopped."""
    first, last = frame["metric_date"].min(), max(last or frame["metric_date"].max(), frame["metric_date"].max())
    days = pl.DataFrame({"metric_date": [first + timedelta(days=i) for i in range((last - first).days + 1)]})
    spine = days.join(frame.select("dims").unique(), how="cross")
    filled = spine.join(frame, on=["metric_date", "dims"], how="left").sort("dims", "metric_date")
    recent = (pl.col("value").is_not_null().cast(pl.Int32).shift(1)
              .rolling_sum(DAILY_OF, min_samples=1).fill_null(0).over("dims"))
    return (filled.with_columns((recent >= DAILY_OF).alias("_daily"))
            .with_columns(pl.col("_daily").cum_max().over("dims"))
            .filter(pl.col("value").is_not_null() | (pl.col("_daily") & ~pl.col("metric_date").is_in(list(closed))))
            .with_columns(pl.col("value").fill_null(0.0)).select(list(SERIES_SCHEMA)))


def observed_through(con: duckdb.DuckDBPyConnection, loaded: LoadedRule) -> date | None:
    """The last date a rule's observed_through table covers (its latest date - lag_days); date.min
    when that table has no rows (nothing is observed), None when the rule has no such bound."""
    bound = loaded.rule.observed_through
    if bound is None:
        return None
    columns = table_columns(con, bound.table)
    if bound.date not in columns:
        raise RuleFileError([f"{loaded.where('observed_through', 'date' if columns else 'table')}: "
                             + (f"{SCHEMA}.{bound.table} has no column {bound.date}" if columns
                                else f"no table {SCHEMA}.{bound.table} in the warehouse")])
    last = con.execute(f"select max(cast({bound.date} as date)) from {SCHEMA}.{bound.table}").fetchone()[0]
    return last - timedelta(days=bound.lag_days) if last is not None else date.min


def fetch_calendar(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
    """The calendar's (dim_date) weekday, holiday and promotion columns; None before dbt has built it."""
    from dagster_project.lib.alerts.engine import CALENDAR_COLUMNS

    calendar = dbt_outputs.exposure_tables("metric_alerts").sql("{dim_date}")
    if "date_day" not in dbt_outputs.columns_in(con, calendar):
        return None
    return pl.from_arrow(con.sql(
        f"select {', '.join(CALENDAR_COLUMNS)} from {calendar}").to_arrow_table())
