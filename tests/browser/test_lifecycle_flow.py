"""Real browser, one user session through the whole product on data the user uploads:
upload → score → segment → target → export → report.

Starts the app on an EMPTY warehouse, uploads a CSV cut from the bundled sample (whole
customer histories) with one malformed line, and then, page after page in the same
browser session: the Data page's validation report counts the bad line as rejected; the
Value page exports one scored row per customer; the Segments page saves a rule segment
(net revenue ≥ T) whose count equals a pandas computation on the uploaded file; the
Campaigns page targets that segment with a 20-contact cap and a 10 % control group and
downloads the list (customers of the segment only, ranked by expected CLV, 20 contacted +
3 held out); the Reports page makes a permalink, which opens read-only with the segment's
size. Every expected figure is computed here from the CSV, not read back from the app.
"""
from __future__ import annotations

import gzip
import math
import re

import numpy as np
import pandas as pd
import pytest

from tests.browser.server import ROOT, require_browser_or_skip
from tests.browser.ui import (
    app_session, download_csv, metric_value, no_exception, pick, pick_segment_and_cap, wait_idle,
)

pytestmark = pytest.mark.browser

SAMPLE = ROOT / "sample_data" / "sample_events.csv.gz"
DATASET = "shop"
SEGMENT = "Top spenders <i>Q4</i>"
CAMPAIGN = "Winter push"
CAP = 20
CONTROL = 0.10

require_browser_or_skip()


def _upload_file(tmp_path):
    """A CSV of 250 whole customers from the sample plus one line with a bad date."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    keep = set(sorted(df["customer_id"].unique())[:250])
    part = df[df["customer_id"].isin(keep)]
    path = tmp_path / "shop_events.csv"
    part.to_csv(path, index=False)
    bad = part.iloc[0].copy()
    bad["event_time"] = "not a date"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(",".join(bad.tolist()) + "\n")
    return path, part


def _expected(part: pd.DataFrame) -> dict:
    """Customers, the net-revenue threshold and the segment's members, from the file alone."""
    rev = pd.to_numeric(part["revenue"], errors="coerce").fillna(0.0)
    bought = rev.where(part["event_type"] == "purchase", 0.0).groupby(part["customer_id"]).sum()
    returned = rev.where(part["event_type"] == "return", 0.0).groupby(part["customer_id"]).sum()
    net = bought - returned
    threshold = int(net[net > 0].quantile(0.6))
    members = set(net.index[net >= threshold])
    return {"customers": int(part["customer_id"].nunique()), "rows": len(part) + 1, "threshold": threshold,
            "members": members}


