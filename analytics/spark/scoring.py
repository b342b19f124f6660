"""Scores, segments and CLV for every customer of a Spark summary, equal to ``valuescope score``.

How the work is split (so nothing per customer reaches the driver):

* **global constants, on Spark**: what a per-customer score needs to know about
  *all* customers is small, and computed with a few aggregations:
  the RFM quintile levels (for each of recency, frequency, monetary: the
  smallest value that reaches each score, from the counts of the distinct
  values and their cumulative counts, by the average-rank rule of
  ``analytics.scores.quintile_scores``), the minimum and maximum of each
  behaviour count (the min-max scaling of the behaviour score), and the
  distinct (frequency, recency, T) and (frequency, monetary value) rows with
  their counts;
* **model fits, on the driver, with the library's own estimators**:
  ``analytics.clv_models`` fits BG/NBD (``fit_bgnbd_robust``, the same fallback
  penalizers as the warehouse path) and Gamma-Gamma on those distinct rows
  weighted by their counts. The rows are given in the order in which the
  warehouse's customer-sorted summary first meets them (each row carries its
  smallest customer id), so the fit sees exactly the grouped data the warehouse
  fit sees;
* **per customer, on the executors** (``mapInArrow`` over batches of customers):
  each batch runs the library's own :class:`analytics.scores.Scorer`
  (formula CLV, behaviour score, the exported frame and its columns) and
  :func:`analytics.scores.probabilistic_clv` with the fitted models; the RFM
  scores and segments come from the global quintile levels and the library's
  ``fm_score`` / ``weighted_rfm_score`` / compiled segment rules. A batch gets
  two extra rows carrying the global minimum and maximum behaviour counts (and
  dropped afterwards), so the Scorer's min-max scaling is the global one.

So no score formula is written twice: a change in ``analytics.scores`` or
``analytics.clv_models`` reaches both engines. Equality with the warehouse is
tested per customer (``tests/spark``).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from analytics.formatting import percent
from analytics import scores
from analytics.summary import SUMMARY_COLUMNS, _as_day, _finish

#: Gamma-Gamma fits on at most this many distinct (frequency, monetary value) rows; above it,
#: on a seeded sample of repeat buyers (the note in the metadata says so)
MAX_SPEND_ROWS = 2_000_000
#: BG/NBD distinct (frequency, recency, T) rows collected to the driver at most
MAX_BGNBD_ROWS = 5_000_000

_BEHAVIOUR_COLUMNS = tuple(scores.BEHAVIOUR_COLUMNS.values())


@dataclasses.dataclass
class Levels:
    """Quintile levels of one RFM input: ``thresholds[s]`` = the smallest value scoring ``s``
    (values negated where lower is better, as in ``quintile_scores``)."""

    thresholds: dict[int, float]
    negate: bool

    def apply(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(x)
        v = -x if self.negate else x
        out = np.zeros(x.shape[0], dtype=np.int8)
        for s in sorted(self.thresholds):
            out[ok & (v >= self.thresholds[s])] = s
        return out


def quintile_levels(values, negate: bool = False) -> Levels:
    """:class:`Levels` of a single-column (``v``, double, NULL/NaN = not scored) Spark frame.

    For each distinct value: its count ``c`` and the number of values at or below it
    ``leq`` (cumulative count over the sorted distinct values), the average rank
    ``(leq - c + leq + 1) / 2``, ``p = (rank - 0.5) / n`` and the score
    ``clip(floor(5 p) + 1, 1, 5)``: the expressions of ``quintile_scores`` in the same
    IEEE double arithmetic. The score is non-decreasing in the value, so the smallest
    value of each score is all a customer's score needs. The cumulative count runs over
    the distinct values in one partition (a few thousand rows for days and orders; one
    per distinct amount of money).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    v = F.col("v")
    vals = values.where(v.isNotNull() & ~F.isnan(v))
    if negate:
        vals = vals.select((-v).alias("v"))
    d = vals.groupBy("v").agg(F.count(F.lit(1)).alias("c"))
    upto = Window.orderBy("v").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    everything = Window.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    d = d.withColumn("leq", F.sum("c").over(upto)).withColumn("n", F.sum("c").over(everything))
    rank = ((F.col("leq") - F.col("c")) + F.col("leq") + 1) * 0.5
    p = (rank - 0.5) / F.col("n")
    score = F.least(F.greatest(F.floor(F.lit(5.0) * p) + 1, F.lit(1)), F.lit(5))
    rows = d.groupBy(score.alias("s")).agg(F.min("v").alias("t")).collect()
    return Levels({int(r["s"]): float(r["t"]) for r in rows}, negate)


