"""AppTest: the Predict page estimates the run time, runs a backtest, shows the library's figures in a
table that fits the page (with plain-words help), clears its progress widgets, and bad dates give a
clear message while the rest of the page keeps working."""
from __future__ import annotations

import datetime as dt
import json

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
def page(app_wh, monkeypatch):
    from analytics.predict import features

    monkeypatch.setattr(features, "MAX_CUTOFFS", 3)  # fewer rolling origins keep the test quick
    ev = sample_events()
    ev = ev[ev["customer_id"] < "C0001200"]  # a smaller slice keeps the test quick
    rows = list(zip(ev["customer_id"], __import__("pandas").to_datetime(ev["event_time"]), ev["event_type"],
                    ev["order_id"].where(ev["order_id"].notna(), None), ev["revenue"].where(ev["revenue"].notna(), None)))
    insert_events(app_wh, "sample", rows)
    at = AppTest.from_file(APP, default_timeout=240)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _amount(cell) -> float:
    """A money cell shown as a number or as formatted text (when another model has none)."""
    import re

    return float(cell) if not isinstance(cell, str) else float(re.sub(r"[^0-9.-]", "", cell))


def _tabs_place(at) -> tuple:
    """The position of the page's tabs in the element tree (a different one is new tabs to the browser)."""
    def find(node, path):
        for i, child in getattr(node, "children", {}).items():
            if getattr(child, "type", None) == "tab":
                return path
            found = find(child, path + (i,))
            if found is not None:
                return found
        return None

    place = find(at.main, ())
    assert place is not None, "no tabs on the page"
    return place


def at_wh():
    from dashboard import cache

    return cache.warehouse()


