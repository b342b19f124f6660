"""BG/NBD diagnostics: matrices, calibration/holdout check on CDNOW, figures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.clv_models import BetaGeoModel
from analytics.diagnostics import (
    calibration_holdout_check,
    expected_purchases_matrix,
    figure_cumulative,
    figure_holdout_by_frequency,
    figure_matrix,
    holdout_check_from_transactions,
    probability_alive_matrix,
)
from analytics.summary import SummaryError
from analytics.warehouse import WarehouseError


def load_cdnow(test_data) -> pd.DataFrame:
    df = pd.read_csv(test_data / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["original_id", "customer_id", "date", "qty", "amount"])
    df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    return df


def add_events(wh, dataset: str, events: pd.DataFrame) -> None:
    """Insert purchase/view events (customer_id, event_time, event_type[, revenue]) into the warehouse."""
    frame = pd.DataFrame({
        "customer_id": events["customer_id"].astype(str),
        "event_time": pd.to_datetime(events["event_time"]).astype("datetime64[us]"),
        "event_type": events["event_type"],
        "revenue": events["revenue"].astype("float64") if "revenue" in events else float("nan"),
    })
    cur = wh.cursor()
    if not wh.has_dataset(dataset):
        cur.execute("INSERT INTO datasets (name) VALUES (?)", [dataset])
    cur.register("new_events", frame)
    cur.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue, ingestion_id) "
                "SELECT ?, customer_id, event_time, event_type, revenue, 1 FROM new_events", [dataset])
    cur.unregister("new_events")


@pytest.fixture(scope="module")
def cdnow_tx():
    from pathlib import Path

    return load_cdnow(Path(__file__).parent / "data")


@pytest.fixture(scope="module")
def check(cdnow_tx):
    return holdout_check_from_transactions(cdnow_tx, "customer_id", "date", "1997-09-30", "1998-06-30", "weeks")


def test_holdout_check_on_cdnow(check):
    m = check.model
    assert (round(m.r_, 3), round(m.alpha_, 3), round(m.a_, 3), round(m.b_, 3)) == (0.243, 4.414, 0.793, 2.426)
    t = check.totals
    assert t["customers"] == 2357 and t["holdout_length"] == pytest.approx(39.0)
    assert t["actual_holdout_purchases"] == 1882  # repeat purchase days in weeks 40-78
    # the model tracks the holdout: total within 15 %, cumulative at week 78 within 5 %
    assert abs(t["relative_error"]) < 0.15
    cum = check.cumulative
    assert cum["actual"].iloc[-1] == 4339
    assert cum["predicted"].iloc[-1] == pytest.approx(4339, rel=0.05)
    cal_end = cum[cum["week_end"] == pd.Timestamp("1997-09-30")]
    assert cal_end["actual"].iloc[0] == 2457  # all calibration repeat purchases
    assert cal_end["predicted"].iloc[0] == pytest.approx(2457, rel=0.03)
    assert cum["actual"].is_monotonic_increasing and cum["predicted"].is_monotonic_increasing
    assert set(cum["period"]) == {"calibration", "holdout"}


def test_holdout_by_frequency(check):
    by = check.by_frequency
    assert list(by.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert by["customers"].sum() == 2357 and by.loc["0", "customers"] == 1411
    # conditional expectations rise with calibration frequency, and follow the actuals
    assert by["predicted"].is_monotonic_increasing
    assert np.corrcoef(by["actual"], by["predicted"])[0, 1] > 0.98
    assert by.loc["7+", "predicted"] == pytest.approx(by.loc["7+", "actual"], rel=0.15)
    c = check.customers
    assert (c["predicted_purchases"] >= 0).all() and (c["recency"] <= c["T"]).all()


def test_warehouse_check_equals_dataframe_check(wh, cdnow_tx, check):
    add_events(wh, "cdnow", pd.DataFrame({
        "customer_id": cdnow_tx["customer_id"], "event_time": cdnow_tx["date"],
        "event_type": "purchase", "revenue": cdnow_tx["amount"], "ingestion_id": 1,
    }))
    add_events(wh, "cdnow", pd.DataFrame({  # non-purchase events are ignored by the check
        "customer_id": ["1", "2"], "event_time": ["1997-03-01", "1998-01-01"], "event_type": "view",
    }))
    w = calibration_holdout_check(wh, "cdnow", "1997-09-30", unit="weeks")  # end = last purchase
    assert w.end == pd.Timestamp("1998-06-30")
    pd.testing.assert_frame_equal(w.by_frequency, check.by_frequency)
    assert w.totals == pytest.approx(check.totals)


def test_holdout_errors(cdnow_tx, wh):
    with pytest.raises(SummaryError, match="before the end"):
        holdout_check_from_transactions(cdnow_tx, "customer_id", "date", "1998-07-01")
    with pytest.raises(SummaryError, match="fewer than 2 customers"):
        holdout_check_from_transactions(cdnow_tx, "customer_id", "date", "1996-12-31")
    with pytest.raises(SummaryError, match="unknown time unit"):
        holdout_check_from_transactions(cdnow_tx, "customer_id", "date", "1997-09-30", unit="years")
    with pytest.raises(WarehouseError, match="no dataset"):
        calibration_holdout_check(wh, "missing", "1997-09-30")


def test_matrices(check):
    m = check.model
    e = expected_purchases_matrix(m, max_frequency=12, T=39.0, t=1.0, n_recency=27)
    assert e.shape == (13, 27) and e.attrs["unit"] == "weeks"
    assert np.isnan(e.loc[0].iloc[1:]).all() and np.isfinite(e.iloc[1:]).all().all()
    # the same cell computed directly
    r = e.columns[10]
    assert e.loc[5, r] == pytest.approx(m.expected_purchases(1.0, 5, r, 39.0))
    # more recent customers buy more; best customers: high frequency, recency close to T
    assert (np.diff(e.loc[5].to_numpy()) > 0).all()
    assert np.nanargmax(e.to_numpy()) == e.size - 1
    p = probability_alive_matrix(m, max_frequency=12, T=39.0, n_recency=27)
    assert p.loc[0, 0.0] == 1.0 and (p.iloc[:, -1].iloc[1:] > 0.5).all()
    assert ((p.to_numpy()[1:] >= 0) & (p.to_numpy()[1:] <= 1)).all()
    with pytest.raises(ValueError):
        expected_purchases_matrix(BetaGeoModel(), 3, 10.0)


def test_figures(check):
    fig = figure_matrix(probability_alive_matrix(check.model, 8, 39.0, n_recency=10))
    assert fig.data[0].type == "heatmap" and np.asarray(fig.data[0].z).shape == (9, 10)
    assert "active" in fig.layout.title.text
    fig = figure_matrix(expected_purchases_matrix(check.model, 8, 39.0, t=4))
    assert "4 weeks" in fig.layout.title.text
    fig = figure_holdout_by_frequency(check)
    assert [t.name for t in fig.data] == ["actual", "BG/NBD"]
    np.testing.assert_allclose(fig.data[1].y, check.by_frequency["predicted"])
    fig = figure_cumulative(check)
    assert len(fig.data[0].x) == len(check.cumulative) and len(fig.layout.shapes) == 1
