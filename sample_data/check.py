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


def _normalized_gini(actual: np.ndarray, pred: np.ndarray) -> float:
    def gini(a, p):
        a = a[np.argsort(-p, kind="stable")]
        c = np.cumsum(a) / a.sum()
        return (c.sum() - (len(a) + 1) / 2) / len(a)

    return float(gini(actual, pred) / gini(actual, actual))


def value_predictability(events: pd.DataFrame, calibration_end, holdout_end, seed: int = 0) -> dict:
    """Holdout-revenue RMSE and normalized Gini: LightGBM on behaviour features vs BG/NBD x Gamma-Gamma.

    Features and the BG/NBD fit use events before ``calibration_end`` only; the
    target is each customer's purchase revenue in [calibration_end, holdout_end).
    LightGBM (Tweedie) trains on a random half of the customers and both models
    are scored on the other half. A check that the generator plants signal beyond
    what BG/NBD can use (leading views, trends, persona-dependent spend), not a
    tuned model.
    """
    import lightgbm as lgb

    from analytics.clv_models import BetaGeoModel, GammaGammaModel

    cal_end, hold_end = pd.Timestamp(calibration_end), pd.Timestamp(holdout_end)
    cal = events[events["event_time"] < cal_end]
    hold = events[(events["event_time"] >= cal_end) & (events["event_time"] < hold_end)]
    custs = cal["customer_id"].unique()
    y = hold[hold.event_type == "purchase"].groupby("customer_id").revenue.sum().reindex(custs).fillna(0).to_numpy()

    pur = cal[cal.event_type == "purchase"]
    orders = pur.groupby(["customer_id", "order_id"]).agg(t=("event_time", "min"), v=("revenue", "sum")).reset_index()
    orders["day"] = orders.t.dt.floor("D")
    daily = orders.groupby(["customer_id", "day"]).v.sum().reset_index()
    g = daily.groupby("customer_id")
    first, last, n = g.day.min(), g.day.max(), g.size()
    mon = daily[daily.groupby("customer_id").cumcount() > 0].groupby("customer_id").v.mean()
    s = pd.DataFrame({"x": n - 1, "tx": (last - first).dt.days / 7, "T": (cal_end - first).dt.days / 7})
    s["m"] = mon.reindex(s.index).fillna(0)
    try:
        bg = BetaGeoModel(random_state=seed).fit(s.x, s.tx, s["T"], unit="weeks")
    except ValueError:  # the MLE can run off to a, b -> infinity (homogeneous dropout); as the backtest does
        bg = BetaGeoModel(penalizer=0.001, random_state=seed).fit(s.x, s.tx, s["T"], unit="weeks")
    gg = GammaGammaModel(random_state=seed).fit(s.x[s.x > 0], s.m[s.x > 0])
    weeks = (hold_end - cal_end).days / 7
    s["pred"] = np.asarray(bg.expected_purchases(weeks, s.x, s.tx, s["T"])) * np.asarray(gg.expected_spend(s.x, s.m))
    p_bg = s["pred"].reindex(custs).fillna(0).to_numpy()

    f = pd.DataFrame(index=custs)
    for t in ("view", "search", "cart", "purchase", "return", "review"):
        sub = cal[cal.event_type == t]
        f[f"n_{t}"] = sub.groupby("customer_id").size().reindex(custs).fillna(0)
        for days in (30, 90):
            recent = sub[sub.event_time >= cal_end - pd.Timedelta(days=days)]
            f[f"n_{t}_{days}d"] = recent.groupby("customer_id").size().reindex(custs).fillna(0)
    f["revenue"] = pur.groupby("customer_id").revenue.sum().reindex(custs).fillna(0)
    f["orders"] = n.reindex(custs).fillna(0)
    f["aov"] = f.revenue / f.orders.replace(0, np.nan)
    f["recency"] = (cal_end - last).dt.days.reindex(custs)
    f["tenure"] = (cal_end - cal.groupby("customer_id").event_time.min()).dt.days.reindex(custs)
    f["rating"] = cal[cal.event_type == "review"].groupby("customer_id").rating.mean().reindex(custs)

    test = np.random.default_rng(seed).random(len(custs)) < 0.5
    model = lgb.LGBMRegressor(objective="tweedie", tweedie_variance_power=1.3, n_estimators=400, learning_rate=0.03,
                              num_leaves=15, min_child_samples=20, subsample=0.8, subsample_freq=1,
                              colsample_bytree=0.8, random_state=seed, verbose=-1, n_jobs=1)
    model.fit(f[~test], y[~test])
    p_lgb = model.predict(f[test])
    a = y[test]

    def rmse(p):
        return float(np.sqrt(np.mean((a - p) ** 2)))

    return {
        "customers": int(len(custs)), "test_customers": int(test.sum()),
        "lightgbm": {"rmse": rmse(p_lgb), "normalized_gini": _normalized_gini(a, p_lgb)},
        "bgnbd_gg": {"rmse": rmse(p_bg[test]), "normalized_gini": _normalized_gini(a, p_bg[test])},
        "zero": {"rmse": rmse(np.zeros_like(a))},
    }
