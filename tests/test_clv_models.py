"""BG/NBD and Gamma-Gamma: golden CDNOW figures, predictions, gradients, degenerate data, CLV."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.clv._base import PurchaseData
from analytics.clv_models import (
    BetaGeoModel,
    ParetoNBDModel,
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


@pytest.mark.parametrize("cls,params", [
    (BetaGeoModel, [0.4, 3.0, 1.3, 2.0]), (BetaGeoModel, [0.24, 4.4, 0.79, 2.4]),
    (ParetoNBDModel, [0.55, 10.6, 0.6, 11.7]), (ParetoNBDModel, [0.5, 3.0, 1.3, 20.0]),
    (ParetoNBDModel, [2.0, 30.0, 0.4, 2.0]), (ParetoNBDModel, [1.0, 5.0, 1.0, 5.0]),
])
def test_analytic_gradient_matches_finite_differences(cdnow_summary, cls, params):
    s = cdnow_summary
    data = PurchaseData.build(s["frequency"].to_numpy(float), s["recency"].to_numpy(float),
                              s["T"].to_numpy(float), np.ones(len(s)))
    params = np.array(params)
    _, g = cls._loglik(params, data, True)
    for i in range(4):
        h = 1e-6 * params[i]
        up, dn = params.copy(), params.copy()
        up[i] += h
        dn[i] -= h
        fd = (cls._loglik(up, data, False)[0] - cls._loglik(dn, data, False)[0]) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-4)


def test_gamma_gamma_gradient_matches_finite_differences():
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
    with pytest.raises(ModelFitError, match="only one repeat buyer"):
        GammaGammaModel().fit([2, 0], [10.0, 0.0])


def test_everything_on_one_day():
    with pytest.raises(ModelFitError, match="T = 0"):
        BetaGeoModel().fit([0, 0, 0], [0, 0, 0], [0, 0, 0], unit="days")
    with pytest.raises(ModelFitError, match="recency = 0"):
        BetaGeoModel().fit([1, 2, 0], [0, 0, 0], [3, 3, 3], unit="days")


def test_bad_spend_is_left_out_not_fatal():
    # zero and negative spend: left out of the fit, counted in the note, given the population mean
    gg = GammaGammaModel().fit([1, 2, 3, 4, 2, 6, 1], [10.0, 0.0, 30, 25, -4.0, 14, 12])
    ref = GammaGammaModel().fit([1, 3, 4, 6, 1], [10.0, 30, 25, 14, 12])
    assert gg.n_customers_ == 5 and gg.n_excluded_ == 2
    assert "2 repeat buyers with zero or negative spend were left out" in gg.fit_note_
    assert "population mean" in gg.fit_note_
    assert (gg.p_, gg.q_, gg.v_) == pytest.approx((ref.p_, ref.q_, ref.v_), rel=1e-9)
    spend = gg.expected_customer_spend([2, 2, 0], [0.0, -4.0, 0.0])
    np.testing.assert_allclose(spend, gg.p_ * gg.v_ / (gg.q_ - 1), rtol=1e-12)
    assert gg.mean_spend_ == pytest.approx(gg.p_ * gg.v_ / (gg.q_ - 1))
    with pytest.raises(ModelFitError, match="none of the 3 repeat buyers has a positive spend"):
        GammaGammaModel().fit([1, 2, 3], [0.0, -1.0, np.nan])
    with pytest.raises(ModelFitError, match="only one repeat buyer has a positive spend"):
        GammaGammaModel().fit([1, 2, 3], [10.0, 0.0, -5.0])


def test_same_spend_everywhere_is_a_point_mass():
    gg = GammaGammaModel().fit([1, 2, 3, 0], [5.0, 5.0, 5.0, 0.0])
    assert gg.constant_spend_ == 5.0 and "same average spend" in gg.fit_note_
    np.testing.assert_array_equal(gg.expected_customer_spend([0, 1, 7], [0.0, 5.0, 5.0]), [5.0, 5.0, 5.0])
    back = GammaGammaModel.from_dict(gg.to_dict())
    assert back.expected_customer_spend(3, 5.0) == 5.0


def test_nan_and_inf_inputs():
    with pytest.raises(ModelFitError, match="missing or infinite"):
        BetaGeoModel().fit([1, np.nan, 2], [1, 1, 1], [4, 4, 4], unit="days")
    with pytest.raises(ModelFitError, match="T has 1 missing or infinite"):
        BetaGeoModel().fit([1, 0, 2], [1, 0, 1], [4, np.inf, 4], unit="days")
    with pytest.raises(ModelFitError, match="only one repeat buyer has a positive spend"):
        GammaGammaModel().fit([1, 2], [np.nan, 3.0])
    with pytest.raises(ModelFitError, match="frequency has 1 missing"):
        GammaGammaModel().fit([1, np.nan], [2.0, 3.0])


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
        BetaGeoModel(max_iter=1, n_restarts=0, random_state=0).fit(
            s["frequency"], s["recency"], s["T"], unit="weeks")


def test_not_fitted():
    from sklearn.exceptions import NotFittedError as SkNotFitted

    assert NotFittedError is SkNotFitted  # one class, scikit-learn's
    with pytest.raises(NotFittedError):
        BetaGeoModel().expected_probability_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        ParetoNBDModel().expected_purchases(1.0, [1], [1], [2])
    with pytest.raises(NotFittedError):
        GammaGammaModel().expected_customer_spend([1], [2.0])
    assert issubclass(ModelFitError, ValueError) and issubclass(NotFittedError, ValueError)


def test_estimator_contract():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.utils.validation import check_is_fitted

    m = BetaGeoModel(penalizer=0.01, random_state=3)
    assert m.get_params() == {"penalizer": 0.01, "random_state": 3, "n_restarts": 2, "max_iter": 2000}
    assert vars(m) == m.get_params()  # __init__ stores hyperparameters only
    d = sample_bgnbd_summary(3000, 0.3, 4.0, 0.8, 2.5, 30, random_state=1)
    with pytest.raises(NotFittedError):
        check_is_fitted(m)
    out = m.fit(d["frequency"], d["recency"], d["T"], unit="weeks")
    assert out is m and m.r_ > 0
    check_is_fitted(m)
    twin = clone(m)
    assert twin.get_params() == m.get_params() and not hasattr(twin, "r_")
    p0 = BetaGeoModel().fit(d["frequency"], d["recency"], d["T"], unit="weeks")
    # the penalty shrinks the parameters
    assert np.sum(np.square([m.r_, m.alpha_, m.a_, m.b_])) < np.sum(np.square([p0.r_, p0.alpha_, p0.a_, p0.b_]))
    # model selection drives it through fit(table) / score(table)
    search = GridSearchCV(BetaGeoModel(), {"penalizer": [0.0, 0.5]}, cv=3).fit(d, unit="weeks")
    assert search.best_params_ == {"penalizer": 0.0}  # simulated from the model: no penalty is best
    assert search.best_estimator_.unit_ == "weeks"
    gg = GammaGammaModel(random_state=5)
    assert clone(gg).get_params() == gg.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(gg)


def test_failed_refit_does_not_look_fitted():
    m = BetaGeoModel().fit([1, 0, 2], [3, 0, 4], [5, 6, 7], unit="days")
    with pytest.raises(ModelFitError):
        m.fit([0, 0], [0, 0], [5, 6], unit="days")
    with pytest.raises(NotFittedError):
        m.expected_probability_alive([1], [1], [2])


def test_same_data_same_parameters_every_run():
    gg = [GammaGammaModel().fit([1, 2, 3, 4, 2, 6], [10, 12, 30, 25, 8, 14]).params_ for _ in range(3)]
    assert gg[0] == gg[1] == gg[2]
    d = sample_bgnbd_summary(500, 0.3, 4.0, 0.8, 2.5, 30, random_state=2)
    fits = [BetaGeoModel().fit(d["frequency"], d["recency"], d["T"], unit="weeks").params_ for _ in range(2)]
    assert fits[0] == fits[1]


def test_to_dict_round_trip(bgf):
    back = BetaGeoModel.from_dict(bgf.to_dict())
    assert back.params_ == bgf.params_ and back.unit_ == "weeks"
    assert back.expected_purchases(10, 2, 30.0, 38.0) == bgf.expected_purchases(10, 2, 30.0, 38.0)
    with pytest.raises(ValueError, match="not a ParetoNBDModel"):
        ParetoNBDModel.from_dict(bgf.to_dict())


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


# ---------------------------------------------------------------- Pareto/NBD
@pytest.fixture(scope="module")
def pnbd(cdnow_summary):
    s = cdnow_summary
    return ParetoNBDModel().fit(s["frequency"], s["recency"], s["T"], unit="weeks")


def test_paretonbd_golden_cdnow(pnbd):
    # Fader, Hardie & Lee (2005, Marketing Science), beside the BG/NBD: r = 0.55, alpha = 10.58,
    # s = 0.61, beta = 11.67, LL about -9595; an independent MLE: 0.553 / 10.578 / 0.606 / 11.669
    assert (round(pnbd.r_, 2), round(pnbd.alpha_, 2), round(pnbd.s_, 2), round(pnbd.beta_, 2)) == (
        0.55, 10.58, 0.61, 11.67)
    assert pnbd.r_ == pytest.approx(0.553, abs=6e-4) and pnbd.alpha_ == pytest.approx(10.578, abs=6e-3)
    assert pnbd.s_ == pytest.approx(0.606, abs=6e-4) and pnbd.beta_ == pytest.approx(11.669, abs=6e-3)
    assert pnbd.log_likelihood_ == pytest.approx(-9595.0, abs=0.5)
    assert pnbd.n_customers_ == 2357 and pnbd.unit_ == "weeks"


@pytest.mark.parametrize("params", [None, (2.0, 3.0, 0.3, 40.0), (0.3, 40.0, 1.0, 2.0), (5.0, 7.0, 2.5, 7.0 + 1e-9)])
def test_paretonbd_predictions_against_their_integrals(pnbd, params):
    """P(alive), E[Y(t)] and E[X(t)] against direct mpmath integration over the posterior of
    (lambda, mu): independent of the hypergeometric closed forms and of SciPy's 2F1. Parameters:
    the CDNOW fit (alpha < beta), alpha > beta, s = 1 exactly, alpha = beta (to 1e-9)."""
    import mpmath as mp

    model = pnbd if params is None else ParetoNBDModel.from_dict(
        {"params": dict(zip(("r", "alpha", "s", "beta"), params)), "unit": "weeks"})
    r, alpha, s, beta = (model.params_[k] for k in ("r", "alpha", "s", "beta"))
    mp.mp.dps = 30
    for x, tx, T in [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 10.0, 39.0), (40, 38.0, 39.0), (1, 39.0, 39.0)]:
        # the gamma integrals over lambda and mu are closed form; the time of death u is integrated
        alive = mp.gamma(r + x) / (alpha + T) ** (r + x) * mp.gamma(s) / (beta + T) ** s
        dead = mp.quad(lambda u: mp.gamma(r + x) / (alpha + u) ** (r + x) * s * mp.gamma(s) / (beta + u) ** (s + 1),
                       [tx, T]) if T > tx else 0
        p = alive / (alive + dead)
        assert model.expected_probability_alive(x, tx, T) == pytest.approx(float(p), rel=1e-9, abs=1e-300)
        t = 26.0
        # E[Y(t)] = E[alive * lambda/mu * (1 - exp(-mu t))]
        lam = mp.gamma(r + x + 1) / (alpha + T) ** (r + x + 1)
        mu = mp.quad(lambda m: m ** (s - 2) * mp.e ** (-(beta + T) * m) * -mp.expm1(-m * t), [0, 1, mp.inf])
        ey = lam * mu / (alive + dead)
        assert model.expected_purchases(t, x, tx, T) == pytest.approx(float(ey), rel=1e-8)
    e = model.expected_purchases_new_customer(np.array([0.0, 10.0, 39.0]))
    assert e[0] == 0.0 and np.all(np.diff(e) > 0)
    val = mp.quad(lambda m: m ** (s - 2) * mp.e ** (-beta * m) * -mp.expm1(-m * 39.0), [0, 1, mp.inf])
    assert e[2] == pytest.approx(float(r / alpha * beta ** s / mp.gamma(s) * val), rel=1e-8)


def test_paretonbd_equals_lifetimes(pnbd, cdnow_summary):
    try:
        from lifetimes import ParetoNBDFitter
    except Exception:
        pytest.skip("lifetimes does not import here")
    s = cdnow_summary
    ref = ParetoNBDFitter()
    ref.params_ = pd.Series(pnbd.params_)
    x, tx, T = s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy()
    np.testing.assert_allclose(pnbd.expected_probability_alive(x, tx, T),
                               ref.conditional_probability_alive(x, tx, T), rtol=1e-8)
    np.testing.assert_allclose(pnbd.expected_purchases(10, x, tx, T),
                               ref.conditional_expected_number_of_purchases_up_to_time(10, x, tx, T), rtol=1e-8)
    ll_ref = ParetoNBDFitter._conditional_log_likelihood(
        [pnbd.r_, pnbd.alpha_, pnbd.s_, pnbd.beta_], x, tx, T).sum()
    assert pnbd.log_likelihood_ == pytest.approx(ll_ref, rel=1e-9)


def test_paretonbd_recovers_simulated_parameters():
    from analytics.clv import sample_paretonbd_summary

    truth = dict(r=0.6, alpha=8.0, s=0.8, beta=15.0)
    d = sample_paretonbd_summary(30000, T=np.random.default_rng(0).integers(140, 420, 30000) / 7.0,
                                 random_state=3, **truth)
    d["recency"] = np.floor(d["recency"] * 7.0) / 7.0  # whole days, as a summary in weeks has them
    m = ParetoNBDModel().fit(d, unit="weeks")
    assert m.r_ == pytest.approx(truth["r"], rel=0.1) and m.alpha_ == pytest.approx(truth["alpha"], rel=0.15)
    assert m.s_ == pytest.approx(truth["s"], rel=0.3) and m.beta_ == pytest.approx(truth["beta"], rel=0.4)


def test_paretonbd_quadrature_where_the_series_overflows():
    """Large parameters with z near 1 (a dropout rate nearly the same for everyone) overflow SciPy's
    2F1; H and its derivatives are then integrated. The quadrature equals the series where both work,
    and its gradient equals finite differences where only it works."""
    from scipy import special

    from analytics.clv.paretonbd import _log_H, _log_H_by_quadrature

    p = np.array([0.55, 10.6, 0.6, 11.7])
    x, t = np.array([0.0, 2, 7, 30, 120]), np.array([0.0, 30, 10, 38, 5])
    lh, g = _log_H(p, x, t, True)
    q = _log_H_by_quadrature(p[0] + x, np.full(5, p[2] + 1), p[1], p[3], t)
    np.testing.assert_allclose(q[0], lh, rtol=1e-12)
    np.testing.assert_allclose(q[[1, 3, 2, 4]], g, rtol=1e-8, atol=1e-10)  # (e1, c1, e2, c2) = (r, alpha, s, beta)
    # alpha > beta branch against SciPy where SciPy still works
    e1, e2, c1, c2, tt = 9.43, 1436.6, 0.0888, 35.79, 74.4
    series = (1 - e1) * np.log(c1 + tt) - e2 * np.log(c2 + tt) + np.log(
        special.hyp2f1(e2, 1, e1 + e2, (c2 - c1) / (c2 + tt))) - np.log(e1 + e2 - 1)
    assert _log_H_by_quadrature(np.array([e1]), np.array([e2]), c1, c2, np.array([tt]))[0, 0] == pytest.approx(
        series, rel=1e-12)
    # where SciPy fails: finite values, and a gradient that matches central differences
    p = np.array([0.62, 18.7, 974.8, 3.2e4])
    x, t = np.array([0.0, 1, 5, 11]), np.array([0.0, 10, 28, 10])
    with np.errstate(all="ignore"):
        assert not np.isfinite(special.hyp2f1(p[2] + 1, 1, p[0] + p[2] + 1, (p[3] - p[1]) / p[3]))
    lh, g = _log_H(p, x, t, True)
    assert np.isfinite(lh).all() and np.isfinite(g).all()
    for k in range(4):
        h = 1e-6 * p[k]
        up, dn = p.copy(), p.copy()
        up[k] += h
        dn[k] -= h
        fd = (_log_H(up, x, t, False)[0] - _log_H(dn, x, t, False)[0]) / (2 * h)
        np.testing.assert_allclose(g[k], fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", [BetaGeoModel, ParetoNBDModel])
def test_warm_started_fit_reaches_the_cold_fits_optimum(cls):
    """On data large enough to be screened on a subsample (> 5,000 distinct rows), the fit that
    starts from the subsample's optimum (its run stopped at a looser tolerance) ends where the
    fit ranked and run from the ordinary start values ends; and the value-only objective used
    to rank start values equals the full objective's value."""
    from analytics.clv import sample_paretonbd_summary

    rng = np.random.default_rng(5)
    T = rng.integers(7, 420, 40000) / 7.0
    if cls is ParetoNBDModel:
        d = sample_paretonbd_summary(40000, 0.55, 10.58, 0.61, 11.67, T, random_state=5)
    else:
        d = sample_bgnbd_summary(40000, 0.24, 4.4, 0.79, 2.43, T, random_state=5)
    d["recency"] = np.floor(d["recency"] * 7.0) / 7.0
    warm = type("Warm", (cls,), {"_warm_start": True})().fit(d, unit="weeks")
    cold = type("Cold", (cls,), {"_warm_start": False})().fit(d, unit="weeks")
    assert warm.n_groups_ > 5000
    if cls is ParetoNBDModel:  # the full data's run is the Newton finish, not the L-BFGS-B fallback
        assert warm.optimizer_ == "Newton from the subsample's curvature"
    assert warm.log_likelihood_ >= cold.log_likelihood_ - 1e-10 * abs(cold.log_likelihood_)
    for k in warm.params_:
        assert warm.params_[k] == pytest.approx(cold.params_[k], rel=1e-5)
    data = PurchaseData.build(d["frequency"].to_numpy(), d["recency"].to_numpy(), d["T"].to_numpy(), np.ones(len(d)))
    objective = cls()._objective(data, 0.0)
    for theta in (np.log(list(warm.params_.values())), np.zeros(4), np.log([2.0, 30.0, 0.3, 5.0])):
        assert objective.value(theta) == pytest.approx(objective(theta)[0], rel=1e-13)