def levels_of(values, negate: bool = False) -> Levels:
    """:func:`quintile_levels` of an in-memory array (the same rule in NumPy; for small data
    and for checking the Spark levels without Spark)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if not x.size:
        return Levels({}, negate)
    u, c = np.unique(-x if negate else x, return_counts=True)
    leq = np.cumsum(c)
    p = (((leq - c) + leq + 1) * 0.5 - 0.5) / int(leq[-1])
    s = np.clip(np.floor(5.0 * p).astype(np.int64) + 1, 1, 5)
    return Levels({int(k): float(u[s == k].min()) for k in np.unique(s)}, negate)


def rfm_levels(summary, as_of) -> dict[str, Levels]:
    """Levels of R (days since the last purchase, fewer is better), F (orders) and M (net
    revenue) over the customers with orders, as ``analytics.scores.rfm_scores`` ranks them."""
    from pyspark.sql import functions as F

    as_of_day = _as_day(as_of, "the as-of date")
    buyers = summary.where(F.col("n_orders") > 0)
    days = F.datediff(F.lit(as_of_day.date()).cast("date"), F.to_date("last_purchase")).cast("double")
    return {
        "recency": quintile_levels(buyers.select(days.alias("v")), negate=True),
        "frequency": quintile_levels(buyers.select(F.col("n_orders").cast("double").alias("v"))),
        "monetary": quintile_levels(buyers.select(F.coalesce(F.col("net_revenue"), F.lit(0.0)).alias("v"))),
    }


def behaviour_bounds(summary) -> dict[str, tuple[int, int]]:
    """(min, max) of each behaviour count over all customers."""
    from pyspark.sql import functions as F

    aggs = []
    for c in _BEHAVIOUR_COLUMNS:
        aggs += [F.min(c).alias(f"lo_{c}"), F.max(c).alias(f"hi_{c}")]
    row = summary.agg(*aggs).collect()[0]
    return {c: (int(row[f"lo_{c}"] or 0), int(row[f"hi_{c}"] or 0)) for c in _BEHAVIOUR_COLUMNS}


# ------------------------------------------------------------------ model fits
def distinct_rows(summary, columns: list[str], where, limit: int):
    """The distinct rows of ``columns`` among customers matching ``where``, with their count
    ``n`` and ordered by their smallest customer id (the order a customer-sorted summary
    first meets them); ``None`` when there are more than ``limit``."""
    from pyspark.sql import functions as F

    from analytics.spark.summary import collect

    d = (summary.where(where).groupBy(*columns)
         .agg(F.count(F.lit(1)).alias("n"), F.min("customer_id").alias("first_id")))
    if d.count() > limit:
        return None
    return collect(d.orderBy("first_id"))


def fit_models(summary, unit: str, *, seed: int = 0, purchase_model: str = "bgnbd", penalizer: float = 0.0):
    """``((purchase, spend), notes)``: the library's estimators fitted on the distinct rows of the
    Spark summary (see the module docstring), with the same robust fits (penalizer ladder) and
    messages as ``analytics.scores.fit_clv_models``: the purchase model (``"bgnbd"``, or
    ``"paretonbd"`` where the library has it) from ``penalizer``, Gamma-Gamma from 0. Raises the
    library's ``ValueError`` subclasses for data the models cannot be fitted on."""
    from pyspark.sql import functions as F

    from analytics import clv_models as clv

    notes: list[str] = []
    labels = getattr(scores, "PURCHASE_MODELS", {"bgnbd": "BG/NBD"})
    if purchase_model not in labels:
        raise scores.ScoreError(f"unknown purchase model {purchase_model!r}: choose {' or '.join(labels)}")
    if summary.where(F.col("n_orders") > 0).limit(1).count() == 0:
        raise scores.ScoreError("no customer has bought anything up to the as-of date: nothing to fit the models on")
    rows = distinct_rows(summary, ["frequency", "recency", "T"], F.col("n_orders") > 0, MAX_BGNBD_ROWS)
    if rows is None:
        raise scores.ScoreError(f"more than {MAX_BGNBD_ROWS:,} distinct (frequency, recency, T) rows: use whole days "
                                "or weeks as the unit")
    f, r, t = (rows[c].to_numpy() for c in ("frequency", "recency", "T"))
    w = rows["n"].to_numpy(dtype=np.float64)
    repeat = F.col("frequency") > 0
    spend_rows = distinct_rows(summary, ["frequency", "monetary_value"], repeat, MAX_SPEND_ROWS)
    if spend_rows is None:
        n_repeat = summary.where(repeat).count()
        frac = min(1.0, MAX_SPEND_ROWS / max(n_repeat, 1))
        sample = summary.where(repeat).sample(fraction=frac, seed=seed)
        spend_rows = distinct_rows(sample, ["frequency", "monetary_value"], F.lit(True), 2 * MAX_SPEND_ROWS)
        notes.append(f"Gamma-Gamma fitted on a seeded {percent(frac)} sample of the {n_repeat:,} repeat buyers")
    x, m = spend_rows["frequency"].to_numpy(), spend_rows["monetary_value"].to_numpy()
    ws = spend_rows["n"].to_numpy(dtype=np.float64)
    if not hasattr(clv, "fit_purchase_model_robust"):  # the library before Pareto/NBD
        purchase = clv.fit_bgnbd_robust(f, r, t, unit=unit, weights=w, random_state=0, penalizer=float(penalizer))
        spend = clv.GammaGammaModel(random_state=0).fit(x, m, weights=ws)
        return (purchase, spend), notes
    label = labels[purchase_model]
    try:
        purchase = clv.fit_purchase_model_robust(purchase_model, f, r, t, unit=unit, weights=w, random_state=0,
                                                 penalizer=float(penalizer))
    except clv.ModelFitError as exc:
        raise clv.ModelFitError(f"the {label} purchase model could not be fitted: {exc}") from None
    try:  # the penalizer is the purchase model's; the spend model starts unpenalized (as scores._fit)
        spend = clv.fit_gamma_gamma_robust(x, m, weights=ws, random_state=0)
    except clv.ModelFitError as exc:
        raise clv.ModelFitError(f"the Gamma-Gamma spend model could not be fitted: {exc}") from None
    return (purchase, spend), notes


