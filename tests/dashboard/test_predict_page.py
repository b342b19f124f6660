"""AppTest: the Predict page runs a backtest and shows the library's figures; bad dates give a clear error."""
from __future__ import annotations

import datetime as dt

import pytest
from streamlit.testing.v1 import AppTest

from analytics.predict import metrics as M
from tests.dashboard.conftest import APP, insert_events
from tests.predict._events import sample_events

PAGE = "views/predict.py"


def _table(at, column: str):
    """The st.dataframe whose table has ``column`` (dataframes without selection keep no key)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


@pytest.fixture
def page(app_wh):
    ev = sample_events()
    ev = ev[ev["customer_id"] < "C0001200"]  # a smaller slice keeps the test quick
    rows = list(zip(ev["customer_id"], __import__("pandas").to_datetime(ev["event_time"]), ev["event_type"],
                    ev["order_id"].where(ev["order_id"].notna(), None), ev["revenue"].where(ev["revenue"].notna(), None)))
    insert_events(app_wh, "sample", rows)
    at = AppTest.from_file(APP, default_timeout=240)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_backtest_runs_and_table_matches_library(page):
    at = page
    at.date_input(key="predict_cal_end").set_value(dt.date(2025, 9, 30))
    at.date_input(key="predict_hold_end").set_value(dt.date(2025, 12, 31))
    at.multiselect(key="predict_models").set_value(["lightgbm"])
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    table = _table(at, "RMSE")
    assert list(table.index) == ["Zero", "Naive rate x AOV", "BG/NBD x Gamma-Gamma", "LightGBM"]
    res = at.session_state["predict_result"]["result"]
    p = res.predictions
    assert table.loc["LightGBM", "RMSE"] == pytest.approx(M.rmse(p["actual_value"], p["lightgbm_value"]))
    assert table.loc["Zero", "Top-decile capture"] == pytest.approx(0.1)
    drivers = _table(at, "contribution")
    assert len(drivers) == 5 and drivers["feature"].isin(res.models["lightgbm"].feature_names_).all()


def test_bad_dates_show_an_error_not_a_traceback(page):
    at = page
    at.date_input(key="predict_cal_end").set_value(dt.date(2024, 1, 10))
    at.date_input(key="predict_hold_end").set_value(dt.date(2024, 3, 1))
    at.multiselect(key="predict_models").set_value(["lightgbm"])
    at.button[0].click().run()
    assert not at.exception
    assert any("too little history" in e.value for e in at.error)


def test_save_and_publish(page):
    at = page
    at.date_input(key="predict_cal_end").set_value(dt.date(2025, 9, 30))
    at.date_input(key="predict_hold_end").set_value(dt.date(2025, 12, 31))
    at.multiselect(key="predict_models").set_value(["lightgbm"])
    at.button[0].click().run()
    at.button(key="predict_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved as run" in s.value for s in at.success)
    at.button(key="predict_publish").click().run()
    assert not at.exception, at.exception
    assert any("Published LightGBM predictions" in s.value for s in at.success)
    from analytics.predict.registry import published_predictions
    from dashboard import cache

    pub = published_predictions(cache.warehouse(), "sample")
    assert len(pub) > 0 and (pub["model"] == "lightgbm").all()
