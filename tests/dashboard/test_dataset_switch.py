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
