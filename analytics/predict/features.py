"""Backtest data from the warehouse: calibration-only features, per-period
sequences, holdout targets, and the rolling-origin plan of training windows.

For a dataset, a *cut-off* (the last day whose events a model may read,
inclusive) and a *target end* (the last day of the target period, inclusive):

* the customers are those with any event up to the cut-off (customers who
  first appear later cannot be scored and are left out);
* ``features`` (one row per customer) come from
  ``analytics.summary.customer_summary(as_of=cut-off)`` plus recency-style
  columns, recency/frequency interactions, inter-purchase-time statistics and
  recent-window aggregates of the sequences: only events up to the end of the
  cut-off day are read (:func:`window_data`);
* ``sequences`` ``[customers, periods, channels]`` hold, per period (weeks of
  7 days or months of 30.4375 days, counted back from the cut-off so the last
  period ends on it), the count of each event type and the purchase revenue;
* targets come from ``(cut-off, target end]`` only: revenue of purchases
  (``holdout_value``), distinct purchase days (``holdout_purchases``) and
  ``churn`` = no purchase in that period.

What the statistical models know, as features (:func:`model_features`): at
every cut-off, BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader,
Hardie & Lee 2005, JMR) are fitted on that cut-off's own summary, and each
customer gets the expected purchases over the target length, the probability
of being alive, the expected spend per purchase and their product. A fit that
cannot be made leaves these columns missing (LightGBM handles missing values;
the LSTM sees 0 and a flag), never the whole backtest.

The plan (:func:`backtest_plan`). Let ``H`` be the holdout length and ``D``
the days of data up to the calibration end ``C``:

* the training target length ``h`` is ``H`` when the history allows a
  validation window and a training window before it (``D >= 2 H +
  MIN_HISTORY_DAYS``); otherwise (short histories: CDNOW's 39 weeks before a
  39-week holdout) it is ``(D - MIN_HISTORY_DAYS) // 2``, at least
  ``MIN_TRAINING_DAYS``, and value predictions are stretched from ``h`` to
  ``H`` by the fitted BG/NBD's horizon curve (see ``backtest``);
* rolling origins: training cut-offs ``C - h - j * step`` (``step`` = h / 3
  between 7 and 30 days, at most ``MAX_CUTOFFS``, each with at least
  ``MIN_HISTORY_DAYS`` of data before it), each with targets over the next
  ``h`` days, all inside the calibration period; their examples are stacked;
* the *validation window* is the latest one (cut-off ``C - h``, targets up to
  ``C``); the *validation model* learns only from windows whose targets end
  by that cut-off (purged: no target day shared with the validation window),
  stops early there, and its predictions on the validation window fit the
  calibration step. The final model learns from every window;
* the season and the times are not features: the backtest gives every window a
  *level* (``analytics.predict.backtest.window_levels``) and predicts the
  holdout at the level of the same season a year earlier when the windows reach
  back that far (``MAX_CUTOFFS`` x 30 days do on two years of data).

The holdout ``(C, holdout end]`` is read only to score the predictions.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from analytics import formatting
from analytics.summary import customer_summary
from analytics.warehouse import EVENT_TYPES, Warehouse

__all__ = ["feature_label", "FEATURE_LABELS", "MIN_TRAINING_DAYS", "MIN_HISTORY_DAYS", "MAX_CUTOFFS", "BacktestError", "WindowData", "BacktestPlan",
           "PERIOD_DAYS", "SEQUENCE_CHANNELS", "MODEL_FEATURES", "window_data", "backtest_plan",
           "data_span", "model_features", "plan_shape"]

PERIOD_DAYS = {"weeks": 7.0, "months": 30.4375}
SEQUENCE_CHANNELS = [*(f"n_{t}" for t in EVENT_TYPES), "purchase_revenue"]
#: sequences reach back at most this far (a year of weeks or two of months): older behaviour is in the
#: summary features, and the LSTM's cost grows with the sequence length
MAX_PERIODS = {"weeks": 52, "months": 24}
MIN_TRAINING_DAYS = 28  # shortest training target period
MIN_HISTORY_DAYS = 28  # data before the earliest training cut-off
MAX_CUTOFFS = 15  # rolling origins (15 x 30 days reach the same season a year before the holdout)
MODEL_FEATURES = ["bg_expected_purchases", "bg_p_alive", "gg_expected_spend", "bg_expected_value"]


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
    notes: list = dataclasses.field(default_factory=list)  # e.g. a statistical model that could not be fitted

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
       coalesce(CAST(sum(CAST(revenue AS DECIMAL(38, 6))) FILTER (WHERE event_type = 'purchase') AS DOUBLE), 0) AS purchase_revenue
FROM events
WHERE dataset = ? AND event_time < ? AND event_time >= ?
GROUP BY 1, 2
"""

