"""Real browser: a nested segment with a category condition, built in the rule builder, goes into
a campaign whose treatment-only file (the one to upload to an email tool) holds exactly the
library's treatment list, money rounded to the currency's cents.

The data are a generated order log with categories (loaded before the app starts). In the page a
user builds "net revenue ≥ 200 AND (bought from books in the last 60 days OR bought from games
ever)" with the group buttons, sees the count that pandas computes from the generated rows, saves
it for this dataset, picks it on the Campaigns page with a cap, and downloads the treatment list.
The expected file comes from outside the page: the stored definition is the nested one typed,
and ``analytics.campaigns.select_targets`` + ``send_list`` on the same data and settings give
the rows the download must equal.
"""
from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from tests.browser.server import require_browser_or_skip
from tests.browser.ui import app_session, download_csv, metric_value, no_exception, pick, pick_segment_and_cap, \
    wait_idle

require_browser_or_skip()
# slow: the lifecycle flow is the default run's browser representative
pytestmark = [pytest.mark.browser, pytest.mark.slow]

DATASET = "orders"
SEGMENT = "Books lately or games"
CAP = 25
THRESHOLD = 200
LAST = dt.date(2024, 9, 30)


def _orders() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(900):
        c = f"c{int(rng.integers(0, 240)):03d}"
        day = LAST - dt.timedelta(days=int(rng.integers(0, 270)))
        cat = ["books", "games", "garden", "toys"][int(rng.integers(0, 4))]
        rows.append({"customer_id": c, "order_id": f"o{i}", "order_date": day.isoformat(),
                     "item_id": f"{cat[:2]}-{int(rng.integers(0, 5))}", "category": cat,
                     "amount": round(float(rng.uniform(5, 180)), 2)})
    rows.append({"customer_id": "c000", "order_id": "o-last", "order_date": LAST.isoformat(), "item_id": "to-0",
                 "category": "toys", "amount": 9.99})
    return pd.DataFrame(rows)


def _expected_members(df: pd.DataFrame) -> set[str]:
    net = df.groupby("customer_id")["amount"].sum()
    day = pd.to_datetime(df["order_date"]).dt.date
    recent_books = set(df[(df.category == "books") & (day > LAST - dt.timedelta(days=60))].customer_id)
    games = set(df[df.category == "games"].customer_id)
    return {c for c in net[net >= THRESHOLD].index if c in recent_books or c in games}


def _load(db, df: pd.DataFrame, tmp_path) -> None:
    from analytics import ingest
    from analytics.warehouse import Warehouse

    src = tmp_path / "orders.csv"
    df.to_csv(src, index=False)
    wh = Warehouse(db)
    try:
        res = ingest.ingest(wh, src, DATASET)
        assert res.rows_loaded == len(df), res
        assert wh.cursor().execute("SELECT count(*) FROM events WHERE category = 'books'").fetchone()[0] > 0
    finally:
        wh.close()


def _field(rules_tab, page, label: str, n: int):
    return rules_tab.locator('[data-testid="stSelectbox"]').filter(
        has=page.locator("label", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))).nth(n)


def _choose(page, box, option: str) -> None:
    """Choose ``option`` of a long selectbox: typing filters the (virtualized) list first."""
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click()


