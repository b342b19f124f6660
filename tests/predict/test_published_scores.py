"""Published model predictions join the customer scores (score_dataset, `valuescope score`)
and saved segments can filter on them."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analytics import scores
from analytics.predict import registry
from analytics.segments import rules
from analytics.warehouse import Warehouse

from ._events import add_events, sample_events

CAL, HOLD = "2025-09-30", "2025-12-31"

# (customer_id, expected_value, churn_probability): known values for three customers
KNOWN = [("alice", 123.5, 0.25), ("bob", 0.0, 0.75), ("ghost", 9.0, 0.5)]  # ghost has no events


def _events(wh: Warehouse, dataset: str = "shop") -> None:
    rows = [("alice", "2024-01-05", "purchase", 100.0), ("alice", "2024-02-05", "purchase", 120.0),
            ("bob", "2024-01-10", "purchase", 20.0), ("carol", "2024-02-20", "view", None),
            ("dave", "2024-02-01", "purchase", 50.0)]
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES (?)", [dataset])
        tx.executemany(
            "INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) VALUES (?, ?, ?, ?, ?)",
            [(dataset, c, dt.datetime.fromisoformat(d), t, r) for c, d, t, r in rows],
        )


def _publish_known(wh: Warehouse, dataset: str = "shop") -> None:
    with wh.transaction() as tx:
        tx.executemany(
            "INSERT INTO customer_predictions VALUES (?, ?, ?, ?, 7, 'lightgbm', DATE '2024-03-01', 92, "
            "TIMESTAMP '2024-03-02 10:00:00')",
            [(dataset, c, v, p) for c, v, p in KNOWN],
        )


def test_score_dataset_without_predictions_is_unchanged(wh):
    _events(wh)
    frame = scores.score_dataset(wh, "shop", "2024-03-01", bgnbd=False).frame
    assert not set(registry.PREDICTION_COLUMNS) & set(frame.columns)


def test_score_dataset_joins_published_predictions(wh):
    _events(wh)
    _publish_known(wh)
    frame = scores.score_dataset(wh, "shop", "2024-03-01", bgnbd=False).frame.set_index("customer_id")
    assert sorted(frame.index) == ["alice", "bob", "carol", "dave"]  # no row for 'ghost' (no events)
    assert frame.loc["alice", "predicted_value"] == 123.5 and frame.loc["alice", "churn_probability"] == 0.25
    assert frame.loc["bob", "predicted_value"] == 0.0 and frame.loc["bob", "churn_probability"] == 0.75
    assert frame.loc[["carol", "dave"], ["predicted_value", "churn_probability"]].isna().all().all()
    assert (frame["prediction_model"] == "lightgbm").all() and (frame["prediction_run_id"] == 7).all()
    assert (frame["prediction_as_of"] == "2024-03-01").all() and (frame["prediction_horizon_days"] == 92).all()
    # the scores themselves are untouched
    plain = Warehouse(":memory:")
    _events(plain)
    base = scores.score_dataset(plain, "shop", "2024-03-01", bgnbd=False).frame.set_index("customer_id")
    pd.testing.assert_frame_equal(frame[base.columns], base)
    plain.close()


def test_cli_score_csv_has_prediction_columns(tmp_path):
    from analytics.cli import main

    path = tmp_path / "w.duckdb"
    wh = Warehouse(path)
    _events(wh)
    _publish_known(wh)
    wh.close()
    out = tmp_path / "scores.csv"
    assert main(["score", "--db", str(path), "--dataset", "shop", "--as-of", "2024-03-01", "--no-bgnbd",
                 "--out", str(out)]) in (0, None)
    got = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    assert set(registry.PREDICTION_COLUMNS) <= set(got.columns)
    assert got.loc["alice", "predicted_value"] == pytest.approx(123.5)
    assert got.loc["bob", "churn_probability"] == pytest.approx(0.75)
    assert np.isnan(got.loc["carol", "predicted_value"]) and np.isnan(got.loc["dave", "churn_probability"])
    assert (got["prediction_model"] == "lightgbm").all() and (got["prediction_run_id"] == 7).all()


def test_rules_filter_on_churn_probability(wh):
    from analytics.summary import customer_summary

    _events(wh)
    _publish_known(wh)
    summary = customer_summary(wh, "shop", "2024-03-01", "days")
    cf = rules.customer_frame(summary, registry.prediction_columns(registry.published_predictions(wh, "shop")))
    definition = rules.validate(rules.all_of(rules.condition("churn_probability", ">=", 0.5)))
    assert sorted(cf.index[rules.evaluate(definition, cf)]) == ["bob"]
    high = rules.validate(rules.all_of(rules.condition("predicted_value", ">", 100)))
    assert sorted(cf.index[rules.evaluate(high, cf)]) == ["alice"]
    assert rules.CUSTOMER_FIELDS["churn_probability"].label == "Churn probability (model, 0-1)"


def test_published_lightgbm_run_joins_score_dataset(tmp_path):
    """A real saved model: a LightGBM-only backtest on the sample data, published, then scored."""
    from analytics.predict.backtest import run_backtest

    wh = Warehouse(":memory:")
    ev = sample_events()
    add_events(wh, "sample", ev[ev["customer_id"] < "C0001200"])  # a slice and few cut-offs keep it quick
    res = run_backtest(wh, "sample", CAL, HOLD, models=["lightgbm"], device="cpu", max_cutoffs=4)
    run_id = registry.save_backtest(wh, res, model_dir=tmp_path)
    n = registry.publish_predictions(wh, run_id, "lightgbm", HOLD)
    pub = registry.published_predictions(wh, "sample")
    frame = scores.score_dataset(wh, "sample", HOLD, bgnbd=False).frame.set_index("customer_id")
    assert n == len(pub) > 0
    common = pub.index.intersection(frame.index)
    assert len(common) == len(pub)
    np.testing.assert_allclose(frame.loc[common, "predicted_value"], pub.loc[common, "expected_value"])
    np.testing.assert_allclose(frame.loc[common, "churn_probability"], pub.loc[common, "churn_probability"])
    assert frame.loc[frame.index.difference(pub.index), "predicted_value"].isna().all()
    assert (frame["prediction_run_id"] == run_id).all() and (frame["prediction_as_of"] == HOLD).all()
    wh.close()


def test_cli_segments_select_filters_on_churn_probability(tmp_path, capsys):
    import json

    from analytics.cli import main

    path = tmp_path / "w.duckdb"
    wh = Warehouse(path)
    _events(wh)
    _publish_known(wh)
    wh.close()
    out = tmp_path / "risky.csv"
    definition = json.dumps({"op": "and", "conditions": [
        {"field": "churn_probability", "operator": ">=", "value": 0.5}]})
    assert main(["segments", "select", "--db", str(path), "--dataset", "shop", "--as-of", "2024-03-01",
                 "--definition", definition, "--out", str(out)]) == 0
    got = pd.read_csv(out, dtype={"customer_id": str})
    assert list(got["customer_id"]) == ["bob"] and got["churn_probability"].tolist() == [0.75]
    assert capsys.readouterr().out.startswith("1 of 4 customers")
