"""The one place that caches: the warehouse connection and query results.

Pages call these instead of the library directly when a result is worth keeping
across reruns. ``st.cache_data`` entries are keyed by the warehouse file and the
dataset's ``data_version`` so they refresh after an ingest or delete, and several
warehouses in one process (tests) never see each other's results.

Environment:
- ``VALUESCOPE_DB``: the warehouse file (see ``analytics.warehouse.default_db_path``).
- ``VALUESCOPE_SKIP_SAMPLE=1``: do not load the bundled sample data set into an empty
  warehouse on first start.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from analytics.bootstrap import sample_skipped
from analytics.warehouse import Warehouse, default_db_path, get_warehouse


def db_path() -> str:
    return str(default_db_path().resolve())


@st.cache_resource(show_spinner=False)
def _warehouse(path: str) -> Warehouse:
    return get_warehouse(path)


@st.cache_resource(show_spinner="Loading the sample data set (first start)…")
def _bootstrap(path: str) -> str | None:
    """Load the sample data set into an empty warehouse once; the error message or None."""
    if sample_skipped():
        return None
    try:
        from analytics.bootstrap import ensure_default_dataset
    except ImportError:  # ingestion not installed in this build: start empty
        return None
    try:
        ensure_default_dataset(_warehouse(path))
    except Exception as exc:  # the app must still start; the sidebar shows why the sample is missing
        return f"the sample data set could not be loaded: {exc}"
    return None


def warehouse() -> Warehouse:
    """The process's warehouse (the sample data set is loaded on first start)."""
    path = db_path()
    wh = _warehouse(path)
    _bootstrap(path)
    return wh


def bootstrap_error() -> str | None:
    """Why the sample data set could not be loaded on first start (None when fine)."""
    return _bootstrap(db_path())


def data_version(dataset: str | None) -> str:
    """Changes whenever the dataset's rows change (used as a cache key)."""
    if not dataset:
        return ""
    cur = warehouse().cursor()
    row = cur.execute(
        "SELECT coalesce(max(id), 0), count(*) FROM ingestions WHERE dataset = ?", [dataset]
    ).fetchone()
    upd = cur.execute(
        "SELECT created_at, updated_at FROM datasets WHERE name = ?", [dataset]
    ).fetchone()
    return f"{row[0]}:{row[1]}:{upd[0] if upd else ''}:{upd[1] if upd else ''}"


@st.cache_data(show_spinner=False, max_entries=64)
def _query_df(path: str, sql: str, params: tuple, version: str) -> pd.DataFrame:
    return _warehouse(path).cursor().execute(sql, list(params)).df()


def query_df(sql: str, params: tuple, version: str) -> pd.DataFrame:
    """Run a read-only, parameterised query; cached per warehouse and ``version``."""
    return _query_df(db_path(), sql, tuple(params), version)


@st.cache_data(show_spinner="Summarising the dataset…", max_entries=32)
def _overview(path: str, dataset: str, version: str) -> dict[str, Any]:
    from analytics.overview import stored_overview

    return stored_overview(_warehouse(path), dataset)


def overview(dataset: str) -> dict[str, Any]:
    """``analytics.overview.stored_overview`` for ``dataset``, cached per data version
    (in memory here; in the warehouse by the library, so restarts need no recomputation)."""
    warehouse()
    return _overview(db_path(), dataset, data_version(dataset))


@st.cache_data(show_spinner="Reading the file…", max_entries=8)
def _inspect(path: str, file_name: str | None, size: int, mtime: float):
    from analytics.ingest import inspect_source

    return inspect_source(path, file_name=file_name)


def inspect(path: str, file_name: str | None = None):
    """``analytics.ingest.inspect_source``, cached per file path, size and modification time."""
    st_ = os.stat(path)
    return _inspect(str(path), file_name, st_.st_size, st_.st_mtime)


def clear() -> None:
    """Forget cached query results (after a write that a version key might not see)."""
    _query_df.clear()
    _overview.clear()


# ---- Value page (scores; owned by the scoring area) ------------------------------
# The Scorer (ranked / normalized arrays) and the BG/NBD fits are shared, read-only
# resources (st.cache_resource: no copy per rerun, which matters at 1M customers);
# a slider move then only re-weights (analytics.scores.Scorer.score).
def _value_db() -> str:
    warehouse()
    return str(default_db_path().resolve())


@st.cache_resource(show_spinner="Summarising every customer…", max_entries=4)
def _value_scorer(path: str, dataset: str, as_of: str, unit: str, min_age_months: float, version: str):
    from analytics.scores import Scorer
    from analytics.summary import customer_summary

    summary = customer_summary(get_warehouse(path), dataset, as_of, unit)
    return Scorer(summary, min_age_months=min_age_months)


