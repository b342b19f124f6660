"""Reports mark partial months (hatched bars, dashed line, day counts) and write money in the dataset currency."""
from __future__ import annotations

import calendar

import pytest

from analytics.currency import set_dataset_currency
from analytics.reports import build_report
from analytics.reports.render import partial_months, render_html, report_figures
from tests.reports.conftest import BIG


@pytest.fixture(scope="module")
def report():
    import numpy as np
    import pandas as pd

    from analytics.segments import store
    from analytics.warehouse import Warehouse
    from tests.campaigns.conftest import load

    rng = np.random.default_rng(4)
    rows = []
    for i in range(60):   # purchases from 17 Jan to 12 Mar 2025
        for k in range(int(rng.integers(1, 5))):
            day = pd.Timestamp("2025-01-17") + pd.Timedelta(days=int(rng.integers(0, 55)))
            rows.append((f"c{i:02d}", day + pd.Timedelta(hours=10), "purchase", f"o{i}-{k}",
                         float(rng.uniform(100, 400)), "books", f"b{k}"))
    events = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "order_id", "revenue",
                                         "category", "item_id"])
    events.loc[0, "event_time"] = pd.Timestamp("2025-01-17 09:00")
    wh = Warehouse(":memory:")
    load(wh, "shop", events)
    store.save_segment(wh, "Big", BIG, dataset="shop")
    set_dataset_currency(wh, "shop", "GBP")
    snap = build_report(wh, "shop", "2025-03-12", segment="Big", trend_months=6)
    yield snap
    wh.close()


def test_partial_first_and_last_month_are_counted_and_drawn(report):
    snap = report
    tr = snap["trend"]
    assert tr["months"] == ["2025-01", "2025-02", "2025-03"]
    # January from the 17th (15 of 31 days), February whole, March up to the 12th
    assert partial_months(tr) == ["15 of 31 days", "", "12 of 31 days"]
    assert calendar.monthrange(2025, 1)[1] - 17 + 1 == 15
    fig = report_figures(snap)["trend"]
    bars = fig["data"][0]
    assert list(bars["marker"]["pattern"]["shape"]) == ["/", "", "/"]
    line, dashed = fig["data"][1], fig["data"][2]
    assert line["y"][0] is None and line["y"][2] is None and line["y"][1] > 0 and dashed["line"]["dash"] == "dot"
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["partial: 15 of 31 days", "partial: 12 of 31 days"]
    assert fig["layout"]["yaxis2"]["tickprefix"] == "£"


def test_html_says_which_months_are_partial_and_uses_the_currency(report):
    snap = report
    assert snap["currency"] == "GBP"
    html = render_html(snap, plotly_js="/* plotly */")
    assert "2025-01 (15 of 31 days), 2025-03 (12 of 31 days)" in html
    assert "£" in html and "€" not in html
