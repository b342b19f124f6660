"""The fast paths of analytics.scores give exactly the results of the plain definitions:
quintile scores without a per-customer rank, and a Scorer asked for scores only (top_n=0)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from analytics.scores import Scorer, quintile_scores


def rank_quintiles(values, higher_is_better=True) -> np.ndarray:
    """The module docstring's rule written out with scipy's average ranks."""
    x = np.asarray(values, dtype=np.float64)
    out = np.zeros(len(x), dtype=np.int8)
    ok = ~np.isnan(x)
    n = int(ok.sum())
    if n:
        v = x[ok] if higher_is_better else -x[ok]
        p = (rankdata(v, method="average") - 0.5) / n
        out[ok] = np.clip(np.floor(5.0 * p).astype(np.int64) + 1, 1, 5)
    return out


def _cases(seed: int = 7):
    rng = np.random.default_rng(seed)
    yield np.array([])
    yield np.array([np.nan, np.nan])
    yield np.array([4.0])
    yield np.array([0.0, -0.0, 1.0, 0.0])
    yield np.array([np.inf, -np.inf, 1.0, np.nan, 1.0])
    for i in range(600):
        n = int(rng.integers(1, 80))
        kind = i % 5
        if kind == 0:
            x = rng.integers(0, 4, n).astype(float)           # heavy ties (order counts)
        elif kind == 1:
            x = rng.normal(size=n)                             # distinct values
        elif kind == 2:
            x = rng.integers(0, 3, n).astype(float)
            x[rng.random(n) < 0.3] = np.nan                    # unscored customers
        elif kind == 3:
            x = np.round(rng.exponential(size=n), 1)
            x[rng.random(n) < 0.1] = np.inf
        else:
            x = rng.choice([0.0, -0.0, 1.0, 2.0, np.nan], n)
        yield x


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_quintile_scores_equal_the_average_rank_rule(higher_is_better):
    n_cases = 0
    for x in _cases():
        got = quintile_scores(x, higher_is_better)
        want = rank_quintiles(x, higher_is_better)
        assert got.dtype == np.int8
        assert got.tolist() == want.tolist(), x
        n_cases += 1
    assert n_cases == 605


def test_quintile_scores_at_scale_with_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 30, 200_000).astype(float)   # orders: few distinct values
    y = rng.lognormal(3, 1, 200_000).round(2)        # revenue: many
    for v in (x, y):
        got = quintile_scores(v)
        assert got.tolist() == rank_quintiles(v).tolist()
        assert set(np.unique(got)) <= {1, 2, 3, 4, 5}
    # distinct values: each score holds a fifth
    assert np.bincount(quintile_scores(np.arange(1000.0)))[1:].tolist() == [200] * 5


def _summary(n: int, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp("2024-06-30")
    orders = rng.integers(0, 6, n)
    last = as_of - pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    first = last - pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    df = pd.DataFrame({
        "first_purchase": first.where(orders > 0), "last_purchase": last.where(orders > 0),
        "n_orders": orders, "net_revenue": np.where(orders > 0, rng.integers(0, 50, n) * 10.0, 0.0),
        "n_views": rng.integers(0, 30, n), "n_searches": rng.integers(0, 5, n), "n_carts": rng.integers(0, 4, n),
        "n_purchases": orders, "n_reviews": rng.integers(0, 2, n),
    }, index=pd.Index([f"c{i:05d}" for i in range(n)], name="customer_id"))
    df.attrs.update(as_of=as_of, unit="days", dataset="t")
    return df


def test_scores_only_equal_a_full_rescore_and_list_nobody():
    s = _summary(3000)
    only = Scorer(s).score(top_n=0)
    full = Scorer(s).score(top_n=20)
    for name in ("rfm_score", "behaviour_score", "clv_formula", "segment_codes"):
        assert np.array_equal(getattr(only, name), getattr(full, name)), name
    pd.testing.assert_frame_equal(only.segment_table, full.segment_table)
    pd.testing.assert_frame_equal(only.histogram, full.histogram)
    assert only.top_customers.empty and len(full.top_customers) == 20
    # the top list by CLV: highest first, ties by summary position
    clv = full.clv_formula
    want = np.lexsort((np.arange(len(clv)), -clv))[:20]
    assert full.top_customers["customer_id"].tolist() == s.index[want].tolist()


def _days_before_pandas(as_of, column) -> np.ndarray:
    from analytics.scores import SECONDS_PER_DAY

    ts = pd.to_datetime(column, errors="coerce")
    return (as_of - ts).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan) / SECONDS_PER_DAY


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_days_before_in_numpy_equals_pandas_bit_for_bit(unit):
    from analytics.scores import _days_before

    rng = np.random.default_rng(11)
    v = (np.datetime64("2024-01-01T00:00:00", "us")
         + rng.integers(-10**14, 10**14, 5000).astype("timedelta64[us]")).astype(f"datetime64[{unit}]")
    v[::7] = np.datetime64("NaT")
    col = pd.Series(v)
    for as_of in (pd.Timestamp("2024-06-30"), pd.Timestamp("2024-06-30 13:45:12.345678"),
                  pd.Timestamp("2024-06-30 13:45:12.345678901")):
        got, want = _days_before(as_of, col), _days_before_pandas(as_of, col)
        assert got.dtype == want.dtype == np.float64
        assert np.array_equal(got, want, equal_nan=True)
        assert np.isnan(got[::7]).all() and not np.isnan(got[1::7]).any()


def test_behaviour_columns_equal_the_matrix_formula_for_int_and_float_counts():
    from analytics.scores import BEHAVIOUR_COLUMNS, BEHAVIOUR_KEYS, _behaviour_columns, behaviour_matrix

    s = _summary(2000)
    s["n_views"] = s["n_views"].astype(float)
    s.loc[s.index[::9], "n_views"] = np.nan     # a float column with gaps
    s["n_carts"] = 2                            # a constant column scales to 0
    want = np.empty((len(s), len(BEHAVIOUR_KEYS)), dtype=np.float32)
    for j, key in enumerate(BEHAVIOUR_KEYS):
        x = np.log1p(np.clip(np.nan_to_num(s[BEHAVIOUR_COLUMNS[key]].to_numpy(float), nan=0.0), 0, None))
        lo, hi = x.min(), x.max()
        want[:, j] = (x - lo) / (hi - lo) if hi > lo else 0.0
    assert np.array_equal(behaviour_matrix(s), want)
    cols = _behaviour_columns(s)
    assert all(c.dtype == np.float32 and c.flags.c_contiguous for c in cols)
    assert np.array_equal(np.column_stack(cols), want)
    assert not want[:, BEHAVIOUR_KEYS.index("carts")].any() and want[:, 0].max() == 1.0


def test_clv_histogram_range_is_the_same_when_computed_on_first_use():
    s = _summary(3000)
    sc = Scorer(s)
    hist = sc.score(top_n=0).histogram  # ranks by CLV: its histogram spans min .. 99.5th percentile
    base = sc.clv_base
    assert sc._clv_min == float(base.min()) and sc._clv_q995 == float(np.quantile(base, 0.995))
    assert hist["customers"].sum() == len(s)
    factor = sc.score(top_n=0).clv_formula.max() / base.max()
    assert hist["right"].iloc[-1] == pytest.approx(float(np.quantile(base, 0.995)) * factor)


@pytest.mark.parametrize("counts", [
    [0, 0, 0, 0],                 # constant: scales to 0
    [3, -2, 0, 7],                # negatives count as 0
    [-5, -1, -3, -2],             # all negative
    [1, 1, 4, 900_000],           # a wide range
    [2, 5, 5, 2_000_000],         # beyond the lookup table: the direct formula
])
def test_behaviour_columns_of_integer_counts_equal_the_formula(counts):
    from analytics.scores import BEHAVIOUR_COLUMNS, BEHAVIOUR_KEYS, _behaviour_columns

    s = _summary(4)
    for dtype in (np.int64, np.int32):
        s["n_views"] = np.asarray(counts, dtype=dtype)
        x = np.log1p(np.clip(np.asarray(counts, dtype=np.float64), 0, None))
        lo, hi = x.min(), x.max()
        want = ((x - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros(4, np.float32)
        got = _behaviour_columns(s)[BEHAVIOUR_KEYS.index("views")]
        assert got.dtype == np.float32 and np.array_equal(got, want), (dtype, got, want)
    assert BEHAVIOUR_COLUMNS["views"] == "n_views"