# gaps between a customer's distinct purchase days up to the cut-off
_GAPS_SQL = """
WITH d AS (
    SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id, date_trunc('day', event_time) AS day
    FROM events WHERE dataset = ? AND event_type = 'purchase' AND event_time < ?
), g AS (
    SELECT customer_id, day,
           date_diff('day', lag(day) OVER (PARTITION BY customer_id ORDER BY day), day) AS gap
    FROM d
)
SELECT customer_id, stddev_pop(gap) AS gap_std, min(gap) AS gap_min, max(gap) AS gap_max,
       arg_max(gap, day) AS gap_last
FROM g WHERE gap IS NOT NULL GROUP BY 1
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


def _gaps(wh, dataset, cutoff, index) -> pd.DataFrame:
    end = (cutoff + pd.Timedelta(days=1)).to_pydatetime()
    df = wh.cursor().execute(_GAPS_SQL, [dataset, end]).df().set_index("customer_id")
    return df.reindex(index).astype(float)


def _targets(wh, dataset, cutoff, target_end, index) -> pd.DataFrame:
    df = wh.cursor().execute(
        "SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
        "coalesce(CAST(sum(CAST(revenue AS DECIMAL(38, 6))) AS DOUBLE), 0) AS holdout_value, count(DISTINCT date_trunc('day', event_time)) AS holdout_purchases "
        "FROM events WHERE dataset = ? AND event_type = 'purchase' AND event_time >= ? AND event_time < ? "
        "GROUP BY 1",
        [dataset, (cutoff + pd.Timedelta(days=1)).to_pydatetime(), (target_end + pd.Timedelta(days=1)).to_pydatetime()],
    ).df().set_index("customer_id")
    out = pd.DataFrame(index=index)
    # refunds are not purchases; a purchase recorded at a negative amount counts as 0 (value cannot be negative)
    out["holdout_value"] = df["holdout_value"].reindex(index).fillna(0.0).astype(float).clip(lower=0.0)
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
            raise BacktestError(f"the holdout end {formatting.date(target_end)} must be after the cut-off {formatting.date(cutoff)}")
    summary = customer_summary(wh, dataset, cutoff, "days", persist=False)
    if summary.empty:
        raise BacktestError(f"no customer of {dataset!r} has events up to {formatting.date(cutoff)}")
    first_day, _, _ = data_span(wh, dataset)
    if n_periods is None:
        span = (cutoff - first_day).days + 1
        n_periods = int(min(MAX_PERIODS[period], max(1, math.ceil(span / PERIOD_DAYS[period]))))
    index = summary.index
    seq = _sequences(wh, dataset, cutoff, period, int(n_periods), index)
    feats = _features(summary, seq, cutoff, _gaps(wh, dataset, cutoff, index))
    from analytics.reviews.columns import model_sentiment_features  # review sentiment up to the cut-off

    feats = feats.join(model_sentiment_features(wh, dataset, cutoff, index))
    if target_end is None:  # scoring: features only
        targets = pd.DataFrame(index=index)
        target_end = cutoff
    else:
        targets = _targets(wh, dataset, cutoff, target_end, index)
    return WindowData(index, feats, seq, targets, cutoff, target_end, period)


def _features(summary: pd.DataFrame, seq: np.ndarray, cutoff: pd.Timestamp, gaps: pd.DataFrame) -> pd.DataFrame:
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
    # recency / frequency interactions (what BG/NBD reads from them, in plain ratios)
    T1 = f["T"] + 1.0
    f["recency_ratio"] = f["recency"] / T1  # 1: bought lately relative to the customer's age
    f["repeat_rate"] = f["frequency"] / T1  # repeat purchase days per day of age
    f["frequency_x_recency_ratio"] = f["frequency"] * f["recency_ratio"]
    f["value_rate"] = f["total_revenue"] / T1
    # inter-purchase times (days): spread, extremes, the latest gap, and how overdue the next purchase is
    for col in ("gap_std", "gap_min", "gap_max", "gap_last"):
        f[col] = gaps[col].to_numpy(dtype=float)
    mean_gap = f["avg_gap"]
    f["gap_cv"] = f["gap_std"] / mean_gap.where(mean_gap > 0)
    f["overdue_ratio"] = f["days_since_last_purchase"] / mean_gap.where(mean_gap > 0)
    rev = SEQUENCE_CHANNELS.index("purchase_revenue")
    buy = SEQUENCE_CHANNELS.index("n_purchase")
    view = SEQUENCE_CHANNELS.index("n_view")
    for k in (1, 4, 13):
        if k <= seq.shape[1]:
            f[f"revenue_last_{k}"] = seq[:, -k:, rev].sum(axis=1)
            f[f"purchases_last_{k}"] = seq[:, -k:, buy].sum(axis=1)
            f[f"views_last_{k}"] = seq[:, -k:, view].sum(axis=1)
    return f



#: the learned models' features in words (the summary's own columns fall back to their column titles)
FEATURE_LABELS = {
    "frequency": "Repeat purchase days", "recency": "Days from first to last purchase",
    "T": "Days since first purchase", "total_revenue": "Gross revenue", "return_revenue": "Refunded revenue",
    "days_since_last_purchase": "Days since last purchase", "days_since_last_event": "Days since last visit",
    "orders_per_day": "Orders per day of tenure", "recency_ratio": "Last purchase late in the customer's life (0-1)",
    "repeat_rate": "Repeat purchase days per day", "frequency_x_recency_ratio": "Repeat purchases x lateness",
    "value_rate": "Revenue per day since first purchase", "gap_std": "Spread of days between purchases",
    "gap_min": "Shortest gap between purchases (days)", "gap_max": "Longest gap between purchases (days)",
    "gap_last": "Latest gap between purchases (days)", "gap_cv": "Irregularity of purchase gaps",
    "overdue_ratio": "Days since last purchase / usual gap", "avg_gap": "Average gap between purchases (days)",
    "bg_expected_purchases": "BG/NBD expected purchases", "bg_p_alive": "BG/NBD probability alive",
    "gg_expected_spend": "Gamma-Gamma expected spend per order", "bg_expected_value": "BG/NBD expected value",
    "days_since_negative_review": "Days since a negative review",
}
_RECENT = {"revenue": "Revenue", "purchases": "Purchases", "views": "Views"}


def feature_label(name: str, period: str = "weeks") -> str:
    """A learned model's feature ``name`` in words, e.g. ``revenue_last_13`` -> "Revenue, last 13 weeks"
    (``period``: the sequence period the features were built with)."""
    what, sep, k = name.rpartition("_last_")
    if sep and what in _RECENT and k.isdigit():
        unit = period[:-1] if int(k) == 1 else period
        return f"{_RECENT[what]}, last {k} {unit}" if int(k) > 1 else f"{_RECENT[what]}, last {unit}"
    if name in FEATURE_LABELS:
        return FEATURE_LABELS[name]
    from analytics import formatting

    return formatting.column_title(name)

# ----------------------------------------------------------------- statistical-model features
#: L2 penalizer of the BG/NBD feature fits: the plain BG/NBD fit ran off to a, b -> infinity or did not converge at
#: most of the bundled sample's cut-offs and was then refitted with 0.001 anyway (1-3 s per cut-off instead of
#: one fit); features need stable, comparable fits more than the unpenalized optimum
FEATURE_PENALIZER = 0.001


def fit_statistical_models(features: pd.DataFrame, random_state=0,
                           penalizer: float = FEATURE_PENALIZER) -> tuple[object | None, object | None, list]:
    """(BG/NBD, Gamma-Gamma, notes) fitted on one window's purchasers (time in weeks: better
    conditioned than days). A model that cannot be fitted is None, with a note saying why."""
    from analytics.clv import fit_bgnbd_robust, fit_gamma_gamma_robust

    notes = []
    x, tx, tt, m = _buyer_inputs(features)
    bg = gg = None
    try:
        bg = fit_bgnbd_robust(x, tx, tt, unit="weeks", random_state=random_state, penalizer=penalizer)
    except (ValueError, ArithmeticError, FloatingPointError) as exc:
        notes.append(f"BG/NBD: {exc}")
    try:  # unpenalized: lifetimes' ridge pulls q below 1 (no expected spend) on the bundled sample
        gg = fit_gamma_gamma_robust(x, m, random_state=random_state)
    except (ValueError, ArithmeticError, FloatingPointError) as exc:
        notes.append(f"Gamma-Gamma: {exc}")
    return bg, gg, notes


def _buyer_inputs(features: pd.DataFrame):
    """(frequency, recency in weeks, T in weeks, monetary value) of a window's purchasers."""
    buyers = (features["n_orders"] > 0).to_numpy()
    f = features.loc[buyers]
    return (f["frequency"].to_numpy(dtype=float), f["recency"].to_numpy(dtype=float) / 7.0,
            f["T"].to_numpy(dtype=float) / 7.0, f["monetary_value"].to_numpy(dtype=float))


