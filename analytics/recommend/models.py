"""Recommenders beyond item-CF: recency-aware popularity and the ``implicit`` library's models.

* ``RecentPopularity``: the items most bought in the last ``days`` days of the
  training window (optionally every purchase weighted by ``0.5 ** (age / half_life)``).
  Real catalogues move: what sold last month predicts next month better than
  what sold over the whole history.
* ``ALSRecommender``: implicit-feedback matrix factorisation by alternating least
  squares (Hu, Koren & Volinsky 2008, "Collaborative filtering for implicit feedback
  datasets", ICDM), as implemented by ``implicit.cpu.als`` (conjugate-gradient
  solver of Takacs, Pilaszy & Tikk 2011). The customers x items strengths are
  weighted either by BM25 (Robertson & Zaragoza 2009; damps heavy customers and
  very popular items) or as plain confidence ``alpha * r`` (Hu et al.), after an
  optional time decay ``0.5 ** (age / half_life_days)`` so recent interest counts more.
* ``BPRRecommender``: Bayesian personalized ranking (Rendle et al. 2009, UAI) on the
  binary interactions, ``implicit.cpu.bpr``.
* ``ImplicitItemKNN``: ``implicit``'s item-item neighbours (BM25, cosine or TF-IDF
  weighted co-occurrence, top ``K`` per item) scored like ``ItemCF``.

All share ``ItemCF``'s API and rules: ``fit(interactions)``, ``recommend(customer_ids,
n, exclude_purchased, category)`` returning ``customer_id, rank, item_id, category,
score, source``; customers without history, or with fewer than ``n`` candidates,
are filled from the popularity ranking (``source`` = "popularity").

``implicit`` runs its own loops on all cores; BLAS is limited to one thread while it
works (``threadpoolctl``), as ``implicit`` asks (a threaded BLAS inside its threads
slows it down many times).
"""
from __future__ import annotations

import contextlib
from typing import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from analytics.recommend.core import (
    Interactions, ItemCF, RecommendError, _assemble, _BaseRecommender, _rank_within,
)

WEIGHTINGS = ("bm25", "confidence")
_BATCH = 4096  # customers scored per implicit.recommend call
_EASE_BATCH = 1024  # customers scored at once by EASE (a dense batch x items block)


@contextlib.contextmanager
def _blas_single():
    """BLAS on one thread, and ``implicit``'s notes about input formats and BLAS threads silenced."""
    import warnings

    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(CSR input|OpenBLAS is configured|threadpool).*")
        yield


def _implicit():
    try:
        import implicit  # noqa: F401
    except ImportError:
        raise RecommendError("the 'implicit' package is not installed: pip install implicit") from None
    return implicit


def _decayed(X: Interactions, half_life_days) -> sp.csr_matrix:
    """log1p strengths, times 0.5 ** (age / half_life) when a half-life is given (and ages are known)."""
    m = sp.csr_matrix(X.matrix, dtype=np.float32, copy=True)
    np.log1p(m.data, out=m.data)
    if half_life_days and X.age_days is not None:
        age = X.age_days.tocsr()
        age.sort_indices()
        m.sort_indices()
        if age.nnz == m.nnz and np.array_equal(age.indices, m.indices):
            m.data *= np.power(0.5, age.data / float(half_life_days)).astype(np.float32)
    m.eliminate_zeros()
    return m


