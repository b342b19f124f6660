"""analytics.overview: KPIs and series checked against pandas on the same rows."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analytics import overview
from analytics.warehouse import WarehouseError

COLS = ["dataset", "customer_id", "event_time", "event_type", "order_id", "revenue"]


def _load(wh, rows):
    df = pd.DataFrame(rows, columns=COLS)
    cur = wh.cursor()
    for name in sorted(set(df["dataset"])):
        cur.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [name])
    cur.register("incoming", df)
    cur.execute(
        "INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, revenue) "
        "SELECT dataset, customer_id, event_time, event_type, order_id, revenue FROM incoming"
    )
    return df


def T(s):
    return dt.datetime.fromisoformat(s)


SMALL = [
    # customer a: two orders (one has two lines), one return
    ("shop", "a", T("2024-01-05 10:00"), "purchase", "o1", 10.0),
    ("shop", "a", T("2024-01-05 10:00"), "purchase", "o1", 5.0),
    ("shop", "a", T("2024-03-01 09:00"), "purchase", "o2", 20.0),
    ("shop", "a", T("2024-03-03 09:00"), "return", "o2", 4.0),
    # customer b: one order without an order id, views later
    ("shop", "b", T("2024-02-10 12:00"), "purchase", None, 7.5),
    ("shop", "b", T("2024-06-20 12:00"), "view", None, None),
    # customer c: only views, long ago
    ("shop", "c", T("2023-12-01 08:00"), "view", None, None),
    # customer d: two orders without ids at different times
    ("shop", "d", T("2024-05-01 08:00"), "purchase", None, 3.0),
    ("shop", "d", T("2024-06-30 08:00"), "purchase", None, 2.0),
    # another dataset that must not leak in
    ("other", "a", T("2024-06-30 08:00"), "purchase", "x", 1000.0),
    ("other", "z", T("2024-06-30 08:00"), "purchase", "y", 1000.0),
]


def test_kpis_on_hand_checked_rows(wh):
    _load(wh, SMALL)
    k = overview.overview_kpis(wh, "shop")
    assert k["events"] == 9
    assert k["customers"] == 4
    assert k["buyers"] == 3
    assert k["orders"] == 2 + 1 + 2
    assert k["gross_revenue"] == pytest.approx(10 + 5 + 20 + 7.5 + 3 + 2)
    assert k["refunds"] == pytest.approx(4.0)
    assert k["revenue"] == pytest.approx(47.5 - 4.0)
    assert k["last_event"] == T("2024-06-30 08:00")
    # window (2024-04-01 08:00, 2024-06-30 08:00]: b (view 06-20) and d
    assert k["active_customers"] == 2
    assert k["repeat_customers"] == 2  # a and d
    assert k["repeat_rate"] == pytest.approx(2 / 3)


def test_kpis_active_window_is_relative_to_as_of(wh):
    _load(wh, SMALL)
    k = overview.overview_kpis(wh, "shop", as_of=T("2024-03-02 00:00"), active_days=30)
    # events in (2024-02-01, 2024-03-02]: b purchase 02-10, a purchase 03-01
    assert k["active_customers"] == 2
    with pytest.raises(ValueError):
        overview.overview_kpis(wh, "shop", active_days=0)


def test_empty_dataset(wh):
    wh.cursor().execute("INSERT INTO datasets (name) VALUES ('empty')")
    k = overview.overview_kpis(wh, "empty")
    assert k["events"] == 0 and k["customers"] == 0 and k["repeat_rate"] is None
    res = overview.dataset_overview(wh, "empty")
    assert res["timeline"].empty
    assert res["by_type"]["events"].sum() == 0
    with pytest.raises(WarehouseError):
        overview.dataset_overview(wh, "missing")


def test_timeline_and_types(wh):
    _load(wh, SMALL)
    tl = overview.activity_over_time(wh, "shop", "month")
    assert list(tl["period"].dt.strftime("%Y-%m")) == ["2023-12", "2024-01", "2024-02", "2024-03", "2024-05", "2024-06"]
    by = tl.set_index(tl["period"].dt.strftime("%Y-%m"))
    assert by.loc["2024-03", "revenue"] == pytest.approx(16.0)
    assert by.loc["2024-01", "orders"] == 1
    assert by.loc["2024-06", "active_customers"] == 2
    assert by.loc["2024-06", "orders"] == 1
    types = overview.events_by_type(wh, "shop").set_index("event_type")
    assert list(types.index[:6]) == ["view", "search", "cart", "purchase", "return", "review"]
    assert types.loc["purchase", "events"] == 6
    assert types.loc["view", "customers"] == 2
    assert types.loc["search", "events"] == 0
    with pytest.raises(ValueError):
        overview.activity_over_time(wh, "shop", "minute; DROP TABLE events")


def test_choose_grain():
    a = T("2024-01-01")
    assert overview.choose_grain(a, a + dt.timedelta(days=20)) == "day"
    assert overview.choose_grain(a, a + dt.timedelta(days=100)) == "week"
    assert overview.choose_grain(a, a + dt.timedelta(days=400)) == "month"
    assert overview.choose_grain(None, None) == "month"


def test_random_data_matches_pandas(wh):
    rng = np.random.default_rng(7)
    n = 3000
    start = T("2023-01-01")
    rows = []
    types = np.array(["view", "search", "cart", "purchase", "return", "review"])
    for i in range(n):
        t = start + dt.timedelta(minutes=int(rng.integers(0, 60 * 24 * 500)))
        et = str(rng.choice(types, p=[0.4, 0.1, 0.1, 0.3, 0.05, 0.05]))
        oid = f"o{rng.integers(0, 800)}" if et in ("purchase", "return") and rng.random() < 0.7 else None
        rev = float(np.round(rng.uniform(1, 100), 2)) if et in ("purchase", "return") else None
        rows.append(("r", f"c{rng.integers(0, 400)}", t, et, oid, rev))
    df = _load(wh, rows)
    k = overview.overview_kpis(wh, "r")
    assert k["customers"] == df["customer_id"].nunique()
    p = df[df.event_type == "purchase"].copy()
    p["key"] = p["order_id"].where(p["order_id"].notna(), p["customer_id"] + "@" + p["event_time"].astype(str))
    per = p.groupby("customer_id")["key"].nunique()
    assert k["buyers"] == len(per)
    assert k["orders"] == int(per.sum())
    assert k["repeat_rate"] == pytest.approx((per >= 2).mean())
    assert k["revenue"] == pytest.approx(p["revenue"].sum() - df[df.event_type == "return"]["revenue"].sum())
    last = df["event_time"].max()
    recent = df[(df.event_time > last - pd.Timedelta(days=90)) & (df.event_time <= last)]
    assert k["active_customers"] == recent["customer_id"].nunique()
    tl = overview.activity_over_time(wh, "r", "month")
    month = df["event_time"].dt.to_period("M")
    assert tl["active_customers"].tolist() == df.groupby(month)["customer_id"].nunique().tolist()


def test_stored_overview_round_trip_and_invalidation(wh, monkeypatch):
    _load(wh, SMALL)
    fresh = overview.dataset_overview(wh, "shop")
    first = overview.stored_overview(wh, "shop")
    assert wh.setting("overview:shop") is not None

    def boom(*a, **k):
        raise AssertionError("should have been read from the warehouse")

    monkeypatch.setattr(overview, "dataset_overview", boom)
    again = overview.stored_overview(wh, "shop")
    for res in (first, again):
        assert res["kpis"] == fresh["kpis"]
        assert res["grain"] == fresh["grain"]
        pd.testing.assert_frame_equal(res["timeline"], fresh["timeline"], check_dtype=False)
        pd.testing.assert_frame_equal(res["by_type"], fresh["by_type"], check_dtype=False)
    monkeypatch.undo()
    # new events change the fingerprint: recomputed
    _load(wh, [("shop", "new", T("2024-07-01 08:00"), "purchase", "o9", 1.0)])
    after = overview.stored_overview(wh, "shop")
    assert after["kpis"]["customers"] == 5
    assert after["kpis"]["revenue"] == pytest.approx(fresh["kpis"]["revenue"] + 1.0)