def _min_age(months: float | None) -> float:
    from analytics.scores import DEFAULT_MIN_AGE_MONTHS

    return float(DEFAULT_MIN_AGE_MONTHS if months is None else months)


def value_scorer(dataset: str, as_of, unit: str, min_age_months: float | None = None):
    """``analytics.scores.Scorer`` over the customer summary, cached per data version."""
    return _value_scorer(_value_db(), dataset, str(as_of), unit, _min_age(min_age_months), data_version(dataset))


# A fit that fails (degenerate data) is cached as its message too, so that a slider
# move does not try the same expensive fit again.
@st.cache_resource(show_spinner="Fitting the purchase model and Gamma-Gamma…", max_entries=4)
def _value_models(path: str, dataset: str, as_of: str, unit: str, min_age_months: float, version: str,
                  purchase_model: str = "bgnbd", penalizer: float = 0.0):
    from analytics.scores import fit_clv_models

    scorer = _value_scorer(path, dataset, as_of, unit, min_age_months, version)
    try:
        return fit_clv_models(scorer.summary, purchase_model=purchase_model, penalizer=penalizer), None
    except ValueError as exc:
        return None, str(exc)


@st.cache_resource(show_spinner="Computing the probabilistic CLV…", max_entries=16)
def _value_prob(path: str, dataset: str, as_of: str, unit: str, min_age_months: float, version: str,
                horizon_months: float, discount_rate: float, purchase_model: str = "bgnbd", penalizer: float = 0.0):
    from analytics.scores import CLVParams, probabilistic_clv

    scorer = _value_scorer(path, dataset, as_of, unit, min_age_months, version)
    models, problem = _value_models(path, dataset, as_of, unit, min_age_months, version, purchase_model, penalizer)
    if problem:
        return None, problem
    params = CLVParams(horizon_months=horizon_months, discount_rate=discount_rate, min_age_months=min_age_months)
    try:
        table, _ = probabilistic_clv(scorer.summary, params, models=models)
    except ValueError as exc:
        return None, str(exc)
    return scorer.align(table), None


def _day_clv_models(path: str, dataset: str, as_of: str, version: str):
    """The Value page's BG/NBD + Gamma-Gamma pair on the daily summary at ``as_of`` (the one
    the Explorer frame carries), shared by Campaigns and Reports so a day is fitted once
    (20-45 s at 1M customers); None when the data cannot support it (the caller's own
    fallback then says why)."""
    models, _problem = _value_models(path, dataset, as_of, "days", _min_age(None), version)
    return models


def value_models(dataset: str, as_of, unit: str, min_age_months: float | None = None, *,
                 purchase_model: str = "bgnbd", penalizer: float = 0.0):
    """The fitted (purchase model, Gamma-Gamma) pair for the Value page, cached per data version
    (``ValueError`` with the model's message when the data cannot support it)."""
    models, problem = _value_models(_value_db(), dataset, str(as_of), unit, _min_age(min_age_months),
                                    data_version(dataset), purchase_model, float(penalizer))
    if problem:
        raise ValueError(problem)
    return models


def value_prob(dataset: str, as_of, unit: str, min_age_months: float, horizon_months: float, discount_rate: float,
               *, purchase_model: str = "bgnbd", penalizer: float = 0.0):
    """Per-customer probabilistic CLV columns aligned to the cached Scorer (margin applied at re-score)."""
    prob, problem = _value_prob(_value_db(), dataset, str(as_of), unit, float(min_age_months),
                                data_version(dataset), float(horizon_months), float(discount_rate),
                                purchase_model, float(penalizer))
    if problem:
        raise ValueError(problem)
    return prob


@st.cache_resource(show_spinner="Fitting the purchase model on the calibration period…", max_entries=8)
def _value_holdout(path: str, dataset: str, cutoff: str, unit: str, version: str, purchase_model: str = "bgnbd",
                   penalizer: float = 0.0):
    from analytics.diagnostics import calibration_holdout_check

    return calibration_holdout_check(get_warehouse(path), dataset, cutoff, unit=unit, purchase_model=purchase_model,
                                     penalizer=penalizer)


def value_holdout(dataset: str, cutoff, unit: str, *, purchase_model: str = "bgnbd", penalizer: float = 0.0):
    """``analytics.diagnostics.calibration_holdout_check`` for the Value page, cached per data version."""
    return _value_holdout(_value_db(), dataset, str(cutoff), unit, data_version(dataset), purchase_model,
                          float(penalizer))


# A comparison that cannot be made is cached as its message, like a failed fit.
@st.cache_resource(show_spinner="Comparing BG/NBD and Pareto/NBD on this dataset's own history…", max_entries=4)
def _purchase_model_comparison(path: str, dataset: str, version: str):
    from analytics.diagnostics import compare_purchase_models

    try:
        return compare_purchase_models(get_warehouse(path), dataset), None
    except ValueError as exc:
        return None, str(exc)


