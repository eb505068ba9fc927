"""Predicted customer lifetime value: BG/NBD purchase counts x Gamma-Gamma spend, discounted.

Pure functions (numpy / scipy; polars only for the transaction summary), no pipeline state.

Models and the formulas used
----------------------------
* BG/NBD -- Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
  the Pareto/NBD Model", Marketing Science 24(2).  While active a customer buys at Poisson rate
  lambda ~ Gamma(r, alpha); after every *repeat* purchase she drops out with probability
  p ~ Beta(a, b).  Per customer the data are x (repeat purchases), t_x (time of the last purchase,
  measured from the first) and T (time from the first purchase to the end of calibration).
  Likelihood: FHL 2005 eq. 6; P(alive): FHL 2005 / Fader, Hardie & Lee (2008) note "Computing
  P(alive) using the BG/NBD model";
  conditional expectation E[Y(t) | x, t_x, T]: eq. 10, evaluated with a Pfaff transformation of
  the Gaussian hypergeometric function (see `expected_purchases`).
* Gamma-Gamma -- Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value", and Fader,
  Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", JMR 42.
  Spend per transaction z ~ Gamma(p, nu), nu ~ Gamma(q, gamma); the mean spend z_bar of the x
  repeat transactions is Gamma(p x, nu x) given nu.
* CLV -- sum over the next `months` months of the expected purchases in month m times the expected
  spend per purchase, discounted by (1 + monthly_discount)^m.

Conventions (they are what reproduces the published CDNOW numbers, see tests/test_clv.py)
---------------------------------------------------------------------------------------
* The model counts purchase *days*: several orders of one customer on one calendar day are one
  purchase (their amounts are summed).
* frequency x = distinct purchase days in [first day, as_of] minus 1 (as_of inclusive).
* recency t_x = (last purchase day - first purchase day) / time_unit_days.
* T = (as_of - first purchase day) / time_unit_days (a day difference, so a first purchase on
  as_of gives T = 0).
* monetary = mean spend per *repeat* purchase day (the first purchase day is excluded); 0.0 when
  x = 0 (undefined; such customers are not used to fit Gamma-Gamma and get the population mean
  spend in predictions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

import numpy as np
import polars as pl
from scipy import optimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

DAYS_PER_MONTH = 30.4375  # 365.25 / 12
DEFAULT_TIME_UNIT_DAYS = 7.0  # weeks, as in the literature

__all__ = [
    "BGNBDParams", "GammaGammaParams", "BGNBDFit", "GammaGammaFit",
    "summarize", "summarize_arrays",
    "bgnbd_log_likelihood", "fit_bgnbd",
    "p_alive", "expected_purchases", "expected_purchases_new_customer",
    "gamma_gamma_log_likelihood", "fit_gamma_gamma", "conditional_expected_spend",
    "clv_12m", "simulate_bgnbd", "simulate_bgnbd_transactions", "simulate_gamma_gamma_spend",
]


# --------------------------------------------------------------------------------------------
# Parameters and fit results
# --------------------------------------------------------------------------------------------
class BGNBDParams(NamedTuple):
    r: float
    alpha: float
    a: float
    b: float


class GammaGammaParams(NamedTuple):
    p: float
    q: float
    gamma: float


@dataclass(frozen=True)
class _FitInfo:
    log_likelihood: float  # summed over customers (weights applied)
    n_customers: int  # customers used in the fit (sum of weights)
    n_rows: int  # distinct rows the likelihood was evaluated on (after aggregation)
    converged: bool
    message: str
    n_iter: int
    n_fev: int
    grad_norm: float  # max |d(mean LL) / d(log param)| at the optimum (converged: < 1e-6)


class _FitStats:
    """Fit statistics shared by both model fits (read from their `info`)."""

    info: _FitInfo

    @property
    def log_likelihood(self) -> float:
        return self.info.log_likelihood

    @property
    def n_customers(self) -> int:
        return self.info.n_customers

    @property
    def converged(self) -> bool:
        return self.info.converged


@dataclass(frozen=True)
class BGNBDFit(_FitStats):
    params: BGNBDParams
    info: _FitInfo
    time_unit_days: float = DEFAULT_TIME_UNIT_DAYS
    std_errors: BGNBDParams | None = None  # asymptotic, from the observed information

    def p_alive(self, x, t_x, T):
        return p_alive(x, t_x, T, self.params)

    def expected_purchases(self, t, x, t_x, T):
        return expected_purchases(t, x, t_x, T, self.params)



@dataclass(frozen=True)
class GammaGammaFit(_FitStats):
    params: GammaGammaParams
    info: _FitInfo
    n_excluded: int = 0  # rows dropped because x == 0 or monetary <= 0
    std_errors: GammaGammaParams | None = None  # asymptotic, from the observed information

    def conditional_expected_spend(self, x, m):
        return conditional_expected_spend(x, m, self.params)



def _bg_params(params) -> BGNBDParams:
    if isinstance(params, BGNBDFit):
        return params.params
    if isinstance(params, dict):
        return BGNBDParams(params["r"], params["alpha"], params["a"], params["b"])
    return BGNBDParams(*map(float, params))


def _gg_params(params) -> GammaGammaParams:
    if isinstance(params, GammaGammaFit):
        return params.params
    if isinstance(params, dict):
        return GammaGammaParams(params["p"], params["q"], params.get("gamma", params.get("v")))
    return GammaGammaParams(*map(float, params))


# --------------------------------------------------------------------------------------------
# Summary from transactions
# --------------------------------------------------------------------------------------------
def _day_number(values: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date:
        return values.cast(pl.Int64)
    if isinstance(dtype, pl.Datetime):
        return values.dt.date().cast(pl.Int64)
    if dtype.is_integer():
        return values.cast(pl.Int64)
    raise TypeError(f"purchase dates must be Date, Datetime or integer day numbers, got {dtype}")


def _as_of_day(as_of) -> int:
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    if isinstance(as_of, date):
        return (as_of - date(1970, 1, 1)).days
    if isinstance(as_of, np.datetime64):
        return int(as_of.astype("datetime64[D]").astype(np.int64))
    if isinstance(as_of, (int, np.integer)):
        return int(as_of)
    if isinstance(as_of, str):
        return (date.fromisoformat(as_of) - date(1970, 1, 1)).days
    raise TypeError(f"as_of must be a date, datetime, ISO string or integer day number: {as_of!r}")


def summarize(
    purchases,
    as_of,
    time_unit_days: float = DEFAULT_TIME_UNIT_DAYS,
    *,
    customer_col: str = "customer_key",
    date_col: str = "purchase_date",
    amount_col: str | None = "amount",
) -> pl.DataFrame:
    """Per-customer BG/NBD / Gamma-Gamma summary from purchase rows (one row per order/line).

    `purchases`: a polars DataFrame (or anything `pl.DataFrame(...)` accepts, e.g. a dict of
    arrays or a pandas DataFrame) with a customer column, a purchase date column (Date, Datetime
    -- truncated to the day -- or integer day numbers) and optionally an amount column.
    `as_of`: last day of the calibration period, inclusive (date / datetime / ISO string, or an
    integer day number when the date column holds day numbers).

    Returns one row per customer whose first purchase is on or before `as_of`, with columns
    customer, `first_purchase_day` (Int64 days since 1970-01-01 or the given day numbering),
    `frequency`, `recency`, `T` (model time units = days / time_unit_days) and, when amounts are
    given, `monetary` (mean spend per repeat purchase day; 0.0 when frequency == 0).
    Purchases after `as_of` are ignored. Sorted by customer.
    """
    df = purchases if isinstance(purchases, pl.DataFrame) else pl.DataFrame(purchases)
    as_of_day = _as_of_day(as_of)
    day = _day_number(pl.col(date_col), df.schema[date_col]).alias("_day")
    cols = [pl.col(customer_col), day]
    if amount_col is not None:
        cols.append(pl.col(amount_col).cast(pl.Float64).fill_null(0.0).alias("_amt"))
    lf = df.lazy().select(cols).filter(pl.col("_day") <= as_of_day)
    if amount_col is not None:
        daily = lf.group_by(customer_col, "_day").agg(pl.col("_amt").sum())
        per = daily.group_by(customer_col).agg(
            pl.col("_day").min().alias("first_purchase_day"),
            pl.col("_day").max().alias("_last"),
            pl.len().alias("_n"),
            pl.col("_amt").sum().alias("_total"),
            pl.col("_amt").filter(pl.col("_day") == pl.col("_day").min()).sum().alias("_first_amt"),
        )
    else:
        per = lf.group_by(customer_col).agg(
            pl.col("_day").min().alias("first_purchase_day"),
            pl.col("_day").max().alias("_last"),
            pl.col("_day").n_unique().alias("_n"),
        )
    u = float(time_unit_days)
    out = per.with_columns(
        (pl.col("_n").cast(pl.Int64) - 1).alias("frequency"),
        ((pl.col("_last") - pl.col("first_purchase_day")).cast(pl.Float64) / u).alias("recency"),
        ((as_of_day - pl.col("first_purchase_day")).cast(pl.Float64) / u).alias("T"),
    )
    select = [customer_col, "first_purchase_day", "frequency", "recency", "T"]
    if amount_col is not None:
        out = out.with_columns(
            pl.when(pl.col("frequency") > 0)
            .then((pl.col("_total") - pl.col("_first_amt")) / pl.col("frequency"))
            .otherwise(0.0)
            .alias("monetary")
        )
        select.append("monetary")
    return out.select(select).sort(customer_col).collect()


def summarize_arrays(customer, day, amount=None, *, as_of_day: int,
                     time_unit_days: float = DEFAULT_TIME_UNIT_DAYS) -> dict[str, np.ndarray]:
    """`summarize` on plain arrays (customer ids, integer day numbers, optional amounts).

    Returns a dict of numpy arrays: customer, first_purchase_day, frequency, recency, T
    (and monetary when `amount` is given)."""
    data = {"customer_key": np.asarray(customer), "purchase_date": np.asarray(day, dtype=np.int64)}
    if amount is not None:
        data["amount"] = np.asarray(amount, dtype=np.float64)
    s = summarize(pl.DataFrame(data), int(as_of_day), time_unit_days,
                  amount_col="amount" if amount is not None else None)
    res = {k: s[k].to_numpy() for k in s.columns}
    res["customer"] = res.pop("customer_key")
    return res


# --------------------------------------------------------------------------------------------
# Aggregation of identical rows
# --------------------------------------------------------------------------------------------
def _aggregate(cols: dict[str, np.ndarray], weights: np.ndarray | None):
    """Collapse identical rows, summing weights. Returns (dict of unique columns, weights)."""
    df = pl.DataFrame(cols)
    w = np.ones(df.height) if weights is None else np.asarray(weights, dtype=np.float64)
    agg = df.with_columns(pl.Series("_w", w)).group_by(list(cols)).agg(pl.col("_w").sum())
    return {k: agg[k].to_numpy() for k in cols}, agg["_w"].to_numpy()


def _unique_inverse(*cols: np.ndarray):
    """Unique rows of the given equal-length columns and the index mapping rows to them."""
    df = pl.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
    uniq = df.unique().with_row_index("_gid")
    inv = df.join(uniq, on=list(df.columns), how="left", maintain_order="left")["_gid"].to_numpy()
    return [uniq[f"c{i}"].to_numpy() for i in range(len(cols))], inv.astype(np.int64)


def _canonical_order(*cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """The rows sorted by their values (first column first). A fit sums over rows; in another row
    order the sums differ in their last bits, and where the likelihood is flat (a few hundred
    customers) the optimum moves by ~1e-5. Sorted, the same purchases give the same fit to the bit,
    whatever the customers are called and in whichever order a query or a group-by returned them."""
    order = np.lexsort(cols[::-1])
    return tuple(c[order] for c in cols)


def _check_rft(x, t_x, T):
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if x.shape != t_x.shape or x.shape != T.shape:
        x, t_x, T = np.broadcast_arrays(x, t_x, T)
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative integer")
    if np.any(t_x < 0) or np.any(t_x > T * (1 + 1e-12)):
        raise ValueError("need 0 <= recency <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 when frequency is 0")
    return x, t_x, T


# --------------------------------------------------------------------------------------------
# BG/NBD likelihood, gradient, fit
# --------------------------------------------------------------------------------------------
class _BGData:
    """Rows (x, t_x, T, weight) with the x-only terms indexed by the distinct x values and the
    parameter-free per-row products precomputed."""

    CHUNK = 1 << 16  # rows per block: keeps temporaries in cache

    def __init__(self, x, t_x, T, w):
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.t_x = np.ascontiguousarray(t_x, dtype=np.float64)
        self.T = np.ascontiguousarray(T, dtype=np.float64)
        self.w = np.ascontiguousarray(w, dtype=np.float64)
        self.ux, inv = np.unique(self.x, return_inverse=True)
        self.inv = inv.astype(np.intp)
        self.wx = self.w * self.x
        self.W = float(self.w.sum())
        self.nx = np.bincount(self.inv, weights=self.w, minlength=self.ux.size)
        self.pos = self.ux > 0
        self.n = self.x.size


def _bgnbd_ll_grad(params: np.ndarray, d: _BGData, want_grad: bool = True):
    """Summed log-likelihood and its gradient w.r.t. (r, alpha, a, b) (not log-parameters).

    FHL 2005 eq. 6 in the form  LL_i = K(x) - (r+x) ln(alpha+T) + softplus(u),
        K(x) = lnG(r+x) - lnG(r) + r ln(alpha) + lnB(a, b+x) - lnB(a, b),
        u    = ln(a / (b+x-1)) + (r+x) ln((alpha+T)/(alpha+t_x))   (x > 0; u = -inf for x = 0),
    where exp(u) is the odds of "dropped out right after the last purchase" vs "still alive"
    (so 1 - sigmoid(u) = P(alive)); softplus(u) = max(u, 0) + log1p(exp(-|u|)) is stable."""
    r, al, a, b = (float(v) for v in params)
    ux, nx, pos = d.ux, d.nx, d.pos
    uxp = ux[pos]
    # --- terms depending on x only ---
    K = gammaln(r + ux) - gammaln(r) + r * math.log(al) + betaln(a, b + ux) - betaln(a, b)
    LD = np.full_like(ux, -np.inf)
    LD[pos] = math.log(a) - np.log(b + uxp - 1.0)
    ll = float(np.dot(nx, K))
    s_lT = s_wx_lT = s_sp = 0.0
    s_s2 = np.zeros(ux.size)
    g_r_rows = g_al_rows = 0.0
    for lo in range(0, d.n, d.CHUNK):
        sl = slice(lo, lo + d.CHUNK)
        w, wx, inv = d.w[sl], d.wx[sl], d.inv[sl]
        aT = al + d.T[sl]
        atx = al + d.t_x[sl]
        lT = np.log(aT)
        dl = lT - np.log(atx)  # ln((alpha+T)/(alpha+t_x)) >= 0
        u = d.x[sl] + r
        u *= dl
        u += LD[inv]
        e = np.abs(u)
        # exp(-|u|) in (0, 1]; capping |u| at 500 keeps it out of the (very slow) subnormal range
        # and changes softplus / sigmoid by < 1e-217
        np.minimum(e, 500.0, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)
        sp = np.log1p(e)
        sp += np.maximum(u, 0.0)
        s_lT += float(np.dot(w, lT))
        s_wx_lT += float(np.dot(wx, lT))
        s_sp += float(np.dot(w, sp))
        if want_grad:
            # sigmoid(u) = P(dropped out | data): weight of the delta(x>0) term
            s2 = np.where(u > 0, 1.0, e)
            s2 /= 1.0 + e
            ws2 = w * s2
            s_s2 += np.bincount(inv, weights=ws2, minlength=ux.size)
            g_r_rows += float(np.dot(ws2, dl))
            iaT = 1.0 / aT
            diff = iaT - 1.0 / atx
            # sum w (r+x) [1/(a+T) - s2 (1/(a+T) - 1/(a+t_x))]
            g_al_rows += (r * float(np.dot(w, iaT)) + float(np.dot(wx, iaT))
                          - r * float(np.dot(ws2, diff)) - float(np.dot(ws2 * d.x[sl], diff)))
    ll += -r * s_lT - s_wx_lT + s_sp
    if not want_grad:
        return ll, None
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + ux)
    dK_dr = digamma(r + ux) - digamma(r) + math.log(al)
    dK_da = psi_ab - psi_abx
    dK_db = digamma(b + ux) - digamma(b) + psi_ab - psi_abx
    S2 = float(s_s2.sum())
    g_r = float(np.dot(nx, dK_dr)) - s_lT + g_r_rows
    g_al = r / al * d.W - g_al_rows
    g_a = float(np.dot(nx, dK_da)) + S2 / a
    g_b = float(np.dot(nx, dK_db)) - float(np.dot(s_s2[pos], 1.0 / (b + uxp - 1.0)))
    return ll, np.array([g_r, g_al, g_a, g_b])


def bgnbd_log_likelihood(params, x, t_x, T, weights=None, *, with_grad: bool = False):
    """Summed BG/NBD log-likelihood (FHL 2005 eq. 6) at `params` = (r, alpha, a, b).

    With `with_grad=True` also returns the gradient w.r.t. the log-parameters
    (d LL / d log theta = theta * d LL / d theta)."""
    x, t_x, T = _check_rft(x, t_x, T)
    w = np.ones(x.shape) if weights is None else np.broadcast_to(
        np.asarray(weights, dtype=np.float64), x.shape)
    d = _BGData(x.ravel(), t_x.ravel(), T.ravel(), w.ravel())
    theta = np.asarray(_bg_params(params), dtype=np.float64)
    ll, g = _bgnbd_ll_grad(theta, d, with_grad)
    return (ll, g * theta) if with_grad else ll


def _fd_hessian(fun_grad, z, g0):
    """Hessian by forward differences of the analytic gradient (symmetrised); k evaluations."""
    k = z.size
    hess = np.empty((k, k))
    for i in range(k):
        h = 1e-6 * max(1.0, abs(z[i]))
        e = np.zeros(k)
        e[i] = h
        hess[:, i] = (fun_grad(z + e)[1] - g0) / h
    return 0.5 * (hess + hess.T)


def _minimize_log(fun_grad, x0, bounds, tol=1e-11, newton_steps: int = 4):
    """Minimise a mean negative log-likelihood over log-parameters: L-BFGS-B with the analytic
    gradient, then Newton steps (Hessian = forward differences of the analytic gradient) that
    take the gradient to round-off level. Returns (z, info dict, Hessian near z)."""
    res = optimize.minimize(
        fun_grad, x0, jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": 2000, "maxcor": 20, "ftol": tol, "gtol": 1e-9},
    )
    z = np.asarray(res.x, dtype=np.float64)
    f, g = fun_grad(z)
    nfev = int(res.nfev) + 1
    lo = np.array([bd[0] for bd in bounds])
    hi = np.array([bd[1] for bd in bounds])
    hess = None
    for _ in range(newton_steps):
        if not np.isfinite(f) or np.max(np.abs(g)) < 1e-11:
            break
        hess = _fd_hessian(fun_grad, z, g)
        nfev += z.size
        try:
            np.linalg.cholesky(hess)
            step = -np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            break
        decrement = -float(g @ step)  # predicted decrease of f is decrement / 2
        # below ~1e-10 the decrease drowns in the round-off of f (a sum over all customers):
        # judge the step by the gradient instead
        noisy = decrement < 1e-10 * (1.0 + abs(f))
        accepted = False
        for _ in range(12):  # backtracking
            zn = np.clip(z + step, lo, hi)
            fn, gn = fun_grad(zn)
            nfev += 1
            if np.isfinite(fn) and (fn <= f if not noisy
                                    else np.max(np.abs(gn)) < np.max(np.abs(g))):
                accepted = True
                break
            step *= 0.5
        if not accepted:
            break
        z, f, g = zn, fn, gn
    if hess is None:
        hess = _fd_hessian(fun_grad, z, g)
        nfev += z.size
    grad_norm = float(np.max(np.abs(g)))
    converged = bool(np.isfinite(f) and grad_norm < 1e-6)
    info = {"converged": converged, "message": f"L-BFGS-B: {res.message}; Newton polish: "
            f"max|grad| = {grad_norm:.1e}", "n_iter": int(res.nit), "n_fev": nfev,
            "grad_norm": grad_norm}
    return z, info, hess


def _std_errors(theta, hess, W):
    """Asymptotic standard errors of theta from the Hessian of the mean NLL in log-parameters."""
    try:
        cov_log = np.linalg.inv(hess) / W
        return tuple(map(float, theta * np.sqrt(np.clip(np.diag(cov_log), 0, None))))
    except np.linalg.LinAlgError:
        return tuple([math.nan] * len(theta))


def fit_bgnbd(x, t_x, T, weights=None, *, aggregate: bool | None = None,
              time_unit_days: float = DEFAULT_TIME_UNIT_DAYS, x0=None,
              tol: float = 1e-11) -> BGNBDFit:
    """Maximum-likelihood BG/NBD fit on (frequency, recency, T) per customer.

    Optimises the mean log-likelihood over log(r, alpha, a, b) with L-BFGS-B and the analytic
    gradient, then polishes with Newton steps. Identical (x, t_x, T) rows are collapsed into
    weighted rows first (`aggregate=True`; with time in whole days all one-time buyers of one
    acquisition day become one row); `aggregate=None` does so for > 20k rows of which >= 30% are
    one-time buyers. `weights` (optional) are per-row customer counts."""
    x, t_x, T = _check_rft(x, t_x, T)
    x, t_x, T = x.ravel(), t_x.ravel(), T.ravel()
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if aggregate is None:
        # grouping costs about as much as ~10 likelihood evaluations of the rows it removes, so
        # it pays when many rows collapse: one-time buyers (x = 0) collapse onto their distinct
        # T values, so use their share as the (cheap) predictor
        aggregate = x.size > 20_000 and np.count_nonzero(x == 0) >= 0.3 * x.size
    if aggregate:
        cols, w = _aggregate({"x": x, "t_x": t_x, "T": T}, w)
        x, t_x, T = cols["x"], cols["t_x"], cols["T"]
    if w is None:
        w = np.ones(x.size)
    x, t_x, T, w = _canonical_order(x, t_x, T, w)
    d = _BGData(x, t_x, T, w)
    W = d.W

    def fg(z):
        theta = np.exp(z)
        ll, g = _bgnbd_ll_grad(theta, d)
        if not np.isfinite(ll):
            return np.inf, np.zeros(4)
        return -ll / W, -(g * theta) / W

    if x0 is None:
        # Poisson-ish start: r / alpha ~ purchases per unit time; a = 1, b = 1
        rate = max(np.dot(w, x) / max(np.dot(w, T), 1e-12), 1e-6)
        x0 = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    else:
        x0 = np.log(np.asarray(_bg_params(x0), dtype=np.float64))
    bounds = [(-20.0, 20.0)] * 4
    z, opt, hess = _minimize_log(fg, x0, bounds, tol)
    theta = np.exp(z)
    ll, _ = _bgnbd_ll_grad(theta, d, want_grad=False)
    info = _FitInfo(log_likelihood=ll, n_customers=int(round(W)), n_rows=int(x.size), **opt)
    return BGNBDFit(BGNBDParams(*map(float, theta)), info, float(time_unit_days),
                    BGNBDParams(*_std_errors(theta, hess, W)))


# --------------------------------------------------------------------------------------------
# BG/NBD predictions
# --------------------------------------------------------------------------------------------
def _log_dead_odds(x, t_x, T, prm: BGNBDParams):
    """log of delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x); -inf for x == 0."""
    r, al, a, b = prm
    pos = x > 0
    xs = np.where(pos, x, 1.0)
    z = (np.log(a) - np.log(b + xs - 1.0)
         + (r + xs) * (np.log(al + T) - np.log(al + np.where(pos, t_x, 0.0))))
    return np.where(pos, z, -np.inf)


def p_alive(x, t_x, T, params):
    """P(customer still active at T | x, t_x, T) under BG/NBD (FHL 2005 appendix):

        1 / (1 + delta(x>0) * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)),  which is 1 for x = 0
    (in BG/NBD dropout can only happen right after a repeat purchase)."""
    prm = _bg_params(params)
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    return expit(-_log_dead_odds(x, t_x, T, prm))


def _one_minus_h(t, x, T, prm: BGNBDParams):
    """(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]

    = E[Y(t) | x, t_x, T, alive at T] (FHL 2005 eq. 10 without the P(alive) factor). The Pfaff
    transformation 2F1(A,B;C;z) = (1-z)^-A 2F1(A, C-B; C; z/(z-1)) turns the bracket into
    1 - 2F1(r+x, a-1; a+b+x-1; -t/(alpha+T)): the second parameter a-1 is small and fixed, the
    argument is <= 0 and the power prefactor (which over/underflows for large x) cancels."""
    r, al, a, b = prm
    t = np.asarray(t, dtype=np.float64)
    if abs(a - 1.0) < 1e-6:  # removable singularity at a = 1: average the two sides (O(h^2))
        h = 2e-6
        return 0.5 * (_one_minus_h(t, x, T, BGNBDParams(r, al, 1.0 - h, b))
                      + _one_minus_h(t, x, T, BGNBDParams(r, al, 1.0 + h, b)))
    c = a + b + x - 1.0
    z = -t / (al + T)
    H = hyp2f1(r + x, a - 1.0, c, z)
    bad = ~np.isfinite(H)
    if np.any(bad):  # fall back on the untransformed form (lifetimes-style)
        xb, Tb, tb = (np.broadcast_to(v, H.shape)[bad] for v in (x, T, t))
        cb = np.broadcast_to(c, H.shape)[bad]
        zb = tb / (al + Tb + tb)
        lpref = (r + xb) * (np.log(al + Tb) - np.log(al + Tb + tb))
        H = H.copy()
        H[bad] = np.exp(lpref) * hyp2f1(r + xb, b + xb, cb, zb)
    return c / (a - 1.0) * (1.0 - H)


def expected_purchases(t, x, t_x, T, params):
    """E[number of purchases in (T, T+t] | x, t_x, T] under BG/NBD (FHL 2005 eq. 10).

    Vectorised over all arguments (numpy broadcasting). t in model time units."""
    prm = _bg_params(params)
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    return _one_minus_h(t, x, T, prm) * p_alive(x, t_x, T, prm)


def expected_purchases_new_customer(t, params):
    """E[X(t)]: expected repeat purchases in (0, t] of a just-acquired customer (FHL 2005 eq. 9)."""
    r, al, a, b = _bg_params(params)
    t = np.asarray(t, dtype=np.float64)
    return (a + b - 1) / (a - 1) * (1 - (al / (al + t)) ** r * hyp2f1(r, b, a + b - 1, t / (al + t)))


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------
class _GGData:
    def __init__(self, x, m, w):
        self.ux, inv = np.unique(x, return_inverse=True)
        self.inv = inv.astype(np.intp)
        self.nx = np.bincount(self.inv, weights=w, minlength=self.ux.size)
        self.W = float(w.sum())
        self.w = w
        self.wx = w * x
        self.m = m
        self.xm = x * m
        lx, lm = np.log(x), np.log(m)
        self.s_wx_lx = float(np.dot(self.wx, lx))
        self.s_wx_lm = float(np.dot(self.wx, lm))
        self.s_w_lm = float(np.dot(w, lm))


def _gg_ll_grad(theta, d: _GGData, want_grad=True):
    """Summed Gamma-Gamma log-likelihood and gradient w.r.t. (p, q, gamma)."""
    p, q, g = (float(v) for v in theta)
    px_u = p * d.ux
    K = gammaln(px_u + q) - gammaln(px_u) - gammaln(q)
    lg = math.log(g)
    den = d.xm + g
    lden = np.log(den)
    s_wx_lden = float(np.dot(d.wx, lden))
    s_w_lden = float(np.dot(d.w, lden))
    ll = (float(np.dot(d.nx, K)) + q * lg * d.W + p * d.s_wx_lx + p * d.s_wx_lm - d.s_w_lm
          - p * s_wx_lden - q * s_w_lden)
    if not want_grad:
        return ll, None
    iden = 1.0 / den
    psi_pq = digamma(px_u + q)
    d_p = (float(np.dot(d.nx * d.ux, psi_pq - digamma(px_u)))
           + d.s_wx_lx + d.s_wx_lm - s_wx_lden)
    d_q = float(np.dot(d.nx, psi_pq)) - d.W * digamma(q) + d.W * lg - s_w_lden
    d_g = q / g * d.W - p * float(np.dot(d.wx, iden)) - q * float(np.dot(d.w, iden))
    return ll, np.array([d_p, d_q, d_g])


def _gg_prepare(x, m, weights):
    x = np.asarray(x, dtype=np.float64).ravel()
    m = np.asarray(m, dtype=np.float64).ravel()
    w = np.ones(x.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    n_excl = int(x.size - keep.sum())
    return _GGData(*_canonical_order(x[keep], m[keep], w[keep])), n_excl


def gamma_gamma_log_likelihood(params, x, m, weights=None, *, with_grad: bool = False):
    """Summed Gamma-Gamma log-likelihood of the mean repeat spend m given x (Fader & Hardie 2013):

        log f(m | p,q,gamma; x) = lnG(px+q) - lnG(px) - lnG(q) + q ln gamma + px ln x
                                  + (px-1) ln m - (px+q) ln(gamma + x m)
    over rows with x > 0 and m > 0. `with_grad`: also the gradient w.r.t. log(p, q, gamma)."""
    data, _ = _gg_prepare(x, m, weights)
    theta = np.asarray(_gg_params(params), dtype=np.float64)
    ll, g = _gg_ll_grad(theta, data, want_grad=with_grad)
    return (ll, g * theta) if with_grad else ll


def fit_gamma_gamma(x, m, weights=None, *, x0=None, tol: float = 1e-11) -> GammaGammaFit:
    """MLE of the Gamma-Gamma spend model (p, q, gamma) on customers with x > 0 (repeat purchase
    count) and m > 0 (mean spend per repeat purchase); other rows are ignored (`n_excluded`)."""
    data, n_excl = _gg_prepare(x, m, weights)
    W = data.W
    if W == 0:
        raise ValueError("no customers with a repeat purchase and positive spend")

    def fg(z):
        theta = np.exp(z)
        ll, g = _gg_ll_grad(theta, data)
        if not np.isfinite(ll):
            return np.inf, np.zeros(3)
        return -ll / W, -(g * theta) / W

    if x0 is None:
        mbar = float(np.dot(data.w, data.m) / W)
        x0 = np.log([1.0, 2.0, mbar])  # E[z] = p gamma / (q - 1) = mbar
    else:
        x0 = np.log(np.asarray(_gg_params(x0), dtype=np.float64))
    z, opt, hess = _minimize_log(fg, x0, [(-20.0, 20.0)] * 3, tol)
    theta = np.exp(z)
    ll, _ = _gg_ll_grad(theta, data, want_grad=False)
    info = _FitInfo(log_likelihood=ll, n_customers=int(round(W)), n_rows=int(data.w.size), **opt)
    return GammaGammaFit(GammaGammaParams(*map(float, theta)), info, n_excl,
                         GammaGammaParams(*_std_errors(theta, hess, W)))


def conditional_expected_spend(x, m, params):
    """E[spend per transaction | x, m] = p (gamma + x m) / (p x + q - 1)  (needs q > 1).

    For x = 0 this is the population mean p gamma / (q - 1) (m is ignored)."""
    p, q, g = _gg_params(params)
    if q <= 1:
        raise ValueError("Gamma-Gamma expected spend is infinite for q <= 1")
    x = np.asarray(x, dtype=np.float64)
    m = np.where(x > 0, np.asarray(m, dtype=np.float64), 0.0)
    return p * (g + x * m) / (p * x + q - 1.0)


# --------------------------------------------------------------------------------------------
# CLV
# --------------------------------------------------------------------------------------------
def clv_12m(x, t_x, T, m, bgnbd, gamma_gamma, *, months: int = 12,
            monthly_discount: float = 0.01,
            time_unit_days: float | None = None, dedupe: bool | None = None) -> np.ndarray:
    """Expected discounted spend over the next `months` months, per customer:

        sum_{k=1..months} (E[Y(t_k)] - E[Y(t_{k-1})]) * E[spend | x, m] / (1 + d)^k,
    t_k = k * 30.4375 days in model time units. `bgnbd` / `gamma_gamma`: fits or parameter
    tuples; `time_unit_days` defaults to the BG/NBD fit's (else 7). The hypergeometric function
    is evaluated once per distinct (x, T) (`dedupe=None`: when that saves at least half)."""
    prm = _bg_params(bgnbd)
    if time_unit_days is None:
        time_unit_days = bgnbd.time_unit_days if isinstance(bgnbd, BGNBDFit) else DEFAULT_TIME_UNIT_DAYS
    x, t_x, T = (np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T))
    spend = conditional_expected_spend(x, np.asarray(m, dtype=np.float64).ravel(), gamma_gamma)
    month = DAYS_PER_MONTH / float(time_unit_days)
    ks = np.arange(months + 1, dtype=np.float64)
    disc = (1.0 + monthly_discount) ** -ks[1:]
    if dedupe is None:
        dedupe = x.size > 10_000
    inv = None
    if dedupe:
        (ux, uT), inv = _unique_inverse(x, T)
        if ux.size * 2 > x.size:
            inv = None
    if inv is None:
        ux, uT = x, T
    # cumulative conditional expectation given alive, at t_0..t_months: shape (n_unique, months+1)
    cum = np.stack([_one_minus_h(k * month, ux, uT, prm) if k else np.zeros_like(ux) for k in ks], 1)
    per_alive = np.diff(cum, axis=1) @ disc  # discounted expected purchases given alive
    if inv is not None:
        per_alive = per_alive[inv]
    return per_alive * p_alive(x, t_x, T, prm) * spend


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------
def _bgnbd_draw(n, r, alpha, a, b, T, rng):
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    n_T = rng.poisson(lam * T)  # purchases in (0, T] if the customer never dropped out
    j = rng.geometric(p)  # repeat purchase after which she drops out (1, 2, ...)
    x = np.minimum(n_T, j)
    t_x = np.zeros(n)
    pos = x > 0
    # given n_T = k events on (0, T], their times are k sorted uniforms: the x-th is T*Beta(x, k-x+1)
    t_x[pos] = T[pos] * rng.beta(x[pos], n_T[pos] - x[pos] + 1)
    return x.astype(np.int64), t_x, T, lam, p, j


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, T, rng=None):
    """Draw (x, t_x, T) for n customers exactly from BG/NBD(r, alpha, a, b).

    T: scalar or length-n array of observation lengths. Vectorised: per customer lambda ~
    Gamma(r, rate alpha), p ~ Beta(a, b), N ~ Poisson(lambda T) (purchases if she never left),
    J ~ Geometric(p) on {1, 2, ...} (the repeat purchase after which she leaves); x = min(N, J),
    t_x = x-th of N uniform order statistics on (0, T], i.e. T * Beta(x, N - x + 1)."""
    rng = np.random.default_rng(rng)
    x, t_x, T, *_ = _bgnbd_draw(n, r, alpha, a, b, T, rng)
    return x, t_x, T


def simulate_gamma_gamma_spend(x, p: float, q: float, gamma: float, rng=None,
                               per_transaction: bool = False):
    """Mean spend of x transactions per customer under Gamma-Gamma(p, q, gamma): nu ~ Gamma(q,
    rate gamma); z_bar | nu ~ Gamma(p x, rate nu x) (0 for x = 0). With per_transaction=True
    returns (nu, None) for drawing individual amounts as Gamma(p, rate nu)."""
    rng = np.random.default_rng(rng)
    x = np.asarray(x)
    nu = rng.gamma(q, 1.0 / gamma, x.shape)
    if per_transaction:
        return nu, None
    pos = x > 0
    m = np.zeros(x.shape)
    m[pos] = rng.gamma(p * x[pos], 1.0 / (nu[pos] * x[pos]))
    return m


def simulate_bgnbd_transactions(n: int, r: float, alpha: float, a: float, b: float,
                                first_day, as_of_day: int, rng=None, *,
                                time_unit_days: float = DEFAULT_TIME_UNIT_DAYS,
                                spend: tuple[float, float, float] | None = None):
    """Purchase rows (customer, day, amount) from BG/NBD (+ Gamma-Gamma amounts when `spend` =
    (p, q, gamma)). Customer i is acquired on integer day first_day[i] and observed to as_of_day;
    continuous purchase times are floored to days, so same-day repeats merge in `summarize`
    (days are then the purchase unit, as in the real data).

    Given the x-th (last) repeat purchase at t_x, the earlier x-1 are iid uniform on (0, t_x)
    (Poisson process), which keeps everything vectorised and exact to the model."""
    rng = np.random.default_rng(rng)
    first_day = np.broadcast_to(np.asarray(first_day, dtype=np.int64), (n,))
    T = (as_of_day - first_day + 1) / time_unit_days  # whole last day included
    x, t_x, _, _, _, _ = _bgnbd_draw(n, r, alpha, a, b, T, rng)
    cust = np.repeat(np.arange(n, dtype=np.int64), x + 1)
    offs = np.zeros(cust.size)
    starts = np.cumsum(x + 1) - (x + 1)
    last = starts + x
    offs[last] = t_x
    inner = np.ones(cust.size, dtype=bool)
    inner[starts] = False
    inner[last] = False
    offs[inner] = rng.uniform(0.0, 1.0, int(inner.sum())) * t_x[cust[inner]]
    offs[starts] = 0.0
    day = first_day[cust] + np.floor(offs * time_unit_days).astype(np.int64)
    day = np.minimum(day, as_of_day)
    if spend is None:
        return cust, day, None
    p, q, g = spend
    nu = rng.gamma(q, 1.0 / g, n)
    amount = rng.gamma(p, 1.0 / nu[cust])
    return cust, day, amount
