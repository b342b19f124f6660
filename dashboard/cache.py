"""The one place that caches: a short table of wrappers around library calls.

What pages read is computed once per data version by the preparation step
(``analytics.prepare``) and kept in the warehouse; this module only keeps the results
in memory, shared by every browser session (``st.cache_resource`` for big read-only
objects, ``st.cache_data`` for small results), keyed by the warehouse file, the parts
of the dataset's :class:`analytics.prepare.Version` the call depends on (read once per
script run) and the call's arguments. No SQL and no library logic lives here.

How a page reads prepared data: call a wrapper below with the dataset (e.g.
``cache.explorer_frame(dataset, as_of)``). At the dataset's last day the result is read
from the warehouse; when the preparation has not stored it yet the wrapper returns
**None** (and makes sure the preparation runs): the page then calls
``widgets.not_ready(dataset, "…")`` for that part. Other days are computed on demand.
Where to add a field: in ``analytics.prepare`` (see its docstring); pages then find it
in the frame.

Environment:
- ``VALUESCOPE_DB``: the warehouse file (see ``analytics.warehouse.default_db_path``).
- ``VALUESCOPE_SKIP_SAMPLE=1``: do not load the bundled sample data set into an empty
  warehouse on first start.
- ``VALUESCOPE_PREPARE``: ``background`` (default: a page whose prepared data is missing
  says so while a background job prepares it) or ``inline`` (the page computes what is
  missing itself, synchronously: tests and single-user scripts).
"""
from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Callable

import streamlit as st

from analytics import access, prepare
from analytics.bootstrap import sample_skipped
from analytics.warehouse import Warehouse, default_db_path, get_warehouse

ENV_PREPARE = "VALUESCOPE_PREPARE"


def db_path() -> str:
    """The warehouse file's absolute path (resolved once per setting, and working directory for a
    relative one: every cached call asks for it)."""
    raw = str(default_db_path())
    return _resolved(raw, "" if os.path.isabs(raw) else os.getcwd())


@functools.lru_cache(maxsize=16)
def _resolved(path: str, cwd: str) -> str:
    return str((Path(cwd or "/") / path).resolve())


def inline() -> bool:
    """Whether missing prepared results are computed by the page itself (``VALUESCOPE_PREPARE=inline``)."""
    return os.environ.get(ENV_PREPARE, "").strip().lower() == "inline"


@st.cache_resource(show_spinner=False)
def _warehouse(path: str) -> Warehouse:
    # WarehouseLocked (a CLI command has the file open) is not cached: the next run tries again
    wh = get_warehouse(path)
    if os.environ.get("VALUESCOPE_SERVE") == "1":  # `valuescope serve`: run CLI commands for this warehouse
        from analytics import jobserver

        jobserver.start(wh)
    return wh


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


# ---------------------------------------------------------------- the version, once per run
#: how long ``valuescope serve`` (which owns the warehouse: every write happens in its process) shares a
#: version it read between sessions while this process has committed nothing since (seconds)
VERSION_TRUST_S = 1.0
_SHARED_VERSIONS: dict[tuple[str, str], tuple[int, float, prepare.Version]] = {}
_SHARED_LOCK = threading.Lock()
_clock = time.monotonic


