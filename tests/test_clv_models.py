"""BG/NBD and Gamma-Gamma: golden CDNOW figures, predictions, gradients, degenerate data, CLV."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.clv_models import (
    BetaGeoModel,
    GammaGammaModel,
    ModelFitError,
    NotFittedError,
    customer_lifetime_value,
    sample_bgnbd_summary,
)
from analytics.summary import summary_from_transactions


@pytest.fixture(scope="module")
def cdnow_summary():
    from pathlib import Path

    s = pd.read_csv(Path(__file__).parent / "data" / "cdnow_customers_summary.csv")
    return s


@pytest.fixture(scope="module")
def cdnow_calibration():
    from pathlib import Path

    df = pd.read_csv(Path(__file__).parent / "data" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["original_id", "customer_id", "date", "qty", "amount"])
    df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    df = df[df["date"] >= "1997-01-01"]
    return summary_from_transactions(df, "customer_id", "date", "1997-09-30", "weeks", "amount")


@pytest.fixture(scope="module")
def bgf(cdnow_summary):
    s = cdnow_summary
    return BetaGeoModel().fit(s["frequency"], s["recency"], s["T"], unit="weeks")


def test_bgnbd_golden_cdnow(bgf):
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    assert round(bgf.r_, 3) == 0.243
    assert round(bgf.alpha_, 3) == 4.414
    assert round(bgf.a_, 3) == 0.793
    assert round(bgf.b_, 3) == 2.426
    assert round(bgf.log_likelihood_, 1) == -9582.4
    assert bgf.n_customers_ == 2357 and bgf.unit_ == "weeks"
    assert bgf.n_groups_ < 2357  # identical rows grouped


def test_bgnbd_from_our_summary_matches_golden(cdnow_calibration):
    m = BetaGeoModel().fit_summary(cdnow_calibration)
    assert (round(m.r_, 3), round(m.alpha_, 3), round(m.a_, 3), round(m.b_, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(m.log_likelihood_, 0) == -9582


def test_gamma_gamma_golden_cdnow(cdnow_calibration):
    # lifetimes docs / Fader, Hardie & Lee (2005 JMR): p = 6.25, q = 3.74, gamma = 15.44
    gg = GammaGammaModel().fit_summary(cdnow_calibration)
    assert round(gg.p_, 2) == 6.25
    assert round(gg.q_, 2) == 3.74
    assert round(gg.v_, 2) == 15.44
    assert gg.n_customers_ == 946


def test_bgnbd_predictions_published(bgf):
    # customer 1 of the CDNOW summary: x=2, t_x=30.43, T=38.86 -> 1.226 purchases in 39 weeks
    assert bgf.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)
    assert bgf.probability_alive(0, 0, 38.86) == 1.0
    # E[X(t)] is increasing, 0 at 0
    t = np.array([0.0, 1, 10, 52, 78])
    e = bgf.expected_purchases_new_customer(t)
    assert e[0] == pytest.approx(0.0) and np.all(np.diff(e) > 0)
    # in-sample fit: expected repeat purchases of the cohort over each customer's T are close to
    # the 2457 observed (the paper's Figure 2 tracks the calibration period closely)
    s = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "cdnow_customers_summary.csv")
    expected = bgf.expected_purchases_new_customer(s["T"].to_numpy()).sum()
    assert s["frequency"].sum() == 2457
    assert expected == pytest.approx(2457, rel=0.03)


def test_predictions_equal_lifetimes_live(bgf, cdnow_summary):
    try:
        from lifetimes import BetaGeoFitter, GammaGammaFitter  # noqa: F401
    except Exception:
        pytest.skip("lifetimes does not import here (needs setuptools<81)")
    s = cdnow_summary
    ref = BetaGeoFitter()
    ref.params_ = pd.Series({"r": bgf.r_, "alpha": bgf.alpha_, "a": bgf.a_, "b": bgf.b_})
    x, tx, T = s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy()
    np.testing.assert_allclose(bgf.probability_alive(x, tx, T),
                               ref.conditional_probability_alive(x, tx, T), rtol=1e-10)
    np.testing.assert_allclose(bgf.expected_purchases(10, x, tx, T),
                               ref.conditional_expected_number_of_purchases_up_to_time(10, x, tx, T),
                               rtol=1e-9)
    np.testing.assert_allclose(bgf.expected_purchases_new_customer(np.array([5.0, 39.0])),
                               ref.expected_number_of_purchases_up_to_time(np.array([5.0, 39.0])),
                               rtol=1e-10)
    # lifetimes' own fit reaches the same log-likelihood
    fitted = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    twin = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"], unit="weeks")
    twin.r_, twin.alpha_, twin.a_, twin.b_ = (fitted.params_[k] for k in ("r", "alpha", "a", "b"))
    ll_ref = twin.log_likelihood(s["frequency"], s["recency"], s["T"])
    assert bgf.log_likelihood_ == pytest.approx(ll_ref, rel=1e-6)
    assert bgf.log_likelihood_ >= ll_ref - 1e-6


def test_analytic_gradient_matches_finite_differences(cdnow_summary):
    s = cdnow_summary
    data = BetaGeoModel._group(s["frequency"].to_numpy(float), s["recency"].to_numpy(float),
                               s["T"].to_numpy(float), np.ones(len(s)))
    params = np.array([0.4, 3.0, 1.3, 2.0])
    _, g = BetaGeoModel._loglik_terms(params, *data, grad=True)
    for i in range(4):
        h = 1e-6 * params[i]
        up, dn = params.copy(), params.copy()
        up[i] += h
        dn[i] -= h
        fd = (BetaGeoModel._loglik_terms(up, *data, grad=False)[0]
              - BetaGeoModel._loglik_terms(dn, *data, grad=False)[0]) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-5)
    x = np.array([1.0, 2, 5, 3]); m = np.array([10.0, 20, 35, 12]); w = np.ones(4)
    pgg = np.array([5.0, 3.0, 12.0])
    _, g = GammaGammaModel._loglik(pgg, x, m, w, grad=True)
    for i in range(3):
        h = 1e-6 * pgg[i]
        up, dn = pgg.copy(), pgg.copy()
        up[i] += h
        dn[i] -= h
        fd = (GammaGammaModel._loglik(up, x, m, w, False)[0] - GammaGammaModel._loglik(dn, x, m, w, False)[0]) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-5)


def test_grouping_and_weights_give_the_same_fit(cdnow_summary):
    s = cdnow_summary.iloc[:800]
    doubled = pd.concat([s, s])
    m1 = BetaGeoModel().fit(doubled["frequency"], doubled["recency"], doubled["T"], unit="weeks")
    m2 = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"], unit="weeks", weights=np.full(len(s), 2.0))
    np.testing.assert_allclose([m1.r_, m1.alpha_, m1.a_, m1.b_], [m2.r_, m2.alpha_, m2.a_, m2.b_], rtol=1e-6)
    assert m1.log_likelihood_ == pytest.approx(m2.log_likelihood_, rel=1e-9)
    assert m1.n_customers_ == 1600


def test_recovers_simulated_parameters():
    truth = dict(r=0.5, alpha=6.0, a=0.7, b=3.0)
    d = sample_bgnbd_summary(40000, T=np.random.default_rng(0).uniform(20, 60, 40000),
                             random_state=7, **truth)
    m = BetaGeoModel().fit(d["frequency"], d["recency"], d["T"], unit="weeks")
    assert m.r_ == pytest.approx(truth["r"], rel=0.1)
    assert m.alpha_ == pytest.approx(truth["alpha"], rel=0.15)
    assert m.a_ == pytest.approx(truth["a"], rel=0.25)
    assert m.b_ == pytest.approx(truth["b"], rel=0.35)


def test_units_scale_alpha_only(cdnow_summary):
    s = cdnow_summary
    w = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"], unit="weeks")
    d = BetaGeoModel().fit(s["frequency"], s["recency"] * 7, s["T"] * 7, unit="days")
    assert d.alpha_ == pytest.approx(7 * w.alpha_, rel=1e-4)
    assert d.r_ == pytest.approx(w.r_, rel=1e-4) and d.b_ == pytest.approx(w.b_, rel=1e-4)
    assert d.expected_purchases(70, 2, 213, 272) == pytest.approx(w.expected_purchases(10, 2, 213 / 7, 272 / 7), rel=1e-4)
    assert d.expected_purchases_months(3, 2, 213, 272) == pytest.approx(
        w.expected_purchases_months(3, 2, 213 / 7, 272 / 7), rel=1e-4)


def test_expected_spend_formula():
    gg = GammaGammaModel().fit([1, 2, 3, 4, 2, 6], [10.0, 12, 30, 25, 8, 14])
    p, q, v = gg.p_, gg.q_, gg.v_
    assert gg.expected_spend(3, 20.0) == pytest.approx(p * (v + 3 * 20.0) / (p * 3 + q - 1))
    assert gg.expected_spend(0, 0.0) == pytest.approx(p * v / (q - 1))  # population mean
    s = gg.expected_spend(pd.Series([1.0, 5.0], index=["u", "w"]), pd.Series([50.0, 50.0], index=["u", "w"]))
    assert list(s.index) == ["u", "w"] and s["w"] > s["u"]  # more evidence -> closer to own mean


def test_clv(cdnow_calibration):
    s = cdnow_calibration
    bg = BetaGeoModel().fit_summary(s)
    gg = GammaGammaModel().fit_summary(s)
    clv0 = customer_lifetime_value(bg, gg, s["frequency"], s["recency"], s["T"], s["monetary_value"],
                                   horizon_months=12, annual_discount_rate=0.0)
    # with no discounting CLV = spend * expected purchases over 12 months
    direct = gg.expected_spend(s["frequency"], s["monetary_value"]) * bg.expected_purchases_months(
        12, s["frequency"], s["recency"], s["T"])
    np.testing.assert_allclose(clv0.to_numpy(), direct.to_numpy(), rtol=1e-9)
    clv10 = gg.customer_lifetime_value(bg, s["frequency"], s["recency"], s["T"], s["monetary_value"],
                                       horizon_months=12, annual_discount_rate=0.1, margin=0.3)
    assert list(clv10.index) == list(s.index)
    ratio = (clv10 / (0.3 * clv0)).dropna()
    assert ((ratio < 1) & (ratio > 1 / 1.1)).all()  # discounted, but by at most one year at 10%
    with pytest.raises(ValueError, match="horizon"):
        customer_lifetime_value(bg, gg, [1], [1], [2], [3], horizon_months=0)


# ---------------------------------------------------------------- degenerate data
def test_no_repeat_buyers():
    with pytest.raises(ModelFitError, match="no customer made a repeat purchase"):
        BetaGeoModel().fit([0, 0, 0], [0, 0, 0], [5, 6, 7], unit="days")
    with pytest.raises(ModelFitError, match="repeat"):
        GammaGammaModel().fit([0, 0], [0.0, 0.0])


def test_single_customer():
    with pytest.raises(ModelFitError, match="single customer"):
        BetaGeoModel().fit([2], [5], [10], unit="days")
    with pytest.raises(ModelFitError, match="nobody"):
        BetaGeoModel().fit([], [], [], unit="days")
    with pytest.raises(ModelFitError, match="single repeat buyer"):
        GammaGammaModel().fit([2, 0], [10.0, 0.0])


def test_everything_on_one_day():
    with pytest.raises(ModelFitError, match="T = 0"):
        BetaGeoModel().fit([0, 0, 0], [0, 0, 0], [0, 0, 0], unit="days")
    with pytest.raises(ModelFitError, match="recency = 0"):
        BetaGeoModel().fit([1, 2, 0], [0, 0, 0], [3, 3, 3], unit="days")


def test_bad_spend():
    with pytest.raises(ModelFitError, match="zero or negative spend"):
        GammaGammaModel().fit([1, 2, 3], [10.0, 0.0, 5.0])
    with pytest.raises(ModelFitError, match="zero or negative spend"):
        GammaGammaModel().fit([1, 2, 3], [10.0, -4.0, 5.0])
    with pytest.raises(ModelFitError, match="same average spend"):
        GammaGammaModel().fit([1, 2, 3], [5.0, 5.0, 5.0])


def test_nan_and_inf_inputs():
    with pytest.raises(ModelFitError, match="missing or infinite"):
        BetaGeoModel().fit([1, np.nan, 2], [1, 1, 1], [4, 4, 4], unit="days")
    with pytest.raises(ModelFitError, match="T has 1 missing or infinite"):
        BetaGeoModel().fit([1, 0, 2], [1, 0, 1], [4, np.inf, 4], unit="days")
    with pytest.raises(ModelFitError, match="monetary_value"):
        GammaGammaModel().fit([1, 2], [np.nan, 3.0])


def test_other_input_errors():
    with pytest.raises(ModelFitError, match="recency larger than T"):
        BetaGeoModel().fit([1, 1], [5, 1], [4, 4], unit="days")
    with pytest.raises(ModelFitError, match="whole number"):
        BetaGeoModel().fit([1.5, 1], [1, 1], [4, 4], unit="days")
    with pytest.raises(ModelFitError, match="time unit"):
        BetaGeoModel().fit([1, 1], [1, 1], [4, 4])
    with pytest.raises(ModelFitError, match="unknown time unit"):
        BetaGeoModel().fit([1, 1], [1, 1], [4, 4], unit="fortnights")


def test_not_converged_is_an_error(cdnow_summary):
    s = cdnow_summary
    with pytest.raises(ModelFitError, match="did not converge"):
        BetaGeoModel(max_iter=2, n_restarts=1, random_state=0).fit(
            s["frequency"], s["recency"], s["T"], unit="weeks")


def test_not_fitted():
    with pytest.raises(NotFittedError):
        BetaGeoModel().probability_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        GammaGammaModel().expected_spend([1], [2.0])
    assert issubclass(ModelFitError, ValueError) and issubclass(NotFittedError, ValueError)


def test_estimator_contract():
    m = BetaGeoModel(penalizer=0.01, random_state=3)
    assert vars(m) == {"penalizer": 0.01, "random_state": 3, "n_restarts": 3, "max_iter": 2000}
    d = sample_bgnbd_summary(3000, 0.3, 4.0, 0.8, 2.5, 30, random_state=1)
    out = m.fit(d["frequency"], d["recency"], d["T"], unit="weeks")
    assert out is m and m.r_ > 0
    p0 = BetaGeoModel().fit(d["frequency"], d["recency"], d["T"], unit="weeks")
    # the penalty shrinks the parameters
    assert np.sum(np.square([m.r_, m.alpha_, m.a_, m.b_])) < np.sum(np.square([p0.r_, p0.alpha_, p0.a_, p0.b_]))


def test_large_inputs_are_deduplicated_exactly(bgf):
    rng = np.random.default_rng(5)
    n = 30000
    x = rng.integers(0, 6, n).astype(float)
    T = rng.integers(1, 40, n).astype(float)
    tx = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T), 0.0)
    x[7] = np.nan  # a missing row stays missing and does not disturb the others
    fast = bgf.expected_purchases(8.0, x, tx, T)
    slow = np.concatenate([bgf.expected_purchases(8.0, x[i:i + 10000], tx[i:i + 10000], T[i:i + 10000])
                           for i in range(0, n, 10000)])  # chunks below the dedup threshold
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    np.testing.assert_allclose(fast[~np.isnan(slow)], slow[~np.isnan(slow)], rtol=1e-12)
    gg = GammaGammaModel().fit([1, 2, 3, 4, 2, 6], [10.0, 12, 30, 25, 8, 14])
    m = np.full(n, 20.0)
    clv = customer_lifetime_value(bgf, gg, x, tx, T, m, horizon_months=6, annual_discount_rate=0.1)
    clv_chunks = np.concatenate([
        customer_lifetime_value(bgf, gg, x[i:i + 10000], tx[i:i + 10000], T[i:i + 10000], m[i:i + 10000],
                                horizon_months=6, annual_discount_rate=0.1) for i in range(0, n, 10000)])
    np.testing.assert_allclose(clv[~np.isnan(clv_chunks)], clv_chunks[~np.isnan(clv_chunks)], rtol=1e-12)