def purchase_model_comparison(dataset: str):
    """``analytics.diagnostics.compare_purchase_models`` on the dataset's own calibration/holdout
    split, cached per data version: ``(comparison or None, problem or None)``."""
    return _purchase_model_comparison(_value_db(), dataset, data_version(dataset))


# ---- published model predictions (analytics.predict.registry), shown on the Value page ----
@st.cache_data(show_spinner=False, max_entries=8)
def _published_predictions(path: str, dataset: str, stamp: str) -> pd.DataFrame:
    from analytics.predict.registry import published_predictions

    return published_predictions(get_warehouse(path), dataset)


def prediction_stamp(dataset: str) -> str:
    """Changes whenever predictions are (re)published for ``dataset`` (a cache key)."""
    row = warehouse().cursor().execute(
        "SELECT count(*), max(published_at), max(run_id), max(model) FROM customer_predictions WHERE dataset = ?",
        [dataset],
    ).fetchone()
    return "|".join(map(str, row))


def published_predictions(dataset: str) -> pd.DataFrame:
    """The dataset's published predictions (empty frame if none), cached until the next publish."""
    return _published_predictions(_value_db(), dataset, prediction_stamp(dataset))


# ---- Segments page (owned by the segments area) ------------------------------------
# The customer frame the Segments page clusters and filters: summary + derived features
# + RFM/behaviour/CLV-formula scores (+ published predictions). A shared read-only
# resource (never mutated by the page), cached per data version and publish stamp.
@st.cache_resource(show_spinner="Reading every customer's history (once per data version)…", max_entries=1)
def _summary_history(path: str, dataset: str, version: str):
    from analytics.summary import summary_history

    if _attached(path, dataset, version) is not None:
        return None  # a summary attached from Spark: no events; callers then read customer_summary
    return summary_history(get_warehouse(path), dataset)


@st.cache_data(show_spinner=False, max_entries=64)
def _attached(path: str, dataset: str, version: str) -> dict | None:
    from analytics.spark.attach import attached_info

    return attached_info(get_warehouse(path), dataset)


def attached(dataset: str | None) -> dict | None:
    """``analytics.spark.attach.attached_info``: the dataset is a customer summary computed on Spark
    (as of one day, no events), or None."""
    if not dataset:
        return None
    return _attached(_value_db(), dataset, data_version(dataset))


def summary_history(dataset: str):
    """``analytics.summary.summary_history`` of ``dataset``: built once per data version (one pass
    over the events), then the customer summary at any as-of day is a fraction of a second.
    Shared by the Segments and Explorer pages (one dataset held at a time: ~50 bytes per active
    customer-day)."""
    return _summary_history(_value_db(), dataset, data_version(dataset))


@st.cache_resource(show_spinner="Building the customer table…", max_entries=4)
def _segments_frame(path: str, dataset: str, as_of: str, version: str, stamp: str) -> pd.DataFrame:
    from analytics.explorer import build_frame

    # the page joins the clustering run it shows itself (segments_assignments)
    return build_frame(get_warehouse(path), dataset, as_of, with_clusters=False,
                       history=_summary_history(path, dataset, version))


def segments_frame(dataset: str, as_of) -> pd.DataFrame:
    """Customer frame for the Segments page (read-only: copy before changing it)."""
    return _segments_frame(_value_db(), dataset, str(as_of), data_version(dataset), prediction_stamp(dataset))


@st.cache_resource(show_spinner=False, max_entries=8)
def _event_source(path: str, dataset: str, as_of: str, version: str):
    from analytics.segments.activity import EventSource

    return EventSource(get_warehouse(path), dataset, as_of)


def event_source(dataset: str, as_of):
    """``analytics.segments.activity.EventSource`` of ``dataset`` at ``as_of`` (answers segment conditions on
    what customers did and on their attributes; keeps each answer), one per data version."""
    return _event_source(_value_db(), dataset, str(as_of), data_version(dataset))


# ---- Explorer page (owned by the explorer area) ------------------------------------
# analytics.explorer.build_frame per as-of date: a shared read-only resource (no copy per
# rerun at 1M customers), keyed by data version, the published predictions and the latest
# clustering run (its id and cluster names, so a rename shows up).
@st.cache_resource(show_spinner="Building the customer table…", max_entries=6)
def _explorer_frame(path: str, dataset: str, as_of: str, version: str, stamp: str) -> pd.DataFrame:
    from analytics.explorer import build_frame

    return build_frame(get_warehouse(path), dataset, as_of, history=_summary_history(path, dataset, version))


