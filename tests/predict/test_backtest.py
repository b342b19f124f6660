"""End-to-end backtest on the shipped sample data (planted truth)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from analytics.device import DeviceError
from analytics.predict import metrics as M
from analytics.predict.backtest import BacktestError, run_backtest

from ._events import add_events, sample_events

CAL, HOLD = "2025-09-30", "2025-12-31"


@pytest.fixture(scope="module")
def sample_wh():
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    add_events(wh, "sample", sample_events())
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def result(sample_wh):
    stages = []
    res = run_backtest(sample_wh, "sample", CAL, HOLD, models=["lightgbm", "lstm"], device="cpu",
                       lstm_params={"epochs": 3, "batch_size": 256, "learning_rate": 0.005, "num_threads": 1},
                       progress=stages.append)
    return res, stages


def test_table_has_every_model_and_baseline(result):
    res, stages = result
    assert list(res.metrics.index) == ["zero", "naive", "bgnbd", "lightgbm", "lstm"]
    assert res.metrics["error"].isna().all(), res.metrics["error"].to_dict()
    assert {s["stage"] for s in stages} == set(res.metrics.index)
    assert any(s["status"] == "epoch" for s in stages)
    assert res.info["training_cutoff"] == "2025-06-30" and res.info["holdout_days"] == 92


def test_metrics_agree_with_predictions(result):
    res, _ = result
    p = res.predictions
    for name in res.metrics.index:
        assert res.metrics.loc[name, "rmse"] == pytest.approx(M.rmse(p["actual_value"], p[f"{name}_value"]))
        assert res.metrics.loc[name, "total_actual"] == pytest.approx(p["actual_value"].sum())
    assert res.metrics.loc["zero", "normalized_gini"] == pytest.approx(0.0, abs=1e-12)
    assert res.metrics.loc["zero", "top_decile_capture"] == pytest.approx(0.1)
    assert res.deciles["lightgbm"]["actual_total"].sum() == pytest.approx(p["actual_value"].sum())


def test_learned_models_beat_bgnbd_on_planted_data(result):
    res, _ = result
    t = res.metrics
    assert t.loc["lightgbm", "rmse"] < t.loc["zero", "rmse"]
    assert min(t.loc["lightgbm", "rmse"], t.loc["lstm", "rmse"]) < t.loc["bgnbd", "rmse"]
    assert max(t.loc["lightgbm", "normalized_gini"], t.loc["lstm", "normalized_gini"]) > t.loc["bgnbd", "normalized_gini"]
    assert t.loc["lightgbm", "roc_auc"] > 0.8


def test_bad_input(sample_wh):
    with pytest.raises(BacktestError, match="unknown model"):
        run_backtest(sample_wh, "sample", CAL, HOLD, models=["prophet"])
    with pytest.raises(BacktestError, match="outside the data"):
        run_backtest(sample_wh, "sample", "2030-01-01", "2030-02-01", models=[])
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not present"):
            run_backtest(sample_wh, "sample", CAL, HOLD, models=["lstm"], device="cuda")


def test_registry_saves_runs_and_scores_with_saved_models(result, sample_wh, tmp_path):
    from analytics.predict import registry

    res, _ = result
    run_id = registry.save_backtest(sample_wh, res, model_dir=tmp_path, label="test run")
    runs = registry.list_runs(sample_wh, "sample")
    assert run_id in set(runs["id"]) and (runs["label"] == "test run").any()
    saved = registry.run_models(sample_wh, run_id)
    assert saved.loc["lightgbm", "rmse"] == pytest.approx(res.metrics.loc["lightgbm", "rmse"])
    assert pd.isna(saved.loc["zero", "path"]) and (tmp_path / f"run_{run_id}" / "lstm" / "weights.pt").exists()
    # scoring as of the calibration end reproduces the backtest's own predictions
    for name in ("lightgbm", "lstm"):
        scores = registry.score_customers(sample_wh, run_id, name, CAL)
        np.testing.assert_allclose(scores["expected_value"].to_numpy(),
                                   res.predictions[f"{name}_value"].to_numpy(), rtol=1e-5)
        np.testing.assert_allclose(scores["churn_probability"].to_numpy(),
                                   res.predictions[f"{name}_churn"].to_numpy(), rtol=1e-5, atol=1e-7)
    n = registry.publish_predictions(sample_wh, run_id, "lightgbm", HOLD)
    pub = registry.published_predictions(sample_wh, "sample")
    assert len(pub) == n and (pub["model"] == "lightgbm").all() and (pub["horizon_days"] == 92).all()
    assert pub["churn_probability"].between(0, 1).all() and (pub["expected_value"] >= 0).all()
    registry.publish_predictions(sample_wh, run_id, "lstm", HOLD)  # replaces, never duplicates
    assert len(registry.published_predictions(sample_wh, "sample")) == n
    with pytest.raises(ValueError, match="no saved bgnbd"):
        registry.load_model(sample_wh, run_id, "bgnbd")
    registry.delete_run(sample_wh, run_id)
    assert not (tmp_path / f"run_{run_id}" / "lstm").exists()
    with pytest.raises(ValueError, match="no saved backtest run"):
        registry.run_models(sample_wh, run_id)
