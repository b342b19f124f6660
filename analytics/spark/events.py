"""Reading events for the Spark engine: Parquet (or any Spark source) in the warehouse's layout.

The input is the canonical event layout that ``valuescope export --dataset NAME
--out FILE.parquet`` writes: ``customer_id``, ``event_time``, ``event_type``
(required) and ``revenue``, ``rating`` (optional; missing means NULL), any
other columns ignored. ``event_time`` may be

* a timestamp with a time zone (Parquet ``isAdjustedToUTC``, e.g. pandas
  ``datetime64[ns, Europe/Berlin]``): the instant, taken in UTC;
* a timestamp without one (what the warehouse exports): the wall-clock time as is;
* a date (midnight), or ISO-8601 text, with an offset (``+02:00``, ``Z``: the
  instant in UTC) or without (wall clock).

So a calendar day is always a UTC day, the day the warehouse gives the same
events when they are loaded with their offsets (ingestion converts ``%z``
timestamps to UTC). Event types are compared lower-cased and trimmed.
Rows without a customer id, event time or event type (or with text that is not
a time) cannot be placed and are left out; :func:`event_span` counts them.
"""
from __future__ import annotations

import glob as _glob
import os
from urllib.parse import urlparse

from analytics.spark.session import SparkEngineError

REQUIRED_COLUMNS = ("customer_id", "event_time", "event_type")
OPTIONAL_COLUMNS = ("revenue", "rating")


def _is_local(path: str) -> bool:
    scheme = urlparse(path).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def expand_paths(paths) -> list[str]:
    """The input paths (a glob, a folder or a file, or several); for local paths, a clear
    error when a pattern matches nothing (remote paths are left to Spark to list)."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise SparkEngineError("no input given: pass --events 'PATH/*.parquet'")
    out = []
    for p in map(str, items):
        if _is_local(p):
            local = urlparse(p).path if p.startswith("file:") else p
            if not _glob.has_magic(local):
                if not os.path.exists(local):
                    raise SparkEngineError(f"no such file or folder: {p}")
            elif not _glob.glob(local):
                raise SparkEngineError(f"the pattern {p!r} matches no file")
        out.append(p)
    return out


def check_local_schema(paths) -> None:
    """For local Parquet input: the required columns are in the first file's schema (read with
    pyarrow, before any JVM starts); SparkEngineError naming the missing ones."""
    import pyarrow.parquet as pq

    for p in paths:
        if not _is_local(p):
            return
        local = urlparse(p).path if p.startswith("file:") else p
        files = sorted(_glob.glob(local)) if _glob.has_magic(local) else [local]
        files = [f for f in files if os.path.isfile(f)] or sorted(
            f for d in files if os.path.isdir(d) for f in _glob.glob(os.path.join(d, "**", "*.parquet"), recursive=True))
        if not files:
            continue
        try:
            names = {n.lower() for n in pq.read_schema(files[0]).names}
        except Exception as exc:  # noqa: BLE001 - not Parquet, truncated...
            raise SparkEngineError(f"{files[0]} is not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
        _require_columns(names, files[0])


def _require_columns(names, where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        have = ", ".join(sorted(names)) or "none"
        raise SparkEngineError(
            f"{where} lacks the required column(s) {', '.join(missing)} (it has: {have}); "
            "write it with `valuescope export --dataset NAME --out FILE.parquet` or rename the columns")


def read_events(spark, paths, *, fmt: str = "parquet"):
    """The events at ``paths`` as a DataFrame with the engine's columns and types:
    ``customer_id`` string, ``event_time`` timestamp (UTC session), ``event_type`` string
    (lower-case), ``revenue`` and ``rating`` double. SparkEngineError for paths that match
    nothing, unreadable files and missing required columns."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    files = expand_paths(paths)
    try:
        df = spark.read.format(fmt).load(files)
        fields = {f.name.lower(): f for f in df.schema.fields}
    except AnalysisException as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "PATH_NOT_FOUND" in msg or "does not exist" in msg.lower():
            raise SparkEngineError(f"the input {', '.join(files)} matches no file") from None
        raise SparkEngineError(f"cannot read {', '.join(files)} as {fmt}: {msg[:300]}") from None
    except Exception as exc:  # noqa: BLE001 - corrupt files surface as JVM errors
        raise SparkEngineError(f"cannot read {', '.join(files)} as {fmt}: {str(exc).splitlines()[0][:300]}") from None
    _require_columns(set(fields), "the input")

    def col(name):
        return F.col(f"`{fields[name].name}`")

    tf = fields["event_time"].dataType
    if isinstance(tf, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        # NTZ and dates cast in the UTC session time zone: the wall-clock value is kept
        when = col("event_time").cast("timestamp")
    elif isinstance(tf, T.StringType):
        when = F.to_timestamp(F.trim(col("event_time")))
    else:
        raise SparkEngineError(
            f"event_time is {tf.simpleString()}; it must be a timestamp, a date or ISO-8601 text")
    select = [
        col("customer_id").cast("string").alias("customer_id"),
        when.alias("event_time"),
        F.lower(F.trim(col("event_type").cast("string"))).alias("event_type"),
    ]
    for name in OPTIONAL_COLUMNS:
        if name in fields:
            if not isinstance(fields[name].dataType, (T.NumericType, T.StringType, T.NullType)):
                raise SparkEngineError(f"{name} is {fields[name].dataType.simpleString()}; it must be a number")
            select.append(col(name).cast("double").alias(name))
        else:
            select.append(F.lit(None).cast("double").alias(name))
    return df.select(*select)


def usable(events):
    """Rows the engine can place (customer id, event time and event type present)."""
    from pyspark.sql import functions as F

    return events.where(F.col("customer_id").isNotNull() & F.col("event_time").isNotNull()
                        & F.col("event_type").isNotNull())


def event_span(events) -> dict:
    """``{'rows', 'unusable', 'first', 'last'}`` of the events (first/last: event times of
    usable rows, naive UTC datetimes, None without any)."""
    from pyspark.sql import functions as F

    ok = F.col("customer_id").isNotNull() & F.col("event_time").isNotNull() & F.col("event_type").isNotNull()
    row = events.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(ok, 0).otherwise(1)).alias("unusable"),
        F.min(F.when(ok, F.col("event_time").cast("timestamp_ntz"))).alias("first"),
        F.max(F.when(ok, F.col("event_time").cast("timestamp_ntz"))).alias("last"),
    ).collect()[0]
    return {"rows": int(row["rows"]), "unusable": int(row["unusable"] or 0), "first": row["first"],
            "last": row["last"]}
