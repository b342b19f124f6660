"""Smoke tests of the benchmark scripts on tiny data: they run, agree with their peers and print
their figures (the real runs are long and belong to `bench/`, not to the test suite). The app-server one is
marked slow."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def run_bench(*argv: str, timeout: float = 240.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"{argv} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def test_bench_summary_small():
    pytest.importorskip("lifetimes")
    out = run_bench(str(BENCH / "bench_summary.py"), "--events", "20000", "--customers", "2000",
                    "--repeat", "1").stdout
    assert "equal to lifetimes: True" in out
    assert "speed-up from the events:" in out and "speed-up from the stored per-day rows:" in out
    assert "load average" in out


def test_bench_ingest_small():
    out = run_bench(str(BENCH / "bench_ingest.py"), "--rows", "3000", "--skip-pandas").stdout
    assert "valuescope / duckdb bare speed:" in out and "load average" in out


@pytest.mark.slow  # two app starts, a load and its preparation: ~25 s on an idle 2-core machine, 60 s+ busy
def test_bench_first_visit_and_concurrency_small(tmp_path):
    """One tiny generated data set: loaded through a running app, prepared, two pages opened over
    Streamlit's websocket protocol before and after a restart; then two sessions for a second."""
    pytest.importorskip("websockets")
    work = tmp_path / "fv"
    run_bench(str(BENCH / "bench_first_visit.py"), "--customers", "300", "--pages", "Overview,Value",
              "--workdir", str(work), "--keep")
    res = json.loads((BENCH / "out" / "first_visit_300.json").read_text())
    assert res["ingest"]["prepare_state"] == "done"
    for phase in ("first", "restart"):
        assert [r["page"] for r in res[phase]] == ["Overview", "Value"]
        assert all(r["status"] == "FINISHED_SUCCESSFULLY" and not r["exceptions"] for r in res[phase])
    out_json = tmp_path / "conc.json"
    run_bench(str(BENCH / "bench_concurrency.py"), "--db", str(work / "warehouse.duckdb"), "--levels", "2",
              "--seconds", "1", "--json", str(out_json))
    conc = json.loads(out_json.read_text())
    assert conc["levels"]["2"]["visits"] >= 2 and conc["levels"]["2"]["failed"] == 0


@pytest.mark.slow  # a LightGBM backtest of the CDNOW sample: ~25 s on the busy 2-core machine
def test_bench_backtest_groups_cdnow():
    """Per-group totals on CDNOW's 39/39-week split: every customer is older than the 122-day training
    target at the cut-off, so the groups' actual values add up to the whole holdout's, and no rolling
    window has two earlier windows to learn from."""
    out = run_bench(str(BENCH / "backtest_groups.py"), "--dataset", "cdnow", "--models", "lightgbm").stdout
    rows = {line.split("  ")[0].strip(): line.split() for line in out.splitlines()
            if line.startswith(("all ", "older, ", "new, "))}
    assert set(rows) == {"all", "older, one purchase day", "older, repeat"}, out
    # columns: customers, actual, then zero naive bgnbd paretonbd lightgbm (predicted / actual)
    actual = {k: float(v[-6]) for k, v in rows.items()}
    assert actual["older, one purchase day"] + actual["older, repeat"] == pytest.approx(actual["all"], abs=0.02)
    assert "no training window has two earlier windows" in out and "load average" in out