def _explorer_stamp(dataset: str) -> str:
    run = warehouse().cursor().execute(
        "SELECT id, names FROM clustering_runs WHERE dataset = ? ORDER BY created_at DESC, id DESC LIMIT 1",
        [dataset],
    ).fetchone()
    return prediction_stamp(dataset) + "#" + ("" if run is None else f"{run[0]}:{run[1]}")


def explorer_key(dataset: str) -> tuple[str, str]:
    """The cache key of the Explorer's cached results: (data version, stamp of the published
    predictions and the latest clustering run). A page run reads it once and passes it as
    ``key=`` to the ``explorer_*`` functions (three small queries once, not per call)."""
    return data_version(dataset), _explorer_stamp(dataset)


def _key(dataset: str, key) -> tuple[str, str]:
    return explorer_key(dataset) if key is None else (str(key[0]), str(key[1]))


def explorer_frame(dataset: str, as_of, *, key: tuple[str, str] | None = None) -> pd.DataFrame:
    """Customer frame (summary, RFM segment, CLV, latest clusters, predictions) for the
    Explorer page at ``as_of`` (read-only: copy before changing it)."""
    return _explorer_frame(_value_db(), dataset, str(as_of), *_key(dataset, key))


@st.cache_resource(show_spinner=False, max_entries=12)
def _explorer_groups(path: str, dataset: str, as_of: str, version: str, stamp: str, column: str) -> dict:
    from analytics.explorer import category_groups

    return category_groups(_explorer_frame(path, dataset, as_of, version, stamp), column)


def explorer_groups(dataset: str, as_of, column: str, *, key: tuple[str, str] | None = None) -> dict[str, pd.Series]:
    """``analytics.explorer.category_groups`` of the Explorer frame at ``as_of`` (RFM segments,
    clusters), cached with the frame: one mask per value, shared and read-only."""
    return _explorer_groups(_value_db(), dataset, str(as_of), *_key(dataset, key), str(column))


@st.cache_data(show_spinner=False, max_entries=32)
def _explorer_comparison(path: str, dataset: str, as_of: str, version: str, stamp: str, column: str,
                         names: tuple) -> pd.DataFrame:
    from analytics.explorer import segment_comparison

    groups = _explorer_groups(path, dataset, as_of, version, stamp, column)
    return segment_comparison(_explorer_frame(path, dataset, as_of, version, stamp),
                              {n: groups[n] for n in names}, as_of=as_of)


def explorer_comparison(dataset: str, as_of, column: str, names, *,
                        key: tuple[str, str] | None = None) -> pd.DataFrame:
    """``analytics.explorer.segment_comparison`` of the :func:`explorer_groups` ``names`` (in that
    order) at ``as_of``, cached per frame and choice of groups."""
    return _explorer_comparison(_value_db(), dataset, str(as_of), *_key(dataset, key), str(column),
                                tuple(str(n) for n in names))


@st.cache_data(show_spinner="Computing cohorts…", max_entries=16)
def _explorer_cohorts(path: str, dataset: str, as_of: str, max_months: int, version: str) -> pd.DataFrame:
    from analytics.explorer import cohort_retention

    return cohort_retention(get_warehouse(path), dataset, as_of, max_months,
                            history=_summary_history(path, dataset, version))


def explorer_cohorts(dataset: str, as_of, max_months: int = 24, *, key: tuple[str, str] | None = None) -> pd.DataFrame:
    """``analytics.explorer.cohort_retention``, cached per data version."""
    version = data_version(dataset) if key is None else str(key[0])
    return _explorer_cohorts(_value_db(), dataset, str(as_of), int(max_months), version)


# ---- Segments page: a saved clustering run's assignment (segments area) -------------
@st.cache_resource(show_spinner=False, max_entries=4)
def _segments_assignments(path: str, run_id: int, names: str) -> pd.DataFrame:
    from analytics.segments.store import load_assignments

    return load_assignments(get_warehouse(path), run_id)


def segments_assignments(run_id: int) -> pd.DataFrame:
    """``analytics.segments.store.load_assignments`` (read-only), cached until the run's names change."""
    row = warehouse().cursor().execute("SELECT names FROM clustering_runs WHERE id = ?", [int(run_id)]).fetchone()
    return _segments_assignments(_value_db(), int(run_id), str(row[0] if row else ""))


# ---- Explorer page: migration flows between two dates (see the Explorer section above) ----
@st.cache_data(show_spinner="Comparing the two dates…", max_entries=16)
def _explorer_migration(path: str, dataset: str, from_day: str, to_day: str, column: str, version: str,
                        stamp: str) -> pd.DataFrame:
    from analytics.explorer import rfm_migration, segment_migration

    history = _summary_history(path, dataset, version)
    later = _explorer_frame(path, dataset, to_day, version, stamp)
    if column == "rfm_segment":  # the earlier date needs only the segments (as codes), not a whole frame
        return rfm_migration(get_warehouse(path), dataset, from_day, later, history=history)
    return segment_migration(_explorer_frame(path, dataset, from_day, version, stamp), later, column,
                             history=history)