def _run_memo(name: str) -> dict:
    """A dict that lives for the current script run (a fresh one at the next run; outside a run, a
    fresh one at every call)."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return {}
    memo = getattr(ctx, "_valuescope_memo", None)
    if memo is None or memo[0] is not ctx.cursors:  # ctx.cursors is a new dict at every run
        memo = (ctx.cursors, {})
        ctx._valuescope_memo = memo
    return memo[1].setdefault(name, {})


def _serving() -> bool:
    return os.environ.get("VALUESCOPE_SERVE") == "1"


def version(dataset: str) -> prepare.Version:
    """The dataset's :class:`analytics.prepare.Version`, read once per script run. Under ``valuescope
    serve`` a version read by one session is shared with the others for up to :data:`VERSION_TRUST_S`
    seconds as long as this process committed nothing since (``Warehouse.changes``; CLI commands run
    here too): many sessions at once ask the warehouse once, and a change is seen at the next run."""
    memo = _run_memo("versions")
    key = (db_path(), dataset)
    if key not in memo:
        memo[key] = _current_version(key, dataset)
    return memo[key]


def _current_version(key: tuple[str, str], dataset: str) -> prepare.Version:
    wh = warehouse()
    if not _serving():
        return prepare.current_version(wh, dataset)
    changes, now = wh.changes, _clock()  # read before the query: a commit during it is seen next time
    with _SHARED_LOCK:
        hit = _SHARED_VERSIONS.get(key)
    if hit is not None and hit[0] == changes and now - hit[1] < VERSION_TRUST_S:
        return hit[2]
    out = prepare.current_version(wh, dataset)
    with _SHARED_LOCK:
        _SHARED_VERSIONS[key] = (changes, now, out)
    return out


def datasets() -> list[str]:
    """``Warehouse.datasets``: the datasets the caller may see, read once per script run."""
    memo = _run_memo("datasets")
    if db_path() not in memo:
        memo[db_path()] = warehouse().datasets()
    return list(memo[db_path()])


def changed(dataset: str | None = None) -> None:
    """Call after the caller changed data (a load, a delete, a publish): the version is read
    again, and the changed dataset's preparation starts (in the background)."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None and hasattr(ctx, "_valuescope_memo"):
        del ctx._valuescope_memo
    with _SHARED_LOCK:
        _SHARED_VERSIONS.clear()
    if dataset and warehouse().has_dataset(dataset) and not inline():
        prepare.start(warehouse(), dataset)


def _key(dataset: str, *parts: str) -> str:
    """The version key of a result derived from frames as this caller sees them: viewers' pseudonymised
    frames and everyone else's raw ones are cached apart (never one handed to the other)."""
    view = "" if access.may(warehouse(), "raw_ids") else "|pseudonymised"
    return version(dataset).key(*parts) + view


def _seen(out):
    """A derived result as the caller may see it (``analytics.access.present``)."""
    return access.present(warehouse(), out)


def shared(dataset: str, name: str, build: Callable[[], object], *key):
    """The Plotly figure (or table for people) ``build()`` makes, built once per version of the
    dataset's data and clusters, per caller's view (raw or pseudonymised ids) and per ``key``
    (hashable: everything else the chart shows, e.g. the date range, the currency, the chosen
    groups), and shared by every session; building a figure (validating its properties and
    template) costs a page view more than drawing it. The result is read-only: a page that changed
    it after the call would change it for everyone."""
    return _chart(db_path(), _key(dataset, "data", "clusters"), dataset, name, key, _build=build)


@st.cache_resource(show_spinner=False, max_entries=256)
def _chart(path: str, version_key: str, dataset: str, name: str, key: tuple, _build):
    return _build()


class _NotReady(Exception):
    """A prepared result is not stored yet (never cached: the next run looks again)."""


def _wrap(fn: Callable, parts: tuple[str, ...] = ("data",), *, resource: bool = False, prepared: bool = False,
          max_entries: int = 8, spinner: str | bool = False, name: str | None = None):
    """A cached ``fn(warehouse, dataset, *args, **kw)`` called as ``wrapper(dataset, *args, **kw)``,
    keyed by the warehouse, the ``parts`` of the dataset's version and the (hashable) arguments.

    ``prepared``: ``fn`` is an ``analytics.prepare`` getter: in background mode it is asked not to
    compute what the preparation step makes, and a missing result returns None (not cached) after
    making sure the preparation runs."""
    decorate = st.cache_resource if resource else st.cache_data
    label = name or fn.__name__

    def cached(path: str, key: str, dataset: str, *args, **kw):
        out = fn(_warehouse(path), dataset, *args, **kw)
        if prepared and out is None:
            raise _NotReady()
        return out

    cached.__qualname__ = cached.__name__ = f"cached_{label}"  # one cache per wrapper
    cached = decorate(show_spinner=spinner, max_entries=max_entries)(cached)

    def call(dataset: str, *args, _raw: bool = False, **kw):
        # the cache is shared by every session: the caller's right to read the dataset is checked on
        # every call (a cached result skips the library's own checks), and what comes back is what the
        # caller may see (pseudonymised ids and no personal columns for a viewer). ``_raw``: the stored
        # result itself, for a wrapper below that derives from it and presents its own result.
        wh = warehouse()
        access.require(wh, "read", dataset)
        seen = (lambda out: out) if _raw else (lambda out: access.present(wh, out))
        if prepared:
            kw["compute"] = inline()
        if not prepared:
            return seen(cached(db_path(), version(dataset).key(*parts), dataset, *args, **kw))
        try:
            return seen(cached(db_path(), version(dataset).key(*parts), dataset, *args, **kw))
        except _NotReady:
            ensure_prepared(dataset)
            return None

    call.__name__ = label
    call.__doc__ = f"``{getattr(fn, '__module__', '')}.{fn.__name__}``, cached (see the module docstring)."
    call.clear = cached.clear
    return call