def test_backtest_runs_and_table_matches_library(page):
    at = page
    at.date_input(key="predict_cal_end").set_value(dt.date(2025, 9, 30))
    at.date_input(key="predict_hold_end").set_value(dt.date(2025, 12, 31))
    at.multiselect(key="predict_models").set_value(["lightgbm"])
    estimate = [c.value for c in at.caption if c.value.startswith("⏱️ Estimated run time")]
    assert len(estimate) == 1 and "LightGBM ~" in estimate[0], [c.value for c in at.caption]
    at.button(key="predict_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    table = _table(at, "RMSE")
    assert list(table.index) == ["Zero", "Naive rate x AOV", "BG/NBD x Gamma-Gamma", "Pareto/NBD x Gamma-Gamma",
                                   "LightGBM"]
    # one screen: the main figures only, no dates or cut-offs, no empty error column
    assert list(table.columns) == ["RMSE", "Normalized Gini", "Top-decile capture", "Predicted / actual",
                                   "Churn ROC AUC", "Fit (s)"]
    res = at.session_state["predict_result"]["result"]
    p = res.predictions
    assert table.loc["LightGBM", "RMSE"] == pytest.approx(M.rmse(p["actual_value"], p["lightgbm_value"]))
    assert table.loc["LightGBM", "Predicted / actual"] == pytest.approx(
        p["lightgbm_value"].sum() / p["actual_value"].sum())
    assert table.loc["Zero", "Top-decile capture"] == pytest.approx(10.0)  # shown in percent
    assert (table["Fit (s)"] >= 0).all()
    # plain words under the table, from the best model's own figures
    best = res.metrics["normalized_gini"].idxmax()
    from analytics.formatting import percent

    share = f"brought {percent(res.metrics.loc[best, 'top_decile_capture'], 0)} of"  # "45 %", as every page
    assert any("The 10 % of customers" in m.value and share in m.value for m in at.markdown)
    # the progress widgets are gone once the work has ended
    assert not at.get("progress")
    assert not [b for b in at.button if b.key == "predict_stop"]
    drivers = _table(at, "Effect")
    # the drivers in words (revenue_last_13 read as 'Revenue, last 13 weeks'), the model's own five
    from analytics.predict.features import feature_label

    gbm = res.models["lightgbm"]
    who = at.selectbox(key="predict_customer").value
    raw = gbm.top_drivers(res.features.loc[[who]], k=5)["feature"]
    assert len(drivers) == 5 and drivers["Feature"].tolist() == [feature_label(f, "weeks") for f in raw]
    assert not drivers["Feature"].str.contains("_").any(), drivers["Feature"].tolist()
    chart = next(c for c in at.get("plotly_chart") if "predict_importance" in str(c.proto))
    spec = json.loads(chart.proto.spec)
    top = gbm.feature_importance("value").head(15)["feature"]
    assert list(spec["data"][0]["y"])[::-1] == [feature_label(f, "weeks") for f in top]
    # money figures in the dataset currency: the RMSE column and the deciles' sentence
    from analytics import formatting
    from analytics.currency import dataset_currency

    cur = dataset_currency(at_wh(), "sample").code
    config = json.loads(next(d for d in at.dataframe if "RMSE" in d.value.columns).proto.columns)
    assert config["RMSE"]["type_config"]["format"] == formatting.money_printf(cur)
    d = res.deciles["lightgbm"].sort_values("decile").iloc[0]
    assert any(formatting.money(d["actual_mean"], cur) in c.value and "ranks highest" in c.value for c in at.caption)


def test_bad_dates_are_messages_and_the_page_keeps_working(page):
    at = page
    # too little history for the learned models: the baselines still run, the reason is shown
    at.date_input(key="predict_cal_end").set_value(dt.date(2024, 1, 31))
    at.date_input(key="predict_hold_end").set_value(dt.date(2024, 3, 1))
    at.multiselect(key="predict_models").set_value(["lightgbm"])
    at.button(key="predict_run").click().run()
    assert not at.exception
    assert any("Too little history before 31 Jan 2024" in w.value.replace("\\", "") for w in at.warning)
    table = _table(at, "RMSE")
    # the reason is written out under the table, not in a column beyond its right edge
    assert "Note" not in table.columns
    assert any("**LightGBM** could not run: too little history" in m.value.replace("\\", "") for m in at.markdown), \
        [m.value for m in at.markdown]
    # a model without figures says so (no "None" cells); the others keep their money figures
    assert table.loc["LightGBM", "RMSE"] == "not available"
    assert _amount(table.loc["Naive rate x AOV", "RMSE"]) > 0
    # a holdout that ends where the calibration ends: an error that says what to do; the last result stays
    at.date_input(key="predict_cal_end").set_value(dt.date(2025, 9, 30))
    at.date_input(key="predict_hold_end").set_value(dt.date(2025, 9, 30))
    at.button(key="predict_run").click().run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("must be after the calibration end 30 Sep 2025" in e for e in errors), errors
    assert _amount(_table(at, "RMSE").loc["Naive rate x AOV", "RMSE"]) > 0  # the earlier result is still shown


def test_save_and_publish(page):
    at = page
    at.date_input(key="predict_cal_end").set_value(dt.date(2025, 9, 30))
    at.date_input(key="predict_hold_end").set_value(dt.date(2025, 12, 31))
    at.multiselect(key="predict_models").set_value(["lightgbm"])
    at.button(key="predict_run").click().run()
    after_run = _tabs_place(at)
    at.button(key="predict_save").click().run()
    assert not at.exception, at.exception
    assert any("Saved as run" in s.value for s in at.success)
    # the tabs are where they were in the run that trained: the browser keeps the chosen tab (Save)
    # instead of drawing new tabs with the first one open, which hid the saved message and Publish
    assert _tabs_place(at) == after_run
    at.button(key="predict_publish").click().run()
    assert not at.exception, at.exception
    assert any("Published LightGBM predictions" in s.value for s in at.success)
    from analytics.predict.registry import published_predictions
    from dashboard import cache

    pub = published_predictions(cache.warehouse(), "sample")
    assert len(pub) > 0 and (pub["model"] == "lightgbm").all()


def _orders(days: list[dt.date], n_customers: int = 30) -> list[tuple]:
    return [(f"k{c:03d}", dt.datetime.combine(d, dt.time(12)), "purchase", f"o{c}-{i}", 10.0 + c)
            for c in range(n_customers) for i, d in enumerate(days)]


def test_one_day_of_data_says_a_backtest_needs_more_days(app_wh):
    # every order on the same day: there is no cut-off before the last day, so the page says so
    # instead of offering a calibration end before the data's first day (Streamlit refused it)
    insert_events(app_wh, "oneday", _orders([dt.date(2024, 3, 5)]))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("at least two days" in i.value for i in at.info), [i.value for i in at.info]
    assert "predict_run" not in [b.key for b in at.button]



def test_a_backtest_on_a_handful_of_buyers_says_it_says_little(app_wh):
    """Four customers gave a table of Ginis and AUCs (0.70, 0.00, 1.00) read like any other: the page
    says the comparison rests on too few buyers to tell the models apart."""
    days = [dt.date(2024, m, 10) for m in range(1, 7)]
    insert_events(app_wh, "few", _orders(days, n_customers=12))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(PAGE).run()
    at.date_input(key="predict_cal_end").set_value(dt.date(2024, 4, 30))
    at.date_input(key="predict_hold_end").set_value(dt.date(2024, 6, 10))
    at.multiselect(key="predict_models").set_value([])
    at.button(key="predict_run").click().run()
    assert not at.exception, at.exception
    info = at.session_state["predict_result"]["result"].info
    assert info["holdout_purchasers"] == 12
    notes = [w.value for w in at.warning if "say little" in w.value]
    assert len(notes) == 1 and "12 of whom bought" in notes[0], [w.value for w in at.warning]


def test_the_decile_chart_opens_on_the_model_the_sentences_name(page, monkeypatch):
    # the sentences above the tabs speak of the best-ranking model; the decile chart under them opened on
    # the last model of the table instead (LSTM under 'Best ranking ...: LightGBM')
    from analytics.predict import backtest

    real = backtest.run_backtest

    def planted(*args, **kwargs):
        res = real(*args, **kwargs)
        res.metrics.loc["bgnbd", "normalized_gini"] = 0.99  # planted: the BG/NBD model ranks best
        return res

    monkeypatch.setattr(backtest, "run_backtest", planted)
    at = page
    at.date_input(key="predict_cal_end").set_value(dt.date(2025, 9, 30))
    at.date_input(key="predict_hold_end").set_value(dt.date(2025, 12, 31))
    at.multiselect(key="predict_models").set_value(["lightgbm"])
    at.button(key="predict_run").click().run()
    assert not at.exception, at.exception
    assert any("Best ranking of holdout value: BG/NBD x Gamma-Gamma" in s.value for s in at.success)
    assert at.selectbox(key="predict_decile_model").value == "bgnbd"
