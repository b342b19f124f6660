"""Derived data, computed once after each change of a dataset and kept in the warehouse.

After every change of a dataset (a load, an append, a deletion, a newly published model) the
**preparation step** computes, in order and with progress, what the pages and the CLI read:

====  ============  ==========================================================================
 #    stage         results (``prepared_results``; big ones as Parquet / pickle blobs)
====  ============  ==========================================================================
 1    overview      ``overview``: KPIs, timeline, events by type, categories (a few kB of JSON);
                    ``range_comparison``: the default date range (last 30 days) vs the days before
 2    history       ``history``: the per-customer, per-day history (``customer_days`` table)
 3    scores        the reviews' sentiment (``review_sentiment``, read by the frame and the Reviews
                    page); ``scores``: summary + derived features + R/F/M, RFM segment, behaviour
                    score and formula CLV of every customer at the last day (+ published predictions)
 4    models        ``comparison``: BG/NBD vs Pareto/NBD on the dataset's own backtest (the default
                    choice); ``models``: that purchase model + Gamma-Gamma fitted on the summary
                    (or why they cannot be)
 5    frame         ``values``: the resolved expected CLV (:mod:`analytics.valuation`) with its
                    source, probability alive, churn risk and value, the BG/NBD columns;
                    ``cohorts`` and ``migration``: the Explorer's default cohort table and RFM flows;
                    ``first_order``: the new customers' first-order model and groups
 6    neighbours    ``neighbours``: the item-based recommender fitted on events up to the last day
====  ============  ==========================================================================

The overview comes first because it is the page everyone lands on; the recommender last
because only campaigns with recommendations need it.

Every result is keyed by the dataset, **one data version** (:func:`data_version`) and a hash of
its parameters (the as-of day, the unit...). Pages read results through the getters below
(:func:`overview`, :func:`customer_frame`, :func:`clv_models`, ...). At the default as-of day
(the dataset's last event day) a getter only reads what the preparation stored; with
``compute=False`` it returns None when the result is not there yet (the app then says so and
shows the progress); with ``compute=True`` (the CLI and tests) it computes the missing result,
stores it and returns it. Results at other days are always computed on demand (and the expensive
ones, model fits and value columns, stored too). Two threads asking for the same missing result compute
it once (the second waits for the first). A restarted process reads results back instead of
recomputing them.

:func:`run` is the whole step, synchronously (``valuescope prepare``; ``valuescope ingest`` runs
it unless ``--no-prepare``); :func:`start` runs it in a background thread and :func:`job`
reports its progress ("preparing 3/6: fitting models…").

Where to add a derived field: compute it in the stage that has its inputs (``_stage_scores``
for per-customer columns from the summary, ``_stage_frame`` for anything that needs the fitted
models), add it to the frame that stage stores, and bump :data:`FORMAT` so stored results of
the old layout are recomputed. Pages then find it in :func:`customer_frame`.

Results are pickled or Parquet blobs inside the warehouse: the warehouse file is trusted like
the model files next to it (never load a warehouse from someone you do not trust).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import pickle
import threading
import time
from typing import Any, Callable

import duckdb
import pandas as pd

from analytics.warehouse import Warehouse, WarehouseError, storage_error

#: bump when a stored result's layout or computation changes: results of the old format stop matching
FORMAT = 2
#: a stored blob is split into chunks of at most this many bytes, in a table of its own per result
CHUNK_BYTES = 32 << 20
#: results at other than the default day kept per dataset and result name (expensive ones: fits, frames)
KEEP_OTHER_DAYS = 4
#: the Explorer's defaults, prepared for the last day
COHORT_MONTHS = 24
MIGRATION_DAYS = 90
#: the Overview's default date range, in days up to the last day (its comparison is prepared)
RANGE_DAYS = 30

ProgressFn = Callable[[int, int, str, float], None]


class PrepareError(ValueError):
    """A preparation request a user can act on (message is user-facing)."""


# ============================================================================ versions
@dataclasses.dataclass(frozen=True)
class Version:
    """What a dataset's cached results depend on, read in one query.

    ``events``: its events (every load, append and delete adds or removes an ingestion record and
    touches the dataset row); ``predictions``: its published predictions; ``data`` = both: what
    preparation is keyed by. ``clusters``: its clustering runs (ids and cluster names);
    ``segments``: the saved segment definitions; ``campaigns``: its campaigns and uploaded
    outcomes. Caches key each result by the parts it reads (:meth:`key`), so a saved segment
    does not reload a million-row frame."""

    events: str
    predictions: str = ""
    clusters: str = ""
    segments: str = ""
    campaigns: str = ""

    @property
    def data(self) -> str:
        return f"{self.events}|{self.predictions}"

    def key(self, *parts: str) -> str:
        return "#".join(getattr(self, p) for p in (parts or ("data",)))


_VERSION_SQL = """
SELECT
  (SELECT coalesce(max(id), 0) || ':' || count(*) FROM ingestions WHERE dataset = $d)
  || '|' || coalesce((SELECT created_at::VARCHAR || ':' || updated_at::VARCHAR FROM datasets WHERE name = $d), '-')
  || '|' || coalesce((SELECT attached_at::VARCHAR FROM attached_summaries WHERE dataset = $d), ''),
  (SELECT count(*) || ':' || coalesce(max(published_at)::VARCHAR, '') || ':' || coalesce(max(run_id), 0)
   FROM customer_predictions WHERE dataset = $d),
  (SELECT count(*) || ':' || coalesce(max(id), 0) || ':'
          || coalesce(md5(string_agg(id::VARCHAR || '=' || names, '|' ORDER BY id)), '')
   FROM clustering_runs WHERE dataset = $d),
  (SELECT count(*) || ':' || coalesce(max(updated_at)::VARCHAR, '') || ':' || coalesce(max(id), 0) FROM segments),
  (SELECT count(*) || ':' || coalesce(max(id), 0) FROM campaigns WHERE dataset = $d)
  || '|' || (SELECT count(*) || ':' || coalesce(max(uploaded_at)::VARCHAR, '') FROM campaign_outcomes
             WHERE dataset = $d)
