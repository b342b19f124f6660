"""The per-customer columns of this area, joined onto a customer table in one call: review
sentiment (:mod:`analytics.reviews.features`), expected next order date and churn band
(:mod:`analytics.lifecycle`) and the first-order model's value of new customers
(:mod:`analytics.newcustomers`). Used by the scored-customers export and the customer frame."""
from __future__ import annotations

import pandas as pd

SENTIMENT_COLUMNS = ("sentiment_mean", "sentiment_negative_share", "sentiment_latest", "days_since_negative_review")
LIFECYCLE_COLUMNS = ("next_order_date", "days_to_next_order", "churn_band")


def sentiment_columns(wh, dataset: str, as_of, index: pd.Index) -> pd.DataFrame:
    """The sentiment columns for ``index`` (missing for customers without a scored review; all
    missing when the dataset's reviews were never scored)."""
    from analytics.reviews.features import customer_sentiment

    feats = customer_sentiment(wh, dataset, as_of)
    return feats.reindex(index.astype(str))[list(SENTIMENT_COLUMNS)].set_axis(index)


def add_customer_columns(wh, dataset: str, as_of, frame: pd.DataFrame, *, bgnbd=None, summary=None,
                         first_order: bool = False) -> pd.DataFrame:
    """``frame`` (indexed by customer id, or with a ``customer_id`` column) with the sentiment and
    lifecycle columns (and ``first_order_value`` with ``first_order``) added; columns it already
    has are kept. ``bgnbd``: the fitted BG/NBD model of the frame's summary (None: no dates);
    ``summary``: the customer summary (indexed by id) when the frame lacks ``frequency`` / ``T``."""
    from analytics.lifecycle import band_thresholds, lifecycle_columns

    by_column = "customer_id" in frame.columns and frame.index.name != "customer_id"
    work = frame.set_index("customer_id", drop=False) if by_column else frame
    if summary is not None and not {"frequency", "T"} <= set(work.columns):
        work = work.copy()
        for c in ("frequency", "T"):
            if c not in work.columns:
                work[c] = summary[c].reindex(work.index).to_numpy()
    extra = [sentiment_columns(wh, dataset, as_of, work.index),
             lifecycle_columns(work, as_of, bgnbd=bgnbd, thresholds=band_thresholds(wh, dataset))]
    if first_order:
        from analytics.newcustomers import first_order_values

        fov = first_order_values(wh, dataset, as_of)
        extra.append(fov.values.reindex(work.index.astype(str)).set_axis(work.index).to_frame("first_order_value"))
    out = frame.copy()
    for part in extra:
        for c in part.columns:
            if c not in out.columns:
                out[c] = part[c].to_numpy()
    return out


def model_sentiment_features(wh, dataset: str, cutoff, index: pd.Index) -> pd.DataFrame:
    """The sentiment columns as predictor features at ``cutoff`` (reviews written up to the end of
    that day only), for datasets whose reviews were scored; an empty frame (no columns) otherwise,
    so datasets without reviews keep the feature set they had. The scores are the stored ones: the
    text model learned what words mean from every rated review, not who churned, and only reviews
    written by the cut-off are read (bench/bench_sentiment_features.py compares with a model
    trained only on reviews before the calibration end)."""
    row = wh.cursor().execute("SELECT count(*) FROM sentiment_runs WHERE dataset = ? AND source IS NOT NULL",
                              [dataset]).fetchone()
    if not row or not row[0]:
        return pd.DataFrame(index=index)
    return sentiment_columns(wh, dataset, cutoff, index)