@st.cache_data(show_spinner="Assigning both dates to the clusters…", max_entries=16)
def _explorer_cluster_migration(path: str, dataset: str, from_day: str, to_day: str, run_id: int, version: str,
                                stamp: str) -> pd.DataFrame:
    from analytics.explorer import cluster_migration

    return cluster_migration(get_warehouse(path), run_id, _explorer_frame(path, dataset, from_day, version, stamp),
                             _explorer_frame(path, dataset, to_day, version, stamp),
                             history=_summary_history(path, dataset, version))


def explorer_cluster_migration(dataset: str, from_day, to_day, run_id: int, *,
                                key: tuple[str, str] | None = None) -> pd.DataFrame:
    """``analytics.explorer.cluster_migration`` of one clustering run between two dates, cached
    (the stamp holds the latest run's id and names, so a rename shows up)."""
    return _explorer_cluster_migration(_value_db(), dataset, str(from_day), str(to_day), int(run_id),
                                       *_key(dataset, key))


def explorer_migration(dataset: str, from_day, to_day, column: str = "rfm_segment", *,
                       key: tuple[str, str] | None = None) -> pd.DataFrame:
    """``analytics.explorer.segment_migration`` between the Explorer frames of two dates, cached."""
    return _explorer_migration(_value_db(), dataset, str(from_day), str(to_day), column, *_key(dataset, key))


# ---- Campaigns page (owned by the campaigns-page area) -----------------------------
# The Explorer frame (summary, scores, latest clusters, predictions) plus the campaign value
# columns (analytics.campaigns.value_columns: expected CLV, churn risk...), and the target
# list of a campaign definition: shared read-only resources (the page never mutates them),
# keyed by data version, publish/clustering stamp and, for targets, the saved segments.
@st.cache_resource(show_spinner="Valuing every customer…", max_entries=4)
def _campaigns_frame(path: str, dataset: str, as_of: str, version: str, stamp: str) -> pd.DataFrame:
    from analytics.campaigns import value_columns

    wh = get_warehouse(path)
    return value_columns(wh, _explorer_frame(path, dataset, as_of, version, stamp),
                         models=_day_clv_models(path, dataset, as_of, version))


def campaigns_frame(dataset: str, as_of) -> pd.DataFrame:
    """``analytics.campaigns.value_columns`` over the Explorer customer frame (read-only)."""
    return _campaigns_frame(_value_db(), dataset, str(as_of), data_version(dataset), _explorer_stamp(dataset))


def _segments_stamp() -> str:
    row = warehouse().cursor().execute("SELECT count(*), max(updated_at), max(id) FROM segments").fetchone()
    return "|".join(map(str, row))


@st.cache_resource(show_spinner="Choosing and fitting the recommender…", max_entries=2)
def _campaign_recommender(path: str, dataset: str, as_of: str, version: str):
    """``analytics.recommend.campaign_recommender`` (the validation winner, fitted on events up to
    the end of ``as_of``, as analytics.campaigns does), kept across reruns so that moving a campaign
    control does not refit it."""
    from analytics import recommend

    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    return recommend.campaign_recommender(get_warehouse(path), dataset, end)


def campaign_recommender_choice(dataset: str, as_of) -> dict:
    """Which recommender campaign lists use on ``as_of`` and how it did against popularity."""
    return dict(_campaign_recommender(_value_db(), dataset, str(as_of), data_version(dataset)).choice_)


@st.cache_resource(show_spinner="Selecting and ranking the customers…", max_entries=8)
def _campaign_targets(path: str, dataset: str, as_of: str, spec_json: str, version: str, stamp: str,
                      seg_stamp: str) -> pd.DataFrame:
    import json

    from analytics import recommend
    from analytics.campaigns import CampaignError, CampaignSpec, select_targets

    spec = CampaignSpec.from_dict(json.loads(spec_json))
    frame = _campaigns_frame(path, dataset, as_of, version, stamp)
    n_recs = int(spec.recommendations or 0)
    # the list without items (cheap), then the items from the cached recommender: the same
    # calls as analytics.campaigns.targeting.recommended_items, without a refit per change
    bare = CampaignSpec.from_dict({**spec.to_dict(), "recommendations": 0, "recommendation_category": None})
    targets = select_targets(get_warehouse(path), frame, bare)
    if n_recs > 0:
        ids = targets["customer_id"].astype(str)
        memo = _campaign_recs_memo(path, dataset, as_of, version, n_recs, spec.recommendation_category or "")
        with memo["lock"]:
            missing = ids[~ids.isin(memo["text"].index)]
            if len(missing):
                try:
                    model = _campaign_recommender(path, dataset, as_of, version)
                    recs = model.recommend(list(missing), n=n_recs, exclude_purchased=True,
                                           category=spec.recommendation_category)
                except recommend.RecommendError as exc:
                    raise CampaignError(f"recommendations: {exc}") from None
                new = _items_text(recs).reindex(pd.Index(missing.to_numpy())).fillna("")
                memo["text"] = pd.concat([memo["text"], new])
            text = memo["text"]
        targets = targets.copy()
        targets["recommended_items"] = ids.map(text).fillna("").to_numpy()
        targets.attrs["spec"] = spec.validated().to_dict()
    return targets


