"""Quick self-checks of a generated sample: is the planted truth learnable?

``customer_features`` builds a per-customer table (RFM values, behaviour counts
by type, average rating, tenure) with pandas from an events file, and
``persona_ari`` clusters it with k-means (log1p then standard scaling, k = the
number of personas) and scores the recovery of the planted personas with the
adjusted Rand index. This is the generator's own sanity check, independent of
the app's segmentation code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = (
    "recency_days", "frequency", "monetary", "revenue", "tenure_days",
    "n_view", "n_search", "n_cart", "n_purchase", "n_return", "n_review", "avg_rating",
)


def read_events(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"customer_id": str, "order_id": str, "item_id": str, "text": str},
                       parse_dates=["event_time"])


def customer_features(events: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Per-customer features at ``as_of`` (exclusive) from events in the sample layout."""
    as_of = pd.Timestamp(as_of)
    ev = events[events["event_time"] < as_of]
    g = ev.groupby("customer_id")
    counts = ev.pivot_table(index="customer_id", columns="event_type", values="event_time",
                            aggfunc="count", fill_value=0)
    out = pd.DataFrame(index=counts.index)
    for t in ("view", "search", "cart", "purchase", "return", "review"):
        out[f"n_{t}"] = counts[t] if t in counts else 0
    pur = ev[ev["event_type"] == "purchase"]
    orders = pur.groupby(["customer_id", "order_id"]).agg(t=("event_time", "min"), v=("revenue", "sum"))
    og = orders.groupby(level=0)
    out["frequency"] = og.size().reindex(out.index).fillna(0)
    out["revenue"] = og["v"].sum().reindex(out.index).fillna(0)
    out["monetary"] = (out["revenue"] / out["frequency"].replace(0, np.nan)).fillna(0)
    first = g["event_time"].min().reindex(out.index)
    last_pur = og["t"].max().reindex(out.index)
    out["tenure_days"] = (as_of - first).dt.total_seconds() / 86400
    # no purchase yet: recency = tenure (as if the clock started at the first visit)
    out["recency_days"] = ((as_of - last_pur.fillna(first)).dt.total_seconds() / 86400)
    out["avg_rating"] = ev[ev["event_type"] == "review"].groupby("customer_id")["rating"].mean() \
        .reindex(out.index).fillna(0)
    return out[list(FEATURES)]


def persona_ari(events: pd.DataFrame, truth: pd.DataFrame, as_of, k: int | None = None,
                seed: int = 0) -> float:
    """Adjusted Rand index of k-means clusters (log1p + standard scaling) against planted personas."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    feats = customer_features(events, as_of)
    x = StandardScaler().fit_transform(np.log1p(feats.to_numpy(dtype=float)))
    truth = truth.set_index("customer_id").loc[feats.index]
    k = k or truth["persona"].nunique()
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return float(adjusted_rand_score(truth["persona"], labels))
