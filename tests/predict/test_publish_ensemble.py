"""The backtest's ensemble can be published like LightGBM or the LSTM: scored as of the calibration end
it reproduces the backtest's own ensemble predictions; published, it is read back after the warehouse
is opened again, names itself, and the one expected-CLV resolver uses it."""
from __future__ import annotations

import numpy as np
import pytest

from analytics import prepare
from analytics.predict import registry
from analytics.predict.backtest import blend, run_backtest
from analytics.warehouse import Warehouse

from ._events import add_events
from .test_backtest import cdnow_events
from .test_ensemble import CAL, HOLD


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """CDNOW (LightGBM, with Pareto/NBD as an ensemble member: validation picks a blend), saved."""
    tmp = tmp_path_factory.mktemp("ensemble")
    path = tmp / "w.duckdb"
    wh = Warehouse(path)
    add_events(wh, "cdnow", cdnow_events())
    res = run_backtest(wh, "cdnow", CAL, HOLD, models=["lightgbm"], device="cpu")
    assert "ensemble" in res.metrics.index, res.info["models"]
    run_id = registry.save_backtest(wh, res, model_dir=tmp / "models")
    wh.close()
    return path, res, run_id


def test_the_ensemble_scores_as_the_backtest_did(saved):
    path, res, run_id = saved
    wh = Warehouse(path)
    try:
        weights = registry.ensemble_weights(registry._run_info(wh, run_id))
        assert weights == {m: w for m, w in res.info["models"]["ensemble"]["weights"].items() if w > 0}
        assert len(weights) >= 2 and "lightgbm" in weights
        got = registry.score_customers(wh, run_id, "ensemble", CAL)
        assert list(got.index) == list(res.predictions.index)
        np.testing.assert_allclose(got["expected_value"].to_numpy(), res.predictions["ensemble_value"].to_numpy(),
                                   rtol=1e-5)
        np.testing.assert_allclose(got["churn_probability"].to_numpy(),
                                   res.predictions["ensemble_churn"].to_numpy(), rtol=1e-5, atol=1e-7)
        # the blend of the members' own backtest predictions, computed here
        members = {m: (res.predictions[f"{m}_value"].to_numpy(), res.predictions[f"{m}_churn"].to_numpy())
                   for m in weights}
        value, _churn = blend(members, weights)
        np.testing.assert_allclose(got["expected_value"].to_numpy(), value, rtol=1e-5)
    finally:
        wh.close()


def test_a_published_ensemble_is_read_back_and_resolved(saved):
    path, _res, run_id = saved
    wh = Warehouse(path)
    try:
        n = registry.publish_predictions(wh, run_id, "ensemble", HOLD)
        scored = registry.score_customers(wh, run_id, "ensemble", HOLD)
    finally:
        wh.close()
    wh = Warehouse(path)  # as after a restart
    try:
        pub = registry.published_predictions(wh, "cdnow")
        assert len(pub) == n == len(scored) and (pub["model"] == "ensemble").all()
        info = registry.prediction_info(pub)
        assert info["title"] == "Ensemble" and info["run_id"] == run_id and info["as_of"] == HOLD
        np.testing.assert_allclose(pub.loc[scored.index.astype(str), "expected_value"].to_numpy(),
                                   scored["expected_value"].to_numpy(), rtol=1e-9)
        vals = prepare.values(wh, "cdnow", HOLD)
        ids = pub.index.intersection(vals.index.astype(str))
        assert len(ids) == len(pub)
        v = vals.set_axis(vals.index.astype(str)).loc[ids]
        assert (v["expected_clv_source"] == "published model").all()
        np.testing.assert_allclose(v["expected_clv"].to_numpy(float), pub.loc[ids, "expected_value"].to_numpy(),
                                   rtol=1e-9)
    finally:
        wh.close()


def test_a_run_without_an_ensemble_says_why(saved, tmp_path):
    from tests.predict._events import sample_events

    wh = Warehouse(":memory:")
    try:
        ev = sample_events()
        add_events(wh, "sample", ev[ev["customer_id"] < "C0001200"])
        res = run_backtest(wh, "sample", "2025-09-30", "2025-12-31", models=["lightgbm"], device="cpu",
                           max_cutoffs=4)
        assert "ensemble" not in res.metrics.index  # validation found no better blend
        run_id = registry.save_backtest(wh, res, model_dir=tmp_path)
        with pytest.raises(ValueError, match="has no ensemble: on its validation window no blend"):
            registry.publish_predictions(wh, run_id, "ensemble", "2025-12-31")
        assert registry.published_predictions(wh, "sample").empty
    finally:
        wh.close()
