"""Segment explorer computations (no streamlit): compare groups of customers,
value concentration (Lorenz curve), cohort retention, segment migration between
two as-of dates and one customer's timeline.

Every function takes its as-of date explicitly; SQL values are bound parameters.
Chart-bound outputs are small by construction: the Lorenz curve is downsampled
to ``max_points``, cohorts are months x months, migrations are segment x segment.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from analytics import access
from analytics.dates import parse_day
from analytics.warehouse import Warehouse

#: retention window of :func:`segment_comparison` (days before the as-of day, inclusive)
RETENTION_DAYS = 90
#: label of customers absent from one side of a migration
NOT_A_CUSTOMER = "(not a customer yet)"

TIMELINE_COLUMNS = ("event_time", "event_type", "order_id", "item_id", "category", "quantity",
                    "revenue", "rating", "text", "country")


class ExplorerError(ValueError):
    """A request the user can fix (bad date, unknown customer...)."""


def _day(value, what: str) -> pd.Timestamp:
    return parse_day(value, what, ExplorerError)


# ----------------------------------------------------------------- the customer frame
# Score columns every customer frame carries (Segments filters and Explorer groups on them).
FRAME_SCORE_COLUMNS = ("r_score", "f_score", "m_score", "rfm_score", "rfm_segment", "behaviour_score",
                       "clv_formula")


def _labels(codes: np.ndarray, names) -> object:
    """``names[codes]`` as the column pandas would make of that object array (its default
    string dtype), built from the codes and the few names through an Arrow dictionary instead
    of inferring a type from a million Python strings (~4x faster at 1M customers)."""
    labels = np.asarray(names, dtype=object)
    target = pd.Series(labels[:1] if len(labels) else np.array(["x"], dtype=object)).dtype
    if (isinstance(target, pd.StringDtype) and target.storage == "pyarrow" and len(labels)
            and all(isinstance(v, str) for v in labels)):
        import pyarrow as pa

        dictionary = pa.array(list(labels), pa.large_string())
        arr = pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), dictionary)
        return pd.Series(arr.cast(pa.large_string()), dtype=target).array
    return labels[codes]


def frame_scores(summary: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ``FRAME_SCORE_COLUMNS`` (``clv_formula`` as ``clv``) of every customer of ``summary``,
    in its row order, from :class:`analytics.scores.Scorer` with default parameters (the same
    numbers the Value page shows before any slider moves)."""
    from analytics.scores import Scorer

    scorer = Scorer(summary)
    # scores only: no top-customer list (no CLV ranking), histogram of the 1-5 RFM score (no CLV quantile)
    result = scorer.score(top_n=0, rank_by="rfm_score")
    names = np.asarray(result.segment_names, dtype=object)
    return {
        "r_score": scorer.rfm["r_score"].to_numpy(),
        "f_score": scorer.rfm["f_score"].to_numpy(),
        "m_score": scorer.rfm["m_score"].to_numpy(),
        "rfm_score": result.rfm_score,
        "rfm_segment": _labels(result.segment_codes, names),
        "behaviour_score": result.behaviour_score,
        "clv": result.clv_formula,
    }


def rfm_segment_frame(wh: Warehouse, dataset: str, as_of, unit: str = "days", *, history=None) -> pd.DataFrame:
    """Just the ``rfm_segment`` of every customer as of ``as_of`` (the same values as
    :func:`build_frame`'s column: quintile R/F/M scores and the default segment rules), for a
    migration's earlier date without building the whole frame (scores, CLV, features)."""
    from analytics.scores import compile_segment_rules, rfm_cells, rfm_scores
    from analytics.summary import customer_summary

    day = _day(as_of, "the as-of date")
    if history is not None:
        if history.dataset != dataset:
            raise ExplorerError(f"the summary history is of dataset {history.dataset!r}, not {dataset!r}")
        positions = history.customer_positions(day.date())
        if unit == "days" and positions.size:  # the RFM inputs as arrays: no summary frame, no timestamps
            frame = pd.DataFrame({"rfm_segment": _history_rfm_segments(history, day)},
                                 index=history.customer_index.take(positions))
            frame.attrs = {"as_of": str(day.date()), "dataset": dataset, "unit": unit}
            return frame
        summary = history.rfm_inputs(day.date())  # the three columns RFM needs
    else:
        summary = customer_summary(wh, dataset, day.date(), unit)
    if summary.empty:
        seg = np.array([], dtype=object)
    else:
        rfm = rfm_scores(summary)
        smap = compile_segment_rules()  # analytics.scores.rfm_segments, as codes then labels
        seg = _labels(smap.lut[rfm_cells(rfm["r_score"].to_numpy(), rfm["fm_score"].to_numpy())], smap.names)
    frame = pd.DataFrame({"rfm_segment": seg}, index=summary.index)
    frame.attrs = {"as_of": str(day.date()), "dataset": dataset, "unit": unit}
    return frame


