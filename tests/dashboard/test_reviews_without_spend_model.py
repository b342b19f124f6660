"""AppTest: the Reviews page's churn bands on a log whose repeat buyers' orders are all worth 0 (no
spend model can be fitted): the bands come from the purchase model alone, for every customer."""
from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from analytics.lifecycle import churn_bands
from analytics.summary import customer_summary

from tests.dashboard.conftest import APP
from tests.test_spend_model_failure import _direct_p_alive, _free_orders


def test_reviews_page_shows_churn_bands_without_a_spend_model(app_wh):
    _free_orders(app_wh)
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("views/reviews.py").run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert not any("churn bands could not be computed" in e for e in errors), errors
    metrics = {m.label: int(m.value.replace(",", "")) for m in at.metric if "risk" in m.label}
    assert set(metrics) >= {"Low risk", "Medium risk", "High risk"}, metrics
    # the 40 repeat buyers (only they get a band), banded by 1 - the purchase model's probability alive
    last = app_wh.cursor().execute("SELECT CAST(max(event_time) AS DATE) FROM events").fetchone()[0]
    ids, p_alive, _ = _direct_p_alive(app_wh, last)  # the page's day: the last of the data
    s = customer_summary(app_wh, "free", last, persist=False).loc[ids]
    repeat = (s["frequency"] >= 1).to_numpy()
    bands = pd.Series(churn_bands(1.0 - p_alive[repeat])).value_counts()
    assert repeat.sum() == 40 and bands.size > 1  # more than one band: the counts can disagree
    assert metrics == {f"{b.capitalize()} risk": int(bands.get(b, 0)) for b in ("low", "medium", "high")}