"""


def current_version(wh: Warehouse | Any, dataset: str) -> Version:
    """The :class:`Version` of ``dataset`` (``wh``: a warehouse or a cursor), one small query."""
    cur = wh.cursor() if isinstance(wh, Warehouse) else wh
    row = cur.execute(_VERSION_SQL, {"d": dataset}).fetchall()[0]
    return Version(f"v{FORMAT}|{row[0]}", str(row[1]), str(row[2]), str(row[3]), str(row[4]))


def data_version(wh: Warehouse | Any, dataset: str) -> str:
    """THE version of ``dataset``'s derived data: changes with every load, append, delete and
    publish of predictions; every prepared result and every cached read is keyed by it."""
    return current_version(wh, dataset).data


# ============================================================================ stored results
@dataclasses.dataclass
class Stored:
    """A result read back (or just computed): ``value``, or ``error`` (a user-facing reason the
    result cannot exist on these data, e.g. models that cannot be fitted)."""

    value: Any
    version: str
    error: str | None = None
    seconds: float = 0.0
    warning: str | None = None  # e.g. computed but could not be saved


def _params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _encode(obj, fmt: str) -> tuple[str | None, str | None, bytes | None]:
    """(value, attrs, payload) of ``obj`` in ``fmt``."""
    if fmt == "json":
        return json.dumps(obj, default=str), None, None
    if fmt == "error":
        return str(obj), None, None
    if fmt == "parquet":
        buf = io.BytesIO()
        frame = obj.copy(deep=False)
        frame.attrs = {}
        frame.to_parquet(buf, engine="pyarrow", compression="zstd")
        return None, json.dumps(obj.attrs, default=str), buf.getvalue()
    if fmt == "pickle":
        return None, None, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    raise ValueError(f"unknown result format {fmt!r}")


def _decode(fmt: str, value: str | None, attrs: str | None, payload: bytes | None):
    if fmt == "json":
        return json.loads(value)
    if fmt == "parquet":
        frame = pd.read_parquet(io.BytesIO(payload), engine="pyarrow")
        frame.attrs = json.loads(attrs) if attrs else {}
        return frame
    if fmt == "pickle":
        return pickle.loads(payload)
    raise ValueError(f"unknown result format {fmt!r}")


def _blob_table(result_id: int) -> str:
    """The table that holds result ``result_id``'s chunks: one table per result, because DuckDB reads
    a column a vector (2,048 rows) at a time, so a shared table of chunks made reading an 8 kB result
    read every result's chunks (3-4 s at a million customers, for each of a page's reads)."""
    return f"prepared_blob_{int(result_id)}"


def _payload(cur, result_id: int) -> bytes:
    table = _blob_table(result_id)
    own = cur.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                      "AND schema_name = 'main' AND table_name = ?", [table]).fetchall()[0][0]
    if own:
        rows = cur.execute(f"SELECT data FROM {table} ORDER BY seq").fetchall()
    else:  # stored by an earlier layout: in the shared table
        rows = cur.execute("SELECT data FROM prepared_chunks WHERE result_id = ? ORDER BY seq",
                           [result_id]).fetchall()
    return b"".join(bytes(r[0]) for r in rows)


def _drop_payloads(cur, ids) -> None:
    """Remove the chunks of results ``ids`` (their tables, and rows an earlier layout left)."""
    ids = [int(i) for i in ids]
    if not ids:
        return
    cur.execute("DELETE FROM prepared_chunks WHERE result_id IN (SELECT unnest($ids))", {"ids": ids})
    for i in ids:
        cur.execute(f"DROP TABLE IF EXISTS {_blob_table(i)}")


def get(wh: Warehouse, dataset: str, name: str, params: dict | None = None, *, version: str | None = None) -> Stored | None:
    """The stored result ``name`` of ``dataset`` for ``params`` at ``version`` (default: current);
    None when there is none (or it cannot be read back: it is then recomputed)."""
    params = {"format": FORMAT, **(params or {})}
    phash = _params_hash(params)
    for attempt in range(3):
        try:
            with wh.transaction() as tx:  # row and chunks from one snapshot
                if version is None:
                    version = data_version(tx, dataset)
                row = tx.execute(
                    "SELECT id, format, value, attrs, seconds FROM prepared_results WHERE dataset = ? AND name = ? "
                    "AND version = ? AND params_hash = ? ORDER BY id DESC LIMIT 1",
                    [dataset, name, version, phash]).fetchall()
                if not row:
                    return None
                rid, fmt, value, attrs, seconds = row[0]
                if fmt == "error":
                    return Stored(None, version, error=value, seconds=seconds or 0.0)
                payload = _payload(tx, rid) if fmt in ("parquet", "pickle") else None
            break
        except duckdb.TransactionException:
            if attempt == 2:
                return None
    try:
        return Stored(_decode(fmt, value, attrs, payload), version, seconds=seconds or 0.0)
    except Exception:  # written by another layout of the code: treat as missing (recomputed)
        return None


def exists(wh: Warehouse, dataset: str, name: str, params: dict | None = None, *, version: str | None = None) -> bool:
    """Whether ``get`` would find the result (without reading it)."""
    params = {"format": FORMAT, **(params or {})}
    cur = wh.cursor()
    if version is None:
        version = data_version(cur, dataset)
    row = cur.execute("SELECT count(*) FROM prepared_results WHERE dataset = ? AND name = ? AND version = ? "
                      "AND params_hash = ?", [dataset, name, version, _params_hash(params)]).fetchall()
    return bool(row[0][0])


class _Superseded(Exception):
    """The dataset changed while a result was computed: it is not stored."""


def put(wh: Warehouse, dataset: str, name: str, obj, params: dict | None = None, *, version: str, fmt: str,
        seconds: float = 0.0) -> None:
    """Store ``obj`` as result ``name`` of ``dataset`` at ``version``, in one transaction that first
    checks ``version`` is still current (a result of data that changed meanwhile is dropped: raises
    ``_Superseded``). Replaces the same key and drops results of older versions and all but the
    :data:`KEEP_OTHER_DAYS` most recent other parameter sets of ``name``."""
    params = {"format": FORMAT, **(params or {})}
    phash = _params_hash(params)
    value, attrs, payload = _encode(obj, fmt)
    for attempt in range(3):
        try:
            with wh.transaction() as tx:
                if data_version(tx, dataset) != version:
                    raise _Superseded()
                stale = [r[0] for r in tx.execute(
                    "SELECT id FROM prepared_results WHERE dataset = $d AND name = $n AND ("
                    " params_hash = $h OR version <> $v OR id NOT IN ("
                    "   SELECT id FROM prepared_results WHERE dataset = $d AND name = $n AND version = $v"
                    "   ORDER BY id DESC LIMIT $keep))",
                    {"d": dataset, "n": name, "h": phash, "v": version, "keep": KEEP_OTHER_DAYS - 1}).fetchall()]
                if stale:
                    _drop_payloads(tx, stale)
                    tx.execute("DELETE FROM prepared_results WHERE id IN (SELECT unnest($ids))", {"ids": stale})
                rid = tx.execute("SELECT nextval('prepared_result_id_seq')").fetchall()[0][0]
                tx.execute(
                    "INSERT INTO prepared_results (id, dataset, name, version, params_hash, params, format, value, "
                    "attrs, n_bytes, seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [rid, dataset, name, version, phash, json.dumps(params, default=str), fmt, value, attrs,
                     len(payload) if payload is not None else len(value or ""), float(seconds),
                     dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)])
                if payload is not None:
                    table = _blob_table(rid)
                    tx.execute(f"CREATE TABLE {table} (seq INTEGER NOT NULL, data BLOB NOT NULL)")
                    for seq, start in enumerate(range(0, max(len(payload), 1), CHUNK_BYTES)):
                        tx.execute(f"INSERT INTO {table} VALUES (?, ?)", [seq, payload[start:start + CHUNK_BYTES]])
            return
        except duckdb.TransactionException:
            if attempt == 2:
                raise WarehouseError(f"the prepared {name} could not be saved: other sessions kept changing "
                                     "the same results; try again") from None
        except duckdb.Error as exc:
            raise storage_error(exc, f"the prepared {name} could not be saved") from None


def delete_prepared(wh: Warehouse, dataset: str, tx=None) -> None:
    """Remove every prepared result of ``dataset`` (``tx``: take part in a larger transaction)."""
    def run(cur):
        ids = [r[0] for r in cur.execute("SELECT id FROM prepared_results WHERE dataset = ?", [dataset]).fetchall()]
        _drop_payloads(cur, ids)
        cur.execute("DELETE FROM prepared_chunks WHERE dataset = ?", [dataset])
        cur.execute("DELETE FROM prepared_results WHERE dataset = ?", [dataset])

    if tx is not None:
        run(tx)
    else:
        with wh.transaction() as cur:
            run(cur)


_LOCKS: dict[tuple, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(*key) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.Lock()
        return lock


def obtain(wh: Warehouse, dataset: str, name: str, params: dict, compute_fn: Callable[[], Any], *, fmt: str,
           version: str | None = None, compute: bool = True, store: bool = True,
           errors: tuple[type[BaseException], ...] = (ValueError,)) -> Stored | None:
    """The stored result, else (``compute``) ``compute_fn()`` stored and returned; None when it is
    missing and ``compute`` is False. An exception of ``errors`` is a result too (stored as its
    message: the data cannot give this result). Concurrent callers compute a key once."""
    version = version or data_version(wh, dataset)
    if store:
        hit = get(wh, dataset, name, params, version=version)
        if hit is not None:
            return hit
    if not compute:
        return None
    with _lock_for(wh.path, dataset, name, _params_hash(params), version):
        if store:
            hit = get(wh, dataset, name, params, version=version)
            if hit is not None:
                return hit
        t0 = time.perf_counter()
        try:
            value, out_fmt, error = compute_fn(), fmt, None
        except errors as exc:
            value, out_fmt, error = str(exc), "error", str(exc)
        seconds = time.perf_counter() - t0
        result = Stored(None if error else value, version, error=error, seconds=seconds)
        if store:
            try:
                put(wh, dataset, name, value, params, version=version, fmt=out_fmt, seconds=seconds)
            except _Superseded:
                pass  # the data changed meanwhile: the caller still gets what it asked for
            except WarehouseError as exc:  # e.g. a full disk: the value is still good for this caller
                result.warning = str(exc)
        return result


# ============================================================================ the dataset's span
def attached(wh: Warehouse, dataset: str) -> dict | None:
    """``analytics.spark.attach.attached_info``: the dataset is a customer summary computed on Spark
    (one as-of day, no events), or None."""
    try:
        from analytics.spark.attach import attached_info
    except ImportError:
        return None
    try:
        return attached_info(wh, dataset)
    except duckdb.Error:
        return None


def last_day(wh: Warehouse, dataset: str, *, version: str | None = None) -> dt.date | None:
    """The dataset's last event day (the default as-of day; an attached summary's own day); None
    without events."""
    info = attached(wh, dataset)
    if info is not None:
        return pd.Timestamp(info["as_of"]).date()
    ov = get(wh, dataset, "overview", {}, version=version)
    if ov is not None and ov.value is not None:
        last = ov.value["kpis"].get("last_event")
        return None if last is None else pd.Timestamp(last).date()
    row = wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = ?", [dataset]).fetchall()[0]
    return None if row[0] is None else pd.Timestamp(row[0]).date()


def _day(wh, dataset, as_of, version) -> tuple[dt.date, bool]:
    """(the as-of day, whether it is the default day) for ``as_of`` (None: the default day)."""
    last = last_day(wh, dataset, version=version)
    if as_of is None:
        if last is None:
            raise PrepareError(f"the dataset {dataset!r} has no events yet")
        return last, True
    from analytics.dates import parse_day

    day = parse_day(as_of, "the as-of date", PrepareError).date()
    return day, day == last


# ============================================================================ getters
def overview(wh: Warehouse, dataset: str, *, version: str | None = None, compute: bool = True) -> dict | None:
    """:func:`analytics.overview.dataset_overview` (+ ``categories``: the item categories, most
    frequent first), prepared."""
    from analytics import overview as ov

    wh.require_dataset(dataset)
    hit = obtain(wh, dataset, "overview", {}, lambda: json.loads(ov.to_json(ov.dataset_overview(wh, dataset))),
                 fmt="json", version=version, compute=compute)
    if hit is None:
        return None
    if hit.error:
        raise PrepareError(hit.error)
    return ov.from_json(json.dumps(hit.value))


def default_range(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The Overview's default date range: the last :data:`RANGE_DAYS` days of the data (its
    comparison with the days before is prepared)."""
    return max(first, last - dt.timedelta(days=RANGE_DAYS - 1)), last


