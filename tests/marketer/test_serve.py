"""`valuescope serve`: this machine only unless told otherwise, no call to the internet at start, the sample
loaded before the first page is served."""
from __future__ import annotations

from pathlib import Path

import pytest

import dashboard
from analytics.commands import core
from analytics.warehouse import Warehouse

PKG = Path(dashboard.__file__).resolve().parent


def _pairs(cmd):
    i = cmd.index("run") + 2
    return [(cmd[j], cmd[j + 1]) for j in range(i, len(cmd) - 1, 2)]


def test_listens_on_localhost_unless_an_address_is_given():
    cmd = core.serve_command([], PKG)
    assert cmd[1:4] == ["-m", "dashboard.serve", "run"] and cmd[4].endswith("app.py")
    assert ("--server.address", "127.0.0.1") in _pairs(cmd)
    shared = core.serve_command(["--server.address", "0.0.0.0"], PKG)
    assert shared.count("--server.address") == 1 and shared[-1] == "0.0.0.0"
    eq = core.serve_command(["--server.address=192.168.1.5"], PKG)
    assert "--server.address" not in eq and eq[-1] == "--server.address=192.168.1.5"
    assert ("--browser.gatherUsageStats", "false") in _pairs(cmd)


def test_streamlit_never_asks_the_internet_for_the_external_ip(monkeypatch):
    from streamlit import net_util

    def no_network(*a, **k):  # pragma: no cover - the test fails if this runs
        raise AssertionError("an outside call")

    monkeypatch.setattr(net_util, "_make_blocking_http_get", no_network)
    monkeypatch.setattr(net_util, "get_external_ip", net_util.get_external_ip)  # restored after the test
    from dashboard.serve import no_external_ip

    no_external_ip()
    assert net_util.get_external_ip() is None


def test_sample_is_loaded_before_the_server_starts(tmp_path, monkeypatch):
    db = tmp_path / "fresh.duckdb"
    seen = {}

    def fake_execve(path, argv, env):
        # the server would start now: the warehouse already holds the sample and is not held open
        wh = Warehouse(db)
        seen["datasets"] = wh.datasets()
        wh.close()
        seen["env"] = env
        seen["argv"] = argv

    monkeypatch.delenv("VALUESCOPE_SKIP_SAMPLE", raising=False)
    monkeypatch.setattr(core.os, "execve", fake_execve)
    from analytics.cli import main

    assert main(["serve", "--db", str(db), "--server.port", "8765"]) == 0
    assert seen["datasets"] == ["sample"] and seen["env"]["VALUESCOPE_DB"] == str(db.resolve())
    assert seen["argv"][-2:] == ["--server.port", "8765"] and "127.0.0.1" in seen["argv"]


def test_skip_sample_starts_empty(tmp_path, monkeypatch):
    db = tmp_path / "empty.duckdb"
    monkeypatch.setenv("VALUESCOPE_SKIP_SAMPLE", "1")
    core.load_sample_before_serving(db)
    assert not db.exists() or Warehouse(db).datasets() == []


def test_readme_quick_start_ci_line_and_cpu_variant():
    import re

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    ci = [ln for ln in text.splitlines() if re.match(r"^python3 -m venv \.venv ", ln)]
    # .ci/run runs the first such line: the one-line install that ends by starting the app
    assert ci[0] == 'python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e ".[test]" && .venv/bin/valuescope serve'
    assert ".venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "--server.address 0.0.0.0" in text and "127.0.0.1" in text
