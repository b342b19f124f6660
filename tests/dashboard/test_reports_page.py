"""AppTest: the Reports page (build, preview, permalink, list, revoke) and the read-only
permalink view (valid, revoked, made-up token), on the bundled sample."""
from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics import formatting
from analytics.bootstrap import ensure_default_dataset
from analytics.explorer import build_frame
from analytics.reports import ReportRevokedError, build_report, create_report, get_report, list_reports
from analytics.segments import store
from dashboard.widgets import md_escape
from tests.dashboard.conftest import APP, TIMEOUT

PAGE = "views/reports.py"
HTML_NAME = "<img src=x onerror=alert(1)>"
HTML_DESCRIPTION = '<iframe srcdoc="<script>parent.alert(1)</script>">'
BIG = {"op": "and", "conditions": [{"field": "net_revenue", "operator": ">=", "value": 500}]}


@pytest.fixture
def sample(app_wh):
    ensure_default_dataset(app_wh)
    store.save_segment(app_wh, HTML_NAME, BIG, description=HTML_DESCRIPTION)
    store.save_segment(app_wh, "nobody", {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">", "value": 1e12}]})
    last = app_wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = 'sample'").fetchone()[0]
    return app_wh, pd.Timestamp(last).date()


def _no_markup(at) -> None:
    """User text never reaches Markdown unescaped (md_escape puts a backslash before < and >)."""
    for el in list(at.markdown) + list(at.header) + list(at.caption):
        assert not re.search(r"(?<!\\)<(img|iframe|script)", el.value), el.value


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_build_preview_permalink_list_and_revoke(sample):
    wh, last_day = sample
    frame = build_frame(wh, "sample", last_day)
    expected = int((frame["net_revenue"] >= 500).sum())
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    at.selectbox(key="reports_segment").set_value(HTML_NAME).run()
    at.button(key="reports_build").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert _metrics(at)["Customers"] == f"{expected:,}"
    assert any(t.value == HTML_DESCRIPTION for t in at.text)  # st.text: shown literally
    assert any(h.value == md_escape("Segment report: " + HTML_NAME) for h in at.header)
    _no_markup(at)
    value = next(d.value for d in at.dataframe if "Measure" in d.value.columns).set_index("Measure")
    assert value.loc["Customers", "This segment"] == f"{expected:,}"
    assert len(at.get("download_button")) == 1
    # top items: the sample has item codes only, and the page says so; money in the report's currency
    from analytics.formatting import money
    from analytics.reports.render import CODES_ONLY

    snap = build_report(wh, "sample", last_day, segment=HTML_NAME, frame=frame)
    items = next(d.value for d in at.dataframe if "Share (segment)" in d.value.columns and "Item" in d.value.columns)
    assert items["Item"].tolist() == [r["item_id"] for r in snap["top_items"]]
    assert items["Net revenue"].iloc[0] == money(snap["top_items"][0]["revenue"], snap["currency"], compact=True)
    assert any(c.value == md_escape(CODES_ONLY) for c in at.caption)

    at.button(key="reports_permalink").click().run()
    assert not at.exception, at.exception
    codes = [c.value for c in at.code]
    token = next(c.split("=", 1)[1] for c in codes if c.startswith("?report="))
    snap = get_report(wh, token)
    assert snap["size"]["customers"] == expected and snap["subject"]["name"] == HTML_NAME
    listing = next(d.value for d in at.dataframe if "Link" in d.value.columns)
    # what a reader looks for first sits where a 1280-pixel page shows it (Status and Link were cut off)
    assert list(listing.columns)[:4] == ["Report", "Title", "Status", "Link"], list(listing.columns)
    assert "Kind" not in listing.columns  # the title says segment or campaign report
    row = listing[listing["Link"] == f"?report={token}"]
    assert len(row) == 1 and row.iloc[0]["Status"] == "active"

    rid = int(row.iloc[0]["Report"])
    at.selectbox(key="reports_revoke_id").set_value(rid).run()
    at.button(key="reports_revoke").click().run()
    assert not at.exception, at.exception
    assert list_reports(wh).set_index("id").loc[rid, "status"] == "revoked"
    with pytest.raises(ReportRevokedError):
        get_report(wh, token)


def test_picking_another_segment_does_not_offer_the_earlier_report(sample):
    """After a build, picking another segment (or day) without building again left the earlier report
    under the new choice, with its download and permalink buttons: a colleague got the wrong segment."""
    wh, last_day = sample
    store.save_segment(wh, "also big", BIG)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    at.selectbox(key="reports_segment").set_value(HTML_NAME).run()
    at.button(key="reports_build").click().run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 1 and "reports_permalink" in [b.key for b in at.button]
    at.selectbox(key="reports_segment").set_value("also big").run()
    assert not at.exception, at.exception
    assert not at.get("download_button") and "reports_permalink" not in [b.key for b in at.button]
    assert not at.header  # no report shown under the new choice
    assert any("Press Build the report" in i.value for i in at.info), [i.value for i in at.info]
    at.button(key="reports_build").click().run()
    assert any(h.value == md_escape("Segment report: also big") for h in at.header), [h.value for h in at.header]
    assert len(at.get("download_button")) == 1


def test_empty_segment_is_a_clear_message(sample):
    wh, last_day = sample
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    at.selectbox(key="reports_segment").set_value("nobody").run()
    at.button(key="reports_build").click().run()
    assert not at.exception, at.exception
    assert any(f"segment nobody has no customers as of {last_day}" in e.value.replace("\\", "") for e in at.error)
    assert not at.get("download_button")