# ------------------------------------------------------------------ per customer
@dataclasses.dataclass
class ScoreSpec:
    """Everything a batch of customers needs (pickled to the executors)."""

    as_of: pd.Timestamp
    unit: str
    rfm_weights: dict
    behaviour_weights: dict
    clv: scores.CLVParams
    segment_map: scores.SegmentMap
    levels: dict[str, Levels]
    bounds: dict[str, tuple[int, int]]
    models: Any = None


def _with_bounds(summary: pd.DataFrame, bounds) -> pd.DataFrame:
    """``summary`` (non-empty) plus two customers without orders holding the global min and max
    behaviour counts (the Scorer's min-max scaling then equals the scaling over all customers)."""
    extra = summary.iloc[[0, 0]].copy()
    extra.index = pd.Index(["\x00min", "\x00max"], name=summary.index.name)
    for c in ("first_purchase", "last_purchase"):
        extra[c] = pd.NaT
    for c in ("frequency", "recency", "T", "monetary_value", "avg_rating", "avg_gap"):
        extra[c] = np.nan
    for c in ("total_revenue", "return_revenue", "net_revenue"):
        extra[c] = 0.0
    for c in ("n_orders", "n_purchases", "n_returns"):
        extra[c] = 0
    for c, (lo, hi) in bounds.items():
        extra[c] = np.array([lo, hi], dtype=summary[c].dtype)
    out = pd.concat([summary, extra])
    out.attrs = dict(summary.attrs)
    return out


