"""Backtest metrics for value and churn predictors.

Value metrics compare predicted with actual holdout value per customer; churn
metrics compare a predicted churn probability with the observed churn flag.

Ties in the predictions are handled fairly: every rank-based figure (normalized
Gini, top-decile capture, the decile table) is the *expected value under random
tie-breaking*. For Gini and capture this is exact and simple: all figures are
linear in the actual value placed at each sorted position, so within a group of
tied predictions each member can be given the group's mean actual. Where a
boundary (the top 10 %, a decile edge) cuts through a tied group, the group is
split proportionally. ROC AUC counts a tied positive/negative pair as one half
(the Mann-Whitney statistic), which is the same expectation.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from analytics import formatting

__all__ = [
    "rmse",
    "mae",
    "spearman",
    "normalized_gini",
    "top_decile_capture",
    "top_share_capture",
    "roc_auc",
    "pr_auc",
    "brier_score",
    "decile_table",
    "value_metrics",
    "churn_metrics",
]


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if a.shape != p.shape:
        raise ValueError(f"actual and predicted differ in length ({a.size} vs {p.size})")
    if a.size == 0:
        raise ValueError("no customers to evaluate")
    if not (np.isfinite(a).all() and np.isfinite(p).all()):
        raise ValueError("actual and predicted values must be finite numbers")
    return a, p


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    a, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - p) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    a, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - p)))


def spearman(y_true, y_pred) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    a, p = _pair(y_true, y_pred)
    if a.size < 2 or np.all(a == a[0]) or np.all(p == p[0]):
        return float("nan")
    return float(stats.spearmanr(a, p).statistic)


def _sorted_tie_averaged(a: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Actuals and predictions sorted by prediction, highest first, with the
    actual of every tied-prediction group replaced by the group mean."""
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    as_ = a[order]
    # group boundaries where the sorted prediction changes
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    sizes = np.diff(np.r_[starts, ps.size])
    sums = np.add.reduceat(as_, starts)
    means = np.repeat(sums / sizes, sizes)
    return means, ps


def _cumulative_at(values: np.ndarray, x: np.ndarray | float) -> np.ndarray:
    """Sum of ``values`` over the continuous position interval [0, x): element i
    covers [i, i + 1), so a fractional x takes that share of the next element."""
    csum = np.r_[0.0, np.cumsum(values)]
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, values.size)
    whole = np.floor(x).astype(np.int64)
    frac = x - whole
    nxt = np.where(whole < values.size, values[np.minimum(whole, values.size - 1)], 0.0)
    return csum[whole] + frac * nxt


def _gini_of_order(a_sorted: np.ndarray) -> float:
    n = a_sorted.size
    total = a_sorted.sum()
    cum = np.cumsum(a_sorted) / total
    return float(cum.sum() / n - (n + 1) / (2 * n))


def normalized_gini(y_true, y_pred) -> float:
    """Gini of the actuals ordered by prediction over the Gini of the actuals
    ordered by themselves: 1 for a perfect ranking, 0 for a random or constant
    one, negative for an inverted one. NaN when the actuals carry no ranking
    (all equal) or sum to zero."""
    a, p = _pair(y_true, y_pred)
    if a.size < 2 or a.sum() == 0 or np.all(a == a[0]):
        return float("nan")
    means, _ = _sorted_tie_averaged(a, p)
    best = _gini_of_order(np.sort(a)[::-1])
    if best == 0:
        return float("nan")
    return _gini_of_order(means) / best


def top_share_capture(y_true, y_pred, share: float = 0.1) -> float:
    """Share of the actual total held by the ``share`` of customers predicted
    highest (the boundary may cut a customer or a tied group proportionally)."""
    if not 0 < share <= 1:
        raise ValueError("share must be in (0, 1]")
    a, p = _pair(y_true, y_pred)
    total = a.sum()
    if total == 0:
        return float("nan")
    means, _ = _sorted_tie_averaged(a, p)
    return float(_cumulative_at(means, share * a.size) / total)


def top_decile_capture(y_true, y_pred) -> float:
    """Share of the actual total held by the 10 % of customers predicted highest."""
    return top_share_capture(y_true, y_pred, 0.1)


