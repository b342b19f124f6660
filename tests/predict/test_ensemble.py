"""The backtest's ensemble: weights chosen on the validation window only (a holdout planted to
prefer other weights changes nothing), the blend's level and ranking, and the same choice on
every run."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.predict import metrics as M
from analytics.predict.backtest import blend, choose_ensemble, run_backtest

from ._events import add_events
from .test_backtest import cdnow_events

CAL, HOLD = "1997-09-30", "1998-06-30"


def _halves(n=2000, seed=3):
    rng = np.random.default_rng(seed)
    u = rng.gamma(0.5, 20.0, n) * (rng.random(n) < 0.4)
    v = rng.gamma(0.5, 20.0, n) * (rng.random(n) < 0.4)
    v *= u.mean() / v.mean()  # the same mean: the best blend of u and v over their means is half of each
    noise = rng.gamma(0.5, 20.0, n)
    return u, v, noise


def test_weights_are_the_validation_optimum_planted():
    u, v, noise = _halves()
    y = u + v  # what each of two members knows half of; the third knows nothing
    choice = choose_ensemble(y, {"lightgbm": u, "lstm": v, "paretonbd": noise})
    assert choice["weights"] == {"lightgbm": 0.5, "lstm": 0.5, "paretonbd": 0.0}
    assert choice["validation_gini"] == pytest.approx(1.0)  # the blend is proportional to y: a perfect order
    assert choice["best_single_gini"] == pytest.approx(max(M.normalized_gini(y, u), M.normalized_gini(y, v)))
    assert choice["validation_gini"] > choice["best_single_gini"] + 0.1
    # the same inputs in another order of members give the same weights per member
    again = choose_ensemble(y, {"paretonbd": noise, "lstm": v, "lightgbm": u})
    assert again["weights"] == choice["weights"]


def test_no_ensemble_when_a_single_member_is_best():
    u, v, noise = _halves()
    assert choose_ensemble(u, {"lightgbm": u, "lstm": v, "paretonbd": noise}) is None
    assert choose_ensemble(u, {"lightgbm": u}) is None  # one member: nothing to blend


def test_blend_ranks_by_every_member_and_keeps_the_learned_total():
    a = np.array([4.0, 3.0, 2.0, 1.0, 0.0])  # total 10
    b = np.array([0.0, 10.0, 20.0, 30.0, 40.0])  # total 100
    c = np.array([1.0, 1.0, 1.0, 1.0, 6.0])  # total 10, not a learned model
    churn = np.full(5, 0.5)
    w = {"lightgbm": 0.5, "lstm": 0.25, "paretonbd": 0.25}
    value, p = blend({"lightgbm": (a, churn), "lstm": (b, churn * 0), "paretonbd": (c, churn)}, w)
    # level: the learned members' mean, weighted 0.5 : 0.25 -> (0.5 * 2 + 0.25 * 20) / 0.75 = 8 per customer
    assert value.sum() == pytest.approx(5 * 8.0)
    score = 0.5 * a / 2.0 + 0.25 * b / 20.0 + 0.25 * c / 2.0
    np.testing.assert_allclose(value, score * 8.0)
    np.testing.assert_allclose(p, (0.5 * 0.5 + 0.25 * 0.0) / 0.75)  # churn from the learned members only


@pytest.fixture(scope="module")
def cdnow_runs():
    """The CDNOW 39/39 backtest (LightGBM, with Pareto/NBD as an ensemble member) on the real
    holdout and on a planted one: the same calibration data, a holdout where each customer
    spends the square of the Pareto/NBD prediction (the holdout would pick Pareto/NBD alone)."""
    from analytics.warehouse import Warehouse

    events = cdnow_events()
    runs = []
    planted = None
    for k in range(2):
        wh = Warehouse(":memory:")
        ev = events
        if k == 1:
            cal = events[events["event_time"] <= CAL]
            ev = pd.concat([cal, planted], ignore_index=True)
        add_events(wh, "cdnow", ev)
        try:
            res = run_backtest(wh, "cdnow", CAL, HOLD, models=["lightgbm"], device="cpu")
        finally:
            wh.close()
        runs.append(res)
        if k == 0:
            pn = res.predictions["paretonbd_value"]
            pn = pn[pn > pn.quantile(0.5)]
            planted = pd.DataFrame({"customer_id": pn.index.astype(str), "event_time": pd.Timestamp("1998-03-01"),
                                    "event_type": "purchase", "revenue": (pn.to_numpy() ** 2).round(2) + 0.01})
            # the data reach the holdout end (a view: no purchase, no value)
            planted.loc[len(planted)] = [str(pn.index[0]), pd.Timestamp(HOLD), "view", np.nan]
    return runs


def test_ensemble_weights_come_from_validation_only(cdnow_runs):
    real, planted = cdnow_runs
    assert "ensemble" in real.metrics.index, real.info["models"]
    assert real.info["ensemble"].startswith("ensemble: ")
    # the note names the models as the page's table does, not by their keys
    assert " x LightGBM" in real.info["ensemble"] and "lightgbm" not in real.info["ensemble"], real.info["ensemble"]
    # the planted holdout prefers other weights...
    y = planted.predictions["actual_value"].to_numpy()
    members = {m: planted.predictions[f"{m}_value"].to_numpy() for m in ("lightgbm", "paretonbd")}
    holdout_choice = choose_ensemble(y, members)
    chosen = real.info["models"]["ensemble"]["weights"]
    assert holdout_choice is None or holdout_choice["weights"] != chosen
    assert M.normalized_gini(y, members["paretonbd"]) > planted.metrics.loc["ensemble", "normalized_gini"]
    # ...and changes nothing that was chosen or predicted: the same weights and the same predictions
    assert planted.info["models"]["ensemble"] == real.info["models"]["ensemble"]
    for col in ("ensemble_value", "ensemble_churn", "lightgbm_value", "paretonbd_value"):
        np.testing.assert_array_equal(planted.predictions[col].to_numpy(), real.predictions[col].to_numpy())
    assert planted.metrics.loc["ensemble", "validation_gini"] == real.metrics.loc["ensemble", "validation_gini"]
    assert planted.metrics.loc["ensemble", "normalized_gini"] != real.metrics.loc["ensemble", "normalized_gini"]


def test_ensemble_total_is_the_learned_total(cdnow_runs):
    res = cdnow_runs[0]
    p = res.predictions
    assert p["ensemble_value"].sum() == pytest.approx(p["lightgbm_value"].sum(), rel=1e-9)
    assert abs(res.metrics.loc["ensemble", "total_ratio"] - 1) <= 0.10
    choice = res.info["models"]["ensemble"]
    assert choice["validation_gini"] == pytest.approx(res.metrics.loc["ensemble", "validation_gini"])
    assert choice["validation_gini"] > choice["best_single_gini"]


@pytest.mark.slow
def test_cdnow_ensemble_with_the_lstm_is_deterministic():
    """Both learned models and Pareto/NBD, twice: the same weights and predictions every run."""
    from analytics.warehouse import Warehouse

    out = []
    for _ in range(2):
        wh = Warehouse(":memory:")
        add_events(wh, "cdnow", cdnow_events())
        try:
            out.append(run_backtest(wh, "cdnow", CAL, HOLD, models=["lightgbm", "lstm"], device="cpu"))
        finally:
            wh.close()
    a, b = out
    assert "ensemble" in a.metrics.index
    assert a.info["models"]["ensemble"] == b.info["models"]["ensemble"]
    np.testing.assert_array_equal(a.predictions["ensemble_value"].to_numpy(), b.predictions["ensemble_value"].to_numpy())
    assert abs(a.metrics.loc["ensemble", "total_ratio"] - 1) <= 0.10