def test_upload_score_segment_target_export_report(tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    csv_path, part = _upload_file(tmp_path)
    exp = _expected(part)
    n_members = len(exp["members"])
    n_listed = math.ceil(CAP / (1 - CONTROL))
    assert n_members * (1 - CONTROL) > CAP, "the segment must be larger than the campaign"
    db = tmp_path / "browser.duckdb"

    with app_session(db, tmp_path, skip_sample=True, downloads=True) as (url, page):

        # ---- upload
        page.goto(url + "/data")
        expect(page.get_by_role("heading", name="🗂️ Data", exact=True)).to_be_visible()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(csv_path))
        name_box = page.get_by_label(re.compile(r"^Dataset name"))
        name_box.fill(DATASET)
        name_box.press("Enter")
        wait_idle(page, expect)
        page.get_by_role("button", name="Load", exact=True).click()
        expect(metric_value(page, page, "Rows read")).to_have_text(f"{exp['rows']:,}", timeout=120_000)
        expect(metric_value(page, page, "Rows rejected")).to_have_text("1")
        expect(metric_value(page, page, "Rows loaded")).to_have_text(f"{exp['rows'] - 1:,}")
        wait_idle(page, expect)
        no_exception(page, db)
        sidebar = page.locator('[data-testid="stSidebar"]')
        if DATASET not in sidebar.locator('[data-testid="stSelectbox"]').first.inner_text():
            sidebar.locator('[data-testid="stSelectbox"]').first.click()
            page.get_by_role("option", name=DATASET, exact=True).click()
            wait_idle(page, expect)

        # ---- score: the Value page exports one scored row per customer of the upload
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Value").click()
        expect(page.get_by_role("heading", name="💎 Value", exact=True)).to_be_visible()
        wait_idle(page, expect)
        no_exception(page, db)
        page.get_by_role("tab", name=re.compile("Export")).click()
        scored = download_csv(page, page, "Download CSV", tmp_path / "scores.csv")
        assert len(scored) == exp["customers"]
        assert set(scored["customer_id"]) == set(part["customer_id"])
        assert scored["rfm_segment"].ne("").all()

        # ---- segment: rule builder, net revenue >= threshold, saved under an HTML-ish name
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Segments").click()
        expect(page.get_by_role("heading", name="🧩 Segments", exact=True)).to_be_visible()
        expect(page.get_by_text(re.compile(rf"{exp['customers']:,} customers of .*{DATASET}"))).to_be_visible(
            timeout=120_000)
        wait_idle(page, expect)
        page.get_by_role("tab", name="Rule builder").click()
        rules_tab = page.get_by_role("tabpanel", name="Rule builder")
        pick(page, rules_tab, "Field", "Net revenue")
        wait_idle(page, expect)
        pick(page, rules_tab, "Operator", "≥")
        wait_idle(page, expect)
        value = rules_tab.get_by_label("Value", exact=True)
        value.fill(str(exp["threshold"]))
        value.press("Enter")
        wait_idle(page, expect)
        expect(metric_value(page, rules_tab, "Customers selected")).to_have_text(f"{n_members:,}")
        seg_name = rules_tab.get_by_label("Segment name", exact=True)
        seg_name.fill(SEGMENT)
        seg_name.press("Enter")
        wait_idle(page, expect)
        rules_tab.get_by_role("button", name=re.compile("Save segment")).click()
        expect(rules_tab.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(SEGMENT)
        wait_idle(page, expect)
        no_exception(page, db)

        # ---- target + export
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Campaigns").click()
        expect(page.get_by_role("heading", name="🎯 Campaigns", exact=True)).to_be_visible()
        build = page.get_by_role("tabpanel", name=re.compile("Build"))
        expect(metric_value(page, build, "Contacted")).to_be_visible(timeout=180_000)
        wait_idle(page, expect)
        pick_segment_and_cap(page, expect, build, SEGMENT, CAP)
        expect(metric_value(page, build, "Eligible customers")).to_have_text(f"{n_members:,}")
        expect(metric_value(page, build, "Contacted")).to_have_text(f"{CAP:,}")
        expect(metric_value(page, build, "Control (not contacted)")).to_have_text(f"{n_listed - CAP:,}")
        no_exception(page, db)
        targets = download_csv(page, build, "Download CSV", tmp_path / "targets.csv")
        assert len(targets) == n_listed
        assert set(targets["customer_id"]) <= exp["members"]
        assert (targets["group"] == "treatment").sum() == CAP
        assert targets["rank"].tolist() == list(range(1, n_listed + 1))
        clv = targets["expected_clv"].astype(float).to_numpy()
        assert np.all(np.diff(clv) <= 1e-9), "the list is ranked by expected CLV"
        name = build.get_by_label("Campaign name", exact=True)
        name.fill(CAMPAIGN)
        name.press("Enter")
        wait_idle(page, expect)
        build.get_by_role("button", name=re.compile("Save campaign")).click()
        expect(build.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(CAMPAIGN)
        wait_idle(page, expect)

        # ---- report: a permalink of the segment, opened read-only
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Reports").click()
        expect(page.get_by_role("heading", name="📤 Reports", exact=True)).to_be_visible()
        wait_idle(page, expect)
        page.get_by_role("button", name=re.compile("Build the report")).click()
        wait_idle(page, expect)
        no_exception(page, db)
        page.get_by_role("button", name=re.compile("Create a permalink")).click()
        code = page.locator("code").filter(has_text=re.compile(r"^\?report="))
        expect(code).to_have_count(1)
        token = code.inner_text().strip().removeprefix("?report=")
        assert len(token) >= 32, token
        wait_idle(page, expect)

        page.goto(f"{url}/?report={token}")
        expect(page.get_by_text("Segment report: " + SEGMENT, exact=True)).to_be_visible(timeout=120_000)
        assert page.locator('[data-testid="stSidebar"]').count() == 0
        first = page.locator('[data-testid="stMetricValue"]').first
        expect(first).to_contain_text(f"{n_members:,}")
        wait_idle(page, expect)
        no_exception(page, db)
        assert page.locator("i").filter(has_text="Q4").count() == 0, "the segment name was rendered as HTML"
        print(f"{exp['customers']} customers uploaded; segment net revenue >= {exp['threshold']}: "
              f"{n_members}; campaign {CAP} contacted + {n_listed - CAP} control; report token {len(token)} chars")
