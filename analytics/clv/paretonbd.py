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
every term of that series is positive (no cancellation). The likelihood is assembled from
terms that keep their digits however large the parameters get: r log(alpha) - r log(alpha+T)
as -r log1p(T/alpha), log Gamma(r+x) - log Gamma(r) as a sum of log(r+k) for large r, and H
relative to its integrand at u = t (h(t) below, a number on the scale of the time axis). So
the fit can follow r, alpha (or s, beta) towards infinity together, the limits of no
heterogeneity in the purchase (or dropout) rate where small data often have their maximum,
and evaluate the limit models themselves (shapes of 1e10). The difference H(t_x) - H(T) is
formed as H(t_x) * (1 - exp(log H(T) - log H(t_x))) with ``expm1``, so it stays exact when
t_x is close to T and when alpha is close to beta (z -> 0). H is evaluated once per distinct
(frequency, time) pair: for z <= 1/2 by summing the series here, with exact derivatives; above
by SciPy's hyp2f1 (derivatives in its parameters by central differences); where that
overflows or loses accuracy (large parameters with z near 1: hundreds of purchases, or a rate
nearly the same for everyone) by quadrature. The gradient is otherwise analytic.

P(alive), E[X(t)] and the conditional expectation E[Y(t) | x, t_x, T] are the note's
equations (11), (17) and (18)-(22).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from analytics.clv._base import PurchaseData, _row_codes, as_array, index_of, wrap
from analytics.clv._model import _SCREEN_GROUPS, PurchaseModel
from analytics.clv.optimizer import Limit

__all__ = ["ParetoNBDModel", "sample_paretonbd_summary"]

_TINY_GROUPS = 500  # the first, smallest subsample of a warm-started fit
_FD = 1e-5  # relative step of the central differences in the series' parameters


def _log_hyp_1(e2, c, z):
    """log 2F1(e2, 1; c; z) for c > e2 > 0 and 0 <= z < 1 by SciPy (NaN where it overflows)."""
    with np.errstate(all="ignore"):
        return np.log(special.hyp2f1(e2, 1.0, c, z))


_Z_SERIES = 0.5  # below this z the series is summed here (with its derivatives), above by SciPy


def _log_hyp_series(e2, c, z, grad: bool):
    """log 2F1(e2, 1; c; z) for c > e2 > 0, 0 <= z <= 1/2 by summing the series, and with
    ``grad`` its derivatives with respect to e2, c and z as a (3, n) array.

    The terms t_n = (e2)_n / (c)_n z^n are positive and fall at least as fast as z^n; the sum
    stops where what is left is below 1e-17 of it, so value and derivatives are exact to
    rounding (and cost a few dozen vector operations, against five SciPy calls with central
    differences)."""
    zmax = float(z.max(initial=0.0))
    extra = float(np.max(np.maximum(1.0, 1.0 / e2), initial=1.0))  # bounds the derivative sums' factors
    if zmax <= 0.0:
        n_terms = 1
    else:
        n_terms = int(min(200, np.ceil(np.log(1e-17 / (extra * 200.0)) / np.log(zmax)) + 1))
    if n_terms * z.size <= _SERIES_2D:
        return _log_hyp_series_2d(e2, c, z, n_terms, grad)
    term = np.ones_like(z)
    F = np.ones_like(z)
    if grad:
        de = np.zeros_like(z)  # sum_{k<n} 1/(e2+k)
        dc = np.zeros_like(z)  # sum_{k<n} 1/(c+k)
        Fe = np.zeros_like(z)
        Fc = np.zeros_like(z)
        Fz = np.zeros_like(z)
    for n in range(n_terms):
        if grad:
            de = de + 1.0 / (e2 + n)
            dc = dc + 1.0 / (c + n)
        term = term * ((e2 + n) / (c + n) * z)
        F = F + term
        if grad:
            Fe = Fe + term * de
            Fc = Fc - term * dc
            Fz = Fz + (n + 1) * term
    LS = np.log(F)
    if not grad:
        return LS, None
    with np.errstate(divide="ignore", invalid="ignore"):
        Sz = np.where(z > 0, Fz / np.where(z > 0, z, 1.0) / F, e2 / c)
    return LS, np.vstack([Fe / F, Fc / F, Sz])


_SERIES_2D = 30_000  # up to this many terms in all the series is summed as one array (few points)


