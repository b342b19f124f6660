"""Real browser at 1280 x 900 (a laptop with the sidebar open): the Segments rule builder's live
figures cut no label ("Expected value of the selec…" once was, in its quarter-page card). The data:
an order log of 120 customers loaded with the CLI, one condition (RFM segment = Champions)."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.browser.server import load_orders, require_browser_or_skip
from tests.browser.test_overview_cards_flow import CUT
from tests.browser.ui import app_session, metric_value, no_exception, pick, wait_idle

require_browser_or_skip()
# slow: the lifecycle flow is the default run's browser representative
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_rule_builder_cards_are_not_cut_at_1280_pixels(tmp_path):
    from playwright.sync_api import expect

    first = dt.date(2024, 1, 1)
    rows = [f"c{i % 120},{first + dt.timedelta(days=(i * 7) % 480)},{(20 + (i * 37) % 300) / 1.0:.2f}"
            for i in range(500)]
    db = load_orders(tmp_path, rows)
    with app_session(db, tmp_path, skip_sample=True, width=1280, height=900, timeout=120_000) as (url, page):
        page.goto(url + "/segments")
        expect(page.get_by_role("heading", name="🧩 Segments", exact=True)).to_be_visible()
        wait_idle(page, expect)
        page.get_by_role("tab", name="Rule builder").click()
        rules_tab = page.get_by_role("tabpanel", name="Rule builder")
        field = rules_tab.locator('[data-testid="stSelectbox"]').filter(
            has=page.locator("label", has_text=re.compile(r"^\s*Field\s*$")))
        field.first.click()
        page.keyboard.type("RFM segment")  # the list of fields is longer than its drop-down shows
        page.get_by_role("option", name="RFM segment", exact=True).click()
        wait_idle(page, expect)
        pick(page, rules_tab, "Value", "Champions")
        wait_idle(page, expect)
        no_exception(page, db)
        expect(metric_value(page, rules_tab, "Customers selected")).to_have_text(re.compile(r"^\d+$"))
        labels = rules_tab.locator('[data-testid="stMetricLabel"]').all_inner_texts()
        assert len(labels) == 4, labels  # with the expected value
        assert page.evaluate(CUT) == []