def _check_positive(name, value, integer=False, allow_none=False):
    if value is None and allow_none:
        return
    try:
        ok = float(value) > 0 and np.isfinite(float(value)) and (not integer or int(value) == value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        kind = "a whole number" if integer else "a number"
        raise RecommendError(f"{name} must be {kind} > 0, got {value!r}")


class RecentPopularity(_BaseRecommender):
    """Baseline: the items bought by the most customers in the last ``days`` days of the window.

    ``half_life_days``: instead of a hard window, every buyer counts ``0.5 ** (days since
    their last purchase of the item / half_life)``. Ties (and items not bought recently)
    follow the all-time popularity. Same rules as ``PopularityRecommender``.
    """

    _source_name = "recent_popularity"

    def __init__(self, days: int = 30, half_life_days: float | None = None):
        self.days = days
        self.half_life_days = half_life_days

    def fit(self, interactions: Interactions) -> "RecentPopularity":
        _check_positive("days", self.days, integer=True)
        _check_positive("half_life_days", self.half_life_days, allow_none=True)
        X = self._check_interactions(interactions)
        self._fit_popularity(X)
        overall = self.popularity_order_
        rank_all = np.empty(X.n_items, dtype=np.int64)
        rank_all[overall] = np.arange(X.n_items)
        age = X.purchase_age_days
        if age is None:
            recent = self.popularity_.copy()
        else:
            age = age.tocsc()
            cols = np.repeat(np.arange(X.n_items), np.diff(age.indptr))
            if self.half_life_days:
                w = np.power(0.5, age.data / float(self.half_life_days))
            else:
                w = (age.data <= float(self.days)).astype(np.float64)
            recent = np.bincount(cols, weights=w, minlength=X.n_items)
        self.recent_popularity_ = recent
        self.popularity_order_ = np.lexsort((rank_all, -recent))
        self.popularity_ = recent
        self.n_items_ = X.n_items
        self.interactions_ = X
        return self

    def recommend(self, customer_ids: Iterable[str], n: int = 10, exclude_purchased: bool = True,
                  category: str | None = None) -> pd.DataFrame:
        """Top ``n`` items per customer (``score``: recent buyers; ``source``: "recent_popularity")."""
        self._check_fitted()
        n = self._check_n(n)
        cat_mask = self._category_mask(category)
        ids, rows = self._rows_of(customer_ids)
        j, cols = self._popular_fill(rows, np.full(len(ids), n, dtype=np.int64), None, exclude_purchased, cat_mask)
        return self._frame(ids, j, _rank_within(j), cols, self.popularity_[cols], self._source_name)


class _FactorRecommender(_BaseRecommender):
    """Shared scoring for the implicit factor models (customer and item factors)."""

    _source_name = "mf"

    def _fit_model(self, model, M: sp.csr_matrix, X: Interactions):
        with _blas_single():
            model.fit(M, show_progress=False)
        self.model_ = model
        self._fit_popularity(X)
        self.n_items_ = X.n_items
        self.interactions_ = X
        return self

    def recommend(self, customer_ids: Iterable[str], n: int = 10, exclude_purchased: bool = True,
                  category: str | None = None) -> pd.DataFrame:
        """Top ``n`` items per customer by the factor model's score (dot product of factors);
        ``source`` is the model's name, "popularity" for fill-ups."""
        self._check_fitted()
        n = self._check_n(n)
        cat_mask = self._category_mask(category)
        ids, rows = self._rows_of(customer_ids)
        X = self.interactions_
        items = np.flatnonzero(cat_mask) if cat_mask is not None else None
        n_eff = min(n, X.n_items if items is None else items.size)
        known = np.flatnonzero(rows >= 0)
        parts_j, parts_c, parts_v = [], [], []
        P = X.purchased.astype(np.float32).tocsr()
        with _blas_single():
            for b0 in range(0, known.size, _BATCH):
                kb = known[b0:b0 + _BATCH]
                r = rows[kb]
                got_ids, got_scores = self.model_.recommend(
                    r, P[r], N=n_eff, filter_already_liked_items=bool(exclude_purchased), items=items)
                got_ids = np.asarray(got_ids).reshape(len(r), -1)
                got_scores = np.asarray(got_scores).reshape(len(r), -1)
                ok = (got_scores > -1e37) & (got_ids >= 0) & np.isfinite(got_scores)
                jj = np.repeat(kb, got_ids.shape[1]).reshape(got_ids.shape)
                parts_j.append(jj[ok])
                parts_c.append(got_ids[ok])
                parts_v.append(got_scores[ok])
        cat = (lambda a: np.concatenate(a) if a else np.empty(0))
        return _assemble(self, ids, rows, cat(parts_j).astype(np.int64), cat(parts_c).astype(np.int64),
                         cat(parts_v), n, exclude_purchased, cat_mask, self._source_name)


class ALSRecommender(_FactorRecommender):
    """Implicit-feedback matrix factorisation by ALS (Hu, Koren & Volinsky 2008) via ``implicit``.

    Parameters
    ----------
    factors, regularization, iterations : the factor model (``implicit.cpu.als``).
    weighting : "bm25" (default: BM25 weights with ``bm25_k1``, ``bm25_b``) or "confidence"
        (``alpha`` x log1p strength, Hu et al.'s confidence).
    alpha : confidence scale (the ``implicit`` parameter; with BM25 it scales the BM25 weights).
    half_life_days : time decay of an interaction's strength by its age at the end of the window
        (None: no decay).
    random_state : seed of the factor initialisation.

    Fitted: ``model_`` (the ``implicit`` model; ``model_.user_factors``, ``model_.item_factors``),
    ``popularity_order_``, ``interactions_``.
    """

    _source_name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 15,
                 weighting: str = "bm25", alpha: float = 1.0, bm25_k1: float = 100.0, bm25_b: float = 0.8,
                 half_life_days: float | None = None, random_state: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.weighting = weighting
        self.alpha = alpha
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.half_life_days = half_life_days
        self.random_state = random_state

    def weighted_matrix(self, X: Interactions) -> sp.csr_matrix:
        """The customers x items matrix the factors are fitted to (decayed, then weighted)."""
        M = _decayed(X, self.half_life_days)
        if self.weighting == "bm25":
            from implicit.nearest_neighbours import bm25_weight

            M = bm25_weight(M, K1=float(self.bm25_k1), B=float(self.bm25_b)).tocsr()
        return sp.csr_matrix(M, dtype=np.float32)

    def fit(self, interactions: Interactions) -> "ALSRecommender":
        _implicit()
        if self.weighting not in WEIGHTINGS:
            raise RecommendError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        _check_positive("factors", self.factors, integer=True)
        _check_positive("iterations", self.iterations, integer=True)
        _check_positive("alpha", self.alpha)
        _check_positive("half_life_days", self.half_life_days, allow_none=True)
        if not float(self.regularization) >= 0:
            raise RecommendError(f"regularization must be >= 0, got {self.regularization!r}")
        X = self._check_interactions(interactions)
        from implicit.cpu.als import AlternatingLeastSquares

        with _blas_single():
            model = AlternatingLeastSquares(factors=int(self.factors), regularization=float(self.regularization),
                                            alpha=float(self.alpha), iterations=int(self.iterations),
                                            random_state=int(self.random_state))
        return self._fit_model(model, self.weighted_matrix(X), X)


class BPRRecommender(_FactorRecommender):
    """Bayesian personalized ranking (Rendle et al. 2009) on the binary interactions, via ``implicit``.

    ``num_threads`` defaults to 1: implicit's BPR updates shared factors from several threads without
    locks (Hogwild), so more threads give (slightly) different factors on every run."""

    _source_name = "bpr"

    def __init__(self, factors: int = 64, learning_rate: float = 0.05, regularization: float = 0.01,
                 iterations: int = 60, num_threads: int = 1, random_state: int = 0):
        self.num_threads = num_threads
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state

    def fit(self, interactions: Interactions) -> "BPRRecommender":
        _implicit()
        _check_positive("factors", self.factors, integer=True)
        _check_positive("iterations", self.iterations, integer=True)
        _check_positive("learning_rate", self.learning_rate)
        X = self._check_interactions(interactions)
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        M = sp.csr_matrix(X.matrix, dtype=np.float32, copy=True)
        M.data[:] = 1.0
        model = BayesianPersonalizedRanking(factors=int(self.factors), learning_rate=float(self.learning_rate),
                                            regularization=float(self.regularization),
                                            iterations=int(self.iterations), random_state=int(self.random_state),
                                            num_threads=int(self.num_threads))
        return self._fit_model(model, M, X)


class ImplicitItemKNN(ItemCF):
    """``implicit``'s item-item neighbours (``kind`` = "bm25", "cosine" or "tfidf"; ``K`` per item),
    scored as ``ItemCF`` does (a customer's log1p strengths times the similarity matrix)."""

    _source_name = "item_knn"
    KINDS = ("bm25", "cosine", "tfidf")

    def __init__(self, kind: str = "bm25", K: int = 100, bm25_k1: float = 1.2, bm25_b: float = 0.75,
                 half_life_days: float | None = None):
        self.kind = kind
        self.K = K
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.half_life_days = half_life_days

    def fit(self, interactions: Interactions) -> "ImplicitItemKNN":
        _implicit()
        if self.kind not in self.KINDS:
            raise RecommendError(f"kind must be one of {', '.join(self.KINDS)}, got {self.kind!r}")
        _check_positive("K", self.K, integer=True)
        X = self._check_interactions(interactions)
        from implicit import nearest_neighbours as nn

        model = {"bm25": lambda: nn.BM25Recommender(K=int(self.K), K1=float(self.bm25_k1), B=float(self.bm25_b)),
                 "cosine": lambda: nn.CosineRecommender(K=int(self.K)),
                 "tfidf": lambda: nn.TFIDFRecommender(K=int(self.K))}[self.kind]()
        M = _decayed(X, self.half_life_days)
        with _blas_single():
            model.fit(M, show_progress=False)
        S = sp.csr_matrix(model.similarity, dtype=np.float32)
        S.setdiag(0)
        S.eliminate_zeros()
        S.data[~(S.data > 0)] = 0
        S.eliminate_zeros()
        self.similarity_ = S
        self.item_norms_ = np.ones(X.n_items, dtype=np.float32)
        # ItemCF.recommend reads these
        self.transform, self.normalize, self.n_neighbors = "log1p", False, int(self.K)
        self._fit_popularity(X)
        self.n_items_ = X.n_items
        self.interactions_ = X
        return self

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in ("kind", "K", "bm25_k1", "bm25_b", "half_life_days")}


