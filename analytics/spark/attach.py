"""A customer summary computed on Spark, attached to the warehouse as a dataset the app opens.

``valuescope score --engine spark ... --summary-out DIR`` writes the per-customer summary
(in days, with its as-of day) as Parquet; ``valuescope attach-summary DIR --dataset NAME``
stores it in the warehouse (``attached_summaries`` / ``attached_customers``, one
transaction; re-attaching replaces it) as a dataset *without events*:

* ``analytics.summary.customer_summary`` returns the attached summary at its as-of day
  (recency, T, tenure and avg_gap rescaled to the unit asked for, by the warehouse's
  expressions), so everything on the customer level works there: scores and segments,
  CLV by formula and BG/NBD + Gamma-Gamma, saved segments, campaigns and reports;
* another as-of day, a calibration window or anything that needs raw events (the per-day
  history, overview charts, the explorer's timelines and cohorts, backtests,
  recommendations) raises or shows a message saying the dataset holds a summary only.

Reading the Parquet needs no Spark (DuckDB reads it). Deleting the dataset deletes the
attached rows with it (every table with a ``dataset`` column is cleaned).
"""
from __future__ import annotations

import datetime as _dt
import glob as _glob
import os

import pandas as pd

from analytics.summary import SUMMARY_COLUMNS, SummaryError, _as_day, _finish, check_unit

_RESCALED = ("recency", "T", "tenure")


class AttachError(ValueError):
    """An attach a user can fix (no such file, not a summary, dataset exists with events...)."""


def attached_as_of(wh, dataset: str) -> _dt.date | None:
    """The as-of day of ``dataset``'s attached summary (None when it is an ordinary dataset)."""
    row = wh.cursor().execute("SELECT as_of FROM attached_summaries WHERE dataset = ?", [dataset]).fetchall()
    return row[0][0] if row else None


def attached_info(wh, dataset: str) -> dict | None:
    """``{as_of, source, customers, attached_at}`` of an attached summary, or None."""
    rows = wh.cursor().execute(
        "SELECT as_of, source, n_customers, attached_at FROM attached_summaries WHERE dataset = ?", [dataset]
    ).fetchall()
    if not rows:
        return None
    as_of, source, n, at = rows[0]
    return {"as_of": as_of, "source": source, "customers": int(n), "attached_at": at}


def events_needed_message(dataset: str, as_of) -> str:
    """What pages and commands that need raw events say for an attached summary."""
    return (f"“{dataset}” is a customer summary computed on Spark as of {as_of}, without its events: "
            "this needs the raw events. Scores, segments, campaigns and reports work on it at that date.")


def _parquet_files(path: str) -> list[str]:
    if _glob.has_magic(path):
        files = sorted(_glob.glob(path))
    elif os.path.isdir(path):
        files = sorted(_glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    else:
        files = [path] if os.path.exists(path) else []
    if not files:
        raise AttachError(f"no Parquet file at {path}")
    return files


def attach_summary(wh, path, dataset: str, *, as_of=None, source: str | None = None) -> dict:
    """Store the Spark summary at ``path`` (a folder, glob or file of Parquet written by
    ``--summary-out``) as dataset ``dataset``; returns :func:`attached_info`. The summary's
    own ``as_of`` column gives the day (``as_of``, when given, must agree)."""
    from analytics.ingest.loader import _DATASET_RE

    files = _parquet_files(str(path))
    if not _DATASET_RE.match(dataset or ""):
        raise AttachError(f"not a valid dataset name: {dataset!r}")
    cur = wh.cursor()
    try:
        names = [r[0] for r in cur.execute("DESCRIBE SELECT * FROM read_parquet($f)", {"f": files}).fetchall()]
    except Exception as exc:  # noqa: BLE001 - duckdb raises several error types for bad files
        raise AttachError(f"cannot read {path} as Parquet: {str(exc).splitlines()[0][:200]}") from None
    missing = [c for c in ["customer_id", "as_of", *SUMMARY_COLUMNS] if c not in names]
    if missing:
        raise AttachError(f"{path} is not a customer summary written by --summary-out (missing: {', '.join(missing)})")
    days = cur.execute("SELECT DISTINCT CAST(as_of AS DATE) FROM read_parquet($f)", {"f": files}).fetchall()
    if len(days) != 1:
        raise AttachError(f"{path} holds summaries of {len(days)} as-of days; attach one summary at a time")
    day = days[0][0]
    if as_of is not None and _as_day(as_of, "the as-of date").date() != day:
        raise AttachError(f"the summary at {path} is as of {day}, not {_as_day(as_of, 'the as-of date').date()}")
    cols = ", ".join(["customer_id", *[f'"{c}"' for c in SUMMARY_COLUMNS]])
    with wh.transaction() as tx:
        n_events = tx.execute("SELECT count(*) FROM events WHERE dataset = ?", [dataset]).fetchall()[0][0]
        if n_events:
            raise AttachError(f"dataset {dataset!r} already has {n_events:,} events; attach the summary under a new name")
        tx.execute("DELETE FROM attached_customers WHERE dataset = ?", [dataset])
        tx.execute("DELETE FROM attached_summaries WHERE dataset = ?", [dataset])
        exists = tx.execute("SELECT count(*) FROM datasets WHERE name = ?", [dataset]).fetchall()[0][0]
        if exists:
            tx.execute("UPDATE datasets SET updated_at = current_timestamp WHERE name = ?", [dataset])
        else:
            tx.execute("INSERT INTO datasets (name, description) VALUES (?, ?)",
                       [dataset, f"customer summary computed on Spark as of {day}"])
        tx.execute(f"INSERT INTO attached_customers (dataset, {cols}) SELECT $d, {cols} FROM read_parquet($f)",
                   {"d": dataset, "f": files})
        n = tx.execute("SELECT count(*), count(DISTINCT customer_id) FROM attached_customers WHERE dataset = ?",
                       [dataset]).fetchall()[0]
        if n[0] != n[1]:
            raise AttachError(f"{path} has {n[0] - n[1]:,} repeated customer ids: not one summary")
        tx.execute("INSERT INTO attached_summaries (dataset, as_of, source, n_customers) VALUES (?, ?, ?, ?)",
                   [dataset, day, source or str(path), n[0]])
    return attached_info(wh, dataset)


def attached_summary(wh, dataset: str, as_of, unit: str = "days", *, calibration_start=None):
    """``customer_summary`` of an attached dataset (None when ``dataset`` is not one): the stored
    summary, in ``unit``; SummaryError for another as-of day or a calibration window."""
    day = attached_as_of(wh, dataset)
    if day is None:
        return None
    unit_days = check_unit(unit)
    asked = _as_day(as_of, "the as-of date")
    if asked.date() != day or calibration_start is not None:
        raise SummaryError(
            f"dataset {dataset!r} is a customer summary computed on Spark as of {day}: only that day is "
            "available (no events to summarise at another day or window)")
    cols = ", ".join(["customer_id", *[f'"{c}"' for c in SUMMARY_COLUMNS]])
    df = wh.cursor().execute(f"SELECT {cols} FROM attached_customers WHERE dataset = ? ORDER BY customer_id",
                             [dataset]).df()
    if unit_days != 1.0:  # stored in days: whole days (exact), divided as the warehouse divides
        for c in _RESCALED:
            df[c] = df[c] / unit_days
        df["avg_gap"] = df["recency"] / (df["n_orders"] - 1).where(df["n_orders"] >= 2)
    return _finish(df, unit, pd.Timestamp(day), dataset)