def _history_rfm_segments(history, day: pd.Timestamp):
    """``rfm_segments`` of :func:`analytics.scores.rfm_scores` over ``history.rfm_inputs(day)``,
    computed on the history's arrays (same quintile rule and inputs: customers without an order
    unscored)."""
    codes, names = _history_rfm_codes(history, day)
    return _labels(codes, names)


def _history_rfm_codes(history, day: pd.Timestamp) -> tuple[np.ndarray, list]:
    """:func:`_history_rfm_segments` as codes into the segment names (no label column)."""
    from analytics.scores import compile_segment_rules, fm_score, quintile_scores, rfm_cells

    _, days, n_orders, net = history.rfm_values(day.date())
    buyers = n_orders > 0
    r = quintile_scores(days, higher_is_better=False)  # NaN (no purchase) -> 0
    f = quintile_scores(np.where(buyers, n_orders.astype(np.float64), np.nan))
    m = quintile_scores(np.where(buyers, np.nan_to_num(net, nan=0.0), np.nan))
    smap = compile_segment_rules()
    return smap.lut[rfm_cells(r, fm_score(f, m))], list(smap.names)


def rfm_migration(wh: Warehouse, dataset: str, from_day, frame_b: pd.DataFrame, *, history=None,
                  unit: str = "days", missing: str = NOT_A_CUSTOMER) -> pd.DataFrame:
    """``segment_migration(rfm_segment_frame(wh, dataset, from_day, unit, history=history), frame_b,
    "rfm_segment", missing, history=history)``: the same flows. From a summary history, when
    ``frame_b`` is one of its frames, the earlier date's segments stay codes into the segment
    names (no label column, no id index, no factorization of a million labels)."""
    day = _day(from_day, "the as-of date")
    if (history is not None and history.dataset == dataset and unit == "days" and "rfm_segment" in frame_b.columns
            and "as_of" in frame_b.attrs):
        pos_a = history.customer_positions(day.date())
        pos_b = history.customer_positions(frame_b.attrs["as_of"])
        if pos_a.size and len(pos_b) == len(frame_b) and _same_ids(history, pos_b, frame_b):
            return _migration_by_position(_history_rfm_codes(history, day), frame_b["rfm_segment"], pos_a, pos_b,
                                          history.n_customers, missing)
    earlier = rfm_segment_frame(wh, dataset, day, unit, history=history)
    return segment_migration(earlier, frame_b, "rfm_segment", missing, history=history)