class RecencyBlend(_BaseRecommender):
    """A personal model's ranking blended with recent popularity: what suits the customer and
    what is selling now.

    Each customer's top ``candidates`` items from ``base`` (a family of ``FAMILIES``, with
    ``base_params``) and the ``candidates`` most bought items of the last ``days`` days are
    scored ``(1 - weight) / log2(1 + base rank) + weight / log2(1 + recent-popularity rank)``
    (a rank absent from a list scores 0) and ranked by that. ``weight`` 0 is the base model,
    1 recent popularity; the blend is chosen on validation like any other setting. Rank fusion
    needs no common scale between the two scores (ALS dot products, neighbour sums, counts).
    """

    _source_name = "blend"

    def __init__(self, base: str = "item_knn", base_params: dict | None = None, days: int = 30,
                 weight: float = 0.5, candidates: int = 100):
        self.base = base
        self.base_params = base_params
        self.days = days
        self.weight = weight
        self.candidates = candidates

    def fit(self, interactions: Interactions, base_model: _BaseRecommender | None = None) -> "RecencyBlend":
        """``base_model``: the base already fitted on these same interactions with these settings
        (validation fits every candidate once and lends it to the blends built on it)."""
        from analytics.recommend.evaluate import make_model

        if not 0 <= float(self.weight) <= 1:
            raise RecommendError(f"weight must be between 0 and 1, got {self.weight!r}")
        _check_positive("candidates", self.candidates, integer=True)
        if self.base in ("blend", "sequence"):
            raise RecommendError("the blend's base must be a non-sequence model other than the blend")
        X = self._check_interactions(interactions)
        if base_model is not None and getattr(base_model, "interactions_", None) is X:
            self.base_model_ = base_model
        else:
            self.base_model_ = make_model(self.base, self.base_params or {}).fit(X)
        self.recent_ = RecentPopularity(days=self.days).fit(X)
        self._fit_popularity(X)
        self.n_items_ = X.n_items
        self.interactions_ = X
        return self

    def recommend(self, customer_ids: Iterable[str], n: int = 10, exclude_purchased: bool = True,
                  category: str | None = None) -> pd.DataFrame:
        """Top ``n`` by the blended rank score (``source`` "blend"; "popularity" for fill-ups)."""
        self._check_fitted()
        n = self._check_n(n)
        cat_mask = self._category_mask(category)
        ids, rows = self._rows_of(customer_ids)
        m = max(int(self.candidates), n)
        w = float(self.weight)
        base = self.base_model_.recommend(ids, n=m, exclude_purchased=exclude_purchased, category=category)
        recent = self.recent_.recommend(ids, n=m, exclude_purchased=exclude_purchased, category=category)
        base = base[base["source"] != "popularity"]
        frame = pd.concat([
            pd.DataFrame({"customer_id": base["customer_id"], "item_id": base["item_id"],
                          "s": (1 - w) / np.log2(1 + base["rank"].to_numpy(np.float64))}),
            pd.DataFrame({"customer_id": recent["customer_id"], "item_id": recent["item_id"],
                          "s": w / np.log2(1 + recent["rank"].to_numpy(np.float64))}),
        ], ignore_index=True)
        frame = frame.groupby(["customer_id", "item_id"], sort=False, as_index=False)["s"].sum()
        X = self.interactions_
        pos = pd.Index(ids).get_indexer(frame["customer_id"])
        col = pd.Index(X.item_ids).get_indexer(frame["item_id"])
        order = np.lexsort((col, -frame["s"].to_numpy(), pos))
        pos, col, s = pos[order], col[order], frame["s"].to_numpy()[order]
        keep = _rank_within(pos) <= n
        return _assemble(self, ids, rows, pos[keep], col[keep], s[keep], n, exclude_purchased, cat_mask,
                         self._source_name)


