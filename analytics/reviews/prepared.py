"""What the preparation step computes for reviews and new customers (called by analytics.prepare):

* :func:`prepare_reviews`: score the reviews (unless the current data's scores are stored) and save
  the ready-made segments; runs before the customer scores, whose frame reads the sentiment;
* :func:`new_customer_table`: the first-order model's value and group of every new customer and
  the CLV that replaces the formula's annualisation for them (stored per data version);
* :func:`with_customer_columns`: a prepared customer frame with the new-customer columns (``clv``
  from the first-order model for new customers, ``clv_source``), the expected next order date and
  the churn band (thresholds read at call time: a threshold edit needs no new preparation).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

NEW_COLUMNS = ("first_order_value", "new_customer_segment", "clv_first_order")


def prepare_reviews(wh, dataset: str) -> dict:
    from analytics.reviews.segments import ensure_ready_made_segments
    from analytics.reviews.sentiment import ensure_sentiment

    info = ensure_sentiment(wh, dataset)
    ensure_ready_made_segments(wh, dataset)
    return info


def new_customer_table(wh, dataset: str, as_of, *, window_days: int | None = None, k: int = 4) -> pd.DataFrame:
    """Indexed by the new customers' ids: ``first_order_value``, ``new_customer_segment`` and
    ``clv_first_order`` (the formula CLV at default parameters from the first-order value);
    ``attrs``: window, horizon and the reason when the model could not be fitted (empty table)."""
    from analytics.newcustomers import (
        DEFAULT_WINDOW_DAYS, annualised_clv, first_order_values, new_customer_segments,
    )

    fov = first_order_values(wh, dataset, as_of, window_days=window_days or DEFAULT_WINDOW_DAYS)
    out = pd.DataFrame(index=pd.Index(fov.values.index.astype(str), name="customer_id"))
    out["first_order_value"] = fov.values.to_numpy(dtype=float)
    seg = (new_customer_segments(fov.features, k=k)[0] if len(fov.features) >= k
           else pd.Series(dtype=object, name="new_customer_segment"))
    out["new_customer_segment"] = seg.reindex(out.index).astype(object).to_numpy()
    out["clv_first_order"] = annualised_clv(fov.values, fov.horizon_days).to_numpy(dtype=float)
    out.attrs = {"window_days": fov.window_days, "horizon_days": fov.horizon_days, "problem": fov.problem or ""}
    return out


def with_customer_columns(wh, dataset: str, frame: pd.DataFrame, new: pd.DataFrame | None, as_of=None, *,
                          bgnbd=None) -> pd.DataFrame:
    """``frame`` with the new-customer columns (its ``clv`` replaced for them, ``clv_source``), the
    next order date (with ``bgnbd``, or the frame's ``days_to_next_order``) and the churn band."""
    from analytics.lifecycle import band_thresholds, churn_bands, lifecycle_columns

    out = frame.copy(deep=False)
    day = as_of if as_of is not None else frame.attrs.get("as_of")
    if new is not None and len(new):
        aligned = new.reindex(out.index.astype(str))
        for c in ("first_order_value", "new_customer_segment"):
            out[c] = aligned[c].to_numpy()
        has = aligned["clv_first_order"].notna().to_numpy()
        if "clv" in out.columns:
            clv = pd.to_numeric(out["clv"], errors="coerce").to_numpy(dtype=float).copy()
            clv[has] = aligned["clv_first_order"].to_numpy(dtype=float)[has]
            out["clv"] = clv
        out["clv_source"] = np.where(has, "first-order model", "formula")
    thresholds = band_thresholds(wh, dataset)
    if "days_to_next_order" not in out.columns and day is not None and {"frequency", "T"} <= set(out.columns):
        life = lifecycle_columns(out, day, bgnbd=bgnbd)
        out["days_to_next_order"] = life["days_to_next_order"].to_numpy()
        out["next_order_date"] = life["next_order_date"].to_numpy()
    if "churn_risk" in out.columns or "p_alive" in out.columns:
        risk = (pd.to_numeric(out["churn_risk"], errors="coerce") if "churn_risk" in out.columns
                else 1 - pd.to_numeric(out["p_alive"], errors="coerce"))
        repeat = pd.to_numeric(out.get("frequency", pd.Series(np.nan, index=out.index)), errors="coerce") >= 1
        out["churn_band"] = pd.Series(churn_bands(risk.where(repeat), thresholds), index=out.index, dtype=object)
    return out