# ---------------------------------------------------------------- preparation status
def ensure_prepared(dataset: str) -> prepare.Job | None:
    """Start the dataset's preparation in the background when its current version is not
    prepared and no job runs for it (a load from the CLI with --no-prepare, a restart after an
    upgrade...); the running or last job, or None (prepared, or inline mode)."""
    if inline() or not dataset:
        return None
    wh = warehouse()
    if not wh.has_dataset(dataset):
        return None
    job = prepare.job(wh, dataset)
    if job is not None and job.version == version(dataset).data and job.state in ("queued", "running", "failed"):
        return job
    if _is_prepared(dataset):
        return None
    return prepare.start(wh, dataset)


def _prepared_marker(wh: Warehouse, dataset: str) -> bool:
    if not prepare.is_prepared(wh, dataset):
        raise _NotReady()  # not cached: asked again next run
    return True


_marker = _wrap(_prepared_marker, max_entries=64, name="prepared_marker")


def _is_prepared(dataset: str) -> bool:
    try:
        return bool(_marker(dataset))
    except _NotReady:
        return False


def preparation(dataset: str | None) -> prepare.Job | None:
    """The dataset's preparation job while one runs (or failed) for the current version; None when
    the dataset is prepared (or in inline mode)."""
    if not dataset or inline() or _is_prepared(dataset):
        return None
    return ensure_prepared(dataset)


# ---------------------------------------------------------------- the table
# analytics.prepare getters: prepared results at the last day (None until stored), other days on demand
overview = _wrap(prepare.overview, prepared=True, max_entries=32)
span = _wrap(prepare.span, max_entries=64)
event_categories = _wrap(prepare.categories, prepared=True, max_entries=16, name="event_categories")
summary_history = _wrap(prepare.history, resource=True, max_entries=1, name="summary_history",
                        spinner="Reading every customer's history (once per data version)…")
_frame = _wrap(prepare.customer_frame, ("data", "clusters"), resource=True, prepared=True, max_entries=8,
               spinner="Building the customer table…", name="customer_frame")
value_scorer = _wrap(prepare.scorer, resource=True, prepared=True, max_entries=4, name="value_scorer",
                     spinner="Summarising every customer…")
_models = _wrap(prepare.clv_models, resource=True, prepared=True, max_entries=6, name="clv_models",
                spinner="Fitting the purchase model and Gamma-Gamma…")
_purchase_model = _wrap(prepare.purchase_model, resource=True, prepared=True, max_entries=4, name="purchase_model",
                        spinner="Fitting the purchase model…")
_prob = _wrap(prepare.probabilistic, resource=True, prepared=True, max_entries=16, name="probabilistic",
              spinner="Computing the probabilistic CLV…")
reports_expected_clv = _wrap(prepare.expected_clv, resource=True, prepared=True, max_entries=4,
                             name="reports_expected_clv", spinner="Estimating the expected CLV…")
explorer_cohorts = _wrap(prepare.cohorts, prepared=True, max_entries=16, name="explorer_cohorts",
                         spinner="Computing cohorts…")
_rfm_migration = _wrap(prepare.rfm_migration, ("data", "clusters"), prepared=True, max_entries=16,
                       name="rfm_migration", spinner="Comparing the two dates…")
_recommender = _wrap(prepare.recommender, resource=True, prepared=True, max_entries=2, name="recommender",
                     spinner="Fitting the item recommender…")

# other library calls keyed by the version part they read
published_predictions = _wrap(lambda wh, d: _lib("analytics.predict.registry").published_predictions(wh, d),
                              max_entries=8, name="published_predictions")
value_holdout = _wrap(lambda wh, d, cutoff, unit, purchase_model="bgnbd", penalizer=0.0: _lib(
    "analytics.diagnostics").calibration_holdout_check(wh, d, cutoff, unit=unit, purchase_model=purchase_model,
                                                       penalizer=penalizer),
    resource=True, max_entries=8, name="value_holdout", spinner="Fitting the purchase model on the calibration period…")
