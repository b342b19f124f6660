"""Expected outcome and the return curve."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import campaigns as c


def ranked(scores):
    s = np.sort(np.asarray(scores, float))[::-1]
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(s))], "rank": np.arange(1, len(s) + 1),
                         "rank_score": s, "group": "treatment"})


def test_response_probabilities_mean_equals_rate_and_bends():
    rng = np.random.default_rng(0)
    s = rng.lognormal(3, 1.5, 5000)
    for rate in (0.01, 0.1, 0.5, 0.9):
        p = c.response_probabilities(s, rate)
        assert p.mean() == pytest.approx(rate, rel=1e-9)
        assert p.max() <= 1.0 and p.min() >= 0.0
        order = np.argsort(-s)
        assert (np.diff(p[order]) <= 1e-12).all()
    assert (c.response_probabilities(np.zeros(10), 0.2) == 0.2).all()  # uniform when no score
    assert (c.response_probabilities([-5.0, np.nan, 0.0], 0.3) == 0.3).all()


def test_expected_outcome_arithmetic():
    t = ranked(np.linspace(100, 1, 100))
    t.loc[t.index[-10:], "group"] = "control"
    out = c.expected_outcome(t, 0.1, 50.0, 2.0)
    assert out["contacted"] == 90
    assert out["expected_responses"] == pytest.approx(9.0)
    assert out["expected_revenue"] == pytest.approx(450.0)
    assert out["cost"] == pytest.approx(180.0)
    assert out["incremental_return"] == pytest.approx(270.0)
    assert out["roi"] == pytest.approx(1.5)
    assert c.expected_outcome(t, 0.1, 50.0, 0.0)["roi"] is None
    with pytest.raises(c.CampaignError, match="between 0 and 1"):
        c.expected_outcome(t, 1.5, 50.0, 2.0)
    with pytest.raises(c.CampaignError, match="negative"):
        c.expected_outcome(t, 0.1, 50.0, -2.0)


def test_return_curve_break_even_and_downsampling():
    t = ranked(np.linspace(1000, 1, 2000))
    curve = c.return_curve(t, 0.1, 40.0, 3.0, max_points=200)
    assert len(curve) <= 200
    assert curve["n_contacted"].iloc[0] == 1 and curve["n_contacted"].iloc[-1] == 2000
    # independently: p_i = rate * s_i / mean(s) (no clipping needed here)
    s = t["rank_score"].to_numpy()
    p = 0.1 * s / s.mean()
    assert p.max() < 1
    inc = np.cumsum(p) * 40.0 - 3.0 * np.arange(1, 2001)
    be = int(np.flatnonzero(p * 40.0 >= 3.0)[-1] + 1)
    assert curve.attrs["break_even"] == be
    assert curve.attrs["best_n"] == int(np.argmax(inc) + 1) == be
    assert curve.attrs["zero_return_n"] == int(np.flatnonzero(inc >= 0)[-1] + 1)
    row = curve.set_index("n_contacted").loc[be]
    assert row["incremental_return"] == pytest.approx(inc[be - 1])
    assert row["roi"] == pytest.approx(inc[be - 1] / (3.0 * be))
    # nothing pays: no break-even
    none = c.return_curve(t, 0.01, 1.0, 5.0)
    assert none.attrs["break_even"] is None and none.attrs["zero_return_n"] is None
    # control rows are not contacted
    t2 = t.copy()
    t2.loc[t2.index[::10], "group"] = "control"
    assert c.return_curve(t2, 0.1, 40.0, 3.0)["n_contacted"].iloc[-1] == 1800
