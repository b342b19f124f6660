"""Real browser, production mode: a dataset loaded from the command line is prepared in the
background while the page says so (sidebar progress), then the page draws; with the app open, the
command line loads another dataset through the app server (exit 0, its JSON summary) and the app
lists it; no page shows a traceback."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.browser.server import ROOT, require_browser_or_skip
from tests.browser.ui import app_session, metric_value, no_exception, wait_idle

require_browser_or_skip()
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "analytics.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def _orders(path, prefix: str, n: int) -> None:
    rows = [f"{prefix}{i % 40},2024-{1 + i % 12:02d}-{1 + i % 27:02d},{5 + i % 90}" for i in range(n)]
    path.write_text("customer_id,order_date,amount\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_background_preparation_and_the_cli_while_the_app_is_open(tmp_path):
    from playwright.sync_api import expect

    db = tmp_path / "w.duckdb"
    _orders(tmp_path / "first.csv", "a", 600)
    loaded = _cli("ingest", str(tmp_path / "first.csv"), "--dataset", "first", "--db", str(db), "--no-prepare")
    assert loaded.returncode == 0, loaded.stderr
    with app_session(db, tmp_path, skip_sample=True, prepare="background") as (url, page):
        page.goto(url)
        # the first visit starts the preparation (what is not ready says so: a moment only, too short to
        # catch reliably here; tests/dashboard/test_preparation.py holds it) and the page draws by itself
        expect(metric_value(page, page, "Customers")).to_have_text("40", timeout=240_000)
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Explorer").click()
        expect(page.get_by_role("heading", name="Compare segments")).to_be_visible(timeout=240_000)
        expect(page.locator('[data-testid="stSidebar"]').get_by_text(re.compile("^preparing "))).to_have_count(
            0, timeout=240_000)  # the job ended: no progress bar left
        wait_idle(page, expect)
        no_exception(page, db)
        # with the app open, the CLI's command runs in the app server (the app owns the warehouse)
        assert json.loads((db.parent / (db.name + ".server.json")).read_text())["port"] > 0
        _orders(tmp_path / "second.csv", "b", 300)
        done = _cli("ingest", str(tmp_path / "second.csv"), "--dataset", "second", "--db", str(db))
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["rows_loaded"] == 300 and summary["prepare"]["state"] == "done"
        listed = _cli("datasets", "--json", "--db", str(db))
        assert listed.returncode == 0 and {d["name"] for d in json.loads(listed.stdout)} == {"first", "second"}
        page.goto(url)  # the Overview
        wait_idle(page, expect)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.locator('[data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name="second", exact=True).click()
        expect(metric_value(page, page, "Customers")).to_have_text("40", timeout=120_000)  # prepared by the CLI
        no_exception(page, db)
