"""Predictor inputs on Spark: per-period sequences, per-customer features, and a saved LightGBM
model applied on the executors.

* :func:`sequences`: one row per customer and period with the count of each event type
  and the purchase revenue, the rows of ``analytics.predict.features._SEQ_SQL``: periods of
  7 or 30.4375 days counted back from the cut-off (the last period ends on it), the
  period of an event from the calendar days between its day and the cut-off;
* :func:`features`: the backtest's per-customer feature table
  (``analytics.predict.features.window_data(...).features``), computed per batch of
  customers on the executors by the library's own ``_features`` from the Spark summary
  and that batch's sequences;
* :func:`lightgbm_predictions`: ``LightGBMValueModel.predict_value`` / ``predict_churn``
  per batch (the fitted model travels to the executors pickled; LightGBM boosters pickle
  as their model text).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics.predict.features import PERIOD_DAYS, SEQUENCE_CHANNELS, _features
from analytics.summary import _as_day, _finish
from analytics.warehouse import EVENT_TYPES

#: the feature windows of ``_features`` (last 1, 4 and 13 periods)
WINDOWS = (1, 4, 13)


def sequences(events, cutoff, period: str = "weeks", n_periods: int = 13):
    """Long Spark frame ``customer_id, p, n_view, ..., n_review, purchase_revenue`` (``p`` in
    ``0 .. n_periods-1``, the last period ending on the cut-off), only (customer, period)
    pairs with events."""
    from pyspark.sql import functions as F

    from analytics.spark.events import usable
    from analytics.spark.summary import _ts

    if period not in PERIOD_DAYS:
        raise ValueError(f"unknown period {period!r}: choose weeks or months")
    pdays = PERIOD_DAYS[period]
    cut = _as_day(cutoff, "the cut-off")
    end = cut + pd.Timedelta(days=1)
    start = end - pd.Timedelta(days=math.ceil(n_periods * pdays))
    ev = usable(events).where((F.col("event_time") < _ts(end)) & (F.col("event_time") >= _ts(start)))
    days = F.datediff(F.lit(cut.date()).cast("date"), F.to_date("event_time")).cast("double")
    p = (F.lit(int(n_periods)) - 1 - F.floor(days / F.lit(float(pdays)))).cast("int")
    et = F.col("event_type")
    out = (ev.groupBy("customer_id", p.alias("p"))
           .agg(*[F.count(F.when(et == t, 1)).alias(f"n_{t}") for t in EVENT_TYPES],
                F.coalesce(F.sum(F.when(et == "purchase", F.col("revenue"))), F.lit(0.0)).alias("purchase_revenue")))
    return out.where((F.col("p") >= 0) & (F.col("p") < int(n_periods)))


def _dense(seq_column, n: int, n_periods: int) -> np.ndarray:
    """A list<struct<p, channels...>> Arrow column as a [n, n_periods, channels] float32 array."""
    import pyarrow as pa

    out = np.zeros((n, n_periods, len(SEQUENCE_CHANNELS)), dtype=np.float32)
    arr = seq_column.combine_chunks() if isinstance(seq_column, pa.ChunkedArray) else seq_column
    if len(arr) == 0 or arr.null_count == len(arr):
        return out
    lengths = arr.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(n), lengths)
    flat = arr.flatten()
    p = flat.field("p").to_numpy(zero_copy_only=False).astype(np.int64)
    for j, c in enumerate(SEQUENCE_CHANNELS):
        out[rows, p, j] = flat.field(c).to_numpy(zero_copy_only=False).astype(np.float32)
    return out


#: inter-purchase gap columns (``analytics.predict.features._GAPS_SQL``)
GAP_COLUMNS = ("gap_std", "gap_min", "gap_max", "gap_last")


def gaps(events, cutoff):
    """Spark frame ``customer_id, gap_std, gap_min, gap_max, gap_last``: the days between a
    customer's distinct purchase days up to the cut-off (population standard deviation, extremes
    and the latest gap), only customers with at least two purchase days, as ``_GAPS_SQL``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from analytics.spark.events import usable
    from analytics.spark.summary import _ts

    end = _as_day(cutoff, "the cut-off") + pd.Timedelta(days=1)
    days = (usable(events).where((F.col("event_type") == "purchase") & (F.col("event_time") < _ts(end)))
            .select("customer_id", F.to_date("event_time").alias("day")).distinct())
    w = Window.partitionBy("customer_id").orderBy("day")
    g = days.withColumn("gap", F.datediff("day", F.lag("day").over(w)).cast("double")).where(F.col("gap").isNotNull())
    return g.groupBy("customer_id").agg(
        F.stddev_pop("gap").alias("gap_std"), F.min("gap").alias("gap_min"), F.max("gap").alias("gap_max"),
        F.max_by("gap", "day").alias("gap_last"))


