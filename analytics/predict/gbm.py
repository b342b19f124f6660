"""LightGBM value and churn predictor over per-customer features.

Two boosted-tree models share one feature matrix:

* a **Tweedie** regressor for holdout revenue. Holdout value is zero for most
  customers and heavy-tailed for the rest; the Tweedie distribution with
  1 < p < 2 is a compound Poisson-gamma with a point mass at zero, the usual
  choice for such targets (log link, so predictions are never negative).
  ``objective="poisson"`` is the limit p -> 1 (variance proportional to the
  mean): it weighs the big spenders more than Tweedie does, which ranks them
  better where they decide the ranking (the backtest's default, see there);
* a **binary** classifier for churn (no purchase in the holdout).

Early stopping uses a validation set that the *caller* carves out of the
calibration period (never the holdout). Training is deterministic: fixed seeds,
``deterministic=True``, a fixed thread count and row-wise histograms.

Explanations come from LightGBM's own SHAP-style feature contributions
(``pred_contrib=True``): per customer, the contributions plus the bias sum to
the raw score (log of the predicted value for the Tweedie model). Global
importance is the total split gain per feature.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from sklearn.base import BaseEstimator

from analytics.predict import NotFittedError

__all__ = ["LightGBMValueModel", "NotFittedError"]


def _as_frame(X, feature_names: list[str] | None = None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"features must be a 2-D table (got {arr.ndim} dimension(s))")
    names = feature_names or [f"f{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=names)


def _as_target(y, n: int, name: str) -> np.ndarray:
    arr = np.asarray(y, dtype=np.float64).ravel()
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} values for {n} customers")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite numbers")
    return arr


class LightGBMValueModel(BaseEstimator):
    """Tweedie regressor for holdout value + binary classifier for churn.

    Parameters
    ----------
    n_estimators : maximum boosting rounds per model (early stopping may stop sooner).
    learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree,
    reg_lambda, max_bin : the usual LightGBM hyperparameters.
    objective : the value model's loss, 'tweedie' (power ``tweedie_variance_power``) or
        'poisson' (log link as well; the Tweedie power is then unused).
    tweedie_variance_power : Tweedie power p in (1, 2) for the value model.
    early_stopping_rounds : rounds without validation improvement before stopping
        (only when a validation set is given to ``fit``).
    n_jobs : LightGBM threads (fixed, for determinism).
    random_state : seed for every source of randomness.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_child_samples: int = 40,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        max_bin: int = 63,
        tweedie_variance_power: float = 1.3,
        objective: str = "tweedie",
        early_stopping_rounds: int = 30,
        n_jobs: int = 2,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.tweedie_variance_power = tweedie_variance_power
        self.objective = objective
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _base_params(self) -> dict[str, Any]:
        if self.objective not in ("tweedie", "poisson"):
            raise ValueError(f"objective must be 'tweedie' or 'poisson' (got {self.objective!r})")
        if not 1.0 < self.tweedie_variance_power < 2.0:
            raise ValueError("tweedie_variance_power must lie strictly between 1 and 2")
        if self.n_estimators < 1:
            raise ValueError("n_estimators must be at least 1")
        seed = int(self.random_state)
        return {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1.0 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "max_bin": self.max_bin,
            "num_threads": int(self.n_jobs),
            "seed": seed,
            "bagging_seed": seed + 1,
            "feature_fraction_seed": seed + 2,
            "data_random_seed": seed + 3,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    # -- fitting ---------------------------------------------------------------------
    def fit(
        self,
        X,
        y_value,
        y_churn=None,
        *,
        X_val=None,
        y_value_val=None,
        y_churn_val=None,
        categorical_features: list[str] | None = None,
        num_rounds: dict | None = None,
    ) -> "LightGBMValueModel":
        """Fit both models.

        ``y_value`` is holdout revenue (>= 0); ``y_churn`` is 1 for customers with
        no purchase in the holdout (default: ``y_value <= 0``). With ``X_val`` (and
        its targets, carved by the caller from the calibration period), each model
        stops early on its validation loss and keeps its best iteration.
        ``num_rounds`` (``{"value": n, "churn": m}``, without a validation set): boost
        exactly that many rounds per model, e.g. the best iterations a validation run found.
        """
        import lightgbm as lgb

        Xf = _as_frame(X)
        if len(Xf) < 2:
            raise ValueError("need at least 2 customers to fit a model")
        if Xf.shape[1] == 0:
            raise ValueError("no features to fit on")
        yv = _as_target(y_value, len(Xf), "y_value")
        if (yv < 0).any():
            raise ValueError("holdout value must not be negative")
        yc = (yv <= 0).astype(np.float64) if y_churn is None else _as_target(y_churn, len(Xf), "y_churn")
        if not np.isin(yc, (0.0, 1.0)).all():
            raise ValueError("y_churn must be 0 or 1")
        if np.unique(yc).size < 2:
            raise ValueError("churn has a single class in the training data; cannot fit a classifier")
        if not (yv > 0).any():
            raise ValueError("no customer has positive holdout value in the training data")

        self.feature_names_ = [str(c) for c in Xf.columns]
        self.n_features_in_ = len(self.feature_names_)
        cats = list(categorical_features or [])
        unknown = set(cats) - set(self.feature_names_)
        if unknown:
            raise ValueError(f"unknown categorical feature(s): {', '.join(sorted(unknown))}")
        self.categorical_features_ = cats
        cat_arg = cats if cats else "auto"

        has_val = X_val is not None
        if has_val:
            Xv = self._check_X(_as_frame(X_val, self.feature_names_), fitted=False)
            yvv = _as_target(y_value_val, len(Xv), "y_value_val")
            ycv = (yvv <= 0).astype(np.float64) if y_churn_val is None else _as_target(y_churn_val, len(Xv), "y_churn_val")

        base = self._base_params()
        started = time.perf_counter()
        self.history_ = {}
        self.best_iteration_ = {}

        # Bin the features once and reuse the binned data for both models (only
        # the label changes): on 1M customers binning is a large share of the cost.
        ds_params = {"max_bin": self.max_bin, "verbosity": -1, "data_random_seed": base["data_random_seed"],
                     "num_threads": base["num_threads"]}
        ds = lgb.Dataset(Xf, label=yv, categorical_feature=cat_arg, free_raw_data=True, params=ds_params)
        dval = None
        if has_val:
            dval = lgb.Dataset(Xv, label=yvv, reference=ds, categorical_feature=cat_arg, params=ds_params)

        def train(kind, params):
            record: dict = {}
            callbacks = [lgb.record_evaluation(record)]
            valid_sets, names = [], []
            if has_val:
                valid_sets, names = [dval], ["validation"]
                callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
            rounds = int(self.n_estimators)
            if num_rounds is not None and not has_val:
                rounds = max(1, int(num_rounds.get(kind, rounds)))
            booster = lgb.train(
                {**base, **params},
                ds,
                num_boost_round=rounds,
                valid_sets=valid_sets,
                valid_names=names,
                callbacks=callbacks,
                keep_training_booster=False,
            )
            self.history_[kind] = {m: list(v) for m, v in record.get("validation", {}).items()}
            self.best_iteration_[kind] = int(booster.best_iteration or booster.current_iteration())
            return booster

        value_params = ({"objective": "poisson", "metric": "poisson"} if self.objective == "poisson" else
                        {"objective": "tweedie", "tweedie_variance_power": self.tweedie_variance_power,
                         "metric": "tweedie"})
        self.value_booster_ = train("value", value_params)
        ds.set_label(yc)
        if has_val:
            dval.set_label(ycv)
        self.churn_booster_ = train("churn", {"objective": "binary", "metric": "binary_logloss"})
        self.fit_seconds_ = time.perf_counter() - started
        return self

    # -- prediction ------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "value_booster_"):
            raise NotFittedError("this LightGBMValueModel is not fitted yet; call fit first")

    def _check_X(self, X: pd.DataFrame, fitted: bool = True) -> pd.DataFrame:
        if fitted:
            self._check_fitted()
        names = self.feature_names_
        if list(map(str, X.columns)) != names:
            missing = [c for c in names if c not in set(map(str, X.columns))]
            if missing:
                raise ValueError(f"missing feature column(s): {', '.join(missing[:5])}")
            X = X[names]
        return X

    def _prepare(self, X) -> pd.DataFrame:
        self._check_fitted()
        return self._check_X(_as_frame(X, self.feature_names_))

    def predict_value(self, X) -> np.ndarray:
        """Expected holdout value per customer (>= 0)."""
        Xf = self._prepare(X)
        return self.value_booster_.predict(Xf, num_iteration=self.best_iteration_["value"],
                                           num_threads=int(self.n_jobs))

    def predict_churn(self, X) -> np.ndarray:
        """Probability of no purchase in the holdout."""
        Xf = self._prepare(X)
        return self.churn_booster_.predict(Xf, num_iteration=self.best_iteration_["churn"],
                                           num_threads=int(self.n_jobs))

    def predict(self, X) -> np.ndarray:
        """Alias of :meth:`predict_value` (scikit-learn regressor convention)."""
        return self.predict_value(X)

    # -- explanations ----------------------------------------------------------------
    def explain(self, X, target: str = "value") -> pd.DataFrame:
        """Per-customer feature contributions (LightGBM ``pred_contrib``) in the
        model's raw score space (log value for ``target='value'``, log-odds of
        churn for ``target='churn'``). Columns: one per feature plus ``bias``;
        each row sums to the raw prediction."""
        Xf = self._prepare(X)
        booster, it = self._booster(target)
        contrib = booster.predict(Xf, num_iteration=it, pred_contrib=True, num_threads=int(self.n_jobs))
        return pd.DataFrame(contrib, columns=[*self.feature_names_, "bias"], index=Xf.index)

    def top_drivers(self, X, k: int = 3, target: str = "value") -> pd.DataFrame:
        """The ``k`` features that move each customer's prediction most (by
        absolute contribution): long table with row, rank, feature, value, contribution."""
        contrib = self.explain(X, target).drop(columns="bias")
        Xf = self._prepare(X)
        vals = contrib.to_numpy()
        k = max(1, min(int(k), vals.shape[1]))
        idx = np.argsort(-np.abs(vals), axis=1, kind="stable")[:, :k]
        rows = np.repeat(np.arange(vals.shape[0]), k)
        cols = idx.ravel()
        feats = np.asarray(self.feature_names_)[cols]
        raw = Xf.to_numpy()
        return pd.DataFrame(
            {
                "row": rows,
                "rank": np.tile(np.arange(1, k + 1), vals.shape[0]),
                "feature": feats,
                "feature_value": raw[rows, cols],
                "contribution": vals[rows, cols],
            }
        )

    def feature_importance(self, target: str = "value") -> pd.DataFrame:
        """Global importance: total split gain per feature (and its share), highest first."""
        booster, it = self._booster(target)
        gain = booster.feature_importance(importance_type="gain", iteration=it)
        splits = booster.feature_importance(importance_type="split", iteration=it)
        total = gain.sum()
        out = pd.DataFrame(
            {
                "feature": self.feature_names_,
                "gain": gain,
                "gain_share": gain / total if total > 0 else np.zeros_like(gain),
                "splits": splits,
            }
        )
        return out.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)

    def _booster(self, target: str):
        self._check_fitted()
        if target == "value":
            return self.value_booster_, self.best_iteration_["value"]
        if target == "churn":
            return self.churn_booster_, self.best_iteration_["churn"]
        raise ValueError("target must be 'value' or 'churn'")

    # -- persistence -----------------------------------------------------------------
    def to_files(self) -> dict[str, bytes]:
        """The saved model as file name -> bytes (both boosters in LightGBM's text format, the
        settings as JSON), made in memory: what :meth:`save` writes, and what a warehouse keeps."""
        import json

        self._check_fitted()
        meta = {
            "kind": "lightgbm",
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "categorical_features": self.categorical_features_,
            "best_iteration": self.best_iteration_,
            "fit_seconds": self.fit_seconds_,
        }
        return {"value.txt": self.value_booster_.model_to_string().encode("utf-8"),
                "churn.txt": self.churn_booster_.model_to_string().encode("utf-8"),
                "model.json": json.dumps(meta, indent=2).encode("utf-8")}

    def save(self, path) -> None:
        """Write both boosters (LightGBM text format) and the settings as JSON into the folder ``path``."""
        from pathlib import Path

        path = Path(path)
        files = self.to_files()
        path.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (path / name).write_bytes(data)

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> "LightGBMValueModel":
        """A model from :meth:`to_files`' file name -> bytes (read in memory, nothing written)."""
        import json

        import lightgbm as lgb

        if "model.json" not in files:
            raise ValueError("no saved LightGBM model in these files")
        meta = json.loads(bytes(files["model.json"]).decode("utf-8"))
        model = cls(**meta["params"])
        model.feature_names_ = meta["feature_names"]
        model.n_features_in_ = len(model.feature_names_)
        model.categorical_features_ = meta["categorical_features"]
        model.best_iteration_ = {k: int(v) for k, v in meta["best_iteration"].items()}
        model.fit_seconds_ = meta["fit_seconds"]
        model.history_ = {}
        model.value_booster_ = lgb.Booster(model_str=bytes(files["value.txt"]).decode("utf-8"))
        model.churn_booster_ = lgb.Booster(model_str=bytes(files["churn.txt"]).decode("utf-8"))
        return model

    @classmethod
    def load(cls, path) -> "LightGBMValueModel":
        from pathlib import Path

        path = Path(path)
        if not (path / "model.json").exists():
            raise ValueError(f"no saved LightGBM model in {path}")
        return cls.from_files({f.name: f.read_bytes() for f in path.iterdir() if f.is_file()})
