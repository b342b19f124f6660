"""CLV from a purchase model and a spend model, and fits that fall back instead of failing.

* ``customer_lifetime_value``: discounted CLV over a horizon in months from a fitted purchase
  model (``BetaGeoModel`` or ``ParetoNBDModel``) and a ``GammaGammaModel``.
* ``fit_purchase_model_robust`` (``fit_bgnbd_robust``, ``fit_paretonbd_robust``) and
  ``fit_gamma_gamma_robust``: a plain maximum-likelihood fit; when it does not converge, or
  runs off to a boundary (a shape parameter towards infinity: the heterogeneity the model
  describes collapses and the parameters stop being identifiable), the fit is repeated with
  each of ``FALLBACK_PENALIZERS`` in turn, the small ridge penalty lifetimes users reach for.
  The returned model's ``fit_note_`` says so in one line for pages and the CLI.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.clv._base import DAYS_PER_MONTH, ModelFitError, as_array, dedup, index_of, wrap
from analytics.clv.bgnbd import BetaGeoModel
from analytics.clv.gammagamma import GammaGammaModel
from analytics.clv.paretonbd import ParetoNBDModel
from analytics.summary import TIME_UNITS

#: purchase models by key (the key is what settings, the CLI and stored results use)
PURCHASE_MODELS = {"bgnbd": BetaGeoModel, "paretonbd": ParetoNBDModel}
PURCHASE_MODEL_LABELS = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD"}

FALLBACK_PENALIZERS = (0.001, 0.01, 0.1)
RUNAWAY_SHAPE = 1e4  # a fitted shape parameter above this is the "heterogeneity collapses" runaway

_LOW, _HIGH = 1e-6, 1e6  # any parameter beyond these has run off (rates of one purchase per million units...)
_SHAPES = {"bgnbd": ("a", "b"), "paretonbd": ("r", "s"), "gamma_gamma": ("p", "q")}


def purchase_model_key(model) -> str:
    """``"bgnbd"`` or ``"paretonbd"`` for a model instance, class or key."""
    if isinstance(model, str):
        if model not in PURCHASE_MODELS:
            raise ValueError(f"unknown purchase model {model!r}; use one of {', '.join(PURCHASE_MODELS)}")
        return model
    cls = model if isinstance(model, type) else type(model)
    for key, c in PURCHASE_MODELS.items():
        if issubclass(cls, c):
            return key
    raise ValueError(f"{cls.__name__} is not a purchase model")


def _runaway(model, key: str, max_shape: float) -> str | None:
    params = model.params_
    if not all(v is not None and np.isfinite(v) for v in params.values()):
        return "did not give finite parameters"
    big = [k for k in _SHAPES[key] if params[k] > max_shape]
    if big:
        return "ran off to " + ", ".join(f"{k} = {params[k]:.3g}" for k in big) + " (not identifiable)"
    off = [k for k, v in params.items() if not _LOW < v < _HIGH]
    if off or getattr(model, "ran_off_", False):
        off = off or list(params)
        return "ran off to " + ", ".join(f"{k} = {params[k]:.3g}" for k in off) + " (not identifiable)"
    return None


def _ladder(make, fit, key: str, label: str, penalizer: float, fallback_penalizers, max_shape: float):
    tried = [float(penalizer)] + [float(p) for p in fallback_penalizers if float(p) > float(penalizer)]
    first_problem = None
    last_error = None
    for pen in tried:
        try:
            model = fit(make(pen))
        except ModelFitError as exc:
            last_error = exc
            if "did not converge" not in str(exc):
                raise  # the data, not the optimizer: a penalty does not help
            first_problem = first_problem or "did not converge"
            continue
        problem = _runaway(model, key, max_shape)
        if problem:
            first_problem = first_problem or problem
            continue
        note = getattr(model, "fit_note_", None)
        if pen != tried[0]:
            ladder = (f"the {label} fit with penalizer {tried[0]:g} {first_problem}; "
                      f"fitted with an L2 penalizer of {pen:g} instead")
            note = ladder if not note else f"{ladder}; {note}"
        model.fit_note_ = note
        return model
    raise ModelFitError(
        f"the {label} fit {first_problem} even with penalizers up to {tried[-1]:g}; the data may not "
        "follow the model (too few repeat buyers, or too short an observation period) - try a longer "
        "period or a larger penalizer"
    ) from last_error


def fit_purchase_model_robust(model: str, frequency, recency, T, *, unit: str | None = None,
                              weights=None, random_state=0, penalizer: float = 0.0,
                              fallback_penalizers=FALLBACK_PENALIZERS, max_shape: float = RUNAWAY_SHAPE,
                              **kwargs):
    """Fit the purchase model ``model`` (``"bgnbd"`` or ``"paretonbd"``) with the penalizer
    ladder (module docstring). The model has ``penalizer_`` (the one used) and ``fit_note_``.

    Raises ``ModelFitError`` at once for data the model cannot be fitted on at all (no repeat
    buyers, ...), and when no penalizer gives a usable fit.
    """
    key = purchase_model_key(model)
    cls = PURCHASE_MODELS[key]
    cls._validate(frequency, recency, T)  # data problems: say so, do not retry
    return _ladder(lambda pen: cls(penalizer=pen, random_state=random_state, **kwargs),
                   lambda m: m.fit(frequency, recency, T, unit=unit, weights=weights),
                   key, PURCHASE_MODEL_LABELS[key], penalizer, fallback_penalizers, max_shape)


def fit_bgnbd_robust(frequency, recency, T, **kwargs) -> BetaGeoModel:
    """``fit_purchase_model_robust("bgnbd", ...)``."""
    return fit_purchase_model_robust("bgnbd", frequency, recency, T, **kwargs)


def fit_paretonbd_robust(frequency, recency, T, **kwargs) -> ParetoNBDModel:
    """``fit_purchase_model_robust("paretonbd", ...)``."""
    return fit_purchase_model_robust("paretonbd", frequency, recency, T, **kwargs)


def fit_purchase_model_summary_robust(summary: pd.DataFrame, model: str = "bgnbd", **kwargs):
    """``fit_purchase_model_robust`` on a ``customer_summary`` result (purchasers only, its unit)."""
    rows = summary[summary["n_orders"] > 0] if "n_orders" in summary else summary
    return fit_purchase_model_robust(model, rows["frequency"], rows["recency"], rows["T"],
                                     unit=summary.attrs.get("unit"), **kwargs)


def fit_bgnbd_summary_robust(summary: pd.DataFrame, **kwargs) -> BetaGeoModel:
    """``fit_bgnbd_robust`` on a ``customer_summary`` result (purchasers only, its unit)."""
    return fit_purchase_model_summary_robust(summary, "bgnbd", **kwargs)


def fit_gamma_gamma_robust(frequency, monetary_value, *, weights=None, random_state=0,
                           penalizer: float = 0.0, fallback_penalizers=FALLBACK_PENALIZERS,
                           max_shape: float = RUNAWAY_SHAPE, **kwargs) -> GammaGammaModel:
    """``GammaGammaModel`` with the penalizer ladder. On small data the unpenalized maximum
    often lies at p -> infinity (no spend variation within customers can be told apart);
    a small penalty then gives finite parameters and practically the same expected spend."""
    GammaGammaModel._validate(frequency, monetary_value, weights)

    def fit(m):
        return m.fit(frequency, monetary_value, weights=weights)

    def make(pen):
        return GammaGammaModel(penalizer=pen, random_state=random_state, **kwargs)

    first = fit(make(float(penalizer)))
    if first.constant_spend_ is not None or _runaway(first, "gamma_gamma", max_shape) is None:
        return first
    return _ladder(make, fit, "gamma_gamma", "Gamma-Gamma", penalizer, fallback_penalizers, max_shape)


def fit_gamma_gamma_summary_robust(summary: pd.DataFrame, **kwargs) -> GammaGammaModel:
    """``fit_gamma_gamma_robust`` on a ``customer_summary`` result (its repeat buyers)."""
    rows = summary[summary["frequency"] > 0]
    return fit_gamma_gamma_robust(rows["frequency"], rows["monetary_value"], **kwargs)


# ------------------------------------------------------------------ CLV
def customer_lifetime_value(transaction_model, spend_model: GammaGammaModel, frequency, recency, T,
                            monetary_value, *, horizon_months: int = 12,
                            annual_discount_rate: float = 0.1, margin: float = 1.0):
    """Discounted expected customer lifetime value over ``horizon_months`` months.

    CLV = margin * E[spend] * sum_{k=1..H} (E[Y(k m)] - E[Y((k-1) m)]) / (1 + d)^k

    where m is one month (30.4375 days) in the purchase model's time unit, E[Y(t)] its
    conditional expected purchases (BG/NBD or Pareto/NBD), E[spend] the Gamma-Gamma
    expected transaction value, and d = (1 + annual rate)^(1/12) - 1 the equivalent monthly
    discount rate (cash flows at each month's end), as in Fader, Hardie & Lee (2005, JMR)
    and lifetimes' ``customer_lifetime_value`` (which takes a monthly rate).
    """
    transaction_model._check_fitted()
    spend_model._check_fitted()
    h = int(horizon_months)
    if h != horizon_months or h < 1:
        raise ValueError("the CLV horizon must be a whole number of months >= 1")
    if not np.isfinite(annual_discount_rate) or annual_discount_rate <= -1:
        raise ValueError("the annual discount rate must be a number > -100%")
    index = index_of(frequency, recency, T, monetary_value)
    x, tx, tt = (as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
    month = DAYS_PER_MONTH / TIME_UNITS[transaction_model.unit_]
    d = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    spend = np.asarray(spend_model.expected_customer_spend(x, as_array(monetary_value, "monetary_value")))
    dd = dedup(x, tx, tt)
    (ux, utx, utt), inv = dd if dd is not None else ((x, tx, tt), None)
    total = np.zeros_like(ux)
    prev = np.zeros_like(ux)
    for k in range(1, h + 1):
        cum = np.asarray(transaction_model.expected_purchases(k * month, ux, utx, utt))
        total += (cum - prev) / (1.0 + d) ** k
        prev = cum
    if inv is not None:
        total = total[inv]
    return wrap(margin * spend * total, index, "clv")
