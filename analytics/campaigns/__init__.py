"""Campaign targeting and read-out: whom to contact, what it should return,
a fair control group, the stored list, and the uplift once outcomes are in.

Modules: ``spec`` (CampaignSpec, CampaignError, RANKINGS), ``targeting`` (value
columns, selection, ranking, cap, stratified control group, default assumptions),
``outcome`` (expected outcome and return curve), ``readout`` (outcomes file and
uplift statistics), ``store`` (persistence). No streamlit here.

Typical use::

    frame = analytics.explorer.build_frame(wh, "shop", "2025-06-30")
    spec = CampaignSpec(name="Win back", dataset="shop", as_of="2025-06-30",
                        segments=["At risk"], ranking="churn_value", budget=5000, cost_per_contact=2)
    targets = select_targets(wh, frame, spec)
    rate, value = default_response(frame.loc[targets.customer_id], spec)
    expected_outcome(targets, rate, value, spec.cost_per_contact)
    cid = save_campaign(wh, spec, targets)
    ... later ...
    save_outcomes(wh, cid, read_outcomes("outcomes.csv")); campaign_readout(wh, cid)
"""
from analytics.campaigns.outcome import expected_outcome, response_probabilities, return_curve
from analytics.campaigns.readout import (compare, newcombe_interval, proportion_test, read_outcomes, readout,
                                         welch, wilson_interval)
from analytics.campaigns.spec import RANKINGS, CampaignError, CampaignSpec
from analytics.campaigns.store import (campaign_outcomes, campaign_readout, campaign_targets, delete_campaign,
                                       get_campaign, list_campaigns, save_campaign, save_outcomes)
from analytics.campaigns.targeting import (ALL_CUSTOMERS, assign_control, contact_cap, default_response, eligible,
                                           rank_eligible, ranking_problem, recommendations_possible,
                                           response_defaults, select_targets, value_columns)

__all__ = [
    "CampaignError", "CampaignSpec", "RANKINGS", "ALL_CUSTOMERS", "value_columns", "select_targets", "eligible",
    "contact_cap", "ranking_problem", "recommendations_possible", "default_response", "response_defaults", "rank_eligible", "expected_outcome", "return_curve", "response_probabilities",
    "assign_control", "save_campaign", "get_campaign", "list_campaigns", "campaign_targets", "delete_campaign",
    "read_outcomes", "readout", "save_outcomes", "campaign_outcomes", "campaign_readout", "compare",
    "newcombe_interval", "wilson_interval", "proportion_test", "welch",
]
