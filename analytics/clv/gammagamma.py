"""Gamma-Gamma spend model: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves
for Customer Base Analysis", Journal of Marketing Research 42(4), 415-430, after Colombo &
Jiang (1999), "A stochastic RFM model", Journal of Interactive Marketing 13(3), 2-12.

A customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers
(``v`` here is gamma). It is fitted on the repeat buyers' average repeat-transaction value.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator

from analytics.clv._base import (
    ModelFitError,
    NotFittedError,
    as_array,
    check_finite,
    columns_of,
    index_of,
    wrap,
)
from analytics.clv.optimizer import minimize_robust

__all__ = ["GammaGammaModel", "SPEND_CHECK_FACTOR", "spend_check"]

#: how far (as a factor, either way) the model's mean spend may lie from the repeat buyers' average
#: before the fit is called poor; see :func:`spend_check`
SPEND_CHECK_FACTOR = 2.0


def spend_check(model_mean: float, q: float | None, monetary_value, weights=None) -> dict:
    """The spend model's mean for a customer with no repeat order against what its data show.

    ``model_mean`` is p * gamma / (q - 1), the expected order value the model gives a customer
    with no repeat order; ``monetary_value`` (with ``weights``) are the average repeat-order
    values of the repeat buyers it was fitted on. Returns a dict: ``model_mean``, ``q``,
    ``repeat_buyers``, ``observed_mean`` and ``observed_median`` (weighted over customers),
    ``ratio`` = model_mean / observed_mean, ``factor`` (:data:`SPEND_CHECK_FACTOR`) and
    ``poor_fit``.

    The rule: ``poor_fit`` when the ratio lies above ``factor`` or below 1 / ``factor``. Under
    the Gamma-Gamma model a repeat buyer's average repeat-order value is an unbiased estimate of
    their own mean p / nu whatever their number of orders, so the average over repeat buyers
    estimates E[p / nu] = p * gamma / (q - 1): the same quantity as the model's mean. Where the
    model fits, the two agree closely (CDNOW's 946 repeat buyers: 35.17 against 35.08, a ratio of
    1.003). A factor of 2 means that at least half of the mean the model hands every one-time
    buyer comes from a tail of big spenders the data never show (or, below 1/2, that the model
    misses half of what customers spend): the CLV of customers with no repeat order is then out
    by that factor, far beyond sampling noise on a few hundred repeat buyers. q close to 1 is
    how such a fit shows itself: the mean is p * gamma / (q - 1), unbounded as q falls to 1
    (undefined for q <= 1), and for q <= 2 the spread of customers' mean spend has no finite
    variance, so the fitted mean hangs on the tail.
    """
    m = np.asarray(monetary_value, dtype=float)
    w = np.ones_like(m) if weights is None else np.asarray(weights, dtype=float)
    keep = np.isfinite(m) & (m > 0) & (w > 0)
    m, w = m[keep], w[keep]
    n = int(round(float(w.sum())))
    if n:
        observed = float(np.dot(w, m) / w.sum())
        order = np.argsort(m, kind="stable")
        cum = np.cumsum(w[order])
        median = float(m[order][np.searchsorted(cum, 0.5 * cum[-1])])
    else:
        observed = median = float("nan")
    model_mean = float(model_mean)
    ratio = model_mean / observed if n and observed > 0 else float("nan")
    poor = bool(np.isfinite(ratio) and (ratio > SPEND_CHECK_FACTOR or ratio < 1.0 / SPEND_CHECK_FACTOR))
    return {"model_mean": model_mean, "q": None if q is None or not np.isfinite(q) else float(q),
            "repeat_buyers": n, "observed_mean": observed, "observed_median": median,
            "ratio": ratio, "factor": SPEND_CHECK_FACTOR, "poor_fit": poor}


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005, JMR 42(4); Colombo & Jiang 1999).

    ``fit(frequency, monetary_value)``: ``frequency`` is the number of repeat purchases and
    ``monetary_value`` their mean value. The model is fitted on the repeat buyers
    (frequency > 0) whose spend is a positive number; repeat buyers with zero, negative or
    missing spend (refunds, free orders, gaps in the data) are left out of the fit, counted
    in ``fit_note_``, and get the population mean spend from ``expected_customer_spend``,
    so one odd customer never removes everybody's CLV. When every included repeat buyer
    has the same average spend there is no variation to learn from; the fit is then the
    model's limit (a point mass): everyone's expected spend is that amount, as ``fit_note_``
    says. The model assumes spend is independent of purchase frequency; check that the two
    are not strongly correlated before trusting it.

    Hyperparameters: ``penalizer`` (lifetimes' ``penalizer_coef``: ``penalizer * (p^2 + q^2
    + v^2)`` on the mean negative log-likelihood), ``random_state``, ``n_restarts``,
    ``max_iter`` (as ``BetaGeoModel``).

    Attributes after ``fit``: ``p_``, ``q_``, ``v_`` (gamma), ``params_``, ``mean_spend_``
    (the population mean spend p*gamma/(q-1)), ``log_likelihood_``, ``n_customers_``
    (repeat buyers in the fit), ``n_excluded_`` (repeat buyers left out for zero, negative or
    missing spend), ``constant_spend_`` (None, or the one amount when spend does not vary),
    ``penalizer_``, ``optimizer_``, ``ran_off_``, ``fit_note_``, ``spend_check_`` (the model's
    mean against the repeat buyers' average repeat-order value, :func:`spend_check`; its
    ``poor_fit`` says when the two disagree by more than :data:`SPEND_CHECK_FACTOR`).
    """

    _param_names = ("p", "q", "v")

    def __init__(self, penalizer: float = 0.0, random_state=0, n_restarts: int = 2,
                 max_iter: int = 2000):
        self.penalizer = penalizer
        self.random_state = random_state
        self.n_restarts = n_restarts
        self.max_iter = max_iter

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "params_", None) is not None

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("this GammaGammaModel is not fitted yet; call fit() first")
        return self.p_, self.q_, self.v_

    # -- fitting ----------------------------------------------------------------------
    @staticmethod
    def _validate(frequency, monetary_value, weights=None):
        """Repeat buyers with a usable spend: ``(x, m, w, n_nonpositive, n_missing)``."""
        x = as_array(frequency, "frequency")
        m = as_array(monetary_value, "monetary_value")
        if len(x) != len(m):
            raise ModelFitError("frequency and monetary_value must have the same length")
        check_finite(x, "frequency")
        if (x < 0).any():
            raise ModelFitError("frequency must be >= 0")
        if weights is None:
            w = np.ones_like(x)
        else:
            w = as_array(weights, "weights")
            if len(w) != len(x) or (w < 0).any() or not np.isfinite(w).all():
                raise ModelFitError("weights must be finite, >= 0 and one per customer")
        repeat = (x > 0) & (w > 0)
        if not repeat.any():
            raise ModelFitError(
                "no customer made a repeat purchase: the Gamma-Gamma spend model is fitted on "
                "customers with frequency > 0 - pick a longer period"
            )
        missing = repeat & ~np.isfinite(m)
        nonpositive = repeat & np.isfinite(m) & (m <= 0)
        keep = repeat & ~missing & ~nonpositive
        n_missing, n_nonpositive = int(missing.sum()), int(nonpositive.sum())
        if keep.sum() == 0:
            raise ModelFitError(
                f"none of the {int(repeat.sum()):,} repeat buyers has a positive spend "
                f"({n_nonpositive:,} zero or negative, {n_missing:,} missing): the Gamma-Gamma spend "
                "model needs order values - check the revenue column mapping"
            )
        if keep.sum() == 1:
            raise ModelFitError(
                "only one repeat buyer has a positive spend: the Gamma-Gamma spend model needs "
                "several repeat buyers - pick a longer period"
            )
        return x[keep], m[keep], w[keep], n_nonpositive, n_missing

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

    def fit(self, frequency, monetary_value=None, *, weights=None):
        """Fit by maximum likelihood on the repeat buyers with a positive spend (see the class
        docstring); ``frequency`` may be a table with columns frequency and monetary_value."""
        for attr in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, attr)
        frequency, monetary_value = columns_of(frequency, (monetary_value,), ("frequency", "monetary_value"))
        x, m, w, n_nonpos, n_missing = self._validate(frequency, monetary_value, weights)
        pen = float(self.penalizer)
        if not np.isfinite(pen) or pen < 0:
            raise ModelFitError("penalizer must be a number >= 0")
        excluded = _excluded_note(n_nonpos, n_missing)
        self.n_excluded_ = n_nonpos + n_missing
        self.n_customers_ = int(round(float(w.sum())))
        self.penalizer_ = pen
        if np.allclose(m, m[0], rtol=1e-9, atol=0.0):
            # no variation in spend at all: the likelihood grows without bound towards a point mass
            self.constant_spend_ = float(m[0])
            self.p_ = self.q_ = self.v_ = float("inf")
            self.params_ = {"p": None, "q": None, "v": None}
            self.mean_spend_ = float(m[0])
            self.log_likelihood_ = float("nan")
            self.n_iter_, self.optimizer_, self.ran_off_ = 0, "none (constant spend)", False
            self.spend_check_ = spend_check(m[0], None, m, w)
            self.fit_note_ = (f"every repeat buyer has the same average spend ({m[0]:,.2f}), so the spend "
                              "model has nothing to learn from: the expected spend is that amount for everyone"
                              + (f"; {excluded}" if excluded else ""))
            return self
        frame = pd.DataFrame({"x": x, "m": m, "w": w})
        g = frame.groupby(["x", "m"], sort=False)["w"].sum()
        gx = g.index.get_level_values(0).to_numpy(dtype="float64")
        gm = g.index.get_level_values(1).to_numpy(dtype="float64")
        gw = g.to_numpy(dtype="float64")
        total = float(gw.sum())

        def objective(theta):
            params = np.exp(theta)
            ll, gr = self._loglik(params, gx, gm, gw, grad=True)
            f = -ll / total + pen * float(np.sum(params ** 2))
            val = (-gr / total + 2.0 * pen * params) * params
            if not np.isfinite(f) or not np.all(np.isfinite(val)):
                return np.inf, np.zeros_like(theta)
            return f, val

        mean_m = float(np.dot(gw, gm) / total)
        starts = [np.zeros(3)] + [np.log([p, q, mean_m * (q - 1.0) / p])
                                  for p in (0.5, 2.0, 8.0) for q in (1.5, 4.0, 15.0)]
        opt = minimize_robust(objective, starts, what="Gamma-Gamma", random_state=self.random_state,
                              n_restarts=int(self.n_restarts), max_iter=int(self.max_iter))
        p, q, v = np.exp(opt.x)
        self.constant_spend_ = None
        self.p_, self.q_, self.v_ = float(p), float(q), float(v)
        self.params_ = {"p": self.p_, "q": self.q_, "v": self.v_}
        self.log_likelihood_ = float(self._loglik(np.exp(opt.x), gx, gm, gw, grad=False)[0])
        self.n_iter_ = int(opt.nit)
        self.optimizer_ = opt.how
        self.ran_off_ = bool(opt.ran_off)
        self.fit_note_ = excluded
        if self.q_ <= 1.0:
            q_found = self.q_
            del self.params_
            raise ModelFitError(
                f"spend is too uneven for the Gamma-Gamma model (q = {q_found:.3g} <= 1: a few very large "
                "average orders make the population mean spend unbounded). Check the largest order values "
                "(duplicates, wrong currency or unit) or cap them, e.g. at the 99th percentile; the CLV by "
                "formula and the BG/NBD purchase predictions do not need this model"
            )
        self.mean_spend_ = self.p_ * self.v_ / (self.q_ - 1.0)
        self.spend_check_ = spend_check(self.mean_spend_, self.q_, m, w)
        return self

    def fit_summary(self, summary: pd.DataFrame):
        """Fit on a ``customer_summary`` result (its repeat buyers)."""
        rows = summary[summary["frequency"] > 0]
        return self.fit(rows["frequency"], rows["monetary_value"])

    def log_likelihood(self, frequency, monetary_value=None) -> float:
        """Total log-likelihood of repeat buyers with positive spend under the fitted parameters."""
        p, q, v = self._check_fitted()
        frequency, monetary_value = columns_of(frequency, (monetary_value,), ("frequency", "monetary_value"))
        x, m, w, _, _ = self._validate(frequency, monetary_value)
        return self._loglik((p, q, v), x, m, w, grad=False)[0]

    def score(self, frequency, monetary_value=None) -> float:
        """Mean log-likelihood per repeat buyer with a positive spend (for model selection)."""
        frequency, monetary_value = columns_of(frequency, (monetary_value,), ("frequency", "monetary_value"))
        x, m, w, _, _ = self._validate(frequency, monetary_value)
        return self.log_likelihood(frequency, monetary_value) / float(w.sum())

    # -- predictions ------------------------------------------------------------------
    def expected_customer_spend(self, frequency, monetary_value):
        """E[M | p, q, gamma, x, m_x]: expected average transaction value (JMR 2005, eq. 5).

        Customers without a repeat purchase, or whose spend is zero, negative or missing,
        get the population mean p*gamma/(q-1).
        """
        p, q, v = self._check_fitted()
        index = index_of(frequency, monetary_value)
        x = as_array(frequency, "frequency")
        m = as_array(monetary_value, "monetary_value")
        x, m = np.broadcast_arrays(x, m)
        if self.constant_spend_ is not None:
            out = np.where(np.isnan(x), np.nan, self.constant_spend_)
        else:
            own = (x > 0) & np.isfinite(m) & (m > 0)
            xs = np.where(own, x, 0.0)
            ms = np.where(own, m, 0.0)
            out = p * (v + xs * ms) / (p * xs + q - 1.0)
            out = np.where(np.isnan(x), np.nan, out)
        return wrap(np.asarray(out, dtype=float), index, "expected_spend", np.ndim(frequency) == 0)

    def expected_customer_lifetime_value(self, transaction_model, frequency, recency, T,
                                         monetary_value, horizon_months: int = 12,
                                         annual_discount_rate: float = 0.1, margin: float = 1.0):
        """Discounted CLV from a fitted purchase model and this spend model
        (``analytics.clv.customer_lifetime_value``)."""
        from analytics.clv.value import customer_lifetime_value

        return customer_lifetime_value(transaction_model, self, frequency, recency, T, monetary_value,
                                       horizon_months=horizon_months,
                                       annual_discount_rate=annual_discount_rate, margin=margin)

    # old names, kept for callers written against them
    def expected_spend(self, frequency, monetary_value):
        """Alias of ``expected_customer_spend``."""
        return self.expected_customer_spend(frequency, monetary_value)

    def customer_lifetime_value(self, *args, **kwargs):
        """Alias of ``expected_customer_lifetime_value``."""
        return self.expected_customer_lifetime_value(*args, **kwargs)

    # -- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict:
        self._check_fitted()
        return {"model": "GammaGammaModel", "params": dict(self.params_), "hyperparameters": self.get_params(),
                "constant_spend": self.constant_spend_, "log_likelihood": self.log_likelihood_,
                "customers": self.n_customers_, "excluded": self.n_excluded_, "penalizer": self.penalizer_,
                "fit_note": self.fit_note_,
                "spend_check": None if getattr(self, "spend_check_", None) is None else dict(self.spend_check_)}

    @classmethod
    def from_dict(cls, state: dict) -> "GammaGammaModel":
        if state.get("model") not in (None, "GammaGammaModel"):
            raise ValueError(f"this state is of a {state.get('model')}, not a GammaGammaModel")
        model = cls(**state.get("hyperparameters", {}))
        const = state.get("constant_spend")
        model.constant_spend_ = None if const is None else float(const)
        if const is None:
            model.p_, model.q_, model.v_ = (float(state["params"][k]) for k in cls._param_names)
            model.mean_spend_ = model.p_ * model.v_ / (model.q_ - 1.0)
        else:
            model.p_ = model.q_ = model.v_ = float("inf")
            model.mean_spend_ = float(const)
        model.params_ = dict(state["params"])
        model.log_likelihood_ = float(state.get("log_likelihood") or np.nan)
        model.n_customers_ = int(state.get("customers", 0))
        model.n_excluded_ = int(state.get("excluded", 0))
        model.penalizer_ = float(state.get("penalizer", model.penalizer))
        model.fit_note_ = state.get("fit_note")
        # a state saved before the check was stored has none (the repeat buyers' values are not in it)
        check = state.get("spend_check")
        model.spend_check_ = None if check is None else dict(check)
        return model

    def __repr__(self, N_CHAR_MAX=700):
        if self.__sklearn_is_fitted__():
            if self.constant_spend_ is not None:
                return f"GammaGammaModel(constant spend {self.constant_spend_:.4g}, n={self.n_customers_})"
            return f"GammaGammaModel(p={self.p_:.4g}, q={self.q_:.4g}, v={self.v_:.4g}, n={self.n_customers_})"
        return super().__repr__(N_CHAR_MAX)


def _excluded_note(n_nonpositive: int, n_missing: int) -> str | None:
    n = n_nonpositive + n_missing
    if not n:
        return None
    who = f"{n:,} repeat buyer{'' if n == 1 else 's'}"
    if n_nonpositive and n_missing:
        who += f" ({n_nonpositive:,} with zero or negative spend, {n_missing:,} without a spend value)"
    else:
        who += " with zero or negative spend" if n_nonpositive else " without a spend value"
    return f"{who} {'was' if n == 1 else 'were'} left out of the spend model and get the population mean spend"
