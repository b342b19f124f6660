"""Write docs/screenshot.png: the Overview page on the bundled sample data (headless Chromium).

Run:  .venv/bin/python -m tests.browser.make_screenshot [OUT.png]
Starts the app on a fresh temporary warehouse, so the sample data set loads as on a first start.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.browser.server import ROOT, launch_chromium, running_app


def main(out: str | None = None) -> int:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=180_000)

    target = Path(out) if out else ROOT / "docs" / "screenshot.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="valuescope-shot-") as tmp:
        with running_app(Path(tmp) / "shot.duckdb", timeout=180) as url, sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1440, "height": 1080}, device_scale_factor=1)
            page.set_default_timeout(120_000)
            page.goto(url + "/")
            expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3")
            page.wait_for_timeout(1500)  # let the charts finish their transitions
            page.screenshot(path=str(target), full_page=True)
            browser.close()
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
