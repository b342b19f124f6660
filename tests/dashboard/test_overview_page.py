"""AppTest: the app shell and the Overview page on a temporary warehouse."""
from __future__ import annotations

import datetime as dt

from streamlit.testing.v1 import AppTest

from analytics.overview import overview_kpis
from tests.dashboard.conftest import APP, TIMEOUT, insert_events, synthetic_rows


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("%", "").strip())


def test_empty_warehouse_points_to_data_page(app_wh):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert not at.metric
    assert any("no data yet" in i.value for i in at.info)
    assert any("No dataset yet" in i.value for i in at.sidebar.info)
    assert any("Compute device:" in c.value for c in at.sidebar.caption)


def test_kpis_match_sql(app_wh):
    insert_events(app_wh, "shop", synthetic_rows(250, seed=3))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    m = _metrics(at)
    cur = app_wh.cursor()
    customers = cur.execute("SELECT count(DISTINCT customer_id) FROM events WHERE dataset='shop'").fetchone()[0]
    assert _num(m["Customers"]) == customers == 250
    orders = cur.execute(
        "SELECT count(DISTINCT order_id) FROM events WHERE dataset='shop' AND event_type='purchase'"
    ).fetchone()[0]
    assert _num(m["Orders"]) == orders
    net = cur.execute(
        "SELECT sum(CASE WHEN event_type='purchase' THEN revenue ELSE 0 END) "
        "- sum(CASE WHEN event_type='return' THEN revenue ELSE 0 END) FROM events WHERE dataset='shop'"
    ).fetchone()[0]
    assert abs(_num(m["Revenue (net)"]) - net) < 0.01
    active = cur.execute(
        "SELECT count(DISTINCT customer_id) FROM events WHERE dataset='shop' AND event_time > "
        "(SELECT max(event_time) FROM events WHERE dataset='shop') - INTERVAL 90 DAY"
    ).fetchone()[0]
    assert _num(m["Active, last 90 days"]) == active
    k = overview_kpis(app_wh, "shop")
    assert abs(_num(m["Repeat-purchase rate"]) - round(100 * k["repeat_rate"], 1)) < 1e-9
    # three Plotly charts, no raw rows shipped: the timeline has one point per month
    assert len(at.get("plotly_chart")) == 3
    assert at.sidebar.selectbox(key="dataset").value == "shop"


def test_dataset_picker_switches_numbers(app_wh):
    insert_events(app_wh, "big", synthetic_rows(120, seed=5))
    insert_events(app_wh, "small", [
        ("a", dt.datetime(2024, 1, 1), "purchase", "o1", 10.0),
        ("b", dt.datetime(2024, 1, 2), "view", None, None),
    ])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert _metrics(at)["Customers"] == "120"
    at.sidebar.selectbox(key="dataset").select("small").run()
    m = _metrics(at)
    assert m["Customers"] == "2"
    assert m["Orders"] == "1"
    assert m["Revenue (net)"] == "10.00"
    assert m["Repeat-purchase rate"] == "0.0 %"
    # the choice survives a page switch and back
    at.switch_page("views/data.py").run()
    at.switch_page("views/overview.py").run()
    assert _metrics(at)["Customers"] == "2"


def test_new_data_refreshes_cached_overview(app_wh):
    insert_events(app_wh, "shop", [("a", dt.datetime(2024, 1, 1), "purchase", "o1", 10.0)])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert _metrics(at)["Customers"] == "1"
    insert_events(app_wh, "shop", [("b", dt.datetime(2024, 1, 5), "purchase", "o2", 5.0)])
    at.run()
    assert _metrics(at)["Customers"] == "2"
    assert _metrics(at)["Revenue (net)"] == "15.00"


def test_empty_dataset_message(app_wh):
    app_wh.cursor().execute("INSERT INTO datasets (name) VALUES ('fresh')")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("has no events yet" in i.value for i in at.info)


def test_pages_use_emoji_icons_only():
    import ast
    from pathlib import Path

    src = Path(APP).read_text()
    assert ":material" not in src
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.keyword) and node.arg == "icon" and isinstance(node.value, ast.Constant):
            assert not node.value.value.startswith(":"), node.value.value