def model_features(features: pd.DataFrame, horizon_days: float, models) -> pd.DataFrame:
    """BG/NBD expected purchases over ``horizon_days``, probability alive, Gamma-Gamma expected
    spend and expected value per customer of one window (NaN where a model is missing and
    for customers without a purchase). ``models``: ``(bgnbd, gamma_gamma)`` of that window
    (:func:`fit_statistical_models`)."""
    bg, gg = models[0], models[1]  # a purchase model: BG/NBD or Pareto/NBD (the same API)
    f = features
    out = pd.DataFrame(np.nan, index=f.index, columns=MODEL_FEATURES)
    buyers = (f["n_orders"] > 0).to_numpy()
    x, tx, tt, m = _buyer_inputs(f)
    with np.errstate(all="ignore"):
        if bg is not None:
            out.loc[buyers, "bg_expected_purchases"] = np.asarray(
                bg.expected_purchases(horizon_days / 7.0, x, tx, tt), dtype=float)
            out.loc[buyers, "bg_p_alive"] = np.asarray(bg.expected_probability_alive(x, tx, tt), dtype=float)
        if gg is not None:
            out.loc[buyers, "gg_expected_spend"] = np.asarray(gg.expected_customer_spend(x, m), dtype=float)
    out["bg_expected_value"] = out["bg_expected_purchases"] * out["gg_expected_spend"]
    return out.where(np.isfinite(out.to_numpy()))


