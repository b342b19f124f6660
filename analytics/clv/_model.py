"""The estimator plumbing shared by the purchase models (BG/NBD, Pareto/NBD)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from analytics.clv._base import (
    DAYS_PER_MONTH,
    ModelFitError,
    NotFittedError,
    PurchaseData,
    as_array,
    check_weights,
    columns_of,
    unit_of,
    validate_purchases,
)
from analytics.clv.optimizer import minimize_robust
from analytics.summary import TIME_UNITS

_SCREEN_GROUPS = 5000  # start values are ranked on at most this many groups
_EXPLORE_GROUPS = 600  # the model's limits are explored from their own starts up to this many groups


class PurchaseModel(BaseEstimator):
    """Common fitting, scoring and persistence of the purchase models.

    A subclass defines ``_name``, ``_param_names``, ``_loglik(params, data, grad)``
    (total log-likelihood and its gradient with respect to the parameters) and
    ``_start_values(data)`` (log-parameter vectors to start from).
    """

    _name = "purchase"
    _param_names: tuple[str, ...] = ()

    def __init__(self, penalizer: float = 0.0, random_state=0, n_restarts: int = 2,
                 max_iter: int = 2000):
        self.penalizer = penalizer
        self.random_state = random_state
        self.n_restarts = n_restarts
        self.max_iter = max_iter

    _warm_start = False  # fit the screening subsample first and start the full fit from there

    def _boundary_fit(self, data: PurchaseData, objective, opt):
        """A limit of the model with a likelihood of its own (not a limit of its parameters
        that the objective can be evaluated at): where the unpenalized fit ``opt`` runs off
        towards one, fit it there and return the better ``Optimum`` (in the model's
        log-parameters). By default the model has none: ``opt`` as it is."""
        return opt

    @staticmethod
    def _warm_start_values(data: PurchaseData):
        """Start values for the warm start's first subsample (None: the ordinary ones)."""
        return None

    @staticmethod
    def _screen_data(data: PurchaseData) -> PurchaseData:
        """The subsample that start values are ranked (and a warm start is fitted) on; or a
        tuple of subsamples from small to large, fitted one after the other from the previous
        one's optimum (start values ranked on the first; where the warm start fails, on the
        last)."""
        return data.subsample(_SCREEN_GROUPS)

    @staticmethod
    def _limit_models(data: PurchaseData):
        """``optimizer.Limit`` models on the boundary at infinity to compare the fit with
        (none by default)."""
        return ()

    # -- scikit-learn ---------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "params_", None) is not None

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() first")
        return tuple(self.params_[k] for k in self._param_names)

    # -- fitting ----------------------------------------------------------------------
    @classmethod
    def _validate(cls, frequency, recency, T):
        return validate_purchases(frequency, recency, T, cls._name)

    def _objective(self, data: PurchaseData, pen: float):
        total = data.total

        def objective(theta):
            params = np.exp(theta)
            ll, g = self._loglik(params, data, True)
            f = -ll / total + pen * float(np.sum(params ** 2))
            val = (-g / total + 2.0 * pen * params) * params  # chain rule for log-parameters
            if not np.isfinite(f) or not np.all(np.isfinite(val)):
                return np.inf, np.zeros_like(theta)
            return f, val

        def value(theta):
            # the objective without its gradient: what ranking start values needs (for a
            # likelihood with special functions, far cheaper than value and gradient)
            params = np.exp(theta)
            ll, _ = self._loglik(params, data, False)
            f = -ll / total + pen * float(np.sum(params ** 2))
            return f if np.isfinite(f) else np.inf

        objective.value = value
        return objective

    def fit(self, frequency, recency=None, T=None, *, unit: str | None = None, weights=None):
        """Fit by maximum likelihood (penalized when ``penalizer`` > 0).

        ``frequency``, ``recency``, ``T``: per customer (purchasers only), recency and T
        in ``unit`` (taken from the Series' or table's ``attrs["unit"]`` when they come from
        ``customer_summary``); or one table with these three columns as the first argument
        (what scikit-learn's model selection passes). ``weights``: optional counts per row.
        """
        for attr in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, attr)  # a failed refit must not leave the old fit looking current
        table = frequency
        frequency, recency, T = columns_of(frequency, (recency, T), ("frequency", "recency", "T"))
        unit = unit_of(table if isinstance(table, pd.DataFrame) else T, unit)
        x, tx, tt = self._validate(frequency, recency, T)
        w = check_weights(weights, len(x))
        pen = float(self.penalizer)
        if not np.isfinite(pen) or pen < 0:
            raise ModelFitError("penalizer must be a number >= 0")
        data = PurchaseData.build(x, tx, tt, w)
        objective = self._objective(data, pen)
        screen = None
        if data.n_groups > _SCREEN_GROUPS:
            sd = self._screen_data(data)  # one subsample, or a tuple of them from small to large
            screen = tuple(self._objective(s, pen) for s in sd) if isinstance(sd, tuple) else self._objective(sd, pen)
        opt = minimize_robust(objective, self._start_values(data), what=self._name,
                              random_state=self.random_state, n_restarts=int(self.n_restarts),
                              max_iter=int(self.max_iter), screen=screen,
                              limits=self._limit_models(data) if pen == 0 else (),
                              explore=data.n_groups <= _EXPLORE_GROUPS, warm=self._warm_start,
                              warm_starts=self._warm_start_values(data) if self._warm_start else None)
        if pen == 0:
            opt = self._boundary_fit(data, objective, opt)
        params = np.exp(opt.x)
        self._set_params(params, unit)
        self.log_likelihood_ = float(self._loglik(params, data, False)[0])
        self.n_customers_ = int(round(data.total))
        self.n_groups_ = data.n_groups
        self.n_iter_ = int(opt.nit)
        self.penalizer_ = pen
        self.optimizer_ = opt.how
        self.gradient_max_ = float(opt.grad_max)
        self.ran_off_ = bool(opt.ran_off)
        self.fit_note_ = None  # set by the fit_*_robust functions when a fallback was needed
        return self

    def _set_params(self, params, unit):
        self.params_ = {k: float(v) for k, v in zip(self._param_names, params)}
        for k, v in self.params_.items():
            setattr(self, f"{k}_", v)
        self.unit_ = unit

    def fit_summary(self, summary: pd.DataFrame):
        """Fit on a ``customer_summary`` result (purchasers only, its unit)."""
        rows = summary[summary["n_orders"] > 0] if "n_orders" in summary else summary
        return self.fit(rows["frequency"], rows["recency"], rows["T"], unit=summary.attrs.get("unit"))

    # -- scoring ----------------------------------------------------------------------
    def log_likelihood(self, frequency, recency=None, T=None) -> float:
        """Total log-likelihood of data (in the fitted unit) under the fitted parameters."""
        params = np.array(self._check_fitted())
        frequency, recency, T = columns_of(frequency, (recency, T), ("frequency", "recency", "T"))
        x, tx, tt = (as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        data = PurchaseData.build(x, tx, tt, np.ones_like(x))
        return float(self._loglik(params, data, False)[0])

    def score(self, frequency, recency=None, T=None) -> float:
        """Mean log-likelihood per customer (higher is better; for model selection)."""
        frequency, recency, T = columns_of(frequency, (recency, T), ("frequency", "recency", "T"))
        return self.log_likelihood(frequency, recency, T) / max(len(as_array(frequency, "frequency")), 1)

    def expected_purchases_months(self, months, frequency, recency, T):
        """Expected purchases in the next ``months`` months (converted to ``unit_``)."""
        self._check_fitted()
        return self.expected_purchases(np.asarray(months, dtype=float) * DAYS_PER_MONTH / TIME_UNITS[self.unit_],
                                       frequency, recency, T)

    # -- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fitted state as plain JSON-ready values (``from_dict`` rebuilds the model)."""
        self._check_fitted()
        return {"model": type(self).__name__, "params": dict(self.params_), "unit": self.unit_,
                "hyperparameters": self.get_params(), "log_likelihood": self.log_likelihood_,
                "customers": self.n_customers_, "penalizer": self.penalizer_,
                "fit_note": self.fit_note_}

    @classmethod
    def from_dict(cls, state: dict):
        """A fitted model from ``to_dict()`` output (predictions need no refit)."""
        if state.get("model") not in (None, cls.__name__):
            raise ValueError(f"this state is of a {state.get('model')}, not a {cls.__name__}")
        model = cls(**state.get("hyperparameters", {}))
        params = np.array([float(state["params"][k]) for k in cls._param_names])
        model._set_params(params, unit_of(None, state.get("unit")))
        model.log_likelihood_ = float(state.get("log_likelihood", np.nan))
        model.n_customers_ = int(state.get("customers", 0))
        model.penalizer_ = float(state.get("penalizer", model.penalizer))
        model.fit_note_ = state.get("fit_note")
        return model

    def __repr__(self, N_CHAR_MAX=700):
        if self.__sklearn_is_fitted__():
            ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}({ps}, unit={self.unit_!r}, n={getattr(self, 'n_customers_', 0)})"
        return super().__repr__(N_CHAR_MAX)