def test_sample_of_customers_keeps_the_heavy_groups_and_the_likelihood():
    """The customer sample the Pareto/NBD's warm start runs on: groups of at least tau customers
    kept whole, the others at weight tau, total weight within tau / 2 of the data's; its mean
    log-likelihood (an unbiased estimate) much closer to the full data's than that of every
    k-th group with the weights scaled up, at three parameter points."""
    from analytics.clv import sample_paretonbd_summary

    rng = np.random.default_rng(11)
    n = 200_000
    T = rng.integers(1, 366, n) / 7.0
    d = sample_paretonbd_summary(n, 0.55, 10.58, 0.61, 11.67, T, random_state=11)
    d["recency"] = np.floor(d["recency"] * 7.0) / 7.0
    data = PurchaseData.build(d["frequency"].to_numpy(), d["recency"].to_numpy(), d["T"].to_numpy(), np.ones(n))
    assert data.n_groups > 20_000
    smp = data.sample_customers(2000)
    assert 1900 <= smp.n_groups <= 2100
    tau = (data.total - data.w[data.w >= 200].sum()) / 2000  # about tau: most groups have 1-2 customers
    assert abs(smp.total - data.total) <= tau
    # the heavy groups (non-repeaters of one age) are all there with their own weight
    heavy = {(x, t, T_): w for x, t, T_, w in zip(data.x, data.tx, data.T, data.w) if w >= 2 * tau}
    got = {(x, t, T_): w for x, t, T_, w in zip(smp.x, smp.tx, smp.T, smp.w)}
    assert len(heavy) > 300 and all(got.get(k) == w for k, w in heavy.items())
    old = data.subsample(2000)
    err_new, err_old = [], []
    for p in ([0.55, 10.58, 0.61, 11.67], [0.3, 5.0, 1.0, 30.0], [1.0, 20.0, 0.4, 5.0]):
        full = ParetoNBDModel._loglik(np.array(p), data, False)[0] / data.total
        err_new.append(abs(ParetoNBDModel._loglik(np.array(p), smp, False)[0] / smp.total - full))
        err_old.append(abs(ParetoNBDModel._loglik(np.array(p), old, False)[0] / old.total - full))
    assert max(err_new) < 0.03 and max(err_new) < max(err_old) / 5  # here 0.012 against 0.33


