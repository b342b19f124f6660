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


def test_a_shared_chart_is_built_once_per_version_key_and_view(shop):
    from analytics import access

    wh, as_of = shop
    built = []

    def build():
        built.append(1)
        return {"customers": len(cache.explorer_frame("shop", as_of))}

    first = cache.shared("shop", "test_chart", build, str(as_of))
    assert cache.shared("shop", "test_chart", build, str(as_of)) is first  # every session: the same object
    assert len(built) == 1
    cache.shared("shop", "test_chart", build, "another key")
    assert len(built) == 2
    # a viewer (pseudonymised ids) never gets what was built for a caller with raw ids
    vic = access.Caller("vic@example.com", "person", "viewer")
    access.set_person(wh, vic.id, "viewer")
    access.grant(wh, vic.id, "shop")
    with access.on_warehouse(wh), access.acting_as(vic):
        cache.shared("shop", "test_chart", build, str(as_of))
    assert len(built) == 3
    # a load moves the version: built again, on the new data
    insert_events(wh, "shop", [("newcomer", dt.datetime.combine(as_of, dt.time(9)), "purchase", "n-1", 10.0)])
    after = cache.shared("shop", "test_chart", build, str(as_of))
    assert len(built) == 4 and after["customers"] == first["customers"] + 1


def test_served_sessions_share_a_version_until_a_change_or_a_second(shop, monkeypatch):
    from analytics import prepare

    wh, as_of = shop
    calls = _counting(monkeypatch, prepare, "current_version")
    now = [1000.0]
    monkeypatch.setattr(cache, "_clock", lambda: now[0])
    monkeypatch.setenv("VALUESCOPE_SERVE", "1")
    cache.clear()
    first = cache.version("shop")
    assert cache.version("shop") == first and len(calls) == 1  # a second session: no query
    # a load commits: the next read asks the warehouse and sees the new version
    insert_events(wh, "shop", [("late", dt.datetime.combine(as_of, dt.time(10)), "purchase", "l-1", 5.0)])
    after_load = cache.version("shop")
    assert len(calls) == 2 and after_load != first
    assert after_load == prepare.current_version(wh, "shop")
    # a change no commit counted (a bare statement) is seen once the trust period is over
    calls.clear()
    wh.cursor().execute("UPDATE datasets SET updated_at = updated_at + INTERVAL 1 SECOND WHERE name = 'shop'")
    assert cache.version("shop") == after_load and not calls
    now[0] += cache.VERSION_TRUST_S + 0.01
    assert cache.version("shop") != after_load and len(calls) == 1
    # outside `valuescope serve` every read asks the warehouse
    monkeypatch.delenv("VALUESCOPE_SERVE")
    calls.clear()
    cache.version("shop"), cache.version("shop")
    assert len(calls) == 2
