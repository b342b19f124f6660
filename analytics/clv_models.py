"""Probabilistic customer-lifetime-value models: BG/NBD and Gamma-Gamma.

* ``BetaGeoModel``: the BG/NBD model of Fader, Hardie & Lee (2005), "Counting
  Your Customers the Easy Way: An Alternative to the Pareto/NBD Model",
  Marketing Science 24(2), 275-284. While alive a customer buys with a Poisson
  rate lambda ~ Gamma(r, alpha); after every purchase she drops out with
  probability p ~ Beta(a, b).
* ``GammaGammaModel``: the Gamma-Gamma spend model of Fader, Hardie & Lee
  (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
  Journal of Marketing Research 42(4), 415-430, after Colombo & Jiang (1999),
  "A stochastic RFM model", Journal of Interactive Marketing 13(3), 2-12.
  Transaction values are Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers.
* ``customer_lifetime_value``: discounted CLV over a horizon in months from the
  two fitted models.

Both models follow scikit-learn's estimator contract (``__init__`` stores
hyperparameters, ``fit`` validates, sets trailing-underscore attributes and
returns ``self``) and PyMC-Marketing's method names (``expected_purchases``,
``expected_purchases_new_customer``, ``probability_alive``, ``expected_spend``).

Estimation is maximum likelihood with SciPy's L-BFGS-B on log-parameters using
*analytic* gradients; identical (frequency, recency, T) rows are grouped and
weighted by their count, and the terms that depend on the frequency alone
(the log-gamma functions) are evaluated once per distinct frequency. The
objective is the mean negative log-likelihood plus ``penalizer * sum(params**2)``,
exactly as in lifetimes, so fits are comparable with it.

Time units: recency and T are in the unit the summary was made in
(``analytics.summary.TIME_UNITS``); the BG/NBD model remembers it (``unit_``)
and every time argument of its methods (``t``) is in that unit. CLV horizons are
in months (30.4375 days) whatever the unit.

Data a model cannot be fitted on (no repeat buyers, a single customer, no
observation time, non-positive spend, NaN/inf) and optimizer failures raise
``ModelFitError`` (a ``ValueError``) with a message saying what is wrong.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special

from analytics.summary import TIME_UNITS

DAYS_PER_MONTH = 365.25 / 12  # 30.4375

_LOG_BOUND = 25.0  # |log(param)| <= 25, i.e. params in [1.4e-11, 7.2e10]
_DIVERGED = 23.0   # a fitted log-parameter beyond this is treated as divergence


class ModelFitError(ValueError):
    """The data cannot support the model, or the optimizer did not converge."""


class NotFittedError(ValueError, AttributeError):
    """A prediction was asked of a model that has not been fitted."""


# ------------------------------------------------------------------ helpers
def _as_array(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype="float64").reshape(-1)
    except (TypeError, ValueError):
        raise ModelFitError(f"{name} must be numbers") from None
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ModelFitError(
            f"{name} has {int(bad.sum())} missing or infinite value(s); "
            "drop customers without a first purchase (n_orders == 0) before fitting"
        )


def _index_of(*values):
    for v in values:
        if isinstance(v, pd.Series):
            return v.index
    return None


def _wrap(result: np.ndarray, index, name: str, scalar: bool = False):
    if scalar and np.size(result) == 1:
        return float(np.asarray(result).reshape(-1)[0])
    if index is not None and len(index) == result.shape[0]:
        return pd.Series(result, index=index, name=name)
    return result


def _dedup(*arrays: np.ndarray):
    """Unique rows of equal-length arrays: (list of unique arrays, inverse index) or None if not worth it.

    Customer bases repeat the same (frequency, recency, T) many times (whole days), so
    evaluating the hypergeometric terms once per distinct row is much faster.
    """
    n = len(arrays[0])
    if n < 20_000:
        return None
    frame = pd.DataFrame({i: a for i, a in enumerate(arrays)})
    codes = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
    n_unique = int(codes.max()) + 1
    if n_unique > 0.7 * n:
        return None
    first = np.empty(n_unique, dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # first row of every distinct combination
    return [a[first] for a in arrays], codes


def _unit_of(values, unit: str | None) -> str:
    if unit is None:
        unit = getattr(values, "attrs", {}).get("unit") if hasattr(values, "attrs") else None
    if unit is None:
        raise ModelFitError(
            "say which time unit recency and T are in: unit='days', 'weeks' or 'months'"
        )
    if unit not in TIME_UNITS:
        raise ModelFitError(f"unknown time unit {unit!r}; use one of {', '.join(TIME_UNITS)}")
    return unit


def _minimize(fun, n_params: int, random_state, n_restarts: int, what: str, max_iter: int):
    """L-BFGS-B on log-parameters from 0 (all params 1), then random restarts."""
    rng = np.random.default_rng(random_state)
    starts = [np.zeros(n_params)] + [rng.normal(0.0, 1.0, n_params) for _ in range(n_restarts)]
    best, last_msg = None, ""
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * n_params
    with np.errstate(all="ignore"):
        for x0 in starts:
            res = optimize.minimize(
                fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                options={"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-9, "maxcor": 20},
            )
            ok = (res.success and np.all(np.isfinite(res.x)) and np.isfinite(res.fun)
                  and np.all(np.abs(res.x) < _DIVERGED))
            if ok and (best is None or res.fun < best.fun):
                best = res
            if ok:
                break
            last_msg = str(res.message) if not res.success else "a parameter ran off to 0 or infinity"
    if best is None:
        raise ModelFitError(
            f"the {what} fit did not converge ({last_msg}); the data may not follow the model "
            "(too few repeat buyers, or too short an observation period) - try a longer period "
            "or a small penalizer"
        )
    return best


# ------------------------------------------------------------------ BG/NBD
class BetaGeoModel:
    """BG/NBD model (Fader, Hardie & Lee 2005, Marketing Science 24(2) 275-284).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters added to the mean negative log-likelihood
        (as lifetimes' ``penalizer_coef``); 0 = plain maximum likelihood.
    random_state : int or None
        Seeds the random restarts used only when the first optimisation
        (from r = alpha = a = b = 1) fails.
    n_restarts : int
        How many random restarts to try before giving up.
    max_iter : int
        L-BFGS-B iteration limit per start.

    Attributes after ``fit``: ``r_``, ``alpha_``, ``a_``, ``b_``,
    ``log_likelihood_`` (total, unpenalized), ``n_customers_``, ``unit_``,
    ``n_groups_`` (distinct (frequency, recency, T) rows), ``n_iter_``,
    ``params_`` (dict), ``penalizer_`` (the penalizer used), ``fit_note_``
    (None, or from ``fit_bgnbd_robust``: why a fallback penalizer was needed).
    """

    def __init__(self, penalizer: float = 0.0, random_state=None, n_restarts: int = 3,
                 max_iter: int = 2000):
        self.penalizer = penalizer
        self.random_state = random_state
        self.n_restarts = n_restarts
        self.max_iter = max_iter

    # -- fitting -----------------------------------------------------------
    @staticmethod
    def _validate(frequency, recency, T):
        x = _as_array(frequency, "frequency")
        tx = _as_array(recency, "recency")
        tt = _as_array(T, "T")
        if not (len(x) == len(tx) == len(tt)):
            raise ModelFitError("frequency, recency and T must have the same length")
        for arr, name in ((x, "frequency"), (tx, "recency"), (tt, "T")):
            _check_finite(arr, name)
        n = len(x)
        if n == 0:
            raise ModelFitError("no customers to fit the BG/NBD model on (nobody has purchased)")
        if n == 1:
            raise ModelFitError("only a single customer: the BG/NBD model needs a customer base")
        if (x < 0).any() or (x != np.round(x)).any():
            raise ModelFitError("frequency must be a whole number of repeat purchases >= 0")
        if (tx < 0).any() or (tt < 0).any():
            raise ModelFitError("recency and T must be >= 0")
        if (tx > tt + 1e-9 * np.maximum(1.0, tt)).any():
            raise ModelFitError("some customers have recency larger than T (last purchase after the as-of date)")
        if (tt <= 0).all():
            raise ModelFitError(
                "all customers made their first purchase on the as-of date (T = 0): "
                "there is no observation time to learn from - pick a later as-of date"
            )
        if (x == 0).all():
            raise ModelFitError(
                "no customer made a repeat purchase (all frequency = 0): the BG/NBD model "
                "cannot estimate purchase or drop-out rates - pick a longer period"
            )
        if (tx[x > 0] <= 0).all():
            raise ModelFitError(
                "all repeat purchases fall on the first purchase day (recency = 0): "
                "a longer period or a finer time unit is needed"
            )
        return x, tx, tt

    @staticmethod
    def _group(x, tx, tt, weights):
        frame = pd.DataFrame({"x": x, "tx": tx, "T": tt, "w": weights})
        g = frame.groupby(["x", "tx", "T"], sort=False)["w"].sum()
        keys = g.index
        gx = keys.get_level_values(0).to_numpy(dtype="float64")
        gtx = keys.get_level_values(1).to_numpy(dtype="float64")
        gT = keys.get_level_values(2).to_numpy(dtype="float64")
        gw = g.to_numpy(dtype="float64")
        ux, inv = np.unique(gx, return_inverse=True)
        wx = np.bincount(inv, weights=gw)
        return gx, gtx, gT, gw, ux, wx

    @staticmethod
    def _loglik_terms(params, gx, gtx, gT, gw, ux, wx, grad: bool):
        """Total log-likelihood and its gradient w.r.t. (r, alpha, a, b)."""
        r, alpha, a, b = params
        # terms that depend on the frequency only, once per distinct frequency
        A1 = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
        A2 = (special.gammaln(a + b) + special.gammaln(b + ux) - special.gammaln(b)
              - special.gammaln(a + b + ux))
        ll = float(np.dot(wx, A1 + A2))
        pos = gx > 0
        la_T = np.log(alpha + gT)
        la_tx = np.log(alpha + gtx)
        bx1 = np.log(b + np.maximum(gx, 1.0) - 1.0)
        A3 = -(r + gx) * la_T
        A4 = np.log(a) - bx1 - (r + gx) * la_tx
        A4 = np.where(pos, A4, -np.inf)
        L = np.logaddexp(A3, A4)
        ll += float(np.dot(gw, L))
        if not grad:
            return ll, None
        w3 = np.exp(A3 - L)
        w4 = np.exp(A4 - L)  # 0 where frequency == 0
        # d/dr
        dA1_r = special.digamma(r + ux) - special.digamma(r) + np.log(alpha)
        g_r = np.dot(wx, dA1_r) + np.dot(gw, -(w3 * la_T + w4 * la_tx))
        # d/dalpha
        g_alpha = (r / alpha) * wx.sum() + np.dot(
            gw, -(r + gx) * (w3 / (alpha + gT) + w4 / (alpha + gtx)))
        # d/da
        dA2_a = special.digamma(a + b) - special.digamma(a + b + ux)
        g_a = np.dot(wx, dA2_a) + np.dot(gw, w4) / a
        # d/db
        dA2_b = (special.digamma(a + b) + special.digamma(b + ux) - special.digamma(b)
                 - special.digamma(a + b + ux))
        g_b = np.dot(wx, dA2_b) - np.dot(gw, w4 / (b + np.maximum(gx, 1.0) - 1.0))
        return ll, np.array([g_r, g_alpha, g_a, g_b])

    def fit(self, frequency, recency, T, *, unit: str | None = None, weights=None):
        """Fit by maximum likelihood.

        ``frequency``, ``recency``, ``T``: per customer (purchasers only), recency
        and T in ``unit`` (taken from the Series' ``attrs["unit"]`` when the
        inputs come from ``customer_summary``). ``weights``: optional counts per
        row (for pre-aggregated data).
        """
        self.unit_ = None
        unit = _unit_of(T, unit)
        x, tx, tt = self._validate(frequency, recency, T)
        w = np.ones_like(x) if weights is None else _as_array(weights, "weights")
        if len(w) != len(x) or (w < 0).any() or not np.isfinite(w).all():
            raise ModelFitError("weights must be finite, >= 0 and one per customer")
        data = self._group(x, tx, tt, w)
        total = float(w.sum())
        pen = float(self.penalizer)
        if pen < 0:
            raise ModelFitError("penalizer must be >= 0")

        def objective(theta):
            params = np.exp(theta)
            ll, g = self._loglik_terms(params, *data, grad=True)
            f = -ll / total + pen * float(np.sum(params ** 2))
            gp = -g / total + 2.0 * pen * params
            val = gp * params  # chain rule for log-parameters
            if not np.isfinite(f) or not np.all(np.isfinite(val)):
                return np.inf, np.zeros_like(theta)
            return f, val

        res = _minimize(objective, 4, self.random_state, int(self.n_restarts), "BG/NBD",
                        int(self.max_iter))
        r, alpha, a, b = np.exp(res.x)
        self.r_, self.alpha_, self.a_, self.b_ = float(r), float(alpha), float(a), float(b)
        self.log_likelihood_ = float(self._loglik_terms(np.exp(res.x), *data, grad=False)[0])
        self.n_customers_ = int(round(total))
        self.n_groups_ = int(len(data[0]))
        self.n_iter_ = int(res.nit)
        self.unit_ = unit
        self.params_ = {"r": self.r_, "alpha": self.alpha_, "a": self.a_, "b": self.b_}
        self.penalizer_ = pen
        self.fit_note_ = None  # set by fit_bgnbd_robust when a fallback penalizer was needed
        return self

    def fit_summary(self, summary: pd.DataFrame):
        """Fit on a ``customer_summary`` result (purchasers only, its unit)."""
        rows = summary[summary["n_orders"] > 0] if "n_orders" in summary else summary
        unit = summary.attrs.get("unit")
        return self.fit(rows["frequency"], rows["recency"], rows["T"], unit=unit)

    # -- predictions -----------------------------------------------------------
    def _check_fitted(self):
        if getattr(self, "unit_", None) is None or not hasattr(self, "r_"):
            raise NotFittedError("this BetaGeoModel is not fitted yet; call fit() first")
        return self.r_, self.alpha_, self.a_, self.b_

    def log_likelihood(self, frequency, recency, T) -> float:
        """Total log-likelihood of data under the fitted parameters."""
        params = np.array(self._check_fitted())
        x, tx, tt = (_as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        data = self._group(x, tx, tt, np.ones_like(x))
        return float(self._loglik_terms(params, *data, grad=False)[0])

    def expected_purchases_new_customer(self, t):
        """E[X(t)]: expected purchases of a new customer in a period of length t (eq. 9)."""
        r, alpha, a, b = self._check_fitted()
        t = np.asarray(t, dtype="float64")
        with np.errstate(all="ignore"):
            hyp = special.hyp2f1(r, b, a + b - 1.0, t / (alpha + t))
            out = (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)) ** r * hyp)
        return float(out) if np.ndim(out) == 0 else out

    def probability_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T) (Fader, Hardie & Lee 2005, eq. 11 / note)."""
        r, alpha, a, b = self._check_fitted()
        index = _index_of(frequency, recency, T)
        x, tx, tt = (_as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        with np.errstate(all="ignore"):
            log_ratio = (r + x) * (np.log(alpha + tt) - np.log(alpha + tx))
            term = np.where(x > 0, a / (b + np.maximum(x, 1.0) - 1.0) * np.exp(log_ratio), 0.0)
            p = 1.0 / (1.0 + term)
        return _wrap(p, index, "probability_alive", np.ndim(frequency) == 0)

    def expected_purchases(self, t, frequency, recency, T):
        """E[Y(t) | x, t_x, T]: expected purchases in the next t (eq. 10), t in ``unit_``."""
        r, alpha, a, b = self._check_fitted()
        index = _index_of(frequency, recency, T)
        x, tx, tt = (_as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        t = np.asarray(t, dtype="float64")
        if t.ndim == 0:
            dd = _dedup(x, tx, tt)
            if dd is not None:
                (ux, utx, utt), inv = dd
                out = np.asarray(self.expected_purchases(t, ux, utx, utt))[inv]
                return _wrap(out, index, "expected_purchases")
        with np.errstate(all="ignore"):
            hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + tt + t))
            first = (a + b + x - 1.0) / (a - 1.0) * (
                1.0 - ((alpha + tt) / (alpha + tt + t)) ** (r + x) * hyp)
            log_ratio = (r + x) * (np.log(alpha + tt) - np.log(alpha + tx))
            term = np.where(x > 0, a / (b + np.maximum(x, 1.0) - 1.0) * np.exp(log_ratio), 0.0)
            out = first / (1.0 + term)
        return _wrap(np.asarray(out, dtype="float64"), index, "expected_purchases",
                     np.ndim(frequency) == 0 and np.ndim(t) == 0)

    def expected_purchases_months(self, months, frequency, recency, T):
        """Expected purchases in the next ``months`` months (converted to ``unit_``)."""
        self._check_fitted()
        return self.expected_purchases(months * DAYS_PER_MONTH / TIME_UNITS[self.unit_],
                                       frequency, recency, T)

    def __repr__(self):
        if getattr(self, "unit_", None):
            return (f"BetaGeoModel(r={self.r_:.4g}, alpha={self.alpha_:.4g}, a={self.a_:.4g}, "
                    f"b={self.b_:.4g}, unit={self.unit_!r}, n={self.n_customers_})")
        return f"BetaGeoModel(penalizer={self.penalizer!r}, random_state={self.random_state!r})"


# ------------------------------------------------------------------ robust fitting
FALLBACK_PENALIZERS = (0.001, 0.01, 0.1)
RUNAWAY_SHAPE = 1e4  # a fitted a or b above this is the a, b -> infinity runaway


def _runaway(model: "BetaGeoModel", max_shape: float) -> bool:
    return not (np.isfinite([model.r_, model.alpha_, model.a_, model.b_]).all()
                and model.a_ <= max_shape and model.b_ <= max_shape)


def fit_bgnbd_robust(frequency, recency, T, *, unit: str | None = None, weights=None,
                     random_state=None, penalizer: float = 0.0,
                     fallback_penalizers=FALLBACK_PENALIZERS, max_shape: float = RUNAWAY_SHAPE,
                     **kwargs) -> "BetaGeoModel":
    """Fit a ``BetaGeoModel``; if the plain fit fails to converge or runs off to
    a, b -> infinity (a or b above ``max_shape``, i.e. the drop-out heterogeneity
    collapses), refit with each of ``fallback_penalizers`` in turn (the small
    ridge penalty lifetimes users reach for).

    The returned model has ``penalizer_`` (the penalizer actually used) and
    ``fit_note_`` (None for a plain fit, else a one-line message saying a
    penalizer was needed and why, for pages and the CLI to show). Raises
    ``ModelFitError`` when no penalizer gives a usable fit, or at once for data
    the model cannot be fitted on at all (no repeat buyers, ...).
    """
    BetaGeoModel._validate(frequency, recency, T)  # data problems: say so, do not retry
    tried = [float(penalizer)] + [float(p) for p in fallback_penalizers if float(p) > float(penalizer)]
    first_problem = None
    for pen in tried:
        try:
            model = BetaGeoModel(penalizer=pen, random_state=random_state, **kwargs).fit(
                frequency, recency, T, unit=unit, weights=weights)
        except ModelFitError:
            first_problem = first_problem or "did not converge"
            continue
        if _runaway(model, max_shape):
            first_problem = first_problem or (
                f"ran off to a = {model.a_:.3g}, b = {model.b_:.3g} (drop-out rates not identifiable)")
            continue
        model.penalizer_ = pen
        model.fit_note_ = None
        if pen != tried[0]:
            model.fit_note_ = (
                f"the BG/NBD fit with penalizer {tried[0]:g} {first_problem}; "
                f"fitted with an L2 penalizer of {pen:g} instead")
        return model
    raise ModelFitError(
        f"the BG/NBD fit {first_problem} even with penalizers up to {tried[-1]:g}; the data may not "
        "follow the model (too few repeat buyers, or too short an observation period) - try a longer period"
    )


def fit_bgnbd_summary_robust(summary: pd.DataFrame, **kwargs) -> "BetaGeoModel":
    """``fit_bgnbd_robust`` on a ``customer_summary`` result (purchasers only, its unit)."""
    rows = summary[summary["n_orders"] > 0] if "n_orders" in summary else summary
    return fit_bgnbd_robust(rows["frequency"], rows["recency"], rows["T"],
                            unit=summary.attrs.get("unit"), **kwargs)


# ------------------------------------------------------------------ Gamma-Gamma
class GammaGammaModel:
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005, JMR 42(4); Colombo & Jiang 1999).

    Fit on customers with at least one repeat purchase: ``frequency`` (number of
    repeat purchases) and ``monetary_value`` (their mean value). The model
    assumes spend is independent of purchase frequency; check that the two are
    not strongly correlated before trusting it.

    Attributes after ``fit``: ``p_``, ``q_``, ``v_`` (gamma), ``log_likelihood_``,
    ``n_customers_``, ``params_``.
    """

    def __init__(self, penalizer: float = 0.0, random_state=None, n_restarts: int = 3,
                 max_iter: int = 2000):
        self.penalizer = penalizer
        self.random_state = random_state
        self.n_restarts = n_restarts
        self.max_iter = max_iter

    @staticmethod
    def _validate(frequency, monetary_value):
        x = _as_array(frequency, "frequency")
        m = _as_array(monetary_value, "monetary_value")
        if len(x) != len(m):
            raise ModelFitError("frequency and monetary_value must have the same length")
        _check_finite(x, "frequency")
        _check_finite(m, "monetary_value")
        if len(x) == 0 or (x <= 0).all():
            raise ModelFitError(
                "no customer made a repeat purchase: the Gamma-Gamma model is fitted on "
                "customers with frequency > 0"
            )
        if (x < 0).any():
            raise ModelFitError("frequency must be >= 0")
        keep = x > 0
        x, m = x[keep], m[keep]
        if (m <= 0).any():
            raise ModelFitError(
                f"{int((m <= 0).sum())} repeat buyer(s) have zero or negative spend: the Gamma-Gamma "
                "model needs positive transaction values (filter them out or fix the revenue)"
            )
        if len(x) < 2:
            raise ModelFitError("only a single repeat buyer: the Gamma-Gamma model needs several")
        if np.allclose(m, m[0]):
            raise ModelFitError(
                "all repeat buyers have the same average spend: nothing for the Gamma-Gamma model to learn"
            )
        return x, m

    @staticmethod
    def _loglik(params, x, m, w, grad: bool):
        p, q, v = params
        px = p * x
        lxm = np.log(x * m + v)
        ll_i = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
                + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * lxm)
        ll = float(np.dot(w, ll_i))
        if not grad:
            return ll, None
        dg = special.digamma(px + q)
        g_p = np.dot(w, x * (dg - special.digamma(px) + np.log(m) + np.log(x) - lxm))
        g_q = np.dot(w, dg - special.digamma(q) + np.log(v) - lxm)
        g_v = np.dot(w, q / v - (px + q) / (x * m + v))
        return ll, np.array([g_p, g_q, g_v])

    def fit(self, frequency, monetary_value, *, weights=None):
        """Fit by maximum likelihood on the repeat buyers (rows with frequency 0 are dropped)."""
        self.p_ = None
        x, m = self._validate(frequency, monetary_value)
        w = np.ones_like(x)
        if weights is not None:
            wa = _as_array(weights, "weights")
            xa = _as_array(frequency, "frequency")
            if len(wa) != len(xa) or (wa < 0).any() or not np.isfinite(wa).all():
                raise ModelFitError("weights must be finite, >= 0 and one per customer")
            w = wa[xa > 0]
        frame = pd.DataFrame({"x": x, "m": m, "w": w})
        g = frame.groupby(["x", "m"], sort=False)["w"].sum()
        gx = g.index.get_level_values(0).to_numpy(dtype="float64")
        gm = g.index.get_level_values(1).to_numpy(dtype="float64")
        gw = g.to_numpy(dtype="float64")
        total = float(gw.sum())
        pen = float(self.penalizer)

        def objective(theta):
            params = np.exp(theta)
            ll, gr = self._loglik(params, gx, gm, gw, grad=True)
            f = -ll / total + pen * float(np.sum(params ** 2))
            val = (-gr / total + 2.0 * pen * params) * params
            if not np.isfinite(f) or not np.all(np.isfinite(val)):
                return np.inf, np.zeros_like(theta)
            return f, val

        res = _minimize(objective, 3, self.random_state, int(self.n_restarts), "Gamma-Gamma",
                        int(self.max_iter))
        p, q, v = np.exp(res.x)
        self.p_, self.q_, self.v_ = float(p), float(q), float(v)
        self.log_likelihood_ = float(self._loglik(np.exp(res.x), gx, gm, gw, grad=False)[0])
        self.n_customers_ = int(round(total))
        self.n_iter_ = int(res.nit)
        self.params_ = {"p": self.p_, "q": self.q_, "v": self.v_}
        if self.q_ <= 1.0:
            raise ModelFitError(
                f"the fitted Gamma-Gamma q = {self.q_:.3g} is <= 1, so the expected spend is "
                "undefined (spend too heavy-tailed); remove extreme outliers or use a penalizer"
            )
        return self

    def fit_summary(self, summary: pd.DataFrame):
        """Fit on a ``customer_summary`` result (repeat buyers only)."""
        rows = summary[summary["frequency"] > 0]
        return self.fit(rows["frequency"], rows["monetary_value"])

    def _check_fitted(self):
        if getattr(self, "p_", None) is None:
            raise NotFittedError("this GammaGammaModel is not fitted yet; call fit() first")
        return self.p_, self.q_, self.v_

    def expected_spend(self, frequency, monetary_value):
        """E[M | p, q, gamma, x, m_x]: expected average transaction value (JMR 2005, eq. 5).

        For customers with no repeat purchase it is the population mean p*gamma/(q-1).
        """
        p, q, v = self._check_fitted()
        index = _index_of(frequency, monetary_value)
        x = _as_array(frequency, "frequency")
        m = _as_array(monetary_value, "monetary_value")
        m = np.where(x > 0, m, 0.0)
        out = p * (v + x * m) / (p * x + q - 1.0)
        return _wrap(out, index, "expected_spend", np.ndim(frequency) == 0)

    def customer_lifetime_value(self, transaction_model: BetaGeoModel, frequency, recency, T,
                                monetary_value, horizon_months: int = 12,
                                annual_discount_rate: float = 0.1, margin: float = 1.0):
        """Discounted CLV from a fitted BG/NBD model and this spend model (see module function)."""
        return customer_lifetime_value(transaction_model, self, frequency, recency, T, monetary_value,
                                       horizon_months=horizon_months,
                                       annual_discount_rate=annual_discount_rate, margin=margin)

    def __repr__(self):
        if getattr(self, "p_", None) is not None:
            return f"GammaGammaModel(p={self.p_:.4g}, q={self.q_:.4g}, v={self.v_:.4g}, n={self.n_customers_})"
        return f"GammaGammaModel(penalizer={self.penalizer!r}, random_state={self.random_state!r})"


# ------------------------------------------------------------------ CLV
def customer_lifetime_value(
    transaction_model: BetaGeoModel,
    spend_model: GammaGammaModel,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.1,
    margin: float = 1.0,
):
    """Discounted expected customer lifetime value over ``horizon_months`` months.

    CLV = margin * E[spend] * sum_{k=1..H} (E[Y(k m)] - E[Y((k-1) m)]) / (1 + d)^k

    where m is one month (30.4375 days) in the BG/NBD model's time unit,
    E[Y(t)] the conditional expected purchases (BG/NBD), E[spend] the
    Gamma-Gamma expected transaction value, and d = (1 + annual rate)^(1/12) - 1
    the equivalent monthly discount rate (cash flows at each month's end), as in
    Fader, Hardie & Lee (2005, JMR) and lifetimes' ``customer_lifetime_value``
    (which takes a monthly rate).
    """
    transaction_model._check_fitted()
    spend_model._check_fitted()
    h = int(horizon_months)
    if h != horizon_months or h < 1:
        raise ValueError("the CLV horizon must be a whole number of months >= 1")
    if not np.isfinite(annual_discount_rate) or annual_discount_rate <= -1:
        raise ValueError("the annual discount rate must be a number > -100%")
    index = _index_of(frequency, recency, T, monetary_value)
    x, tx, tt = (_as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
    month = DAYS_PER_MONTH / TIME_UNITS[transaction_model.unit_]
    d = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    spend = np.asarray(spend_model.expected_spend(x, _as_array(monetary_value, "monetary_value")))
    dd = _dedup(x, tx, tt)
    (ux, utx, utt), inv = dd if dd is not None else ((x, tx, tt), None)
    total = np.zeros_like(ux)
    prev = np.zeros_like(ux)
    for k in range(1, h + 1):
        cum = np.asarray(transaction_model.expected_purchases(k * month, ux, utx, utt))
        total += (cum - prev) / (1.0 + d) ** k
        prev = cum
    if inv is not None:
        total = total[inv]
    return _wrap(margin * spend * total, index, "clv")


# ------------------------------------------------------------------ simulation
def sample_bgnbd_summary(n: int, r: float, alpha: float, a: float, b: float, T, *,
                         random_state=None) -> pd.DataFrame:
    """Draw (frequency, recency, T) for ``n`` customers from the BG/NBD process.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); purchases form a Poisson(lambda)
    process after the first purchase at time 0; after each repeat purchase the
    customer drops out with probability p. ``T`` is a scalar or one value per
    customer. Exact and vectorized: x = min(N(T), D) with N(T) ~ Poisson(lambda T)
    and D ~ Geometric(p), and the x-th of N uniform arrival times ~ T * Beta(x, N-x+1).
    Used by tests and benchmarks (known ground truth).
    """
    rng = np.random.default_rng(random_state)
    T = np.broadcast_to(np.asarray(T, dtype="float64"), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    N = rng.poisson(lam * T)
    D = rng.geometric(np.clip(p, 1e-12, 1.0))
    x = np.minimum(N, D)
    tx = np.zeros(n)
    pos = x > 0
    tx[pos] = T[pos] * rng.beta(x[pos], N[pos] - x[pos] + 1)
    return pd.DataFrame({"frequency": x.astype("float64"), "recency": tx, "T": T})