#: the recommenders the Campaigns page's quick holdout test compares (seconds on the sample); the
#: full comparison (ALS, BPR, the sequence model) is `valuescope recommend evaluate`
PAGE_RECOMMENDERS = "popularity,recent_popularity,item_cf"
recommend_holdout = _wrap(lambda wh, d, split, end, k=10, families=PAGE_RECOMMENDERS: _lib(
    "analytics.recommend").evaluate_holdout(wh, d, split, end, k=k, families=families), max_entries=8,
    name="recommend_holdout", spinner="Evaluating the recommenders on a holdout…")
attached = _wrap(prepare.attached, max_entries=64, name="attached")
segments_assignments = _wrap(lambda wh, d, run_id: _lib("analytics.segments.store").load_assignments(wh, run_id),
                             ("clusters",), resource=True, max_entries=4, name="segments_assignments")
stored_campaign_targets = _wrap(lambda wh, d, cid: _lib("analytics.campaigns").campaign_targets(wh, cid),
                                ("campaigns",), resource=True, max_entries=4, name="stored_campaign_targets",
                                spinner="Reading the stored list…")
stored_campaign_readout = _wrap(lambda wh, d, cid: _lib("analytics.campaigns").campaign_readout(wh, cid),
                                ("campaigns",), max_entries=8, name="stored_campaign_readout")


_currency_guess = _wrap(lambda wh, d: _lib("analytics.currency").guess_from_data(wh, d), max_entries=32,
                        name="currency_guess")


def dataset_currency(dataset: str):
    """``analytics.currency.dataset_currency``: the stored choice (read at every call, so a change made
    from the command line shows at once), else the guess from the data (cached per data version)."""
    from analytics.currency import dataset_currency as _dataset_currency

    memo = _run_memo("currency")
    key = (db_path(), dataset)
    if key not in memo:  # pages ask several times per run
        memo[key] = _dataset_currency(warehouse(), dataset, guess=lambda: _currency_guess(dataset))
    return memo[key]


def set_currency(dataset: str, code: str | None) -> str | None:
    """Store the dataset's currency (``CurrencyError`` for a code that is not ISO 4217; None: back to
    the guess)."""
    from analytics.currency import set_dataset_currency

    out = set_dataset_currency(warehouse(), dataset, code)
    _run_memo("currency").clear()
    return out


range_comparison = _wrap(prepare.range_comparison, max_entries=16, name="range_comparison",
                         spinner="Comparing with the previous period…")


def _lib(module: str):
    import importlib

    return importlib.import_module(module)


@st.cache_resource(show_spinner=False, max_entries=8)
def _event_source(path: str, key: str, dataset: str, as_of: str):
    from analytics.segments.activity import EventSource

    return EventSource(_warehouse(path), dataset, as_of)


def event_source(dataset: str, as_of):
    """``analytics.segments.activity.EventSource`` of ``dataset`` at ``as_of`` (answers segment conditions on
    what customers did and on their attributes; keeps each answer), one per data version."""
    return _event_source(db_path(), version(dataset).events, dataset, str(as_of))


def campaign_recommender_choice(dataset: str, as_of) -> dict:
    """Which recommender campaign lists use on ``as_of`` and how it did against popularity."""
    model = _recommender(dataset, str(as_of))
    if model is None:
        return {"model": "", "label": "the recommender being prepared", "ratios_vs_popularity": {}, "windows": [],
                "note": "the recommender is still being prepared"}
    return dict(getattr(model, "choice_", None) or {"model": "item_cf", "label": "item-based CF",
                                                    "ratios_vs_popularity": {}, "windows": []})


def explorer_frame(dataset: str, as_of, *, _raw: bool = False):
    """The customer frame with the latest clusters (no value columns) at ``as_of`` (read-only)."""
    return _frame(dataset, str(as_of), clusters=True, with_values=False, _raw=_raw)


def segments_frame(dataset: str, as_of, *, _raw: bool = False):
    """The customer frame without clusters (the Segments page joins the run it shows) (read-only)."""
    return _frame(dataset, str(as_of), clusters=False, with_values=False, _raw=_raw)


def segments_value_frame(dataset: str, as_of, *, _raw: bool = False):
    """The customer frame with the value columns (expected value, churn risk, P(alive)...) and without
    clusters (the Segments page joins the run it shows) (read-only)."""
    return _frame(dataset, str(as_of), clusters=False, with_values=True, _raw=_raw)


