"""Model registry: persisted backtest runs, their fitted models, and scoring.

A backtest run (``save_backtest``) becomes one ``predictor_runs`` row (dataset,
cut-off, holdout end, period, run info as JSON) and one ``predictor_models``
row per model (parameters, every metric, device, training time, the folder of
its files). Model files live next to the warehouse: ``<warehouse dir>/models/
run_<id>/<model>/`` (LightGBM text models, or a torch state_dict; settings and
scalers as JSON; no pickles). ``score_customers`` loads a saved LightGBM or
LSTM model and scores a dataset's customers as of any date; the ensemble has no
files of its own: its weights are in the run info, and it is scored by scoring its
members (the saved learned models, Pareto/NBD fitted again as of the date) and
blending them as the backtest did.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from analytics import access, formatting
from analytics.predict.features import window_data
from analytics.warehouse import Warehouse

__all__ = ["save_backtest", "list_runs", "run_models", "load_model", "score_customers", "delete_run",
           "default_model_dir", "publish_predictions", "published_predictions", "join_predictions",
           "prediction_info", "prediction_columns", "PREDICTION_COLUMNS", "PUBLISHABLE", "ensemble_weights",
           "model_title"]

SAVED_KINDS = ("lightgbm", "lstm")
#: the models whose predictions can be published: the saved learned models and their ensemble
PUBLISHABLE = SAVED_KINDS + ("ensemble",)


def model_title(model: str) -> str:
    """A model as people read it (``"lightgbm"`` -> ``"LightGBM"``, ``"ensemble"`` -> ``"Ensemble"``)."""
    from analytics.predict.backtest import MODEL_TITLES

    return MODEL_TITLES.get(str(model), str(model))


def ensemble_weights(info: dict) -> dict[str, float]:
    """The weights (member -> weight, only those above 0) of a backtest's ensemble, from its run
    ``info``; empty when the run has no ensemble (validation found no blend that ranks better
    than its best member)."""
    choice = ((info or {}).get("models") or {}).get("ensemble") or {}
    return {str(m): float(w) for m, w in (choice.get("weights") or {}).items() if w and float(w) > 0}


def _json(obj) -> str:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, (np.floating,)):
            return clean(float(v))
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), default=str)


def default_model_dir(wh: Warehouse) -> Path | None:
    """``models/`` next to the warehouse file (None for an in-memory warehouse)."""
    if wh.path == ":memory:":
        return None
    return Path(wh.path).resolve().parent / "models"


#: the ``path`` of a model whose files are kept inside the warehouse (table ``model_files``)
IN_WAREHOUSE = "warehouse:"


def _keep_in_warehouse(tx, run_id: int, dataset: str, model: str, files: dict[str, bytes]) -> str:
    """Store a model's files (``model.to_files()``, made in memory) in ``model_files``; the path to record."""
    for name, data in sorted(files.items()):
        tx.execute("INSERT INTO model_files (run_id, dataset, model, name, data) VALUES (?, ?, ?, ?, ?)",
                   [int(run_id), dataset, model, name, bytes(data)])
    return f"{IN_WAREHOUSE}run_{int(run_id)}/{model}"


def _files_in_warehouse(wh: Warehouse, run_id: int, model: str) -> dict[str, bytes]:
    """The files of a model kept in the warehouse, as name -> bytes (read in memory, never written out)."""
    rows = wh.cursor().execute("SELECT name, data FROM model_files WHERE run_id = ? AND model = ? ORDER BY name",
                               [int(run_id), model]).fetchall()
    if not rows:
        raise ValueError(f"the files of run {run_id}'s {model} model are missing from the warehouse")
    return {str(name): bytes(data) for name, data in rows}


