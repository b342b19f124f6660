"""Probabilistic customer-lifetime-value models.

* ``BetaGeoModel``: BG/NBD, Fader, Hardie & Lee (2005), Marketing Science 24(2) 275-284.
* ``ParetoNBDModel``: Pareto/NBD, Schmittlein, Morrison & Colombo (1987), Management
  Science 33(1) 1-24, with the expressions of Fader & Hardie's 2005 note.
* ``GammaGammaModel``: spend per transaction, Fader, Hardie & Lee (2005), JMR 42(4)
  415-430, after Colombo & Jiang (1999).
* ``customer_lifetime_value``: discounted CLV over a horizon in months from a fitted
  purchase model and a spend model.
* ``fit_purchase_model_robust`` / ``fit_bgnbd_robust`` / ``fit_paretonbd_robust`` /
  ``fit_gamma_gamma_robust``: fits with the penalizer ladder and a ``fit_note_``.

The models are scikit-learn estimators (``BaseEstimator``: ``get_params``, ``clone``,
``check_is_fitted`` and model selection work; ``fit`` also takes one table with the input
columns) and raise scikit-learn's ``NotFittedError``. Method names follow PyMC-Marketing's
clv module: ``expected_purchases``, ``expected_probability_alive``,
``expected_purchases_new_customer``, ``expected_customer_spend``,
``expected_customer_lifetime_value``. Unlike PyMC-Marketing they are fitted by maximum
likelihood (point estimates, no posterior) and take arrays rather than a DataFrame.

Estimation (``analytics.clv.optimizer``): deterministic start values ranked by the
likelihood, L-BFGS-B on log-parameters with analytic gradients, a line-search ending at
machine precision accepted when the gradient is small, a Nelder-Mead polish, then seeded
restarts; the same data give the same parameters on every run. The objective is the mean
negative log-likelihood plus ``penalizer * sum(params**2)``, exactly as in lifetimes, so
fits are comparable with it. Identical (frequency, recency, T) rows are grouped and
weighted by their count, and the terms that depend on (frequency, T) or (frequency,
recency) only are evaluated once per distinct pair.

Time units: recency and T are in the unit the summary was made in
(``analytics.summary.TIME_UNITS``); a purchase model remembers it (``unit_``) and every
time argument of its methods is in that unit. CLV horizons are in months (30.4375 days).

Data a model cannot be fitted on (no repeat buyers, a single customer, no observation
time, NaN/inf) and fits that find no usable optimum raise ``ModelFitError`` (a
``ValueError``) with a message saying what is wrong and what to do.
"""
from analytics.clv._base import DAYS_PER_MONTH, ModelFitError, NotFittedError, SpendModelError
from analytics.clv.bgnbd import BetaGeoModel, sample_bgnbd_summary
from analytics.clv.gammagamma import SPEND_CHECK_FACTOR, GammaGammaModel, spend_check
from analytics.clv.optimizer import DIVERGED, LOG_BOUND, minimize_robust
from analytics.clv.paretonbd import ParetoNBDModel, sample_paretonbd_summary
from analytics.clv.value import (
    FALLBACK_PENALIZERS,
    PURCHASE_MODEL_LABELS,
    PURCHASE_MODELS,
    RUNAWAY_SHAPE,
    customer_lifetime_value,
    fit_bgnbd_robust,
    fit_bgnbd_summary_robust,
    fit_gamma_gamma_robust,
    fit_gamma_gamma_summary_robust,
    fit_paretonbd_robust,
    fit_purchase_model_robust,
    fit_purchase_model_summary_robust,
    purchase_model_key,
)

__all__ = [
    "DAYS_PER_MONTH", "DIVERGED", "FALLBACK_PENALIZERS", "LOG_BOUND", "PURCHASE_MODELS",
    "PURCHASE_MODEL_LABELS", "RUNAWAY_SHAPE", "BetaGeoModel", "GammaGammaModel", "ModelFitError", "SpendModelError",
    "NotFittedError", "ParetoNBDModel", "customer_lifetime_value", "fit_bgnbd_robust",
    "fit_bgnbd_summary_robust", "fit_gamma_gamma_robust", "fit_gamma_gamma_summary_robust",
    "fit_paretonbd_robust", "fit_purchase_model_robust", "fit_purchase_model_summary_robust",
    "minimize_robust", "purchase_model_key", "sample_bgnbd_summary", "sample_paretonbd_summary",
    "SPEND_CHECK_FACTOR", "spend_check",
]