@st.cache_resource(show_spinner=False, max_entries=4)
def _campaign_recs_memo(path: str, dataset: str, as_of: str, version: str, n: int, category: str) -> dict:
    """Recommended-items text per customer already computed for these settings: a customer's
    items do not depend on the campaign around them, so a control-share or cap change only
    recommends for customers not seen before (a lock guards the shared memo)."""
    import threading

    return {"lock": threading.Lock(), "text": pd.Series([], dtype=object, index=pd.Index([], dtype=object))}


def _items_text(recs: pd.DataFrame, sep: str = "; ") -> pd.Series:
    """customer_id -> "item1; item2; ..." in rank order: analytics.recommend.recommendations_text,
    vectorized over the (at most n) rank columns instead of a Python join per customer."""
    if recs is None or len(recs) == 0:
        return pd.Series([], dtype=object, index=pd.Index([], dtype=object))
    wide = recs.pivot(index="customer_id", columns="rank", values="item_id").sort_index(axis=1)
    out = None
    for col in wide.columns:
        vals = wide[col].to_numpy(dtype=object)
        have = pd.notna(vals)
        item = np.where(have, vals, "").astype(object)
        if out is None:
            out, any_ = item, have
        else:
            out = np.where(have, np.where(any_, out + sep, "") + item, out).astype(object)
            any_ = any_ | have
    return pd.Series(out, index=wide.index.astype(str), dtype=object)


def campaign_targets(dataset: str, as_of, spec) -> pd.DataFrame:
    """``analytics.campaigns.select_targets`` for ``spec`` on the campaigns frame (read-only),
    cached per definition, data version and saved segments (a segment edit refreshes it)."""
    import json

    spec_json = json.dumps(spec.to_dict(), sort_keys=True, default=str)
    return _campaign_targets(_value_db(), dataset, str(as_of), spec_json, data_version(dataset),
                             _explorer_stamp(dataset), _segments_stamp())


def event_categories(dataset: str, version: str, limit: int = 500) -> list[str]:
    """The dataset's item categories (most frequent first, at most ``limit``)."""
    df = query_df(
        "SELECT category FROM events WHERE dataset = ? AND category IS NOT NULL "
        "GROUP BY category ORDER BY count(*) DESC, category LIMIT ?", (dataset, int(limit)), version)
    return [str(c) for c in df["category"]]


#: the recommenders the Campaigns page's quick holdout test compares (seconds on the sample); the
#: full comparison (ALS, BPR, the sequence model) is `valuescope recommend evaluate`
PAGE_RECOMMENDERS = "popularity,recent_popularity,item_cf"


@st.cache_data(show_spinner="Evaluating the recommenders on a holdout…", max_entries=8)
def _recommend_holdout(path: str, dataset: str, split: str, end: str, k: int, version: str,
                       families: str) -> pd.DataFrame:
    from analytics.recommend import evaluate_holdout

    return evaluate_holdout(get_warehouse(path), dataset, split, end, k=k, families=families)


def recommend_holdout(dataset: str, split, end, k: int = 10, families: str = PAGE_RECOMMENDERS) -> pd.DataFrame:
    """``analytics.recommend.evaluate_holdout`` of ``families`` (settings chosen on validation before
    the split), cached per data version."""
    return _recommend_holdout(_value_db(), dataset, str(split), str(end), int(k), data_version(dataset), families)


def _campaigns_stamp(dataset: str) -> str:
    row = warehouse().cursor().execute(
        "SELECT count(*), max(id), (SELECT count(*) FROM campaign_outcomes WHERE dataset = ?), "
        "(SELECT max(uploaded_at) FROM campaign_outcomes WHERE dataset = ?) FROM campaigns WHERE dataset = ?",
        [dataset, dataset, dataset]).fetchone()
    return "|".join(map(str, row))