def save_backtest(wh: Warehouse, result, *, model_dir: str | Path | None = None, label: str | None = None) -> int:
    """Persist a ``BacktestResult``; returns the run id. Model files go to
    ``model_dir`` (default: next to the warehouse; required for an in-memory one); in an encrypted
    warehouse they are kept inside it (``model_files``), never next to it in the clear."""
    encrypted = bool(getattr(wh, "encrypted", False))
    base = Path(model_dir) if model_dir is not None and not encrypted else default_model_dir(wh)
    info = result.info
    access.require(wh, "model", info["dataset"] if wh.exists_dataset(info["dataset"]) else None)
    with wh.transaction() as tx:
        run_id = int(tx.execute("SELECT nextval('predictor_run_id_seq')").fetchone()[0])
        folder = None if base is None else base / f"run_{run_id}"
        rows = []
        for name, metrics in result.metrics.iterrows():
            model = result.models.get(name)
            path = None
            if name in SAVED_KINDS and model is not None:
                if encrypted:  # made in memory and kept inside the encrypted file: never on disk in the clear
                    path = _keep_in_warehouse(tx, run_id, info["dataset"], name, model.to_files())
                else:
                    if folder is None:
                        raise ValueError("an in-memory warehouse needs a model_dir to save fitted models in")
                    path = folder / name
                    model.save(path)
            params = model.get_params() if hasattr(model, "get_params") else None
            device = getattr(model, "device_", "cpu") if model is not None else None
            err = metrics.get("error")
            rows.append([run_id, info["dataset"], name, _json(params),
                         _json({k: v for k, v in metrics.items() if k != "error"}), device,
                         float(metrics.get("fit_seconds", math.nan)), None if path is None else str(path),
                         None if err is None or (isinstance(err, float) and math.isnan(err)) else str(err)])
        tx.execute(
            "INSERT INTO predictor_runs (id, dataset, calibration_end, holdout_end, period, info, label, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            [run_id, info["dataset"], info["calibration_end"], info["holdout_end"], info["period"], _json(info), label],
        )
        tx.executemany(
            "INSERT INTO predictor_models (run_id, dataset, model, parameters, metrics, device, fit_seconds, path, "
            "error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        access.audit(wh, "save_models", dataset=info["dataset"], target=f"run {run_id}",
                     detail={"models": [r[2] for r in rows]}, cur=tx)
    return run_id


def list_runs(wh: Warehouse, dataset: str | None = None) -> pd.DataFrame:
    """Saved backtest runs, newest first."""
    sql = "SELECT id, dataset, calibration_end, holdout_end, period, label, created_at FROM predictor_runs"
    params: list = []
    if dataset is not None:
        sql += " WHERE dataset = ?"
        params.append(dataset)
    return wh.cursor().execute(sql + " ORDER BY id DESC", params).df()


def run_models(wh: Warehouse, run_id: int) -> pd.DataFrame:
    """One row per model of a run: its metrics expanded into columns, plus device, path, error."""
    df = wh.cursor().execute(
        "SELECT model, metrics, device, fit_seconds, path, error FROM predictor_models WHERE run_id = ? "
        "ORDER BY model", [int(run_id)],
    ).df()
    if df.empty:
        raise ValueError(f"no saved backtest run {run_id}")
    metrics = pd.DataFrame([json.loads(m) for m in df["metrics"]], index=df["model"])
    return metrics.join(df.set_index("model")[["device", "path", "error"]])


def _run_info(wh: Warehouse, run_id: int) -> dict:
    row = wh.cursor().execute("SELECT info FROM predictor_runs WHERE id = ?", [int(run_id)]).fetchone()
    if row is None:
        raise ValueError(f"no saved backtest run {run_id}")
    return json.loads(row[0])


def load_model(wh: Warehouse, run_id: int, model: str, device: str | None = None):
    """The fitted LightGBM or LSTM model of a saved run."""
    row = wh.cursor().execute(
        "SELECT path FROM predictor_models WHERE run_id = ? AND model = ?", [int(run_id), model]
    ).fetchone()
    if row is None or row[0] is None:
        raise ValueError(f"run {run_id} has no saved {model} model (only lightgbm and lstm models are saved)")
    if str(row[0]).startswith(IN_WAREHOUSE):
        files = _files_in_warehouse(wh, run_id, model)
        if model == "lightgbm":
            from analytics.predict.gbm import LightGBMValueModel

            return LightGBMValueModel.from_files(files)
        from analytics.predict.lstm import LSTMValueModel

        return LSTMValueModel.from_files(files, device=device or "auto")
    path = Path(row[0])
    if not path.exists():
        raise ValueError(f"the files of run {run_id}'s {model} model are missing ({path})")
    return _load_files(path, model, device)


