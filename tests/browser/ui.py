"""Playwright helpers for driving Streamlit pages in the real-browser tests."""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator

import pandas as pd

from tests.browser.server import (
    assert_no_browser_errors, launch_chromium, record_errors, running_app, save_failure, server_log,
)


def wait_idle(page, expect, timeout: float = 120_000) -> None:
    """The script run is over (Streamlit marks its state on the app root)."""
    expect(page.locator('[data-testid="stApp"]')).to_have_attribute("data-test-script-state", "notRunning",
                                                                      timeout=timeout)


def metric_value(page, scope, label: str):
    """The value element of the st.metric labelled exactly ``label`` inside ``scope``."""
    metric = scope.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
    return metric.locator('[data-testid="stMetricValue"]').first


def no_exception(page, db) -> None:
    """No Streamlit exception element on the page (the server log in the message if there is)."""
    assert not page.locator('[data-testid="stException"]').count(), server_log(db)


def pick(page, scope, label: str, option: str) -> None:
    """Open the selectbox labelled ``label`` inside ``scope`` and choose ``option``."""
    box = scope.locator('[data-testid="stSelectbox"]').filter(
        has=page.locator("label", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
    box.first.click()
    page.get_by_role("option", name=option, exact=True).click()


def grid_column(grid, name: str) -> list[str]:
    """The visible cells of one column of an st.dataframe (glide-data-grid keeps an accessible
    <table> of the visible cells next to its canvas: read its textContent)."""
    header = [t.strip() for t in grid.locator('th[role="columnheader"]').evaluate_all(
        "els => els.map(e => e.textContent)")]
    assert name in header, header
    col = header.index(name) + 1
    return [t.strip() for t in grid.locator(f'tbody td[role="gridcell"][aria-colindex="{col}"]').evaluate_all(
        "els => els.map(e => e.textContent)")]


def download_csv(page, button_scope, label: str, target: Path) -> pd.DataFrame:
    """Click the download button ``label`` inside ``button_scope``; the saved CSV, parsed.

    Waits for the script run to end first: a button clicked while a rerun replaces it
    points at a file the server has already dropped, and no download starts."""
    from playwright.sync_api import expect

    wait_idle(page, expect)
    button = button_scope.locator('[data-testid="stDownloadButton"]').filter(has_text=label).locator("button")
    with page.expect_download(timeout=60_000) as info:
        button.first.click()
    info.value.save_as(str(target))
    assert info.value.suggested_filename.endswith(".csv"), info.value.suggested_filename
    return pd.read_csv(target, dtype={"customer_id": str}, keep_default_na=False)


class Dialogs(list):
    """Records (and dismisses) every JavaScript dialog: ``page.on("dialog", dialogs)``."""

    def __call__(self, dialog) -> None:
        self.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@contextlib.contextmanager
def app_session(db: Path, tmp_path: Path, *, skip_sample: bool = False, width: int = 1400, height: int = 1100,
                downloads: bool = False, timeout: float = 60_000,
                prepare: str = "inline") -> Iterator[tuple[str, object]]:
    """``(base_url, page)``: the app running on warehouse ``db`` and one Chromium page on it.

    The page records console errors, failed requests and dialogs (dismissed); when the body
    fails, a screenshot and the HTML are saved under ``tmp_path``. On a clean exit it asserts
    that no dialog fired and the browser logged no error. ``prepare``: see ``running_app``."""
    from playwright.sync_api import sync_playwright

    console_errors: list[str] = []
    failed_urls: list[str] = []
    dialogs = Dialogs()
    with running_app(db, skip_sample=skip_sample, prepare=prepare) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=downloads)
            page.set_default_timeout(timeout)
            record_errors(page, console_errors, failed_urls)
            page.on("dialog", dialogs)
            try:
                yield url, page
            except BaseException:
                save_failure(page, tmp_path)
                raise
        finally:
            browser.close()
    assert not dialogs, f"dialogs fired: {dialogs}"
    assert_no_browser_errors(failed_urls, console_errors)


def pick_segment_and_cap(page, expect, build, segment: str, cap: int) -> None:
    """On the Campaigns page's Build tab: choose the saved ``segment`` and type the contact cap."""
    build.locator('[data-testid="stMultiSelect"]').filter(has_text="Saved segments").click()
    page.get_by_role("option", name=segment, exact=True).click()
    page.keyboard.press("Escape")
    wait_idle(page, expect)
    box = build.get_by_label("Max contacts", exact=True)
    box.fill(str(cap))
    box.press("Enter")
    wait_idle(page, expect)