def build_frame(wh: Warehouse, dataset: str, as_of, unit: str = "days", *, with_clusters: bool = True,
                with_predictions: bool = True, history=None) -> pd.DataFrame:
    """Customer frame as of ``as_of``: the customer summary with the derived clustering features,
    R/F/M and RFM scores and segment, behaviour score and formula CLV (``clv``) from
    :class:`analytics.scores.Scorer` with default parameters, the latest clustering run's
    ``cluster`` / ``cluster_name``, a published model's predictions and the review sentiment
    columns (:func:`analytics.reviews.columns.sentiment_columns`), indexed by customer_id
    (``attrs["as_of"]``: the day as ISO text).

    ``history``: an :class:`analytics.summary.SummaryHistory` of ``dataset`` (built once per data
    version): the summary is then read from it (a fraction of a second at 1M customers) instead
    of ``customer_summary`` (a pass over the events, persisted per as-of day)."""
    from analytics.segments import store
    from analytics.segments.clustering import add_derived_features
    from analytics.summary import customer_summary

    day = _day(as_of, "the as-of date")
    if history is not None:
        if history.dataset != dataset:
            raise ExplorerError(f"the summary history is of dataset {history.dataset!r}, not {dataset!r}")
        summary = history.summary(day.date(), unit)
    else:
        summary = customer_summary(wh, dataset, day.date(), unit)
    # the summary is ours (built just now): the derived columns go into it, no copy
    frame = add_derived_features(summary, copy=False)
    if summary.empty:
        for c in FRAME_SCORE_COLUMNS:
            frame[c if c != "clv_formula" else "clv"] = pd.Series(dtype=object if c == "rfm_segment" else float)
    else:
        # the scores come in the summary's row order: assigned by position, no join on the ids
        for c, values in frame_scores(summary).items():
            if c not in frame.columns:
                frame[c] = values
    others = []
    if with_clusters and not summary.empty:
        run = store.latest_clustering_run(wh, dataset)
        if run is not None:
            others.append(store.load_assignments(wh, run))
    if with_predictions and not summary.empty:
        from analytics.predict.registry import prediction_columns, published_predictions

        pred = published_predictions(wh, dataset)
        if not pred.empty:
            others.append(prediction_columns(pred))
    if not summary.empty:  # review sentiment (stored by the preparation step; missing when never scored)
        from analytics.reviews.columns import sentiment_columns

        others.append(sentiment_columns(wh, dataset, day, frame.index))
    for other in others:  # a left join on the customer id (columns already present are kept)
        new = [c for c in other.columns if c not in frame.columns]
        if new:
            aligned = other[new].reindex(frame.index)
            for c in new:
                frame[c] = aligned[c].to_numpy()
    frame.attrs = {"as_of": str(day.date()), "dataset": dataset, "unit": unit}
    return frame


def category_groups(frame: pd.DataFrame, column: str) -> dict[str, pd.Series]:
    """One boolean mask per distinct value of ``column`` (missing values left out), largest first
    (ties in order of first appearance). One factorization, then an integer compare per value
    (not a string compare per value: ~10x faster at 1M customers)."""
    if column not in frame.columns:
        return {}
    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    order = sorted(range(len(uniques)), key=lambda i: (-counts[i], i))
    return {str(uniques[i]): pd.Series(codes == i, index=frame.index, name=column) for i in order if counts[i]}


