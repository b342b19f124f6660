"""LSTM/ZILN value model: learning, baselines on planted trends, device handling, seeding, contract."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analytics.device import DeviceError
from analytics.predict import NotFittedError
from analytics.predict import metrics as m
from analytics.predict.lstm import LSTMValueModel, ziln_expected_value, ziln_loss

HOLDOUT = 4


def planted(n: int, periods: int, seed: int):
    """Per-period purchases/views/revenue whose rate trends up or down; the holdout
    value follows the rate at the END of the calibration, not its average."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, periods // 2, n)
    r0 = rng.lognormal(-0.7, 0.4, n)
    slope = rng.uniform(-3.0, 3.0, n)
    aov = rng.lognormal(3.0, 0.3, n)
    t = np.arange(periods + HOLDOUT)[None, :]
    frac = (t - start[:, None]) / periods
    rate = np.where(t >= start[:, None], r0[:, None] * np.exp(slope[:, None] * frac), 0.0)
    buys = rng.poisson(rate)
    views = rng.poisson(3 * rate)
    revenue = buys * aov[:, None]
    seq = np.stack([buys[:, :periods], views[:, :periods], revenue[:, :periods]], axis=2).astype(float)
    y = revenue[:, periods:].sum(axis=1)
    cal_buys = seq[:, :, 0].sum(axis=1)
    cal_rev = seq[:, :, 2].sum(axis=1)
    aov_cal = np.where(cal_buys > 0, cal_rev / np.maximum(cal_buys, 1), np.nan)
    aov_cal = np.where(np.isnan(aov_cal), np.nanmean(aov_cal), aov_cal)
    static = np.column_stack([np.log1p(cal_buys), np.log(aov_cal)])
    naive = cal_buys / (periods - start) * HOLDOUT * aov_cal
    return seq, static, y, naive


@pytest.fixture(scope="module")
def fitted():
    seq, static, y, _ = planted(2400, 20, seed=1)
    seq_v, static_v, y_v, _ = planted(600, 20, seed=2)
    events = []
    model = LSTMValueModel(epochs=25, patience=5, batch_size=256, learning_rate=0.01, device="cpu",
                           num_threads=1, random_state=0)
    model.fit(seq, static, y, validation_data=(seq_v, static_v, y_v), progress=events.append)
    return model, events


def test_ziln_loss_and_expectation():
    out = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.5, -1.0]])
    y = torch.tensor([0.0, 3.0])
    sigma = (torch.nn.functional.softplus(out[:, 2]) + 1e-3).tolist()
    bce = (math.log(2) + math.log1p(math.exp(-2.0))) / 2
    ly = math.log(3.0)
    nll = ly + math.log(sigma[1]) + 0.5 * math.log(2 * math.pi) + (ly - 0.5) ** 2 / (2 * sigma[1] ** 2)
    assert float(ziln_loss(out, y)) == pytest.approx(bce + nll / 2, rel=1e-5)
    p, ev = ziln_expected_value(out)
    assert float(p[0]) == pytest.approx(0.5)
    assert float(ev[0]) == pytest.approx(0.5 * math.exp(1.0 + sigma[0] ** 2 / 2), rel=1e-5)


def test_loss_decreases_and_progress_reported(fitted):
    model, events = fitted
    assert [e["epoch"] for e in events] == list(range(1, len(events) + 1))
    assert {"epoch", "epochs", "train_loss", "val_loss", "val_metric", "eta_s", "elapsed_s"} <= set(events[0])
    assert events[-1]["train_loss"] < events[0]["train_loss"]
    assert model.best_val_loss_ < events[0]["val_loss"]
    assert model.history_[model.best_epoch_ - 1]["val_loss"] == model.best_val_loss_
    assert events[-1]["eta_s"] == 0 or len(events) < model.epochs


