"""Tables the pages show about reviews (no streamlit): the most negative recent reviews of valuable
customers and sentiment by segment. Texts are returned as written: pages show them escaped (in a
table cell, or through ``html.escape`` in markup)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.reviews.sentiment import NEGATIVE_BELOW, SentimentError
from analytics.dates import parse_day

#: the value columns that say who is valuable, in order of preference
VALUE_COLUMNS = ("expected_clv", "predicted_value", "clv", "net_revenue")
#: a review text longer than this is cut in the table (the whole text stays in the warehouse)
SHOWN_CHARS = 500


def value_column(frame: pd.DataFrame) -> str | None:
    return next((c for c in VALUE_COLUMNS if c in frame.columns), None)


def negative_reviews_of_valuable(wh, dataset: str, frame: pd.DataFrame, as_of, *, days: int = 90,
                                 top_share: float = 0.2, limit: int = 50) -> pd.DataFrame:
    """The most negative reviews written in the ``days`` up to ``as_of`` by customers in the top
    ``top_share`` of ``frame`` by value (:data:`VALUE_COLUMNS`, first present), most negative first
    (ties: newest first). Columns: customer_id, event_time, item_id, category, rating, sentiment,
    text (cut at :data:`SHOWN_CHARS`), value, value_column."""
    day = parse_day(as_of, "the as-of date", SentimentError)
    if not 0 < float(top_share) <= 1:
        raise SentimentError("the share of valuable customers must be between 0 and 1")
    col = value_column(frame)
    cols = ["customer_id", "event_time", "item_id", "category", "rating", "sentiment", "text", "value"]
    if col is None or frame.empty:
        return pd.DataFrame(columns=cols)
    value = pd.to_numeric(frame[col], errors="coerce").fillna(0.0)
    n_top = max(1, int(np.ceil(len(value) * float(top_share))))
    top = value.sort_values(ascending=False, kind="stable").iloc[:n_top]
    top = top[top > 0]
    if top.empty:
        return pd.DataFrame(columns=cols)
    end = day + pd.Timedelta(days=1)
    cur = wh.cursor()
    ids = pd.DataFrame({"customer_id": top.index.astype(str)})
    cur.register("_vs_top", ids)
    try:
        df = cur.execute(
            "SELECT r.customer_id, r.event_time, r.item_id, r.category, r.rating, r.sentiment, "
            "substr(r.text, 1, ?) AS text FROM review_sentiment r JOIN _vs_top t USING (customer_id) "
            "WHERE r.dataset = ? AND r.sentiment < ? AND r.event_time >= ? AND r.event_time < ? "
            "ORDER BY r.sentiment, r.event_time DESC, r.customer_id LIMIT ?",
            [SHOWN_CHARS, dataset, NEGATIVE_BELOW, (end - pd.Timedelta(days=int(days))).to_pydatetime(),
             end.to_pydatetime(), int(limit)]).df()
    finally:
        cur.unregister("_vs_top")
    df["value"] = top.reindex(df["customer_id"].astype(str)).to_numpy()
    df.attrs["value_column"] = col
    return df[cols]


#: what review sentiment can be grouped by, in the order pages offer them
SENTIMENT_GROUP_COLUMNS = ("rfm_segment", "cluster_name", "churn_band", "new_customer_segment", "country")


def sentiment_group_columns(frame: pd.DataFrame | None) -> list[str] | None:
    """The columns of ``frame`` (a customer frame) that :func:`sentiment_by_group` can group by (those
    with a value), or None when no customer has a scored review."""
    if frame is None or "sentiment_mean" not in frame.columns or frame["sentiment_mean"].notna().sum() == 0:
        return None
    return [c for c in SENTIMENT_GROUP_COLUMNS if c in frame.columns and frame[c].notna().any()]


def sentiment_by_group(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per value of ``column`` (an RFM segment, a cluster...): customers, how many wrote a scored
    review, their mean sentiment and the share of those whose latest review is negative."""
    if column not in frame.columns or "sentiment_mean" not in frame.columns:
        return pd.DataFrame(columns=["customers", "reviewers", "sentiment_mean", "latest_negative_share"])
    g = frame.groupby(frame[column].astype(object).where(frame[column].notna(), "(none)"), sort=False)
    reviewed = frame["sentiment_mean"].notna()
    out = pd.DataFrame({
        "customers": g.size(),
        "reviewers": reviewed.groupby(frame[column].astype(object).where(frame[column].notna(), "(none)")).sum(),
        "sentiment_mean": g["sentiment_mean"].mean(),
        "latest_negative_share": (frame["sentiment_latest"] < NEGATIVE_BELOW).where(reviewed).groupby(
            frame[column].astype(object).where(frame[column].notna(), "(none)")).mean(),
    })
    out.index.name = column
    return out.sort_values("customers", ascending=False)
