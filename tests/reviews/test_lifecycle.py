"""Next order date and churn bands: the BG/NBD waiting time against an independent formula, the bands
against their thresholds, the dataset setting, and planted bad experiences ranked riskier."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.lifecycle import (
    DEFAULT_THRESHOLDS, LifecycleError, band_thresholds, check_thresholds, churn_bands, lifecycle_columns,
    next_order_days, set_band_thresholds,
)


class _BG:
    unit_ = "weeks"
    params_ = {"r": 0.5, "alpha": 4.0, "a": 0.8, "b": 2.0}


def test_next_order_days_is_one_gap_at_the_posterior_rate():
    x, T = np.array([0.0, 1.0, 3.0, 10.0]), np.array([5.0, 20.0, 30.0, 50.0])
    got = next_order_days(_BG(), x, T)
    assert np.isnan(got[0])  # a single order: no rhythm yet
    # gamma posterior of the rate: shape r + x, rate alpha + T (per week) -> mean gap (alpha + T) / (r + x) weeks
    np.testing.assert_allclose(got[1:], 7 * (4.0 + T[1:]) / (0.5 + x[1:]))


def test_bands_follow_the_thresholds():
    risk = [0.0, 0.29, 0.3, 0.69, 0.7, 1.0, np.nan]
    assert list(churn_bands(risk)) == ["low", "low", "medium", "medium", "high", "high", None]
    assert list(churn_bands(risk, (0.1, 0.5))) == ["low", "medium", "medium", "high", "high", "high", None]
    for bad in [(0.7, 0.3), (0, 0.5), (0.5, 1), ("a", 1), (0.2,)]:
        with pytest.raises(LifecycleError):
            check_thresholds(bad)


def test_thresholds_are_a_dataset_setting(wh):
    wh.cursor().execute("INSERT INTO datasets (name) VALUES ('d')")
    assert band_thresholds(wh, "d") == DEFAULT_THRESHOLDS
    assert set_band_thresholds(wh, "d", [0.2, 0.6]) == (0.2, 0.6)
    assert band_thresholds(wh, "d") == (0.2, 0.6)
    with pytest.raises(LifecycleError):
        set_band_thresholds(wh, "d", [0.6, 0.2])
    assert band_thresholds(wh, "d") == (0.2, 0.6)  # a refused change keeps the setting
    set_band_thresholds(wh, "d", None)
    assert band_thresholds(wh, "d") == DEFAULT_THRESHOLDS


def test_repeat_buyers_get_dates_and_bands_and_bad_experiences_rank_riskier(generated):
    """On the generated sample: BG/NBD fitted at the end of the history; customers with a planted bad
    experience land in higher bands than other repeat buyers of their persona, and their churn is
    higher in the truth file."""
    from analytics.explorer import build_frame
    from analytics.scores import fit_clv_models, probabilistic_clv

    wh, _, truth, _ = generated
    frame = build_frame(wh, "g", "2025-12-31")
    models = fit_clv_models(frame)
    prob, _ = probabilistic_clv(frame, models=models)
    frame = frame.join(prob[["p_alive"]])
    cols = lifecycle_columns(frame, "2025-12-31", bgnbd=models[0])
    repeat = frame["frequency"] >= 1
    assert cols.loc[repeat, "churn_band"].notna().all() and cols.loc[~repeat, "churn_band"].isna().all()
    assert cols.loc[repeat, "next_order_date"].notna().all() and cols.loc[~repeat, "next_order_date"].isna().all()
    assert (cols.loc[repeat, "next_order_date"] > pd.Timestamp("2025-12-31")).all()
    exp = churn_bands(1 - frame.loc[repeat, "p_alive"])
    assert (cols.loc[repeat, "churn_band"].to_numpy() == exp).all()
    t = truth.loc[frame.index[repeat]]
    risk = 1 - frame.loc[repeat, "p_alive"]
    bad = (t["bad_experiences"] > 0).to_numpy()
    for persona in ("loyal_high_spender", "bargain_hunter"):
        p = (t["persona"] == persona).to_numpy()
        assert risk[p & bad].mean() > risk[p & ~bad].mean() + 0.1, persona
        assert t["churned"][p & bad].mean() > t["churned"][p & ~bad].mean(), persona
    high = (cols.loc[repeat, "churn_band"] == "high").to_numpy()
    assert t["churned"][high].mean() > t["churned"][~high].mean() + 0.3
