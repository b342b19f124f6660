"""Backtest features: calibration-only features and sequences, holdout targets, no leakage, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.predict.features import (
    MIN_HISTORY_DAYS, SEQUENCE_CHANNELS, BacktestError, backtest_plan, feature_label, fit_statistical_models,
    model_features, plan_shape, window_data,
)

from ._events import add_events

CUT = "2025-03-31"
END = "2025-05-31"


def small_events() -> pd.DataFrame:
    rows = [
        # customer a: purchases before and after the cut-off
        ("a", "2025-01-06 10:00", "purchase", 10.0), ("a", "2025-03-31 23:59", "purchase", 5.0),
        ("a", "2025-03-30 09:00", "view", None), ("a", "2025-04-10 12:00", "purchase", 7.0),
        ("a", "2025-04-10 15:00", "purchase", 3.0), ("a", "2025-05-20 08:00", "purchase", 1.0),
        # customer b: only before; views in the last week
        ("b", "2025-02-01 10:00", "purchase", 20.0), ("b", "2025-03-27 10:00", "view", None),
        ("b", "2025-03-28 10:00", "cart", None),
        # customer c: first seen in the holdout (cannot be scored)
        ("c", "2025-04-02 10:00", "purchase", 50.0),
        # customer d: early buyer, 4 months of history
        ("d", "2024-12-01 10:00", "purchase", 8.0), ("d", "2025-01-15 10:00", "return", 8.0),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "revenue"])


def test_window_values(wh):
    add_events(wh, "s", small_events())
    w = window_data(wh, "s", CUT, END, period="weeks", n_periods=20)
    assert list(w.customers) == ["a", "b", "d"]
    t = w.targets
    assert t.loc["a", "holdout_value"] == pytest.approx(11.0)
    assert t.loc["a", "holdout_purchases"] == 2  # two distinct days
    assert t.loc["b", "churn"] == 1.0 and t.loc["a", "churn"] == 0.0
    assert w.sequences.shape == (3, 20, len(SEQUENCE_CHANNELS))
    rev = SEQUENCE_CHANNELS.index("purchase_revenue")
    view = SEQUENCE_CHANNELS.index("n_view")
    cart = SEQUENCE_CHANNELS.index("n_cart")
    # the last period is the 7 days ending on the cut-off (inclusive, up to 23:59)
    assert w.sequences[0, -1, rev] == pytest.approx(5.0)
    assert w.sequences[0, -1, view] == 1
    assert w.sequences[1, -1, view] == 1 and w.sequences[1, -1, cart] == 1
    assert w.sequences[:, :, rev].sum() == pytest.approx(10 + 5 + 20 + 8)
    f = w.features
    assert f.loc["a", "days_since_last_purchase"] == 0
    assert f.loc["b", "days_since_last_event"] == 3
    assert f.loc["a", "revenue_last_1"] == pytest.approx(5.0)
    assert f.loc["d", "return_revenue"] == pytest.approx(8.0)


def test_no_leakage_from_holdout(wh):
    """Changing, adding or removing holdout events never changes a feature or sequence."""
    base = small_events()
    add_events(wh, "orig", base)
    changed = base.copy()
    after = pd.to_datetime(changed["event_time"], format="ISO8601") > pd.Timestamp(CUT) + pd.Timedelta(days=1)
    changed.loc[after, "revenue"] = changed.loc[after, "revenue"] * 100
    extra = pd.DataFrame([("b", "2025-04-01 00:00", "purchase", 999.0), ("d", "2025-05-01", "view", None),
                          ("zz", "2025-04-15", "purchase", 5.0)], columns=base.columns)
    changed = pd.concat([changed[~after.to_numpy() | (changed["customer_id"] != "a")], extra])
    add_events(wh, "changed", changed)
    a = window_data(wh, "orig", CUT, END, n_periods=20)
    b = window_data(wh, "changed", CUT, END, n_periods=20)
    pd.testing.assert_frame_equal(a.features, b.features)
    np.testing.assert_array_equal(a.sequences, b.sequences)
    assert not a.targets.equals(b.targets)  # the targets do see the holdout


def test_inter_purchase_times_and_interactions(wh):
    add_events(wh, "s", small_events())
    f = window_data(wh, "s", CUT, END, n_periods=20).features
    # a: purchase days 2025-01-06 and 2025-03-31 -> one gap of 84 days; b and d: a single purchase day
    assert f.loc["a", "gap_min"] == f.loc["a", "gap_max"] == f.loc["a", "gap_last"] == 84
    assert f.loc["a", "gap_std"] == 0 and f.loc["a", "gap_cv"] == 0
    assert f.loc["a", "overdue_ratio"] == 0  # bought on the cut-off day
    assert np.isnan(f.loc["b", "gap_last"]) and np.isnan(f.loc["d", "overdue_ratio"])
    # recency / T (days since the first purchase, + 1)
    assert f.loc["a", "recency_ratio"] == pytest.approx(84 / 85)
    assert f.loc["b", "recency_ratio"] == 0 and f.loc["a", "repeat_rate"] == pytest.approx(1 / 85)


def test_model_features_equal_the_fitted_models(wh):
    from analytics.clv import BetaGeoModel, GammaGammaModel

    from ._events import sample_events

    ev = sample_events()
    add_events(wh, "sample", ev[ev["customer_id"] < "C0000800"])
    f = window_data(wh, "sample", "2025-06-30", None, n_periods=8).features
    bg, gg, notes = fit_statistical_models(f, 0)
    assert isinstance(bg, BetaGeoModel) and isinstance(gg, GammaGammaModel)
    m = model_features(f, 91, (bg, gg))
    buyers = f["n_orders"] > 0
    b = f[buyers]
    x, tx, tt = b["frequency"].to_numpy(), b["recency"].to_numpy() / 7, b["T"].to_numpy() / 7
    np.testing.assert_allclose(m.loc[buyers, "bg_expected_purchases"], bg.expected_purchases(13.0, x, tx, tt))
    np.testing.assert_allclose(m.loc[buyers, "bg_p_alive"], bg.expected_probability_alive(x, tx, tt))
    np.testing.assert_allclose(m.loc[buyers, "gg_expected_spend"], gg.expected_customer_spend(x, b["monetary_value"]))
    np.testing.assert_allclose(m["bg_expected_value"], m["bg_expected_purchases"] * m["gg_expected_spend"])
    assert m.loc[~buyers].isna().all().all()
    # a model that cannot be fitted leaves its columns missing, never the window
    none = model_features(f, 91, (None, gg))
    assert none["bg_expected_purchases"].isna().all() and none.loc[buyers, "gg_expected_spend"].notna().all()


def test_plan_rolling_origins_inside_the_calibration_period(wh):
    from ._events import sample_events

    add_events(wh, "sample", sample_events().query("customer_id < 'C0000600'"))
    plan = backtest_plan(wh, "sample", "2025-09-30", "2025-12-31", max_cutoffs=6)
    cal = pd.Timestamp("2025-09-30")
    assert plan.target_days == plan.holdout_days == 92 and plan.learned_error is None
    cuts = [w.cutoff for w in plan.windows]
    assert cuts[0] == cal - pd.Timedelta(days=92)  # the validation window's targets end at the calibration end
    assert all(w.target_end <= cal for w in plan.windows)  # every training target inside the calibration period
    assert all(a - b == pd.Timedelta(days=plan.step_days) for a, b in zip(cuts, cuts[1:]))
    # the validation model learns only from windows whose targets end by the validation cut-off
    assert plan.purged and all(plan.windows[k].target_end <= cuts[0] for k in plan.purged)
    assert 0 not in plan.purged
    assert plan.test.cutoff == cal and all(w.sequences.shape[1] == plan.test.sequences.shape[1] for w in plan.windows)


def test_plan_shape_short_history_cdnow_layout():
    """CDNOW: 273 days of calibration before a 273-day holdout: the training target is (273 - 28) // 2 days."""
    s = plan_shape("1997-01-01", "1997-09-30", "1998-06-30")
    assert s["holdout_days"] == 273 and s["target_days"] == (273 - MIN_HISTORY_DAYS) // 2
    cal = pd.Timestamp("1997-09-30")
    assert s["cutoffs"][0] == cal - pd.Timedelta(days=s["target_days"])
    assert min(s["cutoffs"]) >= pd.Timestamp("1997-01-01") + pd.Timedelta(days=MIN_HISTORY_DAYS - 1)
    assert all(s["cutoffs"][k] + pd.Timedelta(days=s["target_days"]) <= s["cutoffs"][0] for k in s["purged"])
    assert plan_shape("2025-01-01", "2025-01-20", "2025-03-01")["cutoffs"] == []  # too short: no learned models