def campaigns_frame(dataset: str, as_of, *, _raw: bool = False):
    """The customer frame with clusters and the value columns (expected CLV...) (read-only)."""
    return _frame(dataset, str(as_of), clusters=True, with_values=True, _raw=_raw)


def value_models(dataset: str, as_of, unit: str, min_age_months: float | None = None, *,
                 purchase_model: str = "bgnbd", penalizer: float = 0.0):
    """The fitted (purchase model, Gamma-Gamma) pair on the summary at ``as_of`` in ``unit`` (None while
    not prepared; ``ValueError`` with the model's message when the data cannot support it)."""
    return _models(dataset, str(as_of), unit, purchase_model=purchase_model, penalizer=float(penalizer))


def value_purchase_model(dataset: str, as_of, unit: str, *, purchase_model: str = "bgnbd", penalizer: float = 0.0):
    """The purchase model of :func:`value_models`' pair fitted on its own, for when only the pair's
    spend model cannot be fitted (None while not prepared; ``ValueError`` when the purchase model
    cannot be fitted either)."""
    return _purchase_model(dataset, str(as_of), unit, purchase_model=purchase_model, penalizer=float(penalizer))


def value_prob(dataset: str, as_of, unit: str, min_age_months: float, horizon_months: float, discount_rate: float,
               *, purchase_model: str = "bgnbd", penalizer: float = 0.0):
    """The probabilistic CLV columns aligned to :func:`value_scorer`'s customers (margin applied at
    re-score); None while not prepared; ``ValueError`` when the models cannot be fitted."""
    scorer = value_scorer(dataset, str(as_of), unit, float(min_age_months))
    table = _prob(dataset, str(as_of), unit, float(horizon_months), float(discount_rate), float(min_age_months),
                  purchase_model=purchase_model, penalizer=float(penalizer))
    if scorer is None or table is None:
        return None
    return _aligned(db_path(), version(dataset).data, dataset, str(as_of), unit, float(min_age_months),
                    float(horizon_months), float(discount_rate), purchase_model, float(penalizer), _scorer=scorer,
                    _table=table)


@st.cache_resource(show_spinner=False, max_entries=16)
def _aligned(path, key, dataset, as_of, unit, min_age, horizon, discount, purchase_model, penalizer, _scorer, _table):
    return _scorer.align(_table)


_comparison_prepared = _wrap(prepare.purchase_model_comparison, resource=True, prepared=True, max_entries=4,
                             name="purchase_model_comparison",
                             spinner="Comparing BG/NBD and Pareto/NBD on this dataset's own history…")


def purchase_model_comparison(dataset: str):
    """``analytics.diagnostics.compare_purchase_models`` on the dataset's own calibration/holdout split
    (prepared): ``(comparison or None, problem or None)``; None while it is being prepared."""
    return _comparison_prepared(dataset)


def _explorer_derived(fn: Callable, name: str, max_entries: int = 16):
    """A cached ``fn(frame, *args)`` of the Explorer frame, called as ``wrapper(dataset, as_of, *args)``
    (None while the frame is being prepared): what every visit draws from the frame is computed
    once per frame version, as this caller sees the frame, and the arguments (hashable)."""
    def cached(path, key, dataset, as_of, args, _frame):
        return fn(_frame, *args)

    cached.__qualname__ = cached.__name__ = f"cached_{name}"
    cached = st.cache_data(show_spinner=False, max_entries=max_entries)(cached)

    def call(dataset: str, as_of, *args):
        frame = explorer_frame(dataset, as_of)
        if frame is None:
            return None
        return cached(db_path(), _key(dataset, "data", "clusters"), dataset, str(as_of), tuple(args), _frame=frame)

    call.__name__ = name
    call.__doc__ = f"``{getattr(fn, '__module__', '')}.{getattr(fn, '__name__', name)}`` of the Explorer frame, cached."
    call.clear = cached.clear
    return call


def _sentiment_columns(frame) -> list[str] | None:
    from analytics.reviews.views import sentiment_group_columns

    return sentiment_group_columns(frame)


def _sentiment_table(frame, column: str):
    from analytics.reviews.views import sentiment_by_group

    return sentiment_by_group(frame, column)


