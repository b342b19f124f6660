"""Real browser: a segment report as a self-contained HTML file and as a permalink (issue 6).

Two segments are saved with HTML payloads as user text: one named
``<img src=x onerror=alert(1)>``, one whose description is
``<iframe srcdoc="<script>parent.alert(1)</script>">``. Their reports are written as HTML
files and stored behind permalinks (one of them then revoked), before the app starts
(DuckDB lets one process write the file at a time).

1. Each HTML file is opened from file:// in headless Chromium with every request
   recorded: the file itself must be the only one (plotly.js is inline; the CSP meta
   forbids the rest anyway). No dialog may fire, no <img>/<iframe> may appear, the
   name and description must read as literal text, in the page and in the Plotly
   chart legends (entities in chart labels show as the characters), and the charts
   must be drawn (``.plotly .main-svg``). No console error (a CSP violation is one).
2. The app (``valuescope serve``) opens ``/?report=TOKEN``: the read-only report only
   (no sidebar), the same literal-text checks, no request outside the app's origin;
   a revoked token shows the revoked message, a made-up one "No such report".

Skipped when Playwright or Chromium is missing, unless VALUESCOPE_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import pandas as pd
import pytest

from tests.browser.server import (
    assert_no_browser_errors, launch_chromium, record_errors, require_browser_or_skip, running_app, save_failure,
    server_log,
)
from tests.browser.ui import Dialogs, wait_idle

pytestmark = pytest.mark.browser

NAME = "<img src=x onerror=alert(1)>"
DESCRIBED = "Described segment"
DESCRIPTION = '<iframe srcdoc="<script>parent.alert(1)</script>">'
# Plotly would render these tags/entities if they reached it raw
MARKUP_NAME = """<b>bold</b> & "quotes" it's a &lt; b"""
MARKUP_CATEGORY = '<a href="javascript:alert(3)">cat</a><br>x'
BIG = {"op": "and", "conditions": [{"field": "net_revenue", "operator": ">=", "value": 500}]}

require_browser_or_skip()


def _prepare(db, out_dir) -> dict:
    """Sample + the two segments + their HTML files and permalinks (one revoked), in ``db``."""
    from analytics.bootstrap import ensure_default_dataset
    from analytics.reports import build_report, create_report, get_report, render_html, revoke_report
    from analytics.segments import store
    from analytics.warehouse import Warehouse

    wh = Warehouse(db)
    try:
        if ensure_default_dataset(wh) is None:
            pytest.fail("the bundled sample could not be loaded")
        store.save_segment(wh, NAME, BIG)
        store.save_segment(wh, DESCRIBED, BIG, description=DESCRIPTION)
        store.save_segment(wh, MARKUP_NAME, BIG)
        last = wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = 'sample'").fetchone()[0]
        day = pd.Timestamp(last).date()
        named = build_report(wh, "sample", day, segment=NAME)
        described = build_report(wh, "sample", day, segment=DESCRIBED)
        markup = build_report(wh, "sample", day, segment=MARKUP_NAME)
        markup["top_categories"][0]["category"] = MARKUP_CATEGORY  # as if the data had such a category
        files = {}
        for key, snap in (("named", named), ("described", described), ("markup", markup)):
            path = out_dir / f"{key}.html"
            path.write_text(render_html(snap), encoding="utf-8")
            files[key] = path
        token = create_report(wh, named)
        permalink_html = render_html(get_report(wh, token))  # what the permalink's download must hold
        token_described = create_report(wh, described)
        revoked = create_report(wh, named)
        revoke_report(wh, revoked)
        return {"files": files, "token": token, "token_described": token_described, "revoked": revoked,
                "permalink_html": permalink_html, "customers": named["size"]["customers"]}
    finally:
        wh.close()


def _wait_legend(page, text: str) -> None:
    """Plotly has drawn a legend entry reading exactly ``text`` (charts draw after the page settles)."""
    page.wait_for_function(
        "t => Array.from(document.querySelectorAll('.legendtext')).some(e => e.textContent === t)",
        arg=text, timeout=60_000)


def _no_injected_elements(page) -> None:
    assert page.locator("iframe").count() == 0
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("[onerror]").count() == 0
    assert page.locator("[srcdoc]").count() == 0


