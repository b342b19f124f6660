"""Interactions and the hand-written recommenders: item-based collaborative filtering and popularity.

The pieces, in the order they run:

* ``load_interactions(wh, dataset, start, end, weights)`` aggregates the events
  table in DuckDB (values bound as parameters) to one row per (customer, item)
  with a weighted strength (purchases count fully, carts and views as weaker
  signals) and builds a ``scipy.sparse`` CSR matrix customers x items from integer
  codes. Customer and item codes follow the sorted ids, so every result is
  deterministic.
* ``ItemCF`` is the item-based top-N recommender of Deshpande & Karypis
  (2004, "Item-based top-N recommendation algorithms", ACM TOIS 22(1)):
  item-item cosine similarity with a shrinkage term in the denominator
  (``sim(i, j) = x_i . x_j / (|x_i| |x_j| + shrinkage)``, the shrunk cosine of
  the item-kNN baselines in Dacrema et al. 2019), only the ``n_neighbors`` most
  similar items kept per item (a sparse items x k matrix, computed block by
  block, never a dense items x items matrix), and a customer's scores
  ``x_u @ S``. Already purchased items can be excluded and the result restricted
  to one category. Customers without history (or with too few candidates) are
  filled from the popularity ranking; the ``source`` column says which rows came
  from where.
* ``PopularityRecommender`` is the baseline: most purchased items (distinct
  buyers) in the training window, same API and the same exclusion rules.
* the evaluation of every model on one time holdout lives in
  ``analytics.recommend.evaluate``.

Ties are broken by item id (ascending) everywhere, so the same data gives the
same recommendations.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from analytics.dates import parse_day
from analytics.warehouse import EVENT_TYPES, Warehouse, WarehouseError

DEFAULT_WEIGHTS: dict[str, float] = {"purchase": 1.0, "cart": 0.3, "view": 0.1}
TRANSFORMS = ("log1p", "binary", "none")
# one similarity block holds at most about this many (item, item) products before top-k selection
_BLOCK_BUDGET = 3_000_000
# customers scored at once in ``recommend``
_RECOMMEND_BATCH = 8_192


class RecommendError(ValueError):
    """A recommendation request the user can fix (message is one user-facing line)."""


class NotFittedError(RecommendError, AttributeError):
    """A recommender was used before ``fit`` (the role of scikit-learn's NotFittedError)."""


# ---------------------------------------------------------------------------- interactions
@dataclasses.dataclass
class Interactions:
    """Customers x items interaction strengths and the id lists behind the codes.

    ``matrix[u, i]`` is the weighted sum of customer ``u``'s events on item ``i``
    (``weights`` per event type); ``purchased[u, i]`` is True when ``u`` bought
    ``i`` in the window. Rows follow ``customer_ids`` and columns ``item_ids``
    (both sorted ascending); ``item_category[i]`` is the item's category ("" when
    unknown).
    """

    matrix: sp.csr_matrix
    purchased: sp.csr_matrix
    customer_ids: np.ndarray
    item_ids: np.ndarray
    item_category: np.ndarray
    dataset: str | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    weights: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    #: days from each (customer, item)'s last weighted event to the end of the window, aligned
    #: with ``matrix`` (same sparsity); None when unknown (then recency-aware models treat every
    #: interaction as recent)
    age_days: sp.csr_matrix | None = None
    #: days from each purchased pair's last purchase to the end of the window (aligned with ``purchased``)
    purchase_age_days: sp.csr_matrix | None = None
    #: every customer's weighted events in time order as item codes: ``seq_items[seq_indptr[u]:
    #: seq_indptr[u + 1]]`` (``seq_purchase`` marks purchases); None unless asked for
    seq_indptr: np.ndarray | None = None
    seq_items: np.ndarray | None = None
    seq_purchase: np.ndarray | None = None

    def __post_init__(self):
        self.matrix = sp.csr_matrix(self.matrix, dtype=np.float32)
        self.purchased = sp.csr_matrix(self.purchased, dtype=bool)
        self.customer_ids = np.asarray(self.customer_ids, dtype=object)
        self.item_ids = np.asarray(self.item_ids, dtype=object)
        self.item_category = np.asarray(self.item_category, dtype=object)
        n_c, n_i = len(self.customer_ids), len(self.item_ids)
        if self.matrix.shape != (n_c, n_i) or self.purchased.shape != (n_c, n_i):
            raise RecommendError(
                f"interaction matrices must be {n_c} customers x {n_i} items, got "
                f"{self.matrix.shape} and {self.purchased.shape}")
        if len(self.item_category) != n_i:
            raise RecommendError("item_category must have one entry per item")
        for name, like in (("age_days", self.matrix), ("purchase_age_days", self.purchased)):
            value = getattr(self, name)
            if value is not None:
                value = sp.csr_matrix(value, dtype=np.float32)
                if value.shape != like.shape:
                    raise RecommendError(f"{name} must have the shape of the interaction matrix")
                setattr(self, name, value)
        self._customer_index: pd.Index | None = None

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def customer_index(self) -> pd.Index:
        """``pd.Index`` of customer ids (position = row code)."""
        if self._customer_index is None:
            self._customer_index = pd.Index(self.customer_ids)
        return self._customer_index

    def categories(self) -> list[str]:
        """The distinct non-empty item categories, sorted."""
        return sorted({c for c in self.item_category if c})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, item_category: Mapping[str, str] | None = None,
                   **meta) -> "Interactions":
        """Build from a long frame [customer_id, item_id, strength, purchased (bool)].

        Several rows for the same (customer, item) are added up (``purchased``: any).
        """
        missing = {"customer_id", "item_id", "strength"} - set(frame.columns)
        if missing:
            raise RecommendError(f"interaction frame lacks columns: {', '.join(sorted(missing))}")
        cust_codes, cust_ids = _sorted_codes(frame["customer_id"].to_numpy())
        item_codes, item_ids = _sorted_codes(frame["item_id"].to_numpy())
        shape = (len(cust_ids), len(item_ids))
        strength = frame["strength"].to_numpy(dtype=np.float32)
        bought = (frame["purchased"].to_numpy(dtype=bool) if "purchased" in frame
                  else np.ones(len(frame), dtype=bool))
        matrix = sp.csr_matrix((strength, (cust_codes, item_codes)), shape=shape, dtype=np.float32)
        purchased = sp.csr_matrix((bought.astype(np.float32), (cust_codes, item_codes)), shape=shape)
        purchased.data = purchased.data > 0
        purchased.eliminate_zeros()
        cats = item_category or {}
        item_cat = np.array([str(cats.get(i) or "") for i in item_ids], dtype=object)
        return cls(matrix, purchased, cust_ids, item_ids, item_cat, **meta)


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..n-1 that follow the sorted distinct values."""
    uniques, codes = np.unique(values.astype(str) if values.dtype != object else values, return_inverse=True)
    return codes.astype(np.int32), uniques.astype(object)


def _timestamp(value, what: str) -> pd.Timestamp | None:
    return parse_day(value, what, RecommendError, required=False, normalize=False)


def _check_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    out: dict[str, float] = {}
    for event_type, w in dict(weights).items():
        if event_type not in EVENT_TYPES:
            raise RecommendError(
                f"unknown event type {event_type!r} in weights (known: {', '.join(EVENT_TYPES)})")
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise RecommendError(f"weight of {event_type!r} is not a number: {w!r}") from None
        if not np.isfinite(w) or w < 0:
            raise RecommendError(f"weight of {event_type!r} must be a number >= 0, got {w}")
        if w > 0:
            out[event_type] = w
    if not out.get("purchase"):
        raise RecommendError("the purchase weight must be above 0 (recommendations are built on purchases)")
    return out


def load_interactions(wh: Warehouse, dataset: str, start=None, end=None,
                      weights: Mapping[str, float] | None = None, *, sequences: bool = False) -> Interactions:
    """Customer x item interaction strengths of ``dataset`` for events in ``[start, end)``.

    ``weights`` maps event types to the weight of one event (default
    purchase 1.0, cart 0.3, view 0.1; event types missing or at 0 are left
    out). The aggregation runs in DuckDB; the matrix is built from integer codes.
    Raises ``RecommendError`` for an unknown dataset, bad dates or weights, or a
    window with no item events at all.
    """
    weights = _check_weights(weights)
    start_ts, end_ts = _timestamp(start, "start"), _timestamp(end, "end")
    if start_ts is not None and end_ts is not None and start_ts >= end_ts:
        raise RecommendError(f"start {start_ts.date()} must be before end {end_ts.date()}")
    try:
        wh.require_dataset(dataset)
    except WarehouseError as exc:
        raise RecommendError(str(exc)) from None
    types = list(weights)
    sql = """
        WITH w AS (SELECT unnest(?::VARCHAR[]) AS event_type, unnest(?::DOUBLE[]) AS weight)
        SELECT e.customer_id, e.item_id,
               sum(w.weight)::FLOAT AS strength,
               bool_or(e.event_type = 'purchase') AS purchased,
               max(e.event_time) AS last_time,
               max(e.event_time) FILTER (WHERE e.event_type = 'purchase') AS last_purchase
        FROM events e JOIN w ON e.event_type = w.event_type
        WHERE e.dataset = ? AND e.item_id IS NOT NULL AND e.customer_id IS NOT NULL
          AND (?::TIMESTAMP IS NULL OR e.event_time >= ?::TIMESTAMP)
          AND (?::TIMESTAMP IS NULL OR e.event_time < ?::TIMESTAMP)
        GROUP BY e.customer_id, e.item_id
    """
    s = start_ts.to_pydatetime() if start_ts is not None else None
    e = end_ts.to_pydatetime() if end_ts is not None else None
    params = [types, [weights[t] for t in types], dataset, s, s, e, e]
    cur = wh.cursor()
    try:
        table = cur.sql(sql, params=params).to_arrow_table()
        cats = cur.execute(
            """
            SELECT item_id, arg_max(category, n) AS category FROM (
                SELECT item_id, category, count(*) AS n FROM events
                WHERE dataset = ? AND item_id IS NOT NULL AND category IS NOT NULL
                GROUP BY item_id, category)
            GROUP BY item_id
            """, [dataset]).fetchall()
    finally:
        cur.close()
    window = _window_words(start_ts, end_ts)
    if table.num_rows == 0:
        raise RecommendError(f"dataset {dataset!r} has no item events ({', '.join(types)}){window}")
    cust_codes, cust_ids = _arrow_codes(table.column("customer_id"))
    item_codes, item_ids = _arrow_codes(table.column("item_id"))
    shape = (len(cust_ids), len(item_ids))
    strength = table.column("strength").to_numpy().astype(np.float32)
    bought = table.column("purchased").to_numpy(zero_copy_only=False).astype(bool)
    matrix = sp.csr_matrix((strength, (cust_codes, item_codes)), shape=shape, dtype=np.float32)
    purchased = sp.csr_matrix((np.ones(int(bought.sum()), dtype=bool), (cust_codes[bought], item_codes[bought])),
                              shape=shape, dtype=bool)
    # ages against the end of the window (or the last event when the window is open-ended)
    last = _arrow_us(table.column("last_time"))
    ref = (end_ts.value // 1000) if end_ts is not None else int(last.max()) + 1
    day_us = 86_400 * 10**6
    # +1e-3 day keeps an event at the very end a stored (non-zero) entry
    age = ((ref - last) / day_us + 1e-3).astype(np.float32)
    age_days = sp.csr_matrix((age, (cust_codes, item_codes)), shape=shape, dtype=np.float32)
    lp = _arrow_us(table.column("last_purchase"))[bought]
    p_age = ((ref - lp) / day_us + 1e-3).astype(np.float32)
    purchase_age = sp.csr_matrix((p_age, (cust_codes[bought], item_codes[bought])), shape=shape, dtype=np.float32)
    cat_map = dict(cats)
    item_cat = np.array([cat_map.get(i) or "" for i in item_ids], dtype=object)
    out = Interactions(matrix, purchased, cust_ids, item_ids, item_cat, dataset=dataset,
                       start=start_ts, end=end_ts, weights=weights, age_days=age_days,
                       purchase_age_days=purchase_age)
    if sequences:
        _attach_sequences(wh, out, types, s, e)
    return out


def _arrow_us(column) -> np.ndarray:
    """Microseconds since the epoch of an Arrow timestamp column (nulls -> 0)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pc.fill_null(column.cast(pa.timestamp("us")), pa.scalar(0, pa.timestamp("us")))
    return col.cast(pa.int64()).to_numpy().astype(np.int64)


