"""Real browser at 1280 x 800 (a laptop with the sidebar open): no KPI card on the Overview cuts its
label or its figure ("Active, last 90 …", "€196,93…" once did). The data: orders
worth about 310,000 in all and more than 10,000 in the last 30 days, so that every money card
holds a six-figure or five-figure amount; the cards' full figures are in their help."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.browser.server import load_orders, require_browser_or_skip
from tests.browser.ui import app_session, no_exception, wait_idle

require_browser_or_skip()
# slow: the lifecycle flow is the default run's browser representative
pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: elements (metric labels and values) whose text is wider than their box, with that text
CUT = """() => { const out = [];
  for (const el of document.querySelectorAll('[data-testid=stMetricLabel], [data-testid=stMetricValue]')) {
    for (const e of [el, ...el.querySelectorAll('*')]) {
      if (e.scrollWidth > e.clientWidth + 1) { out.push(el.innerText.trim()); break; } } }
  return out; }"""


def test_overview_cards_are_not_cut_at_1280_pixels(tmp_path):
    from playwright.sync_api import expect

    first = dt.date(2024, 1, 1)
    rows = [f"c{i % 400},{first + dt.timedelta(days=(i * 5) % 500)},{(120 + (i * 37) % 900) / 1.0:.2f}"
            for i in range(600)]
    db = load_orders(tmp_path, rows)
    with app_session(db, tmp_path, skip_sample=True, width=1280, height=800) as (url, page):
        page.goto(url)
        expect(page.get_by_role("heading", name="📈 Overview", exact=True)).to_be_visible()
        wait_idle(page, expect)
        no_exception(page, db)
        expect(page.locator('[data-testid="stMetric"]')).to_have_count(12)
        values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert any(v.endswith(" K") for v in values), values  # the money cards are shortened
        assert page.evaluate(CUT) == []