def _log_hyp_series_2d(e2, c, z, n_terms: int, grad: bool):
    """``_log_hyp_series`` with the terms of all points in one (n_terms, n) array: a dozen
    array operations instead of a dozen per term, for the few hundred time points of a small
    subsample (on thousands of points the term-by-term loop is faster)."""
    k = np.arange(n_terms, dtype=float)[:, None]
    a = e2[None, :] + k
    b = c[None, :] + k
    term = np.cumprod(a / b * z[None, :], axis=0)  # t_1 .. t_n_terms
    F = 1.0 + term.sum(axis=0)
    LS = np.log(F)
    if not grad:
        return LS, None
    Fe = (term * np.cumsum(1.0 / a, axis=0)).sum(axis=0)
    Fc = -(term * np.cumsum(1.0 / b, axis=0)).sum(axis=0)
    Fz = (k[:, 0] + 1.0) @ term
    with np.errstate(divide="ignore", invalid="ignore"):
        Sz = np.where(z > 0, Fz / np.where(z > 0, z, 1.0) / F, e2 / c)
    return LS, np.vstack([Fe / F, Fc / F, Sz])


def _log_h(e1, e2, c1: float, c2: float, t, grad: bool):
    """log h(t) and, with ``grad``, its partial derivatives with respect to (e1, e2, c1, c2) as a
    (4, n) array, where c1 <= c2 and

        h(t) = Int_t^inf ((c1+u)/(c1+t))^-e1 ((c2+u)/(c2+t))^-e2 du
             = (c1+t) 2F1(e2, 1; e1+e2; z) / (e1+e2-1),    z = (c2-c1)/(c2+t) in [0, 1):

    H(t) of the module docstring divided by its integrand at u = t, a number on the scale of the
    time axis whatever the size of the parameters."""
    e1 = np.broadcast_to(np.asarray(e1, dtype=float), np.shape(t))
    e2 = np.broadcast_to(np.asarray(e2, dtype=float), np.shape(t))
    t = np.asarray(t, dtype=float)
    a = e1 + e2 - 1.0
    c = a + 1.0
    l1 = np.log(c1 + t)
    z = (c2 - c1) / (c2 + t)
    # where SciPy's 2F1 is slow or inaccurate (large parameters with z near 1, or very large
    # parameters), go to quadrature at once
    hard = (e2 > 100.0) & ((z > 0.9) | (c > 1e5))
    ser = ~hard & (z <= _Z_SERIES)
    sci = ~hard & ~ser
    LS = np.zeros_like(z)
    S = np.zeros((3,) + z.shape) if grad else None
    if ser.any():
        LS[ser], Sv = _log_hyp_series(e2[ser], c[ser], z[ser], grad)
        if grad:
            S[:, ser] = Sv
    if sci.any():
        e2s, cs, zs = e2[sci], c[sci], z[sci]
        LS[sci] = _log_hyp_1(e2s, cs, zs)
        if grad:
            # central differences: truncation ~1e-10, rounding ~1e-15 / 1e-5 (forward differences,
            # with SciPy's last-digit noise, left gradient errors the stopping rule could see)
            he = _FD * np.maximum(1.0, e2s)
            hc = _FD * np.maximum(1.0, cs)
            S[0, sci] = (_log_hyp_1(e2s + he, cs, zs) - _log_hyp_1(e2s - he, cs, zs)) / (2.0 * he)
            S[1, sci] = (_log_hyp_1(e2s, cs + hc, zs) - _log_hyp_1(e2s, cs - hc, zs)) / (2.0 * hc)
            with np.errstate(all="ignore"):
                # d log S / dz = (e2 / c) 2F1(e2+1, 2; c+1; z) / S
                S[2, sci] = np.where(zs > 0, e2s / cs * special.hyp2f1(e2s + 1.0, 2.0, cs + 1.0, zs)
                                     / np.exp(LS[sci]), e2s / cs)
    logh = l1 + LS - np.log(a)
    D = None
    if grad:
        S_e, S_c, S_z = S
        D = np.vstack([S_c - 1.0 / a, S_e + S_c - 1.0 / a,
                       1.0 / (c1 + t) - S_z / (c2 + t), S_z * (c1 + t) / (c2 + t) ** 2])
        bad = ~(np.isfinite(logh) & np.all(np.isfinite(D), axis=0))
    else:
        bad = ~np.isfinite(logh)
    bad |= hard
    if np.any(bad):
        # SciPy's 2F1 overflows for large parameters with z near 1 (hundreds of purchases, or a
        # dropout rate that is nearly the same for everyone): integrate there instead
        q = (c1 + t[bad]) / (c2 + t[bad])
        Q = _log_h_by_quadrature(e1[bad], e2[bad], q)
        logh = np.array(logh, copy=True)
        logh[bad] = l1[bad] + Q[0]
        if grad:
            D = np.array(D, copy=True)
            D[0, bad], D[1, bad] = Q[1], Q[2]
            D[2, bad] = 1.0 / (c1 + t[bad]) + Q[3] / (c2 + t[bad])
            D[3, bad] = -Q[3] * q / (c2 + t[bad])
    return logh, D


