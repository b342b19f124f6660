"""Customer clustering with help choosing k, readable profiles and automatic names.

Works on a customer feature DataFrame (one row per customer, indexed by
customer id), normally ``analytics.summary.customer_summary`` joined with
scores. :func:`add_derived_features` adds a few ratios that separate typical
customer groups better than raw totals (``time_since_purchase``,
``avg_order_value``, ``return_rate``, ``views_per_order``).

``CustomerClustering`` follows scikit-learn's estimator contract. Preprocessing
(documented behaviour, also shown to users):

* **missing values** (NaN, +-inf) are filled with the feature's median over the
  fitted customers (``fill_values_``); a feature missing for every customer is
  refused;
* **scaling**: ``log1p_standard`` (sign(x)·log(1+|x|), then mean 0 / sd 1; the
  default, because money and counts are heavily skewed), ``standard`` or
  ``robust`` (median / interquartile range);
* **a feature with no variance** carries no information: it is **dropped with a
  ClusteringWarning** (listed in ``dropped_features_``) and the fit goes on with
  the others; only when no feature varies at all is the fit refused;
* **too few customers**: k clusters need at least k distinct customers (after
  scaling) and at least ``MIN_PER_CLUSTER`` customers per cluster on average.

Large inputs: k-means and Gaussian mixtures are fitted on a seeded sample of at
most ``fit_sample_size`` customers (100k by default) and then every customer is
assigned to its nearest centre / most likely component (mini-batch k-means sees
all rows). Clustering runs single-threaded by default (``CLUSTER_THREADS``).

Clusters are numbered by mean revenue (``revenue_column``), highest first, so
the numbering is stable across runs with the same seed.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from analytics.formatting import percent

SCALINGS = ("log1p_standard", "standard", "robust")
ALGORITHMS = ("kmeans", "minibatch_kmeans", "gmm")
MIN_PER_CLUSTER = 3
MAX_CLUSTERS = 50

#: Features used when none are chosen (all come from ``customer_summary`` via
#: :func:`add_derived_features`).
DEFAULT_FEATURES: tuple[str, ...] = (
    "net_revenue",
    "n_orders",
    "time_since_purchase",
    "tenure",
    "n_views",
    "n_searches",
    "avg_order_value",
    "avg_rating",
)

#: Readable labels for known features (charts and messages).
FEATURE_LABELS: dict[str, str] = {
    "net_revenue": "Net revenue",
    "total_revenue": "Revenue",
    "return_revenue": "Refunds",
    "monetary_value": "Avg repeat purchase value",
    "frequency": "Repeat purchases",
    "recency": "Recency (first to last purchase)",
    "T": "Age (since first purchase)",
    "n_orders": "Orders",
    "n_views": "Views",
    "n_searches": "Searches",
    "n_carts": "Cart adds",
    "n_purchases": "Purchase events",
    "n_returns": "Returns",
    "n_reviews": "Reviews",
    "avg_rating": "Avg rating",
    "tenure": "Tenure",
    "avg_gap": "Avg gap between orders",
    "time_since_purchase": "Time since last purchase",
    "avg_order_value": "Avg order value",
    "return_rate": "Return rate",
    "views_per_order": "Views per order",
    "clv": "CLV",
    "probability_alive": "Probability alive",
    "expected_purchases": "Expected purchases",
    "behaviour_score": "Behaviour score",
    "rfm_score": "RFM score",
}

# Naming: feature -> (aspect, direction). An aspect's score for a cluster is the
# mean over its features of direction * (cluster centre in scaled units).
_ASPECT_OF: dict[str, tuple[str, int]] = {
    "net_revenue": ("value", 1), "total_revenue": ("value", 1), "clv": ("value", 1),
    "monetary_value": ("value", 1), "expected_spend": ("value", 1), "rfm_score": ("value", 1),
    "n_orders": ("frequency", 1), "frequency": ("frequency", 1), "n_purchases": ("frequency", 1),
    "expected_purchases": ("frequency", 1), "avg_gap": ("frequency", -1),
    "time_since_purchase": ("recency", -1), "probability_alive": ("recency", 1),
    "tenure": ("tenure", 1), "T": ("tenure", 1),
    "n_views": ("browsing", 1), "n_searches": ("browsing", 1), "n_carts": ("browsing", 1),
    "views_per_order": ("browsing", 1), "behaviour_score": ("browsing", 1),
    "avg_order_value": ("basket", 1),
    "n_returns": ("returns", 1), "return_revenue": ("returns", 1), "return_rate": ("returns", 1),
    "avg_rating": ("rating", 1),
    "n_reviews": ("reviews", 1),
}
# aspect -> (word when high, word when low); order = order of words in a name
_ASPECT_WORDS: dict[str, tuple[str, str]] = {
    "frequency": ("frequent", "infrequent"),
    "recency": ("recent", "lapsed"),
    "tenure": ("long-standing", "new"),
    "browsing": ("browsers", "few visits"),
    "basket": ("big baskets", "small baskets"),
    "returns": ("returners", "few returns"),
    "rating": ("satisfied", "unhappy"),
    "reviews": ("reviewers", "no reviews"),
}
_ASPECT_ORDER = ("value", "frequency", "recency", "tenure", "browsing", "basket", "returns",
                 "rating", "reviews")
# aspect -> (word when more, word when less): what tells two otherwise alike clusters apart
_COMPARATIVE: dict[str, tuple[str, str]] = {
    "value": ("more valuable", "less valuable"),
    "frequency": ("more frequent", "less frequent"),
    "recency": ("more recent", "less recent"),
    "tenure": ("longer-standing", "newer"),
    "browsing": ("more browsing", "less browsing"),
    "basket": ("bigger baskets", "smaller baskets"),
    "returns": ("more returns", "fewer returns"),
    "rating": ("happier", "less happy"),
    "reviews": ("more reviews", "fewer reviews"),
}
CONTRAST_MIN = 0.05  # sd units: below this two clusters do not differ enough to say how
NAME_THRESHOLD = 0.5  # |aspect score| (in sd units) needed for a word in the name
_CORE_ASPECTS = ("frequency", "recency")  # the RFM traits, preferred in names ...
_CORE_WEIGHT = 1.5                        # ... by weighting their score when ranking traits
_PURCHASE_ASPECTS = ("recency", "basket", "returns")  # meaningless for non-buyers


class ClusteringError(ValueError):
    """A clustering request the user can fix (message is one clear line)."""


class ClusteringWarning(UserWarning):
    """Something was adjusted (e.g. a constant feature dropped); the fit went on."""


# ----------------------------------------------------------------- features
def add_derived_features(frame: pd.DataFrame, *, copy: bool = True) -> pd.DataFrame:
    """A copy of a customer summary with the derived clustering features added.

    * ``time_since_purchase``: ``T - recency`` (time from the last purchase to
      the as-of day, in the summary's unit); for customers who never purchased,
      their ``tenure`` (they have not bought for as long as we know them);
    * ``avg_order_value``: ``total_revenue / n_orders`` (NaN without orders, so
      clustering fills in the median instead of dragging the average to 0);
    * ``return_rate``: ``return_revenue / total_revenue`` (0 without revenue);
    * ``views_per_order``: ``n_views / max(n_orders, 1)``.

    Columns already present are left as they are; a derived column whose inputs
    are missing is not added.

    ``copy=False``: the columns are added to ``frame`` itself, which is returned (for a
    caller that owns a freshly built summary: no copy of a million-row frame).
    """
    out = frame.copy() if copy else frame
    cols = set(out.columns)

    def has(*names: str) -> bool:
        return all(c in cols for c in names)

    def num(name: str) -> np.ndarray:  # plain float64 NumPy (fast; no index alignment)
        return pd.to_numeric(out[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    def zero_nan(a: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(a), 0.0, a)

    if "time_since_purchase" not in cols and has("T", "recency"):
        tsp = num("T") - num("recency")
        if "tenure" in cols:
            tsp = np.where(np.isnan(tsp), num("tenure"), tsp)
        out["time_since_purchase"] = tsp
    if "avg_order_value" not in cols and has("total_revenue", "n_orders"):
        orders, rev = zero_nan(num("n_orders")), zero_nan(num("total_revenue"))
        with np.errstate(divide="ignore", invalid="ignore"):
            out["avg_order_value"] = np.where(orders > 0, rev / np.where(orders > 0, orders, 1.0), np.nan)
    if "return_rate" not in cols and has("return_revenue", "total_revenue"):
        rev, ret = zero_nan(num("total_revenue")), zero_nan(num("return_revenue"))
        out["return_rate"] = np.where(rev > 0, ret / np.where(rev > 0, rev, 1.0), 0.0)
    if "views_per_order" not in cols and has("n_views", "n_orders"):
        orders, views = zero_nan(num("n_orders")), zero_nan(num("n_views"))
        out["views_per_order"] = views / np.maximum(orders, 1.0)
    return out


_DERIVED = ("time_since_purchase", "avg_order_value", "return_rate", "views_per_order")


def feature_label(name: str) -> str:
    """A feature in words: this module's labels, else the customer table's column titles (so that
    ``clv_bgnbd`` reads "CLV (BG/NBD model)", not "Clv bgnbd")."""
    if name in FEATURE_LABELS:
        return FEATURE_LABELS[name]
    from analytics import formatting

    return formatting.column_title(name)


def available_features(frame: pd.DataFrame) -> list[str]:
    """Numeric columns of ``frame`` (plus derivable ones) that can be clustered on."""
    derived = add_derived_features(frame.head(0))
    return [c for c in derived.columns
            if pd.api.types.is_numeric_dtype(derived[c]) and not pd.api.types.is_bool_dtype(derived[c])]


# ----------------------------------------------------------------- preprocessing
@dataclass
class _Prep:
    features: list[str]            # kept features, in order
    dropped: list[str]             # constant features dropped
    fill: np.ndarray               # per kept feature
    center: np.ndarray
    scale: np.ndarray
    scaling: str

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        return _numeric_matrix(frame, self.features)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.transform_raw(self.raw(frame))

    def transform_raw(self, x: np.ndarray) -> np.ndarray:
        """Fill, (signed log1p), standardize; float32, computed in place."""
        x = np.asarray(x, dtype=np.float64)
        missing = np.isnan(x)
        if missing.any():
            x = np.where(missing, self.fill, x)
        x = x.astype(np.float32)
        if self.scaling == "log1p_standard":
            sign = np.sign(x)
            np.abs(x, out=x)
            np.log1p(x, out=x)
            x *= sign
        x -= self.center.astype(np.float32)
        x /= self.scale.astype(np.float32)
        return x


def _resolve_features(frame: pd.DataFrame, features: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    if not isinstance(frame, pd.DataFrame):
        raise ClusteringError("the customer features must be a pandas DataFrame")
    if features is None:
        features = list(DEFAULT_FEATURES)
    elif isinstance(features, str):
        features = [features]
    features = list(dict.fromkeys(features))
    if not features:
        raise ClusteringError("choose at least one feature to cluster on")
    if any(f in _DERIVED and f not in frame.columns for f in features):
        frame = add_derived_features(frame)
    unknown = [f for f in features if f not in frame.columns]
    if unknown:
        avail = ", ".join(available_features(frame)) or "none"
        raise ClusteringError(
            f"unknown feature{'s' if len(unknown) > 1 else ''}: {', '.join(map(str, unknown))} "
            f"(available: {avail})"
        )
    bad = [f for f in features
           if not pd.api.types.is_numeric_dtype(frame[f]) or pd.api.types.is_bool_dtype(frame[f])]
    if bad:
        raise ClusteringError(f"feature{'s' if len(bad) > 1 else ''} not numeric: {', '.join(bad)}")
    return frame, features


def _numeric_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    x = np.array(frame[features].to_numpy(dtype=np.float64, na_value=np.nan), copy=True)
    x[~np.isfinite(x)] = np.nan
    return x


def _fit_prep(frame: pd.DataFrame, features: Sequence[str] | None,
              scaling: str) -> tuple[_Prep, pd.DataFrame, np.ndarray]:
    """Validate and learn the preprocessing; returns it, the frame (with derived
    features) and the scaled float32 matrix of the kept features."""
    if scaling not in SCALINGS:
        raise ClusteringError(f"unknown scaling {scaling!r} (choose one of: {', '.join(SCALINGS)})")
    frame, feats = _resolve_features(frame, features)
    if len(frame) == 0:
        raise ClusteringError("there are no customers to cluster")
    x = _numeric_matrix(frame, feats)
    all_missing = [f for f, col in zip(feats, x.T) if np.isnan(col).all()]
    if all_missing:
        raise ClusteringError(
            f"feature{'s' if len(all_missing) > 1 else ''} missing for every customer: "
            f"{', '.join(all_missing)}"
        )
    fill = np.nanmedian(x, axis=0)
    x = np.where(np.isnan(x), fill, x)
    if scaling == "log1p_standard":
        x = np.sign(x) * np.log1p(np.abs(x))
    if scaling == "robust":
        center = np.median(x, axis=0)
        q75, q25 = np.percentile(x, [75, 25], axis=0)
        scale = q75 - q25
        sd = x.std(axis=0)
        scale = np.where(scale > 0, scale, sd)  # IQR 0 (mostly one value): fall back to sd
    else:
        center = x.mean(axis=0)
        scale = x.std(axis=0)
    const = ~(scale > 1e-12 * np.maximum(1.0, np.abs(center)))
    dropped = [f for f, c in zip(feats, const) if c]
    if dropped and len(dropped) == len(feats):
        raise ClusteringError(
            "no chosen feature varies between customers "
            f"({', '.join(dropped)} {'is' if len(dropped) == 1 else 'are'} the same for everyone)"
        )
    if dropped:
        warnings.warn(
            f"dropped feature{'s' if len(dropped) > 1 else ''} with no variance: {', '.join(dropped)}",
            ClusteringWarning, stacklevel=3,
        )
    keep = ~const
    prep = _Prep(
        features=[f for f, k in zip(feats, keep) if k], dropped=dropped, fill=fill[keep],
        center=center[keep], scale=scale[keep], scaling=scaling,
    )
    scaled = ((x[:, keep] - prep.center) / prep.scale).astype(np.float32)
    return prep, frame, scaled


def _check_k(n_clusters) -> int:
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise ClusteringError(f"the number of clusters must be a whole number, got {n_clusters!r}")
    k = int(n_clusters)
    if not 2 <= k <= MAX_CLUSTERS:
        raise ClusteringError(f"the number of clusters must be between 2 and {MAX_CLUSTERS}, got {k}")
    return k


def _check_enough(x: np.ndarray, k: int) -> None:
    n = len(x)
    need = MIN_PER_CLUSTER * k
    if n < MIN_PER_CLUSTER * 2:  # not even the smallest k fits: a smaller k is no way out
        raise ClusteringError(
            f"too few customers to cluster: {n} customers, need at least {MIN_PER_CLUSTER * 2} "
            f"({MIN_PER_CLUSTER} in each of at least 2 clusters); load more data or use a rule-based segment"
        )
    if n < need:
        raise ClusteringError(
            f"too few customers for {k} clusters: {n} customers, need at least {need} "
            f"({MIN_PER_CLUSTER} per cluster); choose k = {n // MIN_PER_CLUSTER} or less, or more data"
        )
    distinct = len(np.unique(x[:5000], axis=0))  # a prefix usually settles it cheaply
    if distinct < k and n > 5000:
        distinct = len(np.unique(x, axis=0))
    if distinct < k:
        raise ClusteringError(
            f"too few different customers for {k} clusters: only {distinct} distinct feature "
            "combinations; choose a smaller k or other features"
        )


def _sample_idx(n: int, size: int | None, random_state) -> np.ndarray | None:
    if size is None or n <= size:
        return None
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=int(size), replace=False))


def _make_estimator(algorithm: str, k: int, random_state, n_init, max_iter: int, covariance_type: str):
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.mixture import GaussianMixture

    if algorithm == "kmeans":
        return KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=random_state)
    if algorithm == "minibatch_kmeans":
        return MiniBatchKMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, batch_size=4096,
                               random_state=random_state)
    return GaussianMixture(n_components=k, covariance_type=covariance_type, n_init=n_init,
                           max_iter=max_iter, random_state=random_state, reg_covar=1e-4)


def _fit_raw(algorithm: str, x: np.ndarray, k: int, random_state, n_init, max_iter: int,
             covariance_type: str, fit_sample_size: int | None):
    """Fit on (a sample of) x; returns (estimator, raw labels for all of x)."""
    est = _make_estimator(algorithm, k, random_state, n_init, max_iter, covariance_type)
    idx = None if algorithm == "minibatch_kmeans" else _sample_idx(len(x), fit_sample_size, random_state)
    xs = x if idx is None else x[idx]
    if algorithm != "minibatch_kmeans":
        # float64 for the (sampled) fit: scikit-learn's k-means++ upcasts float32 chunk by
        # chunk, which is slower than fitting float64 outright (measured ~25% on 100k rows)
        xs = xs.astype(np.float64)
    with warnings.catch_warnings(), _threads(len(xs)):
        # duplicate points can leave fewer distinct clusters than k; handled below
        warnings.simplefilter("ignore", category=UserWarning)
        try:
            est.fit(xs)
        except Exception as exc:  # numerical trouble in sklearn (e.g. GMM covariance)
            raise ClusteringError(f"{algorithm} could not fit {k} clusters on these features: {exc}") from exc
    with _threads(len(x)):
        labels = _predict_raw(est, x)
    return est, labels


def _predict_raw(est, x: np.ndarray) -> np.ndarray:
    """``est.predict`` with ``x`` in the dtype the estimator was fitted in (k-means' Cython
    kernels need the centres' dtype)."""
    centres = getattr(est, "cluster_centers_", None)
    dtype = centres.dtype if centres is not None else np.float64
    return est.predict(np.asarray(x, dtype=dtype))


#: OpenMP/BLAS threads for clustering (env ``VALUESCOPE_CLUSTER_THREADS``; 0 = library default).
#: One by default: scikit-learn's k-means threads spin-wait, and on a shared 2-core machine
#: (Streamlit serving other sessions, other processes) two threads measured 6x *slower*
#: than one (100k x 8 k-means: 7.1 s vs 1.2 s).
CLUSTER_THREADS = int(os.environ.get("VALUESCOPE_CLUSTER_THREADS", "1") or 1)


def _threads(n_rows: int = 0):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(CLUSTER_THREADS) if CLUSTER_THREADS > 0 else contextlib.nullcontext()


def _limited(fn):
    """Run ``fn`` under the clustering thread limit (see ``CLUSTER_THREADS``)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _threads():
            return fn(*args, **kwargs)
    return wrapper


# ----------------------------------------------------------------- estimator
class CustomerClustering:
    """Cluster customers on standardized features and describe the clusters.

    Parameters
    ----------
    features : list of str or None
        Columns of the frame to cluster on (``DEFAULT_FEATURES`` when None);
        derived features (see :func:`add_derived_features`) are computed when
        absent.
    scaling : {'log1p_standard', 'standard', 'robust'}
    algorithm : {'kmeans', 'minibatch_kmeans', 'gmm'}
    n_clusters : int, 2..50
    random_state : int
    n_init : int
        Restarts (best kept).
    max_iter : int
    fit_sample_size : int or None
        Fit k-means / GMM on a seeded sample of this many customers, then
        assign everyone (None: fit on all).
    covariance_type : str
        Gaussian mixture covariance ('full', 'diag', 'tied', 'spherical').
    revenue_column : str
        Column used for the revenue share and the cluster numbering.

    Attributes (after ``fit``)
    --------------------------
    features_ : kept features; dropped_features_ : constant features dropped;
    labels_ : Series of cluster numbers indexed like the frame; names_ : list of
    cluster names (index = cluster number); cluster_profiles_ : per cluster
    name, size, size_share, revenue, revenue_share, the mean of each feature
    and ``<feature>_vs_all`` (that mean divided by the all-customer mean);
    relative_profiles_ : the ``_vs_all`` ratios as a cluster x feature table; scaled_profiles_ : cluster centres in
    scaled (sd) units; center_, scale_, fill_values_ : preprocessing;
    estimator_ : the fitted scikit-learn model; inertia_ : within-cluster sum
    of squares over all customers (scaled units).
    """

    def __init__(self, features=None, scaling="log1p_standard", algorithm="kmeans", n_clusters=6,
                 random_state=0, n_init=3, max_iter=300, fit_sample_size=100_000,
                 covariance_type="full", revenue_column="net_revenue"):
        self.features = features
        self.scaling = scaling
        self.algorithm = algorithm
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.n_init = n_init
        self.max_iter = max_iter
        self.fit_sample_size = fit_sample_size
        self.covariance_type = covariance_type
        self.revenue_column = revenue_column

    # -- sklearn-style helpers
    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in (
            "features", "scaling", "algorithm", "n_clusters", "random_state", "n_init", "max_iter",
            "fit_sample_size", "covariance_type", "revenue_column")}

    def set_params(self, **params) -> "CustomerClustering":
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ClusteringError(f"unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    def _check_params(self) -> int:
        if self.algorithm not in ALGORITHMS:
            raise ClusteringError(
                f"unknown algorithm {self.algorithm!r} (choose one of: {', '.join(ALGORITHMS)})")
        if self.covariance_type not in ("full", "diag", "tied", "spherical"):
            raise ClusteringError(f"unknown covariance type {self.covariance_type!r}")
        if not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise ClusteringError("n_init must be a positive whole number")
        if self.fit_sample_size is not None and int(self.fit_sample_size) < 100:
            raise ClusteringError("fit_sample_size must be at least 100 (or None for all customers)")
        return _check_k(self.n_clusters)

    # -- fit / predict
    @_limited
    def fit(self, frame: pd.DataFrame, y=None) -> "CustomerClustering":
        k = self._check_params()
        prep, frame, x = _fit_prep(frame, self.features, self.scaling)
        _check_enough(x, k)
        est, raw = _fit_raw(self.algorithm, x, k, self.random_state, int(self.n_init),
                            int(self.max_iter), self.covariance_type, self.fit_sample_size)
        # number clusters by mean revenue (highest first), then size
        rev = _revenue(frame, self.revenue_column)
        n_raw = int(est.n_components if self.algorithm == "gmm" else est.n_clusters)
        counts = np.bincount(raw, minlength=n_raw).astype(float)
        sums = np.bincount(raw, weights=np.nan_to_num(rev) if rev is not None else None, minlength=n_raw)
        mean_rev = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf) if rev is not None else counts
        order = sorted(range(n_raw), key=lambda c: (counts[c] == 0, -mean_rev[c], -counts[c], c))
        remap = np.empty(n_raw, dtype=np.int64)
        remap[order] = np.arange(n_raw)

        self._prep = prep
        self._remap = remap
        self.estimator_ = est
        self.features_ = list(prep.features)
        self.dropped_features_ = list(prep.dropped)
        self.n_features_in_ = len(self.features_)
        self.fill_values_ = pd.Series(prep.fill, index=self.features_)
        self.center_ = pd.Series(prep.center, index=self.features_)
        self.scale_ = pd.Series(prep.scale, index=self.features_)
        labels = remap[raw]
        self.labels_ = pd.Series(labels, index=frame.index, name="cluster")
        self.n_clusters_ = int((counts > 0).sum())
        self.inertia_ = float(_inertia(x, labels, self.n_clusters_))
        self._describe(frame, x, labels, rev)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise NotFittedError("this CustomerClustering is not fitted yet; call fit(frame) first")

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The scaled feature matrix (float32) of ``frame`` with the fitted preprocessing."""
        self._check_fitted()
        frame, _ = _resolve_features(frame, self.features_)
        return self._prep.transform(frame)

    @_limited
    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """Cluster numbers for the customers of ``frame`` (a Series indexed like it)."""
        x = self.transform(frame)
        if len(x) == 0:
            return pd.Series([], index=frame.index, dtype=np.int64, name="cluster")
        return pd.Series(self._remap[_predict_raw(self.estimator_, x)], index=frame.index, name="cluster")

    def fit_predict(self, frame: pd.DataFrame, y=None) -> pd.Series:
        return self.fit(frame).labels_

    def assignments(self) -> pd.DataFrame:
        """customer_id-indexed frame with ``cluster`` and ``cluster_name``."""
        self._check_fitted()
        names = np.array(self.names_, dtype=object)
        return pd.DataFrame({"cluster": self.labels_.to_numpy(),
                             "cluster_name": names[self.labels_.to_numpy()]}, index=self.labels_.index)

    # -- description
    def _describe(self, frame: pd.DataFrame, x: np.ndarray, labels: np.ndarray, rev) -> None:
        k = self.n_clusters_
        feats = self.features_
        raw = frame[feats].apply(pd.to_numeric, errors="coerce").astype("float64")
        raw = raw.where(np.isfinite(raw))
        grp = raw.groupby(labels)
        means = grp.mean().reindex(range(k))
        overall = raw.mean()
        size = np.bincount(labels, minlength=k)
        prof = pd.DataFrame(index=pd.RangeIndex(k, name="cluster"))
        prof["size"] = size
        prof["size_share"] = size / max(size.sum(), 1)
        if rev is not None:
            rsum = np.bincount(labels, weights=np.nan_to_num(rev), minlength=k)
            total = rsum.sum()
            prof["revenue"] = rsum
            prof["revenue_share"] = rsum / total if total != 0 else np.nan
        else:
            prof["revenue"] = np.nan
            prof["revenue_share"] = np.nan
        for f in feats:
            prof[f] = means[f].to_numpy()
        rel = means.divide(overall.where(overall != 0))
        rel.index.name = "cluster"
        for f in feats:
            prof[f"{f}_vs_all"] = rel[f].to_numpy()
        scaled = pd.DataFrame(
            np.vstack([x[labels == c].mean(axis=0) if size[c] else np.full(len(feats), np.nan)
                       for c in range(k)]),
            columns=feats, index=pd.RangeIndex(k, name="cluster"),
        )
        self.names_ = cluster_names(scaled, means)
        prof.insert(0, "name", self.names_)
        self.cluster_profiles_ = prof
        self.relative_profiles_ = rel
        self.scaled_profiles_ = scaled
        self.overall_means_ = overall

    def rename(self, cluster: int, name: str) -> "CustomerClustering":
        """Give cluster ``cluster`` a user-chosen name (stored as-is; escape when rendering)."""
        self._check_fitted()
        name = _clean_name(name)
        if not 0 <= int(cluster) < self.n_clusters_:
            raise ClusteringError(f"there is no cluster {cluster} (clusters 0..{self.n_clusters_ - 1})")
        others = [n for i, n in enumerate(self.names_) if i != int(cluster)]
        if name in others:
            raise ClusteringError(f"another cluster is already named {name!r}")
        self.names_[int(cluster)] = name
        self.cluster_profiles_.loc[int(cluster), "name"] = name
        return self

    def summary(self) -> dict:
        """JSON-able description: parameters, features and per-cluster profile."""
        self._check_fitted()
        prof = self.cluster_profiles_.reset_index()
        return {
            "parameters": _jsonable(self.get_params()),
            "features": list(self.features_),
            "dropped_features": list(self.dropped_features_),
            "names": list(self.names_),
            "inertia": self.inertia_,
            "profiles": _jsonable(prof.to_dict(orient="records")),
            "scaled_centers": _jsonable(self.scaled_profiles_.to_numpy().tolist()),
            "center": _jsonable(self.center_.tolist()),
            "scale": _jsonable(self.scale_.tolist()),
            "fill_values": _jsonable(self.fill_values_.tolist()),
        }


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ClusteringError("a cluster name must be non-empty text")
    name = " ".join(name.split())
    if len(name) > 120:
        raise ClusteringError("a cluster name can have at most 120 characters")
    return name


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _revenue(frame: pd.DataFrame, column: str | None):
    if column and column in frame.columns and pd.api.types.is_numeric_dtype(frame[column]):
        return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return None


def _inertia(x: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Within-cluster sum of squares around each cluster's mean (float64 sums)."""
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    total = 0.0
    nz = counts > 0
    for j in range(x.shape[1]):
        col = x[:, j].astype(np.float64)
        sums = np.bincount(labels, weights=col, minlength=k)
        total += float(col @ col) - float((sums[nz] ** 2 / counts[nz]).sum())
    return max(total, 0.0)


def silhouettes(x: np.ndarray, label_sets: Sequence[np.ndarray], chunk: int = 1024) -> list[float]:
    """Mean silhouette of ``x`` for several labelings at once.

    Equal to ``sklearn.metrics.silhouette_score`` (Euclidean) for each
    labeling, but every pairwise distance is computed once for all labelings:
    per chunk of rows, distances to all points are multiplied by the stacked
    one-hot cluster indicators. Singleton clusters score 0 (as in sklearn);
    a labeling with one cluster gives NaN.
    """
    x = np.asarray(x, dtype=np.float32)  # float32 distances: 3x faster, ~1e-6 relative error
    n = len(x)
    sets = [np.asarray(lab).astype(np.int64) for lab in label_sets]
    ks = [int(lab.max()) + 1 if len(lab) else 0 for lab in sets]
    offs = np.concatenate([[0], np.cumsum(ks)])
    onehot = np.zeros((n, int(offs[-1])), dtype=np.float32)
    for lab, o in zip(sets, offs[:-1]):
        onehot[np.arange(n), o + lab] = 1.0
    counts = onehot.sum(axis=0, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    totals = np.zeros(len(sets))
    for start in range(0, n, chunk):
        xs = x[start:start + chunk]
        d = xs @ x.T
        d *= -2.0
        d += sq[start:start + chunk, None]
        d += sq[None, :]
        np.maximum(d, 0.0, out=d)
        np.sqrt(d, out=d)
        d[np.arange(len(xs)), np.arange(start, start + len(xs))] = 0.0
        sums = (d @ onehot).astype(np.float64)  # (chunk, sum k): distance sums to each cluster
        for i, (lab, o, k) in enumerate(zip(sets, offs[:-1], ks)):
            if k < 2:
                continue
            own = lab[start:start + len(xs)]
            s_k = sums[:, o:o + k]
            c_k = counts[o:o + k]
            own_n = c_k[own]
            a = s_k[np.arange(len(xs)), own] / np.maximum(own_n - 1, 1)
            mean_other = s_k / np.where(c_k > 0, c_k, np.nan)
            mean_other[np.arange(len(xs)), own] = np.inf
            b = np.nanmin(np.where(c_k > 0, mean_other, np.inf), axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                sil = (b - a) / np.maximum(a, b)
            sil = np.where(own_n > 1, np.nan_to_num(sil), 0.0)
            totals[i] += sil.sum()
    return [float(t / n) if k >= 2 and n else float("nan") for t, k in zip(totals, ks)]


# ----------------------------------------------------------------- names
def _aspect_scores(scaled_centres: pd.DataFrame) -> pd.DataFrame:
    cols: dict[str, list[pd.Series]] = {}
    for f in scaled_centres.columns:
        aspect, sign = _ASPECT_OF.get(f, (f"feature:{f}", 1))
        cols.setdefault(aspect, []).append(sign * scaled_centres[f])
    return pd.DataFrame({a: pd.concat(v, axis=1).mean(axis=1) for a, v in cols.items()})


def _word(aspect: str, high: bool) -> str:
    if aspect in _ASPECT_WORDS:
        return _ASPECT_WORDS[aspect][0 if high else 1]
    label = feature_label(aspect.split(":", 1)[1]).lower()
    return f"{'high' if high else 'low'} {label}"


def cluster_names(scaled_centres: pd.DataFrame, raw_means: pd.DataFrame | None = None,
                  threshold: float = NAME_THRESHOLD, max_words: int = 2) -> list[str]:
    """Short readable names, unique per cluster, from cluster centres in sd units.

    The value tier comes first when a value feature (revenue, CLV...) is used
    ("High value" / "Mid value" / "Low value"); then up to ``max_words`` of the
    strongest other traits (|score| >= ``threshold`` sd; frequency and recency,
    the RFM traits, weigh 1.5 times when ranking) written in a fixed order:
    frequency, recency, tenure, browsing, basket size, returns, rating,
    reviews, then other features. When the raw means show that a cluster's
    customers hardly ever ordered (mean orders < 0.5) the frequency word is
    "non-buyers"; about one order each (< 1.5) gives "one-time" (both always
    named when below average, and non-buyers get no purchase-based words such
    as "lapsed"). Clusters that
    would share a name get more traits; then a cluster whose words are all in another
    cluster's name gets the comparative word of the aspect where the two differ most
    ("smaller baskets", "more recent", "less valuable"), so that every name says what sets
    it apart; only clusters that do not differ by ``CONTRAST_MIN`` sd get a number.
    """
    scores = _aspect_scores(scaled_centres)
    orders_mean = None
    if raw_means is not None:
        for col in ("n_orders", "n_purchases"):
            if col in raw_means.columns:
                orders_mean = raw_means[col]
                break
    ordered_aspects = [a for a in _ASPECT_ORDER if a in scores.columns] + \
        [a for a in scores.columns if a not in _ASPECT_ORDER]

    def words_for(c) -> tuple[str | None, list[tuple[float, int, str]]]:
        row = scores.loc[c]
        tier = None
        if "value" in row.index and np.isfinite(row["value"]):
            v = row["value"]
            tier = "High value" if v >= threshold else "Low value" if v <= -threshold else "Mid value"
        om = orders_mean.loc[c] if orders_mean is not None else np.nan
        non_buyers = bool(np.isfinite(om) and om < 0.5)
        traits = []
        for pos, a in enumerate(ordered_aspects):
            if a == "value" or not np.isfinite(row[a]):
                continue
            score = abs(float(row[a]))
            w = _word(a, row[a] > 0)
            if a == "frequency" and row[a] < 0 and np.isfinite(om) and om < 1.5:
                # hardly any orders is a defining trait even when other clusters are lower still
                w = "non-buyers" if non_buyers else "one-time"
                score = max(score, 1.0)
            if score < threshold:
                continue
            if non_buyers and a in _PURCHASE_ASPECTS:
                continue  # "lapsed", "small baskets"... say nothing about people who never bought
            weight = _CORE_WEIGHT if a in _CORE_ASPECTS else 1.0
            traits.append((weight * score, pos, w))
        traits.sort(key=lambda t: -t[0])
        return tier, traits

    def compose(tier, traits, n) -> str:
        chosen = sorted(traits[:n], key=lambda t: t[1])
        parts = ([tier] if tier else []) + [t[2] for t in chosen]
        if not parts:
            parts = ["Average"]
        name = " · ".join(parts)
        return name[0].upper() + name[1:]

    info = {c: words_for(c) for c in scores.index}
    n_words = {c: max_words for c in scores.index}
    names = {c: compose(*info[c], n_words[c]) for c in scores.index}
    for _ in range(len(ordered_aspects)):
        dup = pd.Series(names).duplicated(keep=False)
        if not dup.any():
            break
        grew = False
        for c in dup[dup].index:
            if n_words[c] < len(info[c][1]):
                n_words[c] += 1
                names[c] = compose(*info[c], n_words[c])
                grew = True
        if not grew:
            break
    names = _contrast(names, scores, ordered_aspects)
    seen: dict[str, int] = {}
    out = []
    counts = pd.Series(names).value_counts()
    for c in scores.index:
        n = names[c]
        if counts[n] > 1:
            seen[n] = seen.get(n, 0) + 1
            n = f"{n} #{seen[n]}"
        out.append(n)
    return out


def _comparative(aspect: str, more: bool) -> str:
    if aspect in _COMPARATIVE:
        return _COMPARATIVE[aspect][0 if more else 1]
    label = feature_label(aspect.split(":", 1)[1]).lower()
    return f"{'higher' if more else 'lower'} {label}"


def _contrast(names: dict, scores: pd.DataFrame, aspects: list[str]) -> dict:
    """Add comparative words until no cluster's name is made only of another cluster's words."""
    words = {c: names[c].split(" · ") for c in names}
    # an aspect already named by an absolute word ("recent") is not contrasted again ("less recent")
    said = {c: {a for a in aspects if a != "value" and {_word(a, True).lower(), _word(a, False).lower()}
                & {w.lower() for w in words[c]}} for c in names}
    used = {c: set(said[c]) for c in names}
    for _ in range(len(aspects)):
        changed = False
        for i in scores.index:
            wi = set(w.lower() for w in words[i])
            rivals = [j for j in scores.index if j != i and wi <= set(w.lower() for w in words[j])]
            if not rivals:
                continue
            best = None
            for j in rivals:
                for a in aspects:
                    if a in used[i]:
                        continue
                    d = float(scores.loc[i, a] - scores.loc[j, a])
                    if np.isfinite(d) and abs(d) >= CONTRAST_MIN and (best is None or abs(d) > abs(best[1])):
                        best = (a, d)
            if best is None:
                continue
            word = _comparative(best[0], best[1] > 0)
            used[i].add(best[0])
            if word.lower() not in wi:
                words[i] = words[i] + [word]
                changed = True
        if not changed:
            break
    return {c: " · ".join(w) for c, w in words.items()}


# ----------------------------------------------------------------- k guidance
@dataclass
class KGuidance:
    """Result of :func:`k_guidance`: the table, the suggested k and why."""

    table: pd.DataFrame          # index k; columns inertia, silhouette, bic (NaN if not computed)
    suggested_k: int
    reason: str
    algorithm: str
    features: list[str] = field(default_factory=list)
    n_customers: int = 0
    silhouette_sample: int = 0


def _elbow(ks: np.ndarray, y: np.ndarray) -> int:
    """Kneedle: the k farthest below the straight line from the first to the last point."""
    y = np.asarray(y, dtype=float)
    if len(ks) < 3 or not np.isfinite(y).all() or y[0] == y[-1]:
        return int(ks[0])
    xn = (ks - ks[0]) / (ks[-1] - ks[0])
    yn = (y - y.min()) / (y.max() - y.min())
    line = yn[0] + (yn[-1] - yn[0]) * xn
    dist = line - yn  # for a decreasing convex curve the knee is the most below the chord
    return int(ks[int(np.argmax(dist))])


@_limited
def k_guidance(frame: pd.DataFrame, features=None, scaling: str = "log1p_standard",
               algorithm: str = "kmeans", k_values: Iterable[int] = range(2, 13),
               silhouette_sample: int = 10_000, fit_sample_size: int | None = 50_000,
               random_state: int = 0, n_init: int = 2, compute_bic: bool | None = None,
               bic_sample: int = 50_000, progress=None) -> KGuidance:
    """Inertia (elbow), silhouette (seeded sample) and BIC (mixtures) for each k.

    Every k is fitted with the same preprocessing as ``CustomerClustering`` (on
    a seeded sample of ``fit_sample_size`` customers; all customers assigned).
    ``inertia`` is the within-cluster sum of squares over all customers,
    ``silhouette`` the mean silhouette of a seeded sample of
    ``silhouette_sample`` customers, ``bic`` the Gaussian-mixture BIC on a
    seeded sample of ``bic_sample`` (computed for ``algorithm='gmm'`` or with
    ``compute_bic=True``). ``progress(done, total)`` is called after each k.

    Suggested k: for mixtures, the lowest BIC when it is below k's upper end;
    otherwise the elbow of the inertia (or BIC) curve when its silhouette is
    within 10% of the best silhouette, else the best silhouette.
    """
    if algorithm not in ALGORITHMS:
        raise ClusteringError(f"unknown algorithm {algorithm!r} (choose one of: {', '.join(ALGORITHMS)})")
    ks = sorted({_check_k(k) for k in k_values})
    if len(ks) < 2:
        raise ClusteringError("k guidance needs at least two values of k")
    if compute_bic is None:
        compute_bic = algorithm == "gmm"
    prep, frame, x = _fit_prep(frame, features, scaling)
    n = len(x)
    too_big = [k for k in ks if n < MIN_PER_CLUSTER * k]
    if too_big:
        ks = [k for k in ks if k not in too_big]
        if len(ks) < 1:
            _check_enough(x, min(too_big))
    _check_enough(x, ks[0])
    sil_idx = _sample_idx(n, silhouette_sample, random_state)
    xs_sil = x if sil_idx is None else x[sil_idx]
    bic_idx = _sample_idx(n, bic_sample, random_state) if compute_bic else None
    xs_bic = x if bic_idx is None else x[bic_idx]
    rows = []
    sil_labels = []
    for i, k in enumerate(ks):
        est, labels = _fit_raw(algorithm, x, k, random_state, n_init, 300, "full", fit_sample_size)
        inertia = _inertia(x, labels, int(labels.max()) + 1)
        ls = labels if sil_idx is None else labels[sil_idx]
        sil_labels.append(np.unique(ls, return_inverse=True)[1])  # renumber clusters absent from the sample
        bic = np.nan
        if compute_bic:
            if algorithm == "gmm":
                gm = est
            else:
                gm = _make_estimator("gmm", k, random_state, 1, 200, "full")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        gm.fit(xs_bic)
                    except Exception:
                        gm = None
            bic = float(gm.bic(xs_bic)) if gm is not None else np.nan
        rows.append({"k": k, "inertia": inertia, "bic": bic})
        if progress:
            progress(i + 1, len(ks))
    with _threads(len(xs_sil)):
        sils = silhouettes(xs_sil, sil_labels)
    table = pd.DataFrame(rows).set_index("k")
    table.insert(1, "silhouette", sils)
    k_sug, reason = _suggest(table, algorithm, compute_bic)
    return KGuidance(table=table, suggested_k=k_sug, reason=reason, algorithm=algorithm,
                     features=list(prep.features), n_customers=n,
                     silhouette_sample=len(xs_sil))


def _suggest(table: pd.DataFrame, algorithm: str, with_bic: bool) -> tuple[int, str]:
    ks = table.index.to_numpy()
    sil = table["silhouette"].to_numpy(dtype=float)
    best_sil_k = int(ks[np.nanargmax(sil)]) if np.isfinite(sil).any() else int(ks[0])
    best_sil = float(np.nanmax(sil)) if np.isfinite(sil).any() else float("nan")
    if with_bic and np.isfinite(table["bic"]).all():
        bic = table["bic"].to_numpy(dtype=float)
        k_bic = int(ks[np.argmin(bic)])
        if algorithm == "gmm" and k_bic < ks[-1]:
            return k_bic, (f"k={k_bic} has the lowest BIC of the mixtures "
                           f"(silhouette {table.loc[k_bic, 'silhouette']:.2f}).")
        curve, what = (bic, "BIC") if algorithm == "gmm" else (table["inertia"].to_numpy(float), "inertia")
    else:
        curve, what = table["inertia"].to_numpy(dtype=float), "inertia"
    k_elbow = _elbow(ks, curve)
    sil_elbow = float(table.loc[k_elbow, "silhouette"])
    if not np.isfinite(best_sil) or (np.isfinite(sil_elbow) and sil_elbow >= 0.9 * best_sil):
        if k_elbow == best_sil_k:
            return k_elbow, (f"k={k_elbow} is the elbow of the {what} curve and has the best "
                             f"silhouette ({sil_elbow:.2f}).")
        return k_elbow, (f"k={k_elbow} is the elbow of the {what} curve and its silhouette "
                         f"({sil_elbow:.2f}) is within 10% of the best ({best_sil:.2f} at k={best_sil_k}).")
    return best_sil_k, (f"k={best_sil_k} has the best silhouette ({best_sil:.2f}); the elbow of the "
                        f"{what} curve at k={k_elbow} separates the clusters less clearly "
                        f"(silhouette {sil_elbow:.2f}).")


# ----------------------------------------------------------------- figures
def k_guidance_figure(guidance: KGuidance):
    """One plotly chart: inertia (left axis), silhouette (right axis), BIC (second right
    axis, when computed), with the suggested k marked."""
    import plotly.graph_objects as go

    t = guidance.table
    ks = t.index.to_list()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ks, y=t["inertia"], name="Inertia (elbow)", mode="lines+markers",
                             yaxis="y"))
    fig.add_trace(go.Scatter(x=ks, y=t["silhouette"], name="Silhouette (higher is better)",
                             mode="lines+markers", yaxis="y2"))
    with_bic = bool(t["bic"].notna().any())
    # each right axis gets ticks of its own ("auto": an overlaying axis otherwise takes the left axis's
    # grid, at odd values such as 0.17 or 18,113) and room for its labels and title: the silhouette
    # axis at the plot's right edge, the BIC axis a label's width beyond it
    right = dict(side="right", showgrid=False, tickmode="auto", nticks=6, title_standoff=6)
    layout = dict(
        xaxis=dict(title="k (number of clusters)", dtick=1, domain=[0, 0.83 if with_bic else 0.9]),
        yaxis=dict(title="Inertia", tickformat=",.0f"),
        yaxis2=dict(title="Silhouette", overlaying="y", anchor="x", tickformat=".2f", **right),
        legend=dict(orientation="h", y=-0.2),
        title=f"Choosing k: suggested k = {guidance.suggested_k}",
        margin=dict(t=60, r=20 if with_bic else 60),
    )
    if with_bic:
        fig.add_trace(go.Scatter(x=ks, y=t["bic"], name="BIC (lower is better)", mode="lines+markers",
                                 yaxis="y3", line=dict(dash="dot")))
        layout["yaxis3"] = dict(title="BIC", overlaying="y", anchor="free", position=0.93, tickformat="~s",
                                **right)
    fig.add_vline(x=guidance.suggested_k, line_dash="dash", line_color="gray",
                  annotation_text=f"suggested k={guidance.suggested_k}")
    fig.update_layout(**layout)
    return fig


_MONEY_FEATURES = {"net_revenue", "total_revenue", "return_revenue", "monetary_value", "avg_order_value", "clv",
                   "expected_spend", "clv_bgnbd", "expected_clv", "predicted_value"}
_DAY_FEATURES = {"time_since_purchase", "tenure", "avg_gap", "recency", "T"}
_RATE_FEATURES = {"return_rate", "probability_alive", "p_alive", "churn_risk", "churn_probability"}


def _short_number(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 1e3:
        return f"{v / 1e3:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if a >= 10 or v == int(v) else f"{v:.2f}"


def _cell_text(value, feature: str, currency=None) -> str:
    """A cluster's average as a short label in the feature's units."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    if feature in _RATE_FEATURES:
        return f"{100 * v:.0f}%"
    if feature in _DAY_FEATURES:
        return f"{v:,.0f} d"
    text = _short_number(v)
    if feature in _MONEY_FEATURES and currency is not None:
        from analytics.currency import get

        c = get(currency) if isinstance(currency, str) else currency
        if c is not None:
            text = ("-" if v < 0 else "") + c.prefix + text.lstrip("-")
    return text.replace("-0.00", "0.00")


def profile_figure(model: CustomerClustering, kind: str = "heatmap", currency=None):
    """Cluster profiles: a heatmap (colour = centre in sd units, text = the cluster's average in
    the feature's units, money in ``currency``) or a snake plot (one line per cluster across
    features)."""
    import plotly.graph_objects as go

    model._check_fitted()
    if kind not in ("heatmap", "snake"):
        raise ClusteringError("profile chart kind must be 'heatmap' or 'snake'")
    z = model.scaled_profiles_
    labels = [feature_label(f) for f in z.columns]
    prof = model.cluster_profiles_
    rows = [f"{i}: {prof.loc[i, 'name']} ({percent(prof.loc[i, 'size_share'], 0)})" for i in z.index]
    if kind == "heatmap":
        rel = model.relative_profiles_
        # each cell shows the cluster's own average in the feature's units ("€1.2k", "34 days",
        # "2.3"); the hover adds how that compares with all customers (a ratio only where it means
        # something: a positive overall average)
        text = [[_cell_text(prof.loc[i, f], f, currency) for f in z.columns] for i in z.index]
        ratio = [[(f"{v:.1f}× the average" if np.isfinite(v) and v >= 0 and np.isfinite(o) and o > 0 else
                   f"{z.loc[i, f]:+.1f} sd from the average")
                  for f, v, o in zip(z.columns, rel.loc[i].to_numpy(float),
                                      model.overall_means_.reindex(z.columns).to_numpy(float))]
                 for i in z.index]
        lim = float(np.nanmax(np.abs(z.to_numpy()))) if z.size else 1.0
        fig = go.Figure(go.Heatmap(
            z=z.to_numpy(), x=labels, y=rows, text=text, texttemplate="%{text}", customdata=ratio,
            colorscale="RdBu", zmid=0, zmin=-lim, zmax=lim,
            colorbar=dict(title="below ↔ above<br>the average (sd)"),
            hovertemplate="%{y}<br>%{x}: average %{text} (%{customdata})<extra></extra>",
        ))
        fig.update_layout(title="Cluster profiles: each cluster's average (colour: how far above or below "
                                "all customers)",
                          yaxis=dict(autorange="reversed"), xaxis=dict(tickangle=-30, automargin=True),
                          margin=dict(l=10, r=10, t=60, b=10), height=max(320, 60 + 48 * len(rows)))
    else:
        fig = go.Figure()
        for i, row in zip(z.index, rows):
            fig.add_trace(go.Scatter(x=labels, y=z.loc[i].to_numpy(), name=row, mode="lines+markers"))
        fig.add_hline(y=0, line_color="gray", line_dash="dot")
        fig.update_layout(title="Snake plot: cluster centres in sd units", yaxis_title="sd from average")
    return fig


@_limited
def projection_figure(model: CustomerClustering, frame: pd.DataFrame, max_points: int = 50_000,
                      random_state: int = 0):
    """2-D PCA projection of the scaled features coloured by cluster; at most
    ``max_points`` points (a seeded sample stratified by cluster)."""
    import plotly.graph_objects as go
    from sklearn.decomposition import PCA

    model._check_fitted()
    fitted = model.labels_
    if len(frame) == len(fitted) and (frame.index is fitted.index or frame.index.equals(fitted.index)):
        labels = fitted.to_numpy()  # the fitted customers: no need to predict again
    else:
        labels = model.predict(frame).to_numpy()
    n = len(labels)
    idx = _stratified_sample(labels, max_points, random_state)
    x = model.transform(frame.iloc[idx])
    lab = labels[idx]
    n_comp = min(2, x.shape[1])
    pca = PCA(n_components=n_comp, random_state=random_state).fit(x)
    p = pca.transform(x)
    if n_comp == 1:
        p = np.column_stack([p[:, 0], np.zeros(len(p))])
    var = list(pca.explained_variance_ratio_) + [0.0] * (2 - n_comp)
    from analytics.palettes import colors, marker_symbols

    fig = go.Figure()
    ids = frame.index.to_numpy()[idx].astype(str)
    palette, symbols = colors(model.n_clusters_), marker_symbols(model.n_clusters_)
    for c in range(model.n_clusters_):
        m = lab == c
        if not m.any():
            continue
        fig.add_trace(go.Scattergl(
            x=p[m, 0], y=p[m, 1], mode="markers", name=f"{c}: {model.names_[c]}",
            marker=dict(size=5, opacity=0.7, color=palette[c], symbol=symbols[c]), text=ids[m],
            hovertemplate="customer %{text}<extra>%{fullData.name}</extra>",
        ))
    shown = len(idx)
    note = f" (sample of {shown:,} of {n:,} customers)" if shown < n else ""
    fig.update_layout(
        title=f"Customers in the first two principal components{note}",
        xaxis_title=f"PC1 ({percent(var[0], 0)} of variance)", yaxis_title=f"PC2 ({percent(var[1], 0)} of variance)",
    )
    return fig


def _stratified_sample(labels: np.ndarray, max_points: int, random_state) -> np.ndarray:
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    out = []
    uniq, counts = np.unique(labels, return_counts=True)
    floor_q = np.minimum(counts, max(1, min(50, max_points // (2 * len(uniq)))))
    quota = np.maximum(np.floor(counts / n * max_points).astype(int), floor_q)
    excess = int(quota.sum() - max_points)
    while excess > 0:  # small-cluster minimums pushed us over: trim the largest quotas
        i = int(np.argmax(quota - floor_q))
        cut = min(excess, int(quota[i] - floor_q[i]))
        if cut <= 0:
            break
        quota[i] -= cut
        excess -= cut
    for c, q in zip(uniq, quota):
        members = np.flatnonzero(labels == c)
        out.append(rng.choice(members, size=int(q), replace=False))
    return np.sort(np.concatenate(out))