def test_beats_zero_and_naive_rate_baseline_on_trending_data(fitted):
    model, _ = fitted
    seq, static, y, naive = planted(1500, 20, seed=3)
    pred = model.predict_value(seq, static)
    assert (pred >= 0).all() and np.isfinite(pred).all()
    lstm_rmse = m.rmse(y, pred)
    assert lstm_rmse < m.rmse(y, np.zeros_like(y))
    assert lstm_rmse < m.rmse(y, naive)
    assert m.normalized_gini(y, pred) > m.normalized_gini(y, naive)
    churn = model.predict_churn(seq, static)
    assert m.roc_auc((y == 0).astype(float), churn) > 0.75


def test_seed_reproducible_on_cpu():
    seq, static, y, _ = planted(400, 12, seed=5)
    kw = dict(epochs=2, batch_size=128, learning_rate=0.01, device="cpu", num_threads=1, random_state=7)
    a = LSTMValueModel(**kw).fit(seq, static, y).predict_value(seq, static)
    b = LSTMValueModel(**kw).fit(seq, static, y).predict_value(seq, static)
    c = LSTMValueModel(**{**kw, "random_state": 8}).fit(seq, static, y).predict_value(seq, static)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_prediction_independent_of_batch_composition(fitted):
    model, _ = fitted
    seq, static, _, _ = planted(300, 20, seed=9)
    whole = model.predict_value(seq, static)
    one = np.concatenate([model.predict_value(seq[i : i + 1], static[i : i + 1]) for i in range(10)])
    np.testing.assert_allclose(one, whole[:10], rtol=1e-4)


def test_device_errors():
    seq, static, y, _ = planted(50, 6, seed=0)
    missing = "mps" if torch.cuda.is_available() else "cuda"
    if missing == "mps" and torch.backends.mps.is_available():
        pytest.skip("both cuda and mps present")
    with pytest.raises(DeviceError, match="not present"):
        LSTMValueModel(device=missing, epochs=1).fit(seq, static, y)
    with pytest.raises(DeviceError, match="unknown device"):
        LSTMValueModel(device="tpu", epochs=1).fit(seq, static, y)


def test_contract_and_bad_input(tmp_path):
    model = LSTMValueModel(hidden_size=8, random_state=3)
    assert model.get_params()["hidden_size"] == 8
    assert not [k for k in vars(model) if k.endswith("_")]
    seq, static, y, _ = planted(200, 8, seed=4)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict_value(seq, static)
    with pytest.raises(ValueError, match="3-D"):
        model.fit(seq[:, :, 0], static, y)
    with pytest.raises(ValueError, match="positive holdout value"):
        model.fit(seq, static, np.zeros(len(y)))
    with pytest.raises(ValueError, match="not negative"):
        model.fit(seq, static, -np.ones(len(y)))


def test_cancel_keeps_a_usable_model():
    seq, static, y, _ = planted(600, 8, seed=6)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3  # cancel during the first epoch

    model = LSTMValueModel(epochs=50, batch_size=64, device="cpu", num_threads=1).fit(seq, static, y, should_stop=stop)
    assert model.cancelled_ and len(model.history_) == 1
    assert np.isfinite(model.predict_value(seq, static)).all()


def test_save_load_roundtrip(fitted, tmp_path):
    model, _ = fitted
    seq, static, _, _ = planted(100, 20, seed=8)
    model.save(tmp_path / "lstm")
    loaded = LSTMValueModel.load(tmp_path / "lstm", device="cpu")
    np.testing.assert_allclose(loaded.predict_value(seq, static), model.predict_value(seq, static), rtol=1e-6)
    with pytest.raises(ValueError, match="periods"):
        loaded.predict_value(seq[:, :10], static)


@pytest.mark.gpu
def test_trains_on_cuda_with_mixed_precision():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    seq, static, y, _ = planted(3000, 20, seed=1)
    model = LSTMValueModel(epochs=4, batch_size=512, learning_rate=0.01, device="cuda").fit(seq, static, y)
    assert model.device_.startswith("cuda")
    assert next(model.net_.parameters()).is_cuda
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]
    pred = model.predict_value(seq, static)
    assert np.isfinite(pred).all() and (pred >= 0).all()