def _attach_sequences(wh: Warehouse, X: Interactions, types: list[str], s, e) -> None:
    """Each customer's weighted events in time order (item codes of ``X``), for sequence models.
    Repeats of the same item in a row (a view, then the cart add, then the purchase) keep one
    token, marked as a purchase when any of them was one."""
    cur = wh.cursor()
    try:
        t = cur.sql(
            """
            SELECT customer_id, item_id, event_type = 'purchase' AS is_purchase FROM events
            WHERE dataset = ? AND item_id IS NOT NULL AND customer_id IS NOT NULL
              AND list_contains(?::VARCHAR[], event_type)
              AND (?::TIMESTAMP IS NULL OR event_time >= ?::TIMESTAMP)
              AND (?::TIMESTAMP IS NULL OR event_time < ?::TIMESTAMP)
            ORDER BY customer_id, event_time, (event_type = 'purchase'), item_id
            """, params=[X.dataset, types, s, s, e, e]).to_arrow_table()
    finally:
        cur.close()
    cust = X.customer_index.get_indexer(np.asarray(t.column("customer_id").to_pylist(), dtype=object))
    item = pd.Index(X.item_ids).get_indexer(np.asarray(t.column("item_id").to_pylist(), dtype=object))
    buy = t.column("is_purchase").to_numpy(zero_copy_only=False).astype(bool)
    # rows come sorted by customer id = row code order; collapse repeats of one item in a row
    new = np.ones(len(cust), dtype=bool)
    if len(cust) > 1:
        new[1:] = (cust[1:] != cust[:-1]) | (item[1:] != item[:-1])
    group = np.cumsum(new) - 1
    seq_buy = np.zeros(int(new.sum()), dtype=bool)
    np.logical_or.at(seq_buy, group, buy)
    seq_cust, seq_item = cust[new], item[new]
    counts = np.bincount(seq_cust, minlength=X.n_customers)
    X.seq_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    X.seq_items = seq_item.astype(np.int64)
    X.seq_purchase = seq_buy


