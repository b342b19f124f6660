"""Playwright helpers for driving Streamlit pages in the real-browser tests."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from tests.browser.server import server_log


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
    """Click the download button ``label`` inside ``button_scope``; the saved CSV, parsed."""
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
