"""Predicted LTV as a Python asset: BG/NBD + Gamma-Gamma fitted on fct_orders' purchase days."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import polars as pl

from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib import ltv_marts
from dagster_project.settings import get_settings

PREDICTED = dg.AssetKey(["marts", "mart_ltv_predicted"])
MODEL = dg.AssetKey(["marts", "mart_ltv_model"])
BACKTEST = dg.AssetKey(["marts", "mart_ltv_backtest"])
FCT_ORDERS = dg.AssetKey(["marts", "fct_orders"])
# The one data end date of every mart (docs/metrics.md), var as_of_date included.
DATA_END = dg.AssetKey(["intermediate", "int_data_end_dates_resolved"])
# A backtest needs enough customers acquired before its calibration end to fit four parameters.
MIN_BACKTEST_CUSTOMERS = 50


def _write(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], df: pl.DataFrame,
           key: tuple[str, ...]) -> None:
    ddl = ", ".join(f"{c} {t}" for c, t in columns.items())
    con.execute(f"create or replace table marts.{table} ({ddl}, primary key ({', '.join(key)}))")
    con.register("ltv_frame", df.select(list(columns)))
    con.execute(f"insert into marts.{table} select * from ltv_frame")
    con.unregister("ltv_frame")


@dg.multi_asset(
    name="predicted_ltv",
    specs=[
        dg.AssetSpec(PREDICTED, deps=[FCT_ORDERS, DATA_END], group_name="marts", kinds={"python", "duckdb"},
                     description="Per customer and as-of date: BG/NBD p_alive, expected purchase days "
                                 "in 90 and 365 days, Gamma-Gamma spend, discounted 12-month value."),
        dg.AssetSpec(MODEL, deps=[FCT_ORDERS, DATA_END], group_name="marts", kinds={"python", "duckdb"},
                     description="Fitted BG/NBD and Gamma-Gamma parameters, log-likelihood, customers."),
        dg.AssetSpec(BACKTEST, deps=[FCT_ORDERS, DATA_END], group_name="marts", kinds={"python", "duckdb"},
                     description="Predicted vs actual purchase days after a calibration end."),
    ],
    check_specs=[
        dg.AssetCheckSpec("p_alive_is_a_probability", asset=PREDICTED, blocking=True),
        dg.AssetCheckSpec("model_converged", asset=MODEL),
    ],
    pool=WRITER_POOL,
)
def predicted_ltv(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    settings = get_settings()
    cfg = ltv_marts.LtvConfig(settings.ltv_time_unit_days, settings.ltv_monthly_discount)
    with warehouse.connect() as con:
        purchases = pl.from_arrow(con.sql(
            "select customer_key, order_date as purchase_date, cast(sum(net_revenue) as double) as amount "
            "from marts.fct_orders where is_valid group by all").to_arrow_table())
        if purchases.height == 0:
            raise dg.Failure("marts.fct_orders has no valid orders: nothing to fit the LTV model on")
        (data_end,) = con.execute(
            "select data_end_date from intermediate.int_data_end_dates_resolved").fetchone()
        as_of = date.fromisoformat(settings.ltv_as_of) if settings.ltv_as_of else data_end
        tables = ltv_marts.fit_and_predict(purchases, as_of, cfg)
        candidates = {data_end - timedelta(days=settings.ltv_backtest_days)} | (
            {as_of} if as_of < data_end else set())
        calibration_ends = []
        for end in sorted(candidates):
            acquired = purchases.filter(pl.col("purchase_date") <= end)["customer_key"].n_unique()
            if acquired < MIN_BACKTEST_CUSTOMERS:
                context.log.warning(f"no backtest at {end}: only {acquired} customers bought by then "
                                    f"(need {MIN_BACKTEST_CUSTOMERS} to fit)")
                continue
            calibration_ends.append(end)
        backtests = pl.DataFrame(
            [ltv_marts.backtest(purchases, end, data_end, cfg) for end in calibration_ends],
            schema={"as_of_date": pl.Date, "holdout_days": pl.Int64, "customers": pl.Int64,
                    "predicted_purchases": pl.Float64, "actual_purchases": pl.Int64,
                    "error_rate": pl.Float64},
        )
        con.execute("begin transaction")
        try:
            con.execute("create schema if not exists marts")
            _write(con, "mart_ltv_predicted", ltv_marts.PREDICTED_COLUMNS, tables.predicted,
                   ("customer_key", "as_of_date"))
            _write(con, "mart_ltv_model", ltv_marts.MODEL_COLUMNS, tables.model,
                   ("as_of_date", "model", "param"))
            _write(con, "mart_ltv_backtest", ltv_marts.BACKTEST_COLUMNS, backtests, ("as_of_date",))
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    pred = tables.predicted
    bad_p = pred.filter((pl.col("p_alive") < 0) | (pl.col("p_alive") > 1) | pl.col("p_alive").is_nan()).height
    params = {f"{r['model']}.{r['param']}": r["value"] for r in tables.model.iter_rows(named=True)}
    yield dg.MaterializeResult(asset_key=PREDICTED, metadata={
        "as_of_date": str(as_of), "customers": pred.height,
        "total_clv_12m": float(pred["clv_12m"].sum()), "mean_p_alive": float(pred["p_alive"].mean())})
    yield dg.MaterializeResult(asset_key=MODEL, metadata={
        **params, "bgnbd_log_likelihood": float(tables.bgnbd.log_likelihood)})
    yield dg.MaterializeResult(asset_key=BACKTEST, metadata={
        "rows": backtests.height, **{f"error_rate_{r['as_of_date']}": r["error_rate"]
                                    for r in backtests.iter_rows(named=True) if r["error_rate"] is not None}})
    yield dg.AssetCheckResult(check_name="p_alive_is_a_probability", asset_key=PREDICTED,
                              passed=bad_p == 0, metadata={"rows_outside_0_1": bad_p})
    converged = bool(tables.model["converged"].all())
    yield dg.AssetCheckResult(check_name="model_converged", asset_key=MODEL, passed=converged,
                              severity=dg.AssetCheckSeverity.WARN)
