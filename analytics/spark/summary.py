"""The per-customer summary on Spark: ``analytics.summary.customer_summary``'s definition,
written once with the DataFrame API.

Same columns (``analytics.summary.SUMMARY_COLUMNS``), same conventions (see that
module's docstring): purchase periods are calendar days (same-day purchases
merged), the as-of day is inclusive, ``frequency`` counts repeat purchase days,
``recency`` / ``T`` / ``tenure`` / ``avg_gap`` are whole days between *dates*
divided by the unit. Days are ``to_date`` of UTC timestamps and differences are
``datediff`` of dates, so they count calendar days as DuckDB's ``DATE - DATE``
does (not elapsed 24-hour periods). The plan mirrors the warehouse SQL step by
step: purchases grouped per customer and day (``pday``), then per customer
(``pcust``); every other event (and rated purchases) per customer (``other``);
a full outer join. Tests compare every column for every customer with the
warehouse's (``tests/spark``).
"""
from __future__ import annotations

import pandas as pd

from analytics.summary import SUMMARY_COLUMNS, _as_day, check_unit

COUNT_TYPES = {"n_views": "view", "n_searches": "search", "n_carts": "cart", "n_returns": "return",
               "n_reviews": "review"}
TIMESTAMP_COLUMNS = ("first_purchase", "last_purchase", "first_event", "last_event")


def window_bounds(as_of, calibration_start=None):
    """(as-of day, start day or None, end) as naive datetimes; ``end`` = the day after as-of."""
    as_of_day = _as_day(as_of, "the as-of date")
    start_day = None if calibration_start is None else _as_day(calibration_start, "the calibration start")
    if start_day is not None and start_day > as_of_day:
        from analytics.summary import SummaryError

        raise SummaryError(f"the calibration start {start_day.date()} is after the as-of date {as_of_day.date()}")
    return as_of_day, start_day, as_of_day + pd.Timedelta(days=1)


def _ts(value: pd.Timestamp):
    from pyspark.sql import functions as F

    return F.lit(value.to_pydatetime()).cast("timestamp")  # naive datetime -> UTC session time


def in_window(events, as_of, calibration_start=None):
    """Events up to the end of ``as_of`` (and from ``calibration_start`` on)."""
    from pyspark.sql import functions as F

    _, start_day, end = window_bounds(as_of, calibration_start)
    ev = events.where(F.col("event_time") < _ts(end))
    if start_day is not None:
        ev = ev.where(F.col("event_time") >= _ts(start_day))
    return ev


