"""BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An
Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284.

While alive a customer buys with a Poisson rate lambda ~ Gamma(r, alpha); after
every purchase she drops out with probability p ~ Beta(a, b). The likelihood of
(x, t_x, T) is the paper's equation (6); conditional expected purchases its
equation (10) and P(alive) Fader, Hardie & Lee's note "Computing P(alive) using
the BG/NBD model" (2008).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from analytics.clv._base import as_array, dedup, index_of, wrap
from analytics.clv._model import PurchaseModel

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
    fallback penalizer was needed).

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

    # -- predictions ------------------------------------------------------------------
    def expected_purchases_new_customer(self, t):
        """E[X(t)]: expected purchases of a new customer in a period of length t (eq. 9)."""
        r, alpha, a, b = self._check_fitted()
        t = np.asarray(t, dtype="float64")
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