def _all_concentration(frame, fractions: tuple, max_points: int) -> dict:
    from analytics.explorer import concentration

    return concentration(frame["net_revenue"], fractions, max_points=max_points)


#: the columns review sentiment can be grouped by (None: no scored review), and the table per column
explorer_sentiment_columns = _explorer_derived(_sentiment_columns, "explorer_sentiment_columns")
explorer_sentiment = _explorer_derived(_sentiment_table, "explorer_sentiment")
#: ``analytics.explorer.concentration`` of every customer's net revenue
explorer_concentration = _explorer_derived(_all_concentration, "explorer_concentration", max_entries=8)


def explorer_groups(dataset: str, as_of, column: str):
    """``analytics.explorer.category_groups`` of the Explorer frame (one mask per value; read-only)."""
    frame = explorer_frame(dataset, as_of)
    if frame is None:
        return None
    return _groups(db_path(), _key(dataset, "data", "clusters"), dataset, str(as_of), column, _frame=frame)


@st.cache_resource(show_spinner=False, max_entries=12)
def _groups(path, key, dataset, as_of, column, _frame):
    from analytics.explorer import category_groups

    return category_groups(_frame, column)


def explorer_comparison(dataset: str, as_of, column: str, names):
    """``analytics.explorer.segment_comparison`` of the :func:`explorer_groups` ``names`` (in order)."""
    frame, groups = explorer_frame(dataset, as_of), explorer_groups(dataset, as_of, column)
    if frame is None or groups is None:
        return None
    return _comparison(db_path(), _key(dataset, "data", "clusters"), dataset, str(as_of), column,
                       tuple(str(n) for n in names), _frame=frame, _groups=groups)


@st.cache_data(show_spinner=False, max_entries=32)
def _comparison(path, key, dataset, as_of, column, names, _frame, _groups):
    from analytics.explorer import segment_comparison

    return segment_comparison(_frame, {n: _groups[n] for n in names}, as_of=as_of)


def explorer_migration(dataset: str, from_day, to_day, column: str = "rfm_segment"):
    """Segment flows between two days (RFM segments: prepared for the default days)."""
    if column == "rfm_segment":
        return _rfm_migration(dataset, str(from_day), str(to_day))
    early, late = explorer_frame(dataset, from_day), explorer_frame(dataset, to_day)
    return _migration(db_path(), _key(dataset, "data", "clusters"), dataset, str(from_day), str(to_day),
                      column, _early=early, _late=late, _history=summary_history(dataset))


@st.cache_data(show_spinner="Comparing the two dates…", max_entries=16)
def _migration(path, key, dataset, from_day, to_day, column, _early, _late, _history):
    from analytics.explorer import segment_migration

    return segment_migration(_early, _late, column, history=_history)


def explorer_cluster_migration(dataset: str, from_day, to_day, run_id: int):
    """``analytics.explorer.cluster_migration`` of one clustering run between two days."""
    early, late = explorer_frame(dataset, from_day), explorer_frame(dataset, to_day)
    return _cluster_migration(db_path(), _key(dataset, "data", "clusters"), dataset, str(from_day),
                              str(to_day), int(run_id), _early=early, _late=late, _history=summary_history(dataset))


@st.cache_data(show_spinner="Assigning both dates to the clusters…", max_entries=16)
def _cluster_migration(path, key, dataset, from_day, to_day, run_id, _early, _late, _history):
    from analytics.explorer import cluster_migration

    return cluster_migration(_warehouse(path), run_id, _early, _late, history=_history)


# ---- Reviews & new customers page
def _sentiment(wh, dataset: str) -> dict:
    from analytics.reviews.segments import ensure_ready_made_segments
    from analytics.reviews.sentiment import ensure_sentiment

    info = ensure_sentiment(wh, dataset)
    ensure_ready_made_segments(wh, dataset)
    return info


sentiment_info = _wrap(_sentiment, max_entries=8, name="sentiment_info", spinner="Scoring the review sentiment…")
category_sentiment = _wrap(lambda wh, d: _lib("analytics.reviews.features").item_sentiment(wh, d, by="category"),
                           max_entries=8, name="category_sentiment")
cold_start = _wrap(lambda wh, d, as_of: _cold_start(wh, d, as_of), max_entries=8, name="cold_start")