def _log_h_params(params, x, t, grad: bool):
    """log h(t) for frequency x and its derivatives with respect to (r, alpha, s, beta)."""
    r, alpha, s, beta = params
    x = np.asarray(x, dtype=float)
    if alpha >= beta:  # e1 = s + 1 (with beta), e2 = r + x (with alpha)
        lh, D = _log_h(s + 1.0, r + x, beta, alpha, t, grad)
        return lh, None if D is None else D[[1, 3, 0, 2]]
    lh, D = _log_h(r + x, s + 1.0, alpha, beta, t, grad)  # e1 = r + x (alpha), e2 = s + 1 (beta)
    return lh, None if D is None else D[[0, 2, 1, 3]]


def _log_H(params, x, t, grad: bool):
    """log H(t) of the module docstring (not normalised: for checks) and its gradient."""
    r, alpha, s, beta = params
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    lh, g = _log_h_params(params, x, t, grad)
    out = lh - (r + x) * np.log(alpha + t) - (s + 1.0) * np.log(beta + t)
    if not grad:
        return out, None
    g = g + np.vstack([-np.log(alpha + t), -(r + x) / (alpha + t), -np.log(beta + t) + 0 * t,
                       -(s + 1.0) / (beta + t)])
    return out, g


_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
_PANELS = 64
_GRID = 256  # grid on which the panel edges are placed
_DROP = 46.0  # the integrand is integrated down to exp(-46) of its maximum


