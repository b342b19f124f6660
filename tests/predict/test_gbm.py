"""LightGBM value/churn model: contract, determinism, learning on planted data, explanations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.predict import NotFittedError
from analytics.predict import metrics as m
from analytics.predict.gbm import LightGBMValueModel


def planted(n, seed):
    """Holdout value driven by frequency and recency; 'noise' features carry nothing."""
    rng = np.random.default_rng(seed)
    freq = rng.poisson(3, n).astype(float)
    recency = rng.uniform(0, 365, n)
    aov = rng.lognormal(3, 0.5, n)
    noise = rng.normal(size=(n, 3))
    p_buy = 1 / (1 + np.exp(-(0.6 * freq - recency / 80)))
    buys = rng.random(n) < p_buy
    value = np.where(buys, aov * (1 + rng.poisson(0.5 * freq)), 0.0)
    X = pd.DataFrame({"frequency": freq, "recency_days": recency, "aov": aov,
                      "noise_a": noise[:, 0], "noise_b": noise[:, 1], "noise_c": noise[:, 2]})
    return X, value, (~buys).astype(float)


@pytest.fixture(scope="module")
def data():
    return planted(4000, 1), planted(1000, 2), planted(2000, 3)


@pytest.fixture(scope="module")
def fitted(data):
    (X, y, c), (Xv, yv, cv), _ = data
    return LightGBMValueModel(n_estimators=300, learning_rate=0.05, random_state=0).fit(
        X, y, c, X_val=Xv, y_value_val=yv, y_churn_val=cv
    )


def test_init_stores_params_only():
    model = LightGBMValueModel(num_leaves=7, random_state=5)
    assert model.get_params()["num_leaves"] == 7
    assert not [k for k in vars(model) if k.endswith("_")]
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict_value(np.zeros((2, 3)))


def test_learns_planted_signal(fitted, data):
    _, _, (Xt, yt, ct) = data
    pv = fitted.predict_value(Xt)
    assert (pv >= 0).all()
    assert m.rmse(yt, pv) < m.rmse(yt, np.full_like(yt, yt.mean()))
    assert m.normalized_gini(yt, pv) > 0.4
    pc = fitted.predict_churn(Xt)
    assert m.roc_auc(ct, pc) > 0.75
    # early stopping recorded validation curves and a best iteration within budget
    assert 1 <= fitted.best_iteration_["value"] <= 300
    assert len(fitted.history_["value"]["tweedie"]) >= fitted.best_iteration_["value"]


def test_deterministic(data):
    (X, y, c), (Xv, yv, cv), (Xt, _, _) = data
    kw = dict(n_estimators=60, random_state=11)
    a = LightGBMValueModel(**kw).fit(X, y, c, X_val=Xv, y_value_val=yv, y_churn_val=cv)
    b = LightGBMValueModel(**kw).fit(X, y, c, X_val=Xv, y_value_val=yv, y_churn_val=cv)
    assert np.array_equal(a.predict_value(Xt), b.predict_value(Xt))
    assert np.array_equal(a.predict_churn(Xt), b.predict_churn(Xt))


def test_explanations_sum_to_raw_score_and_rank_signal_first(fitted, data):
    _, _, (Xt, _, _) = data
    contrib = fitted.explain(Xt.head(50))
    assert list(contrib.columns[-1:]) == ["bias"]
    np.testing.assert_allclose(np.exp(contrib.sum(axis=1)), fitted.predict_value(Xt.head(50)), rtol=1e-6)
    imp = fitted.feature_importance()
    assert set(imp["feature"].head(3)) == {"frequency", "recency_days", "aov"}
    assert imp["gain_share"].sum() == pytest.approx(1.0)
    top = fitted.top_drivers(Xt.head(5), k=2, target="churn")
    assert len(top) == 10 and set(top["rank"]) == {1, 2}
    assert top["feature"].isin(fitted.feature_names_).all()


def test_save_load_roundtrip(fitted, data, tmp_path):
    _, _, (Xt, _, _) = data
    fitted.save(tmp_path / "gbm")
    loaded = LightGBMValueModel.load(tmp_path / "gbm")
    np.testing.assert_allclose(loaded.predict_value(Xt), fitted.predict_value(Xt))
    np.testing.assert_allclose(loaded.predict_churn(Xt), fitted.predict_churn(Xt))


def test_bad_input(data):
    (X, y, c), _, _ = data
    with pytest.raises(ValueError, match="single class"):
        LightGBMValueModel().fit(X, y, np.zeros(len(X)))
    with pytest.raises(ValueError, match="positive holdout value"):
        LightGBMValueModel().fit(X, np.zeros(len(X)), c)
    with pytest.raises(ValueError, match="at least 2 customers"):
        LightGBMValueModel().fit(X.head(1), y[:1], c[:1])
    with pytest.raises(ValueError, match="negative"):
        LightGBMValueModel().fit(X, -y - 1, c)
    model = LightGBMValueModel(n_estimators=5).fit(X, y, c)
    with pytest.raises(ValueError, match="missing feature"):
        model.predict_value(X.drop(columns="aov"))


def test_poisson_objective_learns_and_keeps_the_mean(data):
    """The Poisson value loss (the backtest's default): log link, its own validation metric, the
    training mean matched (a Poisson fit's predictions sum to the targets' sum at its optimum)."""
    (X, y, c), (Xv, yv, cv), (Xt, yt, _) = data
    model = LightGBMValueModel(objective="poisson", learning_rate=0.05, random_state=0).fit(
        X, y, c, X_val=Xv, y_value_val=yv, y_churn_val=cv)
    assert "poisson" in model.history_["value"] and "tweedie" not in model.history_["value"]
    pv = model.predict_value(Xt)
    assert (pv > 0).all() and m.normalized_gini(yt, pv) > 0.4
    assert model.predict_value(X).sum() == pytest.approx(y.sum(), rel=0.05)
    with pytest.raises(ValueError, match="objective must be"):
        LightGBMValueModel(objective="lambdarank").fit(X, y, c)
