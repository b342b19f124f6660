"""BG/NBD fits that need a fallback penalizer: one shared mechanism for scoring and backtests."""
from __future__ import annotations

import numpy as np
import pytest

from analytics.bootstrap import ensure_default_dataset
from analytics.clv_models import BetaGeoModel, ModelFitError, fit_bgnbd_robust, fit_bgnbd_summary_robust
from analytics.scores import fit_clv_models, score_dataset
from analytics.summary import customer_summary
from analytics.warehouse import Warehouse


@pytest.fixture(scope="module")
def sample_wh():
    w = Warehouse(":memory:")
    assert ensure_default_dataset(w) is not None
    yield w
    w.close()


@pytest.fixture(scope="module")
def summary_0630(sample_wh):
    return customer_summary(sample_wh, "sample", "2025-06-30", "days")


def test_plain_fit_runs_off_on_the_sample(sample_wh):
    # the situation the fallback exists for: the unpenalized maximum runs off to a, b -> infinity
    # (on the bundled sample at the end of March 2025; at the end of June the plain fit stops short)
    plain = BetaGeoModel(random_state=0).fit_summary(customer_summary(sample_wh, "sample", "2025-03-31", "days"))
    assert plain.a_ > 1e4 and plain.b_ > 1e4
    assert plain.fit_note_ is None and plain.penalizer_ == 0.0


def test_robust_fit_at_2025_06_30_is_finite_and_sensible(summary_0630):
    model = fit_bgnbd_summary_robust(summary_0630, random_state=0)
    params = np.array([model.r_, model.alpha_, model.a_, model.b_])
    assert np.isfinite(params).all() and (params > 0).all() and (params < 1e3).all()
    assert model.penalizer_ > 0
    assert "penalizer" in model.fit_note_ and ("ran off" in model.fit_note_ or "did not converge" in model.fit_note_)
    buyers = summary_0630[summary_0630["n_orders"] > 0]
    p = np.asarray(model.probability_alive(buyers["frequency"], buyers["recency"], buyers["T"]))
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert np.unique(np.round(p, 6)).size > 100
    # one-time buyers are alive (p = 1); long-silent repeat buyers are not
    assert (p[buyers["frequency"].to_numpy() == 0] == 1).all()
    assert p.min() < 0.1


def test_scores_use_the_fallback_and_report_it(sample_wh, summary_0630):
    bgnbd, _ = fit_clv_models(summary_0630)
    assert bgnbd.penalizer_ > 0 and bgnbd.fit_note_
    run = score_dataset(sample_wh, "sample", "2025-06-30")
    assert run.bgnbd_note is None and run.fit_note == bgnbd.fit_note_
    meta = run.metadata()
    assert meta["bgnbd"] == "fitted" and meta["bgnbd_fit_note"] == run.fit_note
    assert meta["model_params"]["bgnbd"]["penalizer"] == bgnbd.penalizer_
    p = run.frame["p_alive"].dropna()
    assert p.between(0, 1).all() and p.nunique() > 100


def test_well_behaved_data_needs_no_penalizer():
    from analytics.clv_models import sample_bgnbd_summary

    s = sample_bgnbd_summary(3000, 0.24, 4.4, 0.79, 2.4, 39.0, random_state=1)
    model = fit_bgnbd_robust(s["frequency"], s["recency"], s["T"], unit="weeks", random_state=0)
    assert model.penalizer_ == 0.0 and model.fit_note_ is None


def test_data_problems_are_not_retried():
    with pytest.raises(ModelFitError, match="no customer made a repeat purchase"):
        fit_bgnbd_robust([0, 0, 0], [0, 0, 0], [5, 6, 7], unit="days")
