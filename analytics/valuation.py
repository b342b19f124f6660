"""The one expected-CLV resolver: what a customer is expected to be worth, and where that
number comes from.

Per customer, the first source that has a value wins:

1. **published model**: the published predictor's ``predicted_value``
   (``analytics.predict.registry``) when it scored the customer;
2. **probabilistic model**: the BG/NBD x Gamma-Gamma discounted CLV (``clv_bgnbd`` of
   :func:`analytics.scores.probabilistic_clv`) when the models could be fitted on the data;
   customers who never bought get 0 (the model has no purchase history to project);
3. **formula**: the transparent formula CLV (the frame's ``clv``, from
   :func:`analytics.scores.clv_formula`), when the models cannot be fitted.

The Value page, campaigns (:func:`analytics.campaigns.value_columns`) and reports
(:func:`analytics.reports.expected_clv`) all call :func:`expected_clv` (or :func:`resolve` on
arrays they already hold), so one customer has one expected CLV everywhere, with its source.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

#: source codes of :attr:`ExpectedCLV.codes`, in resolution order
PUBLISHED, PROBABILISTIC, FORMULA = 0, 1, 2
SOURCE_NAMES = ("published model", "probabilistic model", "formula")
#: how each base source reads in a summary ("... else BG/NBD + Gamma-Gamma CLV")
_BASE_WORDS = {PROBABILISTIC: "BG/NBD + Gamma-Gamma CLV", FORMULA: "formula CLV"}
PROB_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "discounted_revenue", "clv_bgnbd")


@dataclasses.dataclass(frozen=True)
class ExpectedCLV:
    """Resolved expected CLV of every customer of a frame, in the frame's row order.

    ``values``: the expected CLV; ``codes``: :data:`PUBLISHED` / :data:`PROBABILISTIC` /
    :data:`FORMULA` per customer; ``p_alive``: the probabilistic model's probability alive (NaN
    where it was not fitted or for customers without a purchase); ``note``: why the
    probabilistic model was not used (None when it was); ``prob``: the model's per-buyer table
    (:func:`analytics.scores.probabilistic_clv`) or None."""

    index: pd.Index
    values: np.ndarray
    codes: np.ndarray
    p_alive: np.ndarray
    note: str | None = None
    prob: pd.DataFrame | None = None
    #: the source customers without a published prediction get (PROBABILISTIC or FORMULA)
    base: int = FORMULA

    @property
    def source(self) -> str:
        """One line saying where the values came from (shown to the user)."""
        n_pub = int((self.codes == PUBLISHED).sum())
        base = _BASE_WORDS[self.base]
        if n_pub == 0:
            return base
        if n_pub == len(self.codes):
            return "published model predictions"
        return f"published model predictions ({n_pub} customers), else {base}"

    def series(self) -> pd.Series:
        return pd.Series(self.values, index=self.index, name="expected_clv")

    def sources(self) -> np.ndarray:
        """The source name of every customer."""
        return np.asarray(SOURCE_NAMES, dtype=object)[self.codes]


def resolve(predicted=None, probabilistic=None, formula=None, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(values, codes)`` from per-customer arrays in the same order (None: source absent).

    A published prediction wins where it is not NaN; else the probabilistic CLV when the model
    was fitted (``probabilistic`` not None; NaN there, i.e. no purchase, counts as 0); else the
    formula CLV (NaN counts as 0)."""
    arrays = [a for a in (predicted, probabilistic, formula) if a is not None]
    if n is None:
        if not arrays:
            raise ValueError("resolve needs at least one source or the number of customers")
        n = len(arrays[0])
    pred = np.full(n, np.nan) if predicted is None else np.asarray(predicted, dtype=float)
    if probabilistic is not None:
        base, base_code = np.nan_to_num(np.asarray(probabilistic, dtype=float), nan=0.0), PROBABILISTIC
    else:
        base = np.zeros(n) if formula is None else np.nan_to_num(np.asarray(formula, dtype=float), nan=0.0)
        base_code = FORMULA
    has = ~np.isnan(pred)
    values = np.where(has, pred, base)
    codes = np.where(has, PUBLISHED, base_code).astype(np.int8)
    return values, codes


def _num(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    if column not in frame.columns:
        return None
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def prob_table_from_frame(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The per-buyer probabilistic table kept in a prepared frame's columns (None when absent)."""
    if not set(PROB_COLUMNS) <= set(frame.columns):
        return None
    buyers = np.nan_to_num(_num(frame, "n_orders"), nan=0.0) > 0
    table = frame.loc[buyers, list(PROB_COLUMNS)]
    return table


def expected_clv(frame: pd.DataFrame, *, models=None, params=None, prob: pd.DataFrame | None = None,
                 fit: bool = True) -> ExpectedCLV:
    """Resolve the expected CLV of every customer of ``frame`` (a customer frame or summary
    indexed by customer id, with the summary columns, ``clv`` and optionally
    ``predicted_value``).

    ``prob``: the probabilistic table already computed for these customers (per buyer:
    ``clv_bgnbd``, ``p_alive``...); else it is computed with ``models`` (a fitted
    ``(bgnbd, gamma_gamma)`` pair) or, when ``fit``, by fitting them here. ``params``:
    :class:`analytics.scores.CLVParams` (default 12 months, 10 % discount, 30 % margin). Models
    that cannot be fitted (degenerate data) fall back to the formula, with ``note`` saying why.
    """
    n = len(frame)
    note = None
    model_clv = p_alive = None
    if prob is None and n and (models is not None or fit) and {
            "frequency", "recency", "T", "monetary_value", "n_orders"} <= set(frame.columns):
        from analytics.scores import buyers_p_alive, probabilistic_clv

        try:
            prob, _ = probabilistic_clv(frame, params, models=models)
        except (ValueError, ArithmeticError, FloatingPointError) as exc:
            note = f"BG/NBD + Gamma-Gamma could not be fitted ({exc}); formula CLV used instead"
            prob = None
            purchase = getattr(exc, "purchase", None)  # only the spend model failed
            if purchase is not None:
                p_alive = buyers_p_alive(purchase, frame).reindex(frame.index).to_numpy(dtype=float)
                note += "; the probability alive is the purchase model's"
    elif prob is None and n and not fit and models is None:
        note = "the probabilistic model was not fitted; formula CLV used instead"
    if prob is not None:
        model_clv = prob["clv_bgnbd"].reindex(frame.index).to_numpy(dtype=float)
        p_alive = prob["p_alive"].reindex(frame.index).to_numpy(dtype=float)
    values, codes = resolve(_num(frame, "predicted_value"), model_clv, _num(frame, "clv"), n=n)
    return ExpectedCLV(index=frame.index, values=values, codes=codes,
                       p_alive=np.full(n, np.nan) if p_alive is None else p_alive, note=note, prob=prob,
                       base=FORMULA if prob is None else PROBABILISTIC)