@pytest.mark.parametrize("two_d", [False, True])
def test_hypergeometric_series_against_mpmath(two_d, monkeypatch):
    """log 2F1(e2, 1; c; z) and its derivatives in e2, c and z from the series (term by term,
    and as one array for few points) against mpmath at 30 digits, on a grid up to z = 1/2
    (where the series gives way to SciPy)."""
    import mpmath as mp

    from analytics.clv import paretonbd as P

    monkeypatch.setattr(P, "_SERIES_2D", 10**9 if two_d else 0)
    mp.mp.dps = 30
    try:
        _check_series(P, mp)
    finally:
        mp.mp.dps = 15


def _check_series(P, mp):
    e2s, cs, zs = [], [], []
    for e2 in (0.3, 2.5, 30.0):
        for dc in (0.4, 3.0):
            for z in (0.0, 0.1, 0.3, 0.49, 0.5):
                e2s.append(e2), cs.append(e2 + dc), zs.append(z)
    e2a, ca, za = np.array(e2s), np.array(cs), np.array(zs)
    LS, D = P._log_hyp_series(e2a, ca, za, True)
    LS0, _ = P._log_hyp_series(e2a, ca, za, False)
    np.testing.assert_array_equal(LS, LS0)
    for i, (e2, c, z) in enumerate(zip(e2s, cs, zs)):
        f = lambda a, b, w: mp.log(mp.hyp2f1(a, 1, b, w))  # noqa: E731
        want = [f(e2, c, z), mp.diff(lambda a: f(a, c, z), e2), mp.diff(lambda b: f(e2, b, z), c),
                mp.diff(lambda w: f(e2, c, w), z)]
        got = [LS[i], D[0, i], D[1, i], D[2, i]]
        for g, w in zip(got, want):
            assert g == pytest.approx(float(w), rel=1e-13, abs=1e-14), (e2, c, z)