@st.cache_data(show_spinner=False, max_entries=16)
def _campaign_response_defaults(path: str, dataset: str, as_of: str, spec_json: str, version: str, stamp: str,
                                seg_stamp: str, camp_stamp: str) -> dict:
    import json

    from analytics.campaigns import CampaignSpec, response_defaults

    spec = CampaignSpec.from_dict(json.loads(spec_json))
    frame = _campaigns_frame(path, dataset, as_of, version, stamp)
    targets = _campaign_targets(path, dataset, as_of, spec_json, version, stamp, seg_stamp)
    # only the columns the defaults read, taken by position (a .loc of a million ids on the
    # whole wide frame costs seconds)
    cols = [c for c in ("last_purchase", "n_orders", "total_revenue") if c in frame.columns]
    rows = frame[cols].iloc[frame.index.get_indexer(targets["customer_id"].to_numpy())]
    rows.attrs = dict(frame.attrs)
    return response_defaults(rows, spec, wh=get_warehouse(path))


def campaign_response_defaults(dataset: str, as_of, spec) -> dict:
    """``analytics.campaigns.response_defaults`` for the rows of ``spec``'s target list (an earlier
    campaign's measured uplift when one exists), cached until the data, segments or outcomes change."""
    import json

    spec_json = json.dumps(spec.to_dict(), sort_keys=True, default=str)
    return _campaign_response_defaults(_value_db(), dataset, str(as_of), spec_json, data_version(dataset),
                                       _explorer_stamp(dataset), _segments_stamp(), _campaigns_stamp(dataset))


# ---- Reports page (owned by the reports area) -----------------------------------------
# The expected CLV a report shows (a published model's, else a BG/NBD + Gamma-Gamma fit on
# every buyer: the costly part of a report at scale), per Explorer frame: read-only.
@st.cache_resource(show_spinner="Estimating the expected CLV…", max_entries=4)
def _reports_expected_clv(path: str, dataset: str, as_of: str, version: str, stamp: str):
    from analytics.reports import expected_clv

    return expected_clv(_explorer_frame(path, dataset, as_of, version, stamp),
                        models=_day_clv_models(path, dataset, as_of, version))


def reports_expected_clv(dataset: str, as_of):
    """``analytics.reports.expected_clv`` of the Explorer frame at ``as_of``, cached per data version."""
    return _reports_expected_clv(_value_db(), dataset, str(as_of), data_version(dataset), _explorer_stamp(dataset))


# Saved campaigns: the stored list and read-outs, read once per change of the campaigns
# tables (a stored list can have a million rows; reruns must not read it again).
@st.cache_resource(show_spinner="Reading the stored list…", max_entries=4)
def _stored_campaign_targets(path: str, campaign_id: int, camp_stamp: str) -> pd.DataFrame:
    from analytics.campaigns import campaign_targets

    return campaign_targets(get_warehouse(path), campaign_id)


def stored_campaign_targets(dataset: str, campaign_id: int) -> pd.DataFrame:
    """``analytics.campaigns.campaign_targets`` (read-only), cached until campaigns or outcomes change."""
    return _stored_campaign_targets(_value_db(), int(campaign_id), _campaigns_stamp(dataset))


@st.cache_data(show_spinner=False, max_entries=8)
def _stored_campaign_readout(path: str, campaign_id: int, camp_stamp: str) -> dict | None:
    from analytics.campaigns import campaign_readout

    return campaign_readout(get_warehouse(path), campaign_id)


def stored_campaign_readout(dataset: str, campaign_id: int) -> dict | None:
    """``analytics.campaigns.campaign_readout`` (None before any upload), cached until outcomes change."""
    return _stored_campaign_readout(_value_db(), int(campaign_id), _campaigns_stamp(dataset))


@st.cache_data(show_spinner="Reading the outcomes…", max_entries=4)
def _uploaded_readout(path: str, campaign_id: int, file_id: str, camp_stamp: str, _data: bytes):
    import io

    from analytics.campaigns import read_outcomes, readout

    outcomes = read_outcomes(io.BytesIO(_data))
    return outcomes, readout(_stored_campaign_targets(path, campaign_id, camp_stamp), outcomes)


def uploaded_readout(dataset: str, campaign_id: int, file_id: str, data: bytes):
    """``(outcomes, readout)`` of an uploaded outcomes file against a saved campaign, cached per
    upload (``file_id``) so reruns do not parse the file again. CampaignError on a bad file."""
    return _uploaded_readout(_value_db(), int(campaign_id), str(file_id), _campaigns_stamp(dataset), data)


# ---- Reviews & new customers page (reviews area) --------------------------------------
@st.cache_data(show_spinner="Scoring the review sentiment…", max_entries=8)
def _sentiment_info(path: str, dataset: str, version: str) -> dict:
    from analytics.reviews.segments import ensure_ready_made_segments
    from analytics.reviews.sentiment import ensure_sentiment

    wh = get_warehouse(path)
    info = ensure_sentiment(wh, dataset)
    ensure_ready_made_segments(wh, dataset)
    return info