def test_report_file_and_permalink_show_html_as_text(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    db = tmp_path / "browser.duckdb"
    prep = _prepare(db, tmp_path)
    dialogs = Dialogs()

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            # ---- 1. the HTML files, offline
            for key, path in prep["files"].items():
                page = browser.new_page(viewport={"width": 1300, "height": 1000})
                console_errors: list[str] = []
                requests: list[str] = []
                page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: console_errors.append(f"pageerror: {e}"))
                page.on("request", lambda r: requests.append(r.url))
                page.on("dialog", dialogs)
                try:
                    url = path.resolve().as_uri()
                    page.goto(url)
                    expect(page.locator(".plotly .main-svg").first).to_be_attached()
                    page.wait_for_timeout(500)
                    assert page.locator(".plotly").count() >= 4  # trend, profile, Lorenz, categories...
                    if key == "named":
                        expect(page.locator("#subject-name")).to_have_text(NAME)
                        expect(page.locator("#report-title")).to_have_text("Segment report: " + NAME)
                        _wait_legend(page, f"{NAME} · active customers")
                    elif key == "described":
                        expect(page.locator("#subject-description")).to_have_text(DESCRIPTION)
                    else:
                        # chart text shows exactly what was typed: no bold, no link, no decoded entity
                        expect(page.locator("#subject-name")).to_have_text(MARKUP_NAME)
                        _wait_legend(page, f"{MARKUP_NAME} · active customers")
                        ticks = page.locator("#chart-top_categories .ytick text").all_text_contents()
                        assert MARKUP_CATEGORY in ticks, ticks
                        assert page.locator(".plotly a").count() == 0
                        assert page.locator('.plotly tspan[style*="bold"]').count() == 0
                    _no_injected_elements(page)
                    # the key figures are cards of one width in rows (with wrapping flex boxes the sixth
                    # stretched alone across the whole page under the other five)
                    boxes = [c.bounding_box() for c in page.locator(".cards").first.locator(".card").all()]
                    assert len(boxes) >= 5 and len({round(b["width"]) for b in boxes}) == 1, boxes
                    assert len({round(b["y"]) for b in boxes}) == 1, boxes  # 1300 px: one row
                    assert requests == [url], f"requests besides the file itself: {requests}"
                    assert not console_errors, f"console errors (CSP violations included): {console_errors}"
                except Exception:
                    save_failure(page, tmp_path)
                    raise
                finally:
                    page.close()

            # ---- 2. the permalink in the running app
            with running_app(db) as base:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.set_default_timeout(60_000)
                console_errors = []
                failed_urls: list[str] = []
                requests = []
                record_errors(page, console_errors, failed_urls)
                page.on("request", lambda r: requests.append(r.url))
                page.on("dialog", dialogs)
                try:
                    page.goto(f"{base}/?report={prep['token']}")
                    expect(page.get_by_text("Segment report: " + NAME, exact=True)).to_be_visible(timeout=180_000)
                    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
                    expect(page.locator(".plotly .main-svg").first).to_be_attached()
                    assert f"{prep['customers']:,}" in page.locator('[data-testid="stMetricValue"]').first.inner_text()
                    assert page.locator('[data-testid="stSidebar"]').count() == 0  # nothing but the report
                    _wait_legend(page, f"{NAME} · active customers")
                    _no_injected_elements(page)
                    assert not page.locator('[data-testid="stException"]').count(), server_log(db)

                    wait_idle(page, expect)
                    # The HTML file is made only when the button is clicked: drawing the button fetches
                    # nothing (a button holding the bytes made the browser fetch the ~5 MB file at once,
                    # and leaving the page during that fetch aborted it).
                    assert not [u for u in requests if u.startswith(f"{base}/media/")], requests
                    # on a click Streamlit makes the file, starts the download and also fetches the file
                    # once to check the link: every such request must end before the page is left
                    media = f"{base}/media/"
                    pending: set = set()
                    page.on("request", lambda r: pending.add(r) if r.url.startswith(media) else None)
                    page.on("requestfinished", lambda r: pending.discard(r))
                    page.on("requestfailed", lambda r: pending.discard(r))
                    with page.expect_download(timeout=60_000) as info:
                        page.get_by_role("button", name="Download as an HTML file").click()
                    info.value.path()  # the download is complete
                    for _ in range(600):  # up to 60 s
                        if not pending:
                            break
                        page.wait_for_timeout(100)
                    assert not pending, [r.url for r in pending]
                    saved = tmp_path / "downloaded.html"
                    info.value.save_as(str(saved))
                    assert saved.read_text(encoding="utf-8") == prep["permalink_html"]
                    wait_idle(page, expect)

                    page.goto(f"{base}/?report={prep['token_described']}")
                    expect(page.get_by_text(DESCRIPTION, exact=True)).to_be_visible(timeout=120_000)
                    expect(page.locator(".plotly .main-svg").first).to_be_attached()
                    wait_idle(page, expect)
                    _no_injected_elements(page)

                    page.goto(f"{base}/?report={prep['revoked']}")
                    expect(page.get_by_text("This report link was revoked", exact=False)).to_be_visible()
                    wait_idle(page, expect)
                    assert page.locator('[data-testid="stMetric"]').count() == 0

                    page.goto(f"{base}/?report=made-up-token-never-issued")
                    expect(page.get_by_text("No such report", exact=False)).to_be_visible()
                    wait_idle(page, expect)
                    assert page.locator('[data-testid="stException"]').count() == 0
                    outside = [u for u in requests if not (u.startswith(base) or u.startswith(("data:", "blob:")))]
                    assert not outside, f"the app requested outside its origin: {outside}"
                except Exception:
                    save_failure(page, tmp_path)
                    raise
                finally:
                    page.close()  # before the server stops (no reconnect noise)
            assert_no_browser_errors(failed_urls, console_errors)
        finally:
            browser.close()
    assert not dialogs, f"dialogs fired: {dialogs}"
