"""End-to-end backtest on the shipped sample data (planted truth)."""
from __future__ import annotations

import numpy as np
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
