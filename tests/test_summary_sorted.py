"""The customer summary through the packed sort (canonical integer customer ids): the same rows as
the SQL statement and as an independent pandas computation, and the SQL statement wherever the sort
does not apply."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest

import analytics.summary as summary_mod
from analytics.summary import SUMMARY_COLUMNS, customer_summary
from tests.test_summary import add_events, assert_same_summary

TYPES = ["view", "search", "cart", "purchase", "return", "review"]


def spy_on(monkeypatch, name: str) -> list[bool]:
    """Records, per call of the summary module's ``name`` (a way of computing the summary that
    answers None when it does not apply), whether that way computed it."""
    seen: list[bool] = []
    real = getattr(summary_mod, name)

    def spy(*a, **k):
        sql = real(*a, **k)
        seen.append(sql is not None)
        return sql

    monkeypatch.setattr(summary_mod, name, spy)
    return seen


@pytest.fixture
def taken(monkeypatch):
    """Records, per summary from the events, whether the packed sort computed it."""
    return spy_on(monkeypatch, "_sorted_summary_sql")


def statement_summary(wh, dataset, as_of, unit="days", **kw) -> pd.DataFrame:
    """The summary computed by the SQL statement alone (the packed sort switched off)."""
    real = summary_mod._sorted_summary_sql
    summary_mod._sorted_summary_sql = lambda *a, **k: None
    try:
        return customer_summary(wh, dataset, as_of, unit, persist=False, **kw)
    finally:
        summary_mod._sorted_summary_sql = real


def planted_events(seed: int, ids) -> pd.DataFrame:
    """Random events of every type for ``ids``, with same-day repeat purchases, one-purchase
    customers, customers with only views, zero, negative and missing amounts and ratings."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2023-03-01")
    for j, cid in enumerate(ids):
        kind = j % 5
        if kind == 0:  # views only
            n, types = int(rng.integers(1, 4)), ["view"]
        elif kind == 1:  # one purchase
            n, types = 1, ["purchase"]
        else:
            n, types = int(rng.integers(2, 25)), TYPES
        base = start + pd.Timedelta(days=int(rng.integers(0, 300)))
        for _ in range(n):
            et = types[int(rng.integers(0, len(types)))] if len(types) > 1 else types[0]
            if kind >= 2 and rng.random() < 0.5:
                et = "purchase"
            when = base + pd.Timedelta(seconds=int(rng.integers(0, 86400 * rng.choice([1, 3, 400]))))
            rev = None
            if et in ("purchase", "return"):
                rev = float(rng.choice([0.0, -4.5, 12.34, 0.1, 0.2, 0.3, 99.999999, 1e-7]))
                if rng.random() < 0.05:
                    rev = None
            rating = float(rng.integers(1, 6)) if et == "review" or (et == "purchase" and rng.random() < .1) else None
            rows.append((cid, when, et, rev, rating))
        if kind == 3:  # a same-day repeat of the first purchase, and of a later one
            rows.append((cid, base + pd.Timedelta(hours=1), "purchase", 7.25, None))
            rows.append((cid, base + pd.Timedelta(hours=2), "purchase", 0.15, None))
            rows.append((cid, base + pd.Timedelta(days=40, hours=3), "purchase", 1.5, None))
            rows.append((cid, base + pd.Timedelta(days=40, hours=9), "purchase", 2.5, None))
    return pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "revenue", "rating"])


def to_micro(x: float) -> int:
    """An amount in micro-units as DuckDB's DECIMAL(18, 6) cast rounds it: its double times 1e6,
    rounded half away from zero."""
    return int(Decimal(x * 1e6).quantize(Decimal(1), ROUND_HALF_UP))