def _log_h_by_quadrature(e1, e2, q):
    """log I and d log I / d(e1, e2, q) by composite Gauss-Legendre quadrature, where

        I = Int_0^inf exp(psi(v)) dv,   psi(v) = (1-e1) v - e2 log(1 + q (e^v - 1)),   0 < q <= 1

    (h(t) = (c1+t) I with v = log((c1+u)/(c1+t)) and q = (c1+t)/(c2+t)). psi is concave with
    psi(0) = 0 and its maximum at 0 or where psi' = 0 (closed form). It is integrated from 0 to
    where psi has fallen 46 below its maximum, on 64 panels of equal "length + variation of psi"
    (so flat stretches and steep falls both get narrow enough panels: each panel spans at most
    about one unit of v and of psi), 8 nodes each; the derivatives' integrands use the same nodes.
    Everything is relative to the integrand at the lower end, so it stays exact for parameters
    in the billions (the limits of no heterogeneity). About 1e-12 relative accuracy, vectorized
    over the entries."""
    e1 = np.asarray(e1, dtype=float)[:, None]
    e2 = np.asarray(e2, dtype=float)[:, None]
    q = np.asarray(q, dtype=float)[:, None]

    def psi(v):
        return (1.0 - e1) * v - e2 * np.log1p(q * np.expm1(v))

    with np.errstate(divide="ignore", invalid="ignore"):
        interior = (1.0 - e1 - e2 * q > 0) & (q < 1.0)
        em = np.where(interior, (1.0 - e1) * (1.0 - q) / (q * (e1 + e2 - 1.0)), 1.0)
        vm = np.where(interior, np.maximum(np.log(em), 0.0), 0.0)
    pm = psi(vm)
    target = pm - _DROP
    # psi falls with slope -> -(e1 + e2 - 1) < 0; start from the slope at the far side of the top
    width = np.minimum(1.0, _DROP / np.maximum(e1 - 1.0 + e2 * q, 1e-300))
    hi = vm + np.maximum(width, 1e-300)
    for _ in range(400):
        low = psi(hi) > target
        if not low.any():
            break
        hi = np.where(low, vm + 2.0 * (hi - vm), hi)
    lo = vm.copy()
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        up = psi(mid) > target
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    R = hi

    def var(v):  # length + total variation of psi from 0: increasing in v
        return v + psi(np.minimum(v, vm)) + np.where(v > vm, pm - psi(np.maximum(v, vm)), 0.0)

    # panel edges: var on a fine grid over [0, R], inverted by linear interpolation (any
    # increasing edges integrate correctly; these give panels of about equal var)
    grid = R * (np.arange(_GRID + 1)[None, :] / _GRID)
    vg = var(grid)
    vg[:, 0] = 0.0
    vg = np.maximum.accumulate(vg, axis=1)
    total = vg[:, -1:]
    levels = total * (np.arange(_PANELS + 1)[None, :] / _PANELS)
    rows = np.arange(len(levels))[:, None]
    off = rows * (2.0 * float(total.max()) + 1.0)  # one sorted array for all rows
    k = np.searchsorted((vg + off).ravel(), (levels + off).ravel()).reshape(levels.shape) - rows * (_GRID + 1)
    k = np.clip(k, 1, _GRID)
    v0, v1 = vg[rows, k - 1], vg[rows, k]
    g0, g1 = grid[rows, k - 1], grid[rows, k]
    frac = np.where(v1 > v0, (levels - v0) / np.where(v1 > v0, v1 - v0, 1.0), 0.0)
    edges = g0 + np.clip(frac, 0.0, 1.0) * (g1 - g0)
    edges[:, 0], edges[:, -1] = 0.0, R[:, 0]
    half = 0.5 * np.diff(edges, axis=1)  # (n, P)
    centre = 0.5 * (edges[:, 1:] + edges[:, :-1])
    nodes = centre[:, :, None] + half[:, :, None] * _GL_X[None, None, :]  # (n, P, 8)
    wts = (half[:, :, None] * _GL_W[None, None, :]).reshape(len(e1), -1)
    v = nodes.reshape(len(e1), -1)
    em1 = np.expm1(v)
    L = np.log1p(q * em1)
    f = np.exp((1.0 - e1) * v - e2 * L - pm) * wts
    i0 = f.sum(axis=1)
    i1 = (f * v).sum(axis=1)
    i2 = (f * L).sum(axis=1)
    i3 = (f * (em1 / (1.0 + q * em1))).sum(axis=1)
    return np.vstack([pm[:, 0] + np.log(i0), -i1 / i0, -i2 / i0, -e2[:, 0] * i3 / i0])


def _log_H_by_quadrature(e1, e2, c1: float, c2: float, t):
    """log H(t) and d log H / d(e1, e2, c1, c2) by quadrature (for checks)."""
    e1 = np.asarray(e1, dtype=float)
    e2 = np.asarray(e2, dtype=float)
    t = np.asarray(t, dtype=float)
    q = (c1 + t) / (c2 + t)
    Q = _log_h_by_quadrature(e1, e2, q)
    l1, l2 = np.log(c1 + t), np.log(c2 + t)
    return np.vstack([l1 + Q[0] - e1 * l1 - e2 * l2, Q[1] - l1, Q[2] - l2,
                      1.0 / (c1 + t) + Q[3] / (c2 + t) - e1 / (c1 + t), -Q[3] * q / (c2 + t) - e2 / (c2 + t)])


def _log_pochhammer(r: float, x, grad: bool):
    """log Gamma(r + x) - log Gamma(r) for whole x >= 0, and its derivative in r.

    For large r the difference of two log-gamma values (each about r log r) loses every digit
    it has; as sum_{k < x} log(r + k) = x log r + sum log1p(k / r) it stays exact."""
    x = np.asarray(x, dtype=float)
    if r < 1e4 or x.size == 0 or np.any(x != np.round(x)) or x.max() > 1e6:
        val = special.gammaln(r + x) - special.gammaln(r)
        return val, (special.digamma(r + x) - special.digamma(r)) if grad else None
    k = np.arange(int(x.max()), dtype=float)
    idx = x.astype(np.int64)
    cum = np.concatenate([[0.0], np.cumsum(np.log1p(k / r))])
    val = x * np.log(r) + cum[idx]
    if not grad:
        return val, None
    cd = np.concatenate([[0.0], np.cumsum(1.0 / (r + k))])
    return val, cd[idx]


