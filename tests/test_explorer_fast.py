"""The Explorer frame's fast paths give the same columns as the plain expressions."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics import explorer
from analytics.scores import Scorer, rfm_scores, rfm_segments


def test_labels_equal_the_object_array_column():
    names = ("Champions", "Loyal", "At <b>risk</b>", "No purchase yet")
    codes = np.array([3, 0, 0, 2, 1, 3, 2], dtype=np.int8)
    frame = pd.DataFrame({"a": np.arange(7.0)})
    frame["fast"] = explorer._labels(codes, names)
    frame["plain"] = np.asarray(names, dtype=object)[codes]
    pd.testing.assert_series_equal(frame["fast"], frame["plain"], check_names=False, check_exact=True)
    assert frame["fast"].tolist() == [names[c] for c in codes]
    empty = pd.DataFrame(index=pd.RangeIndex(0))
    empty["x"] = explorer._labels(np.array([], dtype=np.int8), names)
    assert len(empty) == 0


def test_frame_scores_equal_the_scorer_and_rfm_segments():
    rng = np.random.default_rng(2)
    n = 4000
    as_of = pd.Timestamp("2024-06-30")
    orders = rng.integers(0, 6, n)
    last = as_of - pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    summary = pd.DataFrame({
        "first_purchase": (last - pd.to_timedelta(rng.integers(0, 300, n), unit="D")).where(orders > 0),
        "last_purchase": last.where(orders > 0), "n_orders": orders,
        "net_revenue": np.where(orders > 0, rng.integers(0, 40, n) * 5.0, 0.0),
        "n_views": rng.integers(0, 30, n), "n_searches": rng.integers(0, 5, n), "n_carts": rng.integers(0, 4, n),
        "n_purchases": orders, "n_reviews": rng.integers(0, 2, n),
    }, index=pd.Index([f"c{i:05d}" for i in range(n)], name="customer_id"))
    summary.attrs.update(as_of=as_of, unit="days", dataset="t")
    cols = explorer.frame_scores(summary)
    rfm = rfm_scores(summary)
    plain = pd.Series(rfm_segments(rfm["r_score"].to_numpy(), rfm["fm_score"].to_numpy()), index=summary.index)
    fast = pd.Series(cols["rfm_segment"], index=summary.index)
    pd.testing.assert_series_equal(fast, plain, check_exact=True)
    assert plain.nunique() >= 5
    full = Scorer(summary).score(top_n=20)
    assert np.array_equal(cols["clv"], full.clv_formula)
    assert np.array_equal(cols["rfm_score"], full.rfm_score)
    assert np.array_equal(cols["behaviour_score"], full.behaviour_score)
    for c in ("r_score", "f_score", "m_score"):
        assert np.array_equal(cols[c], rfm[c].to_numpy())