def _open_link(token: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["report"] = token
    at.run()
    assert not at.exception, at.exception
    return at


def test_permalink_view_valid_revoked_and_made_up(sample):
    wh, last_day = sample
    snap = build_report(wh, "sample", last_day, segment=HTML_NAME)
    token = create_report(wh, snap)

    at = _open_link(token)
    assert not at.error, [e.value for e in at.error]
    assert _metrics(at)["Customers"] == f"{snap['size']['customers']:,}"
    assert not at.sidebar.selectbox  # no dataset picker, nothing but the report
    assert len(at.get("download_button")) == 1
    _no_markup(at)

    from analytics.reports import revoke_report

    revoke_report(wh, token)
    at = _open_link(token)
    assert [e.value for e in at.error] == ["This report link was revoked. Ask whoever shared it for a new one."]
    assert not at.metric

    at = _open_link("made-up-token-that-was-never-issued")
    assert len(at.error) == 1 and "No such report" in at.error[0].value
    assert not at.metric and not at.sidebar.selectbox


def test_campaign_report_on_the_page(sample):
    campaigns = pytest.importorskip("analytics.campaigns")
    wh, last_day = sample
    as_of = "2025-09-30"
    frame = build_frame(wh, "sample", as_of)
    spec = campaigns.CampaignSpec(name="Win <b>back</b>", dataset="sample", as_of=as_of, segments=[HTML_NAME],
                                  max_contacts=120, control_share=0.25)
    targets = campaigns.select_targets(wh, frame, spec)
    cid = campaigns.save_campaign(wh, spec, targets)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    at.radio(key="reports_kind").set_value("Saved campaign").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="reports_campaign").value == cid
    picker = at.selectbox(key="reports_campaign")  # the campaign's day as the product writes days
    assert picker.format_func(cid) == f"#{cid} · Win <b>back</b> (as of {formatting.date(as_of)})"
    at.button(key="reports_build").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert _metrics(at)["Customers"] == f"{len(targets):,}"  # treatment and control, as of the campaign's day
    assert any(h.value == md_escape("Campaign report: Win <b>back</b>") for h in at.header)
    meta = [c.value.replace("\\", "") for c in at.caption if "report made" in c.value]
    assert len(meta) == 1 and f"data as of {formatting.date(as_of)}" in meta[0], meta
    assert re.search(r"report made \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC", meta[0]), meta
    _no_markup(at)


def test_profile_index_without_a_base_is_a_dash_not_none(app_wh):
    # an order log has no views or carts: all customers' mean is 0, so those features have no index;
    # the page's table wrote 'None' there (the HTML file a dash)
    from tests.dashboard.conftest import insert_events

    rows = [(f"c{i % 30}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=2 * i), "purchase", f"o{i}",
             15.0 + (i * 7) % 90) for i in range(200)]
    insert_events(app_wh, "orders", rows)
    store.save_segment(app_wh, "big spenders", BIG | {"conditions": [
        {"field": "net_revenue", "operator": ">=", "value": 300}]}, dataset="orders")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    at.selectbox(key="reports_segment").set_value("big spenders").run()
    at.button(key="reports_build").click().run()
    assert not at.exception, at.exception
    profile = next(d.value for d in at.dataframe if "Index (all = 100)" in d.value.columns).set_index("Feature")
    index = profile["Index (all = 100)"]
    assert index.notna().all(), index
    assert index.loc["Views"] == formatting.MISSING, index
    assert index.drop(index[index == formatting.MISSING].index).str.fullmatch(r"\d+").all(), index


def test_published_model_is_named_and_dated_as_the_html_file_does(sample):
    # the page wrote 'model lightgbm ..., scored as of 2025-09-30' where the HTML file writes
    # 'LightGBM' and '30 Sep 2025'
    wh, last_day = sample
    cur = wh.cursor()
    cur.execute("INSERT INTO predictor_runs VALUES (901, 'sample', DATE '2025-06-30', DATE '2025-09-30', 'month', "
                "'{}', NULL, TIMESTAMP '2025-10-01')")
    cur.execute("INSERT INTO predictor_models VALUES (901, 'sample', 'lightgbm', '{}', "
                "'{\"mae\": 12.5, \"auc\": 0.81}', 'cpu', 1.0, NULL, NULL)")
    ids = [r[0] for r in cur.execute("SELECT DISTINCT customer_id FROM events WHERE dataset = 'sample'").fetchall()]
    cur.executemany("INSERT INTO customer_predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [("sample", c, float(i % 7), (i % 10) / 10, 901, "lightgbm", "2025-09-30", 90, "2025-10-01")
                     for i, c in enumerate(ids)])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    at.selectbox(key="reports_segment").set_value(HTML_NAME).run()
    at.button(key="reports_build").click().run()
    assert not at.exception, at.exception
    said = [m.value for m in at.markdown if "Published predictions" in m.value]
    assert len(said) == 1, [m.value for m in at.markdown]
    assert "model LightGBM of backtest run 901" in said[0].replace("\\", ""), said
    assert f"scored as of {formatting.date('2025-09-30')}" in said[0], said
    models = next(d.value for d in at.dataframe if "Model" in d.value.columns)
    assert models["Model"].tolist() == ["LightGBM (published)"]
