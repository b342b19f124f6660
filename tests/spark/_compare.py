"""Column-by-column comparison of two per-customer frames (Spark engine vs warehouse)."""
from __future__ import annotations

import numpy as np
import pandas as pd

RTOL = 1e-6


def assert_frames_equal(got: pd.DataFrame, want: pd.DataFrame, rtol: float = RTOL) -> dict:
    """Same columns, dtypes and rows; integers, strings and timestamps exactly equal, floats
    within ``rtol`` relative (NaN where the other is NaN). Returns the worst relative
    difference per float column."""
    assert list(got.columns) == list(want.columns), (set(got.columns) ^ set(want.columns))
    assert len(got) == len(want)
    worst = {}
    for c in want.columns:
        a, b = got[c], want[c]
        assert a.dtype == b.dtype or (a.dtype.kind in "OTU" and b.dtype.kind in "OTU") or (
            pd.api.types.is_string_dtype(a) and pd.api.types.is_string_dtype(b)), (c, a.dtype, b.dtype)
        if b.dtype.kind == "f":
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            assert (np.isnan(x) == np.isnan(y)).all(), f"{c}: NaN in different rows"
            ok = ~np.isnan(y)
            rel = np.abs(x[ok] - y[ok]) / np.maximum(np.abs(y[ok]), 1e-300)
            rel[x[ok] == y[ok]] = 0.0
            worst[c] = float(rel.max()) if rel.size else 0.0
            assert worst[c] <= rtol, f"{c}: relative difference {worst[c]:.3g}"
        else:
            same = (a.to_numpy() == b.to_numpy()) | (a.isna().to_numpy() & b.isna().to_numpy())
            assert same.all(), f"{c}: {int((~same).sum())} rows differ, e.g. {a[~same].head(3).tolist()} vs {b[~same].head(3).tolist()}"
    return worst


def assert_scores_equal(got: pd.DataFrame, want: pd.DataFrame, rtol: float = RTOL) -> dict:
    """:func:`assert_frames_equal` for ``valuescope score`` files of the Spark engine: the columns
    the engine leaves empty (review sentiment, first-order value) are empty there and compared
    only by name and place."""
    from analytics.spark.scoring import WAREHOUSE_ONLY

    assert list(got.columns) == list(want.columns), (set(got.columns) ^ set(want.columns))
    for c in WAREHOUSE_ONLY:
        assert got[c].isna().all(), c
    return assert_frames_equal(got.drop(columns=list(WAREHOUSE_ONLY)), want.drop(columns=list(WAREHOUSE_ONLY)), rtol)