def _cold_start(wh, dataset: str, as_of):
    from analytics.newcustomers import cold_start_recommendations, no_history_customers

    ids = no_history_customers(wh, dataset, as_of)
    recs = cold_start_recommendations(wh, dataset, ids[:2000], as_of, n=5)
    recs.attrs["without_purchase"] = len(ids)  # none listed: nobody to recommend to, or nothing to recommend
    return recs


_first_order = _wrap(prepare.first_order, resource=True, max_entries=4, name="first_order",
                     spinner="Fitting the first-order model on earlier first-time buyers…")


def first_order(dataset: str, as_of, window: int):
    """(FirstOrderValues, group per new customer, group profiles) of analytics.newcustomers (read-only)."""
    sentiment_info(dataset)
    out = _first_order(dataset, str(as_of), int(window))
    return out if out is None or not isinstance(out, tuple) else tuple(_seen(x) for x in out)


def rescore_sentiment(dataset: str) -> dict:
    """Score the reviews again (and forget the cached review tables)."""
    from analytics.reviews.sentiment import score_dataset_reviews

    info = score_dataset_reviews(warehouse(), dataset).info
    for fn in (sentiment_info, category_sentiment, _negative):
        fn.clear()
    return info


def negative_reviews(dataset: str, as_of, days: int, share: float):
    """The most negative recent reviews of valuable customers (analytics.reviews.views)."""
    sentiment_info(dataset)
    frame = explorer_frame(dataset, as_of, _raw=True)
    if frame is None:
        return None
    return _seen(_negative(db_path(), version(dataset).key("data", "clusters"), dataset, str(as_of), int(days),
                           float(share), _frame=frame))


@st.cache_data(show_spinner=False, max_entries=16)
def _negative(path, key, dataset, as_of, days, share, _frame):
    from analytics.reviews.views import negative_reviews_of_valuable

    return negative_reviews_of_valuable(_warehouse(path), dataset, _frame, as_of, days=days, top_share=share)


def churn_thresholds(dataset: str) -> tuple[float, float]:
    from analytics.lifecycle import band_thresholds

    return band_thresholds(warehouse(), dataset)


def set_churn_thresholds(dataset: str, thresholds) -> tuple[float, float]:
    from analytics.lifecycle import set_band_thresholds

    out = set_band_thresholds(warehouse(), dataset, thresholds)
    _lifecycle.clear()
    return out


def lifecycle_table(dataset: str, as_of):
    """next_order_date, days_to_next_order, churn_band and churn_risk of every customer (analytics.lifecycle);
    None while the customer table is being prepared."""
    frame = campaigns_frame(dataset, as_of, _raw=True)
    # the purchase model alone: the next order needs no spend model
    purchase = _purchase_model(dataset, str(as_of), "days")  # ValueError when it cannot be fitted
    if frame is None or purchase is None:
        return None
    return _seen(_lifecycle(db_path(), version(dataset).key("data", "clusters"), dataset, str(as_of),
                            tuple(churn_thresholds(dataset)), _frame=frame, _purchase=purchase))


@st.cache_data(show_spinner="Expecting every repeat buyer's next order…", max_entries=8)
def _lifecycle(path, key, dataset, as_of, thresholds, _frame, _purchase):
    from analytics.lifecycle import lifecycle_columns

    risk = _frame["churn_risk"].to_numpy(dtype=float)
    out = lifecycle_columns(_frame, as_of, bgnbd=_purchase, churn_risk=risk, thresholds=thresholds)
    out["churn_risk"] = risk
    return out


def _spec_json(spec) -> str:
    import json

    return json.dumps(spec.to_dict(), sort_keys=True, default=str)


def campaign_targets(dataset: str, as_of, spec):
    """``analytics.campaigns.select_targets`` for ``spec`` on :func:`campaigns_frame` (read-only),
    with the recommended items from the prepared recommender; None while the frame is not ready."""
    from analytics.campaigns import CampaignSpec

    frame = campaigns_frame(dataset, as_of, _raw=True)
    if frame is None:
        return None
    bare = CampaignSpec.from_dict({**spec.to_dict(), "recommendations": 0, "recommendation_category": None})
    key = version(dataset).key("data", "clusters", "segments")
    targets = _targets(db_path(), key, dataset, str(as_of), _spec_json(bare), _frame=frame)
    if int(spec.recommendations or 0) <= 0:
        return _seen(targets)
    memo = _items_memo(dataset, as_of, int(spec.recommendations), spec.recommendation_category or "")
    return _seen(_with_items(db_path(), key, dataset, str(as_of), _spec_json(spec), _targets=targets, _memo=memo))


