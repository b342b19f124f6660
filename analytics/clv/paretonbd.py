"""Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who Are
They and What Will They Do Next?", Management Science 33(1), 1-24.

While alive a customer buys with a Poisson rate lambda ~ Gamma(r, alpha); her lifetime is
exponential with rate mu ~ Gamma(s, beta), independent of lambda. Expressions follow Fader &
Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions":

    L(r, alpha, s, beta | x, t_x, T)
      = Gamma(r+x) alpha^r beta^s / Gamma(r)
        * [ 1 / ((alpha+T)^(r+x) (beta+T)^s)  +  s * Int_{t_x}^{T} (alpha+u)^-(r+x) (beta+u)^-(s+1) du ]

(the first term: alive at T; the second: died at some u between the last purchase and T).
The note writes the integral as the difference of two Gauss hypergeometric terms in its two
branches (alpha >= beta and alpha < beta). Here the same integral, for either branch, is

    H(t) = Int_t^inf (c1+u)^-e1 (c2+u)^-e2 du
         = (c1+t)^(1-e1) (c2+t)^-e2 * 2F1(e2, 1; a+1; z) / a,    z = (c2-c1)/(c2+t) in [0, 1),

with c1 = min(alpha, beta) and its exponent e1, c2 = max(alpha, beta) with e2, a = r+s+x:
every term of that series is positive (no cancellation), the powers are taken in log space,
and the difference H(t_x) - H(T) is formed as H(t_x) * (1 - exp(log H(T) - log H(t_x))) with
``expm1``, so it stays exact when t_x is close to T and when alpha is close to beta (z -> 0).
H is evaluated once per distinct (frequency, time) pair. Where SciPy's hyp2f1 overflows
(hundreds of purchases with z near 1) the series is evaluated with mpmath instead.
The gradient is analytic except for the derivatives of the series with respect to its
parameters, which are central differences.

P(alive), E[X(t)] and the conditional expectation E[Y(t) | x, t_x, T] are the note's
equations (11), (17) and (18)-(22).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from analytics.clv._base import PurchaseData, _row_codes, as_array, index_of, wrap
from analytics.clv._model import PurchaseModel

__all__ = ["ParetoNBDModel", "sample_paretonbd_summary"]

_FD = 1e-5  # relative step of the central differences in the series' parameters


def _log_hyp_1(e2, c, z):
    """log 2F1(e2, 1; c; z) for c > e2 > 0 and 0 <= z < 1 (elementwise)."""
    with np.errstate(all="ignore"):
        v = special.hyp2f1(e2, 1.0, c, z)
        out = np.log(v)
    bad = ~np.isfinite(out)
    if np.any(bad):
        import mpmath

        with mpmath.workdps(30):
            fixed = [float(mpmath.log(mpmath.hyp2f1(float(a), 1, float(b), float(q))))
                     for a, b, q in zip(np.broadcast_to(e2, out.shape)[bad], np.broadcast_to(c, out.shape)[bad],
                                        np.broadcast_to(z, out.shape)[bad])]
        out = np.array(out, copy=True)
        out[bad] = fixed
    return out


def _log_H(params, x, t, grad: bool):
    """log H(t) for frequency x (see the module docstring) and, with ``grad``, its partial
    derivatives with respect to (r, alpha, s, beta) as a (4, n) array."""
    r, alpha, s, beta = params
    a = r + s + x
    if alpha >= beta:
        c1, c2, e1, e2 = beta, alpha, s + 1.0, r + x
    else:
        c1, c2, e1, e2 = alpha, beta, r + x, s + 1.0
    l1 = np.log(c1 + t)
    l2 = np.log(c2 + t)
    z = (c2 - c1) / (c2 + t)
    c = a + 1.0
    LS = _log_hyp_1(e2, c, z)
    logH = (1.0 - e1) * l1 - e2 * l2 + LS - np.log(a)
    if not grad:
        return logH, None
    # central differences: truncation ~1e-10, rounding ~1e-15 / 1e-5 (forward differences,
    # with SciPy's last-digit noise, left gradient errors the stopping rule could see)
    he = _FD * np.maximum(1.0, e2)
    hc = _FD * np.maximum(1.0, c)
    S_e = (_log_hyp_1(e2 + he, c, z) - _log_hyp_1(e2 - he, c, z)) / (2.0 * he)
    S_c = (_log_hyp_1(e2, c + hc, z) - _log_hyp_1(e2, c - hc, z)) / (2.0 * hc)
    with np.errstate(all="ignore"):
        # d log S / dz = (e2 / c) 2F1(e2+1, 2; c+1; z) / S
        dS = special.hyp2f1(e2 + 1.0, 2.0, c + 1.0, z)
        S_z = np.where(z > 0, e2 / c * dS / np.exp(LS), e2 / c)
    bad = ~np.isfinite(S_z)
    if np.any(bad):  # z-derivative by a central difference where the series overflows
        hz = 1e-7 * np.maximum(z, 1e-3)
        S_z = np.where(bad, (_log_hyp_1(e2, c, np.minimum(z + hz, 1 - 1e-16))
                             - _log_hyp_1(e2, c, np.maximum(z - hz, 0.0))) / (2 * hz), S_z)
    d_c1 = (1.0 - e1) / (c1 + t) - S_z / (c2 + t)
    d_c2 = -e2 / (c2 + t) + S_z * (c1 + t) / (c2 + t) ** 2
    common = S_c - 1.0 / a  # every exponent pair moves a = r + s + x
    if alpha >= beta:  # e1 = s + 1 (with beta), e2 = r + x (with alpha)
        d_r = -l2 + S_e + common
        d_s = -l1 + common
        d_alpha, d_beta = d_c2, d_c1
    else:  # e1 = r + x (with alpha), e2 = s + 1 (with beta)
        d_r = -l1 + common
        d_s = -l2 + S_e + common
        d_alpha, d_beta = d_c1, d_c2
    return logH, np.vstack([d_r, d_alpha, d_s, d_beta])


def _triple_terms(params, x, tx, T, lHR, lHT):
    """Per row: log A (alive at T), log D (died after t_x), log of their sum."""
    r, alpha, s, beta = params
    lA = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    with np.errstate(divide="ignore"):
        lD = np.log(s) + lHR + np.log(-np.expm1(np.minimum(lHT - lHR, 0.0)))
    return lA, lD, np.logaddexp(lA, lD)


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005 note).

    Same interface as ``BetaGeoModel``: ``fit(frequency, recency, T, unit=...)``,
    ``expected_purchases(t, ...)``, ``expected_probability_alive(...)``,
    ``expected_purchases_new_customer(t)``, ``expected_purchases_months(...)``.
    Parameters: purchase rate lambda ~ Gamma(r, alpha), dropout rate mu ~ Gamma(s, beta).

    Hyperparameters as ``BetaGeoModel`` (``penalizer`` is lifetimes' ``penalizer_coef``:
    ``penalizer * (r^2 + alpha^2 + s^2 + beta^2)`` on the mean negative log-likelihood).
    Attributes after ``fit``: ``r_``, ``alpha_``, ``s_``, ``beta_``, ``params_`` and the
    same fit diagnostics as ``BetaGeoModel``.
    """

    _name = "Pareto/NBD"
    _param_names = ("r", "alpha", "s", "beta")

    @staticmethod
    def _loglik(params, d: PurchaseData, grad: bool):
        r, alpha, s, beta = params
        Hx, Ht, hT, hR = d.time_pairs()
        lH, gH = _log_H(params, Hx, Ht, grad)
        lHT, lHR = lH[hT], lH[hR]
        ux, wx = d.ux, d.wx
        total = d.total
        lA, lD, L = _triple_terms(params, d.x, d.tx, d.T, lHR[d.iR], lHT[d.iT])
        ll = (float(np.dot(wx, special.gammaln(r + ux) - special.gammaln(r)))
              + total * (r * np.log(alpha) + s * np.log(beta)) + float(np.dot(d.w, L)))
        if not grad:
            return ll, None
        pA = np.exp(lA - L) * d.w
        pD = d.w - pA
        cR = s * np.exp(lHR[d.iR] - L) * d.w  # d L / d log H(t_x)
        cT = -s * np.exp(lHT[d.iT] - L) * d.w  # d L / d log H(T)
        nT, nR = len(d.Tx), len(d.Rx)
        WA = np.bincount(d.iT, weights=pA, minlength=nT)
        WT = np.bincount(d.iT, weights=cT, minlength=nT)
        WR = np.bincount(d.iR, weights=cR, minlength=nR)
        laT = np.log(alpha + d.TT)
        lbT = np.log(beta + d.TT)
        WH = np.bincount(hT, weights=WT, minlength=len(Hx)) + np.bincount(hR, weights=WR, minlength=len(Hx))
        g = gH @ WH
        g_r = np.dot(wx, special.digamma(r + ux) - special.digamma(r)) + total * np.log(alpha) - np.dot(WA, laT)
        g_alpha = total * r / alpha - np.dot(WA, (r + d.Tx) / (alpha + d.TT))
        g_s = total * np.log(beta) - np.dot(WA, lbT) + pD.sum() / s
        g_beta = total * s / beta - np.dot(WA, s / (beta + d.TT))
        return ll, g + np.array([g_r, g_alpha, g_s, g_beta])

    @staticmethod
    def _start_values(d):
        """log(r, alpha, s, beta): all ones, and a grid of shapes with alpha matched to the
        observed purchase rate and beta to lifetimes of about the observation length."""
        rate = float(np.dot(d.w, d.x) / max(np.dot(d.w, np.maximum(d.T, 1e-9)), 1e-12))
        rate = min(max(rate, 1e-8), 1e8)
        mean_T = float(max(np.dot(d.w, d.T) / d.total, 1e-6))
        starts = [np.zeros(4)]
        for r in (0.3, 1.0, 3.0):
            for s in (0.3, 1.0, 3.0):
                for k in (0.5, 3.0):
                    starts.append(np.log([r, r / rate, s, s * k * mean_T]))
        return starts

    # -- predictions ------------------------------------------------------------------
    def _alive_terms(self, x, tx, T):
        """log P(alive) per row (finite rows only)."""
        params = self._check_fitted()
        codes, k = _row_codes((x, tx, T))
        first = np.empty(k, dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        ux, utx, uT = x[first], tx[first], T[first]
        lHR, _ = _log_H(params, ux, utx, False)
        lHT, _ = _log_H(params, ux, uT, False)
        lA, _lD, L = _triple_terms(params, ux, utx, uT, lHR, lHT)
        return (lA - L)[codes]

    def expected_probability_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T) (Fader & Hardie 2005 note, eq. 11)."""
        self._check_fitted()
        index = index_of(frequency, recency, T)
        x, tx, tt = (as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        x, tx, tt = np.broadcast_arrays(x, tx, tt)
        out = np.full(x.shape, np.nan)
        ok = np.isfinite(x) & np.isfinite(tx) & np.isfinite(tt)
        if ok.any():
            out[ok] = np.exp(self._alive_terms(x[ok], tx[ok], tt[ok]))
        return wrap(out, index, "probability_alive", np.ndim(frequency) == 0)

    def expected_purchases(self, t, frequency, recency, T):
        """E[Y(t) | x, t_x, T]: expected purchases in the next t (note, eq. 22), t in ``unit_``."""
        r, alpha, s, beta = self._check_fitted()
        index = index_of(frequency, recency, T)
        x, tx, tt = (as_array(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        p = np.asarray(self.expected_probability_alive(x, tx, tt))
        t = np.asarray(t, dtype="float64")
        with np.errstate(all="ignore"):
            out = p * (r + x) / (alpha + tt) * (beta + tt) * _dropout_horizon(s, t / (beta + tt))
        return wrap(np.asarray(out, dtype="float64"), index, "expected_purchases",
                    np.ndim(frequency) == 0 and np.ndim(t) == 0)

    def expected_purchases_new_customer(self, t):
        """E[X(t)]: expected purchases of a new customer in a period of length t (note, eq. 17)."""
        r, alpha, s, beta = self._check_fitted()
        t = np.asarray(t, dtype="float64")
        out = r * beta / alpha * _dropout_horizon(s, t / beta)
        return float(out) if np.ndim(out) == 0 else out


def _dropout_horizon(s, y):
    """[1 - (1 + y)^-(s-1)] / (s - 1), and its limit log(1 + y) at s = 1: the expected time
    alive in the next t, in units of (beta + T), of a customer alive now."""
    y = np.asarray(y, dtype="float64")
    if abs(s - 1.0) < 1e-10:
        return np.log1p(y)
    return -np.expm1(-(s - 1.0) * np.log1p(y)) / (s - 1.0)


# ------------------------------------------------------------------ simulation
def sample_paretonbd_summary(n: int, r: float, alpha: float, s: float, beta: float, T, *,
                             random_state=None) -> pd.DataFrame:
    """Draw (frequency, recency, T) for ``n`` customers from the Pareto/NBD process.

    lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta), lifetime ~ Exponential(mu);
    repeat purchases are Poisson(lambda) while alive, observed up to ``T`` (a scalar or one
    value per customer). Given x purchases in the active span min(lifetime, T), the last one
    is at that span times Beta(x, 1). Used by tests and benchmarks (known ground truth).
    """
    rng = np.random.default_rng(random_state)
    T = np.broadcast_to(np.asarray(T, dtype="float64"), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    life = rng.exponential(1.0 / np.maximum(mu, 1e-300))
    active = np.minimum(life, T)
    x = rng.poisson(lam * active)
    tx = np.zeros(n)
    pos = x > 0
    tx[pos] = active[pos] * rng.beta(x[pos], 1.0)
    return pd.DataFrame({"frequency": x.astype("float64"), "recency": tx, "T": T})