def _time_terms(params, x, t, grad: bool):
    """Per distinct (x, t): E(t) = log[alpha^r beta^s (alpha+t)^-(r+x) (beta+t)^-s] (the log
    of "alive at t"), log Hn(t) = log[alpha^r beta^s H(t)] = E(t) - log(beta+t) + log h(t), and
    with ``grad`` their gradients with respect to (r, alpha, s, beta) as (4, n) arrays.

    The powers are taken as r log1p(t/alpha), never as r log(alpha) - r log(alpha + t), so the
    terms keep their digits when r, alpha (or s, beta) run towards infinity together."""
    r, alpha, s, beta = params
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    la1, lb1 = np.log1p(t / alpha), np.log1p(t / beta)
    lat, lbt = np.log(alpha + t), np.log(beta + t)
    E = -r * la1 - x * lat - s * lb1
    lh, gh = _log_h_params(params, x, t, grad)
    lHn = E - lbt + lh
    if not grad:
        return E, lHn, None, None
    gE = np.vstack([-la1, r * t / (alpha * (alpha + t)) - x / (alpha + t), -lb1, s * t / (beta * (beta + t))])
    gHn = gE + gh
    gHn[3] -= 1.0 / (beta + t)
    return E, lHn, gE, gHn


def _row_terms(s, lA, lHnR, lHnT):
    """Per row: log D (died between t_x and T) and log(A + D) (A: alive at T)."""
    with np.errstate(divide="ignore"):
        lD = np.log(s) + lHnR + np.log(-np.expm1(np.minimum(lHnT - lHnR, 0.0)))
    return lD, np.logaddexp(lA, lD)


