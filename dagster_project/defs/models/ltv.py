"""Predicted LTV as a Python asset: BG/NBD + Gamma-Gamma fitted on fct_orders' purchase days."""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from dagster_project.defs.dbt.assets import translator
from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.resources import WRITER_POOL, WarehouseResource
from dagster_project.lib import dbt_outputs, ltv_marts
from dagster_project.lib.transaction import transaction
from dagster_project.settings import get_settings

# What the model reads (the dbt exposure predicted_ltv) and writes (the dbt sources written by it),
# found through the manifest: a renamed model fails when the definitions load, not in the night's run.
_MANIFEST = dbt_outputs.load_manifest(dbt_project.manifest_path)
READS = dbt_outputs.exposure_tables("predicted_ltv", _MANIFEST)
WRITES = dbt_outputs.written_by("predicted_ltv", _MANIFEST)
INPUTS = [translator.get_asset_key(node) for node in READS.nodes.values()]
PREDICTED, MODEL, BACKTEST, STATUS = (dg.AssetKey(list(WRITES[role].key_path))
                                      for role in ("predicted", "model", "backtest", "status"))
PURCHASES_SQL = READS.sql("select customer_key, order_date as purchase_date, cast(sum(net_revenue) as double) "
                          "as amount from {fct_orders} where is_valid group by all")
# The one data end date of every mart (docs/metrics.md), var as_of_date included.
DATA_END_SQL = READS.sql("select data_end_date from {int_data_end_dates_resolved}")


class LtvSettings(dg.ConfigurableResource):
    """The model's settings, EW_LTV_* (docs/metrics.md) as the definitions load (`ltv_settings`); a run
    launched from the UI may override them in its resource config."""

    as_of: str | None = None  # calibration end (YYYY-MM-DD); None: the data end date
    time_unit_days: float = 7.0  # BG/NBD time unit; 7 = weeks, as in the literature
    monthly_discount: float = 0.01
    backtest_days: int = 60


def ltv_settings() -> LtvSettings:
    settings = get_settings()
    return LtvSettings(as_of=settings.ltv_as_of, time_unit_days=settings.ltv_time_unit_days,
                       monthly_discount=settings.ltv_monthly_discount, backtest_days=settings.ltv_backtest_days)


@dg.multi_asset(
    name="predicted_ltv",
    specs=[
        dg.AssetSpec(PREDICTED, deps=INPUTS, group_name="marts", kinds={"python", "duckdb"},
                     description="Per customer and as-of date: BG/NBD p_alive, expected purchase days "
                                 "in 90 and 365 days, Gamma-Gamma spend, discounted 12-month value."),
        dg.AssetSpec(MODEL, deps=INPUTS, group_name="marts", kinds={"python", "duckdb"},
                     description="Fitted BG/NBD and Gamma-Gamma parameters, log-likelihood, customers."),
        dg.AssetSpec(BACKTEST, deps=INPUTS, group_name="marts", kinds={"python", "duckdb"},
                     description="Predicted vs actual purchase days after a calibration end."),
        dg.AssetSpec(STATUS, deps=INPUTS, group_name="marts", kinds={"python", "duckdb"},
                     description="Whether the model could be fitted on this data, and if not why (a young "
                                 "shop whose customers have not bought twice yet): the other three are "
                                 "then empty, and the run goes on."),
    ],
    check_specs=[
        dg.AssetCheckSpec("p_alive_is_a_probability", asset=PREDICTED, blocking=True),
        dg.AssetCheckSpec("model_converged", asset=MODEL),
    ],
    pool=WRITER_POOL,
)
def predicted_ltv(context: dg.AssetExecutionContext, warehouse: WarehouseResource, ltv: LtvSettings):
    cfg = ltv_marts.LtvConfig(ltv.time_unit_days, ltv.monthly_discount)
    with warehouse.connect() as con:
        purchases = pl.from_arrow(con.sql(PURCHASES_SQL).to_arrow_table())
        (data_end,) = con.execute(DATA_END_SQL).fetchone()
        as_of = date.fromisoformat(ltv.as_of) if ltv.as_of else data_end
        # A shop too young for the model (no repeat buyers yet, a handful of customers, no orders)
        # gets empty predictions and the reason, not a failed run.
        ready = ltv_marts.readiness(purchases, as_of)
        reason, tables, backtests = ready.reason, None, None
        if reason is None:
            try:
                tables = ltv_marts.fit_and_predict(purchases, as_of, cfg)
            except ValueError as exc:  # the data cannot identify the parameters (e.g. Gamma-Gamma q <= 1)
                reason = f"the model could not be fitted on this data: {exc}"
        if tables is not None:
            backtests = _backtests(context, purchases, as_of, data_end, ltv.backtest_days, cfg)
        else:
            context.log.warning(f"LTV model not fitted: {reason}; its marts are empty until it can be")
        with transaction(con):
            # None leaves a mart empty: the model could not be fitted
            WRITES["predicted"].replace(con, tables and tables.predicted)
            WRITES["model"].replace(con, tables and tables.model)
            WRITES["backtest"].replace(con, backtests)
            WRITES["status"].replace(con, ltv_marts.status_row(as_of, ready, reason))
    status = {"model_status": "fitted" if reason is None else "not_fitted", "model_reason": reason or "",
              "customers": ready.customers, "repeat_customers": ready.repeat_customers}
    yield dg.MaterializeResult(asset_key=STATUS, metadata={"as_of_date": str(as_of), **status})
    if tables is None:
        for key in (PREDICTED, MODEL, BACKTEST):
            yield dg.MaterializeResult(asset_key=key, metadata={"rows": 0, "model_reason": reason})
        yield dg.AssetCheckResult(check_name="p_alive_is_a_probability", asset_key=PREDICTED, passed=True,
                                  metadata={"rows_outside_0_1": 0, **status})
        yield dg.AssetCheckResult(check_name="model_converged", asset_key=MODEL, passed=True,
                                  severity=dg.AssetCheckSeverity.WARN, metadata=status,
                                  description=f"not fitted: {reason}")
        return
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


def _backtests(context, purchases: pl.DataFrame, as_of: date, data_end: date, backtest_days: int,
               cfg: ltv_marts.LtvConfig) -> pl.DataFrame:
    """The standing backtest (data end - backtest_days) and one at as_of when it is earlier than the
    data; a calibration end without enough customers or repeat buyers for a fit is left out."""
    candidates = {data_end - timedelta(days=backtest_days)} | ({as_of} if as_of < data_end else set())
    rows = []
    for end in sorted(candidates):
        ready = ltv_marts.readiness(purchases, end)
        if ready.reason is not None:
            context.log.warning(f"no backtest at {end}: {ready.reason}")
            continue
        try:
            rows.append(ltv_marts.backtest(purchases, end, data_end, cfg))
        except ValueError as exc:
            context.log.warning(f"no backtest at {end}: the model could not be fitted on the data up to it: {exc}")
    return pl.DataFrame(rows, schema={"as_of_date": pl.Date, "holdout_days": pl.Int64, "customers": pl.Int64,
                                      "predicted_purchases": pl.Float64, "actual_purchases": pl.Int64,
                                      "error_rate": pl.Float64})
