"""Partial periods and date-range KPIs against independent computations."""
from __future__ import annotations

import calendar

import numpy as np
import pandas as pd
import pytest

from analytics import periods
from analytics.ingest import ingest


def test_coverage_of_months_against_the_calendar():
    cov = periods.period_coverage(pd.date_range("2025-01-01", "2025-06-01", freq="MS"), "month",
                                  "2025-01-20", "2025-06-05")
    days = [calendar.monthrange(2025, m)[1] for m in range(1, 7)]
    assert cov["days"].tolist() == days
    assert cov["covered_days"].tolist() == [12] + days[1:5] + [5]
    assert cov["partial"].tolist() == [True, False, False, False, False, True]
    assert cov["note"].iloc[-1] == "5 of 30 days" and cov["note"].iloc[1] == ""
    note = periods.partial_note(cov, "month")
    assert "first month has data for 12 of its 31 days" in note and "last month has data for 5 of its 30 days" in note


def test_weeks_start_on_monday_like_duckdb(wh):
    day = pd.Timestamp("2025-03-06")  # a Thursday
    duck = wh.cursor().execute("SELECT date_trunc('week', CAST(? AS TIMESTAMP))", [day]).fetchone()[0]
    assert periods.period_start(day, "week") == pd.Timestamp(duck)
    for g in ("month", "quarter", "year"):
        duck = wh.cursor().execute(f"SELECT date_trunc('{g}', CAST(? AS TIMESTAMP))", [day]).fetchone()[0]
        assert periods.period_start(day, g) == pd.Timestamp(duck)
    whole = periods.period_coverage([pd.Timestamp("2025-03-03")], "week", "2025-03-03", "2025-03-09")
    assert not whole["partial"].iloc[0] and periods.partial_note(whole, "week") is None
    with pytest.raises(periods.PeriodError, match="unknown time grain"):
        periods.period_start(day, "fortnight")


def test_partial_traces_hatch_bars_and_dash_lines():
    x = pd.date_range("2025-01-01", periods=4, freq="MS")
    bars = periods.partial_traces(x, [1, 2, 3, 0.5], [False, False, False, True], kind="bar",
                                  notes=["", "", "", "5 of 30 days"])
    assert list(bars[0].marker.pattern.shape) == ["", "", "", "/"]
    assert "partial: 5 of 30 days" in bars[0].customdata[3]
    lines = periods.partial_traces(x, [1, 2, 3, 0.5], [True, False, False, True], kind="line")
    solid, dashed, marks = lines
    assert np.isnan(solid.y[0]) and np.isnan(solid.y[3]) and solid.y[1] == 2
    assert dashed.line.dash == periods.PARTIAL_DASH and list(dashed.y) == [1, 2, None, 3, 0.5, None]
    assert list(marks.y) == [1, 0.5]


def _orders(tmp_path):
    rows = [
        # customer, date, order, amount
        ("a", "2025-01-05", "o1", 10.0), ("a", "2025-02-10", "o2", 20.0), ("a", "2025-02-11", "o3", 5.0),
        ("b", "2025-02-01", "o4", 100.0), ("c", "2025-01-20", "o5", 7.0), ("c", "2025-02-20", "o5b", -7.0),
        ("d", "2025-02-27", "o6", 1.0), ("d", "2025-02-27", "o6", 2.0),
    ]
    f = tmp_path / "orders.csv"
    f.write_text("customer,date,order,amount\n" + "".join(f"{c},{d},{o},{a}\n" for c, d, o, a in rows))
    return f, pd.DataFrame(rows, columns=["customer", "date", "order", "amount"]).assign(date=lambda d: pd.to_datetime(d.date))


def test_compare_ranges_against_pandas(wh, tmp_path):
    f, df = _orders(tmp_path)
    ingest(wh, f, "shop")
    comp = periods.compare_ranges(wh, "shop", "2025-02-01", "2025-02-28")
    assert (comp.previous_start.isoformat(), comp.previous_end.isoformat()) == ("2025-01-04", "2025-01-31")

    def kpis(lo, hi):
        w = df[(df.date >= lo) & (df.date <= hi)]
        buys = w[w.amount > 0]
        per = buys.groupby("customer")["order"].nunique()
        first = df[df.amount > 0].groupby("customer")["date"].min()
        return {"active_customers": w.customer.nunique(), "buyers": len(per), "orders": int(per.sum()),
                "revenue": float(w.amount.sum()), "repeat_buyers": int((per >= 2).sum()),
                "new_customers": int(((first >= lo) & (first <= hi)).sum())}

    for got, (lo, hi) in ((comp.current, ("2025-02-01", "2025-02-28")), (comp.previous, ("2025-01-04", "2025-01-31"))):
        want = kpis(pd.Timestamp(lo), pd.Timestamp(hi))
        assert {k: got[k] for k in want} == pytest.approx(want)
    assert comp.current["revenue"] == 121.0   # the refund of 7 is netted
    assert comp.deltas["revenue"] == pytest.approx(121.0 / 17.0 - 1)
    # the data start on 5 Jan: the previous window (4..31 Jan) is covered for 27 of its 28 days
    assert comp.previous_covered_days == 27 and not comp.like_for_like
    with pytest.raises(periods.PeriodError, match="before it starts"):
        periods.compare_ranges(wh, "shop", "2025-02-10", "2025-02-01")
    assert periods.relative_change(5, 0) is None and periods.relative_change(None, 3) is None