@st.cache_resource(show_spinner="Selecting and ranking the customers…", max_entries=8)
def _targets(path, key, dataset, as_of, spec_json, _frame):
    import json

    from analytics.campaigns import CampaignSpec, select_targets

    return select_targets(_warehouse(path), _frame, CampaignSpec.from_dict(json.loads(spec_json)))


@st.cache_resource(show_spinner="Recommending items…", max_entries=8)
def _with_items(path, key, dataset, as_of, spec_json, _targets, _memo):
    import json

    from analytics.campaigns import CampaignSpec
    from analytics.campaigns.targeting import with_recommendations

    return with_recommendations(_targets, CampaignSpec.from_dict(json.loads(spec_json)), _memo)


def _items_memo(dataset: str, as_of, n: int, category: str):
    from analytics.campaigns import CampaignError

    try:
        model = _recommender(dataset, str(as_of))
    except ValueError as exc:
        raise CampaignError(f"recommendations: {exc}") from None
    if model is None:
        raise CampaignError("the item recommender is still being prepared; try again in a moment")
    return _memo(db_path(), version(dataset).data, dataset, str(as_of), n, category, _model=model)


@st.cache_resource(show_spinner=False, max_entries=4)
def _memo(path, key, dataset, as_of, n, category, _model):
    from analytics.campaigns.targeting import ItemsMemo

    return ItemsMemo(_model, n, category or None)


def campaign_response_defaults(dataset: str, as_of, spec) -> dict | None:
    """``analytics.campaigns.targeting.target_response_defaults`` for ``spec``'s target list."""
    frame, targets = campaigns_frame(dataset, as_of), campaign_targets(dataset, as_of, spec)
    if frame is None or targets is None:
        return None
    key = _key(dataset, "data", "clusters", "segments", "campaigns")
    return _defaults(db_path(), key, dataset, str(as_of), _spec_json(spec), _frame=frame, _targets=targets)


@st.cache_data(show_spinner=False, max_entries=16)
def _defaults(path, key, dataset, as_of, spec_json, _frame, _targets):
    import json

    from analytics.campaigns import CampaignSpec
    from analytics.campaigns.targeting import target_response_defaults

    return target_response_defaults(_warehouse(path), _frame, _targets, CampaignSpec.from_dict(json.loads(spec_json)))


def uploaded_readout(dataset: str, campaign_id: int, file_id: str, data: bytes):
    """``(outcomes, readout)`` of an uploaded outcomes file against a saved campaign, cached per
    upload (``file_id``). CampaignError on a bad file."""
    stored = stored_campaign_targets(dataset, int(campaign_id))
    return _uploaded(db_path(), version(dataset).campaigns, int(campaign_id), str(file_id), _data=data,
                     _stored=stored)


@st.cache_data(show_spinner="Reading the outcomes…", max_entries=4)
def _uploaded(path, key, campaign_id, file_id, _data, _stored):
    import io

    from analytics.campaigns import read_outcomes, readout

    outcomes = read_outcomes(io.BytesIO(_data))
    return outcomes, readout(_stored, outcomes)


@st.cache_resource(show_spinner=False, max_entries=1)
def _datasets_table(path: str, key: str):
    from analytics.overview import datasets_table

    return datasets_table(_warehouse(path))


def datasets_table():
    """``analytics.overview.datasets_table``: every dataset's events, customers and span."""
    names = datasets()  # those the caller may see
    key = "|".join(f"{n}={version(n).data}" for n in names)
    table = _datasets_table(db_path(), key)
    return table[table["dataset"].isin(names)].reset_index(drop=True)


@st.cache_data(show_spinner="Reading the file…", max_entries=8)
def _inspect(path: str, file_name: str | None, size: int, mtime: float):
    from analytics.ingest import inspect_source

    return inspect_source(path, file_name=file_name)


def inspect(path: str, file_name: str | None = None):
    """``analytics.ingest.inspect_source``, cached per file path, size and modification time."""
    st_ = os.stat(path)
    return _inspect(str(path), file_name, st_.st_size, st_.st_mtime)


def clear() -> None:
    """Forget the cached query results (after a write that a version key might not see)."""
    with _SHARED_LOCK:
        _SHARED_VERSIONS.clear()
    st.cache_data.clear()