def _binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y, s = _pair(y_true, y_score)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("churn labels must be 0 or 1")
    return y, s


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (Mann-Whitney; ties count one half). NaN when
    only one class is present."""
    y, s = _binary(y_true, y_score)
    n_pos = y.sum()
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(s)  # average ranks for ties
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y_true, y_score) -> float:
    """Average precision, sum over thresholds of (R_k - R_{k-1}) * P_k, with one
    threshold per distinct score (as scikit-learn's ``average_precision_score``).
    NaN when there are no positives."""
    y, s = _binary(y_true, y_score)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    ss, ys = s[order], y[order]
    last = np.r_[ss[1:] != ss[:-1], True]  # last element of each distinct score
    tp = np.cumsum(ys)[last]
    seen = (np.flatnonzero(last) + 1).astype(np.float64)
    precision = tp / seen
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier_score(y_true, y_prob) -> float:
    """Mean squared difference between predicted probability and the 0/1 outcome."""
    y, p = _binary(y_true, y_prob)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("churn probabilities must lie in [0, 1]")
    return float(np.mean((p - y) ** 2))


def decile_table(y_true, y_pred, n_bins: int = 10) -> pd.DataFrame:
    """Predicted vs actual mean per predicted decile; decile 1 holds the highest
    predictions. Customers on a decile edge, and tied groups that straddle one,
    are split proportionally, so every decile holds exactly n / n_bins
    customers' worth of weight (``customers`` may be fractional)."""
    a, p = _pair(y_true, y_pred)
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    means, ps = _sorted_tie_averaged(a, p)
    n = a.size
    edges = np.arange(n_bins + 1) * (n / n_bins)
    act = np.diff(_cumulative_at(means, edges))
    pred = np.diff(_cumulative_at(ps, edges))
    width = np.diff(edges)
    total = a.sum()
    return pd.DataFrame(
        {
            "decile": np.arange(1, n_bins + 1),
            "customers": width,
            "predicted_mean": pred / width,
            "actual_mean": act / width,
            "predicted_total": pred,
            "actual_total": act,
            "actual_share": act / total if total != 0 else np.full(n_bins, np.nan),
        }
    )


def value_metrics(y_true, y_pred) -> dict[str, float]:
    """Every value metric for one model, as a flat dict."""
    a, p = _pair(y_true, y_pred)
    return {
        "rmse": rmse(a, p),
        "mae": mae(a, p),
        "spearman": spearman(a, p),
        "normalized_gini": normalized_gini(a, p),
        "top_decile_capture": top_decile_capture(a, p),
        "total_predicted": float(p.sum()),
        "total_actual": float(a.sum()),
        "total_ratio": float(p.sum() / a.sum()) if a.sum() != 0 else math.nan,
    }


def churn_metrics(y_churn, p_churn) -> dict[str, float]:
    """Every churn metric for one model (``p_churn`` = predicted churn probability)."""
    return {
        "roc_auc": roc_auc(y_churn, p_churn),
        "pr_auc": pr_auc(y_churn, p_churn),
        "brier": brier_score(y_churn, p_churn),
    }


def explain_metrics(row, model: str, holdout_days: int, money=None) -> list[str]:
    """Plain sentences for one model's backtest ``row`` (a mapping of metric -> value):
    what its figures mean for the holdout of ``holdout_days`` days. ``money(x)`` formats amounts."""
    money = money or (lambda x: f"{x:,.2f}")
    out = []

    def ok(key):
        v = row.get(key)
        return v is not None and isinstance(v, (int, float, np.floating)) and math.isfinite(float(v))

    if ok("top_decile_capture"):
        out.append(f"The 10 % of customers {model} ranks highest brought {formatting.percent(float(row['top_decile_capture']), 0)} of "
                   f"the revenue of the {holdout_days} days after the cut-off.")
    if ok("normalized_gini"):
        out.append(f"Its ranking of who spends most scores {float(row['normalized_gini']):.2f} on a scale where 1 "
                   "is a perfect order and 0 is chance (normalized Gini).")
    if ok("total_ratio") and ok("total_predicted") and ok("total_actual"):
        r = float(row["total_ratio"])
        how = "about right" if abs(r - 1) <= 0.1 else ("too high" if r > 1 else "too low")
        out.append(f"It expected {money(float(row['total_predicted']))} in total against "
                   f"{money(float(row['total_actual']))} actually spent ({r:.2f} x, {how}).")
    if ok("rmse"):
        out.append(f"A typical miss for one customer was {money(float(row['rmse']))} (RMSE).")
    if ok("roc_auc"):
        out.append(f"Its churn risk told apart those who bought again from those who did not with an AUC of "
                   f"{float(row['roc_auc']):.2f} (1 = always, 0.5 = chance).")
    return out
