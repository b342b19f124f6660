"""Backtest data from the warehouse: calibration-only features, per-period
sequences and holdout targets.

For a dataset, a *cut-off* (the last calibration day, inclusive) and a
*target end* (the last holdout day, inclusive):

* the customers are those with any event up to the cut-off (customers who
  first appear in the holdout cannot be scored and are left out);
* ``features`` (one row per customer) come from
  ``analytics.summary.customer_summary(as_of=cut-off)`` plus recency-style
  columns and recent-window aggregates of the sequences: only events up to the
  end of the cut-off day are read;
* ``sequences`` ``[customers, periods, channels]`` hold, per period (weeks of
  7 days or months of 30.4375 days, counted back from the cut-off so the last
  period ends on it), the count of each event type and the purchase revenue;
  computed in DuckDB SQL from events up to the cut-off only;
* targets come from the holdout ``(cut-off, target end]`` only: revenue of
  purchases (``holdout_value``), distinct purchase days (``holdout_purchases``)
  and ``churn`` = no purchase in the holdout.

``backtest_frames`` builds the two windows a backtest needs: a *training*
window that ends at the cut-off (features as of ``cut-off - holdout length``,
targets from the last ``holdout length`` of the calibration period) and the
*test* window (features as of the cut-off, targets from the holdout). Models
learn, validate and stop early on the training window, so the holdout is used
for nothing but the final scoring.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from analytics.summary import customer_summary
from analytics.warehouse import EVENT_TYPES, Warehouse

__all__ = ["MIN_TRAINING_DAYS", "BacktestError", "WindowData", "PERIOD_DAYS", "SEQUENCE_CHANNELS", "window_data", "backtest_frames",
           "data_span"]

PERIOD_DAYS = {"weeks": 7.0, "months": 30.4375}
SEQUENCE_CHANNELS = [*(f"n_{t}" for t in EVENT_TYPES), "purchase_revenue"]
MAX_PERIODS = {"weeks": 104, "months": 36}


class BacktestError(ValueError):
    """A backtest that cannot run on the chosen data or dates (message is user-facing)."""


@dataclasses.dataclass
class WindowData:
    """Features, sequences and targets of one window (rows aligned on ``customers``)."""

    customers: pd.Index
    features: pd.DataFrame
    sequences: np.ndarray
    targets: pd.DataFrame
    cutoff: pd.Timestamp
    target_end: pd.Timestamp
    period: str

    @property
    def horizon_days(self) -> int:
        return int((self.target_end - self.cutoff).days)


def _day(value, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise BacktestError(f"{what} {value!r} is not a date") from exc
    if ts is pd.NaT:
        raise BacktestError(f"{what} is missing")
    return ts.normalize().tz_localize(None) if ts.tzinfo else ts.normalize()


def data_span(wh: Warehouse, dataset: str) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    """(first event day, last event day, number of customers) of a dataset."""
    wh.require_dataset(dataset)
    lo, hi, n = wh.cursor().execute(
        "SELECT min(event_time), max(event_time), count(DISTINCT customer_id) FROM events WHERE dataset = ?",
        [dataset],
    ).fetchone()
    if lo is None:
        raise BacktestError(f"dataset {dataset!r} has no events")
    return pd.Timestamp(lo).normalize(), pd.Timestamp(hi).normalize(), int(n)


_SEQ_SQL = """
SELECT CAST(customer_id AS VARCHAR) AS customer_id,
       CAST(? - 1 - floor(date_diff('day', date_trunc('day', event_time), CAST(? AS TIMESTAMP)) / ?) AS INTEGER) AS p,
       {counts},
       coalesce(sum(revenue) FILTER (WHERE event_type = 'purchase'), 0) AS purchase_revenue