# ----------------------------------------------------------------- the plan
@dataclasses.dataclass
class BacktestPlan:
    """What a backtest trains and tests on (see the module docstring).

    ``windows``: training windows, newest first; ``windows[0]`` is the validation window and
    ``purged`` the positions of the windows the validation model learns from. ``learned_error``:
    why the learned models cannot run on these dates (the baselines still do), else None.
    """

    test: WindowData
    windows: list
    purged: list
    target_days: int
    holdout_days: int
    step_days: int
    n_periods: int
    calibration_days: int
    first_purchase: pd.Timestamp
    learned_error: str | None = None

    @property
    def short_history(self) -> bool:
        return self.target_days < self.holdout_days


def _purchase_span(wh: Warehouse, dataset: str):
    return wh.cursor().execute(
        "SELECT min(event_time), max(event_time) FROM events WHERE dataset = ? AND event_type = 'purchase'",
        [dataset]).fetchone()


def plan_shape(first_day, calibration_end, holdout_end, *, max_cutoffs: int | None = None,
               target_days: int | None = None) -> dict:
    """The plan's arithmetic alone (no data read): ``target_days``, ``step_days``, the training
    ``cutoffs`` (newest first; empty when the history is too short for the learned models) and
    the ``purged`` positions. Used by :func:`backtest_plan` and for run-time estimates."""
    first_day, cal, hold = _day(first_day, "the first day"), _day(calibration_end, "the calibration end"), \
        _day(holdout_end, "the holdout end")
    horizon = (hold - cal).days
    calibration_days = (cal - first_day).days + 1
    room = calibration_days - MIN_HISTORY_DAYS  # days available for a validation and a training target period
    if target_days is None:
        h = horizon if room >= 2 * horizon else room // 2
    else:
        h = int(target_days)
    h = max(0, min(h, horizon))
    out = {"target_days": int(h), "holdout_days": int(horizon), "step_days": 0, "cutoffs": [], "purged": []}
    if h < min(MIN_TRAINING_DAYS, horizon) or h < 1 or room < 2 * h:
        return out
    step = int(min(30, max(7, round(h / 3))))
    max_cutoffs = MAX_CUTOFFS if max_cutoffs is None else int(max_cutoffs)
    earliest = first_day + pd.Timedelta(days=MIN_HISTORY_DAYS - 1)
    cutoffs = []
    j = 0
    while len(cutoffs) < max_cutoffs:
        c = cal - pd.Timedelta(days=h + j * step)
        if c < earliest:
            break
        cutoffs.append(c)
        j += 1
    purged = [k for k, c in enumerate(cutoffs) if c + pd.Timedelta(days=h) <= cutoffs[0]]
    if not purged:  # max_cutoffs too small to reach before the validation window: one purged window
        cutoffs.append(cutoffs[0] - pd.Timedelta(days=h))
        purged = [len(cutoffs) - 1]
    out.update(step_days=step, cutoffs=cutoffs, purged=purged)
    return out


