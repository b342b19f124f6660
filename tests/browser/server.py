"""Start `valuescope serve` on a free local port for browser tests and screenshots."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("VALUESCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
]


def browser_missing_reason() -> str | None:
    """Why a real-browser test cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed"
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_command(port: int, extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    exe = Path(sys.executable).with_name("valuescope")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "analytics.cli"]
    return base + [
        "serve", "--server.port", str(port), "--server.headless", "true",
        "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", *extra,
    ]


@contextlib.contextmanager
def running_app(db: Path, *, skip_sample: bool = False, timeout: float = 90.0,
                prepare: str = "inline", port: int | None = None, extra: tuple[str, ...] | list[str] = (),
                env: dict | None = None) -> Iterator[str]:
    """Run the app against warehouse ``db``; yield its base URL; stop it afterwards.

    ``prepare``: ``"inline"`` (default: a page computes what the preparation step has not stored
    yet itself, so a flow never waits for a background job) or ``"background"`` (as in
    production: pages say what is being prepared until the background job has stored it)."""
    port = port or free_port()
    env = dict(os.environ, VALUESCOPE_DB=str(db), PYTHONUNBUFFERED="1", VALUESCOPE_PREPARE=prepare, **(env or {}))
    if skip_sample:
        env["VALUESCOPE_SKIP_SAMPLE"] = "1"
    log_path = Path(db).with_suffix(".server.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(_serve_command(port, extra), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not become healthy in {timeout:.0f} s:\n"
                                   f"{log_path.read_text(errors='replace')}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def load_orders(tmp_path: Path, rows: list[str], dataset: str = "shop", db: Path | None = None) -> Path:
    """A warehouse (``db``, default ``tmp_path/w.duckdb``) with ``rows`` ('customer_id,order_date,amount'
    lines) loaded into ``dataset`` by the CLI, not prepared (the app prepares it when it opens)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "orders.csv").write_text("customer_id,order_date,amount\n" + "\n".join(rows) + "\n")
    db = db or tmp_path / "w.duckdb"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "analytics.cli", "ingest", str(tmp_path / "orders.csv"),
                           "--dataset", dataset, "--db", str(db), "--no-prepare"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return db


def server_log(db: Path) -> str:
    p = Path(db).with_suffix(".server.log")
    return p.read_text(errors="replace") if p.exists() else ""


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


__all__ = ["running_app", "launch_chromium", "browser_missing_reason", "server_log", "free_port", "shutil"]


def require_browser_or_skip() -> None:
    """Skip the calling test module when Chromium or Playwright is missing.

    Where VALUESCOPE_REQUIRE_BROWSER=1 (CI) a missing browser is an error instead.
    """
    import pytest

    missing = browser_missing_reason()
    if missing:
        if os.environ.get("VALUESCOPE_REQUIRE_BROWSER") == "1":
            raise RuntimeError(f"browser tests are required here but cannot run: {missing}")
        pytest.skip(f"real-browser test skipped: {missing}", allow_module_level=True)


# Streamlit's frontend, opened on a page URL such as /data, first probes for a base path
# (/data/_stcore/health, /data/_stcore/host-config); those 404s are expected, not app errors.
BASE_PATH_PROBE = re.compile(r"^404 https?://[^/]+/[^/]+/_stcore/(health|host-config)$")
RESOURCE_404 = "Failed to load resource: the server responded with a status of 404"


def assert_no_browser_errors(failed_urls: list[str], console_errors: list[str]) -> None:
    """No failed request but the base-path probes, and no console error but their 404 lines."""
    bad_requests = [u for u in failed_urls if not BASE_PATH_PROBE.match(u)]
    assert not bad_requests, f"failed requests: {bad_requests}"
    real = [e for e in console_errors if not (e.startswith(RESOURCE_404) and not bad_requests)]
    assert not real, f"browser console errors: {real}"


def save_failure(page, tmp_path: Path) -> None:
    """Screenshot and HTML of the page at the moment a test failed, for the log."""
    shot = tmp_path / "failure.png"
    page.screenshot(path=str(shot), full_page=True)
    (tmp_path / "failure.html").write_text(page.content())
    print(f"failure screenshot: {shot}")


def record_errors(page, console_errors: list[str], failed_urls: list[str]) -> None:
    """Collect console errors, page errors and failed requests for ``assert_no_browser_errors``."""
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(f"pageerror: {e}"))
    page.on("response", lambda r: failed_urls.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed_urls.append(f"failed {r.url}"))
