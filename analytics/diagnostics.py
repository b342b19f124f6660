"""Purchase-model diagnostics a user can read: matrices, a calibration/holdout check,
and which purchase model (BG/NBD or Pareto/NBD) predicts a dataset better.

* ``expected_purchases_matrix`` / ``probability_alive_matrix``: model output over a
  grid of frequency x recency for customers of a given age T (the heatmaps of
  Fader, Hardie & Lee 2005 and lifetimes' ``plot_frequency_recency_matrix``).
* ``calibration_holdout_check`` (warehouse) / ``holdout_check_from_transactions``
  (a DataFrame): the user picks a cut-off date; the purchase model (BG/NBD by
  default, or Pareto/NBD) is fitted on the calibration period (purchases up to the
  cut-off, customers who first bought by then), and its predictions are set against
  what these customers actually did afterwards: mean holdout purchases by
  calibration frequency (the paper's Figure 4) and cumulative repeat purchases over
  time by week (Figures 1 and 3).
* ``compare_purchase_models`` (warehouse) / ``compare_purchase_models_from_transactions``:
  both purchase models on the same calibration/holdout split of the dataset's own
  purchases; ``best`` is the one whose per-customer holdout predictions have the lower
  root-mean-squared error (the models predict means, and RMSE is the error a mean
  minimises), ties (within 0.5 %) going to BG/NBD. The result is plain data
  (``to_dict``) for the preparation step to store and the Value page to default to.
* ``figure_*``: plotly figures of the above for the Value page (no streamlit here).

Purchases are counted as purchase days (same-day purchases merged), as in
``analytics.summary``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.clv import (
    PURCHASE_MODEL_LABELS,
    PURCHASE_MODELS,
    BetaGeoModel,
    ModelFitError,
    fit_purchase_model_robust,
    purchase_model_key,
)
from analytics.summary import TIME_UNITS, SummaryError, _as_day, check_unit


# ------------------------------------------------------------------ matrices
def _grid(model, max_frequency: int, T: float, n_recency: int):
    model._check_fitted()
    max_frequency = int(max_frequency)
    if max_frequency < 0 or not np.isfinite(T) or T <= 0:
        raise ValueError("the matrix needs max_frequency >= 0 and a customer age T > 0")
    freqs = np.arange(0, max_frequency + 1, dtype="float64")
    rec = np.linspace(0.0, float(T), max(2, int(n_recency)))
    X, R = np.meshgrid(freqs, rec, indexing="ij")
    return freqs, rec, X, R


def expected_purchases_matrix(model, max_frequency: int, T: float, t: float = 1.0,
                              n_recency: int = 40) -> pd.DataFrame:
    """Expected purchases in the next ``t`` (model unit) by frequency (rows) x recency (columns).

    All cells are for customers of age ``T`` (usually the largest T in the data);
    cells with frequency 0 and recency > 0 are impossible and are NaN.
    """
    freqs, rec, X, R = _grid(model, max_frequency, T, n_recency)
    vals = np.asarray(model.expected_purchases(t, X.ravel(), R.ravel(), np.full(X.size, float(T))))
    vals = vals.reshape(X.shape)
    vals[(X == 0) & (R > 0)] = np.nan
    df = pd.DataFrame(vals, index=pd.Index(freqs.astype(int), name="frequency"),
                      columns=pd.Index(np.round(rec, 3), name="recency"))
    df.attrs = {"unit": model.unit_, "T": float(T), "t": float(t), "what": "expected_purchases"}
    return df


def probability_alive_matrix(model, max_frequency: int, T: float,
                             n_recency: int = 40) -> pd.DataFrame:
    """P(alive) by frequency (rows) x recency (columns) for customers of age ``T``
    (any purchase model: ``BetaGeoModel`` or ``ParetoNBDModel``)."""
    freqs, rec, X, R = _grid(model, max_frequency, T, n_recency)
    vals = np.asarray(model.expected_probability_alive(X.ravel(), R.ravel(), np.full(X.size, float(T))))
    vals = vals.reshape(X.shape)
    vals[(X == 0) & (R > 0)] = np.nan
    df = pd.DataFrame(vals, index=pd.Index(freqs.astype(int), name="frequency"),
                      columns=pd.Index(np.round(rec, 3), name="recency"))
    df.attrs = {"unit": model.unit_, "T": float(T), "what": "probability_alive"}
    return df


# ------------------------------------------------------------------ holdout check
@dataclass
class HoldoutCheck:
    """Result of a calibration/holdout check (all times in ``unit``)."""

    model: object  # the fitted purchase model (BetaGeoModel or ParetoNBDModel)
    unit: str
    cutoff: pd.Timestamp
    end: pd.Timestamp
    customers: pd.DataFrame  # per customer: frequency/recency/T (calibration), holdout purchases, predicted
    by_frequency: pd.DataFrame  # calibration frequency group: n, actual and predicted mean holdout purchases
    cumulative: pd.DataFrame  # by week: actual and predicted cumulative repeat purchases
    totals: dict = field(default_factory=dict)


_PURCHASE_DAYS = """
WITH pd AS (
    SELECT customer_id, date_trunc('day', event_time) AS d
    FROM {source}
    WHERE {where}
    GROUP BY customer_id, d
),
f AS (
    SELECT customer_id, min(d) AS first_purchase
    FROM pd
    GROUP BY customer_id
    HAVING min(d) <= $cutoff
)
"""

_CUSTOMERS_SQL = _PURCHASE_DAYS + """
SELECT CAST(pd.customer_id AS VARCHAR) AS customer_id,
       min(pd.d) AS first_purchase,
       CAST(count(*) FILTER (WHERE pd.d <= $cutoff) - 1 AS DOUBLE) AS frequency,
       date_diff('day', min(pd.d), max(pd.d) FILTER (WHERE pd.d <= $cutoff)) / $unit_days AS recency,
       date_diff('day', min(pd.d), $cutoff) / $unit_days AS "T",
       CAST(count(*) FILTER (WHERE pd.d > $cutoff) AS DOUBLE) AS holdout_purchases
