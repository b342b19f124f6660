"""Formula CLV: very new customers are counted as at least the minimum age old (damped annualisation)."""
from __future__ import annotations

import pandas as pd
import pytest

from analytics.scores import DEFAULT_MIN_AGE_MONTHS, CLVParams, Scorer, clv_formula, clv_inputs, discounted_months


def _summary():
    as_of = pd.Timestamp("2025-12-31")
    s = pd.DataFrame({
        "first_purchase": [as_of - pd.Timedelta(days=14), as_of - pd.Timedelta(days=730), pd.NaT],
        "last_purchase": [as_of - pd.Timedelta(days=14), as_of - pd.Timedelta(days=10), pd.NaT],
        "n_orders": [1, 8, 0], "net_revenue": [238.32, 800.0, 0.0],
        **{c: [0, 0, 3] for c in ("n_views", "n_searches", "n_carts", "n_purchases", "n_reviews")},
    }, index=pd.Index(["new", "loyal", "browser"], name="customer_id"))
    s.attrs["as_of"] = as_of
    return s


def test_a_two_week_old_one_order_customer_is_not_annualised_to_the_top():
    s = _summary()
    inputs = clv_inputs(s)
    assert inputs["damped"].tolist() == [True, False, False]
    assert inputs.loc["new", "orders_per_year"] == pytest.approx(1 / (DEFAULT_MIN_AGE_MONTHS / 12))
    assert inputs.loc["loyal", "orders_per_year"] == pytest.approx(8 / (730 / 365.25))
    clv = clv_formula(s)
    factor = 0.3 * discounted_months(12, 0.10, 3) / 12
    assert clv["new"] == pytest.approx(238.32 * 12 / DEFAULT_MIN_AGE_MONTHS * factor)
    assert clv["loyal"] > clv["new"]          # the long-standing customer ranks first
    # with a one-month floor (the old default) the newcomer is annualised to 12 orders a year and tops the list
    undamped = clv_formula(s, CLVParams(min_age_months=1.0))
    assert undamped["new"] == pytest.approx(238.32 * 12 * factor) and undamped["new"] > undamped["loyal"]
    assert Scorer(s).min_age_months == DEFAULT_MIN_AGE_MONTHS