def score_frame(summary: pd.DataFrame, spec: ScoreSpec, *, with_prob: bool | None = None,
                customer_columns: bool = False) -> pd.DataFrame:
    """The per-customer frame (``Scorer.frame``'s columns) for one batch of the summary; with
    ``customer_columns`` also the columns the scored-customers export adds
    (:func:`add_customer_columns`)."""
    n = len(summary)
    padded = _with_bounds(summary, spec.bounds)
    scorer = scores.Scorer(padded, min_age_months=spec.clv.min_age_months)
    prob = None
    if spec.models is not None and (with_prob is None or with_prob):
        table, _ = scores.probabilistic_clv(summary, spec.clv, models=spec.models)
        prob = scorer.align(table)
    result = scorer.score(spec.rfm_weights, spec.behaviour_weights, spec.clv, segment_map=spec.segment_map,
                          top_n=0, prob=prob)
    frame = scorer.frame(result).iloc[:n].reset_index(drop=True)
    # RFM scores and segments from the quintile levels over all customers
    days = frame["days_since_last_purchase"].to_numpy(dtype=np.float64)
    buyers = frame["n_orders"].to_numpy() > 0
    freq = np.where(buyers, frame["n_orders"].to_numpy(dtype=np.float64), np.nan)
    money = np.where(buyers, np.nan_to_num(frame["net_revenue"].to_numpy(dtype=np.float64), nan=0.0), np.nan)
    r = spec.levels["recency"].apply(np.where(buyers, days, np.nan))
    f = spec.levels["frequency"].apply(freq)
    m = spec.levels["monetary"].apply(money)
    fm = scores.fm_score(f, m)
    frame["r_score"], frame["f_score"], frame["m_score"], frame["fm_score"] = r, f, m, fm
    frame["rfm_score"] = scores.weighted_rfm_score(r, f, m, spec.rfm_weights)
    names = np.asarray(spec.segment_map.names, dtype=object)
    frame["rfm_segment"] = names[spec.segment_map.lut[scores.rfm_cells(r, fm)]]
    return add_customer_columns(frame, summary, spec) if customer_columns else frame


def add_customer_columns(frame: pd.DataFrame, summary: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    """The columns ``valuescope score --dataset`` adds after the scores, in its order: review
    sentiment (empty: the review texts are scored by a model trained in the warehouse, see
    :data:`WAREHOUSE_ONLY`), the expected next order date and churn band from the fitted purchase
    model (the default band thresholds), and the first-order value (empty, warehouse only)."""
    from analytics.lifecycle import lifecycle_columns
    from analytics.reviews.columns import SENTIMENT_COLUMNS

    for c in SENTIMENT_COLUMNS:
        frame[c] = np.nan
    work = frame.assign(frequency=summary["frequency"].to_numpy(), T=summary["T"].to_numpy())
    life = lifecycle_columns(work, spec.as_of, bgnbd=spec.models[0] if spec.models else None)
    for c in life.columns:
        frame[c] = life[c].to_numpy()
    frame["first_order_value"] = np.nan
    return frame


#: score columns the Spark engine leaves empty: review sentiment needs the text model the warehouse
#: trains on the dataset's rated reviews, the first-order value the first-order model fitted there
WAREHOUSE_ONLY = ("sentiment_mean", "sentiment_negative_share", "sentiment_latest", "days_since_negative_review",
                  "first_order_value")


def summary_batch(batch) -> pd.DataFrame:
    """An Arrow batch of the Spark summary as the warehouse's pandas summary."""
    from analytics.spark.summary import arrow_to_pandas

    return arrow_to_pandas(batch)


def _arrow_schema(frame: pd.DataFrame):
    import pyarrow as pa

    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_null(t):  # null: a text column empty in the first rows
            t = pa.string()
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)


