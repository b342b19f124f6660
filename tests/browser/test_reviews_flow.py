"""Real browser: the Reviews & new customers page shows a review holding markup as literal text.

A small generated sample gets one 1-star review by its biggest spender whose text is
``<img src=x onerror=alert(1)>`` plus a script tag; the reviews are scored before the app starts.
In Chromium the page lists it among the most negative recent reviews of valuable customers: the
grid cell reads the characters, no <img src=x> reaches the page, no dialog fires, no console error.
Marked slow (runs with -m slow in CI). Skipped when Playwright or Chromium is missing, unless
VALUESCOPE_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.browser.server import require_browser_or_skip
from tests.browser.ui import app_session, grid_column, no_exception, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXT = "<img src=x onerror=alert(1)> <script>alert(2)</script> awful and broken"

require_browser_or_skip()


def test_review_with_markup_reads_as_text(tmp_path):
    from playwright.sync_api import expect

    from analytics.ingest import ingest
    from analytics.reviews.sentiment import score_dataset_reviews
    from analytics.warehouse import Warehouse
    from sample_data.generator import SampleConfig, generate

    ev = tmp_path / "events.csv.gz"
    generate(ev, None, SampleConfig(customers=600, seed=4))
    events = pd.read_csv(ev, dtype={"customer_id": str})
    top = events[events["event_type"] == "purchase"].groupby("customer_id")["revenue"].sum().idxmax()
    extra = tmp_path / "extra.csv"
    pd.DataFrame([{"customer_id": top, "event_time": "2025-12-31 12:00:00", "event_type": "review",
                   "item_id": "SKU10001", "category": "electronics", "rating": 1, "text": TEXT}]).to_csv(extra,
                                                                                                        index=False)
    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    ingest(wh, ev, "gen")
    ingest(wh, extra, "gen")
    score_dataset_reviews(wh, "gen")
    wh.close()
    with app_session(db, tmp_path, skip_sample=True) as (url, page):
        page.goto(f"{url}/reviews")
        wait_idle(page, expect, timeout=240_000)
        no_exception(page, db)
        expect(page.get_by_text("Most negative recent reviews of valuable customers")).to_be_visible()
        grid = page.locator('[data-testid="stDataFrame"]').filter(
            has=page.locator("th", has_text=re.compile(r"^\s*Review\s*$"))).first
        expect(grid).to_be_visible()
        cells = grid_column(grid, "Review")
        assert TEXT in cells, cells[:5]
        assert page.locator('img[src="x"]').count() == 0
