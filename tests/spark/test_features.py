"""Predictor inputs on Spark equal the warehouse's: per-period sequences, the per-customer
features of a backtest window, and a saved LightGBM model's predictions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.predict.features import SEQUENCE_CHANNELS, window_data
from analytics.warehouse import get_warehouse

pytestmark = pytest.mark.spark

CUTOFF = "2025-09-30"


@pytest.fixture(scope="module")
def window(data):
    db, _ = data
    wh = get_warehouse(db)  # the process-wide connection: the CLI tests open the same file
    return window_data(wh, "sample", CUTOFF, "2025-12-31", period="weeks", n_periods=20)


def test_sequences_and_features_equal_the_warehouse(spark, data, window):
    from analytics.spark import features as sf
    from analytics.spark.events import read_events
    from analytics.spark.summary import collect

    events = read_events(spark, str(data[1]["sample"]))
    seq = collect(sf.sequences(events, CUTOFF, "weeks", 20))
    dense = np.zeros_like(window.sequences)
    rows = window.customers.get_indexer(seq["customer_id"])
    assert (rows >= 0).all()
    dense[rows, seq["p"].to_numpy()] = seq[SEQUENCE_CHANNELS].to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(dense, window.sequences)
    assert window.sequences.sum() > 0

    got = collect(sf.features(events, CUTOFF, "weeks", 20)).set_index("customer_id").sort_index()
    want = window.features.sort_index()
    assert got.index.equals(want.index)
    assert list(got.columns) == [str(c) for c in want.columns]
    for c in want.columns:
        np.testing.assert_allclose(got[str(c)].to_numpy(dtype=float), want[c].to_numpy(dtype=float),
                                   rtol=1e-9, equal_nan=True, err_msg=str(c))


def test_saved_lightgbm_model_scores_equal_the_warehouse(spark, data, window, tmp_path, capsys):
    from analytics.cli import main
    from analytics.predict.gbm import LightGBMValueModel

    model = LightGBMValueModel(n_estimators=40, n_jobs=1).fit(window.features, window.targets["holdout_value"],
                                                             window.targets["churn"])
    model.save(tmp_path / "lgbm")
    want_value = pd.Series(model.predict_value(window.features), index=window.customers)
    want_churn = pd.Series(model.predict_churn(window.features), index=window.customers)
    out = tmp_path / "scores.parquet"
    assert main(["score", "--engine", "spark", "--events", str(data[1]["sample"]), "--as-of", CUTOFF, "--no-bgnbd",
                 "--lightgbm-model", str(tmp_path / "lgbm"), "--out", str(out)]) == 0
    capsys.readouterr()
    got = pd.read_parquet(out).set_index("customer_id")
    assert len(got) == len(window.customers)
    np.testing.assert_allclose(got["predicted_value"].reindex(want_value.index), want_value, rtol=1e-9)
    np.testing.assert_allclose(got["churn_probability"].reindex(want_churn.index), want_churn, rtol=1e-9)
    assert (got["prediction_model"] == "lightgbm").all()
