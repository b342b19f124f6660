"""A customer summary computed on Spark, attached as a dataset without events (analytics.spark.attach):
the warehouse gives back the same summary and scores; the customer-level pages open it at its day,
pages that need raw events say so. No Spark needed: the Parquet is what --summary-out writes
(the warehouse summary in days plus its as-of day; tests/spark checks Spark's is equal)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from analytics import scores
from analytics.ingest import delete_dataset
from analytics.spark.attach import AttachError, attach_summary, attached_info
from analytics.summary import SummaryError, customer_summary, summary_history
from analytics.warehouse import Warehouse
from tests.dashboard.conftest import APP, TIMEOUT, insert_events, synthetic_rows

AS_OF = dt.date(2024, 6, 30)


def summary_parquet(summary: pd.DataFrame, path: Path) -> Path:
    """What ``--summary-out`` writes: the summary in days with an ``as_of`` column (one file)."""
    df = summary.reset_index()
    df.attrs = {}
    df["as_of"] = summary.attrs["as_of"].date()
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path / "part-00000.parquet")
    return path


@pytest.fixture
def source(tmp_path):
    """A warehouse with events of 300 customers and its summary written as Parquet."""
    wh = Warehouse(":memory:")
    insert_events(wh, "shop", synthetic_rows(300, seed=5))
    out = summary_parquet(customer_summary(wh, "shop", AS_OF, persist=False), tmp_path / "summary")
    yield wh, out
    wh.close()


def test_attached_summary_equals_the_warehouse(source, app_wh):
    wh, path = source
    info = attach_summary(app_wh, path, "big")
    assert info["customers"] == 300 and info["as_of"] == AS_OF
    for unit in ("days", "weeks", "months"):
        got = customer_summary(app_wh, "big", AS_OF, unit)
        want = customer_summary(wh, "shop", AS_OF, unit, persist=False)
        assert got.index.equals(want.index) and list(got.columns) == list(want.columns)
        for c in want.columns:
            if want[c].dtype.kind == "f":
                np.testing.assert_allclose(got[c], want[c], rtol=1e-15, equal_nan=True, err_msg=c)
            else:
                assert ((got[c] == want[c]) | (got[c].isna() & want[c].isna())).all(), c
    got = scores.score_dataset(app_wh, "big", AS_OF, "weeks").frame
    want = scores.score_dataset(wh, "shop", AS_OF, "weeks").frame
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_only_its_day_and_no_events(source, app_wh):
    _, path = source
    attach_summary(app_wh, path, "big")
    with pytest.raises(SummaryError, match="only that day"):
        customer_summary(app_wh, "big", AS_OF - dt.timedelta(days=1))
    with pytest.raises(SummaryError, match="needs the raw events"):
        summary_history(app_wh, "big")
    delete_dataset(app_wh, "big")
    assert attached_info(app_wh, "big") is None
    assert app_wh.cursor().execute("SELECT count(*) FROM attached_customers").fetchone()[0] == 0


def test_bad_attach(source, app_wh, tmp_path):
    _, path = source
    with pytest.raises(AttachError, match="no Parquet file"):
        attach_summary(app_wh, tmp_path / "nothing", "big")
    pq.write_table(pa.table({"customer_id": ["a"], "x": [1]}), tmp_path / "bad.parquet")
    with pytest.raises(AttachError, match="not a customer summary"):
        attach_summary(app_wh, tmp_path / "bad.parquet", "big")
    insert_events(app_wh, "shop", synthetic_rows(5, seed=1))
    with pytest.raises(AttachError, match="already has"):
        attach_summary(app_wh, path, "shop")
    with pytest.raises(AttachError, match="is as of"):
        attach_summary(app_wh, path, "big", as_of="2024-01-01")


def test_pages_open_an_attached_summary(source, app_wh):
    _, path = source
    attach_summary(app_wh, path, "big")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert any("needs the raw events" in i.value for i in at.info)  # Overview
    at.switch_page("views/value.py").run()
    assert not at.exception, at.exception
    assert any("customer summary computed on Spark" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["Customers"].replace(",", "") == "300"
    at.switch_page("views/segments.py").run()
    assert not at.exception, at.exception
    for page in ("views/campaigns.py", "views/reports.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
    for page in ("views/explorer.py", "views/predict.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert any("needs the raw events" in i.value for i in at.info), page
