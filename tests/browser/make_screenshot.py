"""Write the README's screenshot gallery: the main pages on the bundled sample data (headless Chromium).

Run:  .venv/bin/python -m tests.browser.make_screenshot [OUT_DIR]      (default: docs/screenshots)
Starts the app on a fresh temporary warehouse holding the bundled sample and one saved segment
("Big spenders": net revenue of at least 500), so the Campaigns and Reports pages have something
to show; each page is shot at 1440 x 1000 once its script run has ended and its charts are drawn.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.browser.server import ROOT, launch_chromium, running_app

SEGMENT = "Big spenders"
#: pages shot from a heading further down (the results rather than the controls)
SCROLL_TO = {"campaigns": "Expected outcome", "reports": "Size and value"}
#: (file stem, path, what to wait for: a CSS selector that must be visible)
PAGES = (
    ("overview", "/", '[data-testid="stMetric"]'),
    ("value", "/value", '[data-testid="stMetric"]'),
    ("segments", "/segments", "h1"),
    ("explorer", "/explorer", '[data-testid="stDataFrame"]'),
    ("campaigns", "/campaigns", '[data-testid="stMetric"]'),
    ("reviews", "/reviews", '[data-testid="stDataFrame"]'),
    ("reports", "/reports", 'button:has-text("Build the report")'),
)


def _warehouse(db: Path) -> None:
    """The bundled sample and one saved segment, written before the app starts."""
    from analytics.bootstrap import ensure_default_dataset
    from analytics.segments import store
    from analytics.warehouse import Warehouse

    wh = Warehouse(db)
    try:
        ensure_default_dataset(wh)
        store.save_segment(wh, SEGMENT, {"op": "and", "conditions": [
            {"field": "net_revenue", "operator": ">=", "value": 500}]}, dataset="sample")
    finally:
        wh.close()


def _net_revenue_at_least(page, expect, value: int) -> None:
    """Fill the rule builder's first condition (net revenue ≥ ``value``) so the live count shows;
    the shot is taken as it is if the builder's layout has moved on."""
    from tests.browser.ui import wait_idle

    try:
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Operator").first.click()
        page.get_by_role("option", name="≥").first.click()
        wait_idle(page, expect, timeout=60_000)
        box = page.get_by_placeholder("a number, e.g. 500").first
        box.fill(str(value))
        box.press("Enter")
        wait_idle(page, expect, timeout=120_000)
    except Exception as exc:  # noqa: BLE001 - a gallery picture, not a test
        print(f"rule builder not filled: {exc}", flush=True)


def _scroll_to_top(locator) -> None:
    """Scroll the page so that ``locator`` sits at the top of the window."""
    locator.evaluate("e => e.scrollIntoView({block: 'start'})")


def main(out: str | None = None) -> int:
    from playwright.sync_api import expect, sync_playwright

    from tests.browser.ui import wait_idle

    expect.set_options(timeout=240_000)
    target = Path(out) if out else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="valuescope-shot-") as tmp:
        db = Path(tmp) / "shot.duckdb"
        _warehouse(db)
        with running_app(db, timeout=240) as url, sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
            page.set_default_timeout(240_000)
            for stem, path, ready in PAGES:
                page.goto(url + path)
                expect(page.locator(ready).first).to_be_visible()
                wait_idle(page, expect, timeout=240_000)
                if stem == "reports":
                    page.get_by_role("button", name="Build the report").click()
                    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
                    wait_idle(page, expect, timeout=240_000)
                if stem == "segments":  # the rule builder with its live count
                    page.get_by_role("tab", name="Rule builder").click()
                    wait_idle(page, expect, timeout=240_000)
                    _net_revenue_at_least(page, expect, 500)
                if stem in SCROLL_TO:  # the results, further down the page
                    _scroll_to_top(page.get_by_role("heading", name=SCROLL_TO[stem]).first)
                if stem == "reviews":  # the churn bands (the sentiment tab's Chinese reviews need a CJK font)
                    page.get_by_role("tab", name="Churn bands").click()
                    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
                if stem == "value":  # the scores, not the parameters: fold the parameters away
                    page.get_by_text("Weights and CLV parameters").first.click()
                    wait_idle(page, expect, timeout=240_000)
                page.wait_for_timeout(2500)  # let the charts finish their transitions
                page.screenshot(path=str(target / f"{stem}.png"))
                print(f"wrote {target / (stem + '.png')}", flush=True)
                if stem == "explorer":  # the segment migration further down the page
                    _scroll_to_top(page.get_by_role("heading", name="Segment migration").first)
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(target / "explorer-migration.png"))
                    print(f"wrote {target / 'explorer-migration.png'}", flush=True)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
