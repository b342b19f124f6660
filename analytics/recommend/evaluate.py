"""One honest evaluation for every recommender, and the choice of the default model.

Rules (the same for every model):

* a time split: models learn from the events before ``split``; the holdout is the
  purchases in ``[split, end)``;
* evaluated customers: those with some event before ``split`` who bought, in the
  holdout, an item that counts; with ``exclude_purchased=True`` (default) only items
  they had not bought before count, and every model excludes what the customer
  bought before; with ``False`` re-purchases count too and nothing is excluded;
* every model recommends ``k`` items to every evaluated customer;
* metrics, averaged over the evaluated customers: precision@k = hits / k,
  recall@k = hits / relevant items, F1@k = the harmonic mean of the two averages,
  NDCG@k (binary relevance: sum of 1 / log2(rank + 1) over the hits, divided by its
  best possible value for that customer); coverage = distinct items recommended /
  items in the training catalogue.

Hyperparameters and the default model are chosen on **validation windows inside the
training period** (``validate_models``): the last ``fold_days`` before ``split`` (and
optionally earlier folds of the same length, back to back or, with ``step_days``, cut off
every ``step_days`` so they overlap) play the holdout for models trained on the events
before them. ``evaluate_holdout`` uses three such cut-offs a third of a window apart by
default: the same horizon as the holdout (up to a third of the history), several cut-offs,
so that one noisy window does not pick the default. Every candidate setting of every family is scored there
against the popularity baseline of the same fold; a family keeps its best setting,
and the family with the best score is the default. The score is the geometric mean
of precision@k and recall@k relative to popularity (both count, as in the goal of
beating popularity on both). Nothing is chosen on the holdout itself.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from analytics.formatting import percent
from analytics.recommend.core import (
    Interactions, ItemCF, PopularityRecommender, RecommendError, _BaseRecommender, _event_span, _timestamp, load_interactions,
)
from analytics.recommend.models import (
    ALSRecommender, BPRRecommender, EASERecommender, ImplicitItemKNN, RecencyBlend, RecentPopularity,
)
from analytics.warehouse import Warehouse

#: model families in the order they are reported; the first two are the baselines
FAMILIES = ("popularity", "recent_popularity", "item_cf", "item_knn", "ease", "als", "bpr", "blend", "sequence")
BASELINES = ("popularity", "recent_popularity")
LABELS = {
    "popularity": "Popularity (baseline)",
    "recent_popularity": "Recent popularity (baseline)",
    "item_cf": "Item-based CF (shrunk cosine)",
    "item_knn": "Item-item neighbours, BM25 (implicit)",
    "ease": "EASE (closed-form item-item, Steck 2019)",
    "als": "Matrix factorisation, ALS (implicit)",
    "bpr": "Matrix factorisation, BPR (implicit)",
    "blend": "Item neighbours blended with recent popularity",
    "sequence": "Sequence model (GRU, PyTorch)",
}

#: the settings tried on validation (small on purpose: each costs a fit per fold)
DEFAULT_GRID: dict[str, list[dict]] = {
    "popularity": [{}],
    "recent_popularity": [{"days": 14}, {"days": 30}, {"days": 90}],
    "item_cf": [{"shrinkage": 10.0}, {"shrinkage": 25.0}, {"shrinkage": 100.0}],
    "item_knn": [{"K": 50}, {"K": 200}],
    "ease": [{"l2": 300.0}, {"l2": 1000.0}],
    "als": [{"weighting": "bm25", "factors": 32}, {"weighting": "bm25", "factors": 64},
            {"weighting": "bm25", "factors": 64, "half_life_days": 60.0},
            {"weighting": "confidence", "alpha": 5.0, "factors": 64},
            {"weighting": "confidence", "alpha": 5.0, "factors": 64, "half_life_days": 60.0}],
    "bpr": [{"factors": 64, "learning_rate": 0.05}],
    "blend": [{"base": "ease", "base_params": {"l2": 300.0}, "days": d, "weight": w}
              for d in (14, 30) for w in (0.3, 0.5, 0.7)]
    + [{"base": "item_knn", "base_params": {"K": 100}, "days": 14, "weight": 0.5}],
    "sequence": [{}],
}


def make_model(family: str, params: Mapping | None = None, **extra) -> _BaseRecommender:
    """An unfitted recommender of ``family`` with ``params`` (RecommendError for unknown ones)."""
    params = dict(params or {})
    if family == "sequence":
        from analytics.recommend.sequence import SequenceRecommender

        cls = SequenceRecommender
        params = {**params, **extra}
    else:
        cls = {"popularity": PopularityRecommender, "recent_popularity": RecentPopularity, "item_cf": ItemCF,
               "item_knn": ImplicitItemKNN, "ease": EASERecommender, "als": ALSRecommender, "bpr": BPRRecommender,
               "blend": RecencyBlend}.get(family)
    if cls is None:
        raise RecommendError(f"unknown model {family!r} (known: {', '.join(FAMILIES)})")
    try:
        return cls(**params)
    except TypeError as exc:
        raise RecommendError(f"bad settings for {family}: {exc}") from None


def check_families(families) -> list[str]:
    if families is None:
        return list(FAMILIES)
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    out = []
    for f in families:
        if f not in FAMILIES:
            raise RecommendError(f"unknown model {f!r} (known: {', '.join(FAMILIES)})")
        if f not in out:
            out.append(f)
    if "popularity" not in out:
        out.insert(0, "popularity")  # the baseline every ratio refers to
    return [f for f in FAMILIES if f in out]


# ---------------------------------------------------------------------------- holdout data
def holdout_relevant(wh: Warehouse, dataset: str, split: pd.Timestamp, end: pd.Timestamp,
                     new_items_only: bool = True) -> pd.DataFrame:
    """Distinct (customer_id, item_id) purchases in ``[split, end)`` that a recommender could hit.

    Only customers with some event (any type) before ``split``; with ``new_items_only`` only items
    they had not purchased before ``split``. Independent of any model or interaction weights, so
    every model is judged on the same customers and items.
    """
    split_dt, end_dt = pd.Timestamp(split).to_pydatetime(), pd.Timestamp(end).to_pydatetime()
    return wh.cursor().execute(
        """
        SELECT DISTINCT h.customer_id, h.item_id FROM events h
        WHERE h.dataset = ? AND h.event_type = 'purchase' AND h.item_id IS NOT NULL
          AND h.customer_id IS NOT NULL
          AND h.event_time >= ?::TIMESTAMP AND h.event_time < ?::TIMESTAMP
          AND EXISTS (SELECT 1 FROM events p WHERE p.dataset = h.dataset AND p.customer_id = h.customer_id
                      AND p.event_time < ?::TIMESTAMP)
          AND (NOT ? OR NOT EXISTS (SELECT 1 FROM events p WHERE p.dataset = h.dataset
                          AND p.customer_id = h.customer_id AND p.item_id = h.item_id
                          AND p.event_type = 'purchase' AND p.event_time < ?::TIMESTAMP))
        ORDER BY h.customer_id, h.item_id
        """, [dataset, split_dt, end_dt, split_dt, bool(new_items_only), split_dt]).df()


def ranking_metrics(recs: pd.DataFrame, relevant: pd.DataFrame, k: int, n_items: int) -> dict:
    """precision@k, recall@k, F1@k, NDCG@k, coverage of ``recs`` [customer_id, rank, item_id]
    against ``relevant`` [customer_id, item_id] (the evaluated customers are ``relevant``'s)."""
    pairs = relevant[["customer_id", "item_id"]].drop_duplicates()
    sizes = pairs.groupby("customer_id").size().astype(np.float64)
    top = recs[recs["rank"] <= k]
    matched = top[["customer_id", "item_id", "rank"]].merge(pairs, on=["customer_id", "item_id"])
    hits = matched.groupby("customer_id").size().astype(np.float64).reindex(sizes.index, fill_value=0.0)
    gain = (1.0 / np.log2(matched["rank"].to_numpy(np.float64) + 1.0))
    dcg = pd.Series(gain, index=matched["customer_id"].to_numpy()).groupby(level=0).sum() \
        .reindex(sizes.index, fill_value=0.0)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = discounts[np.minimum(sizes.to_numpy(int), k) - 1]
    precision = float((hits / k).mean())
    recall = float((hits / sizes).mean())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    in_scope = top[top["customer_id"].isin(sizes.index)]
    return {
        "precision_at_k": precision,
        "recall_at_k": recall,
        "f1_at_k": float(f1),
        "ndcg_at_k": float((dcg.to_numpy() / idcg).mean()),
        "coverage": float(in_scope["item_id"].nunique() / n_items) if n_items else 0.0,
        "customers": int(len(sizes)),
        "popularity_share": float((in_scope["source"] == "popularity").mean()) if "source" in in_scope
        and len(in_scope) else 0.0,
    }


def _fit(model, train, progress, should_stop, name, stage):
    from analytics.recommend.sequence import SequenceRecommender

    if isinstance(model, SequenceRecommender):
        def relay(row):
            if progress is not None:
                progress({"stage": stage, "model": name, "status": "epoch", **row})
        return model.fit(train, progress=relay, should_stop=should_stop)
    return model.fit(train)


# ---------------------------------------------------------------------------- validation
@dataclasses.dataclass
class Validation:
    """What the validation windows chose: per family the best setting and the overall winner."""

    table: pd.DataFrame  # one row per (family, setting): mean metrics over the folds, the score, customers judged
    best_params: dict[str, dict]
    winner: str
    windows: list[tuple[str, str]]  # (first, last day) of each validation window
    ratios: dict[str, dict[str, float]]  # per family: precision / recall relative to popularity
    note: str | None = None

    def to_dict(self) -> dict:
        return {"winner": self.winner, "label": LABELS.get(self.winner, self.winner),
                "params": self.best_params.get(self.winner, {}), "best_params": self.best_params,
                "windows": [list(w) for w in self.windows], "ratios_vs_popularity": self.ratios,
                "note": self.note,
                "table": json.loads(self.table.to_json(orient="records"))}


def _fold_days(lo: pd.Timestamp, end: pd.Timestamp, wanted: int | None, default: int) -> int:
    span = (end - lo.normalize()).days
    days = int(wanted) if wanted else default
    return max(1, min(days, span // 3))


def validate_models(wh: Warehouse, dataset: str, end, k: int = 10, *, families=None,
                    grid: Mapping[str, list[dict]] | None = None, fold_days: int | None = None, folds: int = 1,
                    step_days: int | None = None, exclude_purchased: bool = True, weights=None,
                    sequence_params: Mapping | None = None,
                    progress: Callable[[dict], None] | None = None,
                    should_stop: Callable[[], bool] | None = None, max_customers: int | None = None,
                    max_train_customers: int | None = None, random_state: int = 0) -> Validation:
    """Score every candidate setting on validation windows that end at ``end`` (exclusive).

    ``fold_days``: window length (default 90, at most a third of the data before ``end``);
    ``folds``: windows before ``end``, each ``step_days`` (default: ``fold_days``, back to back)
    before the previous one. ``max_customers``: every setting is judged on the same seeded
    sample (``random_state``) of at most this many of a window's evaluated customers (all of
    them when None); ``max_train_customers``: the models learn from the events before the window
    of at most this many customers, the judged ones and a seeded sample of the others (everyone
    when None). Returns a ``Validation``; raises RecommendError when the data before ``end`` are
    too short for a validation window.
    """
    k = _BaseRecommender._check_n(k)
    families = check_families(families)
    grid = {**DEFAULT_GRID, **(grid or {})}
    end_ts = _timestamp(end, "end")
    lo, _ = _event_span(wh, dataset)
    days = _fold_days(lo, end_ts, fold_days, 90)
    folds = _BaseRecommender._check_n(folds)
    step = days if step_days is None else _BaseRecommender._check_n(step_days)
    rows, windows = [], []
    for f in range(folds):
        v_end = end_ts - pd.Timedelta(days=step * f)
        v_split = v_end - pd.Timedelta(days=days)
        if v_split <= lo:
            if f == 0:
                raise RecommendError(f"too little history before {end_ts.date()} for a {days}-day validation window")
            break
        train = load_interactions(wh, dataset, end=v_split, weights=weights, sequences="sequence" in families)
        rel = holdout_relevant(wh, dataset, v_split, v_end, new_items_only=exclude_purchased)
        if rel.empty:
            if f == 0:
                raise RecommendError(f"nobody bought anything to recommend in the validation window "
                                     f"{v_split.date()} .. {(v_end - pd.Timedelta(days=1)).date()}")
            break
        windows.append((str(v_split.date()), str((v_end - pd.Timedelta(days=1)).date())))
        who = rel["customer_id"].drop_duplicates()
        if max_customers is not None and len(who) > int(max_customers):
            rng = np.random.default_rng([int(random_state), f])
            who = who.iloc[np.sort(rng.choice(len(who), int(max_customers), replace=False))]
            rel = rel[rel["customer_id"].isin(who)]
        if max_train_customers is not None and train.n_customers > int(max_train_customers):
            train = _with_customers(train, who, int(max_train_customers), np.random.default_rng([int(random_state), f, 1]))
        n_items = train.n_items
        # the blends' bases that are candidates too: fitted once, lent to the blends
        bases = {(b.get("base"), json.dumps(b.get("base_params") or {}, sort_keys=True))
                 for b in grid.get("blend", []) if "blend" in families}
        fitted: dict = {}
        for fam in families:
            for params in grid.get(fam, [{}]):
                if should_stop is not None and should_stop() and fam != "popularity":
                    continue
                name = fam
                if progress is not None:
                    progress({"stage": "validation", "model": name, "status": "start", "params": params,
                              "fold": f + 1})
                t0 = time.perf_counter()
                model = make_model(fam, params, **(dict(sequence_params or {}) if fam == "sequence" else {}))
                key = (fam, json.dumps(params, sort_keys=True))
                try:
                    lent = fitted.get((params.get("base"), json.dumps(params.get("base_params") or {},
                                                                      sort_keys=True))) if fam == "blend" else None
                    if lent is not None:
                        model.fit(train, base_model=lent)
                    else:
                        _fit(model, train, progress, should_stop, name, "validation")
                    if key in bases:
                        fitted[key] = model
                    recs = model.recommend(who, n=k, exclude_purchased=exclude_purchased)
                except RecommendError as exc:
                    rows.append({"model": fam, "params": json.dumps(params, sort_keys=True), "fold": f + 1,
                                 "error": str(exc)})
                    continue
                m = ranking_metrics(recs, rel, k, n_items)
                rows.append({"model": fam, "params": json.dumps(params, sort_keys=True), "fold": f + 1,
                             "error": None, "fit_seconds": time.perf_counter() - t0, **m})
    raw = pd.DataFrame(rows)
    ok = raw[raw["error"].isna()] if "error" in raw else raw
    pop = ok[ok["model"] == "popularity"].set_index("fold")
    score_rows = []
    for (fam, params), g in ok.groupby(["model", "params"], sort=False):
        g = g.set_index("fold")
        pr = (g["precision_at_k"] / pop["precision_at_k"].reindex(g.index)).replace([np.inf], np.nan)
        rr = (g["recall_at_k"] / pop["recall_at_k"].reindex(g.index)).replace([np.inf], np.nan)
        score_rows.append({"model": fam, "params": params, "folds": len(g),
                           **{c: float(g[c].mean()) for c in ("precision_at_k", "recall_at_k", "f1_at_k",
                                                               "ndcg_at_k", "coverage")},
                           "precision_vs_popularity": float(pr.mean()), "recall_vs_popularity": float(rr.mean()),
                           "customers": int(g["customers"].sum()), "fit_seconds": float(g["fit_seconds"].sum())})
    table = pd.DataFrame(score_rows)
    if table.empty:
        raise RecommendError("no model could be fitted on the validation window")
    table["score"] = np.sqrt(table["precision_vs_popularity"].fillna(0).clip(lower=0)
                             * table["recall_vs_popularity"].fillna(0).clip(lower=0))
    best_params, ratios = {}, {}
    for fam in families:
        t = table[table["model"] == fam]
        if t.empty:
            continue
        b = t.sort_values("score", ascending=False, kind="stable").iloc[0]
        best_params[fam] = json.loads(b["params"])
        ratios[fam] = {"precision": float(b["precision_vs_popularity"]), "recall": float(b["recall_vs_popularity"]),
                       "score": float(b["score"])}
    winner = max(ratios, key=lambda f: (ratios[f]["score"], -FAMILIES.index(f)))
    errors = raw[raw["error"].notna()] if "error" in raw else raw.iloc[0:0]
    note = None
    if len(errors):
        note = "; ".join(f"{r.model}: {r.error}" for r in errors.drop_duplicates("model").itertuples())
    table = table.assign(chosen=[best_params.get(r.model) == json.loads(r.params) for r in table.itertuples()])
    return Validation(table, best_params, winner, windows, ratios, note)


def _with_customers(X: Interactions, keep, cap: int, rng: np.random.Generator) -> Interactions:
    """``X`` restricted to ``cap`` customers: those of ``keep`` it has, then a seeded sample of the
    others (every item stays in the catalogue; rows keep their order)."""
    rows = X.customer_index.get_indexer(pd.Index(keep))
    rows = np.unique(rows[rows >= 0])
    others = np.setdiff1d(np.arange(X.n_customers), rows, assume_unique=True)
    extra = max(0, cap - len(rows))
    if extra < len(others):
        others = rng.choice(others, extra, replace=False)
    rows = np.sort(np.concatenate([rows, others]))
    sub = lambda m: None if m is None else m[rows]  # noqa: E731
    seq = {}
    if X.seq_indptr is not None:
        lo, hi = X.seq_indptr[rows], X.seq_indptr[rows + 1]
        take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if len(rows) else np.empty(0, np.int64)
        seq = {"seq_indptr": np.concatenate([[0], np.cumsum(hi - lo)]).astype(X.seq_indptr.dtype),
               "seq_items": X.seq_items[take], "seq_purchase": X.seq_purchase[take]}
    return dataclasses.replace(X, matrix=X.matrix[rows], purchased=X.purchased[rows],
                               customer_ids=X.customer_ids[rows], age_days=sub(X.age_days),
                               purchase_age_days=sub(X.purchase_age_days), **seq)


# ---------------------------------------------------------------------------- holdout
def evaluate_holdout(wh: Warehouse, dataset: str, split, end, k: int = 10, *,
                     weights: Mapping[str, float] | None = None, models: Mapping[str, object] | None = None,
                     families=None, exclude_purchased: bool = True, validate: bool = True,
                     fold_days: int | None = None, folds: int = 3, step_days: int | None = None,
                     sequence_params: Mapping | None = None, progress: Callable[[dict], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> pd.DataFrame:
    """Every model on one time holdout, with the same customers, items and rules.

    ``models`` maps names to unfitted recommenders (evaluated as given, no validation). Otherwise
    ``families`` (default: all of ``FAMILIES``) are tuned on validation windows before ``split``
    (``validate_models`` with ``folds`` windows as long as the holdout (at most a third of the
    history), cut off every ``step_days``: default a third of a window, so the three default
    windows overlap; ``validate=False`` uses each family's first grid setting) and refitted
    on everything before ``split``. Returns DataFrame[model, precision_at_k, recall_at_k, f1_at_k,
    ndcg_at_k, coverage, customers, k, popularity_share, params, fit_seconds, label]; ``attrs``:
    ``validation`` (``Validation.to_dict()`` or None), ``notes`` (list of plain sentences about
    the data: unseen items, fallbacks), ``window``.
    """
    k = _BaseRecommender._check_n(k)
    split_ts, end_ts = _timestamp(split, "split"), _timestamp(end, "end")
    if split_ts is None or end_ts is None:
        raise RecommendError("split and end dates are required")
    lo, hi = _event_span(wh, dataset)
    if not lo < split_ts <= hi:
        raise RecommendError(
            f"split {split_ts.date()} is outside the data ({lo.date()} .. {hi.date()}): "
            "it needs events before and after it")
    if end_ts <= split_ts:
        raise RecommendError(f"end {end_ts.date()} must be after split {split_ts.date()}")
    fams = check_families(families) if models is None else []
    need_seq = "sequence" in fams or any(type(m).__name__ == "SequenceRecommender" for m in (models or {}).values())
    train = load_interactions(wh, dataset, end=split_ts, weights=weights, sequences=need_seq)
    if train.n_items < 2:
        raise RecommendError(f"the events before {split_ts.date()} name only {train.n_items} item: "
                             "recommendations need a catalogue of at least two items")
    if k > train.n_items:
        raise RecommendError(f"k = {k} is larger than the catalogue before {split_ts.date()} "
                             f"({train.n_items} items): choose k <= {train.n_items}")
    test = holdout_relevant(wh, dataset, split_ts, end_ts, new_items_only=exclude_purchased)
    if test.empty:
        what = "a new item" if exclude_purchased else "anything"
        raise RecommendError(
            f"no customer with history before {split_ts.date()} bought {what} between "
            f"{split_ts.date()} and {(end_ts - pd.Timedelta(days=1)).date()}: nothing to evaluate")
    notes = _data_notes(train, test)
    validation = None
    chosen: dict[str, object] = {}
    if models is not None:
        chosen = dict(models)
    else:
        if validate:
            try:
                v_days = _fold_days(lo, split_ts, fold_days or (end_ts - split_ts).days, 90)
                validation = validate_models(
                    wh, dataset, split_ts, k, families=fams, fold_days=v_days, folds=folds,
                    step_days=step_days or max(1, v_days // 3), exclude_purchased=exclude_purchased, weights=weights,
                    sequence_params=sequence_params, progress=progress, should_stop=should_stop)
            except RecommendError as exc:
                notes.append(f"no validation window could be used ({exc}); every model runs with its "
                             "first setting and popularity is the default")
        for fam in fams:
            params = (validation.best_params.get(fam) if validation else None) or DEFAULT_GRID[fam][0]
            chosen[fam] = make_model(fam, params, **(dict(sequence_params or {}) if fam == "sequence" else {}))
    who = test["customer_id"].drop_duplicates()
    results = []
    for name, model in chosen.items():
        if progress is not None:
            progress({"stage": "holdout", "model": name, "status": "start"})
        t0 = time.perf_counter()
        try:
            _fit(model, train, progress, should_stop, name, "holdout")
            recs = model.recommend(who, n=k, exclude_purchased=exclude_purchased)
        except RecommendError as exc:
            notes.append(f"{name} could not run: {exc}")
            continue
        m = ranking_metrics(recs, test, k, train.n_items)
        params = model.get_params() if hasattr(model, "get_params") else {}
        results.append({"model": name, **m, "k": k, "params": json.dumps(_plain(params), sort_keys=True),
                        "fit_seconds": time.perf_counter() - t0, "label": LABELS.get(name, name)})
        if m["popularity_share"] > 0 and name not in BASELINES:
            notes.append(f"{name}: {percent(m['popularity_share'])} of the recommended items came from the popularity "
                         "fallback (customers without history before the split, or too few candidates)")
    out = pd.DataFrame(results, columns=["model", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k",
                                         "coverage", "customers", "popularity_share", "k", "params",
                                         "fit_seconds", "label"])
    out.attrs = {"validation": validation.to_dict() if validation else None, "notes": notes,
                 "window": {"train_before": str(split_ts.date()), "holdout_from": str(split_ts.date()),
                            "holdout_to": str((end_ts - pd.Timedelta(days=1)).date())},
                 "exclude_purchased": bool(exclude_purchased)}
    return out


def _plain(params: dict) -> dict:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in params.items()
            if isinstance(v, (int, float, str, bool, type(None), np.generic))}


def _data_notes(train, test) -> list[str]:
    notes = []
    known = pd.Index(train.item_ids)
    unseen = ~test["item_id"].isin(known)
    if unseen.any():
        notes.append(f"{test.loc[unseen, 'item_id'].nunique():,} item(s) bought in the holdout never appear before "
                     f"the split ({int(unseen.sum()):,} of {len(test):,} holdout purchases): no model can "
                     "recommend them, they count as misses for all")
    single = int((np.diff(train.matrix.indptr) == 1).sum())
    if single:
        notes.append(f"{single:,} customer(s) have a single interaction before the split: little to "
                     "personalise from")
    return notes


def ratio_summary(results: pd.DataFrame, model: str, baseline: str = "popularity") -> dict | None:
    """precision / recall of ``model`` relative to ``baseline`` in an ``evaluate_holdout`` result."""
    t = results.set_index("model")
    if model not in t.index or baseline not in t.index:
        return None
    b = t.loc[baseline]
    m = t.loc[model]

    def r(a, c):
        return float(a / c) if c > 0 else None
    return {"precision": r(m["precision_at_k"], b["precision_at_k"]), "recall": r(m["recall_at_k"], b["recall_at_k"])}


# ---------------------------------------------------------------------------- the campaign default
def choose_default(wh: Warehouse, dataset: str, end, k: int = 10, *, families=None, fold_days: int | None = None,
                   folds: int = 1, weights=None, sequence_params: Mapping | None = None,
                   progress=None, should_stop=None) -> dict:
    """The recommender campaigns should use for data up to ``end`` (exclusive): the validation
    winner on the last ``fold_days`` (default 90) before ``end``. Returns a JSON-serialisable dict
    {model, params, label, ratios_vs_popularity, windows, table, note}; when no validation window
    can be formed the default is popularity and ``note`` says why (never raises for that)."""
    try:
        v = validate_models(wh, dataset, end, k, families=families, fold_days=fold_days, folds=folds,
                            weights=weights, sequence_params=sequence_params, progress=progress,
                            should_stop=should_stop)
    except RecommendError as exc:
        return {"model": "popularity", "params": {}, "label": LABELS["popularity"], "ratios_vs_popularity": {},
                "windows": [], "table": [], "note": f"popularity is the default: {exc}"}
    d = v.to_dict()
    return {"model": d["winner"], "params": d["params"], "label": d["label"],
            "ratios_vs_popularity": d["ratios_vs_popularity"], "windows": d["windows"], "table": d["table"],
            "best_params": d["best_params"], "note": d["note"]}


def fit_default(wh: Warehouse, dataset: str, end, choice: Mapping, *, weights=None,
                progress=None, should_stop=None) -> _BaseRecommender:
    """Fit the model ``choice`` (from ``choose_default``) on the events before ``end``."""
    fam = choice.get("model", "popularity")
    model = make_model(fam, choice.get("params") or {})
    train = load_interactions(wh, dataset, end=end, weights=weights, sequences=fam == "sequence")
    return _fit(model, train, progress, should_stop, fam, "fit")


#: what campaigns choose among (seconds on the bundled sample): the slow families (BPR, the sequence
#: model) are compared in the full evaluation, not refitted for every campaign day
CAMPAIGN_FAMILIES = ("popularity", "recent_popularity", "item_cf", "item_knn", "ease", "als", "blend")
CAMPAIGN_GRID: dict[str, list[dict]] = {
    "recent_popularity": [{"days": 30}],
    "item_cf": [{"shrinkage": 25.0}],
    "item_knn": [{"K": 100}],
    "ease": [{"l2": 300.0}],
    "als": [{"weighting": "bm25", "factors": 64}],
    "blend": [{"base": "ease", "base_params": {"l2": 300.0}, "days": 14, "weight": 0.3},
              {"base": "item_knn", "base_params": {"K": 100}, "days": 14, "weight": 0.5},
              {"base": "item_knn", "base_params": {"K": 100}, "days": 30, "weight": 0.3}],
}


#: the campaign default is chosen on a seeded sample of at most this many of the validation window's
#: customers (every candidate on the same ones): recommending for every customer of a million-customer
#: window costs minutes per candidate, and a sample of this size separates candidates whose
#: precision differs by a few per cent of popularity's
CAMPAIGN_VALIDATION_CUSTOMERS = 20_000
#: ... and its candidates learn from the events before the window of at most this many customers (the
#: judged ones and a seeded sample of the others): the fits grow with the customers; the chosen
#: model is then fitted on everyone's events
CAMPAIGN_VALIDATION_TRAIN_CUSTOMERS = 200_000


def campaign_recommender(wh: Warehouse, dataset: str, end, *, families=CAMPAIGN_FAMILIES,
                         grid: Mapping[str, list[dict]] | None = None) -> _BaseRecommender:
    """The recommender campaigns attach items with: the validation winner among ``families`` on the
    90 days before ``end`` (``choose_default``), fitted on every event before ``end``. The choice
    (model, params, label, ratios_vs_popularity, windows, note) is kept on the model as ``choice_``."""
    choice = _choose(wh, dataset, end, families, {**CAMPAIGN_GRID, **(grid or {})})
    model = fit_default(wh, dataset, end, choice)
    model.choice_ = choice
    return model


def _choose(wh, dataset, end, families, grid) -> dict:
    try:
        v = validate_models(wh, dataset, end, 10, families=families, grid=grid,
                            max_customers=CAMPAIGN_VALIDATION_CUSTOMERS,
                            max_train_customers=CAMPAIGN_VALIDATION_TRAIN_CUSTOMERS)
    except RecommendError as exc:
        return {"model": "popularity", "params": {}, "label": LABELS["popularity"], "ratios_vs_popularity": {},
                "windows": [], "note": f"popularity is the default: {exc}"}
    d = v.to_dict()
    return {"model": d["winner"], "params": d["params"], "label": d["label"],
            "ratios_vs_popularity": d["ratios_vs_popularity"], "windows": d["windows"], "note": d["note"]}
