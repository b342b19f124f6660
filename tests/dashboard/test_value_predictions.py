"""AppTest: the Value page offers the published model's predicted value as a score, ranks the top
customers by it, and leaves everything as it was when no predictions are published."""
from __future__ import annotations

import datetime as dt

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, TIMEOUT, insert_events, synthetic_rows

PAGE = "views/value.py"
LABEL = "Predicted value (published model)"


def _publish(wh, dataset: str, values: dict[str, tuple[float, float]]) -> None:
    with wh.transaction() as tx:
        tx.executemany(
            "INSERT INTO customer_predictions VALUES (?, ?, ?, ?, 42, 'lightgbm', DATE '2024-06-30', 92, "
            "TIMESTAMP '2024-07-01 09:00:00')",
            [(dataset, c, v, p) for c, (v, p) in values.items()],
        )


def _open(app_wh):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def customers(app_wh):
    rows = synthetic_rows(60, seed=5)
    insert_events(app_wh, "shop", rows)
    return sorted({r[0] for r in rows})


def test_no_predictions_no_option(app_wh, customers):
    at = _open(app_wh)
    box = at.selectbox(key="value_rank_by")
    assert "predicted_value" not in box.options and LABEL not in box.options


def test_predicted_value_option_ranks_top_customers(app_wh, customers):
    # three customers with known predictions; the rest have none
    values = {customers[0]: (10.0, 0.9), customers[1]: (500.0, 0.1), customers[2]: (75.5, 0.6)}
    _publish(app_wh, "shop", values)
    at = _open(app_wh)
    box = at.selectbox(key="value_rank_by")
    assert LABEL in box.options
    box.select("predicted_value").run()
    assert not at.exception, at.exception
    tables = [d.value for d in at.dataframe if "Predicted value" in d.value.columns]
    assert len(tables) == 1
    top = tables[0]
    assert list(top["Customer"]) == [customers[1], customers[2], customers[0]]
    assert list(top["Predicted value"]) == [500.0, 75.5, 10.0]
    assert list(top["Churn risk"]) == pytest.approx([10.0, 60.0, 90.0])  # shown in %
    captions = " ".join(c.value for c in at.caption)
    # the model as people read it, the day as every page writes one
    assert "“LightGBM”" in captions and "run 42" in captions and "30 Jun 2024" in captions