def score_summary(summary, as_of, unit: str, *, rfm_weights=None, behaviour_weights=None,
                  clv: scores.CLVParams | None = None, rules=None, fallback: str = scores.DEFAULT_FALLBACK,
                  bgnbd: bool = True, dataset: str | None = None, purchase_model: str = "bgnbd",
                  penalizer: float = 0.0, customer_columns: bool = False) -> "SparkScoring":
    """Score every customer of a Spark summary (:func:`analytics.spark.summary.customer_summary`).

    Returns a :class:`SparkScoring` whose ``frame`` is a Spark DataFrame with the columns of
    ``valuescope score --dataset`` (``Scorer.frame``), one row per customer, and the run's
    metadata. Nothing per customer is collected. ``customer_columns``: also the columns of the
    scored-customers export (:func:`add_customer_columns`)."""
    import pyarrow as pa

    from analytics.spark.summary import collect

    p = (clv or scores.CLVParams()).validated()
    scores.normalize_weights(rfm_weights, scores.RFM_KEYS, "RFM weights", scores.DEFAULT_RFM_WEIGHTS)
    scores.normalize_weights(behaviour_weights, scores.BEHAVIOUR_KEYS, "behaviour weights",
                             scores.DEFAULT_BEHAVIOUR_WEIGHTS)
    smap = scores.compile_segment_rules(rules, fallback)
    used_rules = scores.validate_segment_rules(scores.DEFAULT_SEGMENT_RULES if rules is None else rules)
    as_of_day = _as_day(as_of, "the as-of date")
    summary = summary.persist()
    head = _finish(collect(summary.orderBy("customer_id").limit(64)), unit, as_of_day, dataset)
    if head.empty:
        raise scores.ScoreError(f"no customers up to {as_of_day.date()}")

    models, note, fit_notes = None, None, []
    if bgnbd:
        try:
            if float(p.horizon_months) != int(p.horizon_months):
                raise scores.ScoreError("the BG/NBD CLV needs a whole number of months as horizon")
            models, fit_notes = fit_models(summary, unit, purchase_model=purchase_model, penalizer=penalizer)
        except ValueError as exc:
            note = str(exc)
    spec = ScoreSpec(as_of_day, unit, rfm_weights if rfm_weights is not None else dict(scores.DEFAULT_RFM_WEIGHTS),
                     behaviour_weights if behaviour_weights is not None else dict(scores.DEFAULT_BEHAVIOUR_WEIGHTS),
                     p, smap, rfm_levels(summary, as_of_day), behaviour_bounds(summary), models)
    sample = score_frame(head, spec, customer_columns=customer_columns)
    schema = _arrow_schema(sample)
    result_params = scores.Scorer(_with_bounds(head, spec.bounds), min_age_months=p.min_age_months).score(
        spec.rfm_weights, spec.behaviour_weights, p, segment_map=smap, top_n=0).params

    def run(batches):
        for batch in batches:
            if batch.num_rows == 0:
                continue
            part = _finish(summary_batch(batch), unit, as_of_day, dataset)
            frame = score_frame(part, spec, customer_columns=customer_columns)
            yield pa.RecordBatch.from_pandas(frame, schema=schema, preserve_index=False)

    from pyspark.sql.pandas.types import from_arrow_schema

    frame = summary.mapInArrow(run, from_arrow_schema(schema))
    meta: dict[str, Any] = {"dataset": dataset, **result_params, "segment_rules": used_rules,
                            "fallback_segment": smap.fallback, "engine": "spark"}
    if models is not None:
        meta["bgnbd"] = "fitted"
        meta["model_params"] = scores.model_params(models)
        if hasattr(scores, "model_label"):
            meta["clv_model"] = scores.model_label(models)
        fit_note = getattr(models[0], "fit_note_", None)
        if fit_note:
            meta["bgnbd_fit_note"] = fit_note
        if fit_notes:
            meta["fit_notes"] = fit_notes
    else:
        meta["bgnbd"] = f"skipped: {note}" if note else "skipped"
    return SparkScoring(frame, meta, models, note, spec)


@dataclasses.dataclass
class SparkScoring:
    """What :func:`score_summary` returns: the per-customer Spark frame and how it was made."""

    frame: Any
    metadata: dict
    models: Any
    bgnbd_note: str | None
    spec: ScoreSpec

    @property
    def fit_note(self) -> str | None:
        return getattr(self.models[0], "fit_note_", None) if self.models is not None else None