def range_comparison(wh: Warehouse, dataset: str, start, end, *, version: str | None = None,
                     compute: bool = True):
    """:func:`analytics.periods.compare_ranges` of ``start..end`` (a pass over the events), stored per
    data version and range: computed once per load and range, read back by every session and after
    a restart. The default range (:func:`default_range`) is prepared. ``ValueError`` for a range
    a user has to fix."""
    from analytics.periods import PeriodError, compare_ranges

    wh.require_dataset(dataset)
    params = {"start": str(start), "end": str(end)}
    hit = obtain(wh, dataset, "range_comparison", params, lambda: compare_ranges(wh, dataset, start, end),
                 fmt="pickle", version=version, compute=compute)
    if hit is None:
        return None
    if hit.error:
        raise PeriodError(hit.error)
    return hit.value


def history(wh: Warehouse, dataset: str, *, version: str | None = None, compute: bool = True):
    """The :class:`analytics.summary.SummaryHistory` of ``dataset`` (its per-day rows are kept in the
    warehouse's ``customer_days``; building the object from them is a read and a few array passes)."""
    from analytics.summary import summary_history

    wh.require_dataset(dataset)
    if attached(wh, dataset) is not None:
        return None  # a summary attached from Spark: no events, no history (callers read customer_summary)
    version = version or data_version(wh, dataset)
    built = {}

    def compute_fn():
        h = summary_history(wh, dataset, persist=True)
        built["h"] = h
        return {"customers": h.n_customers, "rows": h.n_rows}

    hit = obtain(wh, dataset, "history", {}, compute_fn, fmt="json", version=version, compute=compute)
    if hit is None:
        raise PrepareError(f"the per-day history of {dataset!r} is still being prepared")
    return built.get("h") or summary_history(wh, dataset, persist=True)


