"""Real browser: the Overview marks a partial first and last month (hatched bars with their day
count, a dashed line to the partial point, a sentence above the charts), and the date range's
KPIs carry their change against the period before.

The data are orders from 10 June 2023 to 5 March 2024, loaded from the command line: June holds
21 of its 30 days and March 5 of its 31, counted independently here from the file's first and
last day.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys

import pytest

from tests.browser.server import ROOT, require_browser_or_skip
from tests.browser.ui import app_session, no_exception, wait_idle

require_browser_or_skip()
# slow: the lifecycle flow is the default run's browser representative
pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIRST, LAST = dt.date(2023, 6, 10), dt.date(2024, 3, 5)


def _orders(path) -> None:
    days = (LAST - FIRST).days
    rows = [f"c{i % 60},{FIRST + dt.timedelta(days=(i * 7) % (days + 1))},{5 + i % 90}.50" for i in range(900)]
    rows += [f"c1,{FIRST},10.00", f"c2,{LAST},12.00"]
    path.write_text("customer_id,order_date,amount\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_partial_months_are_hatched_with_their_day_count(tmp_path):
    from playwright.sync_api import expect

    db = tmp_path / "w.duckdb"
    _orders(tmp_path / "orders.csv")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "analytics.cli", "ingest", str(tmp_path / "orders.csv"),
                           "--dataset", "shop", "--db", str(db), "--no-prepare"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    first_days = 30 - FIRST.day + 1          # 10..30 June
    last_days = LAST.day                     # 1..5 March
    with app_session(db, tmp_path, skip_sample=True) as (url, page):
        page.goto(url)
        expect(page.get_by_role("heading", name="📈 Overview", exact=True)).to_be_visible()
        wait_idle(page, expect)
        no_exception(page, db)
        expect(page.get_by_text(re.compile(
            rf"first month has data for {first_days} of its 30 days and the last month has data for "
            rf"{last_days} of its 31 days"))).to_be_visible()
        revenue = page.locator('[data-testid="stPlotlyChart"]').first
        expect(revenue.locator("text.annotation-text", has_text=f"partial: {last_days} of 31 days")).to_be_visible()
        expect(revenue.locator("text.annotation-text", has_text=f"partial: {first_days} of 30 days")).to_be_visible()
        # hatched bars: plotly draws a marker pattern as an SVG <pattern> fill
        assert revenue.locator("pattern").count() >= 1
        active = page.locator('[data-testid="stPlotlyChart"]').nth(1)
        assert active.locator("path.js-line[style*='stroke-dasharray']").count() >= 1
        # the date range (default: the last 30 days) compares with the 30 days before
        expect(page.get_by_text(re.compile(r"5 Feb – 5 Mar 2024"))).to_be_visible()
        deltas = page.locator('[data-testid="stMetricDelta"]')
        assert deltas.count() >= 5
        no_exception(page, db)