def pandas_summary(ev: pd.DataFrame, as_of: str, unit_days: float, start: str | None = None) -> pd.DataFrame:
    """The summary columns computed with plain pandas group-bys (independent of the SQL)."""
    as_of_day = pd.Timestamp(as_of)
    ev = ev[ev["event_time"] < as_of_day + pd.Timedelta(days=1)]
    if start is not None:
        ev = ev[ev["event_time"] >= pd.Timestamp(start)]
    ev = ev.assign(customer_id=ev["customer_id"].astype(str), day=ev["event_time"].dt.normalize())
    p = ev[ev["event_type"] == "purchase"]
    days = p.assign(rev=p["revenue"].fillna(0.0)).groupby(["customer_id", "day"])["rev"].sum().reset_index()
    g = days.groupby("customer_id")
    out = pd.DataFrame(index=sorted(ev["customer_id"].unique()))
    fp, lp, n = g["day"].min(), g["day"].max(), g.size()
    first_rev = days.sort_values("day").groupby("customer_id")["rev"].first()
    # money: each day's sum to 1e-6 (its double times 1e6, rounded half away from zero), added exactly
    micro = days["rev"].map(to_micro)
    total = micro.groupby(days["customer_id"]).sum() / 1e6
    out["first_purchase"] = fp
    out["last_purchase"] = lp
    out["n_orders"] = n.reindex(out.index).fillna(0).astype("int64")
    out["frequency"] = (n - 1).astype(float)
    out["recency"] = (lp - fp).dt.days / unit_days
    out["T"] = (as_of_day - fp).dt.days / unit_days
    out["monetary_value"] = ((total - first_rev) / (n - 1)).where(n > 1, 0.0)
    out["total_revenue"] = total.reindex(out.index).fillna(0.0)
    ret = ev[(ev["event_type"] == "return") & ev["revenue"].notna()]
    rr = ret["revenue"].map(to_micro).groupby(ret["customer_id"]).sum() / 1e6  # each return to 1e-6
    out["return_revenue"] = rr.reindex(out.index).fillna(0.0)
    out["net_revenue"] = (out["total_revenue"] - out["return_revenue"]).round(6)
    counts = ev.groupby(["customer_id", "event_type"]).size().unstack(fill_value=0)
    for et, col in (("view", "n_views"), ("search", "n_searches"), ("cart", "n_carts"),
                    ("purchase", "n_purchases"), ("return", "n_returns"), ("review", "n_reviews")):
        out[col] = (counts[et] if et in counts else pd.Series(dtype="int64")).reindex(out.index).fillna(0).astype("int64")
    out["avg_rating"] = ev.groupby("customer_id")["rating"].mean().reindex(out.index)
    first_ev = ev.groupby("customer_id")["event_time"].min()
    out["tenure"] = (as_of_day - first_ev.dt.normalize()).dt.days / unit_days
    out["avg_gap"] = (out["recency"] / out["frequency"]).where(out["n_orders"] >= 2)
    out["first_event"] = first_ev
    out["last_event"] = ev.groupby("customer_id")["event_time"].max()
    return out


def assert_equals_pandas(got: pd.DataFrame, exp: pd.DataFrame) -> None:
    assert list(got.index) == list(exp.index)
    assert list(got.columns) == SUMMARY_COLUMNS
    for col in SUMMARY_COLUMNS:
        a, b = got[col].to_numpy(), exp[col].to_numpy()
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b.astype(float), rtol=1e-12, atol=1e-9, err_msg=col)
        elif a.dtype.kind == "M":
            assert np.array_equal(a, b.astype(a.dtype), equal_nan=True), col
        else:
            assert np.array_equal(a, b.astype(a.dtype)), col


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("unit,days", [("days", 1.0), ("weeks", 7.0)])
def test_sorted_summary_equals_statement_and_pandas(wh, taken, seed, unit, days):
    ids = [str(i) for i in np.random.default_rng(seed).choice(np.arange(-50, 10**6), 300, replace=False)]
    ev = planted_events(seed, ids)
    add_events(wh, "d", ev)
    for as_of, start in (("2024-03-31", None), ("2023-09-15", None), ("2024-01-31", "2023-07-01")):
        got = customer_summary(wh, "d", as_of, unit, calibration_start=start, persist=False)
        assert taken[-1] is True
        assert_same_summary(got, statement_summary(wh, "d", as_of, unit, calibration_start=start))
        assert_equals_pandas(got, pandas_summary(ev, as_of, days, start))
        assert_same_summary(customer_summary(wh, "d", as_of, unit, calibration_start=start), got)
        assert taken[-1] is True
    assert got["n_orders"].eq(0).any() and got["n_orders"].eq(1).any() and got["n_orders"].gt(2).any()


@pytest.mark.parametrize("odd", ["C17", "007", "+5", " 5", "-0", "99999999999999999999", "35184372088832"])
def test_ids_that_are_not_small_canonical_integers_use_the_statement(wh, taken, odd):
    ev = planted_events(3, ["1", "2", "3", "4", odd, "6", "7", "8"])
    add_events(wh, "d", ev)
    got = customer_summary(wh, "d", "2024-03-31", persist=False)
    assert taken == [False]
    assert odd in got.index
    assert_equals_pandas(got, pandas_summary(ev, "2024-03-31", 1.0))


