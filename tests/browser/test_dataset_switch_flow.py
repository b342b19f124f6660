"""Real browser: after a switch of dataset in the sidebar the pages' day pickers show the new
dataset's last day, and after a load the Data page's Currency picker shows the new dataset. A
default given only to the server (``value=``) left the browser showing, and sending back, what was
picked on the other dataset (AppTest has no browser state, so cannot see it)."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.browser.server import load_orders, require_browser_or_skip
from tests.browser.ui import app_session, no_exception, pick, wait_idle

require_browser_or_skip()
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _rows(n: int, first: dt.date, span: int) -> list[str]:
    return [f"c{i % 60},{first + dt.timedelta(days=(i * 7) % span)},{(20 + (i * 37) % 300) / 1.0:.2f}"
            for i in range(n)]


def test_day_and_dataset_pickers_follow_the_sidebar_in_the_browser(tmp_path):
    from playwright.sync_api import expect

    early = _rows(300, dt.date(2024, 1, 1), 400)   # last day 2025-02-03 at the latest
    late = _rows(300, dt.date(2024, 6, 1), 500)
    db = load_orders(tmp_path / "a", early, dataset="early")
    load_orders(tmp_path / "b", late, dataset="late", db=db)
    last = {"early": max(r.split(",")[1] for r in early), "late": max(r.split(",")[1] for r in late)}
    assert last["early"] < last["late"]
    with app_session(db, tmp_path, skip_sample=True, width=1400, height=1000, timeout=120_000) as (url, page):
        page.goto(url + "/value")
        wait_idle(page, expect)
        sidebar = page.locator('[data-testid="stSidebar"]')
        as_of = page.locator('[data-testid="stDateInput"] input').first
        for name in ("late", "early", "late"):
            pick(page, sidebar, "Dataset", name)
            wait_idle(page, expect)
            no_exception(page, db)
            expect(as_of).to_have_value(last[name])
        page.goto(url + "/data")
        wait_idle(page, expect)
        for name in ("late", "early"):
            pick(page, sidebar, "Dataset", name)
            wait_idle(page, expect)
        box = page.locator('[data-testid="stSelectbox"]').filter(has=page.locator("label", has_text="Dataset")).nth(1)
        expect(box.locator("input")).to_have_value("early")
        no_exception(page, db)
