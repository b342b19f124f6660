"""Shared pieces of the CLV models: errors, input handling, grouping of identical rows.

Nothing here is specific to one model. ``PurchaseData`` is the grouped form of
(frequency, recency, T) that the BG/NBD and Pareto/NBD likelihoods are evaluated on:
identical rows once (with their total weight), and the terms that depend on
(frequency, T) or (frequency, recency) only once per distinct pair, which at a
million customers is a few thousand pairs instead of a hundred thousand rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from analytics.summary import TIME_UNITS

DAYS_PER_MONTH = 365.25 / 12  # 30.4375

__all__ = ["DAYS_PER_MONTH", "ModelFitError", "NotFittedError", "PurchaseData", "SpendModelError"]


class ModelFitError(ValueError):
    """The data cannot support the model, or no usable optimum was found.

    The message says, in words a marketer can act on, what is wrong and what to do.
    """


class SpendModelError(ModelFitError):
    """The spend model could not be fitted although the purchase model was: ``purchase`` is the
    fitted purchase model, whose probability alive and expected purchases need no spend."""

    def __init__(self, message: str, purchase=None):
        super().__init__(message)
        self.purchase = purchase


# ------------------------------------------------------------------ inputs
def as_array(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype="float64").reshape(-1)
    except (TypeError, ValueError):
        raise ModelFitError(f"{name} must be numbers") from None
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ModelFitError(
            f"{name} has {int(bad.sum())} missing or infinite value(s); "
            "drop customers without a first purchase (n_orders == 0) before fitting"
        )


def index_of(*values):
    for v in values:
        if isinstance(v, pd.Series):
            return v.index
    return None


def wrap(result: np.ndarray, index, name: str, scalar: bool = False):
    """A Series on ``index`` when the input was one, a float for scalar input, else the array."""
    if scalar and np.size(result) == 1:
        return float(np.asarray(result).reshape(-1)[0])
    if index is not None and len(index) == result.shape[0]:
        return pd.Series(result, index=index, name=name)
    return result


def columns_of(first, rest: tuple, names: tuple[str, ...]):
    """``fit(df)`` / ``score(df)`` with a DataFrame holding the named columns, or the arrays.

    Lets scikit-learn's model selection (which passes one ``X``) drive the models.
    """
    if isinstance(first, pd.DataFrame) and all(r is None for r in rest):
        missing = [n for n in names if n not in first.columns]
        if missing:
            raise ModelFitError(f"the table lacks column(s) {', '.join(missing)}")
        return tuple(first[n] for n in names)
    if any(r is None for r in rest[: len(names) - 1]):
        raise ModelFitError(f"pass {', '.join(names)} (or one table with these columns)")
    return (first, *rest[: len(names) - 1])


def unit_of(values, unit: str | None) -> str:
    if unit is None:
        unit = getattr(values, "attrs", {}).get("unit") if hasattr(values, "attrs") else None
    if unit is None:
        raise ModelFitError(
            "say which time unit recency and T are in: unit='days', 'weeks' or 'months'"
        )
    if unit not in TIME_UNITS:
        raise ModelFitError(f"unknown time unit {unit!r}; use one of {', '.join(TIME_UNITS)}")
    return unit


def dedup(*arrays: np.ndarray, min_rows: int = 20_000):
    """Distinct rows of equal-length arrays: ``(list of distinct arrays, inverse index)``,
    or None when it is not worth it (few rows, or mostly distinct)."""
    n = len(arrays[0])
    if n < min_rows:
        return None
    codes, n_unique = _row_codes(arrays)
    if n_unique > 0.7 * n:
        return None
    first = np.empty(n_unique, dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # first row of every distinct combination
    return [a[first] for a in arrays], codes


def _row_codes(arrays) -> tuple[np.ndarray, int]:
    """A code per row, equal for equal rows (NaN equal to NaN), and the number of codes."""
    key = np.zeros(len(arrays[0]), dtype=np.int64)
    for a in arrays:
        c, u = pd.factorize(a, use_na_sentinel=False)
        key = key * max(len(u), 1) + c
        if len(u) > 1 and key.max(initial=0) > 2**52:  # keep the combined key exact
            key, _ = pd.factorize(key)
    codes, uniq = pd.factorize(key)
    return codes.astype(np.int64, copy=False), len(uniq)


# ------------------------------------------------------------------ grouped purchase data
@dataclass
class PurchaseData:
    """(frequency, recency, T) with weights, grouped for fast likelihoods.

    Rows: distinct (x, t_x, T) with total weight ``w``; ``iT``/``iR`` index them into the
    distinct (x, T) pairs ``Tx``, ``TT`` and (x, t_x) pairs ``Rx``, ``Rt``; ``ux``/``wx``:
    distinct frequencies with their total weight, ``iTx``/``iRx``: the pairs' frequency index.
    """

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    iT: np.ndarray
    iR: np.ndarray
    Tx: np.ndarray
    TT: np.ndarray
    Rx: np.ndarray
    Rt: np.ndarray
    wT: np.ndarray
    wR: np.ndarray
    ux: np.ndarray
    wx: np.ndarray
    iTx: np.ndarray
    iRx: np.ndarray
    total: float
    Hx: np.ndarray | None = None  # distinct (x, t) over both kinds of pairs (built on demand)
    Ht: np.ndarray | None = None
    hT: np.ndarray | None = None  # T-pair -> (x, t) index
    hR: np.ndarray | None = None  # (x, t_x)-pair -> (x, t) index

    def time_pairs(self):
        """The distinct (x, t) among the (x, T) and (x, t_x) pairs, and each pair's index into
        them (for terms of one time point, evaluated once whether t is someone's T or t_x)."""
        if self.Hx is None:
            allx = np.concatenate([self.Tx, self.Rx])
            allt = np.concatenate([self.TT, self.Rt])
            codes, k = _row_codes((allx, allt))
            first = np.empty(k, dtype=np.int64)
            first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
            self.Hx, self.Ht = allx[first], allt[first]
            self.hT, self.hR = codes[: len(self.Tx)], codes[len(self.Tx):]
        return self.Hx, self.Ht, self.hT, self.hR

    @property
    def n_groups(self) -> int:
        return int(len(self.x))

    @classmethod
    def build(cls, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> "PurchaseData":
        keep = w > 0
        if not keep.all():
            x, tx, T, w = x[keep], tx[keep], T[keep], w[keep]
        codes, k = _row_codes((x, tx, T))
        gw = np.bincount(codes, weights=w, minlength=k)
        first = np.empty(k, dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        gx, gtx, gT = x[first], tx[first], T[first]
        iT, nT = _row_codes((gx, gT))
        iR, nR = _row_codes((gx, gtx))
        fT = np.empty(nT, dtype=np.int64)
        fT[iT[::-1]] = np.arange(k - 1, -1, -1)
        fR = np.empty(nR, dtype=np.int64)
        fR[iR[::-1]] = np.arange(k - 1, -1, -1)
        Tx, TT, Rx, Rt = gx[fT], gT[fT], gx[fR], gtx[fR]
        ux, ix = np.unique(gx, return_inverse=True)
        wx = np.bincount(ix.reshape(-1), weights=gw, minlength=len(ux))
        iTx = np.searchsorted(ux, Tx)
        iRx = np.searchsorted(ux, Rx)
        return cls(gx, gtx, gT, gw, iT, iR, Tx, TT, Rx, Rt,
                   np.bincount(iT, weights=gw, minlength=nT), np.bincount(iR, weights=gw, minlength=nR),
                   ux, wx, iTx, iRx, float(gw.sum()))

    def subsample(self, max_groups: int) -> "PurchaseData":
        """Every k-th group (weights scaled up): a cheap stand-in to rank start values on."""
        if self.n_groups <= max_groups:
            return self
        step = int(np.ceil(self.n_groups / max_groups))
        sel = np.arange(0, self.n_groups, step)
        w = self.w[sel] * (self.total / self.w[sel].sum())
        return PurchaseData.build(self.x[sel], self.tx[sel], self.T[sel], w)

    def sample_customers(self, max_groups: int) -> "PurchaseData":
        """A systematic sample of the customers on about ``max_groups`` groups: every group of
        at least ``tau`` customers kept with its own weight, the others taken with probability
        weight / tau and weight tau, in the order of their frequency (so the sample is
        stratified by it). Its log-likelihood estimates the full data's without bias, with the
        variance of a sample of customers, not of groups (every k-th group with the weights
        scaled up keeps few of the heavy groups - the non-repeaters of each age - and lets
        those stand for all the others)."""
        if self.n_groups <= max_groups:
            return self
        w = self.w
        tau = self.total / max_groups
        for _ in range(20):  # tau = (weight of the groups below tau) / (places left for them)
            big = w >= tau
            room = max_groups - int(big.sum())
            if room < 1:
                break
            new = float(w[~big].sum()) / room
            if abs(new - tau) <= 1e-9 * tau:
                break
            tau = new
        big = w >= tau
        order = getattr(self, "_x_order", None)
        if order is None:  # the groups by frequency (kept for further samples of the same data)
            order = self._x_order = np.argsort(self.x, kind="stable")
        order = order[~big[order]]
        c = np.cumsum(w[order]) / tau
        k = np.diff(np.floor(c + 0.5), prepend=0.0)  # customers at positions (j - 1/2) tau
        sel = np.concatenate([np.flatnonzero(big), order[k > 0]])
        wt = np.concatenate([w[big], k[k > 0] * tau])
        return PurchaseData.build(self.x[sel], self.tx[sel], self.T[sel], wt)


def validate_purchases(frequency, recency, T, model_name: str):
    """The checks every purchase model needs; returns float arrays (x, t_x, T)."""
    x = as_array(frequency, "frequency")
    tx = as_array(recency, "recency")
    tt = as_array(T, "T")
    if not (len(x) == len(tx) == len(tt)):
        raise ModelFitError("frequency, recency and T must have the same length")
    for arr, name in ((x, "frequency"), (tx, "recency"), (tt, "T")):
        check_finite(arr, name)
    n = len(x)
    if n == 0:
        raise ModelFitError(f"no customers to fit the {model_name} model on (nobody has purchased)")
    if n == 1:
        raise ModelFitError(f"only a single customer: the {model_name} model needs a customer base")
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
            f"no customer made a repeat purchase (all frequency = 0): the {model_name} model "
            "cannot estimate purchase or drop-out rates - pick a longer period"
        )
    if (tx[x > 0] <= 0).all():
        raise ModelFitError(
            "all repeat purchases fall on the first purchase day (recency = 0): "
            "a longer period or a finer time unit is needed"
        )
    return x, np.minimum(tx, tt), tt  # a last purchase a rounding error after T is at T


def check_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = as_array(weights, "weights")
    if len(w) != n or (w < 0).any() or not np.isfinite(w).all():
        raise ModelFitError("weights must be finite, >= 0 and one per customer")
    return w