def customer_summary(events, as_of, unit: str = "days", *, calibration_start=None):
    """Spark DataFrame: one row per customer with ``customer_id`` and ``SUMMARY_COLUMNS``
    (timestamps as ``timestamp_ntz`` in UTC), for events from
    :func:`analytics.spark.events.read_events`."""
    from pyspark.sql import functions as F

    from analytics.spark.events import usable

    unit_days = check_unit(unit)
    as_of_day, _, _ = window_bounds(as_of, calibration_start)
    ev = in_window(usable(events), as_of, calibration_start)
    day = F.to_date("event_time")
    is_purchase = F.col("event_type") == "purchase"

    pday = (ev.where(is_purchase)
            .groupBy("customer_id", day.alias("d"))
            .agg(F.coalesce(F.sum("revenue"), F.lit(0.0)).alias("rev"), F.count(F.lit(1)).alias("n"),
                 F.min("event_time").alias("fe"), F.max("event_time").alias("le")))
    pcust = (pday.groupBy("customer_id")
             .agg(F.min("d").alias("fp"), F.max("d").alias("lp"), F.count(F.lit(1)).alias("p_orders"),
                  F.sum("rev").alias("p_total"), F.min_by("rev", "d").alias("first_rev"),
                  F.sum("n").alias("p_purchases"), F.min("fe").alias("p_fe"), F.max("le").alias("p_le")))
    et = F.col("event_type")
    other = (ev.where(~is_purchase | F.col("rating").isNotNull())
             .groupBy("customer_id")
             .agg(F.min("event_time").alias("o_fe"), F.max("event_time").alias("o_le"),
                  *[F.count(F.when(et == t, 1)).alias("o_" + c) for c, t in COUNT_TYPES.items()],
                  F.sum(F.when(et == "return", F.col("revenue"))).alias("o_return_revenue"),
                  F.sum("rating").alias("srat"), F.count("rating").alias("nrat")))
    c = pcust.join(other, "customer_id", "full_outer")

    n_orders = F.coalesce(F.col("p_orders"), F.lit(0)).cast("long")
    total = F.coalesce(F.col("p_total"), F.lit(0.0)).cast("double")
    returns = F.coalesce(F.col("o_return_revenue"), F.lit(0.0)).cast("double")
    as_of_date = F.lit(as_of_day.date()).cast("date")
    span = F.datediff(F.col("lp"), F.col("fp")).cast("double")
    u = F.lit(float(unit_days))
    first_event = F.least(F.col("p_fe"), F.col("o_fe"))
    last_event = F.greatest(F.col("p_le"), F.col("o_le"))
    out = c.select(
        F.col("customer_id"),
        F.col("fp").cast("timestamp_ntz").alias("first_purchase"),
        F.col("lp").cast("timestamp_ntz").alias("last_purchase"),
        F.when(n_orders > 0, (n_orders - 1).cast("double")).alias("frequency"),
        (span / u).alias("recency"),
        (F.datediff(as_of_date, F.col("fp")).cast("double") / u).alias("T"),
        F.when(n_orders > 1, (total - F.col("first_rev")) / (n_orders - 1))
         .when(n_orders == 1, F.lit(0.0)).alias("monetary_value"),
        total.alias("total_revenue"),
        returns.alias("return_revenue"),
        F.round(total - returns, 6).alias("net_revenue"),  # as the warehouse: float sums' -1e-13 is 0
        n_orders.alias("n_orders"),
        F.coalesce(F.col("o_n_views"), F.lit(0)).cast("long").alias("n_views"),
        F.coalesce(F.col("o_n_searches"), F.lit(0)).cast("long").alias("n_searches"),
        F.coalesce(F.col("o_n_carts"), F.lit(0)).cast("long").alias("n_carts"),
        F.coalesce(F.col("p_purchases"), F.lit(0)).cast("long").alias("n_purchases"),
        F.coalesce(F.col("o_n_returns"), F.lit(0)).cast("long").alias("n_returns"),
        F.coalesce(F.col("o_n_reviews"), F.lit(0)).cast("long").alias("n_reviews"),
        (F.col("srat") / F.when(F.col("nrat") != 0, F.col("nrat"))).cast("double").alias("avg_rating"),
        (F.datediff(as_of_date, F.to_date(first_event)).cast("double") / u).alias("tenure"),
        F.when(n_orders >= 2, span / u / (n_orders - 1)).alias("avg_gap"),
        first_event.cast("timestamp_ntz").alias("first_event"),
        last_event.cast("timestamp_ntz").alias("last_event"),
    )
    assert out.columns == ["customer_id", *SUMMARY_COLUMNS]
    return out


def to_pandas_summary(sdf, unit: str, as_of, dataset: str | None = None) -> pd.DataFrame:
    """A Spark summary collected into the warehouse's pandas form (index ``customer_id``, sorted,
    same dtypes and attrs as ``analytics.summary.customer_summary``). For small results."""
    from analytics.summary import _finish

    df = collect(sdf.orderBy("customer_id"))
    return _finish(df, unit, _as_day(as_of, "the as-of date"), dataset)


def collect(sdf) -> pd.DataFrame:
    """A Spark DataFrame as pandas through Arrow (no per-row Python objects)."""
    table = sdf.toArrow()
    return arrow_to_pandas(table)


def arrow_to_pandas(table) -> pd.DataFrame:
    """pandas with NumPy dtypes: floats with NaN for NULL, naive datetime64 timestamps, str ids."""
    import pyarrow as pa

    cols = {}
    for name, column in zip(table.column_names, table.columns):
        t = column.type
        if pa.types.is_timestamp(t):
            s = pd.Series(column.to_numpy(zero_copy_only=False) if t.tz is None
                          else column.cast(pa.timestamp(t.unit)).to_numpy(zero_copy_only=False))
            cols[name] = s.astype("datetime64[us]")
        elif pa.types.is_date(t):
            cols[name] = pd.Series(column.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False))
        else:
            cols[name] = column.to_pandas()
    return pd.DataFrame(cols)