# ----------------------------------------------------------------- comparison
def segment_comparison(frame: pd.DataFrame, groups: Mapping[str, object], as_of=None, *,
                       value_column: str = "net_revenue", clv_column: str = "clv",
                       alive_column: str = "probability_alive",
                       retention_days: int = RETENTION_DAYS) -> pd.DataFrame:
    """One row per group (``groups``: name -> boolean mask over ``frame``):

    * ``customers``, ``share`` (of all customers in ``frame``);
    * ``revenue`` (sum of ``value_column``) and ``revenue_share`` (of the total; NaN when the total is 0);
    * ``avg_clv`` (mean of ``clv_column``, NaN if absent or empty);
    * ``orders_per_customer`` (mean ``n_orders``: purchase days per customer);
    * ``avg_probability_alive`` (mean of ``alive_column``; only when that column exists);
    * ``retention``: share of the group's customers whose last purchase day is within the
      ``retention_days`` days ending on the as-of day (``as_of - last_purchase < retention_days``).

    An empty group gives a row with 0 customers and NaN averages.
    """
    when = as_of if as_of is not None else frame.attrs.get("as_of")
    day = _day(when, "the as-of date")
    n_all = len(frame)
    value = pd.to_numeric(frame[value_column], errors="coerce").fillna(0.0).to_numpy(float) \
        if value_column in frame.columns else np.zeros(n_all)
    total = float(value.sum())
    clv = pd.to_numeric(frame[clv_column], errors="coerce").to_numpy(float) if clv_column in frame.columns else None
    alive = (pd.to_numeric(frame[alive_column], errors="coerce").to_numpy(float)
             if alive_column in frame.columns else None)
    orders = (pd.to_numeric(frame["n_orders"], errors="coerce").fillna(0).to_numpy(float)
              if "n_orders" in frame.columns else np.full(n_all, np.nan))
    if "last_purchase" in frame.columns:
        last = pd.to_datetime(frame["last_purchase"]).to_numpy(dtype="datetime64[D]")
        age = (np.datetime64(day.date(), "D") - last).astype(np.float64)
        age[np.isnat(last)] = np.nan  # never purchased
        with np.errstate(invalid="ignore"):
            recent = (age >= 0) & (age < retention_days)
    else:
        recent = np.zeros(n_all, dtype=bool)

    def _mean(arr, idx):
        if arr is None or not len(idx):
            return float("nan")
        v = arr[idx]
        v = v[~np.isnan(v)]
        return float(v.mean()) if len(v) else float("nan")

    rows = []
    for name, mask in groups.items():
        # a Series' values, not np.asarray(Series): NumPy's attribute probes on a Series with
        # string ids make pandas hash every id once per frame (~0.2 s at 1M customers)
        m = np.asarray(mask.to_numpy() if isinstance(mask, (pd.Series, pd.Index)) else mask, dtype=bool)
        if len(m) != n_all:
            raise ExplorerError(f"group {name!r} has {len(m)} flags for {n_all} customers")
        idx = np.flatnonzero(m)  # one pass over the flags, then reads of the group's rows only
        n = len(idx)
        rev = float(value[idx].sum())
        row = {
            "segment": str(name),
            "customers": n,
            "share": n / n_all if n_all else float("nan"),
            "revenue": rev,
            "revenue_share": rev / total if total else float("nan"),
            "avg_clv": _mean(clv, idx),
            "orders_per_customer": float(orders[idx].mean()) if n else float("nan"),
        }
        if alive is not None:
            row["avg_probability_alive"] = _mean(alive, idx)
        row["retention"] = float(recent[idx].mean()) if n else float("nan")
        rows.append(row)
    cols = ["segment", "customers", "share", "revenue", "revenue_share", "avg_clv", "orders_per_customer"]
    if alive is not None:
        cols.append("avg_probability_alive")
    cols.append("retention")
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------- concentration
def _clean_values(values) -> np.ndarray:
    # a Series' values, not np.asarray(Series) (see segment_comparison: hashing 1M ids)
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    v = pd.to_numeric(pd.Series(arr.ravel()), errors="coerce").fillna(0.0).to_numpy(float)
    return np.clip(v, 0.0, None)  # a net refund holds no share of the value


def lorenz_curve(values, max_points: int = 1000) -> pd.DataFrame:
    """Lorenz curve of ``values`` (negatives count as 0): ``customer_share`` (poorest first)
    and ``value_share`` (cumulative), from (0, 0) to (1, 1), downsampled to at most
    ``max_points`` points (evenly spaced in customer rank, ends kept)."""
    if max_points < 2:
        raise ExplorerError("a Lorenz curve needs at least 2 points")
    v = np.sort(_clean_values(values))
    n = len(v)
    if n == 0:
        return pd.DataFrame({"customer_share": [0.0, 1.0], "value_share": [0.0, 1.0]})
    cum = np.concatenate([[0.0], np.cumsum(v)])
    total = cum[-1]
    ranks = np.arange(n + 1)
    if n + 1 > max_points:
        ranks = np.unique(np.linspace(0, n, max_points).round().astype(np.int64))
    vs = cum[ranks] / total if total > 0 else ranks / n
    return pd.DataFrame({"customer_share": ranks / n, "value_share": vs})