def test_bad_input(wh):
    add_events(wh, "s", small_events())
    with pytest.raises(BacktestError, match="outside the data"):
        backtest_plan(wh, "s", "2023-01-01", "2023-03-01")
    with pytest.raises(BacktestError, match="is the last day of data: no day is left for the holdout"):
        backtest_plan(wh, "s", "2025-05-20", "2025-06-30")
    with pytest.raises(BacktestError, match="outside the data"):
        backtest_plan(wh, "s", "2025-05-21", "2025-06-30")
    with pytest.raises(BacktestError, match="must be after"):
        backtest_plan(wh, "s", CUT, "2025-03-01")
    with pytest.raises(BacktestError, match="after the last day of data"):
        backtest_plan(wh, "s", CUT, "2025-12-31")
    with pytest.raises(BacktestError, match="no purchases between 12 Apr 2025 and 10 May 2025"):
        backtest_plan(wh, "s", "2025-04-11", "2025-05-10")
    with pytest.raises(BacktestError, match="not a date"):
        backtest_plan(wh, "s", "soon", END)
    one = pd.DataFrame([("x", "2025-01-01", "purchase", 1.0), ("x", "2025-06-01", "purchase", 1.0)],
                       columns=["customer_id", "event_time", "event_type", "revenue"])
    add_events(wh, "one", one)
    with pytest.raises(BacktestError, match="at least 2"):
        backtest_plan(wh, "one", "2025-03-01", "2025-04-01")
    views = pd.DataFrame([("v", "2025-01-01", "view", None), ("w", "2025-02-01", "view", None),
                          ("v", "2025-03-10", "purchase", 5.0), ("w", "2025-03-20", "purchase", 7.0)],
                         columns=["customer_id", "event_time", "event_type", "revenue"])
    add_events(wh, "views", views)
    with pytest.raises(BacktestError, match=r"before the first purchase \(10 Mar 2025\)"):
        backtest_plan(wh, "views", "2025-02-15", "2025-03-20")


