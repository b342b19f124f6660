"""Persistence round trip, names, outcomes and the stored read-out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import campaigns as c

from .conftest import AS_OF, load, make_events


@pytest.fixture
def campaign(wh):
    from analytics.explorer import build_frame

    load(wh, "shop", make_events(200, seed=3))
    frame = build_frame(wh, "shop", AS_OF)
    spec = c.CampaignSpec(name="<b>Win back</b>", dataset="shop", as_of=AS_OF, max_contacts=60,
                          description="=HYPERLINK(\"x\")", control_share=0.2)
    targets = c.select_targets(wh, frame, spec)
    return wh, spec, targets


def test_round_trip_exact(campaign):
    wh, spec, targets = campaign
    cid = c.save_campaign(wh, spec, targets, now="2025-01-02 03:04:05",
                          summary={"expected": {"roi": 1.25}})
    got = c.get_campaign(wh, cid)
    assert got["name"] == "<b>Win back</b>"  # stored as-is
    assert got["description"] == "=HYPERLINK(\"x\")"
    assert c.CampaignSpec.from_dict(got["spec"]) == spec.validated()
    assert got["n_treatment"] == 60 and got["n_control"] == len(targets) - 60
    assert got["summary"]["expected"] == {"roi": 1.25} and got["summary"]["cap"] == 60
    assert str(got["created_at"]) == "2025-01-02 03:04:05"
    assert c.get_campaign(wh, "<b>Win back</b>")["id"] == cid
    assert c.get_campaign(wh, str(cid))["id"] == cid
    back = c.campaign_targets(wh, cid)
    pd.testing.assert_frame_equal(back.reset_index(drop=True),
                                  targets[back.columns].reset_index(drop=True), check_dtype=False)
    lst = c.list_campaigns(wh)
    assert list(lst["name"]) == ["<b>Win back</b>"] and not lst["has_outcomes"].iloc[0]
    assert c.list_campaigns(wh, "other").empty
    with pytest.raises(c.CampaignError, match="already exists"):
        c.save_campaign(wh, spec, targets)


def test_outcomes_and_stored_readout(campaign):
    wh, spec, targets = campaign
    cid = c.save_campaign(wh, spec, targets)
    assert c.campaign_readout(wh, cid) is None
    rng = np.random.default_rng(0)
    out = pd.DataFrame({"customer_id": list(targets["customer_id"]) + ["ghost"],
                        "converted": rng.random(len(targets) + 1) < 0.3})
    out["revenue"] = np.where(out["converted"], 20.0, 0.0)
    direct = c.readout(targets, out)
    saved = c.save_outcomes(wh, cid, out, now="2025-02-01")
    assert saved == direct
    stored = c.campaign_readout(wh, cid)
    assert stored["overall"] == direct["overall"] and stored["unknown_ids"] == ["ghost"]
    assert stored["uploaded_at"] == "2025-02-01 00:00:00"
    assert c.list_campaigns(wh)["has_outcomes"].iloc[0]
    # a new upload replaces the old one
    c.save_outcomes(wh, cid, out.iloc[:5])
    assert c.get_campaign(wh, cid)["n_outcomes"] == 5
    # duplicates are refused and leave the stored outcomes untouched
    with pytest.raises(c.CampaignError, match="more than once"):
        c.save_outcomes(wh, cid, pd.concat([out.iloc[:3], out.iloc[:1]]))
    assert c.get_campaign(wh, cid)["n_outcomes"] == 5
    c.delete_campaign(wh, cid)
    with pytest.raises(c.CampaignError, match="no campaign"):
        c.get_campaign(wh, cid)
    for table in ("campaigns", "campaign_targets", "campaign_outcomes"):
        assert wh.cursor().execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_deleting_the_dataset_removes_campaigns(campaign):
    from analytics.ingest.loader import delete_dataset

    wh, spec, targets = campaign
    cid = c.save_campaign(wh, spec, targets)
    first = str(targets["customer_id"].iloc[0])
    c.save_outcomes(wh, cid, pd.DataFrame({"customer_id": [first], "converted": [True], "revenue": [1.0]}))
    delete_dataset(wh, "shop")
    for table in ("campaigns", "campaign_targets", "campaign_outcomes"):
        assert wh.cursor().execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_save_refuses_bad_lists(campaign):
    wh, spec, targets = campaign
    with pytest.raises(c.CampaignError, match="repeats customer id"):
        c.save_campaign(wh, spec, pd.concat([targets, targets.iloc[:1]]))
    with pytest.raises(c.CampaignError, match="empty"):
        c.save_campaign(wh, spec, targets.iloc[:0])
    with pytest.raises(c.CampaignError, match="both a treatment and a control"):
        c.save_campaign(wh, spec, targets.assign(group="treatment"))
    assert c.list_campaigns(wh).empty