def _load_files(path: Path, model: str, device: str | None):
    if model == "lightgbm":
        from analytics.predict.gbm import LightGBMValueModel

        return LightGBMValueModel.load(path)
    from analytics.predict.lstm import LSTMValueModel

    return LSTMValueModel.load(path, device=device or "auto")


def score_customers(wh: Warehouse, run_id: int, model: str, as_of, dataset: str | None = None,
                    device: str | None = None) -> pd.DataFrame:
    """Score ``dataset`` (default: the run's) as of ``as_of`` with a saved model: expected value
    over the run's holdout length and churn probability per customer, made exactly as the backtest
    made its predictions (statistical features fitted as of ``as_of``, the run's calibration, window
    level and horizon curve: ``analytics.predict.backtest.predict_window``)."""
    from analytics.predict.backtest import predict_window, recipe_of

    info = _run_info(wh, run_id)
    if "target_days" not in info:
        raise ValueError(f"run {run_id} was saved by an older version of the backtest; run the backtest again "
                         "and save it to score with its models")
    if model == "ensemble":
        weights = ensemble_weights(info)
        if not weights:
            raise ValueError(f"run {run_id} has no ensemble: on its validation window no blend ranked customers "
                             "better than its best single model")
        fitted = None
    else:
        fitted = load_model(wh, run_id, model, device=device)
    dataset = dataset or info["dataset"]
    w = window_data(wh, dataset, as_of, None, period=info["period"], n_periods=int(info["n_periods"]))
    if model == "ensemble":
        value, churn = _score_ensemble(wh, run_id, info, weights, w, device)
    else:
        value, churn = predict_window(model, fitted, w, recipe_of(info, model))
    out = pd.DataFrame({"expected_value": value, "churn_probability": churn}, index=w.customers)
    out.attrs = {"run_id": int(run_id), "model": model, "as_of": str(w.cutoff.date()),
                 "horizon_days": int(info["holdout_days"])}
    return out


def _score_ensemble(wh: Warehouse, run_id: int, info: dict, weights: dict[str, float], w, device):
    """(value, churn) of a run's ensemble on the window ``w``: each member scored as the backtest
    scored it on its test window (the learned ones with their saved models and the window's
    statistical features, Pareto/NBD fitted on the window with the window's Gamma-Gamma), then
    blended with the run's weights (``analytics.predict.backtest.blend``)."""
    from analytics.predict.backtest import LEARNED, _bgnbd, _paretonbd, blend, predict_window, recipe_of
    from analytics.predict.features import fit_statistical_models

    seed = info.get("random_state", 0)
    bg, gg, notes = fit_statistical_models(w.features, seed)
    preds = {}
    for member in weights:
        if member in LEARNED:
            preds[member] = predict_window(member, load_model(wh, run_id, member, device=device), w,
                                           recipe_of(info, member), models=(bg, gg))
        elif member == "paretonbd":
            pnbd, pnbd_notes = _paretonbd(w, seed)  # with the window's Gamma-Gamma (fitted unpenalized)
            try:
                preds[member] = _bgnbd(w, int(info["holdout_days"]), (pnbd, gg),
                                       pnbd_notes + [n for n in notes if n.startswith("Gamma-Gamma")])
            except ValueError as exc:
                raise ValueError(f"the ensemble's Pareto/NBD member cannot be fitted as of "
                                 f"{formatting.date(w.cutoff)}: {exc}") from None
        else:
            raise ValueError(f"run {run_id}'s ensemble has a member ({member}) that cannot score new dates")
    return blend(preds, weights)


