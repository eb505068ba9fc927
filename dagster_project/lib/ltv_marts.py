"""Predicted LTV marts from purchase days: BG/NBD x Gamma-Gamma (dagster_project/lib/clv.py).

Pure: takes purchase rows, returns the three mart tables as polars DataFrames. The Dagster asset
(defs/models/ltv.py) reads fct_orders and writes them with the columns their dbt sources declare
(dbt/models/marts/ltv_model/_ltv_model__sources.yml).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from dagster_project.lib import clv

# BG/NBD has four parameters, fitted on every customer; Gamma-Gamma three, fitted on repeat
# customers only. Below these counts the estimates say more about the optimiser than the shop.
MIN_FIT_CUSTOMERS = 50
MIN_REPEAT_CUSTOMERS = 10


@dataclass(frozen=True)
class Readiness:
    customers: int
    repeat_customers: int
    reason: str | None  # None: enough data to fit


def readiness(purchases: pl.DataFrame, as_of: date | None) -> Readiness:
    """Whether the purchases up to `as_of` can carry a fit, and if not, why, in words for the dashboard."""
    if as_of is None or purchases.height == 0:
        return Readiness(0, 0, "no valid order yet: nothing to fit the model on")
    days = (purchases.filter(pl.col("purchase_date") <= as_of)
            .group_by("customer_key").agg(pl.col("purchase_date").n_unique().alias("days")))
    customers, repeat = days.height, days.filter(pl.col("days") > 1).height
    if customers < MIN_FIT_CUSTOMERS:
        return Readiness(customers, repeat, f"{customers} customers bought by {as_of}; the model needs at "
                                            f"least {MIN_FIT_CUSTOMERS}")
    if repeat < MIN_REPEAT_CUSTOMERS:
        return Readiness(customers, repeat, f"{repeat} of {customers} customers bought on two or more days by "
                                            f"{as_of}; spend per purchase needs at least {MIN_REPEAT_CUSTOMERS} "
                                            f"repeat customers")
    return Readiness(customers, repeat, None)


def status_row(as_of: date | None, ready: Readiness, reason: str | None) -> pl.DataFrame:
    return pl.DataFrame([{"as_of_date": as_of, "status": "fitted" if reason is None else "not_fitted",
                          "reason": reason, "customers": ready.customers,
                          "repeat_customers": ready.repeat_customers}],
                        schema={"as_of_date": pl.Date, "status": pl.Utf8, "reason": pl.Utf8,
                                "customers": pl.Int64, "repeat_customers": pl.Int64})


@dataclass(frozen=True)
class LtvConfig:
    time_unit_days: float = 7.0
    monthly_discount: float = 0.01


@dataclass
class LtvTables:
    predicted: pl.DataFrame
    model: pl.DataFrame
    bgnbd: clv.BGNBDFit


def fit_and_predict(purchases: pl.DataFrame, as_of: date, cfg: LtvConfig) -> LtvTables:
    """purchases: customer_key, purchase_date (Date), amount (net revenue that day or order)."""
    unit = cfg.time_unit_days
    s = clv.summarize(purchases, as_of, unit)
    x, t_x, T = (s[c].to_numpy().astype(np.float64) for c in ("frequency", "recency", "T"))
    m = s["monetary"].to_numpy()
    bg = clv.fit_bgnbd(x, t_x, T, time_unit_days=unit)
    gg = clv.fit_gamma_gamma(x, m)
    spend = gg.conditional_expected_spend(x, m)
    predicted = pl.DataFrame({
        "customer_key": s["customer_key"],
        "as_of_date": pl.Series([as_of] * s.height, dtype=pl.Date),
        "first_purchase_date": (pl.Series(s["first_purchase_day"]).cast(pl.Int32)).cast(pl.Date),
        "frequency": s["frequency"].cast(pl.Int64),
        "recency_days": t_x * unit,
        "t_days": T * unit,
        "avg_order_value": m.astype(np.float64),
        "p_alive": bg.p_alive(x, t_x, T),
        "exp_purchases_90d": bg.expected_purchases(90.0 / unit, x, t_x, T),
        "exp_purchases_365d": bg.expected_purchases(365.0 / unit, x, t_x, T),
        "exp_spend_per_purchase": spend,
        "clv_12m": clv.clv_12m(x, t_x, T, m, bg, gg, monthly_discount=cfg.monthly_discount),
    })
    rows = []
    for name, fit in (("bgnbd", bg), ("gamma_gamma", gg)):
        errors = fit.std_errors._asdict() if fit.std_errors is not None else {}
        for param, value in fit.params._asdict().items():
            err = errors.get(param)
            rows.append({
                "as_of_date": as_of, "model": name, "param": param, "value": float(value),
                "std_error": None if err is None or not np.isfinite(err) else float(err),
                "log_likelihood": float(fit.log_likelihood), "n_customers": int(fit.n_customers),
                "time_unit_days": unit, "converged": bool(fit.converged),
            })
    model = pl.DataFrame(rows, schema={"as_of_date": pl.Date, "model": pl.Utf8, "param": pl.Utf8,
                                       "value": pl.Float64, "std_error": pl.Float64,
                                       "log_likelihood": pl.Float64, "n_customers": pl.Int64,
                                       "time_unit_days": pl.Float64, "converged": pl.Boolean})
    return LtvTables(predicted, model, bg)


def backtest(purchases: pl.DataFrame, calibration_end: date, data_end: date, cfg: LtvConfig) -> dict:
    """Fit on purchases up to calibration_end; compare expected with actual purchase days after it
    (through data_end) for the customers acquired by calibration_end."""
    holdout_days = (data_end - calibration_end).days
    tables = fit_and_predict(purchases, calibration_end, cfg)
    pred = tables.predicted
    later = (
        purchases.filter((pl.col("purchase_date") > calibration_end) & (pl.col("purchase_date") <= data_end))
        .select("customer_key", "purchase_date").unique()
        .join(pred.select("customer_key"), on="customer_key", how="semi")
    )
    unit = cfg.time_unit_days
    p = tables.bgnbd.expected_purchases(holdout_days / unit, pred["frequency"].to_numpy(),
                                        pred["recency_days"].to_numpy() / unit,
                                        pred["t_days"].to_numpy() / unit)
    predicted = float(np.sum(p))
    actual = later.height
    return {"as_of_date": calibration_end, "holdout_days": holdout_days, "customers": pred.height,
            "predicted_purchases": predicted, "actual_purchases": actual,
            "error_rate": (predicted - actual) / actual if actual else None}


__all__ = ["LtvConfig", "LtvTables", "fit_and_predict", "backtest", "readiness", "status_row", "Readiness",
           "MIN_FIT_CUSTOMERS", "MIN_REPEAT_CUSTOMERS"]
