"""Real browser: the Explorer page on the bundled sample, numbers checked against an
independent computation.

The app runs as a subprocess (`valuescope serve`) on a fresh temporary warehouse and loads
the bundled sample itself on first start, as a new user sees it. Debian's Chromium is driven
with Playwright. Skipped when Playwright or Chromium is missing, unless
VALUESCOPE_REQUIRE_BROWSER=1 (CI), where that is a failure.

The expected numbers come from outside the page and from another code path: the sample is
loaded into an in-memory warehouse, ``analytics.summary.customer_summary`` (the SQL pass over
the events, not the page's cached summary history) and ``analytics.scores.Scorer`` give every
customer's RFM segment and net revenue as of a day; the comparison table's customers and net
revenue per segment must equal them, at the default as-of date (the last event day) and after
typing an earlier as-of date. The top-10% share must equal ``analytics.explorer.top_share``
on those net revenues, and a searched customer's timeline must count the events a direct SQL
count finds up to the as-of day.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest

from analytics.formatting import percent
from tests.browser.server import require_browser_or_skip
from tests.browser.ui import app_session, metric_value, no_exception, wait_idle

# slow: left out of the default run (budget: 10 min for the whole suite on 2 cores); the lifecycle
# flow (upload -> score -> segment -> target -> export -> report) is the default run's browser representative
pytestmark = [pytest.mark.browser, pytest.mark.slow]

EARLIER = "2025-06-30"

require_browser_or_skip()


def _independent(day) -> dict:
    """Per-segment customers / net revenue, the top-10% share and the customer count as of ``day``,
    plus the warehouse (kept for the event count)."""
    from analytics import explorer
    from analytics.scores import Scorer
    from analytics.summary import customer_summary

    summary = customer_summary(_WH[0], "sample", day, persist=False)
    scorer = Scorer(summary)
    seg = scorer.frame(scorer.score(top_n=1), with_params=False)["rfm_segment"].to_numpy()
    df = pd.DataFrame({"segment": seg, "net": summary["net_revenue"].to_numpy()})
    by = df.groupby("segment").agg(customers=("net", "size"), revenue=("net", "sum"))
    return {"customers": {k: int(v) for k, v in by["customers"].items()},
            "revenue": {k: float(v) for k, v in by["revenue"].items()},
            "top10": explorer.top_share(summary["net_revenue"], 0.1), "n": len(summary),
            "ids": list(summary.index)}


_WH: list = []


def _sample_warehouse():
    from analytics.bootstrap import SAMPLE_DATASET, ensure_default_dataset
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    if ensure_default_dataset(wh) is None:
        pytest.fail("the bundled sample could not be loaded")
    assert SAMPLE_DATASET == "sample"
    _WH[:] = [wh]
    last = wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = 'sample'").fetchone()[0]
    return wh, pd.Timestamp(last).date()


def _grid_rows(grid) -> tuple[list[str], list[list[str]]]:
    """Header and the rendered rows of an st.dataframe (glide-data-grid keeps an accessible
    <table> of the visible cells; read its textContent)."""
    header = [t.strip() for t in grid.locator('th[role="columnheader"]').evaluate_all(
        "els => els.map(e => e.textContent)")]
    rows = grid.locator('tbody tr').evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(td => td.textContent.trim()))")
    return header, [r for r in rows if r]


def _check_comparison(page, expect, exp: dict) -> int:
    """The comparison grid's visible rows equal the independent numbers; returns how many rows."""
    grid = page.locator('[data-testid="stDataFrame"]').filter(has=page.locator(
        'th[role="columnheader"]', has_text="Share of customers")).first
    expect(grid).to_be_visible()
    expect(grid.locator('th[role="columnheader"]', has_text=re.compile(r"^\s*Customers\s*$"))).to_have_count(1)
    header, rows = _grid_rows(grid)
    i_seg, i_n, i_rev = header.index("Segment"), header.index("Customers"), header.index("Net revenue")
    seen = 0
    for r in rows:
        if len(r) <= max(i_seg, i_n, i_rev) or r[i_seg] not in exp["customers"]:
            continue
        name = r[i_seg]
        assert int(r[i_n].replace(",", "")) == exp["customers"][name], (name, r, exp["customers"])
        assert float(re.sub(r"^[^0-9-]*", "", r[i_rev].replace(",", ""))) == pytest.approx(exp["revenue"][name], abs=0.006), (name, r)
        seen += 1
    return seen


def test_explorer_numbers_follow_the_as_of_date(tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    wh, last_day = _sample_warehouse()
    exp_last = _independent(last_day)
    exp_early = _independent(EARLIER)
    assert exp_last["customers"] != exp_early["customers"]  # the date change must show in the table
    who = exp_early["ids"][len(exp_early["ids"]) // 3]
    n_events = wh.cursor().execute(
        "SELECT count(*) FROM events WHERE dataset = 'sample' AND customer_id = ? AND event_time < ?",
        [who, pd.Timestamp(EARLIER) + pd.Timedelta(days=1)]).fetchone()[0]
    assert n_events > 0

    db = tmp_path / "browser.duckdb"
    with app_session(db, tmp_path, width=1600, height=1200) as (url, page):

        page.goto(url + "/explorer")
        expect(page.get_by_role("heading", name="🔭 Explorer", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible(timeout=180_000)
        wait_idle(page, expect, timeout=180_000)
        no_exception(page, db)

        # RFM segments at the last event day: customers and net revenue per segment
        assert _check_comparison(page, expect, exp_last) >= 8
        expect(metric_value(page, page, "Top 10% share of net revenue")).to_have_text(percent(exp_last['top10']))

        # an earlier as-of date: the numbers move to that date's independent values
        # (a react-aria date field: year / month / day spin buttons that take typed digits)
        year, month, day = EARLIER.split("-")
        for part, digits in (("year", year), ("month", month), ("day", day)):
            seg = page.get_by_role("spinbutton", name=f"{part}, As of", exact=True)
            seg.click()
            page.keyboard.type(digits)
        # the field commits its value when it loses focus
        page.keyboard.press("Escape")
        page.get_by_role("heading", name="🔭 Explorer", exact=True).click()
        expect(metric_value(page, page, "Top 10% share of net revenue")).to_have_text(percent(exp_early['top10']))
        wait_idle(page, expect, timeout=180_000)
        no_exception(page, db)
        assert _check_comparison(page, expect, exp_early) >= 8

        # search one customer and open its timeline: the event count up to the as-of day
        search = page.get_by_label("Search customer id", exact=True)
        search.fill(who)
        search.press("Enter")
        expect(page.get_by_text(re.compile(r"^1 customers match"))).to_be_visible()
        wait_idle(page, expect, timeout=180_000)
        expect(metric_value(page, page, "Events")).to_have_text(f"{n_events:,}")
        timeline = page.locator('[data-testid="stDataFrame"]').filter(has=page.locator(
            'th[role="columnheader"]', has_text=re.compile(r"^\s*Event\s*$"))).first  # the timeline's titles
        expect(timeline).to_be_visible()
        no_exception(page, db)
        print(f"as of {last_day}: {exp_last['n']} customers, top 10% {exp_last['top10']:.1%}; "
              f"as of {EARLIER}: {exp_early['n']} customers, top 10% {exp_early['top10']:.1%}; "
              f"{who}: {n_events} events")