FROM events
WHERE dataset = ? AND event_time < ? AND event_time >= ?
GROUP BY 1, 2
"""


def _sequences(wh, dataset, cutoff, period, n_periods, index) -> np.ndarray:
    pdays = PERIOD_DAYS[period]
    end = cutoff + pd.Timedelta(days=1)
    start = end - pd.Timedelta(days=math.ceil(n_periods * pdays))
    counts = ",\n       ".join(
        f"count(*) FILTER (WHERE event_type = '{t}') AS n_{t}" for t in EVENT_TYPES  # whitelist constants
    )
    df = wh.cursor().execute(
        _SEQ_SQL.format(counts=counts),
        [n_periods, cutoff.to_pydatetime(), pdays, dataset, end.to_pydatetime(), start.to_pydatetime()],
    ).df()
    out = np.zeros((len(index), n_periods, len(SEQUENCE_CHANNELS)), dtype=np.float32)
    if len(df):
        df = df[(df["p"] >= 0) & (df["p"] < n_periods)]
        rows = index.get_indexer(df["customer_id"])
        keep = rows >= 0
        out[rows[keep], df["p"].to_numpy()[keep]] = df.loc[keep, SEQUENCE_CHANNELS].to_numpy(dtype=np.float32)
    return out


def _targets(wh, dataset, cutoff, target_end, index) -> pd.DataFrame:
    df = wh.cursor().execute(
        "SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
        "coalesce(sum(revenue), 0) AS holdout_value, count(DISTINCT date_trunc('day', event_time)) AS holdout_purchases "
        "FROM events WHERE dataset = ? AND event_type = 'purchase' AND event_time >= ? AND event_time < ? "
        "GROUP BY 1",
        [dataset, (cutoff + pd.Timedelta(days=1)).to_pydatetime(), (target_end + pd.Timedelta(days=1)).to_pydatetime()],
    ).df().set_index("customer_id")
    out = pd.DataFrame(index=index)
    out["holdout_value"] = df["holdout_value"].reindex(index).fillna(0.0).astype(float)
    out["holdout_purchases"] = df["holdout_purchases"].reindex(index).fillna(0).astype("int64")
    out["churn"] = (out["holdout_purchases"] == 0).astype(float)
    return out


def window_data(wh: Warehouse, dataset: str, cutoff, target_end, *, period: str = "weeks",
                n_periods: int | None = None) -> WindowData:
    """Features and sequences as of ``cutoff`` and targets over ``(cutoff, target_end]``
    (``target_end=None``: features only, for scoring today's customers)."""
    if period not in PERIOD_DAYS:
        raise BacktestError(f"unknown period {period!r}: choose weeks or months")
    cutoff = _day(cutoff, "the cut-off")
    if target_end is not None:
        target_end = _day(target_end, "the holdout end")
        if target_end <= cutoff:
            raise BacktestError(f"the holdout end {target_end.date()} must be after the cut-off {cutoff.date()}")
    summary = customer_summary(wh, dataset, cutoff, "days", persist=False)
    if summary.empty:
        raise BacktestError(f"no customer of {dataset!r} has events up to {cutoff.date()}")
    first_day, _, _ = data_span(wh, dataset)
    if n_periods is None:
        span = (cutoff - first_day).days + 1
        n_periods = int(min(MAX_PERIODS[period], max(1, math.ceil(span / PERIOD_DAYS[period]))))
    index = summary.index
    seq = _sequences(wh, dataset, cutoff, period, int(n_periods), index)
    feats = _features(summary, seq, cutoff)
    from analytics.reviews.columns import model_sentiment_features  # review sentiment up to the cut-off

    feats = feats.join(model_sentiment_features(wh, dataset, cutoff, index))
    if target_end is None:  # scoring: features only
        targets = pd.DataFrame(index=index)
        target_end = cutoff
    else:
        targets = _targets(wh, dataset, cutoff, target_end, index)
    return WindowData(index, feats, seq, targets, cutoff, target_end, period)


def _features(summary: pd.DataFrame, seq: np.ndarray, cutoff: pd.Timestamp) -> pd.DataFrame:
    f = pd.DataFrame(index=summary.index)
    for col in ("frequency", "recency", "T", "monetary_value", "total_revenue", "return_revenue", "net_revenue",
                "n_orders", "n_views", "n_searches", "n_carts", "n_purchases", "n_returns", "n_reviews",
                "avg_rating", "tenure", "avg_gap"):
        f[col] = summary[col].astype(float)
    f["days_since_last_purchase"] = (cutoff - summary["last_purchase"]).dt.days.astype(float)
    f["days_since_last_event"] = (cutoff - summary["last_event"].dt.normalize()).dt.days.astype(float)
    f["avg_order_value"] = np.where(summary["n_orders"] > 0,
                                    summary["total_revenue"] / summary["n_orders"].clip(lower=1), np.nan)
    f["orders_per_day"] = summary["n_orders"] / (f["tenure"] + 1.0)
    rev = SEQUENCE_CHANNELS.index("purchase_revenue")
    buy = SEQUENCE_CHANNELS.index("n_purchase")
    view = SEQUENCE_CHANNELS.index("n_view")
    for k in (1, 4, 13):
        if k <= seq.shape[1]:
            f[f"revenue_last_{k}"] = seq[:, -k:, rev].sum(axis=1)
            f[f"purchases_last_{k}"] = seq[:, -k:, buy].sum(axis=1)
            f[f"views_last_{k}"] = seq[:, -k:, view].sum(axis=1)
    return f


MIN_TRAINING_DAYS = 28


def backtest_frames(wh: Warehouse, dataset: str, calibration_end, holdout_end, *, period: str = "weeks",
                    n_periods: int | None = None) -> tuple[WindowData, WindowData]:
    """(training window, test window) for a backtest; see the module docstring.

    The training window's target period is as long as the holdout when the
    calibration period holds at least twice that; otherwise (short histories,
    e.g. CDNOW's 9 + 9 months) it is half the calibration span, at least
    MIN_TRAINING_DAYS days, and value predictions must be scaled by
    ``test.horizon_days / train.horizon_days`` (the backtest does; ranking
    metrics are unaffected).

    Raises BacktestError for dates outside the data, too little history before
    the cut-off for a training window, a dataset with fewer than 2 customers,
    or a holdout (or training target window) without any purchase.
    """
    first_day, last_day, n_customers = data_span(wh, dataset)
    cal = _day(calibration_end, "the calibration end")
    hold = _day(holdout_end, "the holdout end")
    if n_customers < 2:
        raise BacktestError(f"dataset {dataset!r} has {n_customers} customer; a backtest needs at least 2")
    if not first_day <= cal < last_day:
        raise BacktestError(
            f"the calibration end {cal.date()} is outside the data (events from {first_day.date()} "
            f"to {last_day.date()}); pick a date inside it, before the last day"
        )
    if hold <= cal:
        raise BacktestError(f"the holdout end {hold.date()} must be after the calibration end {cal.date()}")
    horizon_days = (hold - cal).days
    calibration_days = (cal - first_day).days + 1
    train_days = min(horizon_days, calibration_days // 2)
    if train_days < min(MIN_TRAINING_DAYS, horizon_days):
        raise BacktestError(
            f"too little history before {cal.date()}: only {calibration_days} days of data from "
            f"{first_day.date()}; the models need at least {2 * min(MIN_TRAINING_DAYS, horizon_days)} days "
            "of calibration data to train on; choose a later calibration end"
        )
    train_cut = cal - pd.Timedelta(days=train_days)
    if n_periods is None:
        span = (train_cut - first_day).days + 1
        n_periods = int(min(MAX_PERIODS.get(period, 1), max(1, math.ceil(span / PERIOD_DAYS.get(period, 7.0)))))
    train = window_data(wh, dataset, train_cut, cal, period=period, n_periods=n_periods)
    test = window_data(wh, dataset, cal, hold, period=period, n_periods=n_periods)
    if test.targets["holdout_purchases"].sum() == 0:
        raise BacktestError(f"no purchases between {cal.date()} and {hold.date()}: nothing to evaluate against")
    if train.targets["holdout_purchases"].sum() == 0:
        raise BacktestError(
            f"no purchases in the last {train_days} days before {cal.date()}: the models have nothing to learn from"
        )
    if len(train.customers) < 2:
        raise BacktestError(f"fewer than 2 customers before {train_cut.date()}: too little history to train on")
    return train, test
