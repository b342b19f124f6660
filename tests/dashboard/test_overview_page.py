"""AppTest: the app shell and the Overview page on a temporary warehouse."""
from __future__ import annotations

import datetime as dt

from streamlit.testing.v1 import AppTest

from analytics.overview import overview_kpis
from tests.dashboard.conftest import APP, TIMEOUT, insert_events, synthetic_rows


def _metrics(at) -> dict[str, str]:
    """The all-time KPIs (the first metric of each label; the date range's row follows)."""
    out: dict[str, str] = {}
    for m in at.metric:
        out.setdefault(m.label, m.value)
    return out


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
    # the card shows "19.1 K"; its help holds the exact figure
    card = next(x for x in at.metric if x.label == "Revenue (net)")
    assert m["Revenue (net)"] == f"{net / 1e3:,.1f} K"
    assert abs(_num(card.proto.help.split(":")[0]) - net) < 0.01
    active = cur.execute(
        "SELECT count(DISTINCT customer_id) FROM events WHERE dataset='shop' AND event_time > "
        "(SELECT max(event_time) FROM events WHERE dataset='shop') - INTERVAL 90 DAY"
    ).fetchone()[0]
    assert _num(m["Active, 90 days"]) == active
    k = overview_kpis(app_wh, "shop")
    assert abs(_num(m["Repeat buyers"]) - round(100 * k["repeat_rate"], 1)) < 1e-9
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
    assert m["Repeat buyers"] == "0.0 %"
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