def _feature_batches(events, cutoff, period: str, n_periods: int):
    """(joined Spark frame, per-batch function -> (summary, features)) for :func:`features`."""
    from pyspark.sql import functions as F

    from analytics.spark.summary import arrow_to_pandas, customer_summary

    cut = _as_day(cutoff, "the cut-off")
    seq = sequences(events, cut, period, n_periods)
    packed = seq.groupBy("customer_id").agg(
        F.collect_list(F.struct("p", *SEQUENCE_CHANNELS)).alias("seq"))
    joined = (customer_summary(events, cut, "days").join(packed, "customer_id", "left")
              .join(gaps(events, cut), "customer_id", "left"))

    def batch_features(batch) -> pd.DataFrame:
        summary = _finish(arrow_to_pandas(batch.drop_columns(["seq", *GAP_COLUMNS])), "days", cut, None)
        dense = _dense(batch.column("seq"), batch.num_rows, n_periods)
        gap = pd.DataFrame({c: batch.column(c).to_numpy(zero_copy_only=False) for c in GAP_COLUMNS},
                           index=summary.index).astype(float)
        return _features(summary, dense, cut, gap)

    return joined, batch_features


def features(events, cutoff, period: str = "weeks", n_periods: int = 13):
    """Spark frame ``customer_id`` + the predictor features of every customer with events up to
    the cut-off (``window_data(...).features``'s columns)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    joined, batch_features = _feature_batches(events, cutoff, period, n_periods)
    schema = None

    def run(batches):
        for batch in batches:
            if batch.num_rows:
                f = batch_features(batch).reset_index()
                f.columns = [str(c) for c in f.columns]
                yield pa.RecordBatch.from_pandas(f.astype({"customer_id": object}), schema=schema, preserve_index=False)

    schema = _schema(n_periods)
    return joined.mapInArrow(run, from_arrow_schema(schema))


def _schema(n_periods: int):
    """The Arrow schema of :func:`features` (from ``_features`` on an empty summary)."""
    import pyarrow as pa

    from analytics.summary import SUMMARY_COLUMNS

    empty = pd.DataFrame({c: pd.Series(dtype="datetime64[us]") if c in (
        "first_purchase", "last_purchase", "first_event", "last_event") else pd.Series(dtype="float64")
        for c in SUMMARY_COLUMNS})
    for c in ("n_orders", "n_views", "n_searches", "n_carts", "n_purchases", "n_returns", "n_reviews"):
        empty[c] = empty[c].astype("int64")
    empty.index = pd.Index([], dtype=object, name="customer_id")
    f = _features(empty, np.zeros((0, n_periods, len(SEQUENCE_CHANNELS)), dtype=np.float32),
                  pd.Timestamp("2000-01-01"), pd.DataFrame(columns=list(GAP_COLUMNS), dtype=float))
    fields = [pa.field("customer_id", pa.string())]
    for c in f.columns:
        fields.append(pa.field(str(c), pa.float32() if f[c].dtype == np.float32 else pa.float64()))
    return pa.schema(fields)


def needed_periods(feature_names) -> int:
    """The fewest periods that give every ``*_last_k`` feature a model uses (at least 1)."""
    ks = [k for k in WINDOWS if any(str(n).endswith(f"_last_{k}") for n in feature_names)]
    return max(ks or [1])


def lightgbm_predictions(events, cutoff, model, *, period: str = "weeks", n_periods: int | None = None,
                         value_scale: float = 1.0):
    """Spark frame ``customer_id, predicted_value, churn_probability``: a fitted
    ``LightGBMValueModel`` applied to every customer's features on the executors."""
    import pyarrow as pa
    from pyspark.sql import types as T

    n_periods = int(n_periods or needed_periods(model.feature_names_))
    joined, batch_features = _feature_batches(events, cutoff, period, n_periods)
    schema = pa.schema([pa.field("customer_id", pa.string()), pa.field("predicted_value", pa.float64()),
                        pa.field("churn_probability", pa.float64())])
    scale = float(value_scale)

    def run(batches):
        for batch in batches:
            if not batch.num_rows:
                continue
            f = batch_features(batch)
            yield pa.RecordBatch.from_pydict({
                "customer_id": [str(i) for i in f.index],
                "predicted_value": np.asarray(model.predict_value(f), dtype=np.float64) * scale,
                "churn_probability": np.asarray(model.predict_churn(f), dtype=np.float64),
            }, schema=schema)

    spark_schema = T.StructType([T.StructField("customer_id", T.StringType()),
                                 T.StructField("predicted_value", T.DoubleType()),
                                 T.StructField("churn_probability", T.DoubleType())])
    return joined.mapInArrow(run, spark_schema)


def add_lightgbm_predictions(frame, events, model_dir, cutoff, *, period: str = "weeks",
                             n_periods: int | None = None, value_scale: float = 1.0):
    """The score ``frame`` with ``predicted_value`` and ``churn_probability`` from the LightGBM
    model saved in ``model_dir`` (``LightGBMValueModel.save``), ``prediction_model`` and
    ``prediction_as_of`` (NaN for customers without features, as ``join_predictions``)."""
    from pyspark.sql import functions as F

    from analytics.predict.gbm import LightGBMValueModel

    model = LightGBMValueModel.load(model_dir)
    pred = lightgbm_predictions(events, cutoff, model, period=period, n_periods=n_periods,
                                value_scale=value_scale)
    day = str(_as_day(cutoff, "the as-of date").date())
    return (frame.join(pred, "customer_id", "left")
            .withColumn("prediction_model", F.lit("lightgbm"))
            .withColumn("prediction_as_of", F.lit(day)))