class EASERecommender(_BaseRecommender):
    """EASE, the closed-form item-item model of Steck (2019, "Embarrassingly shallow autoencoders
    for sparse data", WWW): the item x item weights ``B`` that minimise
    ``||X - X B||^2 + l2 ||B||^2`` with ``diag(B) = 0``, i.e. ``P = (X^T X + l2 I)^-1``,
    ``B = -P / diag(P)`` (column-wise) with the diagonal set to 0. A customer's scores are
    ``x_u B``.

    ``X`` is the binary customers x items matrix (``binary=False``: log1p strengths). ``l2`` is
    the only setting (chosen on validation; large catalogues want larger values).
    ``half_life_days`` weights each of the customer's items by ``0.5 ** (age / half_life)`` when
    scoring (not when fitting): what a customer bought last points at what comes next.
    ``max_items``: ``B`` is dense, so only the ``max_items`` most bought items take part (the
    others are never recommended by EASE itself; fill-ups come from popularity as everywhere).

    Fitted: ``B_`` (float32, items_used x items_used), ``items_`` (their item codes),
    ``popularity_order_``, ``interactions_``.
    """

    _source_name = "ease"

    def __init__(self, l2: float = 200.0, binary: bool = True, half_life_days: float | None = None,
                 max_items: int = 8000):
        self.l2 = l2
        self.binary = binary
        self.half_life_days = half_life_days
        self.max_items = max_items

    def _user_matrix(self, X: Interactions, rows: np.ndarray | None = None, decay: bool = False) -> sp.csr_matrix:
        M = X.matrix if rows is None else X.matrix[rows]
        M = sp.csr_matrix(M, dtype=np.float32, copy=True)
        if self.binary:
            M.data[:] = 1.0
        else:
            np.log1p(M.data, out=M.data)
        if decay and self.half_life_days and X.age_days is not None:
            age = X.age_days if rows is None else X.age_days[rows]
            age = sp.csr_matrix(age, dtype=np.float32)
            age.sort_indices()
            M.sort_indices()
            if age.nnz == M.nnz and np.array_equal(age.indices, M.indices):
                M.data *= np.power(0.5, age.data / float(self.half_life_days)).astype(np.float32)
        M.eliminate_zeros()
        return M

    def fit(self, interactions: Interactions) -> "EASERecommender":
        _check_positive("l2", self.l2)
        _check_positive("max_items", self.max_items, integer=True)
        _check_positive("half_life_days", self.half_life_days, allow_none=True)
        X = self._check_interactions(interactions)
        self._fit_popularity(X)
        items = np.sort(self.popularity_order_[:int(self.max_items)])
        M = self._user_matrix(X)[:, items]
        G = (M.T @ M).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += float(self.l2)
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))[None, :]
        B[np.diag_indices_from(B)] = 0.0
        self.B_ = B.astype(np.float32)
        self.items_ = items
        self.n_items_ = X.n_items
        self.interactions_ = X
        return self

    def scores(self, customer_ids: Iterable[str]) -> np.ndarray:
        """Dense EASE scores (customers in the given order x the ``items_`` columns); 0 rows for
        customers without history."""
        self._check_fitted()
        ids, rows = self._rows_of(customer_ids)
        out = np.zeros((len(ids), self.items_.size), dtype=np.float32)
        known = np.flatnonzero(rows >= 0)
        if known.size:
            U = self._user_matrix(self.interactions_, rows[known], decay=True)[:, self.items_]
            out[known] = np.asarray(U @ self.B_)
        return out

    def recommend(self, customer_ids: Iterable[str], n: int = 10, exclude_purchased: bool = True,
                  category: str | None = None) -> pd.DataFrame:
        """Top ``n`` items per customer by ``x_u B`` (``source`` "ease"; "popularity" for fill-ups)."""
        self._check_fitted()
        n = self._check_n(n)
        cat_mask = self._category_mask(category)
        ids, rows = self._rows_of(customer_ids)
        X = self.interactions_
        items = self.items_
        allowed = np.ones(items.size, dtype=bool) if cat_mask is None else cat_mask[items]
        parts_j, parts_c, parts_v = [], [], []
        known = np.flatnonzero(rows >= 0)
        for b0 in range(0, known.size, _EASE_BATCH):
            kb = known[b0:b0 + _EASE_BATCH]
            S = self.scores(ids[kb])
            S[:, ~allowed] = -np.inf
            if exclude_purchased:
                bought = X.purchased[rows[kb]][:, items].toarray()
                S[bought] = -np.inf
            m = min(n, items.size)
            top = np.argpartition(-S, m - 1, axis=1)[:, :m] if m < items.size else \
                np.tile(np.arange(items.size), (len(kb), 1))
            vals = np.take_along_axis(S, top, axis=1)
            cols = items[top]
            o = np.lexsort((cols, -vals), axis=1)  # best first, ties by item code
            cols, vals = np.take_along_axis(cols, o, axis=1), np.take_along_axis(vals, o, axis=1)
            ok = np.isfinite(vals)
            parts_j.append(np.repeat(kb, ok.sum(axis=1)))
            parts_c.append(cols[ok])
            parts_v.append(vals[ok])
        cat = (lambda a: np.concatenate(a) if a else np.empty(0))
        return _assemble(self, ids, rows, cat(parts_j).astype(np.int64), cat(parts_c).astype(np.int64),
                         cat(parts_v), n, exclude_purchased, cat_mask, self._source_name)
