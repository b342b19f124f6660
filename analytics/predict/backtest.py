"""Time-based backtest of value and churn predictors.

``run_backtest`` builds a training window and a test window
(``analytics.predict.features.backtest_frames``): every model learns from
calibration data only (features as of ``calibration_end - holdout length``,
targets from the last ``holdout length`` of the calibration period), validation
/ early stopping uses a random customer split of that training window
(``validation_fraction``), and the fitted models then predict from features as
of the calibration end. The holdout ``(calibration_end, holdout_end]`` is read
only to score the predictions.

Models (the first three always run, as baselines):

* ``zero``: value 0; churn probability = the training window's churn rate;
* ``naive``: calibration purchase rate (purchase days per day since the first
  purchase) x holdout days x average order value; churn = exp(-expected purchases);
* ``bgnbd``: BG/NBD expected purchases over the holdout x Gamma-Gamma expected
  spend, fitted on the calibration summary (the classical use of these models:
  they need no training window); churn = exp(-expected purchases) (Poisson
  approximation). Customers without a purchase get 0. A fit failure is reported
  in the table (``error``) instead of stopping the backtest;
* ``lightgbm``: ``LightGBMValueModel`` over the feature table;
  (for both learned models, when the history is too short for a training
  target period as long as the holdout, the training target period is shorter
  and value predictions are scaled by holdout days / training target days; the
  churn probability is then for the shorter period, which the Brier score shows);
* ``lstm``: ``LSTMValueModel`` over the per-period sequences + static features.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import numpy as np
import pandas as pd

from analytics.predict import metrics as M
from analytics.predict.features import BacktestError, WindowData, backtest_frames
from analytics.warehouse import Warehouse

__all__ = ["MODEL_NAMES", "BASELINES", "BacktestResult", "run_backtest", "static_features", "BacktestError"]

MODEL_NAMES = ("zero", "naive", "bgnbd", "lightgbm", "lstm")
BASELINES = ("zero", "naive", "bgnbd")

_STATIC_COLS = ["frequency", "recency", "T", "monetary_value", "total_revenue", "return_revenue", "n_orders",
                "n_views", "n_searches", "n_carts", "n_reviews", "tenure", "days_since_last_purchase",
                "days_since_last_event", "avg_order_value"]


@dataclasses.dataclass
class BacktestResult:
    metrics: pd.DataFrame  # one row per model
    predictions: pd.DataFrame  # one row per test customer: actuals and each model's value/churn
    deciles: dict[str, pd.DataFrame]
    models: dict[str, object]
    info: dict
    features: pd.DataFrame | None = None  # the test window's features (for explanations)


def static_features(features: pd.DataFrame) -> np.ndarray:
    """LSTM static inputs: log1p of the non-negative summary columns (missing -> 0)
    plus a has-purchased flag."""
    cols = [c for c in _STATIC_COLS if c in features]
    x = np.log1p(features[cols].clip(lower=0).fillna(0.0).to_numpy(dtype=np.float64))
    has = (features["n_orders"] > 0).to_numpy(dtype=np.float64)[:, None]
    return np.hstack([x, has]).astype(np.float32)


def _naive(w: WindowData):
    f = w.features
    days_since_first = (f["T"].fillna(0.0) + 1.0).to_numpy()  # T in days since the first purchase day
    rate = np.where(f["n_orders"] > 0, f["n_orders"] / days_since_first, 0.0)
    aov = f["avg_order_value"].fillna(0.0).to_numpy()
    expected = rate * w.horizon_days
    return expected * aov, np.exp(-expected)


def _bgnbd(w: WindowData, random_state):
    from analytics.clv_models import GammaGammaModel, fit_bgnbd_robust

    f = w.features
    buyers = (f["n_orders"] > 0).to_numpy()
    # recency and T in weeks: the optimizer is better conditioned than in days
    x = f.loc[buyers, "frequency"].to_numpy(dtype=float)
    tx = f.loc[buyers, "recency"].to_numpy(dtype=float) / 7.0
    tt = f.loc[buyers, "T"].to_numpy(dtype=float) / 7.0
    m = f.loc[buyers, "monetary_value"].to_numpy(dtype=float)
    # retries with a small ridge penalty when the plain fit fails or runs off (bg.fit_note_ says so)
    bg = fit_bgnbd_robust(x, tx, tt, unit="weeks", random_state=random_state)
    gg = GammaGammaModel(random_state=random_state).fit(x, m)
    purchases = np.asarray(bg.expected_purchases(w.horizon_days / 7.0, x, tx, tt), dtype=float)
    spend = np.asarray(gg.expected_spend(x, m), dtype=float)
    value = np.zeros(len(f))
    churn = np.ones(len(f))
    value[buyers] = purchases * spend
    churn[buyers] = np.exp(-purchases)
    return value, churn, {"bgnbd": bg, "gamma_gamma": gg}


def _split(n: int, fraction: float, rng: np.random.Generator):
    if not 0 < fraction < 1:
        raise BacktestError("validation_fraction must be between 0 and 1")
    perm = rng.permutation(n)
    n_val = max(1, int(round(n * fraction)))
    if n - n_val < 2:
        raise BacktestError("too few customers in the training window to hold out a validation split")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def run_backtest(
    wh: Warehouse,
    dataset: str,
    calibration_end,
    holdout_end,
    models=MODEL_NAMES,
    *,
    period: str = "weeks",
    n_periods: int | None = None,
    validation_fraction: float = 0.2,
    lightgbm_params: dict | None = None,
    lstm_params: dict | None = None,
    device: str = "auto",
    random_state: int = 0,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BacktestResult:
    """Run the backtest and return every metric per model (see the module docstring).

    ``models``: any of MODEL_NAMES (the baselines are always added).
    ``progress(dict)`` gets ``{"stage": model, "status": "start"|"done", ...}``
    and, for the LSTM, its per-epoch dicts with ``stage="lstm"``.
    """
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise BacktestError(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODEL_NAMES)}")
    chosen = [m for m in MODEL_NAMES if m in set(models) | set(BASELINES)]
    report = progress or (lambda _row: None)
    if "lstm" in chosen:
        from analytics.device import pick_device

        pick_device(device)  # a device asked for but missing: DeviceError before any work

    train, test = backtest_frames(wh, dataset, calibration_end, holdout_end, period=period, n_periods=n_periods)
    rng = np.random.default_rng(random_state)
    tr_idx, va_idx = _split(len(train.customers), validation_fraction, rng)
    y_train = train.targets["holdout_value"].to_numpy()
    c_train = train.targets["churn"].to_numpy()
    # when the training target period is shorter than the holdout (short histories),
    # learned value predictions are scaled up by the ratio of the two lengths
    value_scale = test.horizon_days / train.horizon_days
    y_test = test.targets["holdout_value"].to_numpy()
    c_test = test.targets["churn"].to_numpy()

    preds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    fitted: dict[str, object] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    extra: dict[str, dict] = {}

    for name in chosen:
        report({"stage": name, "status": "start"})
        t0 = time.perf_counter()
        try:
            if name == "zero":
                preds[name] = (np.zeros(len(y_test)), np.full(len(y_test), float(c_train.mean())))
            elif name == "naive":
                preds[name] = _naive(test)
            elif name == "bgnbd":
                value, churn, objs = _bgnbd(test, random_state)
                preds[name] = (value, churn)
                fitted.update(objs)
            elif name == "lightgbm":
                from analytics.predict.gbm import LightGBMValueModel

                X_train = train.features
                model = LightGBMValueModel(random_state=random_state, **(lightgbm_params or {}))
                model.fit(X_train.iloc[tr_idx], y_train[tr_idx], c_train[tr_idx],
                          X_val=X_train.iloc[va_idx], y_value_val=y_train[va_idx], y_churn_val=c_train[va_idx])
                preds[name] = (model.predict_value(test.features) * value_scale, model.predict_churn(test.features))
                fitted[name] = model
                extra[name] = {"best_iteration": dict(model.best_iteration_)}
            elif name == "lstm":
                from analytics.predict.lstm import LSTMValueModel

                s_train, s_test = static_features(train.features), static_features(test.features)
                params = {"device": device, "random_state": random_state, **(lstm_params or {})}
                model = LSTMValueModel(**params)

                def lstm_progress(row):
                    report({"stage": "lstm", "status": "epoch", **row})

                model.fit(train.sequences[tr_idx], s_train[tr_idx], y_train[tr_idx],
                          validation_data=(train.sequences[va_idx], s_train[va_idx], y_train[va_idx]),
                          progress=lstm_progress, should_stop=should_stop)
                preds[name] = (model.predict_value(test.sequences, s_test) * value_scale,
                               model.predict_churn(test.sequences, s_test))
                fitted[name] = model
                extra[name] = {"best_epoch": model.best_epoch_, "device": model.device_,
                               "cancelled": model.cancelled_}
        except BacktestError:
            raise
        except ValueError as exc:  # a model that cannot be fitted on these data: report, keep going
            errors[name] = str(exc)
        seconds[name] = time.perf_counter() - t0
        report({"stage": name, "status": "done", "seconds": seconds[name], "error": errors.get(name)})

    rows = []
    deciles = {}
    out = pd.DataFrame(index=test.customers)
    out["actual_value"] = y_test
    out["actual_churn"] = c_test
    for name in chosen:
        row = {"model": name, "fit_seconds": seconds.get(name, math.nan), "error": errors.get(name)}
        if name in preds:
            value, churn = preds[name]
            row.update(M.value_metrics(y_test, value))
            row.update(M.churn_metrics(c_test, np.clip(churn, 0.0, 1.0)))
            deciles[name] = M.decile_table(y_test, value)
            out[f"{name}_value"] = value
            out[f"{name}_churn"] = churn
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    info = {
        "dataset": dataset,
        "calibration_end": str(test.cutoff.date()),
        "holdout_end": str(test.target_end.date()),
        "holdout_days": test.horizon_days,
        "training_cutoff": str(train.cutoff.date()),
        "training_target_days": train.horizon_days,
        "value_scale": value_scale,
        "period": period,
        "n_periods": int(test.sequences.shape[1]),
        "n_customers": int(len(test.customers)),
        "n_train": int(len(tr_idx)),
        "n_validation": int(len(va_idx)),
        "holdout_purchasers": int((c_test == 0).sum()),
        "models": extra,
    }
    return BacktestResult(table, out, deciles, fitted, info, test.features)