def publish_predictions(wh: Warehouse, run_id: int, model: str, as_of, dataset: str | None = None) -> int:
    """Score ``dataset`` as of ``as_of`` with a saved model and make those the
    dataset's published predictions (``customer_predictions``: expected value over
    the run's holdout length and churn probability per customer), replacing the
    previous ones in one transaction, so segments and targeting can join them.
    Returns the number of customers scored."""
    access.require(wh, "model", dataset or _run_info(wh, run_id)["dataset"])
    scores = score_customers(wh, run_id, model, as_of, dataset=dataset)
    dataset = dataset or _run_info(wh, run_id)["dataset"]
    frame = pd.DataFrame({
        "customer_id": scores.index.astype(str),
        "expected_value": scores["expected_value"].to_numpy(dtype=float),
        "churn_probability": scores["churn_probability"].to_numpy(dtype=float),
    })
    with wh.transaction() as tx:
        tx.execute("DELETE FROM customer_predictions WHERE dataset = ?", [dataset])
        tx.register("published_frame", frame)
        tx.execute(
            "INSERT INTO customer_predictions SELECT ?, customer_id, expected_value, churn_probability, ?, ?, ?, ?, "
            "current_timestamp FROM published_frame",
            [dataset, int(run_id), model, scores.attrs["as_of"], scores.attrs["horizon_days"]],
        )
        tx.unregister("published_frame")
        access.audit(wh, "publish_predictions", dataset=dataset, target=f"run {run_id} {model}", rows=len(frame),
                     cur=tx)
    return len(frame)


def published_predictions(wh: Warehouse, dataset: str) -> pd.DataFrame:
    """The dataset's published predictions, indexed by customer_id (empty if none)."""
    return wh.cursor().execute(
        "SELECT customer_id, expected_value, churn_probability, run_id, model, as_of, horizon_days, published_at "
        "FROM customer_predictions WHERE dataset = ? ORDER BY customer_id", [dataset],
    ).df().set_index("customer_id")


PREDICTION_COLUMNS = ("predicted_value", "churn_probability", "prediction_model", "prediction_run_id",
                      "prediction_as_of", "prediction_horizon_days")


def join_predictions(frame: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one row per customer, a ``customer_id`` column) with the published
    ``predictions`` (:func:`published_predictions`) left-joined: ``predicted_value``
    and ``churn_probability`` (NaN for customers the model did not score) and the
    model, run, as-of date and horizon as constant ``prediction_*`` columns.
    ``frame`` is returned unchanged when there are no predictions."""
    if predictions is None or predictions.empty:
        return frame
    ids = frame["customer_id"].astype(str)
    pred = predictions.copy()
    pred.index = pred.index.astype(str)
    out = frame.copy()
    out["predicted_value"] = ids.map(pred["expected_value"]).astype(float).to_numpy()
    out["churn_probability"] = ids.map(pred["churn_probability"]).astype(float).to_numpy()
    meta = prediction_info(predictions)
    out["prediction_model"] = meta["model"]
    out["prediction_run_id"] = meta["run_id"]
    out["prediction_as_of"] = meta["as_of"]
    out["prediction_horizon_days"] = meta["horizon_days"]
    return out


def prediction_columns(predictions: pd.DataFrame) -> pd.DataFrame:
    """``predicted_value`` and ``churn_probability`` indexed by customer_id (for
    ``analytics.segments.rules.customer_frame``, so saved segments can filter on them)."""
    return predictions.rename(columns={"expected_value": "predicted_value"})[["predicted_value", "churn_probability"]]


def prediction_info(predictions: pd.DataFrame) -> dict | None:
    """Model, run, as-of date and horizon of published ``predictions`` (None if empty)."""
    if predictions is None or predictions.empty:
        return None
    first = predictions.iloc[0]
    return {"model": str(first["model"]), "title": model_title(first["model"]), "run_id": int(first["run_id"]),
            "as_of": str(pd.Timestamp(first["as_of"]).date()), "horizon_days": int(first["horizon_days"]),
            "customers": int(len(predictions))}


def delete_run(wh: Warehouse, run_id: int) -> None:
    """Remove a run's rows and its model files."""
    row = wh.cursor().execute("SELECT dataset FROM predictor_runs WHERE id = ?", [int(run_id)]).fetchone()
    access.require(wh, "model", row[0] if row else None)
    paths = [r[0] for r in wh.cursor().execute(
        "SELECT path FROM predictor_models WHERE run_id = ? AND path IS NOT NULL", [int(run_id)]).fetchall()]
    with wh.transaction() as tx:
        tx.execute("DELETE FROM predictor_models WHERE run_id = ?", [int(run_id)])
        tx.execute("DELETE FROM model_files WHERE run_id = ?", [int(run_id)])
        tx.execute("DELETE FROM predictor_runs WHERE id = ?", [int(run_id)])
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)