def test_nested_category_segment_to_treatment_file(tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=120_000)
    db = tmp_path / "w.duckdb"
    df = _orders()
    members = _expected_members(df)
    assert len(members) > CAP
    _load(db, df, tmp_path)

    with app_session(db, tmp_path, skip_sample=True, downloads=True) as (url, page):
        page.goto(url + "/segments")
        expect(page.get_by_role("heading", name="🧩 Segments", exact=True)).to_be_visible()
        wait_idle(page, expect, 240_000)
        no_exception(page, db)
        page.get_by_role("tab", name="Rule builder").click()
        rules_tab = page.get_by_role("tabpanel", name="Rule builder")
        # net revenue >= 200
        pick(page, rules_tab, "Field", "Net revenue")
        wait_idle(page, expect)
        pick(page, rules_tab, "Operator", "≥")
        wait_idle(page, expect)
        value = rules_tab.get_by_label("Value", exact=True)
        value.fill(str(THRESHOLD))
        value.press("Enter")
        wait_idle(page, expect)
        # AND (a group of OR)
        rules_tab.get_by_role("button", name="➕ Group of conditions").first.click()
        wait_idle(page, expect)
        rules_tab.locator('[data-testid="stRadio"]').filter(has_text="Inside this group").get_by_text(
            "any condition (OR)").click()
        wait_idle(page, expect)
        # ... bought from books in the last 60 days
        _choose(page, _field(rules_tab, page, "Field", 1), "Bought from category")
        wait_idle(page, expect)
        # the operator follows the field (its first choice: bought any of)
        expect(_field(rules_tab, page, "Operator", 1).locator("input")).to_have_value("bought any of")
        wait_idle(page, expect)
        rules_tab.locator('[data-testid="stMultiSelect"]').nth(0).click()
        page.get_by_role("option", name="books", exact=True).click()
        page.keyboard.press("Escape")
        wait_idle(page, expect)
        _choose(page, _field(rules_tab, page, "When", 0), "in the last … days")
        wait_idle(page, expect)
        days = rules_tab.get_by_label("Days", exact=True)
        days.fill("60")
        days.press("Enter")
        wait_idle(page, expect)
        # ... OR bought from games, ever
        rules_tab.get_by_role("button", name="➕ Condition").first.click()
        wait_idle(page, expect)
        _choose(page, _field(rules_tab, page, "Field", 2), "Bought from category")
        wait_idle(page, expect)
        # the operator follows the field (its first choice: bought any of)
        expect(_field(rules_tab, page, "Operator", 2).locator("input")).to_have_value("bought any of")
        wait_idle(page, expect)
        rules_tab.locator('[data-testid="stMultiSelect"]').nth(1).click()
        page.get_by_role("option", name="games", exact=True).click()
        page.keyboard.press("Escape")
        wait_idle(page, expect)
        no_exception(page, db)
        expect(metric_value(page, rules_tab, "Customers selected")).to_have_text(f"{len(members):,}")
        name = rules_tab.get_by_label("Segment name", exact=True)
        name.fill(SEGMENT)
        name.press("Enter")
        wait_idle(page, expect)
        rules_tab.get_by_role("button", name=re.compile("Save segment")).click()
        expect(rules_tab.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(SEGMENT)
        wait_idle(page, expect)

        # the campaign: the saved segment, a cap, the treatment list to upload
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Campaigns").click()
        expect(page.get_by_role("heading", name="🎯 Campaigns", exact=True)).to_be_visible()
        build = page.get_by_role("tabpanel", name=re.compile("Build"))
        expect(metric_value(page, build, "Contacted")).to_be_visible(timeout=240_000)
        wait_idle(page, expect)
        pick_segment_and_cap(page, expect, build, SEGMENT, CAP)
        expect(metric_value(page, build, "Eligible customers")).to_have_text(f"{len(members):,}")
        expect(metric_value(page, build, "Contacted")).to_have_text(f"{CAP:,}")
        no_exception(page, db)
        treatment = download_csv(page, build, "Treatment list to upload", tmp_path / "treatment.csv")

    # independent of the page: the stored definition, then the library's list on the same data
    from analytics import campaigns as camp
    from analytics.campaigns.export import send_list
    from analytics.currency import dataset_currency
    from analytics.explorer import build_frame
    from analytics.export import to_safe_csv
    from analytics.segments import store
    from analytics.warehouse import Warehouse

    wh = Warehouse(db)
    try:
        seg = store.get_segment(wh, SEGMENT, DATASET)
        assert seg["dataset"] == DATASET
        assert seg["definition"] == {"op": "and", "conditions": [
            {"field": "net_revenue", "operator": ">=", "value": THRESHOLD},
            {"op": "or", "conditions": [
                {"field": "bought_category", "operator": "in", "value": ["books"], "days": 60},
                {"field": "bought_category", "operator": "in", "value": ["games"]}]}]}
        as_of = str(LAST)
        frame = camp.value_columns(wh, build_frame(wh, DATASET, as_of))
        spec = camp.CampaignSpec(name="expected", dataset=DATASET, as_of=as_of, segments=[SEGMENT],
                                 max_contacts=CAP)
        targets = camp.select_targets(wh, frame, spec)
        assert targets.attrs["eligible"] == len(members) and set(targets["customer_id"]) <= members
        currency = dataset_currency(wh, DATASET).currency
        expected = send_list(wh, targets, dataset=DATASET, as_of=as_of, group="treatment", currency=currency)
        (tmp_path / "expected.csv").write_bytes(to_safe_csv(expected) if isinstance(to_safe_csv(expected), bytes)
                                                else to_safe_csv(expected).encode("utf-8"))
    finally:
        wh.close()
    want = pd.read_csv(tmp_path / "expected.csv", dtype={"customer_id": str}, keep_default_na=False)
    assert len(treatment) == CAP and "group" not in treatment.columns
    assert treatment["customer_id"].tolist() == targets.loc[targets["group"] == "treatment", "customer_id"].tolist()
    pd.testing.assert_frame_equal(treatment, want)
    from analytics.campaigns.export import MONEY, TOOL_HEADERS

    money = [TOOL_HEADERS[m] for m in MONEY if TOOL_HEADERS[m] in treatment.columns]
    assert money, list(treatment.columns)
    for c in money:  # rounded to cents
        cents = treatment[c].to_numpy() * 100
        assert np.allclose(cents, np.round(cents)), c
