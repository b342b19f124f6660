"""Stored reports (tokens, revoke, frozen numbers) and the self-contained HTML file."""
from __future__ import annotations

import html
import json
import re

import pandas as pd
import pytest

from analytics.reports import (ReportError, ReportRevokedError, build_report, create_report, get_report,
                               list_reports, render_html, report_figures, revoke_report)
from analytics.reports.render import CSP, chart_text, json_for_script
from analytics.segments import store
from tests.reports.conftest import AS_OF, BIG, HTML_DESCRIPTION, HTML_NAME

NASTY = "</script><script>alert('x')</script> & <b>bold</b>"


@pytest.fixture(scope="module")
def snap(sample_wh):
    return build_report(sample_wh, "sample", AS_OF, segment=HTML_NAME)


# ----------------------------------------------------------------- tokens and storage
def test_tokens_are_long_unique_and_stored_hashed(sample_wh, snap):
    tokens = [create_report(sample_wh, snap) for _ in range(20)]
    assert len(set(tokens)) == 20
    for t in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", t)  # token_urlsafe(24): 192 random bits
    stored = sample_wh.cursor().execute("SELECT token_hash, token_hint, snapshot FROM reports").fetchall()
    joined = " ".join(" ".join(map(str, r)) for r in stored)
    assert not any(t in joined for t in tokens)  # only the hash (and a 6-character hint) is kept
    assert {r[1] for r in stored} >= {t[:6] for t in tokens}
    assert get_report(sample_wh, tokens[0]) == snap


def test_revoked_and_made_up_tokens(sample_wh, snap):
    token = create_report(sample_wh, snap, now="2026-01-01 10:00:00")
    rid = int(list_reports(sample_wh)["id"].max())
    assert get_report(sample_wh, token)["title"] == snap["title"]
    assert revoke_report(sample_wh, token) == rid
    with pytest.raises(ReportRevokedError, match="^this report link was revoked$"):
        get_report(sample_wh, token)
    revoke_report(sample_wh, token)  # twice is harmless
    listed = list_reports(sample_wh).set_index("id")
    assert listed.loc[rid, "status"] == "revoked" and listed.loc[rid, "subject"] == HTML_NAME
    made_up = "A" * 32
    for bad in (made_up, token[:-1] + ("x" if token[-1] != "x" else "y"), "", "'; DROP TABLE reports; --", None):
        with pytest.raises(ReportError, match="^no such report"):
            get_report(sample_wh, bad)
    with pytest.raises(ReportError, match="no such report"):
        revoke_report(sample_wh, made_up)
    with pytest.raises(ReportError, match="no report with id 999999"):
        revoke_report(sample_wh, report_id=999999)


def test_a_stored_report_keeps_its_numbers_after_new_data(tmp_path):
    """Create a report, add purchases of its members up to the as-of day, reopen: same numbers."""
    from analytics.bootstrap import ensure_default_dataset
    from analytics.warehouse import Warehouse

    wh = Warehouse(tmp_path / "frozen.duckdb")
    try:
        ensure_default_dataset(wh)
        store.save_segment(wh, "big", BIG)
        before = build_report(wh, "sample", AS_OF, segment="big")
        token = create_report(wh, before)
        member = wh.cursor().execute(
            "SELECT customer_id FROM events WHERE dataset = 'sample' AND event_type = 'purchase' "
            "GROUP BY 1 ORDER BY sum(revenue) DESC LIMIT 1").fetchone()[0]
        wh.cursor().execute(
            "INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, category, revenue) "
            "VALUES ('sample', ?, TIMESTAMP '2025-09-15 12:00:00', 'purchase', 'late-1', 'i-late', 'late', 99999.0), "
            "('sample', 'brand-new', TIMESTAMP '2025-09-15 13:00:00', 'purchase', 'late-2', 'i-late', 'late', 777.0)",
            [member])
        after = build_report(wh, "sample", AS_OF, segment="big")
        assert after["value"]["segment"]["net_revenue"] == pytest.approx(
            before["value"]["segment"]["net_revenue"] + 99999.0 + 777.0)
        wh.close()
        wh = Warehouse(tmp_path / "frozen.duckdb")  # reopen the file
        again = get_report(wh, token)
        assert again == before
        assert again["value"]["segment"]["net_revenue"] == before["value"]["segment"]["net_revenue"]
        assert again["size"] == before["size"] != after["size"]
    finally:
        wh.close()


# ----------------------------------------------------------------- HTML
def _resource_loads(doc: str, *, links: bool = True) -> list[str]:
    """Markup in ``doc`` that would load something from elsewhere (``links``: also any
    http(s) src/href attribute; plotly.js itself holds a few such strings for map
    attributions and its logo link, which it never renders here)."""
    found = re.findall(r"<script[^>]*\bsrc\s*=", doc, re.I)
    found += re.findall(r"<link\b[^>]*>", doc, re.I)
    found += re.findall(r"url\(\s*['\"]?\s*(?:https?:|//)[^)]*\)", doc, re.I)
    found += re.findall(r"@import", doc, re.I)
    found += re.findall(r"<(?:img|iframe|object|embed|audio|video|source)\b", doc, re.I)
    if links:
        found += re.findall(r"\b(?:src|href|action|poster)\s*=\s*['\"]?\s*(?:https?:|//)", doc, re.I)
    return found


