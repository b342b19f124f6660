"""Backtest features: calibration-only features and sequences, holdout targets, no leakage, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.predict.features import SEQUENCE_CHANNELS, BacktestError, backtest_frames, window_data

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


def test_training_window_ends_at_cutoff(wh):
    add_events(wh, "s", small_events())
    train, test = backtest_frames(wh, "s", CUT, "2025-04-30")
    assert train.cutoff == pd.Timestamp("2025-03-01") and train.target_end == pd.Timestamp(CUT)
    assert test.cutoff == pd.Timestamp(CUT)
    assert train.sequences.shape[1] == test.sequences.shape[1]
    # training targets come from (2025-03-01, 2025-03-31]: only a's purchase on the 31st
    assert train.targets["holdout_value"].sum() == pytest.approx(5.0)


def test_bad_input(wh):
    add_events(wh, "s", small_events())
    with pytest.raises(BacktestError, match="outside the data"):
        backtest_frames(wh, "s", "2023-01-01", "2023-03-01")
    with pytest.raises(BacktestError, match="outside the data"):
        backtest_frames(wh, "s", "2025-05-20", "2025-06-30")
    with pytest.raises(BacktestError, match="must be after"):
        backtest_frames(wh, "s", CUT, "2025-03-01")
    with pytest.raises(BacktestError, match="too little history"):
        backtest_frames(wh, "s", "2025-01-20", "2025-04-30")
    with pytest.raises(BacktestError, match="no purchases between"):
        backtest_frames(wh, "s", "2025-04-11", "2025-05-10")
    with pytest.raises(BacktestError, match="not a date"):
        backtest_frames(wh, "s", "soon", END)
    one = pd.DataFrame([("x", "2025-01-01", "purchase", 1.0), ("x", "2025-06-01", "purchase", 1.0)],
                       columns=["customer_id", "event_time", "event_type", "revenue"])
    add_events(wh, "one", one)
    with pytest.raises(BacktestError, match="at least 2"):
        backtest_frames(wh, "one", "2025-03-01", "2025-04-01")


def test_short_history_uses_half_the_calibration_span(wh):
    add_events(wh, "s", small_events())
    train, test = backtest_frames(wh, "s", CUT, "2025-12-31")
    # 121 days of data up to the cut-off -> a 60-day training target period
    assert train.horizon_days == 60 and train.cutoff == pd.Timestamp("2025-01-30")
    assert test.horizon_days == 275
