"""A ranking score that cannot rank (constant, all 0, missing for a share of the selection):
the list says so, names where the score came from, and no ROI is computed from it — in the
library, the CLI and the campaign report."""
from __future__ import annotations

import json

import numpy as np
import pytest

from analytics import campaigns as c
from analytics.cli import main

from .conftest import AS_OF, load, make_events


@pytest.mark.parametrize("scores, words", [
    ([0.0, 0.0, 0.0, 0.0], "is 0.00 for every selected customer"),
    ([3.5, 3.5, 3.5], "is 3.5 for every selected customer"),
    ([np.nan, np.nan], "no selected customer has a ranking score"),
    ([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, np.nan], "20 % of the selected customers (2 of 10)"),
    ([np.nan, 2.0, 2.0], "for every scored selected customer"),
])
def test_ranking_problem_names_what_is_wrong(scores, words):
    said = c.ranking_problem(scores, "the column 'x'")
    assert said is not None and words in said and "the column 'x'" in said


def test_a_score_that_ranks_is_fine():
    assert c.ranking_problem([1.0, 2.0, 2.0, 0.0]) is None
    assert c.ranking_problem(list(range(20)) + [np.nan]) is None  # 1 of 21 missing: below the 10 % share
    assert c.ranking_problem([]) is None


def test_all_zero_expected_clv_gives_a_warning_and_no_roi(shop):
    w, frame = shop
    f = c.value_columns(w, frame)
    f["expected_clv"] = 0.0  # what a model that predicts nothing gives
    spec = c.CampaignSpec(name="t", dataset="shop", as_of=AS_OF, max_contacts=50, cost_per_contact=1.0)
    targets = c.select_targets(w, f, spec)
    warning = targets.attrs["score_warning"]
    assert "0.00 for every selected customer" in warning
    assert targets.attrs["score_source"] == "expected CLV from BG/NBD + Gamma-Gamma CLV" and "BG/NBD" in warning
    # the list is the id order: nothing ranked it
    ids = list(targets["customer_id"])
    assert ids == sorted(ids)
    out = c.expected_outcome(targets, 0.02, 100.0, 1.0)
    assert out["roi"] is None and "0.00 for every selected customer" in out["roi_withheld"]
    assert out["cost"] == pytest.approx(targets.attrs["n_treatment"] * 1.0)
    # a score that ranks: an ROI, no warning
    ranked = c.select_targets(w, c.value_columns(w, frame), spec)
    assert ranked.attrs["score_warning"] is None
    assert c.expected_outcome(ranked, 0.02, 100.0, 1.0)["roi"] is not None


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from analytics.warehouse import Warehouse

    path = tmp_path_factory.mktemp("safety") / "w.duckdb"
    wh = Warehouse(path)
    load(wh, "shop", make_events(200, seed=5))  # no searches in this shop: n_searches is 0 for everyone
    wh.close()
    return str(path)


def test_cli_warns_and_withholds_the_roi(db, capsys, tmp_path):
    code = main(["campaign", "create", "--db", db, "--dataset", "shop", "--as-of", AS_OF, "--name", "flat",
                 "--rank", "score", "--score-column", "n_searches", "--max-contacts", "30", "--cost", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "warning: the ranking score is 0.00 for every selected customer" in out
    assert "the customer-table column 'n_searches'" in out
    assert "ranked by the customer-table column 'n_searches'; values from" in out  # not the page's "A score I pick"
    assert "ROI not shown" in out and "ROI n/a" not in out and "%" not in out.split("expected:")[1]
    code = main(["campaign", "create", "--db", db, "--dataset", "shop", "--as-of", AS_OF, "--name", "flat2",
                 "--rank", "score", "--score-column", "n_searches", "--max-contacts", "30", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["expected"]["roi"] is None and data["score_warning"].startswith("the ranking score is 0.00")
    assert data["break_even"] is None
    main(["campaign", "show", "--db", db, "1"])
    out = capsys.readouterr().out
    assert "warning: the ranking score is 0.00" in out
    assert "ranked by the customer-table column 'n_searches';" in out


def test_campaign_report_says_the_list_is_not_ranked(db):
    from analytics.reports import build_report, render_html
    from analytics.warehouse import Warehouse

    wh = Warehouse(db)
    try:
        camp_id = int(c.list_campaigns(wh, "shop").sort_values("id")["id"].iloc[0])
        snap = build_report(wh, "shop", AS_OF, campaign_id=camp_id)
    finally:
        wh.close()
    assert "0.00 for every selected customer" in snap["subject"]["ranking_warning"]
    html = render_html(snap)
    assert 'id="ranking-warning"' in html and "Not ranked" in html
