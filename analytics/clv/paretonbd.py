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
(large parameters with z near 1: hundreds of purchases, or a dropout rate nearly the same
for everyone) H and its derivatives are integrated numerically instead.
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
    """log 2F1(e2, 1; c; z) for c > e2 > 0 and 0 <= z < 1 by SciPy (NaN where it overflows)."""
    with np.errstate(all="ignore"):
        return np.log(special.hyp2f1(e2, 1.0, c, z))


def _log_H(params, x, t, grad: bool):
    """log H(t) for frequency x (see the module docstring) and, with ``grad``, its partial
    derivatives with respect to (r, alpha, s, beta) as a (4, n) array."""
    r, alpha, s, beta = params
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    a = r + s + x
    if alpha >= beta:
        c1, c2, e1, e2 = beta, alpha, s + 1.0, r + x
    else:
        c1, c2, e1, e2 = alpha, beta, r + x, s + 1.0
    e1 = np.broadcast_to(e1, x.shape)
    e2 = np.broadcast_to(e2, x.shape)
    l1 = np.log(c1 + t)
    l2 = np.log(c2 + t)
    z = (c2 - c1) / (c2 + t)
    c = a + 1.0
    # where SciPy's 2F1 is slow and then fails (large e2 with z near 1), go to quadrature at once
    hard = (e2 > 100.0) & (z > 0.9)
    if np.any(hard):
        z = np.where(hard, 0.0, z)  # a cheap placeholder; these entries are replaced below
    LS = _log_hyp_1(e2, c, z)
    logH = (1.0 - e1) * l1 - e2 * l2 + LS - np.log(a)
    if grad:
        # central differences: truncation ~1e-10, rounding ~1e-15 / 1e-5 (forward differences,
        # with SciPy's last-digit noise, left gradient errors the stopping rule could see)
        he = _FD * np.maximum(1.0, e2)
        hc = _FD * np.maximum(1.0, c)
        S_e = (_log_hyp_1(e2 + he, c, z) - _log_hyp_1(e2 - he, c, z)) / (2.0 * he)
        S_c = (_log_hyp_1(e2, c + hc, z) - _log_hyp_1(e2, c - hc, z)) / (2.0 * hc)
        with np.errstate(all="ignore"):
            # d log S / dz = (e2 / c) 2F1(e2+1, 2; c+1; z) / S
            S_z = np.where(z > 0, e2 / c * special.hyp2f1(e2 + 1.0, 2.0, c + 1.0, z) / np.exp(LS), e2 / c)
        D_e1 = -l1 + S_c - 1.0 / a
        D_e2 = -l2 + S_e + S_c - 1.0 / a
        D_c1 = (1.0 - e1) / (c1 + t) - S_z / (c2 + t)
        D_c2 = -e2 / (c2 + t) + S_z * (c1 + t) / (c2 + t) ** 2
        bad = ~(np.isfinite(logH) & np.isfinite(D_e1) & np.isfinite(D_e2) & np.isfinite(D_c1) & np.isfinite(D_c2))
    else:
        bad = ~np.isfinite(logH)
    bad |= hard
    if np.any(bad):
        # SciPy's 2F1 overflows for large parameters with z near 1 (hundreds of purchases, or a
        # dropout rate that is nearly the same for everyone): integrate there instead
        q = _log_H_by_quadrature(e1[bad], e2[bad], c1, c2, t[bad])
        logH = np.array(logH, copy=True)
        logH[bad] = q[0]
        if grad:
            D_e1, D_e2, D_c1, D_c2 = (np.array(v, copy=True) for v in (D_e1, D_e2, D_c1, D_c2))
            D_e1[bad], D_e2[bad], D_c1[bad], D_c2[bad] = q[1], q[2], q[3], q[4]
    if not grad:
        return logH, None
    if alpha >= beta:  # e1 = s + 1 (with beta), e2 = r + x (with alpha)
        d_r, d_s, d_alpha, d_beta = D_e2, D_e1, D_c2, D_c1
    else:  # e1 = r + x (with alpha), e2 = s + 1 (with beta)
        d_r, d_s, d_alpha, d_beta = D_e1, D_e2, D_c1, D_c2
    return logH, np.vstack([d_r, d_alpha, d_s, d_beta])


