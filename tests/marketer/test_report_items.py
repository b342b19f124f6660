"""Report 'Top items' by name: the names (or UCI-style descriptions) loaded with the data, a sentence
when the dataset has item codes only, and 'no categories in this dataset' instead of a blank half."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from analytics.reports import build_report, render_html
from analytics.reports.render import CODES_ONLY, NO_CATEGORIES, item_label, items_note
from analytics.segments import store
from analytics.warehouse import Warehouse

NAMES = {"85123A": "WHITE HANGING HEART T-LIGHT HOLDER", "71053": "WHITE METAL <LANTERN>", "22752": "SET 7 BABUSHKA"}


def _insert(wh, dataset: str, with_names: bool) -> pd.DataFrame:
    rows = []
    start = dt.datetime(2024, 1, 3)
    items = list(NAMES)
    for c in range(40):
        for k in range(3):
            item = items[(c + k) % 3]
            attrs = json.dumps({"Description": NAMES[item]}) if with_names else None
            rows.append((dataset, f"c{c:03d}", start + dt.timedelta(days=3 * c + k), "purchase", f"o{c}-{k}",
                         item, 10.0 + c + 5 * k, attrs))
    df = pd.DataFrame(rows, columns=["dataset", "customer_id", "event_time", "event_type", "order_id", "item_id",
                                     "revenue", "attributes"])
    with wh.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [dataset])
        tx.register("incoming", df)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, revenue, "
                   "attributes) SELECT * FROM incoming")
    return df


@pytest.fixture
def wh():
    w = Warehouse(":memory:")
    store.save_segment(w, "everyone", {"op": "and", "conditions": []})
    yield w
    w.close()


def test_items_by_their_loaded_description_and_no_categories_said(wh):
    df = _insert(wh, "retail", with_names=True)
    snap = build_report(wh, "retail", "2024-06-30", segment="everyone")
    by_item = df.groupby("item_id")["revenue"].sum().sort_values(ascending=False)
    assert [r["item_id"] for r in snap["top_items"]] == list(by_item.index)
    assert [r["name"] for r in snap["top_items"]] == [NAMES[i] for i in by_item.index]
    assert snap["items_named"] and items_note(snap) is None
    assert snap["top_categories"] == []
    doc = render_html(snap, plotly_js="")
    assert "WHITE METAL &lt;LANTERN&gt;" in doc and "<LANTERN>" not in doc  # the name, escaped
    assert NO_CATEGORIES in doc
    assert [item_label(r) for r in snap["top_items"]][0] == NAMES[by_item.index[0]]


def test_codes_only_is_said(wh):
    _insert(wh, "codes", with_names=False)
    snap = build_report(wh, "codes", "2024-06-30", segment="everyone")
    assert not snap["items_named"] and all(r["name"] is None for r in snap["top_items"])
    assert items_note(snap) == CODES_ONLY
    assert [item_label(r) for r in snap["top_items"]] == [r["item_id"] for r in snap["top_items"]]
    assert CODES_ONLY.replace("'", "&#x27;") in render_html(snap, plotly_js="")


def test_report_backtest_figures_read_as_on_the_predict_page():
    from analytics import formatting
    from analytics.reports.render import report_currency
    from dashboard.report_render import METRIC_TITLES, _metric

    with report_currency({"currency": "GBP"}):
        assert _metric("rmse", 1670.2284694360917) == formatting.money(1670.2284694360917, "GBP", compact=True)
        assert _metric("normalized_gini", 0.51234) == "0.512"
        assert _metric("roc_auc", None) == "–"
    assert METRIC_TITLES["top_decile_capture"] == "Top-decile capture"