def backtest_plan(wh: Warehouse, dataset: str, calibration_end, holdout_end, *, period: str = "weeks",
                  n_periods: int | None = None, max_cutoffs: int | None = None,
                  target_days: int | None = None) -> BacktestPlan:
    """The test window and the rolling-origin training windows of a backtest (module docstring).

    ``target_days`` overrides the training target length (default: the rule above).
    Raises BacktestError, with what to do, for dates outside the data, a calibration end
    before the first purchase, a holdout without purchases or beyond the data, and a
    dataset with fewer than 2 customers. A history too short for the learned models is
    not an error: ``learned_error`` says so and the baselines still run.
    """
    if period not in PERIOD_DAYS:
        raise BacktestError(f"unknown period {period!r}: choose weeks or months")
    first_day, last_day, n_customers = data_span(wh, dataset)
    cal = _day(calibration_end, "the calibration end")
    hold = _day(holdout_end, "the holdout end")
    if n_customers < 2:
        raise BacktestError(f"dataset {dataset!r} has {n_customers} customer; a backtest needs at least 2")
    if cal == last_day:
        raise BacktestError(
            f"the calibration end {formatting.date(cal)} is the last day of data: no day is left for the holdout; "
            f"pick a date before {formatting.date(last_day)} (events from {formatting.date(first_day)} to {formatting.date(last_day)})")
    if not first_day <= cal < last_day:
        raise BacktestError(
            f"the calibration end {formatting.date(cal)} is outside the data (events from {formatting.date(first_day)} "
            f"to {formatting.date(last_day)}); pick a date inside it, before the last day"
        )
    if hold <= cal:
        raise BacktestError(f"the holdout end {formatting.date(hold)} must be after the calibration end {formatting.date(cal)}")
    if hold > last_day:
        raise BacktestError(
            f"the holdout end {formatting.date(hold)} is after the last day of data ({formatting.date(last_day)}): days without "
            f"data would count as days without purchases; pick {formatting.date(last_day)} or earlier")
    first_buy, last_buy = _purchase_span(wh, dataset)
    if first_buy is None:
        raise BacktestError(f"dataset {dataset!r} has no purchases: there is no value to predict or to judge")
    first_buy = pd.Timestamp(first_buy).normalize()
    if first_buy > cal:
        raise BacktestError(
            f"the calibration end {formatting.date(cal)} is before the first purchase ({formatting.date(first_buy)}): no model "
            f"can learn what customers spend from views alone; pick a calibration end after {formatting.date(first_buy)}")
    horizon = (hold - cal).days
    calibration_days = (cal - first_day).days + 1
    if n_periods is None:
        n_periods = int(min(MAX_PERIODS[period], max(1, math.ceil(calibration_days / PERIOD_DAYS[period]))))
    test = window_data(wh, dataset, cal, hold, period=period, n_periods=n_periods)
    if test.targets["holdout_purchases"].sum() == 0:
        later = wh.cursor().execute(
            "SELECT count(DISTINCT customer_id) FROM events WHERE dataset = ? AND event_type = 'purchase' "
            "AND event_time >= ? AND event_time < ?",
            [dataset, (cal + pd.Timedelta(days=1)).to_pydatetime(), (hold + pd.Timedelta(days=1)).to_pydatetime()],
        ).fetchone()[0]
        if later:  # the holdout has purchases, all of them by customers the cut-off had not seen yet
            n_seen = len(test.targets)
            raise BacktestError(
                f"none of the {n_seen:,} customer{'' if n_seen == 1 else 's'} seen by {formatting.date(cal)} bought between "
                f"{formatting.date((cal + pd.Timedelta(days=1)))} and {formatting.date(hold)}: that period's purchases are by "
                f"{later:,} customer{'' if later == 1 else 's'} who arrived later, whom a backtest does not "
                "predict; pick a later calibration end")
        raise BacktestError(
            f"no purchases between {formatting.date((cal + pd.Timedelta(days=1)))} and {formatting.date(hold)}: there is nothing to "
            f"judge the predictions against (the last purchase is on {formatting.date(pd.Timestamp(last_buy))}); "
            "pick a holdout that contains purchases")
    shape = plan_shape(first_day, cal, hold, max_cutoffs=max_cutoffs, target_days=target_days)
    h = shape["target_days"]
    plan = BacktestPlan(test=test, windows=[], purged=[], target_days=int(h), holdout_days=int(horizon),
                        step_days=0, n_periods=int(n_periods), calibration_days=calibration_days,
                        first_purchase=first_buy)
    least = min(MIN_TRAINING_DAYS, horizon)
    if not shape["cutoffs"]:
        days = f"{calibration_days} day{'' if calibration_days == 1 else 's'}"
        plan.learned_error = (
            f"too little history before {formatting.date(cal)} for the learned models: {days} of data "
            f"from {formatting.date(first_day)}; they need at least {2 * least + MIN_HISTORY_DAYS} days (a training and a "
            f"validation period of {least} days each, after {MIN_HISTORY_DAYS} days of history); the naive and "
            "BG/NBD baselines below need no training period. Choose a later calibration end for LightGBM and the LSTM")
        return plan
    step, cutoffs, purged = shape["step_days"], shape["cutoffs"], shape["purged"]
    windows = [window_data(wh, dataset, c, c + pd.Timedelta(days=h), period=period, n_periods=n_periods)
               for c in cutoffs]
    plan.windows, plan.purged, plan.step_days = windows, purged, step
    if sum(int(w.targets["holdout_purchases"].sum()) for w in windows) == 0:
        plan.learned_error = (f"no purchases in the {h}-day target periods before {formatting.date(cal)}: the learned models "
                              "have nothing to learn from; the baselines below still ran")
    elif windows[0].targets["holdout_purchases"].sum() == 0:
        plan.learned_error = (f"no purchases in the last {h} days before {formatting.date(cal)} (the validation period): "
                              "the learned models cannot be checked or calibrated; the baselines below still ran")
    return plan