_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
_PANELS = 64
_DROP = 46.0  # the integrand is integrated down to exp(-46) of its maximum


def _log_H_by_quadrature(e1, e2, c1: float, c2: float, t):
    """log H(t) and d log H / d(e1, e2, c1, c2) by composite Gauss-Legendre quadrature.

    In l = log(c1 + u) the integrand of H is exp(phi(l)), phi = (1-e1) l - e2 log(d + e^l) with
    d = c2 - c1 >= 0: concave, with its maximum at l0 = log(c1 + t) or where phi' = 0 (closed
    form). It is integrated from l0 to where phi has fallen 46 below its maximum, on 64 panels
    of equal "length + variation of phi" (so flat stretches and steep falls both get narrow
    enough panels: each panel spans at most about one unit of l and of phi), 8 nodes each;
    the derivatives' integrands use the same nodes. About 1e-12 relative accuracy, vectorized
    over the entries."""
    e1 = np.asarray(e1, dtype=float)[:, None]
    e2 = np.asarray(e2, dtype=float)[:, None]
    d = float(c2 - c1)
    ld = np.log(d) if d > 0 else -np.inf
    l0 = np.log(c1 + np.asarray(t, dtype=float))[:, None]

    def phi(lv):
        return (1.0 - e1) * lv - e2 * np.logaddexp(ld, lv)

    with np.errstate(divide="ignore", invalid="ignore"):
        slope0 = 1.0 - e1 - e2 * np.exp(l0 - np.logaddexp(ld, l0))
        interior = (slope0 > 0) & (d > 0)
        lm = np.where(interior, np.maximum(l0, np.log(np.where(interior, d * (1.0 - e1) / (e1 + e2 - 1.0), 1.0))), l0)
    pm = phi(lm)
    target = pm - _DROP
    hi = lm + 1.0
    for _ in range(200):  # phi falls with slope -> -(e1 + e2 - 1) < 0, so this ends
        low = phi(hi) > target
        if not low.any():
            break
        hi = np.where(low, lm + 2.0 * (hi - lm), hi)
    lo = lm.copy()
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        up = phi(mid) > target
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    R = hi
    p0 = phi(l0)

    def psi(lv):  # length + total variation of phi from l0: increasing in lv
        return (lv - l0) + (phi(np.minimum(lv, lm)) - p0) + np.where(lv > lm, pm - phi(np.maximum(lv, lm)), 0.0)

    total = psi(R)
    levels = total * (np.arange(_PANELS + 1)[None, :] / _PANELS)
    a_, b_ = np.broadcast_to(l0, levels.shape).copy(), np.broadcast_to(R, levels.shape).copy()
    for _ in range(30):  # panel edges need not be exact: any increasing edges integrate correctly
        mid = 0.5 * (a_ + b_)
        below = psi(mid) < levels
        a_, b_ = np.where(below, mid, a_), np.where(below, b_, mid)
    edges = 0.5 * (a_ + b_)
    edges[:, 0], edges[:, -1] = l0[:, 0], R[:, 0]
    half = 0.5 * np.diff(edges, axis=1)  # (n, P)
    centre = 0.5 * (edges[:, 1:] + edges[:, :-1])
    nodes = centre[:, :, None] + half[:, :, None] * _GL_X[None, None, :]  # (n, P, 8)
    wts = (half[:, :, None] * _GL_W[None, None, :]).reshape(len(l0), -1)
    lv = nodes.reshape(len(l0), -1)
    L = np.logaddexp(ld, lv)
    f = np.exp(phi(lv) - pm) * wts
    i0 = f.sum(axis=1)
    i1 = (f * lv).sum(axis=1)
    i2 = (f * L).sum(axis=1)
    i3 = (f * np.exp(-L)).sum(axis=1)
    dl0 = -np.exp(p0[:, 0] - pm[:, 0]) / i0
    dd = -e2[:, 0] * i3 / i0
    return np.vstack([pm[:, 0] + np.log(i0), -i1 / i0, -i2 / i0, dl0 / np.exp(l0[:, 0]) - dd, dd])


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
