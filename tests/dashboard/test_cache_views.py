"""The dashboard cache is shared by every session: what an analyst's call put there is never handed
to a viewer with raw customer ids, and a dataset a person may not read is refused even on a cache hit."""
from __future__ import annotations

import pandas as pd
import pytest

from analytics import access
from analytics.campaigns import CampaignSpec
from dashboard import cache
from tests.dashboard.conftest import insert_events, synthetic_rows

ANN = access.Caller("ann@example.com", "person", "analyst")
VIC = access.Caller("vic@example.com", "person", "viewer")
OUT = access.Caller("out@example.com", "person", "analyst")


@pytest.fixture
def shop(app_wh):
    insert_events(app_wh, "shop", synthetic_rows(40))
    for who, role in ((ANN, "analyst"), (VIC, "viewer"), (OUT, "analyst")):
        access.set_person(app_wh, who.id, role)
    access.grant(app_wh, ANN.id, "shop")
    access.grant(app_wh, VIC.id, "shop")
    last = app_wh.cursor().execute("SELECT max(event_time) FROM events").fetchone()[0]
    with access.on_warehouse(app_wh):
        yield app_wh, pd.Timestamp(last).date()


def test_an_analysts_cached_results_reach_a_viewer_pseudonymised(shop):
    wh, as_of = shop
    raw = {r[0] for r in wh.cursor().execute("SELECT DISTINCT customer_id FROM events").fetchall()}
    spec = CampaignSpec(name="c", dataset="shop", as_of=str(as_of), max_contacts=10)
    with access.acting_as(ANN):
        frame = cache.explorer_frame("shop", as_of)
        targets = cache.campaign_targets("shop", as_of, spec)
        groups = cache.explorer_groups("shop", as_of, "rfm_segment")
    assert set(frame.index.astype(str)) <= raw and set(targets["customer_id"]) <= raw
    with access.acting_as(VIC):
        v_frame = cache.explorer_frame("shop", as_of)
        v_targets = cache.campaign_targets("shop", as_of, spec)
        v_groups = cache.explorer_groups("shop", as_of, "rfm_segment")
    assert len(v_frame) == len(frame) and not set(v_frame.index.astype(str)) & raw
    assert len(v_targets) == len(targets) and not set(v_targets["customer_id"]) & raw
    seen = set(v_frame.index.astype(str))
    assert set(v_targets["customer_id"]) <= seen  # the same pseudonyms everywhere
    first = next(iter(v_groups.values())) if isinstance(v_groups, dict) else None
    if isinstance(first, pd.Series):
        assert not set(first.index.astype(str)) & raw
    assert groups is not v_groups


def test_a_cache_hit_still_checks_the_grant(shop):
    wh, as_of = shop
    with access.acting_as(ANN):
        assert cache.explorer_frame("shop", as_of) is not None
    with access.acting_as(OUT):  # an analyst without a grant for 'shop'
        with pytest.raises(access.AccessDenied, match="no access to dataset 'shop'"):
            cache.explorer_frame("shop", as_of)
