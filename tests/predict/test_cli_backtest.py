"""`valuescope backtest`: table on stdout, every metric in JSON, registry, clear errors."""
from __future__ import annotations

import json

import pytest

from analytics.cli import main
from analytics.warehouse import Warehouse

from ._events import add_events, sample_events


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "vs.duckdb"
    wh = Warehouse(path)
    ev = sample_events()
    add_events(wh, "sample", ev[ev["customer_id"] < "C0001200"])  # a slice keeps the default run quick
    wh.close()
    return path


@pytest.fixture(autouse=True)
def few_cutoffs(monkeypatch):
    from analytics.predict import features

    monkeypatch.setattr(features, "MAX_CUTOFFS", 3)  # fewer rolling origins keep the test quick


def test_backtest_writes_table_and_json(db, tmp_path, capsys):
    out = tmp_path / "bt.json"
    rc = main(["backtest", "--db", str(db), "--dataset", "sample", "--calibration-end", "2025-09-30",
               "--holdout-end", "2025-12-31", "--models", "naive,lightgbm", "--json", str(out), "--save"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "lightgbm" in text and "bgnbd" in text and "saved as run" in text
    data = json.loads(out.read_text())
    assert set(data["metrics"]) == {"zero", "naive", "bgnbd", "paretonbd", "lightgbm"}
    assert data["metrics"]["zero"]["top_decile_capture"] == pytest.approx(0.1)
    assert data["metrics"]["lightgbm"]["rmse"] < data["metrics"]["zero"]["rmse"]
    assert len(data["deciles"]["lightgbm"]) == 10
    assert data["info"]["holdout_days"] == 92 and data["run_id"] >= 1
    assert (db.parent / "models" / f"run_{data['run_id']}" / "lightgbm" / "value.txt").exists()


@pytest.mark.parametrize("argv, message", [
    (["--calibration-end", "2030-01-01", "--holdout-end", "2030-03-01"], "outside the data"),
    (["--calibration-end", "2025-09-30", "--holdout-end", "2025-12-31", "--models", "magic"], "unknown model"),
    (["--calibration-end", "2025-09-30", "--holdout-end", "2026-03-31"], "after the last day of data"),
    (["--calibration-end", "2025-09-30", "--holdout-end", "2025-12-31", "--epochs", "0"], "--epochs"),
])
def test_backtest_bad_input_is_one_line(db, capsys, argv, message):
    rc = main(["backtest", "--db", str(db), "--dataset", "sample", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_short_history_prints_the_baselines_and_why_not_the_learned_models(db, capsys):
    rc = main(["backtest", "--db", str(db), "--dataset", "sample", "--calibration-end", "2024-01-20",
               "--holdout-end", "2024-03-01", "--models", "lightgbm"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "note: too little history before 20 Jan 2024" in out
    assert "lightgbm    failed: too little history" in out
    naive = next(line for line in out.splitlines() if line.startswith("naive"))
    assert "failed" not in naive and len(naive.split()) == 11  # every figure of the baseline is there
