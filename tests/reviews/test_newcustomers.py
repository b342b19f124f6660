"""New customers: first-order features against hand-computed values, the first-order model against the
population mean on the holdout of the generated sample, groups with readable names, recommendations for
customers without history."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import newcustomers as nc
from tests.predict._events import add_events


def _tiny(wh):
    rows = [
        # A: browses twice, buys two lines on day 1 (one discounted), comes back on day 11 and buys again
        ("A", "2025-01-01 09:00:00", "view", None, "I1", "home", None, None),
        ("A", "2025-01-01 09:05:00", "cart", None, "I1", "home", 1, None),
        ("A", "2025-01-01 10:00:00", "purchase", "OA1", "I1", "home", 1, 50.0),
        ("A", "2025-01-01 10:00:01", "purchase", "OA1", "I2", "toys", 2, 20.0),
        ("A", "2025-01-11 08:00:00", "view", None, "I2", "toys", None, None),
        ("A", "2025-01-11 09:00:00", "purchase", "OA2", "I1", "home", 1, 100.0),
        # B: buys I1 at the usual price, never seen again
        ("B", "2025-01-05 12:00:00", "purchase", "OB1", "I1", "home", 1, 100.0),
        ("B", "2025-02-01 12:00:00", "purchase", "OB2", "I2", "toys", 1, 10.0),
        # C: only views (no purchase history)
        ("C", "2025-01-06 12:00:00", "view", None, "I2", "toys", None, None),
    ]
    add_events(wh, "t", pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "order_id", "item_id",
                                                    "category", "quantity", "revenue"]))


def test_first_order_features_by_hand(wh):
    _tiny(wh)
    cuts = pd.DataFrame({"first_day": pd.to_datetime(["2025-01-01", "2025-01-05"]),
                         "obs_day": pd.to_datetime(["2025-01-20", "2025-01-20"])}, index=["A", "B"])
    f = nc.first_order_features(wh, "t", cuts)
    a, b = f.loc["A"], f.loc["B"]
    assert a["basket_value"] == 70 and a["basket_lines"] == 2 and a["basket_units"] == 3
    assert a["basket_categories"] == 2 and a["first_category"] == "home"
    # I1's usual unit price: median of 50, 100, 100 = 100; I2's: median of 10, 10 = 10 -> list value 100 + 20
    assert a["basket_discount"] == pytest.approx(1 - 70 / 120)
    assert a["views_before"] == 1 and a["carts_before"] == 1
    assert a["days_to_next_visit"] == 10 and a["visits_since"] == 1 and a["purchase_days_since"] == 1
    assert a["revenue_since"] == 100 and a["age_days"] == 19 and a["acquisition_month"] == 1
    assert b["basket_discount"] == pytest.approx(0.0) and np.isnan(b["days_to_next_visit"])
    assert b["visits_since"] == 0 and b["age_days"] == 15  # the February order is after the observation day


def test_cold_start_recommendations_are_labelled(wh):
    _tiny(wh)
    assert list(nc.no_history_customers(wh, "t", "2025-03-01")) == ["C"]
    recs = nc.cold_start_recommendations(wh, "t", ["C", "Z"], "2025-03-01", n=2)
    c = recs[recs["customer_id"] == "C"]
    # C first looked at toys: I2 (bought by A and B) is the only toy
    assert list(c["item_id"]) == ["I2"] and set(c["reason"]) == {"popular in toys"}
    z = recs[recs["customer_id"] == "Z"]  # unknown: no category, no country -> overall (I1 and I2: 2 buyers each)
    assert list(z["item_id"]) == ["I1", "I2"] and set(z["reason"]) == {"popular overall"}
    with pytest.raises(nc.NewCustomerError):
        nc.cold_start_recommendations(wh, "t", ["C"], "2025-03-01", n=0)


@pytest.fixture(scope="module")
def backtest_result(generated):
    wh, _, _, _ = generated
    return nc.backtest(wh, "g", "2025-06-30", "2025-12-29", models=())


def test_first_order_model_beats_the_population_mean_on_the_holdout(backtest_result):
    bt = backtest_result
    p = bt.predictions
    assert len(p) == bt.info["n_new_customers"] > 30
    assert bt.info["holdout_days"] == 182 and bt.info["n_training_examples"] > 300
    # independent RMSE / MAE from the per-customer predictions
    rmse = lambda c: float(np.sqrt(np.mean((p["actual_value"] - p[c]) ** 2)))  # noqa: E731
    mae = lambda c: float(np.mean(np.abs(p["actual_value"] - p[c])))  # noqa: E731
    assert rmse("first_order") < 0.8 * rmse("population_mean")
    assert mae("first_order") < mae("population_mean")
    assert bt.metrics.loc["first_order", "rmse"] == pytest.approx(rmse("first_order"))
    # the existing models were judged on the same customers
    assert {"naive", "bgnbd", "formula_clv"} <= set(bt.metrics.index)
    assert (bt.metrics["n_customers"] == len(p)).all()


def test_values_groups_and_clv_for_new_customers(generated):
    wh, _, truth, _ = generated
    fov = nc.first_order_values(wh, "g", "2025-12-31")
    assert fov.problem is None and len(fov.values) > 30 and (fov.values >= 0).all()
    new = nc.new_customers(wh, "g", "2025-12-31")
    assert set(fov.values.index) == set(new.index)
    assert (new > pd.Timestamp("2025-10-02")).all()
    # ranked against what they actually did in the truth period: better than chance
    from scipy.stats import spearmanr

    fut = truth.loc[fov.values.index, "future_net_revenue"]
    assert spearmanr(fov.values, fut).statistic > 0.1
    seg, profile = nc.new_customer_segments(fov.features, k=3)
    assert len(seg) == len(fov.features) and seg.nunique() == 3 == len(profile)
    assert all(isinstance(n, str) and n[0].isupper() for n in profile.index)
    assert profile["customers"].sum() == len(seg)
    frame = pd.DataFrame({"clv": 100.0}, index=pd.Index(list(fov.values.index[:5]) + ["old"], name="customer_id"))
    out = nc.apply_to_frame(frame, fov)
    assert out.loc["old", "clv"] == 100.0 and out.loc["old", "clv_source"] == "formula"
    np.testing.assert_allclose(out["clv"].iloc[:5], nc.annualised_clv(fov.values.iloc[:5], 182).to_numpy())
    assert (out["clv_source"].iloc[:5] == "first-order model").all()


def test_bad_settings_are_refused(generated):
    wh, _, _, _ = generated
    with pytest.raises(nc.NewCustomerError, match="window"):
        nc.first_order_values(wh, "g", "2025-12-31", window_days=3)
    with pytest.raises(nc.NewCustomerError, match="after the calibration end"):
        nc.backtest(wh, "g", "2025-06-30", "2025-06-01")


def test_no_repeat_value_in_the_training_window_is_a_reason_not_a_crash(wh):
    # 60 customers whose only purchase is on one day: every training target is zero, which
    # LightGBM's Tweedie objective refuses; the fit must say why instead
    rows = [(f"C{i:03d}", "2025-01-05 10:00:00", "purchase", f"O{i}", "I1", "home", 1, 10.0 + i) for i in range(60)]
    add_events(wh, "one_day", pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "order_id",
                                                          "item_id", "category", "quantity", "revenue"]))
    fov = nc.first_order_values(wh, "one_day", "2025-12-31", window_days=30, horizon_days=60)
    assert fov.model is None and fov.values.empty
    assert "no value to learn from" in fov.problem


def test_training_examples_do_not_depend_on_the_order_the_events_were_stored_in():
    # the same purchases stored in two orders: the seeded observation ages go to the same customers,
    # so the examples (and the model's predictions from them) are the same every run
    from analytics.warehouse import Warehouse

    rng = np.random.default_rng(3)
    n = 400
    first = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    rows = [(f"c{i:04d}", first[i] + pd.Timedelta(days=int(k * 9)), "purchase", f"o{i}-{k}", "I1", "home", 1,
             float(10 + (i * 7 + k) % 90)) for i in range(n) for k in range(1 + i % 3)]
    frame = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "order_id", "item_id",
                                        "category", "quantity", "revenue"])
    examples = []
    for order in (frame.index, frame.index[::-1]):
        w = Warehouse(":memory:")
        add_events(w, "t", frame.loc[order])
        days = nc.first_purchase_days(w, "t", pd.Timestamp("2025-01-01"))
        assert list(days.index) == sorted(days.index)
        X, y = nc.training_examples(w, "t", "2024-12-31", window_days=28, horizon_days=60, random_state=0)
        examples.append((X.sort_index(), pd.Series(y, index=X.index).sort_index()))
        w.close()
    assert len(examples[0][0]) > 100
    pd.testing.assert_frame_equal(examples[0][0], examples[1][0])
    pd.testing.assert_series_equal(examples[0][1], examples[1][1])