def test_html_is_self_contained_with_real_plotly(snap):
    doc = render_html(snap)
    from plotly.offline import get_plotlyjs

    lib = get_plotlyjs()
    assert lib[:2000] in doc and lib[-2000:] in doc  # plotly.js inline
    assert _resource_loads(doc, links=False) == []
    assert _resource_loads(doc.replace(lib, "")) == []  # the report's own markup: no link at all
    assert "http://" not in doc.replace(lib, "") and "https://" not in doc.replace(lib, "")
    assert f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">' in doc
    assert "default-src 'none'" in CSP and "img-src data:" in CSP
    head, body = doc.split("</head>", 1)
    assert "fetch(" not in body and "XMLHttpRequest" not in body
    for chart in report_figures(snap):
        assert f'id="chart-{chart}"' in body
    # the trend's months read as the monthly table writes them (Jan 2024), not 2024-01
    axis = report_figures(snap)["trend"]["layout"]["xaxis"]
    months = snap["trend"]["months"]
    assert axis["tickvals"] == months
    assert axis["ticktext"] == [pd.Timestamp(m + "-01").strftime("%b %Y") for m in months]


def test_user_text_appears_only_escaped(sample_wh):
    store.save_segment(sample_wh, NASTY, BIG, description=HTML_DESCRIPTION + "\n" + NASTY)
    snap = build_report(sample_wh, "sample", AS_OF, segment=NASTY)
    doc = render_html(snap, plotly_js="/* plotly stand-in */")
    for raw in (NASTY, HTML_DESCRIPTION, "<b>bold</b>", "<script>alert", "<iframe"):
        assert raw not in doc
    assert html.escape(NASTY, quote=True) in doc
    assert html.escape(HTML_DESCRIPTION, quote=True) in doc
    # exactly the four script elements this module writes; user text cannot end one early
    assert doc.count("<script") == 4 and doc.count("</script>") == 4
    blocks = dict(re.findall(r'<script type="application/json" id="([a-z-]+)">(.*?)</script>', doc, re.S))
    assert json.loads(blocks["report-snapshot"]) == snap
    figs = json.loads(blocks["report-figures"])
    assert figs == report_figures(snap)
    # chart labels carry the name as entities (Plotly shows them as literal text)
    names = {t["name"] for f in figs.values() for t in f["data"]}
    assert chart_text(NASTY) in names and NASTY not in names
    assert chart_text(NASTY) == "&lt;/script&gt;&lt;script&gt;alert('x')&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"


def test_categories_and_items_are_escaped_in_tables_and_charts(snap):
    s = json.loads(json.dumps(snap))
    s["top_categories"][0]["category"] = "<a href='javascript:alert(1)'>cat</a>"
    s["top_items"][0]["item_id"] = '"><img src=x onerror=alert(2)>'
    s["rfm_mix"][0]["rfm_segment"] = "<br>Champions"
    doc = render_html(s, plotly_js="")
    assert "<a href='javascript" not in doc and "<img src=x" not in doc and "<br>Champions" not in doc
    assert html.escape(s["top_categories"][0]["category"]) in doc
    figs = report_figures(s)
    assert figs["top_categories"]["data"][0]["y"][0] == "&lt;a href='javascript:alert(1)'&gt;cat&lt;/a&gt;"
    assert figs["top_items"]["data"][0]["y"][0] == '"&gt;&lt;img src=x onerror=alert(2)&gt;'
    assert figs["rfm_mix"]["data"][0]["x"][0] == "&lt;br&gt;Champions"


def test_json_for_script_escapes_markup():
    text = json_for_script({"a": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


def test_list_reports_columns(sample_wh, snap):
    create_report(sample_wh, snap)
    df = list_reports(sample_wh, dataset="sample")
    assert {"id", "title", "kind", "subject", "dataset", "as_of", "created_at", "revoked_at", "status",
            "token_hint"} <= set(df.columns)
    assert (df["dataset"] == "sample").all() and list(df["created_at"]) == sorted(df["created_at"], reverse=True)
    assert list_reports(sample_wh, dataset="other").empty
    assert pd.Timestamp(df.iloc[0]["as_of"]).date().isoformat() == AS_OF


def test_deleting_a_dataset_deletes_its_reports(wh):
    from analytics.ingest import delete_dataset
    from tests.dashboard.conftest import insert_events, synthetic_rows

    insert_events(wh, "tiny", synthetic_rows(60, seed=3))
    store.save_segment(wh, "everyone", {"op": "and", "conditions": []})
    snap = build_report(wh, "tiny", "2024-03-01", segment="everyone")
    n = wh.cursor().execute("SELECT count(DISTINCT customer_id) FROM events WHERE event_time < '2024-03-02'"
                            ).fetchone()[0]
    assert snap["size"]["customers"] == snap["size"]["all_customers"] == n
    assert snap["top_categories"] == [] and snap["top_items"] == []  # no categories in this data
    assert "The data has no categories or item ids." in render_html(snap, plotly_js="")
    token = create_report(wh, snap)
    delete_dataset(wh, "tiny")
    with pytest.raises(ReportError, match="no such report"):
        get_report(wh, token)
    assert list_reports(wh).empty


def test_tokens_never_start_with_a_dash(monkeypatch):
    """A token starting with '-' reads as an option to `valuescope report revoke TOKEN`: such draws
    (one in 64 of token_urlsafe's) are drawn again."""
    from analytics.reports import store as report_store

    draws = iter(["-" + "a" * 31, "_" + "b" * 31, "Cc" + "d" * 30])
    monkeypatch.setattr(report_store.secrets, "token_urlsafe", lambda n: next(draws))
    assert report_store.new_token() == "Cc" + "d" * 30
    monkeypatch.undo()
    assert all(report_store.new_token()[0].isalnum() for _ in range(2000))
