"""AppTest: the review and new-customer views other pages embed — sentiment by segment on the
Explorer, the new-customer groups as their own tab of the Segments page — on a small generated
sample, checked against the stored review scores and a plain SQL count of first purchases."""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.ingest import ingest
from analytics.reviews.features import customer_sentiment
from analytics.reviews.sentiment import ensure_sentiment
from sample_data.generator import SampleConfig, generate
from tests.dashboard.conftest import APP

AS_OF = pd.Timestamp("2025-12-31")


@pytest.fixture
def gen(app_wh, tmp_path):
    ev = tmp_path / "events.csv.gz"
    generate(ev, None, SampleConfig(customers=700, seed=3))
    ingest(app_wh, ev, "gen")
    ensure_sentiment(app_wh, "gen")
    return app_wh


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_explorer_shows_sentiment_by_rfm_segment(gen):
    at = _open("views/explorer.py")
    found = [d.value for d in at.dataframe if "latest_negative_share" in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    table = found[0].set_index("rfm_segment")
    truth = customer_sentiment(gen, "gen", AS_OF)
    reviewers = int(truth["sentiment_mean"].notna().sum())
    assert reviewers > 50
    # every customer with a scored review up to the day is counted once, in one segment
    assert int(table["reviewers"].sum()) == reviewers
    assert int(table["customers"].sum()) == gen.cursor().execute(
        "SELECT count(DISTINCT customer_id) FROM events WHERE dataset = 'gen'").fetchone()[0]
    # the customer-weighted mean of the segment means is the mean over all reviewers
    weighted = (table["sentiment_mean"].fillna(0) * table["reviewers"]).sum() / reviewers
    assert weighted == pytest.approx(float(truth["sentiment_mean"].mean()), rel=1e-9)


def test_segments_page_has_the_new_customer_groups(gen):
    at = _open("views/segments.py")
    assert "New customers" in [t.label for t in at.tabs]
    assert not [d for d in at.dataframe if "basket_value" in d.value.columns]  # only on request
    at.toggle(key="segments_new_show").set_value(True).run()
    assert not at.exception, at.exception
    groups = [d.value for d in at.dataframe if "basket_value" in d.value.columns]
    assert len(groups) == 1, [list(d.value.columns) for d in at.dataframe]
    # customers whose first purchase day lies in the 90 days ending on the last day
    new = gen.cursor().execute(
        "SELECT count(*) FROM (SELECT customer_id, min(date_trunc('day', event_time)) AS first FROM events "
        "WHERE dataset = 'gen' AND event_type = 'purchase' GROUP BY 1) "
        "WHERE first > DATE '2025-12-31' - INTERVAL 90 DAY").fetchone()[0]
    assert new > 10
    assert int(groups[0]["customers"].sum()) == new
    assert groups[0]["segment"].is_unique