def _scores_frame(wh, dataset, day, hist):
    from analytics.explorer import build_frame

    return build_frame(wh, dataset, day, with_clusters=False, with_predictions=True, history=hist)


def scores(wh: Warehouse, dataset: str, as_of=None, *, version: str | None = None, compute: bool = True,
           _history=None) -> pd.DataFrame | None:
    """Every customer's summary, derived features, scores (R/F/M, RFM segment, behaviour,
    formula CLV ``clv``) and published predictions at ``as_of`` (default: the last day): the
    :func:`analytics.explorer.build_frame` without clusters. Prepared for the last day; other
    days are built from the history (not stored: a fraction of a second to a second)."""
    wh.require_dataset(dataset)
    version = version or data_version(wh, dataset)
    day, default = _day(wh, dataset, as_of, version)
    if not default:  # other days are not prepared: always computed
        hist = _history if _history is not None else history(wh, dataset, version=version)
        return _scores_frame(wh, dataset, day, hist)

    def compute_fn():
        hist = _history if _history is not None else history(wh, dataset, version=version)
        return _scores_frame(wh, dataset, day, hist)

    hit = obtain(wh, dataset, "scores", {"as_of": str(day)}, compute_fn, fmt="parquet", version=version,
                 compute=compute)
    return None if hit is None else hit.value


def summary(wh: Warehouse, dataset: str, as_of=None, unit: str = "days", *, version: str | None = None,
            compute: bool = True) -> pd.DataFrame | None:
    """The customer summary (``analytics.summary.customer_summary`` columns and attrs) at ``as_of``
    in ``unit``: from the prepared scores at the last day (time columns rescaled exactly), else
    from the history."""
    from analytics.summary import SUMMARY_COLUMNS, TIME_UNITS, check_unit

    check_unit(unit)
    version = version or data_version(wh, dataset)
    day, default = _day(wh, dataset, as_of, version)
    if default or attached(wh, dataset) is not None:
        frame = scores(wh, dataset, version=version, compute=compute)
        if frame is None:
            return None
        out = frame[SUMMARY_COLUMNS].copy()
        if unit != "days":
            for c in ("recency", "T", "tenure", "avg_gap"):
                out[c] = out[c].to_numpy() / TIME_UNITS[unit]
        out.attrs = {"unit": unit, "as_of": pd.Timestamp(day), "dataset": dataset}
        return out
    return history(wh, dataset, version=version).summary(day, unit)


def purchase_model_comparison(wh: Warehouse, dataset: str, *, version: str | None = None, compute: bool = True):
    """``analytics.diagnostics.compare_purchase_models`` (BG/NBD vs Pareto/NBD on the dataset's own
    calibration/holdout split), prepared: ``(comparison, None)``, or ``(None, why)`` when the two
    cannot be compared; None when not prepared and ``compute`` is False."""
    from analytics.diagnostics import compare_purchase_models

    hit = obtain(wh, dataset, "comparison", {}, lambda: compare_purchase_models(wh, dataset), fmt="pickle",
                 version=version, compute=compute, errors=(ValueError, ArithmeticError, FloatingPointError))
    if hit is None:
        return None
    return (None, hit.error) if hit.error else (hit.value, None)


def resolve_purchase_model(wh: Warehouse, dataset: str, purchase_model: str = "auto", *,
                           version: str | None = None, compute: bool = True) -> str | None:
    """``purchase_model`` itself, or for ``"auto"`` the one that predicted this dataset's own holdout
    better (BG/NBD when they cannot be compared); None while the comparison is not prepared."""
    if purchase_model != "auto":
        return purchase_model
    if attached(wh, dataset) is not None:
        return "bgnbd"  # no events: no history to compare on
    res = purchase_model_comparison(wh, dataset, version=version, compute=compute)
    if res is None:
        return None
    comparison, _why = res
    return comparison.best if comparison is not None else "bgnbd"


#: the purchase model of the prepared expected CLV: the library's default (what valuescope campaign create
#: and report fit too), so the app and the command line give a customer the same expected CLV; the
#: comparison's choice is prepared as well and is the Value page's default ("auto")
VALUE_PURCHASE_MODEL = "bgnbd"


def clv_models(wh: Warehouse, dataset: str, as_of=None, unit: str = "days", *, purchase_model: str = "bgnbd",
               penalizer: float = 0.0, version: str | None = None, compute: bool = True, _summary=None):
    """The fitted ``(purchase model, gamma_gamma)`` pair (``analytics.scores.fit_clv_models``) on the
    summary at ``as_of`` in ``unit``; ``purchase_model``: "bgnbd", "paretonbd" or "auto" (the one the
    dataset's own backtest prefers, :func:`resolve_purchase_model`). ``ValueError`` with the model's
    message when the data cannot support them; None when not prepared and ``compute`` is False.
    Stored for every day and choice asked for (a fit takes tens of seconds at a million customers)."""
    from analytics.scores import fit_clv_models

    version = version or data_version(wh, dataset)
    day, default = _day(wh, dataset, as_of, version)
    prepared = default and unit == "days" and purchase_model in ("auto", VALUE_PURCHASE_MODEL) \
        and float(penalizer) == 0.0
    compute = compute or not prepared  # the last day in days: the value model and the automatic choice
    model = resolve_purchase_model(wh, dataset, purchase_model, version=version, compute=compute)
    if model is None:
        return None

    def compute_fn():
        s = _summary if _summary is not None else summary(wh, dataset, day, unit, version=version)
        return fit_clv_models(s, purchase_model=model, penalizer=float(penalizer))

    hit = obtain(wh, dataset, "models", {"as_of": str(day), "unit": unit, "model": model,
                                         "penalizer": float(penalizer)}, compute_fn, fmt="pickle",
                 version=version, compute=compute, errors=(ValueError, ArithmeticError, FloatingPointError))
    if hit is None:
        return None
    if hit.error:
        raise ValueError(hit.error)
    return hit.value