def top_share(values, fraction: float) -> float:
    """Share of the total value (negatives count as 0) held by the top ``fraction`` of
    customers (``ceil(fraction * n)`` customers); NaN when there is no value."""
    if not 0 < fraction <= 1:
        raise ExplorerError(f"the top fraction must be in (0, 1], got {fraction!r}")
    v = _clean_values(values)
    n = len(v)
    total = float(v.sum())
    if n == 0 or total <= 0:
        return float("nan")
    k = max(1, int(math.ceil(fraction * n - 1e-9)))
    top = np.partition(v, n - k)[n - k:] if k < n else v
    return float(top.sum()) / total


def gini(values) -> float:
    """Gini coefficient of ``values`` (negatives count as 0); NaN without value."""
    v = np.sort(_clean_values(values))
    n = len(v)
    if n == 0 or v.sum() <= 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float((2 * (i * v).sum()) / (n * v.sum()) - (n + 1) / n)


def concentration(values, fractions=(0.1, 0.2), max_points: int = 1000) -> dict:
    """:func:`lorenz_curve`, :func:`top_share` for each of ``fractions`` and :func:`gini` of
    ``values`` from one sort (what the Explorer shows on every rerun): ``{"curve", "top": {fraction:
    share}, "gini"}``. Same numbers as the separate functions (up to float summation order)."""
    if max_points < 2:
        raise ExplorerError("a Lorenz curve needs at least 2 points")
    for f in fractions:
        if not 0 < f <= 1:
            raise ExplorerError(f"the top fraction must be in (0, 1], got {f!r}")
    v = np.sort(_clean_values(values))
    n = len(v)
    cum = np.concatenate([[0.0], np.cumsum(v)])
    total = float(cum[-1])
    if n == 0:
        curve = pd.DataFrame({"customer_share": [0.0, 1.0], "value_share": [0.0, 1.0]})
    else:
        ranks = np.arange(n + 1)
        if n + 1 > max_points:
            ranks = np.unique(np.linspace(0, n, max_points).round().astype(np.int64))
        vs = cum[ranks] / total if total > 0 else ranks / n
        curve = pd.DataFrame({"customer_share": ranks / n, "value_share": vs})
    top = {}
    for f in fractions:
        if n == 0 or total <= 0:
            top[f] = float("nan")
        else:
            k = max(1, int(math.ceil(f * n - 1e-9)))
            top[f] = float(v[n - k:].sum()) / total
    if n == 0 or total <= 0:
        g = float("nan")
    else:
        i = np.arange(1, n + 1)
        g = float((2 * (i * v).sum()) / (n * v.sum()) - (n + 1) / n)
    return {"curve": curve, "top": top, "gini": g}


# ----------------------------------------------------------------- cohorts
_COHORT_SQL = """
WITH p AS (
    SELECT customer_id, date_trunc('month', event_time) AS m
    FROM events
    WHERE dataset = $dataset AND event_type = 'purchase' AND event_time < $end
    GROUP BY customer_id, date_trunc('month', event_time)
), f AS (
    SELECT customer_id, min(m) AS cohort FROM p GROUP BY customer_id
), sizes AS (
    SELECT cohort, count(*) AS cohort_size FROM f GROUP BY cohort
)
SELECT CAST(f.cohort AS DATE) AS cohort,
       CAST(datediff('month', f.cohort, p.m) AS INTEGER) AS months_since,
       count(*) AS customers,
       any_value(sizes.cohort_size) AS cohort_size,
       count(*) / any_value(sizes.cohort_size) AS retention
FROM p JOIN f USING (customer_id) JOIN sizes USING (cohort)
WHERE datediff('month', f.cohort, p.m) <= $max_months
GROUP BY f.cohort, datediff('month', f.cohort, p.m)
ORDER BY cohort, months_since
"""