FROM pd SEMI JOIN f ON pd.customer_id = f.customer_id
GROUP BY pd.customer_id
ORDER BY pd.customer_id
"""

_REPEATS_SQL = _PURCHASE_DAYS + """
SELECT pd.d, count(*) AS n
FROM pd JOIN f ON pd.customer_id = f.customer_id
WHERE pd.d > f.first_purchase
GROUP BY pd.d
ORDER BY pd.d
"""


def _holdout_data(con, source: str, where: str, bind: dict, cutoff: pd.Timestamp, end: pd.Timestamp | None,
                  unit: str, start: pd.Timestamp | None):
    """Per customer (first purchase by the cut-off): calibration frequency/recency/T and holdout
    purchases; the repeat purchases by day; the end and the holdout length."""
    unit_days = check_unit(unit)
    bind = dict(bind)
    if start is not None:
        where += " AND event_time >= $start"
        bind["start"] = start.to_pydatetime()
    first, last = con.execute(f"SELECT min(event_time), max(event_time) FROM {source} WHERE {where}", bind).fetchone()
    if last is None:
        raise SummaryError("no purchases in this dataset")
    if end is None:
        end = pd.Timestamp(last).normalize()
    if cutoff >= end:
        raise SummaryError(
            f"the cut-off {cutoff.date()} must be before the end of the data / holdout end {end.date()}"
        )
    if cutoff < pd.Timestamp(first).normalize():
        raise SummaryError(
            f"the cut-off {cutoff.date()} is before the first purchase ({pd.Timestamp(first).date()}): fewer "
            f"than 2 customers bought by then - pick a cut-off between {pd.Timestamp(first).date()} and {end.date()}"
        )
    where += " AND event_time < $end_excl"
    bind.update(end_excl=(end + pd.Timedelta(days=1)).to_pydatetime(), cutoff=cutoff.to_pydatetime())
    customers = con.execute(_CUSTOMERS_SQL.format(source=source, where=where),
                            {**bind, "unit_days": unit_days}).df().set_index("customer_id")
    if len(customers) < 2:
        raise SummaryError(
            f"fewer than 2 customers bought by the cut-off {cutoff.date()}: pick a later cut-off"
        )
    repeats = con.execute(_REPEATS_SQL.format(source=source, where=where), bind).df()
    customers["first_purchase"] = pd.to_datetime(customers["first_purchase"])
    duration = (end - cutoff).days / unit_days
    return customers, repeats, end, duration


def _fit_calibration(customers: pd.DataFrame, unit: str, purchase_model: str, penalizer: float):
    try:
        return fit_purchase_model_robust(purchase_model, customers["frequency"], customers["recency"],
                                         customers["T"], unit=unit, random_state=0, penalizer=penalizer)
    except ModelFitError as exc:
        raise ModelFitError(
            f"the {PURCHASE_MODEL_LABELS[purchase_model]} model could not be fitted on the calibration "
            f"period: {exc}") from None


def _check(con, source: str, where: str, bind: dict, cutoff: pd.Timestamp, end: pd.Timestamp | None,
           unit: str, start: pd.Timestamp | None, penalizer: float, max_frequency_group: int,
           purchase_model: str = "bgnbd") -> HoldoutCheck:
    purchase_model = purchase_model_key(purchase_model)
    unit_days = check_unit(unit)
    customers, repeats, end, duration = _holdout_data(con, source, where, bind, cutoff, end, unit, start)
    cohort = customers["first_purchase"]
    model = _fit_calibration(customers, unit, purchase_model, penalizer)
    customers["predicted_purchases"] = np.asarray(model.expected_purchases(
        duration, customers["frequency"].to_numpy(), customers["recency"].to_numpy(),
        customers["T"].to_numpy()))
    customers.attrs = {"unit": unit, "cutoff": cutoff, "end": end, "duration": duration}

    # by calibration frequency group (0, 1, ..., k-1, "k+")
    k = int(max_frequency_group)
    grp = customers["frequency"].clip(upper=k).astype(int)
    by = customers.groupby(grp).agg(
        customers=("frequency", "size"),
        actual=("holdout_purchases", "mean"),
        predicted=("predicted_purchases", "mean"),
    )
    by.index = [str(i) if i < k else f"{k}+" for i in by.index]
    by.index.name = "calibration_frequency"

    # cumulative repeat purchases by week (calendar weeks from the first day of the data)
    start_day = cohort.min()
    n_weeks = int(np.ceil(((end - start_day).days + 1) / 7.0))
    week_end = start_day + pd.to_timedelta(np.arange(1, n_weeks + 1) * 7 - 1, unit="D")
    week_end = week_end.where(week_end <= end, end)
    repeat_days = pd.to_datetime(repeats["d"]).to_numpy()
    cum_actual = np.searchsorted(repeat_days, week_end.to_numpy(), side="right")
    cum_counts = np.concatenate([[0], np.cumsum(repeats["n"].to_numpy())])[cum_actual]
    cohorts = cohort.value_counts()
    c_day = pd.DatetimeIndex(cohorts.index).to_numpy()
    c_n = cohorts.to_numpy(dtype="float64")
    predicted = []
    for we in week_end:
        age = ((np.datetime64(we) - c_day) / np.timedelta64(1, "D")).astype("float64") / unit_days
        # a customer's age at the end of day `we` counts from her first purchase day
        age = np.clip(age, 0.0, None)
        predicted.append(float(np.dot(c_n, model.expected_purchases_new_customer(age))))
    cumulative = pd.DataFrame({
        "week_end": week_end, "actual": cum_counts.astype("float64"), "predicted": predicted,
        "period": np.where(week_end <= cutoff, "calibration", "holdout"),
    })
    cumulative.attrs = {"cutoff": cutoff}
    tot_a = float(customers["holdout_purchases"].sum())
    tot_p = float(customers["predicted_purchases"].sum())
    totals = {"actual_holdout_purchases": tot_a, "predicted_holdout_purchases": tot_p,
              "relative_error": (tot_p - tot_a) / tot_a if tot_a else float("nan"),
              "customers": int(len(customers)), "holdout_length": duration}
    return HoldoutCheck(model=model, unit=unit, cutoff=cutoff, end=end, customers=customers,
                        by_frequency=by, cumulative=cumulative, totals=totals)


def calibration_holdout_check(wh, dataset: str, cutoff, end=None, unit: str = "weeks", *,
                              calibration_start=None, penalizer: float = 0.0,
                              max_frequency_group: int = 7, purchase_model: str = "bgnbd") -> HoldoutCheck:
    """Fit the purchase model (``"bgnbd"`` or ``"paretonbd"``) on purchases up to ``cutoff``
    and compare with what followed up to ``end``.

    ``end`` defaults to the dataset's last purchase day. Only customers whose first
    purchase is on or before the cut-off are followed (a fixed cohort, as in the paper).
    The fit starts from ``penalizer`` and falls back to small penalizers when the plain fit
    fails or runs off (``check.model.fit_note_`` says so).
    """
    check_unit(unit)
    wh.require_dataset(dataset)
    cutoff_day = _as_day(cutoff, "the cut-off date")
    end_day = None if end is None else _as_day(end, "the holdout end date")
    start_day = None if calibration_start is None else _as_day(calibration_start, "the calibration start")
    return _check(wh.cursor(), "events", "dataset = $dataset AND event_type = 'purchase'",
                  {"dataset": dataset}, cutoff_day, end_day, unit, start_day, penalizer,
                  max_frequency_group, purchase_model)


def _transactions_con(df: pd.DataFrame, customer_col: str, time_col: str):
    import duckdb

    for col in (customer_col, time_col):
        if col not in df.columns:
            raise SummaryError(f"no column {col!r} in the transactions")
    frame = pd.DataFrame({"customer_id": df[customer_col].astype(str),
                          "event_time": pd.to_datetime(df[time_col]).astype("datetime64[us]")})
    con = duckdb.connect(":memory:")
    con.register("tx_frame", frame)
    return con


def holdout_check_from_transactions(df: pd.DataFrame, customer_col: str, time_col: str, cutoff,
                                    end=None, unit: str = "weeks", *, penalizer: float = 0.0,
                                    max_frequency_group: int = 7, purchase_model: str = "bgnbd") -> HoldoutCheck:
    """The same check on a DataFrame where every row is a purchase."""
    check_unit(unit)
    con = _transactions_con(df, customer_col, time_col)
    try:
        return _check(con, "tx_frame", "true", {}, _as_day(cutoff, "the cut-off date"),
                      None if end is None else _as_day(end, "the holdout end date"), unit, None,
                      penalizer, max_frequency_group, purchase_model)
    finally:
        con.close()


# ------------------------------------------------------------------ which purchase model
@dataclass
class PurchaseModelComparison:
    """BG/NBD vs Pareto/NBD on one calibration/holdout split (times in ``unit``).

    ``best``: the model key (``"bgnbd"`` / ``"paretonbd"``) to default to; ``metrics``: one
    row per model (index = key) with ``label``, ``log_likelihood`` (calibration, total),
    ``rmse`` and ``mae`` of the per-customer holdout purchases, ``predicted_total``,
    ``actual_total``, ``total_error`` (relative), ``fit_seconds``, ``penalizer``,
    ``fit_note`` and ``error`` (why a model could not be fitted, else None); ``reason``:
    one sentence for the page.
    """

    best: str
    metrics: pd.DataFrame
    cutoff: pd.Timestamp
    end: pd.Timestamp
    unit: str
    customers: int
    holdout_length: float
    reason: str

    def to_dict(self) -> dict:
        """JSON-ready (for storing with a data version)."""
        rows = {k: {c: (None if isinstance(v, float) and not np.isfinite(v) else v)
                    for c, v in row.items()} for k, row in self.metrics.to_dict(orient="index").items()}
        return {"best": self.best, "metrics": rows, "cutoff": str(self.cutoff.date()), "end": str(self.end.date()),
                "unit": self.unit, "customers": self.customers, "holdout_length": self.holdout_length,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict) -> "PurchaseModelComparison":
        metrics = pd.DataFrame.from_dict(d["metrics"], orient="index")
        return cls(d["best"], metrics, pd.Timestamp(d["cutoff"]), pd.Timestamp(d["end"]), d["unit"],
                   int(d["customers"]), float(d["holdout_length"]), d["reason"])


TIE_TOLERANCE = 0.005  # RMSEs within 0.5 % of each other: keep BG/NBD (the long-standing default)


def _default_cutoff(con, source: str, where: str, bind: dict) -> pd.Timestamp:
    first, last = con.execute(f"SELECT min(event_time), max(event_time) FROM {source} WHERE {where}", bind).fetchone()
    if last is None:
        raise SummaryError("no purchases in this dataset")
    first, last = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()
    span = (last - first).days
    if span < 2:
        raise SummaryError("the purchases cover less than two days: too short to compare purchase models")
    # the middle of the purchase history: calibration and holdout of equal length, as in the
    # CDNOW studies (39 + 39 weeks)
    return first + pd.Timedelta(days=span // 2)


def _compare(con, source: str, where: str, bind: dict, cutoff, end, unit: str, penalizer: float,
             models) -> PurchaseModelComparison:
    import time

    check_unit(unit)
    cutoff_day = _default_cutoff(con, source, where, bind) if cutoff is None else _as_day(cutoff, "the cut-off date")
    end_day = None if end is None else _as_day(end, "the holdout end date")
    customers, _repeats, end_day, duration = _holdout_data(con, source, where, bind, cutoff_day, end_day,
                                                           unit, None)
    x, tx, tt = (customers[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    actual = customers["holdout_purchases"].to_numpy(dtype=float)
    rows = {}
    for key in models:
        key = purchase_model_key(key)
        row = {"label": PURCHASE_MODEL_LABELS[key], "log_likelihood": np.nan, "rmse": np.nan, "mae": np.nan,
               "predicted_total": np.nan, "actual_total": float(actual.sum()), "total_error": np.nan,
               "fit_seconds": np.nan, "penalizer": np.nan, "fit_note": None, "error": None}
        t0 = time.perf_counter()
        try:
            model = _fit_calibration(customers, unit, key, penalizer)
        except ModelFitError as exc:
            row["error"] = str(exc)
            rows[key] = row
            continue
        row["fit_seconds"] = time.perf_counter() - t0
        pred = np.asarray(model.expected_purchases(duration, x, tx, tt), dtype=float)
        err = pred - actual
        row.update(log_likelihood=model.log_likelihood_, rmse=float(np.sqrt(np.mean(err ** 2))),
                   mae=float(np.mean(np.abs(err))), predicted_total=float(pred.sum()),
                   total_error=float((pred.sum() - actual.sum()) / actual.sum()) if actual.sum() else np.nan,
                   penalizer=model.penalizer_, fit_note=model.fit_note_)
        rows[key] = row
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    ok = metrics[metrics["error"].isna()]
    if ok.empty:
        raise ModelFitError("neither purchase model could be fitted on the calibration period: "
                            + "; ".join(f"{r['label']}: {r['error']}" for _, r in metrics.iterrows()))
    best = str(ok["rmse"].idxmin())
    if "bgnbd" in ok.index and best != "bgnbd" and ok.loc[best, "rmse"] >= ok.loc["bgnbd", "rmse"] * (1 - TIE_TOLERANCE):
        best = "bgnbd"
    window = (f"fitted on purchases up to {cutoff_day.date()} and checked on the {duration:g} {unit} "
              f"after it ({len(customers):,} customers)")
    if len(ok) == 1:
        other = metrics[metrics["error"].notna()].iloc[0]
        reason = f"{ok.loc[best, 'label']} is used: {other['label']} could not be fitted ({other['error']})"
    else:
        loser = [k for k in ok.index if k != best][0]
        b, lo = ok.loc[best], ok.loc[loser]
        errors = (f"typical error {b['rmse']:.3f} vs {lo['rmse']:.3f} purchases per customer, {window}")
        if b["rmse"] < lo["rmse"] * (1 - TIE_TOLERANCE):
            reason = f"{b['label']} predicted each customer's purchases better than {lo['label']}: {errors}"
        else:
            reason = (f"{b['label']} and {lo['label']} predicted about equally well (within 0.5 %), so "
                      f"{b['label']} stays the default: {errors}")
    return PurchaseModelComparison(best, metrics, cutoff_day, end_day, unit, int(len(customers)), float(duration),
                                   reason)


def compare_purchase_models(wh, dataset: str, cutoff=None, end=None, unit: str = "weeks", *,
                            penalizer: float = 0.0, models=tuple(PURCHASE_MODELS)) -> PurchaseModelComparison:
    """BG/NBD vs Pareto/NBD on the dataset's own calibration/holdout split (module docstring).

    ``cutoff`` defaults to the middle of the purchase history, ``end`` to the last purchase
    day. Raises ``SummaryError`` for a split that cannot work (cut-off before the first
    purchase or after the end, fewer than 2 customers) and ``ModelFitError`` when neither
    model can be fitted; one model failing is reported in its ``error`` and the other wins.
    """
    wh.require_dataset(dataset)
    return _compare(wh.cursor(), "events", "dataset = $dataset AND event_type = 'purchase'",
                    {"dataset": dataset}, cutoff, end, unit, penalizer, models)


def compare_purchase_models_from_transactions(df: pd.DataFrame, customer_col: str, time_col: str, cutoff=None,
                                              end=None, unit: str = "weeks", *, penalizer: float = 0.0,
                                              models=tuple(PURCHASE_MODELS)) -> PurchaseModelComparison:
    """``compare_purchase_models`` on a DataFrame where every row is a purchase."""
    con = _transactions_con(df, customer_col, time_col)
    try:
        return _compare(con, "tx_frame", "true", {}, cutoff, end, unit, penalizer, models)
    finally:
        con.close()


# ------------------------------------------------------------------ figures
def spend_model_comparison(spend_model, frequency, monetary_value) -> dict:
    """The fitted Gamma-Gamma model's mean spend per order beside what its data show, so that the
    model's figure is not read as an average of orders.

    ``spend_model.mean_spend_`` is the mean of the fitted distribution of customers' mean spend,
    p * gamma / (q - 1): the expected order value of a customer the model knows nothing about
    (no repeat purchase yet). With q close to 1 that distribution has a long right tail, and its
    mean lies far above the repeat buyers' own averages. Returns a dict: ``model_mean``, ``q``,
    ``repeat_buyers`` (those with a repeat purchase and a positive average spend: whom the model
    is fitted on), their ``observed_mean`` and ``observed_median`` average repeat order value,
    ``expected_mean`` (the mean of their expected order values, ``expected_customer_spend``), and
    ``ratio`` = model_mean / observed_mean (NaN without repeat buyers)."""
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary_value, dtype=float)
    own = (x > 0) & np.isfinite(m) & (m > 0)
    n = int(own.sum())
    model_mean = float(spend_model.mean_spend_)
    observed = float(m[own].mean()) if n else float("nan")
    expected = float(np.mean(np.asarray(spend_model.expected_customer_spend(x[own], m[own]), dtype=float))) \
        if n else float("nan")
    q = getattr(spend_model, "q_", None)
    return {"model_mean": model_mean, "q": None if q is None or not np.isfinite(q) else float(q),
            "repeat_buyers": n, "observed_mean": observed,
            "observed_median": float(np.median(m[own])) if n else float("nan"),
            "expected_mean": expected, "ratio": model_mean / observed if n and observed > 0 else float("nan")}


def spend_check_warning(check: dict | None, currency=None) -> str | None:
    """In plain words, when the spend model's stored check (``GammaGammaModel.spend_check_``,
    ``analytics.clv.spend_check``) calls the fit poor: what the model expects per order from a
    customer with no repeat order, against the repeat buyers' average. None when the fit passes
    the check (or has none)."""
    from analytics import formatting

    if not check or not check.get("poor_fit"):
        return None
    model = formatting.money(check["model_mean"], currency)
    observed = formatting.money(check["observed_mean"], currency)
    ratio = float(check["ratio"])
    q = check.get("q")
    if ratio >= 1.0:
        gap = f"{ratio:.1f}x the {observed} repeat buyers average per order"
    else:
        gap = f"{1.0 / ratio:.1f}x below the {observed} repeat buyers average per order"
    why = (f" (q = {q:.3g} is close to 1, where the model's mean has no limit: a few very big spenders "
           "the data hint at lift it)" if q is not None and q < 2.0 else "")
    return (f"The spend model expects {model} per order from a customer with no repeat order, {gap}: it fits "
            f"this data poorly{why}. Read the CLV by the models of one-time buyers with care; the CLV by "
            "formula does not use this model.")


def _label(model) -> str:
    return PURCHASE_MODEL_LABELS[purchase_model_key(model)]


def figure_matrix(matrix: pd.DataFrame, title: str | None = None):
    """Heatmap of a frequency x recency matrix (from the two matrix functions)."""
    import plotly.graph_objects as go

    what = matrix.attrs.get("what", "value")
    unit = matrix.attrs.get("unit", "")
    if title is None:
        title = ("Expected purchases in the next " + f"{matrix.attrs.get('t', 1):g} {unit}"
                 if what == "expected_purchases" else "Probability a customer is still active")
    fig = go.Figure(go.Heatmap(
        z=matrix.to_numpy(), x=[float(c) for c in matrix.columns], y=list(matrix.index),
        colorscale="Viridis", colorbar={"title": "P(alive)" if what == "probability_alive" else "purchases"},
        hovertemplate="frequency %{y}<br>recency %{x:.1f} " + unit + "<br>%{z:.3f}<extra></extra>",
    ))
    fig.update_layout(title=title, xaxis_title=f"recency ({unit}, time of last purchase)",
                      yaxis_title="frequency (repeat purchases)",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def figure_holdout_by_frequency(check: HoldoutCheck):
    """Actual vs predicted mean holdout purchases by calibration frequency."""
    import plotly.graph_objects as go

    by = check.by_frequency
    fig = go.Figure([
        go.Scatter(x=list(by.index), y=by["actual"], mode="lines+markers", name="actual"),
        go.Scatter(x=list(by.index), y=by["predicted"], mode="lines+markers", name=_label(check.model),
                   line={"dash": "dash"}),
    ])
    fig.update_layout(title="Holdout purchases by calibration-period frequency",
                      xaxis_title="repeat purchases in the calibration period",
                      yaxis_title="mean purchases in the holdout period",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def figure_cumulative(check: HoldoutCheck):
    """Cumulative repeat purchases by week, actual vs predicted, cut-off marked."""
    import plotly.graph_objects as go

    c = check.cumulative
    fig = go.Figure([
        go.Scatter(x=c["week_end"], y=c["actual"], mode="lines", name="actual"),
        go.Scatter(x=c["week_end"], y=c["predicted"], mode="lines", name=_label(check.model),
                   line={"dash": "dash"}),
    ])
    fig.add_shape(type="line", x0=check.cutoff, x1=check.cutoff, y0=0, y1=1, yref="paper",
                  line={"dash": "dot", "color": "grey"})
    fig.add_annotation(x=check.cutoff, y=1, yref="paper", text="cut-off", showarrow=False,
                       yanchor="bottom")
    fig.update_layout(title="Cumulative repeat purchases", xaxis_title="week",
                      yaxis_title="repeat purchases (cumulative)",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


__all__ = [
    "HoldoutCheck", "ModelFitError", "PurchaseModelComparison", "TIME_UNITS", "BetaGeoModel",
    "compare_purchase_models", "compare_purchase_models_from_transactions",
    "expected_purchases_matrix", "probability_alive_matrix",
    "calibration_holdout_check", "holdout_check_from_transactions",
    "figure_matrix", "figure_holdout_by_frequency", "figure_cumulative",
]