def _rate_and_age(d):
    """The observed purchase rate (repeat purchases per unit of time observed) and the mean
    age T, to scale the start values by (sums of products, not BLAS dot products: this runs
    before the fit holds the BLAS to one thread)."""
    wT = float((d.w * np.maximum(d.T, 1e-9)).sum())
    rate = float((d.w * d.x).sum()) / max(wT, 1e-12)
    return min(max(rate, 1e-8), 1e8), float(max(float((d.w * d.T).sum()) / d.total, 1e-6))


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
    _warm_start = True  # its likelihood is costly per evaluation: most iterations on the subsample

    @staticmethod
    def _loglik(params, d: PurchaseData, grad: bool):
        r, alpha, s, beta = params
        key = np.asarray(params, dtype=float).tobytes()
        last = getattr(d, "_pnbd_last", None)
        if last is not None and last[0] == key and (last[2] is not None or not grad):
            # the same point again (the optimizer's acceptance test, the fitted log-likelihood)
            return last[1], None if last[2] is None or not grad else last[2].copy()
        Hx, Ht, hT, hR = d.time_pairs()
        E, lHn, gE, gHn = _time_terms(params, Hx, Ht, grad)
        rows = getattr(d, "_pnbd_rows", None)
        if rows is None:  # row -> (x, T) and (x, t_x) among the distinct (x, t): fixed for the data
            rows = d._pnbd_rows = (hT[d.iT], hR[d.iR])
        jT, jR = rows
        # per row, relative to Hn(t_x): A / Hn(t_x) = e^u, D / Hn(t_x) = s (1 - e^dl); the
        # arithmetic is done in place (a fit evaluates this on every distinct row dozens of times)
        lHnR = lHn[jR]
        ET = E[jT]
        u = np.subtract(ET, lHnR)
        dl = lHn[jT]
        dl -= lHnR
        np.minimum(dl, 0.0, out=dl)
        em = np.expm1(dl, out=dl)
        with np.errstate(over="ignore"):
            eu = np.exp(u, out=u)
        finite = bool(np.isfinite(eu.max(initial=0.0)))
        den = em * -s
        den += eu
        G, gG = _log_pochhammer(r, d.ux, grad)
        with np.errstate(divide="ignore", invalid="ignore"):
            L = np.log(den)
            L += lHnR
            if not finite:  # alive at T outweighs everything by more than e^709: log(A + D) = log A
                L = np.where(np.isfinite(eu), L, ET)
        ll = float(np.dot(d.wx, G)) + float(np.dot(d.w, L))
        if not grad:
            d._pnbd_last = (key, ll, None)
            return ll, None
        wd = np.divide(d.w, den, out=den)
        pA = eu * wd if finite else np.where(np.isfinite(eu), eu * wd, d.w)
        cR = wd * s  # d L / d log Hn(t_x)
        em += 1.0
        em *= wd
        em *= -s  # d L / d log Hn(T)
        nH = len(Hx)
        WA = np.bincount(jT, weights=pA, minlength=nH)
        WH = np.bincount(jT, weights=em, minlength=nH)
        WH += np.bincount(jR, weights=cR, minlength=nH)
        g = gE @ WA + gHn @ WH
        g[0] += float(np.dot(d.wx, gG))
        g[2] += (float(d.w.sum()) - float(pA.sum())) / s
        d._pnbd_last = (key, ll, g.copy())
        return ll, g

    @staticmethod
    def _screen_data(d):
        """Samples of the customers (not of the groups) on 500 and on 5,000 groups: start
        values are ranked and run on the small one (far from the optimum the hypergeometric
        terms cost most, here on a few hundred time points), the large one is fitted from its
        optimum, and the full data's fit starts from that (closer to the full data's optimum
        than a sample of groups is, and with a curvature closer to the full data's)."""
        return (d.sample_customers(_TINY_GROUPS), d.sample_customers(_SCREEN_GROUPS))

    @staticmethod
    def _start_values(d):
        """log(r, alpha, s, beta): all ones, and a grid of shapes with alpha matched to the
        observed purchase rate and beta to lifetimes of about the observation length."""
        rate, mean_T = _rate_and_age(d)
        starts = [np.zeros(4)]
        for r in (0.3, 1.0, 3.0):
            for s in (0.3, 1.0, 3.0):
                for k in (0.5, 3.0):
                    starts.append(np.log([r, r / rate, s, s * k * mean_T]))
        return starts

    @staticmethod
    def _warm_start_values(d):
        """The first subsample's start values: the shapes of ``_start_values`` with beta = alpha,
        where z = |alpha - beta| / (max(alpha, beta) + t) is 0 and stays small on the way to the
        optimum (alpha and beta are usually of the same order), so h(t) is summed as a series
        with exact derivatives instead of SciPy's 2F1 by differences; starts with beta far from
        alpha (long lifetimes with a large s) rank well but run along the flat ridge of
        s / beta with every time point above z = 1/2."""
        rate, _ = _rate_and_age(d)
        return [np.log([r, r / rate, s, r / rate]) for r in (0.3, 1.0, 3.0) for s in (0.3, 1.0, 3.0)]

    @staticmethod
    def _limit_models(d):
        """The Pareto/NBD's limits of no heterogeneity, where its maximum likelihood often lies on
        small or nearly Poisson data: the same purchase rate for everyone (r, alpha -> infinity,
        r/alpha = lambda), the same dropout rate (s, beta -> infinity, s/beta = mu), and both."""
        rate, mean_T = _rate_and_age(d)
        big = 30.0
        lam = [np.log([big, big / rate, s, s * k * mean_T]) for s in (0.3, 1.0, 3.0) for k in (0.5, 3.0)]
        mu = [np.log([r, r / rate, big, big * k * mean_T]) for r in (0.3, 1.0, 3.0) for k in (0.5, 3.0)]
        both = [np.log([big, big / rate, big, big * k * mean_T]) for k in (0.5, 1.0, 3.0, 10.0)]
        return (Limit("the same purchase rate for everyone (r, alpha -> infinity)", ((0, 1),), lam),
                Limit("the same dropout rate for everyone (s, beta -> infinity)", ((2, 3),), mu),
                Limit("the same purchase and dropout rates for everyone", ((0, 1), (2, 3)), both))

    # -- predictions ------------------------------------------------------------------
    def _alive_terms(self, x, tx, T):
        """log P(alive) per row (finite rows only)."""
        params = self._check_fitted()
        codes, k = _row_codes((x, tx, T))
        first = np.empty(k, dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        ux, utx, uT = x[first], tx[first], T[first]
        _, lHnR, _, _ = _time_terms(params, ux, utx, False)
        lA, lHnT, _, _ = _time_terms(params, ux, uT, False)
        _, L = _row_terms(params[2], lA, lHnR, lHnT)
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