def sentiment_info(dataset: str) -> dict:
    """The dataset's review sentiment run (scored first when the data changed since the last run)."""
    return _sentiment_info(_value_db(), dataset, data_version(dataset))


def rescore_sentiment(dataset: str) -> dict:
    """Score the reviews again (and forget the cached review tables)."""
    from analytics.reviews.sentiment import score_dataset_reviews

    info = score_dataset_reviews(get_warehouse(_value_db()), dataset).info
    _sentiment_info.clear()
    _negative_reviews.clear()
    _category_sentiment.clear()
    return info


@st.cache_data(show_spinner=False, max_entries=16)
def _negative_reviews(path: str, dataset: str, as_of: str, days: int, share: float, version: str, stamp: str):
    from analytics.reviews.views import negative_reviews_of_valuable

    frame = _explorer_frame(path, dataset, as_of, version, stamp)
    return negative_reviews_of_valuable(get_warehouse(path), dataset, frame, as_of, days=days, top_share=share)


def negative_reviews(dataset: str, as_of, days: int, share: float):
    """The most negative recent reviews of valuable customers (analytics.reviews.views)."""
    sentiment_info(dataset)
    return _negative_reviews(_value_db(), dataset, str(as_of), int(days), float(share), data_version(dataset),
                             _explorer_stamp(dataset))


@st.cache_data(show_spinner=False, max_entries=8)
def _category_sentiment(path: str, dataset: str, version: str):
    from analytics.reviews.features import item_sentiment

    return item_sentiment(get_warehouse(path), dataset, by="category")


def category_sentiment(dataset: str):
    sentiment_info(dataset)
    return _category_sentiment(_value_db(), dataset, data_version(dataset))


def churn_thresholds(dataset: str) -> tuple[float, float]:
    from analytics.lifecycle import band_thresholds

    return band_thresholds(warehouse(), dataset)


def set_churn_thresholds(dataset: str, thresholds) -> tuple[float, float]:
    from analytics.lifecycle import set_band_thresholds

    out = set_band_thresholds(warehouse(), dataset, thresholds)
    _lifecycle_table.clear()
    return out


@st.cache_data(show_spinner="Expecting every repeat buyer's next order…", max_entries=8)
def _lifecycle_table(path: str, dataset: str, as_of: str, version: str, stamp: str, thresholds: tuple):
    from analytics.lifecycle import lifecycle_columns

    frame = _explorer_frame(path, dataset, as_of, version, stamp)
    models = _day_clv_models(path, dataset, as_of, version)
    if models is None:
        raise ValueError("the BG/NBD model cannot be fitted on these data, so there are no next-order dates")
    from analytics.campaigns import value_columns

    values = value_columns(get_warehouse(path), frame, models=models)
    out = lifecycle_columns(frame, as_of, bgnbd=models[0], churn_risk=values["churn_risk"].to_numpy(dtype=float),
                            thresholds=thresholds)
    out["churn_risk"] = values["churn_risk"].to_numpy(dtype=float)
    return out


def lifecycle_table(dataset: str, as_of):
    """next_order_date, days_to_next_order, churn_band and churn_risk of every customer (analytics.lifecycle)."""
    return _lifecycle_table(_value_db(), dataset, str(as_of), data_version(dataset), _explorer_stamp(dataset),
                            tuple(churn_thresholds(dataset)))


@st.cache_resource(show_spinner="Fitting the first-order model on earlier first-time buyers…", max_entries=4)
def _first_order(path: str, dataset: str, as_of: str, window: int, version: str):
    from analytics.newcustomers import first_order_values, new_customer_segments

    fov = first_order_values(get_warehouse(path), dataset, as_of, window_days=window)
    groups, profile = new_customer_segments(fov.features, k=4) if len(fov.features) >= 4 else (
        pd.Series(dtype=object, name="new_customer_segment"), pd.DataFrame())
    return fov, groups, profile


def first_order(dataset: str, as_of, window: int):
    """(FirstOrderValues, group per new customer, group profiles) of analytics.newcustomers (read-only)."""
    sentiment_info(dataset)
    return _first_order(_value_db(), dataset, str(as_of), int(window), data_version(dataset))


@st.cache_data(show_spinner=False, max_entries=8)
def _cold_start(path: str, dataset: str, as_of: str, version: str):
    from analytics.newcustomers import cold_start_recommendations, no_history_customers

    wh = get_warehouse(path)
    ids = no_history_customers(wh, dataset, as_of)
    return cold_start_recommendations(wh, dataset, ids[:2000], as_of, n=5)


def cold_start(dataset: str, as_of):
    """Labelled popular-item recommendations for (up to 2,000) customers without a purchase."""
    return _cold_start(_value_db(), dataset, str(as_of), data_version(dataset))
