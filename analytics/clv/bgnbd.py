"""BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An
Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284.

While alive a customer buys with a Poisson rate lambda ~ Gamma(r, alpha); after
every purchase she drops out with probability p ~ Beta(a, b). The likelihood of
(x, t_x, T) is the paper's equation (6); conditional expected purchases its
equation (10) and P(alive) Fader, Hardie & Lee's note "Computing P(alive) using
the BG/NBD model" (2008).

On small data the maximum likelihood can lie on the boundary a, b -> 0 with pi = a/(a+b)
fixed. There Beta(a, b) becomes a two-point mixture: a share pi of customers have p = 1 (they
drop out right after their first repeat purchase) and 1 - pi have p = 0 (they never drop out).
With G(x, t) = Gamma(r+x)/Gamma(r) alpha^r (alpha+t)^-(r+x), eq. (6) tends to

    x = 0:   G(0, T)
    x = 1:   (1 - pi) G(1, T) + pi G(1, t_x)
    x >= 2:  (1 - pi) G(x, T)

(B(a, b+x)/B(a, b) -> 1 - pi for x >= 1, and B(a+1, b+x-1)/B(a, b) -> pi for x = 1, 0 for
x >= 2). Where the ordinary fit runs off towards that boundary, this limit model is fitted in
(r, alpha, logit pi) and kept if its likelihood is higher; the fitted model then holds
a = pi * 1e-10, b = (1 - pi) * 1e-10, which eq. (6) evaluates to the limit's value within
about 1e-10 relative, and its predictions use the limit's closed forms (below).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from analytics.clv._base import ModelFitError, as_array, dedup, index_of, wrap
from analytics.clv._model import PurchaseModel
from analytics.clv.optimizer import DIVERGED, Optimum, minimize_robust

_LIMIT_AB = 1e-10  # a + b with which a fitted limit model a, b -> 0 is held
_AB_SMALL = 1e-8  # below this a + b, predictions use the limit's closed forms (error O(a + b))

__all__ = ["BetaGeoModel", "sample_bgnbd_summary"]


class BetaGeoModel(PurchaseModel):
    """BG/NBD model (Fader, Hardie & Lee 2005, Marketing Science 24(2) 275-284).

    Parameters
    ----------
    penalizer : float
        L2 penalty ``penalizer * (r^2 + alpha^2 + a^2 + b^2)`` added to the mean negative
        log-likelihood, as lifetimes' ``penalizer_coef``; 0 = plain maximum likelihood.
    random_state : int or None
        Seeds the random restarts tried only after the deterministic start values
        (moment-based guesses and a small grid) fail; a fixed 0 by default, so the same
        data always give the same parameters.
    n_restarts : int
        Random restarts to try after the deterministic starts.
    max_iter : int
        Iteration limit of each local optimisation (L-BFGS-B, Nelder-Mead polish).

    Attributes after ``fit``: ``r_``, ``alpha_``, ``a_``, ``b_``, ``params_`` (dict),
    ``log_likelihood_`` (total, unpenalized), ``n_customers_``, ``unit_``, ``n_groups_``
    (distinct (frequency, recency, T) rows), ``n_iter_``, ``penalizer_``, ``optimizer_``
    (how the optimum was reached), ``gradient_max_``, ``ran_off_`` (a parameter ran off
    towards 0 or infinity), ``fit_note_`` (None, or from ``fit_bgnbd_robust``: why a
    fallback penalizer was needed). Where the maximum lies at the limit a, b -> 0 (module
    docstring) ``optimizer_`` starts with "limit:", ``a_ + b_`` is 1e-10 and ``a_ / (a_ + b_)``
    is the share of customers who drop out at their first repeat purchase (the rest never do).

    Method names follow PyMC-Marketing's clv module (``expected_purchases``,
    ``expected_probability_alive``, ``expected_purchases_new_customer``); they take
    arrays (frequency, recency, T) rather than a DataFrame, and time arguments in the
    fitted unit ``unit_``.
    """

    _name = "BG/NBD"
    _param_names = ("r", "alpha", "a", "b")

    # -- likelihood -----------------------------------------------------------------
    @staticmethod
    def _loglik(params, d, grad: bool):
        """Total log-likelihood (eq. 6) and its gradient w.r.t. (r, alpha, a, b).

        The frequency-only terms are evaluated once per distinct frequency, the
        (x, T) and (x, t_x) terms once per distinct pair; per distinct row only the
        log-sum of the two.
        """
        r, alpha, a, b = params
        ux, wx = d.ux, d.wx
        A1 = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
        A2 = (special.gammaln(a + b) + special.gammaln(b + ux) - special.gammaln(b)
              - special.gammaln(a + b + ux))
        ll = float(np.dot(wx, A1 + A2))
        laT = np.log(alpha + d.TT)
        A3 = -(r + d.Tx) * laT
        laR = np.log(alpha + d.Rt)
        bx = b + (np.maximum(d.Rx, 1.0) - 1.0)  # b + x - 1: exact for x = 1 however small b is
        A4 = np.where(d.Rx > 0, np.log(a) - np.log(bx) - (r + d.Rx) * laR, -np.inf)
        a3 = A3[d.iT]
        a4 = A4[d.iR]
        e = np.exp(-np.abs(a4 - a3))
        ll += float(np.dot(d.w, np.maximum(a3, a4) + np.log1p(e)))
        if not grad:
            return ll, None
        w4 = np.where(a4 > a3, 1.0 / (1.0 + e), e / (1.0 + e)) * d.w  # weight of the "dropped" branch
        W4 = np.bincount(d.iR, weights=w4, minlength=len(d.Rx))
        W3 = d.wT - np.bincount(d.iT, weights=w4, minlength=len(d.Tx))
        dA1_r = special.digamma(r + ux) - special.digamma(r) + np.log(alpha)
        g_r = np.dot(wx, dA1_r) - np.dot(W3, laT) - np.dot(W4, laR)
        g_alpha = (r / alpha) * wx.sum() - np.dot(W3, (r + d.Tx) / (alpha + d.TT)) - np.dot(
            W4, (r + d.Rx) / (alpha + d.Rt))
        dA2_a = special.digamma(a + b) - special.digamma(a + b + ux)
        g_a = np.dot(wx, dA2_a) + W4.sum() / a
        dA2_b = (special.digamma(a + b) + special.digamma(b + ux) - special.digamma(b)
                 - special.digamma(a + b + ux))
        g_b = np.dot(wx, dA2_b) - np.dot(W4, 1.0 / bx)
        return ll, np.array([g_r, g_alpha, g_a, g_b])

    @staticmethod
    def _start_values(d):
        """log(r, alpha, a, b) to start from: all ones (where the published fits start), and a
        grid of shapes with alpha matched to the observed purchase rate."""
        rate = float(np.dot(d.w, d.x) / max(np.dot(d.w, np.maximum(d.T, 1e-9)), 1e-12))
        rate = min(max(rate, 1e-8), 1e8)
        starts = [np.zeros(4)]
        for r in (0.3, 1.0, 3.0):
            for a in (0.5, 1.5):
                for b in (1.0, 4.0):
                    starts.append(np.log([r, r / rate, a, b]))
        return starts

    def _boundary_fit(self, data, objective, opt):
        """The limit a, b -> 0 (pi = a/(a+b) fixed; module docstring) where the fit ``opt`` ran
        off towards it: the limit model fitted from where the run stopped (and a few values of
        pi), kept when its likelihood is higher. The ordinary fit stops there (a parameter
        below 1e-6) a little short of the limit's likelihood."""
        la, lb = float(opt.x[2]), float(opt.x[3])
        if not (opt.ran_off and min(la, lb) < -DIVERGED):
            return opt
        lim_objective = _dropout_limit_objective(data)
        head = np.array([opt.x[0], opt.x[1], np.clip(la - lb, -20.0, 20.0)])
        starts = [head] + [np.array([opt.x[0], opt.x[1], u]) for u in (-2.0, 0.0, 2.0)]
        try:
            lim = minimize_robust(lim_objective, starts, what=self._name, random_state=self.random_state,
                                  n_restarts=int(self.n_restarts), max_iter=int(self.max_iter))
        except ModelFitError:
            return opt
        theta = _expand_dropout_limit(lim.x)
        f = objective.value(theta)  # the full model at a + b = 1e-10: what the fit reports
        if not (np.isfinite(f) and f < opt.fun):
            return opt
        return Optimum(theta, float(f), lim.grad_max, opt.nit + lim.nit, opt.nfev + lim.nfev,
                       "limit: dropout probability 0 or 1 (a, b -> 0)", opt.start)

    # -- predictions ------------------------------------------------------------------
    def expected_purchases_new_customer(self, t):
        """E[X(t)]: expected purchases of a new customer in a period of length t (eq. 9)."""
        r, alpha, a, b = self._check_fitted()
        t = np.asarray(t, dtype="float64")
        if a + b < _AB_SMALL:  # the limit a, b -> 0: (1 - pi) r t / alpha + pi (1 - (alpha/(alpha+t))^r)
            out = _alive_expected_limit(r, alpha, a / (a + b), 0.0, 0.0, t)
            return float(out) if np.ndim(out) == 0 else out
        with np.errstate(all="ignore"):
            hyp = special.hyp2f1(r, b, a + b - 1.0, t / (alpha + t))
            out = (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)) ** r * hyp)
        bad = ~np.isfinite(out) & np.isfinite(t)
        if np.any(bad):
            tb = np.broadcast_to(t, np.shape(out))[bad]
            out = np.array(out, dtype=float, copy=True)
            out[bad] = _expected_by_quadrature(r, alpha, a, b, np.zeros_like(tb), np.zeros_like(tb), tb)
        return float(out) if np.ndim(out) == 0 else out

    def expected_probability_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T) (Fader, Hardie & Lee 2008 note; 1 for x = 0)."""
        r, alpha, a, b = self._check_fitted()
        index = index_of(frequency, recency, T)
        x, tx, tt = (as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        with np.errstate(all="ignore"):
            log_ratio = (r + x) * (np.log(alpha + tt) - np.log(alpha + tx))
            log_term = np.log(a) - np.log(b + (np.maximum(x, 1.0) - 1.0)) + log_ratio
            p = np.where(x > 0, special.expit(-log_term), 1.0)
            p = np.where(np.isnan(x) | np.isnan(tx) | np.isnan(tt), np.nan, p)
        return wrap(p, index, "probability_alive", np.ndim(frequency) == 0)

    def expected_purchases(self, t, frequency, recency, T):
        """E[Y(t) | x, t_x, T]: expected purchases in the next t (eq. 10), t in ``unit_``."""
        r, alpha, a, b = self._check_fitted()
        index = index_of(frequency, recency, T)
        x, tx, tt = (as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        t = np.asarray(t, dtype="float64")
        if t.ndim == 0:
            dd = dedup(x, tx, tt)
            if dd is not None:
                (ux, utx, utt), inv = dd
                out = np.asarray(self.expected_purchases(t, ux, utx, utt))[inv]
                return wrap(out, index, "expected_purchases")
        if a + b < _AB_SMALL:  # the limit a, b -> 0: P(alive) as ever, times the limit's E[. | alive]
            with np.errstate(all="ignore"):
                p_alive = np.asarray(self.expected_probability_alive(x, tx, tt))
                out = p_alive * _alive_expected_limit(r, alpha, a / (a + b), x, tt, t)
            return wrap(np.asarray(out, dtype="float64"), index, "expected_purchases",
                        np.ndim(frequency) == 0 and np.ndim(t) == 0)
        with np.errstate(all="ignore"):
            hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + tt + t))
            first = (a + b + x - 1.0) / (a - 1.0) * (
                1.0 - ((alpha + tt) / (alpha + tt + t)) ** (r + x) * hyp)
            p_alive = np.asarray(self.expected_probability_alive(x, tx, tt))
            out = first * p_alive
        out = np.asarray(out, dtype="float64")
        bad = ~np.isfinite(out) & np.isfinite(x) & np.isfinite(tx) & np.isfinite(tt) & np.isfinite(t)
        if np.any(bad):  # the hypergeometric series fails for large parameters: integrate instead
            shape = np.broadcast_shapes(x.shape, t.shape)
            xb, txb, ttb, tb = (np.broadcast_to(v, shape)[bad] for v in (x, tx, tt, t))
            out = np.array(np.broadcast_to(out, shape), copy=True)
            out[bad] = _expected_by_quadrature(r, alpha, a, b, xb, ttb, tb) * np.broadcast_to(
                p_alive, shape)[bad]
        return wrap(out, index, "expected_purchases",
                    np.ndim(frequency) == 0 and np.ndim(t) == 0)

    # old names, kept for callers written against them
    def probability_alive(self, frequency, recency, T):
        """Alias of ``expected_probability_alive``."""
        return self.expected_probability_alive(frequency, recency, T)


def _loglik_dropout_limit(params, d, grad: bool):
    """Total log-likelihood of the limit a, b -> 0 with pi = a/(a+b) fixed (module docstring)
    and its gradient with respect to (r, alpha, u), u = logit(pi) = log(a/b).

    Laid out as ``BetaGeoModel._loglik`` with the limits of its terms: the factor
    B(a, b+x)/B(a, b) -> 1 - pi for x >= 1 (1 for x = 0), and the "dropped after the last
    purchase" branch relative to it, a/(b+x-1) (alpha+t_x)^-(r+x) -> pi/(1-pi) (alpha+t_x)^-(r+1)
    for x = 1 and 0 otherwise."""
    r, alpha, u = params
    ux, wx = d.ux, d.wx
    log_q = -float(np.logaddexp(0.0, u))  # log(1 - pi)
    w_rep = float(wx[ux > 0].sum())
    A1 = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
    ll = float(np.dot(wx, A1)) + w_rep * log_q
    laT = np.log(alpha + d.TT)
    A3 = -(r + d.Tx) * laT
    laR = np.log(alpha + d.Rt)
    A4 = np.where(d.Rx == 1, u - (r + 1.0) * laR, -np.inf)
    a3 = A3[d.iT]
    a4 = A4[d.iR]
    e = np.exp(-np.abs(a4 - a3))
    ll += float(np.dot(d.w, np.maximum(a3, a4) + np.log1p(e)))
    if not grad:
        return ll, None
    w4 = np.where(a4 > a3, 1.0 / (1.0 + e), e / (1.0 + e)) * d.w
    W4 = np.bincount(d.iR, weights=w4, minlength=len(d.Rx))
    W3 = d.wT - np.bincount(d.iT, weights=w4, minlength=len(d.Tx))
    dA1_r = special.digamma(r + ux) - special.digamma(r) + np.log(alpha)
    g_r = np.dot(wx, dA1_r) - np.dot(W3, laT) - np.dot(W4, laR)
    g_alpha = (r / alpha) * wx.sum() - np.dot(W3, (r + d.Tx) / (alpha + d.TT)) - np.dot(
        W4, (r + d.Rx) / (alpha + d.Rt))
    g_u = -special.expit(u) * w_rep + W4.sum()
    return ll, np.array([g_r, g_alpha, g_u])


def _dropout_limit_objective(d):
    """The limit model's mean negative log-likelihood of phi = (log r, log alpha, logit pi) with
    its gradient (and ``.value``: without it), as ``PurchaseModel._objective`` for the model."""
    total = d.total

    def objective(phi):
        r, alpha = np.exp(phi[:2])
        ll, g = _loglik_dropout_limit((r, alpha, phi[2]), d, True)
        f = -ll / total
        val = -g / total * np.array([r, alpha, 1.0])
        if not np.isfinite(f) or not np.all(np.isfinite(val)):
            return np.inf, np.zeros_like(phi)
        return f, val

    def value(phi):
        r, alpha = np.exp(phi[:2])
        f = -_loglik_dropout_limit((r, alpha, phi[2]), d, False)[0] / total
        return f if np.isfinite(f) else np.inf

    objective.value = value
    return objective


def _expand_dropout_limit(phi) -> np.ndarray:
    """log(r, alpha, a, b) holding the limit model phi = (log r, log alpha, logit pi) at
    a + b = 1e-10."""
    u = float(phi[2])
    base = np.log(_LIMIT_AB)
    return np.array([phi[0], phi[1], base - np.logaddexp(0.0, -u), base - np.logaddexp(0.0, u)])


def _alive_expected_limit(r, alpha, pi, x, T, t):
    """E[purchases in (T, T+t] | alive at T, x] in the limit a, b -> 0. A customer alive after
    a repeat purchase has p = 0 (the p = 1 ones dropped out at it): Poisson with
    lambda ~ Gamma(r+x, alpha+T), (r+x) t/(alpha+T). Without one (x = 0) p is still 1 with
    probability pi, and such a customer buys once at most: (1-pi) r k + pi (1 - (1+k)^-r), with
    k = t/(alpha+T)."""
    x = np.asarray(x, dtype="float64")
    k = np.asarray(t, dtype="float64") / (alpha + np.asarray(T, dtype="float64"))
    none = (1.0 - pi) * r * k - pi * np.expm1(-r * np.log1p(k))
    return np.where(x > 0, (r + x) * k, none)


def _expected_by_quadrature(r, alpha, a, b, x, T, t, n_nodes: int = 64) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T] by Gauss-Jacobi quadrature over the dropout
    probability: given alive, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x), and
    E[X(t) | lambda, p] = (1 - exp(-lambda p t)) / p, so the lambda integral is closed form
    and p is integrated numerically. Used where the hypergeometric form overflows."""
    out = np.empty(len(x))
    for xv in np.unique(x):
        sel = x == xv
        nodes, weights = special.roots_jacobi(n_nodes, b + xv - 1.0, a - 1.0)
        p = (nodes + 1.0) / 2.0  # Beta(a, b + x) on (0, 1)
        weights = weights / weights.sum()
        k = (t[sel] / (alpha + T[sel]))[:, None]
        vals = -np.expm1(-(r + xv) * np.log1p(k * p[None, :])) / p[None, :]
        out[sel] = vals @ weights
    return out


# ------------------------------------------------------------------ simulation
def sample_bgnbd_summary(n: int, r: float, alpha: float, a: float, b: float, T, *,
                         random_state=None) -> pd.DataFrame:
    """Draw (frequency, recency, T) for ``n`` customers from the BG/NBD process.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); purchases form a Poisson(lambda)
    process after the first purchase at time 0; after each repeat purchase the
    customer drops out with probability p. ``T`` is a scalar or one value per
    customer. Exact and vectorized: x = min(N(T), D) with N(T) ~ Poisson(lambda T)
    and D ~ Geometric(p), and the x-th of N uniform arrival times ~ T * Beta(x, N-x+1).
    Used by tests and benchmarks (known ground truth).
    """
    rng = np.random.default_rng(random_state)
    T = np.broadcast_to(np.asarray(T, dtype="float64"), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    N = rng.poisson(lam * T)
    D = rng.geometric(np.clip(p, 1e-12, 1.0))
    x = np.minimum(N, D)
    tx = np.zeros(n)
    pos = x > 0
    tx[pos] = T[pos] * rng.beta(x[pos], N[pos] - x[pos] + 1)
    return pd.DataFrame({"frequency": x.astype("float64"), "recency": tx, "T": T})
