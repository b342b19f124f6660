"""The Spark engine's pieces that need no Spark (the default run's representative of ``tests/spark``).

* the quintile levels (the global constants the executors score with) give exactly
  ``analytics.scores.quintile_scores`` on many random inputs with heavy ties;
* scoring a customer summary batch by batch with those constants (``score_frame``, what
  each executor runs) gives every column of the warehouse's ``score_dataset`` frame;
* bad input to ``valuescope score --engine spark`` fails in one line, exit 2, before any JVM
  starts: a glob matching nothing, a schema without the required columns, Java missing,
  a Spark master or Spark Connect server that cannot be reached.
"""
from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics import scores
from analytics.cli import main
from analytics.ingest import ingest
from analytics.spark.scoring import ScoreSpec, levels_of, score_frame
from analytics.summary import customer_summary

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("seed", range(40))
def test_levels_give_quintile_scores(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    kind = seed % 4
    if kind == 0:
        x = rng.integers(0, 4, n).astype(float)              # heavy ties
    elif kind == 1:
        x = np.round(rng.lognormal(3, 1, n), 2)               # money
    elif kind == 2:
        x = rng.integers(0, 300, n).astype(float)             # days
    else:
        x = np.where(rng.random(n) < 0.3, np.nan, rng.integers(1, 3, n).astype(float))  # NaN = not scored
    for higher in (True, False):
        want = scores.quintile_scores(x, higher_is_better=higher)
        got = levels_of(x, negate=not higher).apply(x)
        np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def sample_wh():
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    ingest(wh, ROOT / "sample_data" / "sample_events.csv.gz", "sample")
    yield wh
    wh.close()


def test_batches_with_global_constants_equal_the_warehouse_frame(sample_wh):
    as_of, unit = "2025-12-31", "days"
    want = scores.score_dataset(sample_wh, "sample", as_of, unit).frame
    summary = customer_summary(sample_wh, "sample", as_of, unit)
    buyers = summary["n_orders"] > 0
    days = (summary.attrs["as_of"] - summary["last_purchase"]).dt.days.astype(float)
    levels = {"recency": levels_of(days[buyers], negate=True),
              "frequency": levels_of(summary.loc[buyers, "n_orders"].astype(float)),
              "monetary": levels_of(summary.loc[buyers, "net_revenue"])}
    bounds = {c: (int(summary[c].min()), int(summary[c].max())) for c in scores.BEHAVIOUR_COLUMNS.values()}
    spec = ScoreSpec(summary.attrs["as_of"], unit, dict(scores.DEFAULT_RFM_WEIGHTS),
                     dict(scores.DEFAULT_BEHAVIOUR_WEIGHTS), scores.CLVParams(), scores.compile_segment_rules(),
                     levels, bounds, scores.fit_clv_models(summary))
    # uneven batches, as executors get them; the last batch holds the customer with the most views
    cuts = [0, 7, 1500, 2900, len(summary)]
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        batch = summary.iloc[a:b].copy()
        batch.attrs = dict(summary.attrs)
        parts.append(score_frame(batch, spec))
    got = pd.concat(parts, ignore_index=True)
    assert list(got.columns) == list(want.columns)
    for c in want.columns:
        if want[c].dtype.kind == "f":
            np.testing.assert_allclose(got[c].to_numpy(dtype=float), want[c].to_numpy(dtype=float), rtol=1e-12,
                                       err_msg=c)
        else:
            assert (got[c].to_numpy() == want[c].to_numpy()).all(), c
    # the global constants matter: a batch ranked alone gets other scores and behaviour scaling
    alone = scores.Scorer(summary.iloc[7:1500].copy().pipe(lambda s: s.__setattr__("attrs", summary.attrs) or s))
    res = alone.score(top_n=0)
    assert (alone.rfm["m_score"].to_numpy() != want["m_score"].to_numpy()[7:1500]).any()
    assert (res.behaviour_score != want["behaviour_score"].to_numpy()[7:1500]).any()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def events_parquet(tmp_path):
    path = tmp_path / "ev.parquet"
    pq.write_table(pa.table({"customer_id": ["a", "b"], "event_time": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                             "event_type": ["purchase", "view"], "revenue": [10.0, None]}), path)
    return path


def _score(capsys, *extra):
    rc = main(["score", "--engine", "spark", "--as-of", "2024-01-31", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def test_glob_matching_nothing(tmp_path, capsys):
    rc, err = _score(capsys, "--events", str(tmp_path / "nothing" / "*.parquet"), "--out", str(tmp_path / "o.csv"))
    assert rc == 2 and len(err) == 1 and "matches no file" in err[0]


def test_schema_without_required_columns(tmp_path, capsys):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"user": ["a"], "ts": pd.to_datetime(["2024-01-01"]), "amount": [1.0]}), path)
    rc, err = _score(capsys, "--events", str(path), "--out", str(tmp_path / "o.csv"))
    assert rc == 2 and len(err) == 1
    assert "lacks the required column(s) customer_id, event_time, event_type" in err[0]


def test_java_missing(events_parquet, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    monkeypatch.setenv("PATH", str(tmp_path))
    rc, err = _score(capsys, "--events", str(events_parquet), "--out", str(tmp_path / "o.csv"))
    assert rc == 2 and len(err) == 1
    assert "Java was not found" in err[0] and "openjdk-17-jre-headless" in err[0]


def test_unreachable_master(events_parquet, tmp_path, capsys):
    port = _closed_port()
    rc, err = _score(capsys, "--events", str(events_parquet), "--spark-master", f"spark://127.0.0.1:{port}",
                     "--out", str(tmp_path / "o.csv"))
    assert rc == 2 and len(err) == 1
    assert f"cannot reach the Spark master at 127.0.0.1:{port}" in err[0]


def test_unreachable_spark_connect(events_parquet, tmp_path, capsys):
    port = _closed_port()
    rc, err = _score(capsys, "--events", str(events_parquet), "--spark-remote", f"sc://127.0.0.1:{port}",
                     "--out", str(tmp_path / "o.csv"))
    assert rc == 2 and len(err) == 1
    assert f"cannot reach the Spark Connect server at 127.0.0.1:{port}" in err[0]


def test_spark_engine_takes_events_not_a_dataset(events_parquet, tmp_path, capsys):
    rc, err = _score(capsys, "--dataset", "x", "--events", str(events_parquet), "--out", str(tmp_path / "o.csv"))
    assert rc == 2 and "not a --dataset" in err[0]
    rc = main(["score", "--as-of", "2024-01-31", "--out", str(tmp_path / "o.csv")])
    assert rc == 2 and "--dataset NAME is required" in capsys.readouterr().err