def cohort_retention(wh: Warehouse, dataset: str, as_of, max_months: int = 24, *, history=None) -> pd.DataFrame:
    """Cohorts by first-purchase month (purchases up to the end of the as-of day): one row
    per (``cohort`` month, ``months_since`` the first purchase month) with ``customers``
    (of the cohort purchasing in that month), ``cohort_size`` and ``retention`` =
    customers / cohort_size (month 0 is always 1). Computed in DuckDB, or from ``history``
    (an :class:`analytics.summary.SummaryHistory` of ``dataset``) without reading the events."""
    day = _day(as_of, "the as-of date")
    if int(max_months) < 0:
        raise ExplorerError("max_months must be 0 or more")
    if history is not None:
        if history.dataset != dataset:
            raise ExplorerError(f"the summary history is of dataset {history.dataset!r}, not {dataset!r}")
        df = history.cohort_counts(day.date(), int(max_months))
        df["retention"] = df["customers"] / df["cohort_size"]
        return df
    bind = {"dataset": dataset, "end": (day + pd.Timedelta(days=1)).to_pydatetime(),
            "max_months": int(max_months)}
    df = wh.cursor().execute(_COHORT_SQL, bind).df()
    if not df.empty:
        df["cohort"] = pd.to_datetime(df["cohort"])
        df["customers"] = df["customers"].astype("int64")
        df["cohort_size"] = df["cohort_size"].astype("int64")
        df["retention"] = df["retention"].astype(float)
    return df


def cohort_matrix(cohorts: pd.DataFrame) -> pd.DataFrame:
    """:func:`cohort_retention` as a matrix: rows = cohort month (YYYY-MM), columns = months since."""
    if cohorts.empty:
        return pd.DataFrame()
    m = cohorts.pivot(index="cohort", columns="months_since", values="retention").sort_index()
    m.index = [pd.Timestamp(c).strftime("%Y-%m") for c in m.index]
    return m


# ----------------------------------------------------------------- migration
def segment_migration(frame_a: pd.DataFrame, frame_b: pd.DataFrame, column: str = "rfm_segment",
                      missing: str = NOT_A_CUSTOMER, *, history=None) -> pd.DataFrame:
    """Flows of customers between the ``column`` value in ``frame_a`` (earlier date) and in
    ``frame_b`` (later date), matched on the index (customer id): columns ``from``, ``to``,
    ``customers``. A customer absent from one side (or with a missing value) is counted under
    ``missing``, so the flows sum to the number of distinct customers in either frame.

    ``history``: the :class:`analytics.summary.SummaryHistory` both frames were built from
    (``build_frame(..., history=...)``): customers are then matched by their integer position in
    it instead of aligning two string indexes (~0.05 s instead of seconds at 1M customers)."""
    for name, f in (("first", frame_a), ("second", frame_b)):
        if column not in f.columns:
            raise ExplorerError(f"the {name} frame has no column {column!r}")
    if history is not None:
        pos = [history.customer_positions(f.attrs["as_of"]) if "as_of" in f.attrs else None
               for f in (frame_a, frame_b)]
        if all(p is not None and len(p) == len(f) and _same_ids(history, p, f)
               for p, f in zip(pos, (frame_a, frame_b))):
            return _migration_by_position(frame_a[column], frame_b[column], pos[0], pos[1],
                                          history.n_customers, missing)
    a = frame_a[column].astype(object)
    b = frame_b[column].astype(object)
    both = pd.concat([a.rename("from"), b.rename("to")], axis=1, join="outer")
    both = both.astype(object).where(both.notna(), missing)
    flows = both.groupby(["from", "to"], sort=True).size().rename("customers").reset_index()
    flows["customers"] = flows["customers"].astype("int64")
    return flows.sort_values("customers", ascending=False, kind="stable").reset_index(drop=True)


def cluster_migration(wh: Warehouse, run_id: int, frame_a: pd.DataFrame, frame_b: pd.DataFrame, *,
                      history=None, missing: str = NOT_A_CUSTOMER) -> pd.DataFrame:
    """Flows between the clusters of one saved clustering run at two dates (see
    :func:`segment_migration`). Both frames are assigned with that run
    (:func:`analytics.segments.store.assign_with_run`: its fill values, scaling and centres), so
    a cluster means the same customers' profile on both sides, whatever date the run was
    trained on."""
    from analytics.segments import store

    sides = []
    for f in (frame_a, frame_b):
        assigned = store.assign_with_run(wh, int(run_id), f)[["cluster_name"]]
        assigned.attrs = dict(f.attrs)
        sides.append(assigned)
    return segment_migration(sides[0], sides[1], "cluster_name", missing, history=history)


