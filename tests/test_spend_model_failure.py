"""A spend model that cannot be fitted (every repeat buyer's orders worth 0) leaves what needs no
spend model working: the probability alive, the churn risk and the churn bands come from the
purchase model fitted on its own, against a direct fit of that model."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analytics import prepare
from analytics.clv import SpendModelError, fit_purchase_model_summary_robust
from analytics.scores import fit_clv_models
from analytics.summary import customer_summary

AS_OF = "2024-06-30"


def _free_orders(wh, dataset: str = "free") -> None:
    """40 customers with three orders of 0 each (a log whose revenue column was mapped wrongly, or
    free samples) and 20 one-time buyers."""
    rows = [(f"c{i}", dt.datetime(2024, 1 + (i + k) % 6, 10 + i % 9), "purchase", 0.0)
            for i in range(40) for k in range(3)]
    rows += [(f"o{i}", dt.datetime(2024, 1 + i % 6, 3), "purchase", 0.0) for i in range(20)]
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES (?)", [dataset])
        tx.executemany("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) "
                       "VALUES (?, ?, ?, ?, ?)", [(dataset, *r) for r in rows])


def _direct_p_alive(wh, as_of=AS_OF):
    s = customer_summary(wh, "free", as_of, persist=False)
    s = s[s["n_orders"] > 0]
    bg = fit_purchase_model_summary_robust(s, "bgnbd", random_state=0)
    p = np.asarray(bg.expected_probability_alive(s["frequency"], s["recency"], s["T"]), dtype=float)
    return s.index, p, bg


def test_the_pair_fails_on_the_spend_model_with_the_purchase_model_kept(wh):
    _free_orders(wh)
    s = customer_summary(wh, "free", AS_OF, persist=False)
    with pytest.raises(SpendModelError, match="none of the 40 repeat buyers has a positive spend") as err:
        fit_clv_models(s)
    ids, p, bg = _direct_p_alive(wh)
    assert err.value.purchase is not None
    assert err.value.purchase.params_ == pytest.approx(bg.params_, rel=1e-9)


def test_values_keep_the_probability_alive_and_churn_risk(wh):
    _free_orders(wh)
    ids, p, bg = _direct_p_alive(wh)
    vals = prepare.values(wh, "free", AS_OF)
    got = vals.loc[ids]
    assert 0.0 < p.min() and p.max() <= 1.0 and p.std() > 0  # not a constant: the test can fail
    np.testing.assert_allclose(got["p_alive"].to_numpy(float), p, rtol=1e-9)
    np.testing.assert_allclose(got["churn_risk"].to_numpy(float), 1.0 - p, rtol=1e-9)
    assert (vals["expected_clv_source"] == "formula").all()
    assert np.isnan(got["clv_bgnbd"].to_numpy(float)).all()
    assert "spend model could not be fitted" in vals.attrs["value_note"]
    assert "probability alive is the purchase model's" in vals.attrs["value_note"]
    assert vals.attrs["risk_source"].startswith("1 - probability alive")
    model = prepare.purchase_model(wh, "free", AS_OF)
    assert model.params_ == pytest.approx(bg.params_, rel=1e-9)
    assert prepare.purchase_model(wh, "free", AS_OF, compute=False) is not None  # stored


def test_a_purchase_model_failure_is_still_an_error(wh):
    with wh.transaction() as tx:  # nobody came back: no purchase model either
        tx.execute("INSERT INTO datasets (name) VALUES ('once')")
        tx.executemany("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) "
                       "VALUES ('once', ?, ?, 'purchase', 10.0)",
                       [(f"o{i}", dt.datetime(2024, 1 + i % 6, 3)) for i in range(30)])
    with pytest.raises(ValueError, match="purchase model could not be fitted"):
        prepare.purchase_model(wh, "once", AS_OF)
