"""A report of a saved campaign, and campaign results in a segment's report (analytics.campaigns)."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pytest

from analytics.reports import ReportError, build_report, render_html
from tests.reports.conftest import AS_OF, HTML_NAME

campaigns = pytest.importorskip("analytics.campaigns")


@pytest.fixture(scope="module")
def campaign(sample_wh):
    from analytics.explorer import build_frame

    frame = build_frame(sample_wh, "sample", AS_OF)
    spec = campaigns.CampaignSpec(name="Win <b>back</b>", dataset="sample", as_of=AS_OF, segments=[HTML_NAME],
                                  max_contacts=200, control_share=0.2, description="<script>x</script>")
    targets = campaigns.select_targets(sample_wh, frame, spec)
    cid = campaigns.save_campaign(sample_wh, spec, targets)
    rng = np.random.default_rng(0)
    outcomes = pd.DataFrame({"customer_id": targets["customer_id"], "converted": rng.random(len(targets)) < 0.3,
                             "revenue": np.round(rng.random(len(targets)) * 50, 2)})
    campaigns.save_outcomes(sample_wh, cid, outcomes)
    return cid, targets


def test_campaign_report(sample_wh, campaign):
    cid, targets = campaign
    snap = build_report(sample_wh, "sample", AS_OF, campaign_id=cid)
    assert snap["kind"] == "campaign" and snap["title"] == "Campaign report: Win <b>back</b>"
    assert snap["size"]["customers"] == len(targets) == 250  # treatment and control
    assert snap["subject"]["targets"] == len(targets)
    assert "saved segments " + HTML_NAME in snap["subject"]["definition_text"]
    assert "20 % held out as control" in snap["subject"]["definition_text"]
    (result,) = snap["campaigns"]
    expected = campaigns.campaign_readout(sample_wh, cid)
    assert result["readout"]["overall"]["n_treatment"] == expected["overall"]["n_treatment"] == 200
    assert result["readout"]["overall"]["conversion_t"] == pytest.approx(expected["overall"]["conversion_t"])
    doc = render_html(snap, plotly_js="")
    assert "Win <b>back</b>" not in doc and html.escape("Win <b>back</b>") in doc
    assert "<script>x</script>" not in doc
    assert "Uplift in conversion (95 % interval)" in doc


def test_segment_report_lists_campaigns_that_used_it(sample_wh, campaign):
    cid, _ = campaign
    snap = build_report(sample_wh, "sample", AS_OF, segment=HTML_NAME)
    assert [c["campaign_id"] for c in snap["campaigns"]] == [cid]


def test_unknown_campaign_or_other_dataset(sample_wh, campaign):
    with pytest.raises(ReportError, match="no saved campaign"):
        build_report(sample_wh, "sample", AS_OF, campaign_id=987654)
    sample_wh.cursor().execute("INSERT INTO datasets (name) VALUES ('other')")
    try:
        with pytest.raises(ReportError, match="was made on dataset 'sample', not 'other'"):
            build_report(sample_wh, "other", AS_OF, campaign_id=campaign[0])
    finally:
        sample_wh.cursor().execute("DELETE FROM datasets WHERE name = 'other'")
