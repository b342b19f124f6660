"""Real browser: upload a CSV on the Data page, load it, read the customer count on the Overview.

Runs the app as a subprocess (`valuescope serve`) on a temporary warehouse and drives
Debian's Chromium with Playwright. Skipped when Playwright or Chromium is missing,
unless VALUESCOPE_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.browser.server import ROOT, require_browser_or_skip, server_log
from tests.browser.ui import app_session

# slow: left out of the default run (budget: 10 min for the whole suite on 2 cores); the lifecycle
# flow (upload -> score -> segment -> target -> export -> report) is the default run's browser representative
pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAMPLE = ROOT / "sample_data" / "sample_events.csv.gz"
DATASET = "browser_upload"

require_browser_or_skip()



def _upload_file(tmp_path: Path) -> tuple[Path, int]:
    """A small CSV cut from the bundled sample (whole customers) and its customer count."""
    if not SAMPLE.exists():
        pytest.fail(f"the bundled sample {SAMPLE} is missing")
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    cust_col = "customer_id" if "customer_id" in df.columns else df.columns[0]
    keep = sorted(df[cust_col].unique())[:150]
    part = df[df[cust_col].isin(set(keep))]
    out = tmp_path / "browser_upload.csv"
    part.to_csv(out, index=False)
    return out, int(part[cust_col].nunique())


def _metric(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)
    )
    return metric.locator('[data-testid="stMetricValue"]').first.inner_text().strip()


def test_upload_then_overview_shows_customer_count(tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)

    csv_path, expected_customers = _upload_file(tmp_path)
    db = tmp_path / "browser.duckdb"

    with app_session(db, tmp_path, skip_sample=True, height=1000, timeout=30_000) as (url, page):

        page.goto(url + "/data")
        expect(page.get_by_role("heading", name="🗂️ Data", exact=True)).to_be_visible()
        # a fresh server opened on a deep link still runs through app.py (sidebar, navigation)
        expect(page.locator('[data-testid="stSidebar"]').get_by_text(re.compile("Compute device"))).to_be_visible()
        expect(page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Overview")).to_be_visible()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(csv_path))

        name_box = page.get_by_label(re.compile(r"^Dataset name"))
        expect(name_box).to_be_visible()
        name_box.fill(DATASET)
        name_box.press("Enter")
        load = page.get_by_role("button", name="Load", exact=True)
        expect(load).to_be_enabled()
        load.click()

        expect(page.get_by_text("Validation report")).to_be_visible(timeout=60_000)
        expect(page.get_by_text(re.compile(r"Rows read = loaded \+ rejected \+ duplicates"))).to_be_visible()
        assert not page.locator('[data-testid="stException"]').count()

        # to the Overview through the navigation (same session), and pick the dataset
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Overview").click()
        expect(page.get_by_role("heading", name="📈 Overview", exact=True)).to_be_visible()
        sidebar = page.locator('[data-testid="stSidebar"]')
        expect(sidebar.get_by_text(re.compile("Compute device"))).to_be_visible()
        sidebar.locator('[data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name=DATASET, exact=True).click()
        expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
        expect(page.get_by_text(re.compile(rf"Dataset {DATASET}"))).to_be_visible()
        shown = _metric(page, "Customers")
        assert int(shown.replace(",", "")) == expected_customers, server_log(db)
        expect(page.locator(".js-plotly-plot")).to_have_count(3)
        assert not page.locator('[data-testid="stException"]').count()