def purchase_model(wh: Warehouse, dataset: str, as_of=None, unit: str = "days", *, purchase_model: str = VALUE_PURCHASE_MODEL,
                   penalizer: float = 0.0, version: str | None = None, compute: bool = True):
    """The purchase model of :func:`clv_models`' pair (``purchase_model``: "bgnbd", the default,
    "paretonbd" or "auto"; fitted from ``penalizer``); where only the pair's spend model cannot be
    fitted (no repeat buyer with a positive spend, say), the purchase model fitted on its own and
    stored, so what needs no spend (probability alive, expected purchases, the next order, the
    Value page's diagnostics) still works. ``ValueError`` with the model's message when the
    purchase model cannot be fitted either; None when not prepared and ``compute`` is False."""
    from analytics.scores import SPEND_MODEL_FAILED, fit_purchase_model

    try:
        pair = clv_models(wh, dataset, as_of, unit, purchase_model=purchase_model, penalizer=penalizer,
                          version=version, compute=compute)
    except ValueError as exc:
        if not str(exc).startswith(SPEND_MODEL_FAILED):
            raise
        version = version or data_version(wh, dataset)
        day, _ = _day(wh, dataset, as_of, version)
        model = resolve_purchase_model(wh, dataset, purchase_model, version=version) or VALUE_PURCHASE_MODEL
        key = {"as_of": str(day), "unit": unit, "model": model}
        if float(penalizer):
            key["penalizer"] = float(penalizer)
        hit = obtain(wh, dataset, "purchase_model", key,
                     lambda: fit_purchase_model(summary(wh, dataset, day, unit, version=version), model,
                                                float(penalizer)),
                     fmt="pickle", version=version, compute=True,
                     errors=(ValueError, ArithmeticError, FloatingPointError))
        if hit.error:
            raise ValueError(hit.error) from None
        return hit.value
    return None if pair is None else pair[0]


def _value_table(wh, frame: pd.DataFrame, models) -> pd.DataFrame:
    """The value columns of ``frame`` (expected CLV resolved with its source, probability alive,
    churn risk and value, the BG/NBD table at the default CLV parameters)."""
    from analytics.campaigns.targeting import value_table

    return value_table(wh, frame, models=models)


def values(wh: Warehouse, dataset: str, as_of=None, *, version: str | None = None, compute: bool = True,
           _frame=None, _models=None) -> pd.DataFrame | None:
    """The value columns of every customer at ``as_of`` (same rows and order as :func:`scores`):
    ``expected_clv`` (:mod:`analytics.valuation`: published model, else BG/NBD + Gamma-Gamma, else
    formula) and ``expected_clv_source``, ``p_alive``, ``churn_risk``, ``churn_value`` and the
    BG/NBD columns ``expected_purchases``, ``expected_spend``, ``discounted_revenue``,
    ``clv_bgnbd`` (12 months, 10 % discount, 30 % margin). Stored for every day asked for."""
    version = version or data_version(wh, dataset)
    day, default = _day(wh, dataset, as_of, version)
    compute = compute or not default

    def compute_fn():
        frame = _frame if _frame is not None else scores(wh, dataset, day, version=version)
        models = _models
        if models is None:
            try:
                models = clv_models(wh, dataset, day, version=version)
            except ValueError:
                models = None  # value_table falls back to the formula and says why
        return _value_table(None, frame, models)

    hit = obtain(wh, dataset, "values", {"as_of": str(day)}, compute_fn, fmt="parquet", version=version,
                 compute=compute)
    return None if hit is None else hit.value


