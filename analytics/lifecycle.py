"""Next order date and churn-risk band of every repeat buyer (what a Klaviyo user expects).

* **Expected next order date** (:func:`next_order_days`): from the fitted purchase model, BG/NBD
  (Fader, Hardie & Lee 2005) or Pareto/NBD (Schmittlein, Morrison & Colombo 1987; both share the
  gamma purchase-rate mixing): a repeat buyer with ``x`` repeat purchases and age ``T`` has,
  if still active, a gamma posterior purchase rate with mean ``(r + x) / (alpha + T)`` per
  unit; the expected date is the as-of day plus one inter-purchase time at that rate,
  ``(alpha + T) / (r + x)`` units (the model's purchases are memoryless: the wait counts from
  the as-of day, whenever the last order was). Whether the customer is still active at all is
  the churn band's business, not the date's. Customers with a single order (x = 0) get no
  date: one order says nothing about a rhythm (they are the new-customer model's).
* **Churn-risk band** (:func:`churn_bands`): ``low`` / ``medium`` / ``high`` from the churn risk
  (a published churn model's probability where there is one, else ``1 - P(alive)`` of the
  BG/NBD model), cut at two thresholds (default :data:`DEFAULT_THRESHOLDS`: below 0.3 low, from
  0.7 high). The thresholds are a dataset setting (:func:`band_thresholds` /
  :func:`set_band_thresholds`, stored in ``dataset_settings``) shown and edited on the Value page.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from analytics.summary import TIME_UNITS
from analytics.warehouse import Warehouse

DEFAULT_THRESHOLDS = (0.3, 0.7)
BANDS = ("low", "medium", "high")
SETTING_KEY = "churn_band_thresholds"
COLUMNS = ("next_order_date", "days_to_next_order", "churn_band")


class LifecycleError(ValueError):
    """Bad thresholds or inputs (message is user-facing)."""


def check_thresholds(thresholds) -> tuple[float, float]:
    """Two increasing thresholds strictly between 0 and 1 (LifecycleError in words otherwise)."""
    try:
        lo, hi = (float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise LifecycleError("churn band thresholds are two numbers between 0 and 1, e.g. 0.3 and 0.7") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or not 0 < lo < hi < 1:
        raise LifecycleError(f"churn band thresholds must satisfy 0 < low < high < 1, got {lo:g} and {hi:g}")
    return lo, hi


def band_thresholds(wh: Warehouse, dataset: str) -> tuple[float, float]:
    """The dataset's churn band thresholds (its setting, else :data:`DEFAULT_THRESHOLDS`)."""
    row = wh.cursor().execute("SELECT value FROM dataset_settings WHERE dataset = ? AND key = ?",
                              [dataset, SETTING_KEY]).fetchone()
    if row and row[0]:
        try:
            return check_thresholds(json.loads(row[0]))
        except (LifecycleError, ValueError):
            pass
    return DEFAULT_THRESHOLDS


def set_band_thresholds(wh: Warehouse, dataset: str, thresholds) -> tuple[float, float]:
    """Store the dataset's thresholds (validated); None goes back to the defaults."""
    wh.require_dataset(dataset)
    value = None if thresholds is None else check_thresholds(thresholds)
    with wh.transaction() as tx:
        tx.execute("DELETE FROM dataset_settings WHERE dataset = ? AND key = ?", [dataset, SETTING_KEY])
        if value is not None:
            tx.execute("INSERT INTO dataset_settings (dataset, key, value) VALUES (?, ?, ?)",
                       [dataset, SETTING_KEY, json.dumps(list(value))])
    return value or DEFAULT_THRESHOLDS


def churn_bands(churn_risk, thresholds=DEFAULT_THRESHOLDS) -> np.ndarray:
    """``low`` / ``medium`` / ``high`` per churn risk (missing risk -> None)."""
    lo, hi = check_thresholds(thresholds)
    risk = np.asarray(pd.to_numeric(pd.Series(churn_risk), errors="coerce"), dtype=float)
    out = np.where(risk >= hi, "high", np.where(risk >= lo, "medium", "low")).astype(object)
    out[np.isnan(risk)] = None
    return out


def next_order_days(bgnbd, frequency, T) -> np.ndarray:
    """Days from the as-of day to the expected next order of each customer (NaN for x = 0 or
    missing inputs): ``(alpha + T) / (r + x)`` in the model's unit, times the unit's days."""
    x = np.asarray(frequency, dtype=float)
    t = np.asarray(T, dtype=float)
    unit = getattr(bgnbd, "unit_", None) or "days"
    days = TIME_UNITS.get(unit, 1.0)
    r, alpha = float(bgnbd.params_["r"]), float(bgnbd.params_["alpha"])
    with np.errstate(invalid="ignore", divide="ignore"):
        wait = (alpha + t) / (r + x) * days
    wait[~(x >= 1) | ~np.isfinite(wait)] = np.nan
    return wait


def lifecycle_columns(frame: pd.DataFrame, as_of, *, bgnbd=None, churn_risk=None,
                      thresholds=DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """``next_order_date``, ``days_to_next_order`` and ``churn_band`` for every customer of
    ``frame`` (summary columns ``frequency`` and ``T`` in the summary's unit, as the BG/NBD
    model was fitted). ``churn_risk``: per-customer risk aligned with the frame (default: the
    frame's ``churn_probability`` where published, else ``1 - p_alive``). Only repeat buyers
    (frequency >= 1) get a date and a band; the others are missing."""
    day = pd.Timestamp(as_of).normalize()
    n = len(frame)
    freq = pd.to_numeric(frame["frequency"], errors="coerce").to_numpy(dtype=float) if "frequency" in frame else np.full(n, np.nan)
    repeat = freq >= 1
    out = pd.DataFrame(index=frame.index)
    if bgnbd is not None and "T" in frame:
        wait = next_order_days(bgnbd, freq, pd.to_numeric(frame["T"], errors="coerce").to_numpy(dtype=float))
    else:
        wait = np.full(n, np.nan)
    out["days_to_next_order"] = np.round(wait, 1)
    out["next_order_date"] = day + pd.to_timedelta(np.ceil(wait), unit="D")
    if churn_risk is None:
        churn_risk = np.full(n, np.nan)
        if "p_alive" in frame:
            churn_risk = 1.0 - pd.to_numeric(frame["p_alive"], errors="coerce").to_numpy(dtype=float)
        if "churn_probability" in frame:
            pub = pd.to_numeric(frame["churn_probability"], errors="coerce").to_numpy(dtype=float)
            churn_risk = np.where(np.isnan(pub), churn_risk, pub)
    risk = np.asarray(churn_risk, dtype=float)
    bands = churn_bands(np.where(repeat, risk, np.nan), thresholds)
    out["churn_band"] = pd.Series(bands, index=frame.index, dtype=object)
    return out


def describe_thresholds(thresholds=DEFAULT_THRESHOLDS) -> str:
    from analytics.formatting import percent

    lo, hi = check_thresholds(thresholds)
    lo_, hi_ = percent(lo, 0), percent(hi, 0)
    return (f"churn risk below {lo_}: low; {lo_} to {hi_}: medium; {hi_} and above: high "
            "(risk = a published churn model's probability, else 1 - P(alive) of BG/NBD)")
