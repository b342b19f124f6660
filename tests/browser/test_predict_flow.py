"""Real browser: a backtest that cannot run leaves only its message on the Predict page.

The app loads the bundled sample on first start. The calibration end is typed to the holdout end (the
dataset's last day), so the backtest is refused before any training: the page must show the reason and
nothing of the run's progress (the bar "Preparing features…" stayed drawn under the message while the
message was put in a new container inside the progress placeholder; AppTest's element tree replaces the
whole block and cannot see that).

Skipped when Playwright or Chromium is missing, unless VALUESCOPE_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import re

import pytest

from tests.browser.server import require_browser_or_skip
from tests.browser.ui import app_session, no_exception, wait_idle

pytestmark = pytest.mark.browser

require_browser_or_skip()


def test_a_refused_backtest_shows_its_reason_and_no_progress(tmp_path):
    from playwright.sync_api import expect

    db = tmp_path / "browser.duckdb"
    with app_session(db, tmp_path, width=1280, height=900) as (url, page):
        page.goto(url + "/predict")
        expect(page.get_by_role("button", name=re.compile("Run backtest"))).to_be_visible(timeout=180_000)
        wait_idle(page, expect, timeout=180_000)
        hold = page.get_by_role("spinbutton", name="year, Holdout end", exact=True)
        year = hold.get_attribute("aria-valuenow")
        month = page.get_by_role("spinbutton", name="month, Holdout end", exact=True).get_attribute("aria-valuenow")
        day = page.get_by_role("spinbutton", name="day, Holdout end", exact=True).get_attribute("aria-valuenow")
        for part, digits in (("year", year), ("month", f"{int(month):02d}"), ("day", f"{int(day):02d}")):
            page.get_by_role("spinbutton", name=f"{part}, Calibration end (cut-off)", exact=True).focus()
            page.keyboard.type(digits)
        page.keyboard.press("Escape")
        page.get_by_role("heading", name=re.compile("Predict")).click()  # the field commits on blur
        wait_idle(page, expect)
        page.get_by_role("button", name=re.compile("Run backtest")).click()
        expect(page.get_by_text(re.compile("^The backtest could not run: "))) \
            .to_be_visible(timeout=120_000)
        wait_idle(page, expect)
        no_exception(page, db)
        assert page.locator('[data-testid="stProgress"]').count() == 0
        assert page.get_by_text("Preparing features").count() == 0
        assert page.get_by_role("button", name=re.compile("Stop training")).count() == 0
