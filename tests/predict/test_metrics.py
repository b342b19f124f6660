"""Backtest metrics: known values, fair tie handling, agreement with scikit-learn."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from analytics.predict import metrics as m


@pytest.fixture
def value_data():
    rng = np.random.default_rng(3)
    actual = np.where(rng.random(500) < 0.4, rng.lognormal(3, 1, 500), 0.0)
    return actual


def test_rmse_mae_known_values():
    assert m.rmse([0, 0, 3, 4], [0, 0, 0, 0]) == pytest.approx(math.sqrt(25 / 4))
    assert m.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_constant_predictor_gini_zero_and_capture_tenth(value_data):
    const = np.full(value_data.size, 7.0)
    assert m.normalized_gini(value_data, const) == pytest.approx(0.0, abs=1e-12)
    assert m.top_decile_capture(value_data, const) == pytest.approx(0.1, abs=1e-12)
    table = m.decile_table(value_data, const)
    assert np.allclose(table["actual_share"], 0.1)
    assert np.allclose(table["customers"], value_data.size / 10)


def test_perfect_predictor_gini_one(value_data):
    assert m.normalized_gini(value_data, value_data) == pytest.approx(1.0)
    # any strictly monotone transform ranks the same way
    assert m.normalized_gini(value_data, np.log1p(value_data) * 3 + 1) == pytest.approx(1.0)
    assert m.normalized_gini(value_data, -value_data) < -0.5


def test_perfect_capture_matches_top_tenth_share():
    actual = np.arange(1, 101, dtype=float)  # 100 customers, top 10 = 91..100
    expected = actual[-10:].sum() / actual.sum()
    assert m.top_decile_capture(actual, actual) == pytest.approx(expected)


def test_ties_are_expected_value_over_random_tie_breaking():
    """Brute force: average Gini / capture over every ordering of the tied group."""
    actual = np.array([5.0, 0.0, 3.0, 9.0, 1.0, 0.0, 2.0, 4.0, 8.0, 6.0, 0.0, 7.0])
    pred = np.array([3.0, 1.0, 2.0, 2.0, 2.0, 1.0, 0.5, 2.0, 3.0, 0.1, 0.1, 2.0])
    # the group tied at 2.0 straddles the top-decile boundary (n=12 -> 1.2 customers)
    # only when the two 3.0s are removed; so also test top 30 %.
    tie_idx = np.flatnonzero(pred == 2.0)
    ginis, caps, caps30 = [], [], []
    for perm in itertools.permutations(range(tie_idx.size)):
        p = pred.copy()
        p[tie_idx] = 2.0 + np.array(perm) * 1e-9  # break the tie in this order
        ginis.append(m.normalized_gini(actual, p))
        caps.append(m.top_decile_capture(actual, p))
        caps30.append(m.top_share_capture(actual, p, 0.3))
    assert m.normalized_gini(actual, pred) == pytest.approx(np.mean(ginis), abs=1e-7)
    assert m.top_decile_capture(actual, pred) == pytest.approx(np.mean(caps), abs=1e-7)
    assert m.top_share_capture(actual, pred, 0.3) == pytest.approx(np.mean(caps30), abs=1e-7)


def test_fractional_boundary_splits_customer():
    # 15 customers: the top 10 % is 1.5 customers: all of the best and half of the second.
    actual = np.zeros(15)
    actual[0], actual[1] = 10.0, 4.0
    actual[2:] = 1.0
    pred = -np.arange(15, dtype=float)  # ranks customers in index order
    assert m.top_decile_capture(actual, pred) == pytest.approx((10 + 2) / actual.sum())


def test_decile_table_sums_and_order(value_data):
    rng = np.random.default_rng(0)
    pred = value_data + rng.normal(0, 5, value_data.size)
    t = m.decile_table(value_data, pred)
    assert list(t["decile"]) == list(range(1, 11))
    assert t["actual_total"].sum() == pytest.approx(value_data.sum())
    assert t["predicted_total"].sum() == pytest.approx(pred.sum())
    assert t["predicted_mean"].is_monotonic_decreasing
    assert t["actual_share"].iloc[0] == pytest.approx(m.top_decile_capture(value_data, pred))


def test_spearman_matches_scipy_and_nan_for_constant(value_data):
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    pred = np.round(value_data + rng.normal(0, 10, value_data.size))
    assert m.spearman(value_data, pred) == pytest.approx(spearmanr(value_data, pred).statistic)
    assert math.isnan(m.spearman(value_data, np.zeros_like(value_data)))


@pytest.mark.parametrize("with_ties", [False, True])
def test_churn_metrics_match_sklearn(with_ties):
    rng = np.random.default_rng(7)
    y = (rng.random(2000) < 0.3).astype(float)
    score = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.25, y.size), 0, 1)
    if with_ties:
        score = np.round(score, 1)
    assert m.roc_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert m.pr_auc(y, score) == pytest.approx(skm.average_precision_score(y, score), abs=1e-12)
    assert m.brier_score(y, score) == pytest.approx(skm.brier_score_loss(y, score), abs=1e-12)


def test_churn_constant_score_auc_half_and_one_class_nan():
    y = np.array([0, 1, 0, 1, 1.0])
    assert m.roc_auc(y, np.full(5, 0.4)) == pytest.approx(0.5)
    assert m.pr_auc(y, np.full(5, 0.4)) == pytest.approx(0.6)  # positive rate
    assert math.isnan(m.roc_auc(np.ones(4), np.linspace(0, 1, 4)))


def test_bad_input_messages():
    with pytest.raises(ValueError, match="differ in length"):
        m.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="0 or 1"):
        m.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.brier_score([0, 1], [0.1, 1.2])
    with pytest.raises(ValueError, match="no customers"):
        m.value_metrics([], [])


def test_value_metrics_dict(value_data):
    out = m.value_metrics(value_data, value_data * 1.1)
    assert out["total_ratio"] == pytest.approx(1.1)
    assert out["normalized_gini"] == pytest.approx(1.0)
    assert set(m.churn_metrics([0, 1, 1], [0.2, 0.8, 0.6])) == {"roc_auc", "pr_auc", "brier"}