def test_short_history_is_a_note_for_the_learned_models_not_an_error(wh):
    add_events(wh, "s", small_events())
    plan = backtest_plan(wh, "s", "2025-01-20", "2025-04-30")
    assert plan.windows == [] and "too little history before 20 Jan 2025" in plan.learned_error
    assert "baselines" in plan.learned_error and plan.test.cutoff == pd.Timestamp("2025-01-20")


def test_every_feature_has_a_label_in_words(wh):
    """The Predict page's importance chart and a customer's drivers name features in words: every feature a
    window builds (and the statistical models' ones) has a label without machine-name underscores."""
    add_events(wh, "s", small_events())
    w = window_data(wh, "s", CUT, END, period="weeks", n_periods=20)
    names = list(w.features.columns) + ["bg_expected_purchases", "bg_p_alive", "gg_expected_spend",
                                        "bg_expected_value"]
    labels = {n: feature_label(n) for n in names}
    assert not [n for n, lab in labels.items() if "_" in lab or lab == n], labels
    assert len(set(labels.values())) == len(labels)  # no two features read the same
    assert feature_label("revenue_last_13") == "Revenue, last 13 weeks"
    assert feature_label("purchases_last_1", "months") == "Purchases, last month"
    assert feature_label("views_last_4", "months") == "Views, last 4 months"