def _window_words(start_ts, end_ts) -> str:
    if start_ts is None and end_ts is None:
        return ""
    from analytics.formatting import date

    a = date(start_ts) if start_ts is not None else "the start"
    b = date(end_ts) if end_ts is not None else "the end"
    return f" between {a} and {b}"


def _arrow_codes(column) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..n-1 following the sorted distinct values of an Arrow string column (hash-based, C++)."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column).combine_chunks()
    dictionary = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(dictionary.astype(str), kind="stable")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[codes], dictionary[order]


# ---------------------------------------------------------------------------- top-k helpers
def _desc_order(mat: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Order of ``mat``'s entries by (row, value descending, column); also each entry's row.

    Needs canonical CSR (sorted indices, no duplicates) and positive finite values. The
    (row, value) pair is packed into one int64 key (a positive float32's bit pattern
    orders like its value) and sorted stably, so equal values keep column order; about
    20x faster than ``np.lexsort`` on the three keys.
    """
    counts = np.diff(mat.indptr)
    rows = np.repeat(np.arange(mat.shape[0], dtype=np.int64), counts)
    bits = np.ascontiguousarray(mat.data, dtype=np.float32).view(np.int32).astype(np.int64)
    key = (rows << 31) | (0x7FFFFFFF - bits)
    return np.argsort(key, kind="stable"), rows


def _canonical_positive(mat) -> sp.csr_matrix:
    mat = sp.csr_matrix(mat, dtype=np.float32)
    mat.sum_duplicates()  # also sorts the indices
    mat.data[~(mat.data > 0)] = 0  # drops zeros, negatives and NaN
    mat.eliminate_zeros()
    return mat


def _row_topk(mat: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest positive entries of every row (ties: smaller column first)."""
    mat = _canonical_positive(mat)
    counts = np.diff(mat.indptr)
    if counts.size == 0 or counts.max(initial=0) <= k:
        return mat
    order, _ = _desc_order(mat)
    rank = np.arange(order.size, dtype=np.int64) - np.repeat(mat.indptr[:-1].astype(np.int64), counts)
    keep = np.sort(order[rank < k])  # back to (row, column) order
    kept = np.minimum(counts, k)
    indptr = np.concatenate([[0], np.cumsum(kept)])
    return sp.csr_matrix((mat.data[keep], mat.indices[keep], indptr), shape=mat.shape)


def _ranked_entries(mat: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, rank 1..n, column, value) of the top ``n`` positive entries per row, best first."""
    mat = _canonical_positive(mat)
    counts = np.diff(mat.indptr)
    order, rows = _desc_order(mat)
    rank = np.arange(order.size, dtype=np.int64) - np.repeat(mat.indptr[:-1].astype(np.int64), counts)
    keep = rank < n
    sel = order[keep]
    return rows[sel], rank[keep] + 1, mat.indices[sel].astype(np.int64), mat.data[sel]


# ---------------------------------------------------------------------------- recommenders
class _BaseRecommender:
    """Shared parts: fitted check, popularity ranking, result frames, fill-up."""

    def get_params(self, deep: bool = True) -> dict:
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params):
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise RecommendError(f"unknown parameter {key!r} for {type(self).__name__}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self):
        if not hasattr(self, "interactions_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(interactions) first")

    @staticmethod
    def _check_interactions(interactions) -> Interactions:
        if not isinstance(interactions, Interactions):
            raise RecommendError("fit expects the Interactions returned by load_interactions")
        if interactions.purchased.nnz == 0:
            where = f"dataset {interactions.dataset!r}" if interactions.dataset else "the interactions"
            window = _window_words(interactions.start, interactions.end)
            raise RecommendError(f"{where} has no purchases with an item{window}: nothing to recommend from")
        return interactions

    def _fit_popularity(self, X: Interactions) -> None:
        buyers = np.asarray(X.purchased.sum(axis=0)).ravel().astype(np.float64)
        strength = np.asarray(X.matrix.sum(axis=0)).ravel().astype(np.float64)
        # most buyers first, then strongest overall interest, then item id
        self.popularity_ = buyers
        self.popularity_order_ = np.lexsort((np.arange(X.n_items), -strength, -buyers))

    def _category_mask(self, category) -> np.ndarray | None:
        if category is None:
            return None
        X = self.interactions_
        cats = X.item_category
        mask = cats == category
        if not mask.any():
            known = X.categories()
            shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
            raise RecommendError(f"unknown category {category!r} (categories: {shown or 'none'})")
        return mask

    @staticmethod
    def _check_n(n) -> int:
        try:
            ok = int(n) == n and int(n) >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise RecommendError(f"number of recommendations must be a whole number >= 1, got {n!r}")
        return int(n)

    def _rows_of(self, customer_ids) -> tuple[np.ndarray, np.ndarray]:
        """Customer ids as an array and their row codes (-1 for customers without history)."""
        if isinstance(customer_ids, (str, bytes)):
            customer_ids = [customer_ids]
        ids = pd.Index(pd.unique(np.asarray(list(customer_ids), dtype=object)))
        rows = self.interactions_.customer_index.get_indexer(ids)
        return ids.to_numpy(dtype=object), rows.astype(np.int64)

    def _popular_fill(self, rows: np.ndarray, need: np.ndarray, taken: sp.csr_matrix | None,
                      exclude_purchased: bool, cat_mask: np.ndarray | None):
        """Up to ``need[j]`` popular items for history row ``rows[j]`` (-1 = none), skipping
        purchased (when asked) and already ``taken`` items. Returns (j, column) arrays in order."""
        X = self.interactions_
        order = self.popularity_order_
        if cat_mask is not None:
            order = order[cat_mask[order]]
        out_j, out_c = [], []
        todo = np.flatnonzero(need > 0)
        pool = max(int(need.max(initial=0)) * 2, 16)
        while todo.size and order.size:
            cand = order[:pool]
            blocked = np.zeros((todo.size, cand.size), dtype=bool)
            known = rows[todo] >= 0
            if exclude_purchased and known.any():
                blocked[known] |= X.purchased[rows[todo[known]]][:, cand].toarray()
            if taken is not None:
                blocked |= taken[todo][:, cand].toarray() > 0
            free = ~blocked
            enough = free.sum(axis=1) >= need[todo]
            done = np.flatnonzero(enough | (cand.size >= order.size))
            if done.size:
                # the first need[row] free candidates of each finished row, in popularity order
                f = free[done]
                take = f & (np.cumsum(f, axis=1) <= need[todo[done]][:, None])
                r, c = np.nonzero(take)
                out_j.append(todo[done][r])
                out_c.append(cand[c])
            todo = np.delete(todo, done)
            pool *= 4
        if not out_j:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        j, c = np.concatenate(out_j).astype(np.int64), np.concatenate(out_c).astype(np.int64)
        order = np.argsort(j, kind="stable")  # rows in input order, each in popularity order
        return j[order], c[order]

    def _frame(self, ids, j, rank, cols, score, source) -> pd.DataFrame:
        X = self.interactions_
        frame = pd.DataFrame({
            "customer_id": ids[j],
            "rank": rank.astype(np.int64),
            "item_id": X.item_ids[cols],
            "category": X.item_category[cols],
            "score": score.astype(np.float64),
            "source": source,
        })
        return frame


def _assemble(model: "_BaseRecommender", ids: np.ndarray, rows: np.ndarray, j: np.ndarray, cols: np.ndarray,
              vals: np.ndarray, n: int, exclude_purchased: bool, cat_mask: np.ndarray | None,
              source: str) -> pd.DataFrame:
    """Result frame from a model's own picks (``j`` = position in ``ids``, grouped and best first)
    topped up from the popularity ranking where a customer got fewer than ``n``."""
    X = model.interactions_
    j = np.asarray(j, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    got = np.bincount(j, minlength=len(ids))
    rank = _rank_within(j)
    taken = sp.csr_matrix((np.ones(j.size, dtype=np.float32), (j, cols)), shape=(len(ids), X.n_items))
    fj, fcols = model._popular_fill(rows, n - got, taken, exclude_purchased, cat_mask)
    frank = _rank_within(fj) + got[fj] if fj.size else np.empty(0, dtype=np.int64)
    bj = np.concatenate([j, fj])
    brank = np.concatenate([rank, frank])
    order = np.lexsort((brank, bj))
    own = np.concatenate([np.ones(j.size, bool), np.zeros(fj.size, bool)])[order]
    return model._frame(ids, bj[order], brank[order], np.concatenate([cols, fcols])[order],
                        np.concatenate([np.asarray(vals, dtype=np.float64), np.zeros(fj.size)])[order],
                        np.where(own, source, "popularity"))


class PopularityRecommender(_BaseRecommender):
    """Baseline: the most purchased items of the training window for everybody.

    Items are ranked by the number of distinct customers who bought them, then by
    total interaction strength, then by item id. ``recommend`` applies the same
    rules as ``ItemCF`` (exclude what the customer bought, optional category).
    """

    def __init__(self):
        pass

    def fit(self, interactions: Interactions) -> "PopularityRecommender":
        X = self._check_interactions(interactions)
        self._fit_popularity(X)
        self.n_items_ = X.n_items
        self.interactions_ = X
        return self

    def recommend(self, customer_ids: Iterable[str], n: int = 10, exclude_purchased: bool = True,
                  category: str | None = None) -> pd.DataFrame:
        """Top ``n`` items per customer: DataFrame[customer_id, rank, item_id, category, score, source].

        ``score`` is the item's number of buyers in the training window; ``source`` is "popularity".
        """
        self._check_fitted()
        n = self._check_n(n)
        cat_mask = self._category_mask(category)
        ids, rows = self._rows_of(customer_ids)
        j, cols = self._popular_fill(rows, np.full(len(ids), n, dtype=np.int64), None,
                                     exclude_purchased, cat_mask)
        rank = _rank_within(j)
        return self._frame(ids, j, rank, cols, self.popularity_[cols], "popularity")


def _rank_within(j: np.ndarray) -> np.ndarray:
    """1-based position of each entry within its run of equal ``j`` (``j`` grouped, in order)."""
    if j.size == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, j[1:] != j[:-1]])
    lengths = np.diff(np.r_[starts, j.size])
    return np.arange(j.size) - np.repeat(starts, lengths) + 1


class ItemCF(_BaseRecommender):
    """Item-based top-N collaborative filtering (Deshpande & Karypis 2004).

    Parameters
    ----------
    n_neighbors : most similar items kept per item (the model's size is items x n_neighbors).
    shrinkage : added to the cosine's denominator; damps similarities resting on few customers.
        The default 25 was chosen on validation splits inside the training window of the bundled
        sample (three quarterly folds 2024-10 .. 2025-06, never the 2025-07 .. 2025-12 test
        holdout): mean precision@10 0.036 at 10, 0.038 at 25, 50 or 100, 0.025 without shrinkage.
    transform : how a customer's interaction strength enters the matrix: "log1p" (default,
        dampens heavy repeat interaction), "binary" or "none".
    normalize : scale each item's kept similarities to sum 1 (Deshpande & Karypis' row
        normalization), so items with many strong neighbours do not dominate the scores.
    block_budget : (item, item) products computed per block before the top-k cut
        (bounds memory; does not change the result).

    Fitted attributes: ``similarity_`` (CSR items x items, at most ``n_neighbors`` per row;
    ``similarity_[i, j]`` = how much having ``i`` recommends ``j``), ``item_norms_``,
    ``popularity_``, ``popularity_order_``, ``n_items_``, ``interactions_``.

    Customers without history, and customers whose neighbourhood offers fewer than ``n``
    candidates, are filled from the popularity ranking (``source`` = "popularity", score 0).
    """

    _source_name = "item_cf"

    def __init__(self, n_neighbors: int = 50, shrinkage: float = 25.0, transform: str = "log1p",
                 normalize: bool = False, block_budget: int = _BLOCK_BUDGET):
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.transform = transform
        self.normalize = normalize
        self.block_budget = block_budget

    def _validate_params(self):
        if not isinstance(self.n_neighbors, (int, np.integer)) or self.n_neighbors < 1:
            raise RecommendError(f"n_neighbors must be a whole number >= 1, got {self.n_neighbors!r}")
        try:
            shrink = float(self.shrinkage)
        except (TypeError, ValueError):
            shrink = -1.0
        if not np.isfinite(shrink) or shrink < 0:
            raise RecommendError(f"shrinkage must be a number >= 0, got {self.shrinkage!r}")
        if self.transform not in TRANSFORMS:
            raise RecommendError(f"transform must be one of {', '.join(TRANSFORMS)}, got {self.transform!r}")
        if int(self.block_budget) < 1:
            raise RecommendError("block_budget must be >= 1")

    def _transformed(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        if self.transform == "log1p":
            np.log1p(m.data, out=m.data)
        elif self.transform == "binary":
            m.data[:] = 1.0
        m.eliminate_zeros()
        return m

    def fit(self, interactions: Interactions) -> "ItemCF":
        self._validate_params()
        X = self._check_interactions(interactions)
        R = self._transformed(X.matrix)
        self.item_norms_ = np.sqrt(np.asarray(R.multiply(R).sum(axis=0)).ravel()).astype(np.float32)
        self.similarity_ = self._similarity(R)
        self._fit_popularity(X)
        self.n_items_ = X.n_items
        self.interactions_ = X
        return self

    def _similarity(self, R: sp.csr_matrix) -> sp.csr_matrix:
        """Shrunk cosine between items, top ``n_neighbors`` per item, computed in item blocks."""
        k = int(self.n_neighbors)
        shrink = np.float32(self.shrinkage)
        norms = self.item_norms_
        RT = R.T.tocsr()  # items x customers
        # cost of item i's row of R^T R: sum over its customers of their item counts
        user_nnz = np.diff(R.indptr).astype(np.float64)
        ones = sp.csr_matrix((np.ones(RT.nnz), RT.indices, RT.indptr), shape=RT.shape)
        cost = np.asarray(ones @ user_nnz).ravel()
        n_items = R.shape[1]
        parts = []
        lo = 0
        budget = float(self.block_budget)
        cum = np.cumsum(cost)
        while lo < n_items:
            base = cum[lo - 1] if lo else 0.0
            hi = int(np.searchsorted(cum, base + budget, side="right"))
            hi = min(max(hi, lo + 1), n_items)
            block = (RT[lo:hi] @ R).tocsr()  # (hi-lo) x items dot products
            block.sum_duplicates()
            rows = np.repeat(np.arange(lo, hi), np.diff(block.indptr))
            cols = block.indices
            denom = norms[rows] * norms[cols] + shrink
            with np.errstate(divide="ignore", invalid="ignore"):
                block.data = np.where(denom > 0, block.data / denom, 0).astype(np.float32)
            block.data[rows == cols] = 0  # an item does not recommend itself
            block.eliminate_zeros()
            parts.append(_row_topk(block, k))
            lo = hi
        S = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((n_items, n_items), dtype=np.float32)
        S = S.astype(np.float32)
        if self.normalize and S.nnz:
            sums = np.asarray(S.sum(axis=1)).ravel()
            scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0).astype(np.float32)
            S = sp.diags(scale) @ S
            S = S.tocsr()
        return S

    def recommend(self, customer_ids: Iterable[str], n: int = 10, exclude_purchased: bool = True,
                  category: str | None = None) -> pd.DataFrame:
        """Top ``n`` items per customer: DataFrame[customer_id, rank, item_id, category, score, source].

        ``score`` is the item-kNN score ``x_u @ S`` (0 for popularity fill-ups); ``source`` is
        "item_cf" or "popularity" (customer without history in the training window, or
        fewer than ``n`` candidates from the neighbourhood). Customers appear in the order given;
        items by rank. Raises ``RecommendError`` for n < 1 or an unknown category.
        """
        self._check_fitted()
        n = self._check_n(n)
        cat_mask = self._category_mask(category)
        ids, rows = self._rows_of(customer_ids)
        X = self.interactions_
        parts_j, parts_rank, parts_col, parts_val, parts_cf = [], [], [], [], []
        for b0 in range(0, len(ids), _RECOMMEND_BATCH):
            b_rows = rows[b0:b0 + _RECOMMEND_BATCH]
            known = np.flatnonzero(b_rows >= 0)
            if known.size:
                scores = (self._transformed(X.matrix[b_rows[known]]) @ self.similarity_).tocsr()
                if exclude_purchased:
                    # purchased entries become hugely negative; _ranked_entries keeps only scores > 0
                    scores = (scores - X.purchased[b_rows[known]].astype(np.float32) * np.float32(1e30)).tocsr()
                if cat_mask is not None:
                    scores.data[~cat_mask[scores.indices]] = 0
                kj, rank, cols, vals = _ranked_entries(scores, n)
                j = known[kj]
            else:
                j = rank = cols = np.empty(0, dtype=np.int64)
                vals = np.empty(0, dtype=np.float32)
            got = np.bincount(j, minlength=len(b_rows))
            taken = sp.csr_matrix((np.ones(j.size, dtype=np.float32), (j, cols)), shape=(len(b_rows), X.n_items))
            fj, fcols = self._popular_fill(b_rows, n - got, taken, exclude_purchased, cat_mask)
            frank = _rank_within(fj) + got[fj] if fj.size else np.empty(0, dtype=np.int64)
            bj = np.concatenate([j, fj])
            brank = np.concatenate([rank, frank])
            order = np.lexsort((brank, bj))
            parts_j.append(bj[order] + b0)
            parts_rank.append(brank[order])
            parts_col.append(np.concatenate([cols, fcols])[order])
            parts_val.append(np.concatenate([vals.astype(np.float64), np.zeros(fj.size)])[order])
            parts_cf.append(np.concatenate([np.ones(j.size, bool), np.zeros(fj.size, bool)])[order])
        if not parts_j:
            return self._frame(ids, np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int64),
                               np.empty(0), self._source_name)
        cf = np.concatenate(parts_cf)
        return self._frame(ids, np.concatenate(parts_j), np.concatenate(parts_rank), np.concatenate(parts_col),
                           np.concatenate(parts_val), np.where(cf, self._source_name, "popularity"))

    def similar_items(self, item_id: str, n: int = 10) -> pd.DataFrame:
        """The ``n`` items most similar to ``item_id``: DataFrame[item_id, category, similarity]."""
        self._check_fitted()
        n = self._check_n(n)
        X = self.interactions_
        pos = np.flatnonzero(X.item_ids == item_id)
        if pos.size == 0:
            raise RecommendError(f"unknown item {item_id!r}")
        row = self.similarity_[int(pos[0])]
        order = np.lexsort((row.indices, -row.data))[:n]
        cols = row.indices[order]
        return pd.DataFrame({"item_id": X.item_ids[cols], "category": X.item_category[cols],
                             "similarity": row.data[order].astype(np.float64)})


# ---------------------------------------------------------------------------- output helpers
def recommendations_text(recs: pd.DataFrame, sep: str = "; ") -> pd.Series:
    """One string per customer, items in rank order: customer_id -> "SKU1; SKU2; ..." (sorted by
    customer id). Vectorized over the (at most n) rank columns, not a Python join per customer."""
    if recs is None or len(recs) == 0:
        return pd.Series([], index=pd.Index([], name="customer_id"), dtype=object, name="recommended_items")
    wide = recs.pivot(index="customer_id", columns="rank", values="item_id").sort_index(axis=1)
    out = any_ = None
    for col in wide.columns:
        vals = wide[col].to_numpy(dtype=object)
        have = pd.notna(vals)
        item = np.where(have, vals, "").astype(str).astype(object)
        if out is None:
            out, any_ = item, have
        else:
            out = np.where(have, np.where(any_, out + sep, "") + item, out).astype(object)
            any_ = any_ | have
    text = pd.Series(out, index=wide.index, dtype=object, name="recommended_items")
    text.index.name = "customer_id"
    return text.sort_index()


# ---------------------------------------------------------------------------- evaluation
def data_range(wh: Warehouse, dataset: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last event time of ``dataset`` (None, None when it has no events)."""
    row = wh.cursor().execute(
        "SELECT min(event_time), max(event_time) FROM events WHERE dataset = ?", [dataset]).fetchone()
    return (pd.Timestamp(row[0]) if row[0] is not None else None,
            pd.Timestamp(row[1]) if row[1] is not None else None)


def _event_span(wh: Warehouse, dataset: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last event times of ``dataset`` (RecommendError if it is unknown or empty)."""
    try:
        wh.require_dataset(dataset)
    except WarehouseError as exc:
        raise RecommendError(str(exc)) from None
    lo, hi = data_range(wh, dataset)
    if lo is None:
        raise RecommendError(f"dataset {dataset!r} has no events")
    return lo, hi


def holdout_window(wh: Warehouse, dataset: str, days: int = 90) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A default ``(split, end)`` for ``evaluate_holdout``: the last ``days`` days of the data.

    ``end`` is the day after the last event, ``split`` is ``days`` before it. Raises
    ``RecommendError`` when the data does not reach back before ``split``.
    """
    days = _BaseRecommender._check_n(days)
    lo, hi = _event_span(wh, dataset)
    end = hi.normalize() + pd.Timedelta(days=1)
    split = end - pd.Timedelta(days=days)
    if lo >= split:
        span = (end - lo.normalize()).days
        raise RecommendError(f"dataset {dataset!r} spans {span} days: a {days}-day holdout leaves no history "
                             "to train on (choose fewer days)")
    return split, end