def _dated_rows(seed: int = 7) -> list[tuple]:
    """Events from 10 Jun 2023 to 5 Mar 2024: a partial first month (21 of 30 days) and a partial
    last month (5 of 31 days)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    first, last = dt.datetime(2023, 6, 10, 9), dt.datetime(2024, 3, 5, 18)
    span = int((last - first).total_seconds() // 3600)
    rows = [("c000", first, "purchase", "o-first", 20.0), ("c001", last, "purchase", "o-last", 30.0)]
    for i in range(600):
        t = first + dt.timedelta(hours=int(rng.integers(0, span)))
        c = f"c{int(rng.integers(0, 80)):03d}"
        kind = str(rng.choice(["view", "purchase", "purchase", "return"]))
        rows.append((c, t, kind, f"o{i}" if kind != "view" else None,
                     float(rng.integers(5, 300)) + 0.25 if kind != "view" else None))
    return rows


def _window(df, start, end) -> dict:
    w = df[(df.event_time >= start) & (df.event_time < end + dt.timedelta(days=1))]
    buy = w[w.event_type == "purchase"]
    return {"revenue": buy.revenue.sum() - w[w.event_type == "return"].revenue.sum(),
            "orders": buy.order_id.nunique(), "active": w.customer_id.nunique()}


def test_date_range_kpis_and_deltas_match_pandas(app_wh):
    df = insert_events(app_wh, "shop", _dated_rows())
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    # default range: the data's last 30 days
    assert at.date_input(key="ov_range").value == (dt.date(2024, 2, 5), dt.date(2024, 3, 5))
    at.date_input(key="ov_range").set_value((dt.date(2024, 2, 1), dt.date(2024, 2, 29))).run()
    assert not at.exception, at.exception
    cur, prev = _window(df, dt.datetime(2024, 2, 1), dt.datetime(2024, 2, 29)), \
        _window(df, dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 31))
    row = at.metric[5:]  # after the five all-time KPIs
    by = {m.label: m for m in row}
    assert by["Net revenue"].value == f"{cur['revenue']:,.0f}"  # a card: whole units from 1,000
    assert f"This period: {cur['revenue']:,.2f}." in by["Net revenue"].proto.help
    assert _num(by["Orders"].value) == cur["orders"]
    assert _num(by["Active customers"].value) == cur["active"]
    assert by["Net revenue"].delta == f"{100 * (cur['revenue'] / prev['revenue'] - 1):+,.1f} %"
    assert by["Orders"].delta == f"{100 * (cur['orders'] / prev['orders'] - 1):+,.1f} %"
    assert any("1 Feb – 29 Feb 2024" in md.value and "29 days" in md.value for md in at.markdown)


def test_range_at_the_start_has_no_comparison(app_wh):
    insert_events(app_wh, "shop", _dated_rows())
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.date_input(key="ov_range").set_value((dt.date(2023, 6, 10), dt.date(2023, 6, 30))).run()
    assert not at.exception
    assert all(m.delta in (None, "") for m in at.metric[5:])
    assert any("no earlier period" in c.value for c in at.caption)
    at.date_input(key="ov_range").set_value((dt.date(2023, 6, 20), dt.date(2023, 6, 30))).run()
    assert any("not like for like" in w.value for w in at.warning)


def test_partial_months_are_marked_with_their_day_count(app_wh):
    import json

    insert_events(app_wh, "shop", _dated_rows())
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    note = [c.value for c in at.caption if "drawn hatched or dashed" in c.value]
    assert note and "first month has data for 21 of its 30 days" in note[0] \
        and "last month has data for 5 of its 31 days" in note[0]
    revenue = json.loads(at.get("plotly_chart")[0].proto.spec)
    bars = revenue["data"][0]
    shapes = bars["marker"]["pattern"]["shape"]
    assert shapes[0] == shapes[-1] == "/" and set(shapes[1:-1]) == {""} and len(shapes) == 10
    labels = [a["text"] for a in revenue["layout"]["annotations"]]
    assert labels == ["partial: 21 of 30 days", "partial: 5 of 31 days"]
    active = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert any(t.get("line", {}).get("dash") == "dot" for t in active["data"])


def test_money_in_the_dataset_currency(app_wh):
    from analytics.currency import set_dataset_currency

    insert_events(app_wh, "shop", [("a", dt.datetime(2024, 1, 1), "purchase", "o1", 1234.5)])
    set_dataset_currency(app_wh, "shop", "EUR")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert _metrics(at)["Revenue (net)"] == "€1,235"  # a KPI card: whole units from 1,000, half up
    assert any("Money in Euro" in c.value for c in at.caption)
    # changed elsewhere (the command line) while the page is open: the next run shows it
    set_dataset_currency(app_wh, "shop", "JPY")
    at.run()
    assert _metrics(at)["Revenue (net)"] == "¥1,235"


def test_a_range_picked_on_one_dataset_is_not_kept_on_the_next(app_wh):
    # the range of "shop" lies inside the days of "wide": switching still starts "wide" on its own
    # default (its last 30 days), held in the session state so that the browser shows the same days
    insert_events(app_wh, "shop", _dated_rows())
    insert_events(app_wh, "wide", [("w1", dt.datetime(2023, 1, 1), "purchase", "w-o1", 5.0),
                                   ("w2", dt.datetime(2024, 12, 31), "purchase", "w-o2", 7.0)])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["dataset"] = "shop"
    at.run()
    at.date_input(key="ov_range").set_value((dt.date(2024, 2, 1), dt.date(2024, 2, 29))).run()
    at.sidebar.selectbox(key="dataset").select("wide").run()
    assert not at.exception, at.exception
    assert at.date_input(key="ov_range").value == (dt.date(2024, 12, 2), dt.date(2024, 12, 31))
    assert any("2 Dec – 31 Dec 2024" in md.value for md in at.markdown), [md.value for md in at.markdown]
    # and back: "shop" starts on its default too, not on the range picked before
    at.sidebar.selectbox(key="dataset").select("shop").run()
    assert at.date_input(key="ov_range").value == (dt.date(2024, 2, 5), dt.date(2024, 3, 5))


def test_views_only_dataset_explains_the_missing_revenue_chart(app_wh):
    # a behaviour log without purchases (Taobao-style page views and carts): no chart of zeros
    start = dt.datetime(2017, 11, 24)
    rows = [(f"u{i % 40}", start + dt.timedelta(hours=7 * i), "view" if i % 3 else "cart", None, None)
            for i in range(300)]
    insert_events(app_wh, "clicks", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert _metrics(at)["Orders"] == "0"
    notes = [i.value for i in at.info if "No revenue to chart" in i.value]
    assert len(notes) == 1 and "only views and cart adds" in notes[0], [i.value for i in at.info]
    # the active-customer and event-type charts stay; the revenue chart is replaced by the note
    assert len(at.get("plotly_chart")) == 2


def test_money_axis_ticks_keep_the_minor_digits():
    # whole-unit ticks on an axis spanning about one unit read "-1, -1, 0, 1, 1"
    from analytics.formatting import money_axis

    assert money_axis("EUR")["tickformat"] == ",.2~f"
    assert money_axis("JPY")["tickformat"] == ",.0~f"
    assert money_axis(None)["tickprefix"] == "" and money_axis("EUR")["tickprefix"] == "€"


def test_card_money_fits_a_kpi_card():
    # the Overview's cards hold about seven characters at 1280 pixels: "€196,939.26" was cut to "€196,93…"
    from dashboard.widgets import card_money

    assert card_money(196_939.26, "EUR") == "€197 K"
    assert card_money(19_693.9, "EUR") == "€19.7 K"
    assert card_money(-12_345.0, "GBP") == "-£12.3 K"
    assert card_money(9_999.4, "EUR") == "€9,999"
    assert card_money(78.594, "EUR") == "€78.59"
    assert card_money(999_800.0, "EUR") == "€1.00 M"
    assert card_money(2_623_456.0, "EUR") == "€2.62 M"
    assert card_money(0.0, None) == "0.00"
    for v in (12_345.6, 99_949.0, 99_951.0, 250_000.0, 999_999.0, 5e6):
        assert len(card_money(v, "EUR")) <= 7, card_money(v, "EUR")


def test_range_revenue_card_is_short_with_the_exact_figure_in_its_help(app_wh):
    start = dt.datetime(2024, 1, 1)
    insert_events(app_wh, "big", [(f"c{i % 50}", start + dt.timedelta(hours=3 * i), "purchase", f"o{i}", 1234.56)
                                  for i in range(400)])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    total = 400 * 1234.56
    revenue = [m for m in at.metric if m.label in ("Revenue (net)", "Net revenue")]
    assert revenue[0].value == f"{total / 1e3:,.0f} K"  # 493.8 K all time (no currency)
    exact = f"{total:,.2f}"
    assert exact in revenue[0].proto.help