def test_log_h_against_mpmath_up_to_z_near_1():
    """log h(t) = log Int_t^inf ((c1+u)/(c1+t))^-e1 ((c2+u)/(c2+t))^-e2 du and its derivatives
    in (e1, e2, c1, c2), through every branch of its evaluation (the series for z <= 1/2, SciPy's
    2F1 with central differences above, up to z = 0.999), against mpmath's quadrature."""
    import mpmath as mp

    from analytics.clv import paretonbd as P

    mp.mp.dps = 20
    try:
        _check_log_h(P, mp)
    finally:
        mp.mp.dps = 15


def _check_log_h(P, mp):
    for e1, e2 in ((1.6, 0.55), (4.0, 12.0)):
        c1, c2 = 0.05, 50.0
        ts = np.array([0.0, 3.0, 48.0, 400.0])  # z = 0.999, 0.94, 0.50, 0.11
        lh, Dh = P._log_h(e1, e2, c1, c2, ts, True)
        for j, t in enumerate(ts):
            def logh(a1, a2, b1, b2, t=mp.mpf(t)):
                return mp.log(mp.quad(lambda u: ((b1 + u) / (b1 + t)) ** -a1 * ((b2 + u) / (b2 + t)) ** -a2,
                                      [t, t + 1, t + 100, mp.inf]))
            assert lh[j] == pytest.approx(float(logh(e1, e2, c1, c2)), rel=1e-11)
            for k, (name, v) in enumerate((("e1", e1), ("e2", e2), ("c1", c1), ("c2", c2))):
                args = [e1, e2, c1, c2]

                def part(x, k=k, args=args):
                    a = list(args)
                    a[k] = x
                    return logh(*a)
                want = float(mp.diff(part, v))
                assert Dh[k, j] == pytest.approx(want, rel=1e-7, abs=1e-9), (e1, e2, t, name)
