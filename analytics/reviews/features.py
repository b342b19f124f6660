"""Sentiment per customer, item and category, as of an explicit day, from the stored review scores.

Per customer (:func:`customer_sentiment`), over the reviews written up to the end of the as-of day:

* ``sentiment_mean``: mean review sentiment (-1 .. 1);
* ``sentiment_negative_share``: share of the customer's scored reviews that are negative
  (sentiment below :data:`analytics.reviews.sentiment.NEGATIVE_BELOW`);
* ``sentiment_latest``: the latest review's sentiment;
* ``days_since_negative_review``: days from the last negative review to the as-of day (missing
  when the customer never wrote one);
* ``n_scored_reviews``: how many of the customer's reviews have a score.

Customers without a scored review are absent (their columns are missing in a frame, never 0:
no review is not a neutral review). Per item or category (:func:`item_sentiment`): mean
sentiment, share negative and the number of scored reviews.
"""
from __future__ import annotations

import pandas as pd

from analytics.dates import parse_day
from analytics.reviews.sentiment import NEGATIVE_BELOW, SentimentError
from analytics.warehouse import Warehouse

CUSTOMER_COLUMNS = ("sentiment_mean", "sentiment_negative_share", "sentiment_latest", "days_since_negative_review",
                    "n_scored_reviews")

_CUSTOMER_SQL = """
SELECT customer_id,
       avg(sentiment) AS sentiment_mean,
       avg(CASE WHEN sentiment < ? THEN 1.0 ELSE 0.0 END) AS sentiment_negative_share,
       arg_max(sentiment, event_time) AS sentiment_latest,
       date_diff('day', CAST(max(event_time) FILTER (WHERE sentiment < ?) AS DATE), CAST(? AS DATE))
           AS days_since_negative_review,
       count(*) AS n_scored_reviews
FROM review_sentiment
WHERE dataset = ? AND sentiment IS NOT NULL AND event_time < ?
GROUP BY customer_id
"""


def _end(as_of) -> tuple[pd.Timestamp, pd.Timestamp]:
    day = parse_day(as_of, "the as-of date", SentimentError)
    return day, day + pd.Timedelta(days=1)


def customer_sentiment(wh: Warehouse, dataset: str, as_of, *, reviews: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-customer sentiment columns (:data:`CUSTOMER_COLUMNS`) as of ``as_of``, indexed by
    customer id (customers with a scored review only). ``reviews``: scored reviews to use instead
    of the stored ones (columns customer_id, event_time, sentiment), e.g. a backtest's own."""
    day, end = _end(as_of)
    if reviews is not None:
        return _customer_sentiment_frame(reviews, day, end)
    df = wh.cursor().execute(_CUSTOMER_SQL, [NEGATIVE_BELOW, NEGATIVE_BELOW, day.date(), dataset,
                                             end.to_pydatetime()]).df()
    out = df.set_index("customer_id")
    out.index = out.index.astype(str)
    out.index.name = "customer_id"
    out["days_since_negative_review"] = out["days_since_negative_review"].astype(float)
    out["n_scored_reviews"] = out["n_scored_reviews"].astype("int64")
    return out[list(CUSTOMER_COLUMNS)]


def _customer_sentiment_frame(reviews: pd.DataFrame, day: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    r = reviews[(pd.to_datetime(reviews["event_time"]) < end) & reviews["sentiment"].notna()]
    if r.empty:
        return pd.DataFrame(columns=list(CUSTOMER_COLUMNS), index=pd.Index([], name="customer_id", dtype=object))
    r = r.sort_values("event_time", kind="stable")
    neg = r["sentiment"] < NEGATIVE_BELOW
    g = r.groupby(r["customer_id"].astype(str), sort=True)
    out = pd.DataFrame({
        "sentiment_mean": g["sentiment"].mean(),
        "sentiment_negative_share": neg.groupby(r["customer_id"].astype(str)).mean().astype(float),
        "sentiment_latest": g["sentiment"].last(),
    })
    last_neg = pd.to_datetime(r.loc[neg, "event_time"]).dt.normalize().groupby(r.loc[neg, "customer_id"].astype(str)).max()
    out["days_since_negative_review"] = ((day - last_neg).dt.days.astype(float)).reindex(out.index)
    out["n_scored_reviews"] = g.size().astype("int64")
    out.index.name = "customer_id"
    return out[list(CUSTOMER_COLUMNS)]


def item_sentiment(wh: Warehouse, dataset: str, as_of=None, by: str = "item_id", *, min_reviews: int = 1) -> pd.DataFrame:
    """Mean sentiment, negative share and review count per item (``by="item_id"``) or category
    (``by="category"``), over reviews up to the end of ``as_of`` (all reviews when None), most
    reviewed first."""
    if by not in ("item_id", "category"):
        raise SentimentError("item sentiment is by item_id or category")
    sql = (f"SELECT {by} AS key, avg(sentiment) AS sentiment_mean, "
           "avg(CASE WHEN sentiment < ? THEN 1.0 ELSE 0.0 END) AS sentiment_negative_share, count(*) AS n_reviews "
           f"FROM review_sentiment WHERE dataset = ? AND sentiment IS NOT NULL AND {by} IS NOT NULL")
    params: list = [NEGATIVE_BELOW, dataset]
    if as_of is not None:
        _, end = _end(as_of)
        sql += " AND event_time < ?"
        params.append(end.to_pydatetime())
    sql += " GROUP BY 1 HAVING count(*) >= ? ORDER BY n_reviews DESC, key"
    params.append(int(min_reviews))
    df = wh.cursor().execute(sql, params).df().rename(columns={"key": by}).set_index(by)
    df["n_reviews"] = df["n_reviews"].astype("int64")
    return df
