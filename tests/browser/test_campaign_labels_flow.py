"""Real browser at 1280 x 900 (a laptop with the sidebar open): no widget label on the Campaigns
page's Build tab runs into its help icon or is cut ("Extra conditions (all must hold)" once
touched its "?" in the quarter-page column beside the segment picker)."""
from __future__ import annotations

import pytest

from tests.browser.server import require_browser_or_skip
from tests.browser.ui import app_session, no_exception, wait_idle

require_browser_or_skip()
# slow: the lifecycle flow is the default run's browser representative
pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: per visible widget label: its text, the gap in pixels between the text and its help icon (None
#: without one) and whether the text is wider than its box
LABELS = """() => Array.from(document.querySelectorAll('[data-testid="stWidgetLabel"]')).map(l => {
  const p = l.querySelector('p') || l; const r = document.createRange(); r.selectNodeContents(p);
  const t = r.getBoundingClientRect();
  const icon = l.parentElement.querySelector('[data-testid="stTooltipIcon"]');
  return {text: p.textContent.trim(), width: t.width, gap: icon ? icon.getBoundingClientRect().left - t.right : null,
          cut: p.scrollWidth > p.clientWidth + 1};
}).filter(x => x.width > 0)"""


def test_campaign_labels_keep_clear_of_their_help_icons_at_1280_pixels(tmp_path):
    from playwright.sync_api import expect

    db = tmp_path / "w.duckdb"
    with app_session(db, tmp_path, width=1280, height=900, timeout=240_000) as (url, page):
        page.goto(url + "/campaigns")
        expect(page.get_by_role("heading", name="🎯 Campaigns", exact=True)).to_be_visible()
        wait_idle(page, expect, timeout=240_000)
        no_exception(page, db)
        expect(page.locator('[data-testid="stNumberInput"]').filter(has_text="Extra conditions")).to_be_visible()
        labels = page.evaluate(LABELS)
        assert any(x["text"].startswith("Extra conditions") for x in labels), labels
        crowded = [x for x in labels if x["cut"] or (x["gap"] is not None and x["gap"] < 4)]
        assert crowded == [], crowded
