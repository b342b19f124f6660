"""The preparation step's reviews / new-customer pieces on the generated sample, against the library."""
from __future__ import annotations

import numpy as np
import pandas as pd


def test_new_customer_table_and_frame_columns(generated):
    from analytics.campaigns import value_columns
    from analytics.explorer import build_frame
    from analytics.lifecycle import churn_bands, next_order_days
    from analytics.newcustomers import annualised_clv, new_customers
    from analytics.reviews.prepared import new_customer_table, prepare_reviews, with_customer_columns
    from analytics.scores import fit_clv_models

    wh, _, _, _ = generated
    assert prepare_reviews(wh, "g")["source"] == "learned"
    new = new_customer_table(wh, "g", "2025-12-31")
    assert set(new.index) == set(new_customers(wh, "g", "2025-12-31").index)
    np.testing.assert_allclose(new["clv_first_order"], annualised_clv(new["first_order_value"], 182))
    assert new["new_customer_segment"].notna().all() and new["new_customer_segment"].nunique() <= 4
    frame = build_frame(wh, "g", "2025-12-31")
    models = fit_clv_models(frame)
    frame = value_columns(wh, frame, models=models)
    out = with_customer_columns(wh, "g", frame, new, "2025-12-31", bgnbd=models[0])
    is_new = out.index.isin(new.index)
    np.testing.assert_allclose(out.loc[is_new, "clv"], new.loc[out.index[is_new], "clv_first_order"])
    np.testing.assert_allclose(out.loc[~is_new, "clv"], frame.loc[~is_new, "clv"])
    assert (out.loc[is_new, "clv_source"] == "first-order model").all() and (out.loc[~is_new, "clv_source"] == "formula").all()
    repeat = out["frequency"] >= 1
    assert (out.loc[repeat, "churn_band"].to_numpy() == churn_bands(out.loc[repeat, "churn_risk"])).all()
    assert out.loc[~repeat, "churn_band"].isna().all()
    np.testing.assert_allclose(out.loc[repeat, "days_to_next_order"],
                               np.round(next_order_days(models[0], out.loc[repeat, "frequency"], out.loc[repeat, "T"]), 1))