def _same_ids(history, positions: np.ndarray, frame: pd.DataFrame) -> bool:
    """Spot check that ``frame`` rows are the history's customers at ``positions`` (first, middle, last)."""
    if len(frame) == 0:
        return True
    probe = np.unique([0, len(frame) // 2, len(frame) - 1])
    return list(history.customer_index[positions[probe]]) == list(frame.index[probe])


def _migration_by_position(a: pd.Series, b: pd.Series, pos_a: np.ndarray, pos_b: np.ndarray, n: int,
                           missing: str) -> pd.DataFrame:
    # factorize each side (no conversion of a million strings), then one shared label table
    labels: list = []
    index: dict = {}
    side_codes = []
    for s in (a, b):
        # a side is a Series of labels, or already (codes >= 0, the labels they index)
        codes, uniques = s if isinstance(s, tuple) else pd.factorize(s, use_na_sentinel=True)
        remap = np.empty(len(uniques) + 1, dtype=np.int64)
        for i, v in enumerate(list(uniques)):
            key = missing if (isinstance(v, str) and v == missing) else v
            if key not in index:
                index[key] = len(labels)
                labels.append(key)
            remap[i] = index[key]
        remap[-1] = -1  # missing value: code -1 maps to the last slot
        side_codes.append(remap[codes])
    if missing not in index:
        index[missing] = len(labels)
        labels.append(missing)
    miss = index[missing]
    k = len(labels)
    frm = np.full(n, -1, dtype=np.int64)
    to = np.full(n, -1, dtype=np.int64)
    frm[pos_a] = side_codes[0]
    to[pos_b] = side_codes[1]
    seen = np.flatnonzero((frm >= 0) | (to >= 0) | _placed(n, pos_a) | _placed(n, pos_b))
    frm = np.where(frm < 0, miss, frm)[seen]
    to = np.where(to < 0, miss, to)[seen]
    counts = np.bincount(frm * k + to, minlength=k * k)
    nz = np.flatnonzero(counts)
    arr = np.empty(k, dtype=object)
    arr[:] = labels
    pairs = pd.DataFrame({"from": arr[nz // k], "to": arr[nz % k], "customers": counts[nz]})
    # the same grouping as the id-matched path on a few rows (same key order and dtypes)
    flows = pairs.groupby(["from", "to"], sort=True)["customers"].sum().reset_index()
    flows["customers"] = flows["customers"].astype("int64")
    return flows.sort_values("customers", ascending=False, kind="stable").reset_index(drop=True)


def _placed(n: int, pos: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[pos] = True
    return out


#: the least distance between two node centres of a Sankey column (a share of its height)
MIN_LABEL_GAP = 0.045


def sankey_data(flows: pd.DataFrame) -> dict:
    """Nodes and links for ``plotly.graph_objects.Sankey``: left nodes are the ``from``
    values (suffixed by nothing), right nodes the ``to`` values; returns
    ``{"labels", "source", "target", "value", "node_colors", "link_colors", "x", "y"}``:
    a segment has the same colour on both sides (colour-blind-safe palette of thirteen
    colours, "not a customer yet" grey), each link the translucent colour of where it comes
    from, and nodes sit in two fixed columns spaced by size, with at least ``MIN_LABEL_GAP``
    of the height between node centres so that the labels of small nodes do not overlap."""
    from analytics.palettes import distinct_category_colors as category_colors, rgba

    left = sorted(flows["from"].astype(str).unique())
    right = sorted(flows["to"].astype(str).unique())
    li = {v: i for i, v in enumerate(left)}
    ri = {v: len(left) + i for i, v in enumerate(right)}
    colour = category_colors(left + right, neutral=[NOT_A_CUSTOMER])
    sizes_l = flows.groupby(flows["from"].astype(str))["customers"].sum()
    sizes_r = flows.groupby(flows["to"].astype(str))["customers"].sum()

    def column(names, sizes):
        total = float(sizes.sum()) or 1.0
        heights = [float(sizes.get(n, 0)) / total for n in names]
        pos, y = [], 0.0
        for h in heights:  # node centres, stacked in order with their share of the height, a label apart
            centre = y + h / 2 if not pos else max(y + h / 2, pos[-1] + MIN_LABEL_GAP)
            pos.append(centre)
            y = centre + h / 2
        span = (pos[-1] + heights[-1] / 2) if pos else 1.0
        scale = 0.96 / max(span, 1.0)  # squeezed back into the plot when the gaps add height
        return [min(max(0.02 + scale * p, 0.001), 0.999) for p in pos]

    return {
        "labels": left + right,
        "source": [li[str(v)] for v in flows["from"]],
        "target": [ri[str(v)] for v in flows["to"]],
        "value": [int(v) for v in flows["customers"]],
        "node_colors": [colour[v] for v in left + right],
        "link_colors": [rgba(colour[str(v)], 0.35) for v in flows["from"]],
        "x": [0.001] * len(left) + [0.999] * len(right),
        "y": column(left, sizes_l) + column(right, sizes_r),
    }


# ----------------------------------------------------------------- customers
def search_customers(frame: pd.DataFrame, text: str | None, limit: int = 2000) -> tuple[pd.DataFrame, int]:
    """Customers whose id contains ``text`` (case-insensitive substring, not a pattern):
    the first ``limit`` rows and the number of matches."""
    needle = (text or "").strip()
    if not needle:
        return frame.head(int(limit)), int(len(frame))
    ids = pd.Series(frame.index.astype(str), copy=False)
    idx = np.flatnonzero(np.asarray(ids.str.contains(needle, case=False, regex=False, na=False), dtype=bool))
    return frame.iloc[idx[:int(limit)]], int(len(idx))  # copies the shown rows only


def customer_event_count(wh: Warehouse, dataset: str, customer_id: str, as_of=None) -> int:
    """Number of events of one customer (up to the end of ``as_of`` when given). ``customer_id``: the id
    as the caller sees it (a pseudonym for a caller without raw ids, see ``access.resolve_customer``)."""
    stored = access.resolve_customer(wh, dataset, customer_id)
    if stored is None:
        return 0
    sql = "SELECT count(*) FROM events WHERE dataset = ? AND customer_id = ?"
    params: list = [dataset, stored]
    if as_of is not None:
        sql += " AND event_time < ?"
        params.append((_day(as_of, "the as-of date") + pd.Timedelta(days=1)).to_pydatetime())
    return int(wh.cursor().execute(sql, params).fetchone()[0])


def customer_timeline(wh: Warehouse, dataset: str, customer_id: str, limit: int = 500,
                      as_of=None) -> pd.DataFrame:
    """One customer's events, newest first (at most ``limit``; up to the end of ``as_of`` when given).
    ``customer_id``: the id as the caller sees it (a pseudonym for a caller without raw ids); an id
    that names nobody gives no rows. The table is marked customer-level (``access.CUSTOMER_LEVEL``)
    and comes as the caller may see it (``access.present``: for a caller without raw ids the review
    and search texts with e-mail addresses, phone numbers and links replaced; ``country`` stays)."""
    if int(limit) < 1:
        raise ExplorerError("the timeline limit must be at least 1")
    cols = ", ".join(TIMELINE_COLUMNS)
    stored = access.resolve_customer(wh, dataset, customer_id)
    sql = f"SELECT {cols} FROM events WHERE dataset = ? AND customer_id = ?"
    params: list = [dataset, "" if stored is None else stored]
    if stored is None:
        sql += " AND false"
    if as_of is not None:
        sql += " AND event_time < ?"
        params.append((_day(as_of, "the as-of date") + pd.Timedelta(days=1)).to_pydatetime())
    sql += " ORDER BY event_time DESC, row_hash LIMIT ?"
    params.append(int(limit))
    timeline = wh.cursor().execute(sql, params).df()
    timeline.attrs[access.CUSTOMER_LEVEL] = True
    return access.present(wh, timeline)