def _join(frame: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``other``'s new columns (same rows: by position when the ids line up)."""
    new = [c for c in other.columns if c not in frame.columns]
    out = frame.copy(deep=False)
    aligned = other if other.index.equals(frame.index) else other.reindex(frame.index)
    for c in new:
        out[c] = aligned[c].to_numpy()
    out.attrs = {**frame.attrs, **{k: v for k, v in other.attrs.items() if k not in ("as_of", "dataset", "unit")}}
    return out


def customer_frame(wh: Warehouse, dataset: str, as_of=None, *, clusters: bool = True, with_values: bool = True,
                   version: str | None = None, compute: bool = True) -> pd.DataFrame | None:
    """The customer frame the Explorer, Segments, Campaigns and Reports pages use: :func:`scores`
    + (``with_values``) :func:`values` + (``clusters``) the latest clustering run's ``cluster`` /
    ``cluster_name``. None when a needed part is not prepared and ``compute`` is False."""
    version = version or data_version(wh, dataset)
    frame = scores(wh, dataset, as_of, version=version, compute=compute)
    if frame is None:
        return None
    if with_values:
        vals = values(wh, dataset, as_of, version=version, compute=compute, _frame=frame)
        if vals is None:
            return None
        frame = _join(frame, vals)
    if clusters and len(frame):
        from analytics.segments import store

        run = store.latest_clustering_run(wh, dataset)
        if run is not None:
            frame = _join(frame, store.load_assignments(wh, run))
    return frame


def cohorts(wh: Warehouse, dataset: str, as_of=None, max_months: int = COHORT_MONTHS, *,
            version: str | None = None, compute: bool = True) -> pd.DataFrame | None:
    """:func:`analytics.explorer.cohort_retention` at ``as_of`` (prepared for the last day and
    :data:`COHORT_MONTHS`; other choices from the history)."""
    from analytics.explorer import cohort_retention

    version = version or data_version(wh, dataset)
    day, default = _day(wh, dataset, as_of, version)
    params = {"as_of": str(day), "max_months": int(max_months)}
    fn = lambda: cohort_retention(wh, dataset, day, int(max_months), history=history(wh, dataset, version=version))  # noqa: E731
    prepared = default and int(max_months) == COHORT_MONTHS
    hit = obtain(wh, dataset, "cohorts", params, fn, fmt="parquet", version=version, compute=compute or not prepared,
                 store=prepared)
    return None if hit is None else hit.value


def default_migration_start(first: dt.date, last: dt.date) -> dt.date:
    """The Explorer's default "From" day of a migration to ``last``."""
    return max(first, last - dt.timedelta(days=MIGRATION_DAYS))


def rfm_migration(wh: Warehouse, dataset: str, from_day, to_day=None, *, version: str | None = None,
                  compute: bool = True, _frame=None, _history=None) -> pd.DataFrame | None:
    """:func:`analytics.explorer.rfm_migration` flows between two days (prepared for the default
    pair: :data:`MIGRATION_DAYS` before the last day, and the last day)."""
    from analytics.dates import parse_day
    from analytics.explorer import rfm_migration as flows

    version = version or data_version(wh, dataset)
    day, default = _day(wh, dataset, to_day, version)
    start = parse_day(from_day, "the From date", PrepareError).date()
    ov = overview(wh, dataset, version=version, compute=compute) if default else None
    first = pd.Timestamp(ov["kpis"]["first_event"]).date() if ov and ov["kpis"].get("first_event") else None
    default = default and first is not None and start == default_migration_start(first, day)

    def fn():
        hist = _history if _history is not None else history(wh, dataset, version=version)
        later = _frame if _frame is not None else scores(wh, dataset, day, version=version, _history=hist)
        return flows(wh, dataset, start, later, history=hist)

    hit = obtain(wh, dataset, "migration", {"from": str(start), "to": str(day)}, fn, fmt="parquet",
                 version=version, compute=compute or not default, store=default)
    return None if hit is None else hit.value


def recommender(wh: Warehouse, dataset: str, as_of=None, *, version: str | None = None, compute: bool = True):
    """``analytics.recommend.campaign_recommender`` (the recommender that wins on the 90 days before
    the day, with ``choice_``) fitted on the events up to the end of ``as_of`` (default: the last
    day); ``ValueError`` when the data cannot support it."""
    from analytics import recommend

    version = version or data_version(wh, dataset)
    day, default = _day(wh, dataset, as_of, version)
    compute = compute or not default

    def fn():  # the validation winner (its choice kept on the model as choice_), fitted up to the day
        end = pd.Timestamp(day) + pd.Timedelta(days=1)
        return recommend.campaign_recommender(wh, dataset, end)

    hit = obtain(wh, dataset, "neighbours", {"as_of": str(day)}, fn, fmt="pickle", version=version,
                 compute=compute)
    if hit is None:
        return None
    if hit.error:
        raise ValueError(hit.error)
    return hit.value


# ============================================================================ reads for the pages
def span(wh: Warehouse, dataset: str, *, version: str | None = None) -> dict:
    """``{"events", "first_event", "last_event"}`` of ``dataset`` (from the prepared overview when
    there is one, else one query)."""
    from analytics.overview import dataset_span

    wh.require_dataset(dataset)
    ov = get(wh, dataset, "overview", {}, version=version)
    if ov is not None and ov.value is not None:
        k = ov.value["kpis"]
        return {"events": int(k["events"]),
                "first_event": None if k.get("first_event") is None else pd.Timestamp(k["first_event"]),
                "last_event": None if k.get("last_event") is None else pd.Timestamp(k["last_event"])}
    return dataset_span(wh, dataset)


def categories(wh: Warehouse, dataset: str, *, version: str | None = None, compute: bool = True) -> list[str] | None:
    """The dataset's item categories, most frequent first (from the prepared overview)."""
    ov = overview(wh, dataset, version=version, compute=compute)
    return None if ov is None else list(ov.get("categories", []))


def scorer(wh: Warehouse, dataset: str, as_of=None, unit: str = "days", min_age_months: float | None = None, *,
           version: str | None = None, compute: bool = True):
    """:class:`analytics.scores.Scorer` over :func:`summary` (what the Value page re-weights);
    ``min_age_months``: default ``analytics.scores.DEFAULT_MIN_AGE_MONTHS``."""
    from analytics.scores import DEFAULT_MIN_AGE_MONTHS, Scorer

    s = summary(wh, dataset, as_of, unit, version=version, compute=compute)
    age = DEFAULT_MIN_AGE_MONTHS if min_age_months is None else float(min_age_months)
    return None if s is None else Scorer(s, min_age_months=age)


def probabilistic(wh: Warehouse, dataset: str, as_of=None, unit: str = "days", horizon_months: float = 12.0,
                  discount_rate: float = 0.10, min_age_months: float | None = None, *, purchase_model: str = "bgnbd",
                  penalizer: float = 0.0, version: str | None = None, compute: bool = True) -> pd.DataFrame | None:
    """The probabilistic CLV table of :func:`analytics.scores.probabilistic_clv` (per buyer:
    ``p_alive``, ``expected_purchases``, ``expected_spend``, ``discounted_revenue``, ``clv_bgnbd``)
    at ``as_of`` in ``unit`` for a horizon, discount rate and purchase model: read from the prepared
    values at the defaults (last day, days, 12 months, 10 %, BG/NBD, no penalizer),
    else computed with the (stored) fitted models. ``ValueError`` when the models cannot be fitted."""
    from analytics.scores import DEFAULT_MIN_AGE_MONTHS, CLVParams, probabilistic_clv
    from analytics.valuation import prob_table_from_frame

    version = version or data_version(wh, dataset)
    day, default = _day(wh, dataset, as_of, version)
    params = CLVParams(horizon_months=horizon_months, discount_rate=discount_rate,
                       min_age_months=DEFAULT_MIN_AGE_MONTHS if min_age_months is None else min_age_months).validated()
    prepared = default and unit == "days" and purchase_model in ("auto", VALUE_PURCHASE_MODEL) \
        and float(penalizer) == 0.0
    models = clv_models(wh, dataset, day, unit, purchase_model=purchase_model, penalizer=penalizer,
                        version=version, compute=compute or not prepared)
    if models is None:
        return None
    resolved = resolve_purchase_model(wh, dataset, purchase_model, version=version, compute=compute or not prepared)
    if prepared and resolved == VALUE_PURCHASE_MODEL and float(horizon_months) == 12.0 \
            and float(discount_rate) == 0.10:
        vals = values(wh, dataset, day, version=version, compute=compute)
        if vals is None:
            return None
        base = scores(wh, dataset, day, version=version, compute=compute)
        if base is None:
            return None
        prob = prob_table_from_frame(_join(base[["n_orders"]], vals))
        if prob is not None:
            return prob

    def compute_fn():
        s = summary(wh, dataset, day, unit, version=version)
        return probabilistic_clv(s, params, models=models)[0]

    if not (prepared and float(horizon_months) == 12.0 and float(discount_rate) == 0.10):
        return compute_fn()
    # the default table of the automatically chosen model when it is not BG/NBD (e.g. Pareto/NBD, whose
    # per-customer integrals take seconds): prepared and read back like the BG/NBD values
    hit = obtain(wh, dataset, "probabilistic", {"as_of": str(day), "model": resolved,
                                                "min_age_months": params.min_age_months},
                 compute_fn, fmt="parquet", version=version,
                 compute=compute or params.min_age_months != DEFAULT_MIN_AGE_MONTHS)  # only the default is prepared
    if hit is None:
        return None
    if hit.error:
        raise PrepareError(hit.error)
    return hit.value


def expected_clv(wh: Warehouse, dataset: str, as_of=None, *, version: str | None = None,
                 compute: bool = True) -> tuple[pd.Series, str, str | None] | None:
    """``(values, source, note)`` of the resolved expected CLV at ``as_of`` (the form
    :func:`analytics.reports.build_report` takes), from :func:`values`."""
    vals = values(wh, dataset, as_of, version=version, compute=compute)
    if vals is None:
        return None
    return vals["expected_clv"], vals.attrs.get("value_source"), vals.attrs.get("value_note")


# ============================================================================ the step
@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    label: str


STAGES = (
    Stage("overview", "summarising the dataset"),
    Stage("history", "building the per-day history"),
    Stage("scores", "scoring every customer"),
    Stage("models", "fitting models"),
    Stage("frame", "building the customer table"),
    Stage("neighbours", "fitting the recommender"),
)


@dataclasses.dataclass
class Job:
    """One run of the preparation step for one dataset version (progress readable from any thread)."""

    path: str
    dataset: str
    version: str
    n_stages: int = len(STAGES)
    stage: int = 0                      # 1-based number of the running (or last) stage
    label: str = "waiting"
    state: str = "queued"               # queued | running | done | failed | superseded
    error: str | None = None
    warnings: list = dataclasses.field(default_factory=list)
    timings: dict = dataclasses.field(default_factory=dict)
    started: float = dataclasses.field(default_factory=time.time)
    finished: float | None = None
    _done: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = dataclasses.field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    @property
    def fraction(self) -> float:
        if self.state == "done":
            return 1.0
        return max(0.0, (self.stage - 1) / self.n_stages) if self.stage else 0.0

    def text(self) -> str:
        if self.state == "done":
            return f"prepared in {sum(self.timings.values()):.1f} s"
        if self.state == "failed":
            return f"preparation failed at {self.stage}/{self.n_stages} ({self.label}): {self.error}"
        if self.state == "superseded":
            return "the data changed: preparing again"
        if not self.stage:
            return "preparation is waiting to start"
        return f"preparing {self.stage}/{self.n_stages}: {self.label}…"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        """Ask the job to stop at the next stage boundary."""
        self._stop.set()

    def summary(self) -> dict:
        return {"dataset": self.dataset, "version": self.version, "state": self.state, "error": self.error,
                "stages": {k: round(v, 3) for k, v in self.timings.items()},
                "total_s": round(sum(self.timings.values()), 3), "warnings": list(self.warnings)}


def is_prepared(wh: Warehouse, dataset: str, *, version: str | None = None) -> bool:
    """Whether the whole step finished for the current (or given) data version."""
    return exists(wh, dataset, "complete", {}, version=version)


def _check(job: Job, wh: Warehouse) -> None:
    if job._stop.is_set():
        raise _Superseded()
    if data_version(wh, job.dataset) != job.version:
        raise _Superseded()


def run(wh: Warehouse, dataset: str, *, progress: ProgressFn | None = None, job: Job | None = None,
        force: bool = False) -> Job:
    """Run the whole preparation step for the current version of ``dataset`` (results already stored
    are read back, not recomputed, unless ``force``). Returns the finished :class:`Job` (``state``
    "done", or "superseded" when the data changed meanwhile); a failure raises (the job says where)."""
    wh.require_dataset(dataset)
    version = data_version(wh, dataset)
    if job is None:
        job = Job(wh.path, dataset, version)
    if force:
        with wh.transaction() as tx:
            _drop_payloads(tx, [r[0] for r in tx.execute(
                "SELECT id FROM prepared_results WHERE dataset = ? AND version = ?", [dataset, version]).fetchall()])
            tx.execute("DELETE FROM prepared_results WHERE dataset = ? AND version = ?", [dataset, version])
    report = progress or (lambda i, n, label, frac: None)
    job.state = "running"
    ctx: dict[str, Any] = {}
    try:
        for i, stage in enumerate(STAGES, start=1):
            _check(job, wh)
            job.stage, job.label = i, stage.label
            report(i, len(STAGES), stage.label, (i - 1) / len(STAGES))
            t0 = time.perf_counter()
            _STAGE_FUNCS[stage.name](wh, dataset, version, ctx, job)
            job.timings[stage.name] = time.perf_counter() - t0
        _check(job, wh)
        put(wh, dataset, "complete", {"stages": job.timings}, {}, version=version, fmt="json")
        job.state = "done"
        report(len(STAGES), len(STAGES), "done", 1.0)
    except _Superseded:
        job.state = "superseded"
    except BaseException as exc:
        job.state = "failed"
        # a storage failure (a damaged or cut-short file, a full disk) says what to do, not DuckDB's text alone
        job.error = str(storage_error(exc)) if isinstance(exc, (duckdb.Error, OSError)) else (
            str(exc) or type(exc).__name__)
        raise
    finally:
        job.finished = time.time()
        job._done.set()
    return job


def _stage_overview(wh, dataset, version, ctx, job):
    ctx["overview"] = overview(wh, dataset, version=version)
    ctx["attached"] = attached(wh, dataset) is not None
    ctx["last_day"] = last_day(wh, dataset, version=version)
    kpis = ctx["overview"]["kpis"]
    if not ctx["attached"] and kpis.get("first_event") is not None and kpis.get("last_event") is not None:
        first, last = pd.Timestamp(kpis["first_event"]).date(), pd.Timestamp(kpis["last_event"]).date()
        try:  # the comparison the Overview shows first
            range_comparison(wh, dataset, *default_range(first, last), version=version)
        except ValueError as exc:
            job.warnings.append(f"the default date range's comparison is not prepared: {exc}")


def _stage_history(wh, dataset, version, ctx, job):
    if ctx["last_day"] is None or ctx["attached"]:
        return
    # the object is needed below only when a later result is missing (a rerun reads them back)
    if all(exists(wh, dataset, n, p, version=version) for n, p in _later_results(ctx)):
        return
    ctx["history"] = history(wh, dataset, version=version)


def _later_results(ctx):
    day = str(ctx["last_day"])
    return [("history", {}), ("scores", {"as_of": day}), ("comparison", {}),
            ("values", {"as_of": day}), ("cohorts", {"as_of": day, "max_months": COHORT_MONTHS})]


def _stage_scores(wh, dataset, version, ctx, job):
    if ctx["last_day"] is None:
        return
    if not ctx["attached"]:  # the reviews first: the customer frame reads their sentiment
        _prepare_reviews(wh, dataset, job)
    ctx["scores"] = scores(wh, dataset, version=version, _history=ctx.get("history"))


def _prepare_reviews(wh, dataset, job):
    """Score the reviews' sentiment (unless the current data's scores are stored) and save the
    ready-made review segments, so the Reviews page and the frame's sentiment columns only read."""
    from analytics.reviews.prepared import prepare_reviews

    try:
        prepare_reviews(wh, dataset)
    except ValueError as exc:  # e.g. no reviews to learn from: the lexicon or nothing, said on the page
        job.warnings.append(f"review sentiment not prepared: {exc}")


def _stage_models(wh, dataset, version, ctx, job):
    if ctx["last_day"] is None:
        return
    from analytics.summary import SUMMARY_COLUMNS

    frame = ctx["scores"]
    s = frame[SUMMARY_COLUMNS]
    s.attrs = {"unit": "days", "as_of": pd.Timestamp(ctx["last_day"]), "dataset": dataset}
    best = VALUE_PURCHASE_MODEL
    if not ctx["attached"]:  # BG/NBD vs Pareto/NBD on the dataset's own backtest: the Value page's default
        res = purchase_model_comparison(wh, dataset, version=version)
        if res is not None and res[1]:
            job.warnings.append(f"purchase models not compared (BG/NBD used): {res[1]}")
        best = resolve_purchase_model(wh, dataset, "auto", version=version) or VALUE_PURCHASE_MODEL
    try:
        ctx["models"] = clv_models(wh, dataset, version=version, purchase_model=VALUE_PURCHASE_MODEL, _summary=s)
    except ValueError as exc:
        from analytics.scores import SPEND_MODEL_FAILED

        ctx["models"] = None
        job.warnings.append(f"BG/NBD + Gamma-Gamma not available: {exc}")
        if str(exc).startswith(SPEND_MODEL_FAILED):  # what needs no spend model (the next order) still can
            try:
                purchase_model(wh, dataset, version=version)
            except ValueError:
                pass
    if best != VALUE_PURCHASE_MODEL:
        try:
            clv_models(wh, dataset, version=version, purchase_model=best, _summary=s)
            probabilistic(wh, dataset, purchase_model="auto", version=version)  # the Value page's default
        except ValueError as exc:
            job.warnings.append(f"{best} + Gamma-Gamma not available: {exc}")


def _stage_frame(wh, dataset, version, ctx, job):
    if ctx["last_day"] is None:
        return
    frame = ctx["scores"]
    values(wh, dataset, version=version, _frame=frame, _models=ctx.get("models"))
    if ctx["attached"]:
        return  # no events: no cohorts or migration
    first = pd.Timestamp(ctx["overview"]["kpis"]["first_event"]).date()
    start = default_migration_start(first, ctx["last_day"])
    need_history = not (exists(wh, dataset, "cohorts", {"as_of": str(ctx["last_day"]), "max_months": COHORT_MONTHS},
                               version=version)
                        and exists(wh, dataset, "migration", {"from": str(start), "to": str(ctx["last_day"])},
                                   version=version))
    if need_history:
        hist = ctx.get("history") or history(wh, dataset, version=version)
        cohorts(wh, dataset, version=version)
        rfm_migration(wh, dataset, start, version=version, _frame=frame, _history=hist)
    ctx.pop("history", None)  # ~50 bytes per customer-day: not kept past this stage
    try:  # the new customers' first-order model (after the review sentiment, one of its features)
        first_order(wh, dataset, version=version)
    except ValueError as exc:
        job.warnings.append(f"the first-order model is not prepared: {exc}")


def first_order(wh: Warehouse, dataset: str, as_of=None, window_days: int | None = None, *,
                version: str | None = None, compute: bool = True):
    """``(FirstOrderValues, group per new customer, group profiles)``: the first-order model of
    :mod:`analytics.newcustomers` fitted up to ``as_of`` and its new-customer groups (the Reviews &
    new customers page), stored per data version, day and window; prepared for the last day and the
    default window."""
    from analytics.newcustomers import DEFAULT_WINDOW_DAYS, first_order_values, new_customer_segments

    wh.require_dataset(dataset)
    version = version or data_version(wh, dataset)
    day, _ = _day(wh, dataset, as_of, version)
    window = int(window_days or DEFAULT_WINDOW_DAYS)

    def compute_fn():
        fov = first_order_values(wh, dataset, day, window_days=window)
        groups, profile = new_customer_segments(fov.features, k=4) if len(fov.features) >= 4 else (
            pd.Series(dtype=object, name="new_customer_segment"), pd.DataFrame())
        return fov, groups, profile

    hit = obtain(wh, dataset, "first_order", {"as_of": str(day), "window": window}, compute_fn, fmt="pickle",
                 version=version, compute=compute)
    if hit is None:
        return None
    if hit.error:
        raise PrepareError(hit.error)
    return hit.value


def _stage_neighbours(wh, dataset, version, ctx, job):
    if ctx["last_day"] is None or ctx["attached"]:
        return
    try:
        recommender(wh, dataset, version=version)
    except ValueError as exc:
        job.warnings.append(f"recommender not available: {exc}")


_STAGE_FUNCS = {"overview": _stage_overview, "history": _stage_history, "scores": _stage_scores,
                "models": _stage_models, "frame": _stage_frame, "neighbours": _stage_neighbours}


# ============================================================================ in the background
_JOBS: dict[tuple[str, str], Job] = {}
_JOBS_LOCK = threading.Lock()


def job(wh: Warehouse, dataset: str) -> Job | None:
    """The latest preparation job of ``dataset`` started in this process (running or ended)."""
    with _JOBS_LOCK:
        return _JOBS.get((wh.path, dataset))


def start(wh: Warehouse, dataset: str) -> Job:
    """Prepare the current version of ``dataset`` in a background thread (idempotent: the running
    job of the same version is returned; a job of an older version is stopped first)."""
    version = data_version(wh, dataset)
    with _JOBS_LOCK:
        old = _JOBS.get((wh.path, dataset))
        if old is not None and old.version == version and old.state in ("queued", "running", "done"):
            return old
        new = Job(wh.path, dataset, version)
        _JOBS[(wh.path, dataset)] = new
    if old is not None and old.running:
        old.stop()

    def work():
        from analytics import access

        if old is not None and old._thread is not None:
            old._thread.join()
        try:
            with access.acting_as(access.SYSTEM):  # derived data, for whoever may read the dataset
                run(wh, dataset, job=new)
        except Exception:  # recorded on the job (state failed, error); the app shows it
            pass

    new._thread = threading.Thread(target=work, name=f"prepare-{dataset}", daemon=True)
    new._thread.start()
    return new


def record(wh: Warehouse, finished: Job) -> None:
    """Make ``finished`` (a job run synchronously, e.g. by a CLI command handed to this process)
    the dataset's latest job, so that progress displays see it."""
    with _JOBS_LOCK:
        _JOBS[(wh.path, finished.dataset)] = finished


def stop_all(wh: Warehouse | None = None, timeout: float | None = None) -> None:
    """Stop the background jobs (of ``wh``; all when None) and wait for them to end."""
    with _JOBS_LOCK:
        jobs = [j for (path, _), j in _JOBS.items() if wh is None or path == wh.path]
    for j in jobs:
        j.stop()
    for j in jobs:
        if j._thread is not None:
            j._thread.join(timeout)
