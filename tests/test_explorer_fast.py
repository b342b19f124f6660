"""The Explorer frame's fast paths give the same columns as the plain expressions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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


def test_history_located_days_are_kept_and_give_the_same_summaries(wh):
    from analytics.bootstrap import ensure_default_dataset
    from analytics.summary import summary_history

    ensure_default_dataset(wh)
    hist = summary_history(wh, "sample")
    fresh = summary_history(wh, "sample")
    days = ["2025-12-31", "2024-09-15", "2025-03-01", "2024-01-10", "2025-07-04", "2025-12-31"]
    for day in days:  # more days than are kept: old ones are recomputed
        pos = hist.customer_positions(day)
        with np.testing.assert_raises(ValueError):
            pos[0] = 0  # kept arrays are read-only
        pd.testing.assert_frame_equal(hist.summary(day), fresh.summary(day), check_exact=True)
        assert np.array_equal(pos, fresh.customer_positions(day))
        assert hist.customer_index[pos].equals(hist.summary(day).index)
    assert len(hist._located_cache) == hist.LOCATED_CACHE_DAYS


def test_comparison_takes_series_arrays_and_lists_alike():
    frame = pd.DataFrame({
        "net_revenue": [10.0, 0.0, 5.0, 7.0], "n_orders": [2, 0, 1, 1], "clv": [3.0, 0.0, 1.0, np.nan],
        "last_purchase": pd.to_datetime(["2024-06-01", None, "2024-01-01", "2024-06-20"]),
    }, index=pd.Index(["a", "b", "c", "d"], dtype=str, name="customer_id"))
    mask = pd.Series([True, False, True, True], index=frame.index)
    as_series = explorer.segment_comparison(frame, {"g": mask}, as_of="2024-06-30")
    as_array = explorer.segment_comparison(frame, {"g": mask.to_numpy()}, as_of="2024-06-30")
    as_list = explorer.segment_comparison(frame, {"g": [True, False, True, True]}, as_of="2024-06-30")
    pd.testing.assert_frame_equal(as_series, as_array)
    pd.testing.assert_frame_equal(as_series, as_list)
    row = as_series.iloc[0]
    assert row["customers"] == 3 and row["revenue"] == 22.0 and row["avg_clv"] == 2.0
    assert row["retention"] == pytest.approx(2 / 3)


def test_migration_earlier_date_from_history_arrays_equals_the_rfm_scores_path(wh):
    from analytics.bootstrap import ensure_default_dataset
    from analytics.scores import rfm_scores, rfm_segments
    from analytics.summary import summary_history

    ensure_default_dataset(wh)
    hist = summary_history(wh, "sample")
    for day in ("2025-12-31", "2025-02-14", "2024-06-01", "2023-01-01", "2000-01-01"):
        light = explorer.rfm_segment_frame(wh, "sample", day, history=hist)
        inputs = hist.rfm_inputs(day)
        if inputs.empty:
            assert light.empty
            continue
        rfm = rfm_scores(inputs)
        want = pd.Series(rfm_segments(rfm["r_score"].to_numpy(), rfm["fm_score"].to_numpy()), index=inputs.index)
        pd.testing.assert_series_equal(light["rfm_segment"], want, check_names=False, check_exact=True)
        assert light.index.equals(inputs.index) and light.attrs["as_of"] == str(pd.Timestamp(day).date())
        full = explorer.build_frame(wh, "sample", day, history=hist)
        assert (light["rfm_segment"].to_numpy() == full["rfm_segment"].to_numpy()).all()
        pos, days, n_orders, net = hist.rfm_values(day)
        np.testing.assert_array_equal(days, rfm["days_since_last_purchase"].to_numpy())
        assert n_orders.tolist() == inputs["n_orders"].tolist()
        assert light["rfm_segment"].nunique() >= 3


def test_rfm_migration_equals_segment_migration_of_the_earlier_segment_frame(wh):
    from analytics.bootstrap import ensure_default_dataset
    from analytics.summary import summary_history

    ensure_default_dataset(wh)
    hist = summary_history(wh, "sample")
    later = explorer.build_frame(wh, "sample", "2025-12-31", history=hist)
    seen_moves = 0
    for day in ("2025-09-30", "2025-02-14", "2024-06-01", "2000-01-01"):
        fast = explorer.rfm_migration(wh, "sample", day, later, history=hist)
        earlier = explorer.rfm_segment_frame(wh, "sample", day, history=hist)
        want = explorer.segment_migration(earlier, later, "rfm_segment", history=hist)
        pd.testing.assert_frame_equal(fast, want, check_exact=True)
        # and the id-matched path (no history) gives the same flows
        plain = explorer.segment_migration(explorer.rfm_segment_frame(wh, "sample", day), later, "rfm_segment")
        pd.testing.assert_frame_equal(fast, plain, check_exact=True)
        assert int(fast["customers"].sum()) == len(later.index.union(earlier.index))
        seen_moves += int(fast.loc[fast["from"] != fast["to"], "customers"].sum())
    assert seen_moves > 0
    before_all = explorer.rfm_migration(wh, "sample", "2000-01-01", later, history=hist)
    assert set(before_all["from"]) == {explorer.NOT_A_CUSTOMER}
    # a frame that is not the history's (rows reordered) takes the id-matched path: same flows
    shuffled = later.iloc[::-1]
    pd.testing.assert_frame_equal(explorer.rfm_migration(wh, "sample", "2025-02-14", shuffled, history=hist),
                                  explorer.rfm_migration(wh, "sample", "2025-02-14", later, history=hist),
                                  check_exact=True)
