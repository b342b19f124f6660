"""BG/NBD's limit a, b -> 0 with pi = a/(a+b) fixed: its likelihood, its fit, its predictions.

The limit's likelihood is checked against an independent computation from the two-point
mixture it describes (share pi with dropout probability 1, share 1 - pi with 0) and against
eq. (6) along a = pi eps, b = (1 - pi) eps as eps -> 0; its predictions against the ordinary
formulas at small eps. Data with a planted limit (p drawn from Beta(0.6e-6, 0.4e-6): 0 or 1)
make the ordinary fit run off towards it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from analytics.clv import BetaGeoModel, sample_bgnbd_summary
from analytics.clv._base import PurchaseData
from analytics.clv.bgnbd import _dropout_limit_objective, _loglik_dropout_limit

PI = 0.6


@pytest.fixture(scope="module")
def planted():
    """400 customers from the limit process (pi = 0.6 drop out at their first repeat purchase)."""
    n = 400
    T = np.round(np.random.default_rng(3).uniform(10, 50, n))
    d = sample_bgnbd_summary(n, 1.6, 30.0, PI * 1e-6, (1 - PI) * 1e-6, T, random_state=3)
    return d["frequency"].to_numpy(), d["recency"].to_numpy(), d["T"].to_numpy()


def _data(args):
    return PurchaseData.build(*args, np.ones(len(args[0])))


def _mixture_loglik(r, alpha, pi, x, tx, T):
    """Per customer, from the mixture directly: E over lambda ~ Gamma(r, alpha) of
    (1 - pi) lambda^x e^(-lambda T)  [p = 0: a Poisson process observed to T]
    + pi * (e^(-lambda T) for x = 0, lambda e^(-lambda t_x) for x = 1, 0 for x >= 2)  [p = 1]."""
    def G(k, t):  # E[lambda^k e^(-lambda t)]
        return np.exp(special.gammaln(r + k) - special.gammaln(r) + r * np.log(alpha) - (r + k) * np.log(alpha + t))
    out = 0.0
    for xi, ti, Ti in zip(x, tx, T):
        p1 = G(0, Ti) if xi == 0 else (G(1, ti) if xi == 1 else 0.0)
        out += np.log((1 - pi) * G(xi, Ti) + pi * p1)
    return out


def test_limit_likelihood_is_the_two_point_mixture(planted):
    r, alpha, pi = 1.7, 28.0, 0.35
    ll, _ = _loglik_dropout_limit((r, alpha, special.logit(pi)), _data(planted), False)
    assert ll == pytest.approx(_mixture_loglik(r, alpha, pi, *planted), rel=1e-12)


@pytest.mark.parametrize("pi", [0.05, 0.6, 0.97])
def test_bgnbd_likelihood_tends_to_the_limit(planted, pi):
    r, alpha = 1.7, 28.0
    data = _data(planted)
    lim, _ = _loglik_dropout_limit((r, alpha, special.logit(pi)), data, False)
    gaps = []
    for eps in (1e-3, 1e-4, 1e-5, 1e-6, 1e-7):
        ll, _ = BetaGeoModel._loglik(np.array([r, alpha, pi * eps, (1 - pi) * eps]), data, False)
        gaps.append(ll - lim)
    gaps = np.array(gaps)
    # the gap is O(eps): it falls tenfold with eps (to rounding at the smallest)
    assert np.all(np.abs(gaps[1:]) < 0.2 * np.abs(gaps[:-1]) + 1e-11)
    assert abs(gaps[0]) > 1e-6  # not vacuous: eq. (6) does differ at eps = 1e-3
    ll_tiny, _ = BetaGeoModel._loglik(np.array([r, alpha, pi * 1e-10, (1 - pi) * 1e-10]), data, False)
    assert ll_tiny == pytest.approx(lim, rel=1e-11)


def test_limit_gradient_matches_finite_differences(planted):
    data = _data(planted)
    params = np.array([1.7, 28.0, 0.4])
    _, g = _loglik_dropout_limit(params, data, True)
    for i in range(3):
        h = 1e-6 * max(abs(params[i]), 1.0)
        up, dn = params.copy(), params.copy()
        up[i] += h
        dn[i] -= h
        fd = (_loglik_dropout_limit(up, data, False)[0] - _loglik_dropout_limit(dn, data, False)[0]) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-6, abs=1e-5)


def test_fit_reaches_the_limit_and_beats_where_the_ordinary_fit_stops(planted, monkeypatch):
    model = BetaGeoModel().fit(*planted, unit="weeks")
    assert model.optimizer_.startswith("limit")
    assert model.a_ + model.b_ == pytest.approx(1e-10)
    pi = model.a_ / (model.a_ + model.b_)
    assert abs(pi - PI) < 0.1  # the planted share of customers who drop out at once
    data = _data(planted)
    # a stationary point of the limit model's likelihood
    phi = np.array([np.log(model.r_), np.log(model.alpha_), special.logit(pi)])
    assert np.max(np.abs(_dropout_limit_objective(data)(phi)[1])) < 1e-6
    # at least as good as eq. (6) anywhere along the ridge through it
    for eps in (1e-4, 1e-6, 1e-8):
        ll, _ = BetaGeoModel._loglik(np.array([model.r_, model.alpha_, pi * eps, (1 - pi) * eps]), data, False)
        assert model.log_likelihood_ >= ll - 1e-12 * abs(ll)
    # and strictly better than where the ordinary fit stops on its way there
    monkeypatch.setattr(BetaGeoModel, "_boundary_fit", lambda self, data, objective, opt: opt)
    plain = BetaGeoModel().fit(*planted, unit="weeks")
    assert plain.ran_off_ and min(plain.a_, plain.b_) < 1e-6
    assert model.log_likelihood_ > plain.log_likelihood_ + 1e-7


def test_interior_fits_are_left_alone():
    s = sample_bgnbd_summary(3000, 0.24, 4.4, 0.79, 2.4, 39.0, random_state=1)
    model = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"], unit="weeks")
    assert not model.optimizer_.startswith("limit") and model.a_ > 0.1 and model.b_ > 0.1


def _at(r, alpha, a, b):
    m = BetaGeoModel()
    m._set_params(np.array([r, alpha, a, b]), "weeks")
    return m


X = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 5.0])
TX = np.array([0.0, 0.0, 2.0, 15.0, 39.0, 20.0, 30.0])
TT = np.array([40.0, 5.0, 40.0, 40.0, 40.0, 45.0, 50.0])


def test_limit_predictions_are_the_mixtures():
    r, alpha, pi = 1.7, 28.0, 0.35
    m = _at(r, alpha, pi * 1e-10, (1 - pi) * 1e-10)
    # P(alive): only a p = 0 customer is alive after a repeat purchase; after one, Bayes over the types
    dead = pi * (alpha + TX) ** -(r + 1) / ((1 - pi) * (alpha + TT) ** -(r + 1) + pi * (alpha + TX) ** -(r + 1))
    expect = np.where(X == 1, 1 - dead, 1.0)
    # (to O(a + b): P(alive) is eq. (6)'s own at a + b = 1e-10, 1 - O(1e-10) for x >= 2)
    assert np.asarray(m.expected_probability_alive(X, TX, TT)) == pytest.approx(expect, rel=1e-9)
    t = 12.0
    k = t / (alpha + TT)
    cond = np.where(X > 0, expect * (r + X) * k, (1 - pi) * r * k + pi * (1 - (1 + k) ** -r))
    assert np.asarray(m.expected_purchases(t, X, TX, TT)) == pytest.approx(cond, rel=1e-9)
    new = (1 - pi) * r * t / alpha + pi * (1 - (alpha / (alpha + t)) ** r)
    assert m.expected_purchases_new_customer(t) == pytest.approx(new, rel=1e-12)


@pytest.mark.parametrize("pi", [0.05, 0.6, 0.97])
def test_limit_predictions_continue_the_ordinary_ones(pi):
    r, alpha, t = 1.7, 28.0, np.array([1.0, 12.0, 52.0])
    lim = _at(r, alpha, pi * 1e-10, (1 - pi) * 1e-10)
    L = (np.asarray(lim.expected_purchases(t[:, None], X[None, :], TX[None, :], TT[None, :])),
         np.asarray(lim.expected_probability_alive(X, TX, TT)), np.asarray(lim.expected_purchases_new_customer(t)))
    assert all(np.all(np.isfinite(v)) and np.all(v > 0) for v in L)
    errs = []
    for eps in (1e-4, 1e-5, 1e-6):  # the ordinary (hypergeometric) formulas
        m = _at(r, alpha, pi * eps, (1 - pi) * eps)
        E = (np.asarray(m.expected_purchases(t[:, None], X[None, :], TX[None, :], TT[None, :])),
             np.asarray(m.expected_probability_alive(X, TX, TT)), np.asarray(m.expected_purchases_new_customer(t)))
        errs.append(max(float(np.max(np.abs(e / l - 1))) for e, l in zip(E, L)))
    errs = np.array(errs)
    assert np.all(errs < 50 * np.array([1e-4, 1e-5, 1e-6]))
    assert np.all(errs[1:] < 0.2 * errs[:-1])  # O(eps)


def test_limit_model_scalars_series_and_round_trip(planted):
    model = BetaGeoModel().fit(*planted, unit="weeks")
    s = pd.Series(X, index=list("abcdefg"))
    p = model.expected_probability_alive(s, TX, TT)
    e = model.expected_purchases(10.0, s, TX, TT)
    assert list(p.index) == list("abcdefg") and np.isfinite(e).all()
    assert isinstance(model.expected_purchases(10.0, 1.0, 5.0, 40.0), float)
    back = BetaGeoModel.from_dict(model.to_dict())
    assert np.asarray(back.expected_purchases(10.0, X, TX, TT)) == pytest.approx(np.asarray(e), rel=1e-15)
    assert back.log_likelihood(*planted) == pytest.approx(model.log_likelihood_, rel=1e-14)