def test_purchases_before_1970_use_the_statement(wh, taken):
    ev = pd.DataFrame([
        ("1", "1969-12-31 23:00", "purchase", 5.0, None),
        ("1", "1970-01-01 01:00", "purchase", 6.0, None),
        ("2", "1970-01-02 01:00", "purchase", 7.0, None),
    ], columns=["customer_id", "event_time", "event_type", "revenue", "rating"])
    ev["event_time"] = pd.to_datetime(ev["event_time"])
    add_events(wh, "old", ev)
    got = customer_summary(wh, "old", "1970-01-31", persist=False)
    assert taken == [False]
    assert got.loc["1", "n_orders"] == 2 and got.loc["1", "monetary_value"] == 6.0


def test_no_purchases_and_views_only(wh, taken):
    add_events(wh, "v", pd.DataFrame([("1", pd.Timestamp("2024-01-01 10:00"), "view", None, None)],
                                     columns=["customer_id", "event_time", "event_type", "revenue", "rating"]))
    got = customer_summary(wh, "v", "2024-01-31", persist=False)
    assert_same_summary(got, statement_summary(wh, "v", "2024-01-31"))
    assert got.loc["1", "n_orders"] == 0 and np.isnan(got.loc["1", "frequency"])


def test_same_day_sums_are_rounded_like_the_decimal_sums(wh, taken):
    """Amounts finer than 1e-6: each day's sum is rounded to 1e-6 (half away from zero), then the
    days are added exactly, as the SQL statement's DECIMAL sums do."""
    t = pd.Timestamp("2024-02-01 08:00")
    rows = [("5", t, "purchase", 0.1234564, None), ("5", t + pd.Timedelta(hours=1), "purchase", 0.1234564, None),
            ("5", t + pd.Timedelta(days=1), "purchase", -0.0000025, None),
            ("5", t + pd.Timedelta(days=2), "purchase", 1e-7, None),
            ("6", t, "purchase", 2.0000005, None)]
    add_events(wh, "fine", pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "revenue", "rating"]))
    got = customer_summary(wh, "fine", "2024-02-29", persist=False)
    assert taken == [True]
    assert_same_summary(got, statement_summary(wh, "fine", "2024-02-29"))
    assert got.loc["5", "total_revenue"] == pytest.approx(0.246913 - 0.000003 + 0.0, abs=0)
    assert got.loc["6", "total_revenue"] == 2.000001


@pytest.mark.parametrize("big,sorted_", [(4_000_000_000_000.25, False), (1_000_000_000.25, True)])
@pytest.mark.parametrize("big_return", [False, True])
def test_large_amounts_with_integer_ids(wh, taken, big, sorted_, big_return):
    """Sums up to 2^53 micro-units go through the packed sort; larger ones (and returns beyond a
    trillion, which the DECIMAL(18, 6) cast refuses) through the SQL statement, exactly."""
    rows = [("1", "2024-01-01 09:00", "purchase", big, None), ("1", "2024-01-02 09:00", "purchase", big, None),
            ("1", "2024-01-03 09:00", "purchase", 0.5, None), ("2", "2024-01-02 09:00", "purchase", 1.25, None)]
    if big_return:
        rows.append(("1", "2024-01-04 09:00", "return", 4_000_000_000_000.25, None))
    add_events(wh, "big", pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "revenue", "rating"]))
    for persist in (False, True):
        s = customer_summary(wh, "big", "2024-01-31", persist=persist)
        assert s.loc["1", "total_revenue"] == 2 * big + 0.5
        assert s.loc["1", "monetary_value"] == (big + 0.5) / 2
        assert s.loc["1", "return_revenue"] == (4_000_000_000_000.25 if big_return else 0.0)
        assert s.loc["2", "total_revenue"] == 1.25
    assert taken[0] is sorted_


