"""AppTest: the Explorer page on the bundled sample, values checked against analytics.explorer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics import explorer
from analytics.bootstrap import ensure_default_dataset
from analytics.segments import store
from tests.dashboard.conftest import APP, TIMEOUT

PAGE = "views/explorer.py"
COMPARE_LABELS = {
    "segment": "Segment", "customers": "Customers", "share": "Share of customers", "revenue": "Net revenue",
    "revenue_share": "Share of revenue", "avg_clv": "Avg CLV", "orders_per_customer": "Orders each",
    "avg_probability_alive": "Still active", "retention": f"Bought in {explorer.RETENTION_DAYS} days",
}  # the page's column titles
RATES = ("share", "revenue_share", "retention", "avg_probability_alive")  # shown in percent


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """The library's comparison as the page shows it (rates in percent, human titles)."""
    out = table.copy()
    for c in RATES:
        if c in out.columns:
            out[c] = out[c] * 100.0
    return out.rename(columns=COMPARE_LABELS)




@pytest.fixture
def page(app_wh):
    ensure_default_dataset(app_wh)
    assert "sample" in app_wh.datasets()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _as_of(app_wh):
    last = app_wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = 'sample'").fetchone()[0]
    return pd.Timestamp(last).date()


def _table(at, column: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _flows(at) -> pd.DataFrame:
    """The migration flows table with the library's column names back (its titles carry the dates)."""
    found = [d.value for d in at.dataframe if len(d.value.columns) == 3 and str(d.value.columns[0]).startswith("On ")]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    flows = found[0]
    return flows.set_axis(["from", "to", "customers"], axis=1)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_comparison_lorenz_and_search(page, app_wh):
    at = page
    assert not at.error, [e.value for e in at.error]
    frame = explorer.build_frame(app_wh, "sample", _as_of(app_wh))
    n_customers = len(frame)

    # RFM segments by default: every customer is in exactly one segment
    comp = _table(at, "Customers")
    assert int(comp["Customers"].sum()) == n_customers
    exp = frame["rfm_segment"].value_counts()
    got = comp.set_index("Segment")["Customers"]
    assert got.sort_index().to_dict() == {k: int(v) for k, v in exp.sort_index().items()}
    # the cached comparison (per frame and chosen segments) is the library's table, also after
    # dropping segments and coming back to all of them
    from analytics.summary import summary_history

    # (the page's frame comes from the summary history: sums in another order than SQL's)
    hframe = explorer.build_frame(app_wh, "sample", _as_of(app_wh), history=summary_history(app_wh, "sample"))
    groups = explorer.category_groups(hframe, "rfm_segment")
    want = _shown(explorer.segment_comparison(hframe, groups, as_of=_as_of(app_wh)))
    pd.testing.assert_frame_equal(comp, want, check_exact=True)
    names = list(groups)
    at.multiselect(key="explorer_groups_RFM segments").set_value(names[1:3]).run()
    few = explorer.segment_comparison(hframe, {n: groups[n] for n in names[1:3]}, as_of=_as_of(app_wh))
    pd.testing.assert_frame_equal(_table(at, "Customers"), _shown(few), check_exact=True)
    at.multiselect(key="explorer_groups_RFM segments").set_value(names).run()
    pd.testing.assert_frame_equal(_table(at, "Customers"), want, check_exact=True)

    # concentration metrics equal the library on the same values
    m = _metrics(at)
    from analytics.formatting import percent  # one percentage style on every page: "58.3 %"

    assert m["Top 10% share of net revenue"] == percent(explorer.top_share(frame['net_revenue'], 0.1))
    assert m["Top 20% share of net revenue"] == percent(explorer.top_share(frame['net_revenue'], 0.2))

    # charts stay small: Lorenz <= 1000 points
    import json
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        for trace in spec["data"]:
            for key in ("x", "y", "z"):
                if key in trace and isinstance(trace[key], list):
                    assert len(trace[key]) <= 50_000

    # search one customer: the table shows it and the timeline its event count
    who = str(frame.index[len(frame) // 2])
    at.text_input(key="explorer_search").input(who).run()
    assert not at.exception, at.exception
    table = _table(at, "Customer")
    assert who in set(table["Customer"].astype(str))
    assert all(who.lower() in c.lower() for c in table["Customer"].astype(str))
    assert not any("_" in c for c in table.columns)  # human titles
    at.selectbox(key="explorer_customer").set_value(who).run()
    assert not at.exception, at.exception
    n_events = app_wh.cursor().execute(
        "SELECT count(*) FROM events WHERE dataset = 'sample' AND customer_id = ?", [who]).fetchone()[0]
    assert _metrics(at)["Events"] == f"{n_events:,}"
    timeline = _table(at, "Event")
    assert len(timeline) == min(n_events, 500)
    assert not timeline.astype(str).isin(["None", "nan", "NaT"]).any().any()
    from analytics import formatting
    from analytics.currency import dataset_currency

    net = float(frame.loc[who, "net_revenue"])
    assert _metrics(at)["Net revenue"] == formatting.money(net, dataset_currency(app_wh, "sample").currency)


def test_cohorts_migration_and_no_match(page, app_wh):
    at = page
    # migration flows cover every customer known at either date
    flows = _flows(at)
    as_of = _as_of(app_wh)
    frame = explorer.build_frame(app_wh, "sample", as_of)
    frame_a = explorer.build_frame(app_wh, "sample", as_of - pd.Timedelta(days=90))
    assert int(flows["customers"].sum()) == len(set(frame.index) | set(frame_a.index))
    # customers who arrived after the first date are not counted as changing segment
    both = frame_a.index.intersection(frame.index)
    changed = int((frame_a.loc[both, "rfm_segment"].astype(str) != frame.loc[both, "rfm_segment"].astype(str)).sum())
    arrived = len(frame.index.difference(frame_a.index))
    assert arrived > 0
    assert any(c.value.startswith(f"{changed:,} of {len(both):,} customers of both dates changed segment")
               and f"{arrived:,} arrived after" in c.value for c in at.caption), [c.value for c in at.caption]
    # a search without a match says so
    at.text_input(key="explorer_search").input("no-such-customer-<b>").run()
    assert not at.exception, at.exception
    assert any("No customer id contains" in i.value for i in at.info)


def _array(value) -> np.ndarray:
    """A plotly trace array (a list, or the binary form: dtype, base64 bytes, shape)."""
    import base64

    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else flat
    return np.asarray(value, dtype=float)


def test_cohort_chart_writes_shares_and_months_as_the_product_does(page, app_wh):
    """The cohort heatmap's hover reads "Mar 2025 cohort, month 2: 12.3 %" (formatting.percent's style,
    not d3's "12.3%"), its colour bar "25 %", its months "Mar 2025"; the shares are the library's."""
    import json

    from analytics import formatting

    at = page
    heat = [t for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"] if t.get("type") == "heatmap"]
    assert len(heat) == 1, len(heat)
    trace = heat[0]
    assert "%{customdata:.1f} %" in trace["hovertemplate"] and ":.1%" not in trace["hovertemplate"]
    assert trace["colorbar"]["ticktext"] == [formatting.percent(v, 0) for v in trace["colorbar"]["tickvals"]]
    assert "tickformat" not in trace["colorbar"]
    matrix = explorer.cohort_matrix(explorer.cohort_retention(app_wh, "sample", _as_of(app_wh), 24))
    assert trace["y"] == [formatting.month(m) for m in matrix.index] and trace["y"][0][:3].isalpha()
    z, shown = _array(trace["z"]), _array(trace["customdata"])
    want = matrix.to_numpy(dtype=float)
    np.testing.assert_allclose(z, want, rtol=1e-9)
    np.testing.assert_allclose(shown, 100.0 * want, rtol=1e-9)


def test_saved_segment_with_html_name_and_empty_segment(page, app_wh):
    at = page
    store.save_segment(app_wh, "<script>alert(1)</script>", {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">=", "value": 0}]})
    store.save_segment(app_wh, "nobody", {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": "<", "value": -1e12}]})
    at.radio(key="explorer_kind").set_value("Saved segments").run()
    assert not at.exception, at.exception
    comp = _table(at, "Customers").set_index("Segment")
    frame = explorer.build_frame(app_wh, "sample", _as_of(app_wh))
    assert comp.loc["<script>alert(1)</script>", "Customers"] == int((frame["net_revenue"] >= 0).sum())
    assert comp.loc["nobody", "Customers"] == 0
    assert any("has no customers" in i.value for i in at.info)
    # the empty segment's averages say why they are missing (no cell reads "None"); the other
    # segment's figures in those columns are the library's, written by the formatting helpers
    assert not comp.isna().any().any(), comp[comp.isna().any(axis=1)]
    assert comp.loc["nobody", "Avg CLV"] == "no customers"
    library = explorer.segment_comparison(frame, {"x": frame["net_revenue"] >= 0}, as_of=_as_of(app_wh)).iloc[0]
    from analytics import formatting

    assert comp.loc["<script>alert(1)</script>", "Avg CLV"] == formatting.money(library["avg_clv"], "EUR")
    assert comp.loc["<script>alert(1)</script>", "Orders each"] == formatting.number(library["orders_per_customer"])
    # the name is never rendered as markup
    for md in at.markdown:
        assert "<script>" not in md.value


def test_clusters_of_latest_run(page, app_wh):
    from analytics.segments.clustering import CustomerClustering
    from analytics.segments.rules import customer_frame
    from analytics.summary import customer_summary

    at = page
    # no run yet: the page says so
    at.radio(key="explorer_kind").set_value("Clusters (latest run)").run()
    assert not at.exception, at.exception
    assert any("No clustering run" in i.value for i in at.info)

    as_of = _as_of(app_wh)
    model = CustomerClustering(n_clusters=3, random_state=0).fit(customer_frame(customer_summary(app_wh, "sample", as_of)))
    store.save_clustering_run(app_wh, model, "sample", as_of)
    at.run()
    assert not at.exception, at.exception
    comp = _table(at, "Customers").set_index("Segment")
    exp = model.labels_.map(dict(enumerate(model.names_))).value_counts()
    assert comp["Customers"].sort_index().to_dict() == {k: int(v) for k, v in exp.sort_index().items()}
    assert int(comp["Customers"].sum()) == len(model.labels_)


def test_cluster_migration_between_two_dates(page, app_wh):
    from analytics.segments.clustering import CustomerClustering

    at = page
    at.radio(key="explorer_mig_kind").set_value("Clusters (latest run)").run()
    assert not at.exception, at.exception
    assert any("No clustering run" in i.value for i in at.info)

    as_of = _as_of(app_wh)
    frame = explorer.build_frame(app_wh, "sample", as_of)
    model = CustomerClustering(n_clusters=3, random_state=0).fit(frame)
    run = store.save_clustering_run(app_wh, model, "sample", as_of)
    at.run()
    assert not at.exception, at.exception
    flows = _flows(at)
    # independently: both dates assigned with the run, outer-joined on the id
    earlier = explorer.build_frame(app_wh, "sample", as_of - pd.Timedelta(days=90))
    a = store.assign_with_run(app_wh, run, earlier)["cluster_name"].rename("from")
    b = store.assign_with_run(app_wh, run, frame)["cluster_name"].rename("to")
    exp = pd.concat([a, b], axis=1).astype(object).fillna(explorer.NOT_A_CUSTOMER).value_counts()
    got = flows.set_index(["from", "to"])["customers"]
    assert got.sort_index().to_dict() == {k: int(v) for k, v in exp.sort_index().items()}
    assert set(flows["to"]) <= set(model.names_)
    assert any(f"clustering run {run}" in c.value for c in at.caption)


def test_segments_without_purchases_explain_their_missing_charts(app_wh):
    # page views and carts only: every customer is "No purchase yet", and there is no revenue at all
    import datetime as dt

    from tests.dashboard.conftest import insert_events

    start = dt.datetime(2017, 11, 24)
    insert_events(app_wh, "clicks", [(f"u{i % 30}", start + dt.timedelta(hours=5 * i),
                                      "view" if i % 4 else "cart", None, None) for i in range(240)])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    infos = [i.value for i in at.info]
    assert any("has bought anything" in v and "charts appear once they buy" in v for v in infos), infos
    assert any("No net revenue from these customers" in v for v in infos), infos
    # no bar chart of zeros and no Lorenz curve on the equal-share line; the metrics are not "n/a"
    titles = [getattr(c.proto, "spec", "") for c in at.get("plotly_chart")]
    assert not any("Share of revenue" in t or "Lorenz curve" in t for t in titles)
    assert not any(m.value == "n/a" for m in at.metric)


def test_messages_write_the_as_of_day_as_the_page_does(app_wh):
    # the as-of day in the page's messages reads '13 Dec 2017', as the rest of the product writes days, not
    # '2017-12-13'
    import datetime as dt
    import re

    from analytics import formatting
    from tests.dashboard.conftest import insert_events

    start = dt.datetime(2017, 11, 24)
    rows = [(f"u{i % 30}", start + dt.timedelta(hours=5 * i), "view" if i % 4 else "cart", None, None)
            for i in range(240)]
    insert_events(app_wh, "clicks", rows)
    last = max(r[1] for r in rows).date()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    infos = [i.value for i in at.info]
    dated = [v for v in infos if "up to" in v]
    assert len(dated) >= 3, infos  # no purchase, no net revenue, no cohort
    assert all(f"up to {formatting.date(last)}" in v for v in dated), dated
    assert not any(re.search(r"\d{4}-\d{2}-\d{2}", v) for v in infos), infos


def test_comparison_and_lorenz_charts_write_percentages_as_the_product_does(page):
    """The comparison's rate bars and the Lorenz curve: ticks "20 %" and hovers "12.3 %" (formatting.percent's
    style), never d3's "%" formats; the bars' hover values are the plotted shares x 100."""
    import json

    from analytics import formatting

    at = page
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    rate_titles = {"Share of revenue", "Retention", "Average probability still active"}
    bars = [s for s in specs if s["data"] and s["data"][0].get("type") == "bar"
            and any(str(s["layout"].get("title", {}).get("text", "")).startswith(t) for t in rate_titles)]
    lorenz = [s for s in specs if any(t.get("name") == "Lorenz curve" for t in s["data"])]
    assert bars and len(lorenz) == 1, [s["layout"].get("title") for s in specs]
    for s in bars + lorenz:
        assert "%" not in json.dumps(s["layout"].get("yaxis", {}).get("tickformat", "")), s["layout"]["yaxis"]
        axis = s["layout"]["yaxis"]
        assert axis["ticktext"] == [formatting.percent(v, 0) for v in axis["tickvals"]]
    for s in bars:
        trace = s["data"][0]
        assert trace["hovertemplate"] == "%{x}: %{customdata:.1f} %<extra></extra>"
        np.testing.assert_allclose(_array(trace["customdata"]), 100.0 * _array(trace["y"]), rtol=1e-12)
        assert max(s["layout"]["yaxis"]["tickvals"]) >= np.nanmax(_array(trace["y"])) - 1e-12
    trace = next(t for t in lorenz[0]["data"] if t["name"] == "Lorenz curve")
    assert "% of net revenue" in trace["hovertemplate"] and ":.1%" not in trace["hovertemplate"]


def test_returns_only_explain_their_missing_charts(app_wh):
    # a file of returns only: nobody bought, the net revenue is negative; the page drew a 100 % share of
    # revenue beside three empty charts
    import datetime as dt

    from tests.dashboard.conftest import insert_events

    start = dt.datetime(2024, 1, 10)
    insert_events(app_wh, "returns", [(f"c{i % 12}", start + dt.timedelta(days=4 * i), "return", f"r{i}",
                                       5.0 + i) for i in range(60)])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    infos = [i.value for i in at.info]
    assert any("has bought anything" in v and "charts appear once they buy" in v for v in infos), infos
    titles = [getattr(c.proto, "spec", "") for c in at.get("plotly_chart")]
    assert not any("Share of revenue" in t for t in titles)
