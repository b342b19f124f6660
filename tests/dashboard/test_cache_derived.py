"""What every page view draws from a prepared frame is computed once per data version (shared by
every session) and computed again after a load: checked against the library's own functions on
the frame as it is after each load, and by counting the computations."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analytics import explorer
from dashboard import cache
from tests.dashboard.conftest import insert_events, synthetic_rows


@pytest.fixture
def shop(app_wh):
    insert_events(app_wh, "shop", synthetic_rows(40))
    last = app_wh.cursor().execute("SELECT max(event_time) FROM events").fetchone()[0]
    return app_wh, pd.Timestamp(last).date()


def _counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_concentration_is_computed_once_per_version_and_again_after_a_load(shop, monkeypatch):
    wh, as_of = shop
    calls = _counting(monkeypatch, explorer, "concentration")
    first = cache.explorer_concentration("shop", as_of, (0.1, 0.2), 1000)
    again = cache.explorer_concentration("shop", as_of, (0.1, 0.2), 1000)
    assert len(calls) == 1  # the second view is a cache hit
    values = cache.explorer_frame("shop", as_of)["net_revenue"]
    assert first["gini"] == pytest.approx(explorer.gini(values), rel=1e-9)
    assert first["top"][0.1] == pytest.approx(explorer.top_share(values, 0.1), rel=1e-9)
    assert again["gini"] == first["gini"]

    # a load on the same days: one new customer who spent far more than anyone
    day = dt.datetime.combine(as_of, dt.time(8))
    insert_events(wh, "shop", [("whale", day, "purchase", "w-1", 100_000.0)])
    after = cache.explorer_concentration("shop", as_of, (0.1, 0.2), 1000)
    assert len(calls) == 2
    values = cache.explorer_frame("shop", as_of)["net_revenue"]
    assert "whale" in set(values.index.astype(str))
    assert after["gini"] == pytest.approx(explorer.gini(values), rel=1e-9)
    assert after["gini"] > first["gini"]
    assert after["top"][0.1] == pytest.approx(explorer.top_share(values, 0.1), rel=1e-9)


def test_sentiment_needs_scored_reviews(shop):
    _wh, as_of = shop
    # the synthetic events have no reviews: nothing to group, and the page says so
    assert cache.explorer_sentiment_columns("shop", as_of) is None


def test_sentiment_columns_and_table_follow_the_frame():
    from analytics.reviews.views import sentiment_by_group, sentiment_group_columns

    frame = pd.DataFrame({"rfm_segment": ["a", "a", "b", None], "country": [None] * 4,
                          "sentiment_mean": [0.5, np.nan, -0.5, 0.1], "sentiment_latest": [0.5, np.nan, -0.9, 0.1]},
                         index=["c1", "c2", "c3", "c4"])
    assert sentiment_group_columns(frame) == ["rfm_segment"]  # country has no value
    table = sentiment_by_group(frame, "rfm_segment")
    assert table.loc["a", "customers"] == 2 and table.loc["a", "reviewers"] == 1
    assert table.loc["(none)", "sentiment_mean"] == pytest.approx(0.1)
    assert sentiment_group_columns(frame.assign(sentiment_mean=np.nan)) is None
