"""AppTest: a day picked on one dataset (the as-of day, a backtest's cut-off) does not stay on the page
after the sidebar switches to another dataset, even where it lies inside the other's days: the pages
open on the new dataset's own defaults (its last day)."""
from __future__ import annotations

import datetime as dt

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, TIMEOUT, insert_events


def _orders(prefix: str, start: dt.datetime, days: int) -> list[tuple]:
    return [(f"{prefix}{i % 25}", start + dt.timedelta(days=i * days // 150, hours=i % 24), "purchase",
             f"{prefix}o{i}", 10.0 + i % 40) for i in range(150)]


@pytest.fixture
def two_datasets(app_wh):
    long_rows = _orders("l", dt.datetime(2023, 1, 1), 540)
    short_rows = _orders("s", dt.datetime(2023, 2, 1), 200)
    insert_events(app_wh, "long", long_rows)
    insert_events(app_wh, "short", short_rows)
    last = {"long": max(r[1] for r in long_rows).date(), "short": max(r[1] for r in short_rows).date()}
    assert last["short"] < last["long"]
    return last


@pytest.mark.parametrize("page, key", [("views/value.py", "value_as_of"), ("views/explorer.py", "explorer_as_of"),
                                       ("views/segments.py", "seg_as_of"), ("views/campaigns.py", "camp_as_of"),
                                       ("views/predict.py", "predict_hold_end")])
def test_the_day_pickers_open_on_the_new_datasets_last_day(two_datasets, page, key):
    last = two_datasets
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(page).run()
    at.selectbox(key="dataset").set_value("short").run()
    assert not at.exception, at.exception
    assert at.date_input(key=key).value == last["short"]
    at.selectbox(key="dataset").set_value("long").run()
    assert not at.exception, at.exception
    assert at.date_input(key=key).value == last["long"]  # not the short dataset's last day


def test_a_dataset_deleted_elsewhere_is_said_on_the_page_that_showed_it(two_datasets, app_wh):
    # another browser tab (or the CLI) deletes the dataset this tab shows: the page says so and which
    # dataset it shows now, instead of silently showing another dataset's figures
    from analytics.ingest import delete_dataset
    from dashboard import cache

    last = two_datasets
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("views/value.py").run()
    at.selectbox(key="dataset").set_value("short").run()
    assert not at.exception, at.exception
    assert not [w for w in at.warning if "no longer in the warehouse" in w.value]
    delete_dataset(app_wh, "short")
    cache.changed()
    at.run()
    assert not at.exception, at.exception
    said = [w.value for w in at.warning if "no longer in the warehouse" in w.value]
    assert len(said) == 1 and "“short”" in said[0] and "now shows “long”" in said[0], said
    assert at.selectbox(key="dataset").value == "long"
    assert at.date_input(key="value_as_of").value == last["long"]
    at.run()  # said once, not on every later run
    assert not [w for w in at.warning if "no longer in the warehouse" in w.value]


def test_a_dataset_deleted_on_the_data_page_is_said_once(two_datasets):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("views/data.py").run()
    at.selectbox(key="dataset").set_value("short").run()
    at.selectbox(key="delete_dataset").set_value("short").run()
    at.text_input(key="delete_confirm").input("short").run()
    at.button(key="delete_button").click().run()
    assert not at.exception, at.exception
    assert any("Deleted the dataset “short”" in s.value for s in at.success)
    assert not [w for w in at.warning if "no longer in the warehouse" in w.value]
    assert at.selectbox(key="dataset").value == "long"