def test_sorted_summary_equals_lifetimes(wh, taken):
    pytest.importorskip("lifetimes")
    import warnings

    from lifetimes.utils import summary_data_from_transaction_data

    rng = np.random.default_rng(7)
    n = 5000
    tx = pd.DataFrame({
        "customer_id": rng.integers(0, 600, n),
        "event_time": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 400 * 86400, n), unit="s"),
        "revenue": np.round(rng.uniform(-5, 200, n), 2),
    })
    add_events(wh, "lt", tx.assign(event_type="purchase"))
    got = customer_summary(wh, "lt", "2024-01-15", "weeks", persist=False)
    assert taken == [True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = summary_data_from_transaction_data(
            tx[tx["event_time"] < "2024-01-16"], "customer_id", "event_time", monetary_value_col="revenue",
            observation_period_end="2024-01-15", freq="D", freq_multiplier=7)
    ref.index = ref.index.astype(str)
    ref = ref.sort_index()
    mine = got.loc[ref.index]
    for col in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(mine[col].to_numpy(), ref[col].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=col)


def test_beyond_the_sort_size_the_statement_runs(wh, taken, monkeypatch):
    ev = planted_events(4, [str(i) for i in range(40)])
    add_events(wh, "d", ev)
    n = int(((ev["event_type"] == "purchase") & (ev["event_time"] < pd.Timestamp("2024-04-01"))).sum())
    monkeypatch.setattr(summary_mod, "_SORT_MAX_PURCHASES", n - 1)
    big = customer_summary(wh, "d", "2024-03-31", persist=False)
    monkeypatch.setattr(summary_mod, "_SORT_MAX_PURCHASES", n)
    assert_same_summary(customer_summary(wh, "d", "2024-03-31", persist=False), big)
    assert taken == [False, True]


def test_an_odd_id_after_the_first_thousand_purchases_still_uses_the_statement(wh, taken):
    """The quick look at the first purchases' ids is only a shortcut: every id is checked."""
    t = pd.Timestamp("2024-01-01 10:00")
    rows = [(str(i % 300), t + pd.Timedelta(hours=i), "purchase", 1.0 + i % 7, None) for i in range(1500)]
    rows.append(("x9", t, "purchase", 2.0, None))
    ev = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "revenue", "rating"])
    add_events(wh, "late", ev)
    got = customer_summary(wh, "late", "2024-12-31", persist=False)
    assert taken == [False]
    assert_equals_pandas(got, pandas_summary(ev, "2024-12-31", 1.0))


@pytest.mark.parametrize("fmt", ["C{:07d}", "cust-{}", "O'Brien \\{}", "EU-2024-{:04d}"])
def test_ids_of_a_text_and_a_number_take_the_sort(wh, taken, fmt):
    """Ids of one text followed by a number, zero-padded to one width or not (the bundled sample's
    'C0000001', the benchmark's 'c123'), a quote and a backslash in the text: the same rows as
    the statement and as pandas, ids written back exactly."""
    nums = np.random.default_rng(5).choice(np.arange(0, 9000), 200, replace=False)
    ids = [fmt.format(int(i)) for i in nums]
    ev = planted_events(5, ids)
    add_events(wh, "t", ev)
    for persist in (False, True):
        got = customer_summary(wh, "t", "2024-03-31", "weeks", persist=persist)
        assert taken[-1] is True
        assert set(got.index) == set(ev.loc[ev["event_time"] < "2024-04-01", "customer_id"])
        assert_same_summary(got, statement_summary(wh, "t", "2024-03-31", "weeks"))
        assert_equals_pandas(got, pandas_summary(ev, "2024-03-31", 7.0))


@pytest.mark.parametrize("odd", ["C12", "C00000123", "D0000007", "C0000012x", "c0000012", "C-000012", "C 0000012"])
def test_ids_of_another_form_than_the_first_ones_use_the_statement(wh, taken, odd):
    """Padded ids 'C0000001' and, after the first thousand purchases, one id of another width,
    text or shape: every id is checked, so the statement computes the summary."""
    t = pd.Timestamp("2024-01-01 10:00")
    rows = [(f"C{i % 300:07d}", t + pd.Timedelta(hours=i), "purchase", 1.0 + i % 7, None) for i in range(1500)]
    rows.append((odd, t + pd.Timedelta(days=3), "purchase", 2.0, None))
    ev = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "revenue", "rating"])
    add_events(wh, "late", ev)
    got = customer_summary(wh, "late", "2024-12-31", persist=False)
    assert taken == [False]
    assert odd in got.index
    assert_equals_pandas(got, pandas_summary(ev, "2024-12-31", 1.0))


@pytest.mark.parametrize("ids,form", [
    (["1", "-20", "300"], ("", 0)), (["C0001", "C0420"], ("C", 4)), (["c1", "c20", "c0"], ("c", 0)),
    (["C0001", "C01"], None), (["C1", "D2"], None), (["1", "C2"], None), (["CX", "C1"], None),
    (["é1", "é2"], None), (["007", "010"], None), ([], None)])
def test_id_forms(ids, form):
    assert summary_mod._id_form(ids) == form
