"""Deterministic, robust maximum likelihood for the hand-written CLV likelihoods.

``minimize_robust`` minimises an objective of log-parameters (the mean negative
log-likelihood plus a penalty) given with its analytic gradient:

1. start values: the model's moment-based guesses and a small grid around them,
   ranked by the objective (on a subsample of the groups for large data);
2. L-BFGS-B from the best start. Its result is accepted when it reports success,
   *or* when it ended with "ABNORMAL_TERMINATION_IN_LNSRCH" but the projected
   gradient is small: that message usually means the line search could not
   improve the objective at machine precision, i.e. the optimum was reached;
3. otherwise a derivative-free Nelder-Mead polish from where L-BFGS-B stopped,
   then L-BFGS-B again from the polished point;
4. then the next start values, and finally a few random starts drawn from
   ``random_state`` (a fixed seed by default), so the same data give the same
   parameters on every run;
5. for a model that declares limits on the boundary at infinity (``Limit``: Gamma
   shapes and rates running off together, i.e. no heterogeneity), a run heading off
   along such a ridge is continued in the limit model's own parameters, and on small
   data the full model is also started near each limit; the best optimum found wins.

The penalizer ladder (refitting with a small L2 penalty when the plain maximum
runs off to a boundary) is the models' ``fit_*_robust`` functions' job; this
module only finds optima.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from analytics.clv._base import ModelFitError

LOG_BOUND = 25.0  # |log(param)| <= 25, i.e. params in [1.4e-11, 7.2e10]
SCREEN_FTOL = 1e-10  # relative decrease at which a run on the subsample (a start value only) stops
SCREEN_GTOL = 1e-3  # and the projected gradient it accepts there
DIVERGED = 13.82  # a log-parameter beyond this (a parameter above 1e6 or below 1e-6) has run off


@dataclass
class Optimum:
    """Where ``minimize_robust`` ended and how."""

    x: np.ndarray
    fun: float
    grad_max: float  # largest |projected gradient| component at x
    nit: int
    nfev: int
    how: str  # "L-BFGS-B", "L-BFGS-B (line search ended at machine precision)", "Nelder-Mead polish", ...
    start: int  # which start value led here (0 = the best ranked)

    @property
    def ran_off(self) -> bool:
        return bool(np.any(np.abs(self.x) > DIVERGED))


def projected_gradient(x: np.ndarray, g: np.ndarray, bound: float = LOG_BOUND) -> np.ndarray:
    """The gradient with the components that push against a bound set to 0."""
    pg = np.array(g, dtype=float, copy=True)
    pg[(x <= -bound + 1e-12) & (pg > 0)] = 0.0
    pg[(x >= bound - 1e-12) & (pg < 0)] = 0.0
    return pg


@dataclass
class Limit:
    """A limiting model on the boundary at infinity: for every (i, j) in ``ridges`` the
    log-parameters i and j run to infinity together with their difference fixed (a Gamma shape
    and its rate with the mean fixed: the rate is then the same for everyone). ``starts``: full
    log-parameter vectors with large but finite shapes, to start the full model from there."""

    label: str
    ridges: tuple[tuple[int, int], ...]
    starts: list


LIMIT_LOG = float(np.log(1e10))  # a limit model is evaluated with its ridge shapes at 1e10
RIDGE_SHAPE_LOG = float(np.log(1e3))  # a run off with a shape above 1e3 heads along that ridge


def minimize_robust(objective, starts, **kwargs) -> Optimum:
    """Minimise ``objective(theta) -> (f, grad)`` (see ``_minimize_robust`` for the arguments)
    with the BLAS on one thread.

    Every vector the optimizer handles has a few entries (L-BFGS-B's updates of four
    parameters, a 4 x n matrix times a vector in the gradients), so a threaded BLAS only adds
    the cost of waking its threads, on every call: at a million customers that was 60-70 % of a
    BG/NBD or Pareto/NBD fit on a 2-core machine (0.55 s and 1.02 s against 0.15 s and 0.32 s
    with one thread, measured back to back), and more where other work keeps the cores busy.
    One thread also makes the sums the same on every machine whatever its number of cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        return _minimize_robust(objective, starts, **kwargs)


def _minimize_robust(objective, starts, *, what: str, random_state=0, n_restarts: int = 2,
                     max_iter: int = 2000, screen=None, gtol: float = 1e-5, limits=(),
                     explore: bool = True, warm: bool = False, warm_starts=None) -> Optimum:
    """Minimise ``objective(theta) -> (f, grad)``; see the module docstring.

    ``starts``: candidate start vectors (log-parameters); ``screen``: an optional cheaper
    objective used only to rank them; ``gtol``: the projected-gradient size (relative to
    max(1, |f|)) at which a line-search ending is accepted as an optimum.

    ``warm``: with ``screen``, fit on the screen objective first and start the full data's fit
    from its optimum. ``screen`` may be a tuple of objectives on subsamples from small to large:
    the warm start fits them one after the other (start values ranked on the first:
    ``warm_starts`` where given, else ``starts``); the ordinary starts are ranked on the last.

    ``limits``: ``Limit`` models on the boundary at infinity, where small or nearly homogeneous
    data often have their maximum (or a better optimum than the one the ordinary starts lead
    to). Where a run heads off along a limit's ridges, the limit model is fitted in its own
    parameters (ridge shapes held at 1e10, where a likelihood that keeps its digits equals the
    limit's to many digits), which continues the run to the limit. With ``explore``, the full
    model is also started from each limit's best-ranked start (large but finite shapes) and
    continued the same way. The best of everything is returned; a limit model is reported at
    shapes 1e10, as having run off, with ``how`` naming the limit.
    """
    best = error = None
    screens = screen if isinstance(screen, tuple) else (screen,)
    screen = screens[-1]
    if warm and screen is not None:
        # optimise on the subsample first (cheap), then on the full data from its optimum (a
        # few iterations instead of a whole run: the two optima differ by sampling error). The
        # subsample's optimum is only a start value, so its run stops at a looser tolerance;
        # the full data's run from there is the one held to ``gtol``. Only where that run does
        # not end at an interior optimum are the other start values tried. After the first
        # subsample, every run is Newton's from the previous optimum with the curvature carried
        # along (L-BFGS-B where that fails).
        try:
            w = B = None
            last = len(screens) - 1
            for k, sc in enumerate(screens):  # from the smallest subsample to the largest
                got = None if w is None else _newton_finish(sc, w.x, max(gtol, SCREEN_GTOL), curvature=sc,
                                                            ftol=SCREEN_FTOL)
                if got is not None:
                    w, B = got
                    continue
                B = None
                try:
                    first = (warm_starts or starts) if k == 0 else starts
                    w = _minimize_interior(sc, first if w is None else [w.x], what=what, random_state=random_state,
                                           n_restarts=0, max_iter=max_iter, gtol=max(gtol, SCREEN_GTOL),
                                           polish=False, ftol=SCREEN_FTOL)
                except ModelFitError:
                    if k == last:
                        raise
                    w = None
                    continue
                if w.ran_off and k < last:
                    w = None  # a small sample's optimum may lie at a limit: the next one starts afresh
            if not w.ran_off:
                got = _newton_finish(objective, w.x, gtol, curvature=screen if B is None else None, B=B)
                best = None if got is None else got[0]
                if best is None:
                    best = _minimize_interior(objective, [w.x], what=what, random_state=random_state,
                                              n_restarts=0, max_iter=max_iter, gtol=gtol)
                if best.ran_off:
                    best = None
        except ModelFitError:
            best = None
    if best is None:
        try:
            best = _minimize_interior(objective, starts, what=what, random_state=random_state,
                                      n_restarts=n_restarts, max_iter=max_iter, screen=screen, gtol=gtol)
        except ModelFitError as exc:
            best, error = None, exc
    if not limits:
        if best is None:
            raise error
        return best
    kw = dict(what=what, random_state=random_state, n_restarts=0, max_iter=max_iter, gtol=gtol, polish=False)
    n = len(np.asarray(starts[0]))
    if best is not None and best.ran_off:  # heading off along a ridge: continue it to the limit
        cont = _explore(objective, None, limits, n, kw, start=best.x)
        if cont is not None and cont.fun < best.fun:
            best = cont
    if explore:
        f_ref = best.fun if best is not None else np.inf
        for lim in limits:
            cand = _explore(objective, lim, limits, n, kw)
            if cand is not None and cand.fun < f_ref - 1e-13 * max(1.0, abs(f_ref)):
                best, f_ref = cand, cand.fun
    if best is None:
        raise error
    return best


NEWTON_FTOL = 1e-15  # the Newton finish stops where the predicted decrease is below this (relative)


def _newton_finish(objective, x0, gtol: float, *, curvature=None, B=None, ftol: float = NEWTON_FTOL,
                   max_steps: int = 20):
    """The optimum of ``objective`` from ``x0`` near it by Newton steps with the Hessian of
    ``curvature`` at ``x0`` (forward differences of its gradient) or with ``B``, updated by BFGS
    from ``objective``'s gradients; ``(Optimum, final B)``, or None where that does not converge
    cleanly (the caller runs L-BFGS-B).

    From a subsample's optimum to a larger sample's or the full data's: the objectives are
    means per customer and their optima differ by sampling error, so the subsample's curvature
    is close to the full data's; each step cuts the gradient by about the relative error of
    that curvature, and the objective is evaluated a handful of times instead of the twenty-odd
    of an L-BFGS-B run that starts with no curvature at all. It stops where the predicted
    decrease is below ``ftol`` of the objective (1e-15: L-BFGS-B's ``ftol`` in the ordinary
    run), and must meet the same projected-gradient test."""
    x = np.asarray(x0, dtype=float)
    n = len(x)
    nfev = 0
    if B is None:
        h = 1e-5
        f0, g0 = curvature(x)
        if not np.isfinite(f0) or not np.all(np.isfinite(g0)):
            return None
        B = np.empty((n, n))
        for i in range(n):
            e = x.copy()
            e[i] += h
            B[:, i] = (curvature(e)[1] - g0) / h
        B = 0.5 * (B + B.T)
        nfev = n + 1
    f, g = objective(x)
    nfev += 1
    for k in range(max_steps):
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return None
        try:
            p = -np.linalg.solve(B, g)
        except np.linalg.LinAlgError:
            return None
        dec = -float(np.dot(g, p))
        if not dec >= 0.0:  # B not positive definite along g
            return None
        if 0.5 * dec <= ftol * max(1.0, abs(f)):
            break
        step = min(1.0, 1.0 / max(float(np.max(np.abs(p))), 1e-300))  # at most one unit in a log-parameter
        for _ in range(4):
            xn = x + step * p
            if np.any(np.abs(xn) > DIVERGED):
                return None
            fn, gn = objective(xn)
            nfev += 1
            if np.isfinite(fn) and fn <= f - 1e-4 * step * dec:
                break
            step *= 0.5
        else:
            return None
        s, y = xn - x, gn - g
        sy = float(np.dot(s, y))
        if sy > 0.0:
            Bs = B @ s
            B = B - np.outer(Bs, Bs) / float(np.dot(s, Bs)) + np.outer(y, y) / sy
        x, f, g = xn, fn, gn
    else:
        return None
    pg = float(np.max(np.abs(projected_gradient(x, g))))
    if pg > gtol * max(1.0, abs(f)):
        return None
    return Optimum(x, float(f), pg, k, nfev, "Newton from the subsample's curvature", 0), B


def _explore(objective, lim, limits, n, kw, start=None):
    """The full model from ``lim``'s starts (or from ``start``), continued to the limit model
    along the ridges it heads off on. None where nothing finite came of it."""
    x = None if start is None else np.asarray(start, dtype=float)
    res = None
    if x is None or not np.any(x > DIVERGED):
        try:
            res = _minimize_interior(objective, lim.starts if x is None else [x], **kw)
        except ModelFitError:
            return None
        x = res.x
    done = set()
    for _ in range(2):  # a limit model may head off along a further ridge: at most both
        away = {(i, j) for m in limits for i, j in m.ridges if max(x[i], x[j]) > DIVERGED and x[i] > RIDGE_SHAPE_LOG}
        target = next((m for m in limits if set(m.ridges) == away), None)
        if not away or target is None or target.label in done:
            break
        done.add(target.label)
        red, expand, reduce = _reduced(objective, target.ridges, n)
        try:
            o = _minimize_interior(red, [reduce(x)], **kw)
        except ModelFitError:
            break
        at = Optimum(expand(o.x), o.fun, o.grad_max, o.nit, o.nfev, f"limit: {target.label}", o.start)
        if res is None or at.fun < res.fun:
            res = at
        x = at.x
    return res


def _reduced(objective, ridges, n: int):
    """The objective of a limit model in its own log-parameters (ridge j's entry is the log of
    the ratio i/j), with the maps from and to the full log-parameters."""
    fixed = [i for i, _ in ridges]
    free = [k for k in range(n) if k not in fixed]
    ratio = {j: i for i, j in ridges}

    def expand(phi):
        theta = np.empty(n)
        for k, v in zip(free, phi):
            theta[k] = LIMIT_LOG - v if k in ratio else v
        for i in fixed:
            theta[i] = LIMIT_LOG
        return theta

    def reduce(theta):
        return np.array([theta[ratio[k]] - theta[k] if k in ratio else theta[k] for k in free])

    def red(phi):
        f, g = objective(expand(phi))
        return f, np.array([-g[k] if k in ratio else g[k] for k in free])

    return red, expand, reduce


def _value_of(objective):
    """``theta -> f``: the objective's own value-only form where it has one (``objective.value``:
    no gradient computed), else its first return value."""
    fast = getattr(objective, "value", None)
    return fast if fast is not None else (lambda theta: objective(theta)[0])


def _minimize_interior(objective, starts, *, what: str, random_state=0, n_restarts: int = 2,
                       max_iter: int = 2000, screen=None, gtol: float = 1e-5, polish: bool = True,
                       ftol: float = 1e-15) -> Optimum:
    starts = [np.asarray(s, dtype=float) for s in starts]
    n = len(starts[0])
    rank_fun = _value_of(screen or objective)
    with np.errstate(all="ignore"):
        if len(starts) == 1:
            scores = [0.0]
        else:
            scores = []
            for s in starts:
                f = rank_fun(s)
                scores.append(f if np.isfinite(f) else np.inf)
    order = [int(i) for i in np.argsort(scores, kind="stable")]
    candidates = [starts[i] for i in order[:3]]
    rng = np.random.default_rng(random_state)
    base = candidates[0]
    candidates += [np.clip(base + rng.normal(0.0, 1.0, n), -LOG_BOUND / 2, LOG_BOUND / 2)
                   for _ in range(int(n_restarts))]
    bounds = [(-LOG_BOUND, LOG_BOUND)] * n
    max_iter = max(1, int(max_iter))

    value = _value_of(objective)

    def stop_when_running_off(intermediate_result):
        # a maximum at infinity: the objective keeps improving by tiny steps for thousands of
        # iterations; stop there and report it (the penalizer ladder is the remedy)
        if np.any(np.abs(intermediate_result.x) > DIVERGED):
            raise StopIteration

    def lbfgsb(x0):
        return optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                 callback=stop_when_running_off,
                                 options={"maxiter": max_iter, "ftol": ftol, "gtol": 1e-10, "maxcor": 20})

    last = "no start value gave a finite likelihood"
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, x0 in enumerate(candidates):
            if not np.isfinite(value(x0)):
                continue
            res = lbfgsb(x0)
            nfev, nit = int(res.nfev), int(res.nit)
            if np.isfinite(res.fun) and np.any(np.abs(res.x) > DIVERGED):
                g = objective(res.x)[1]
                return Optimum(res.x, float(res.fun), float(np.max(np.abs(projected_gradient(res.x, g)))),
                               nit, nfev, "L-BFGS-B (ran off towards a boundary)", k)
            got = _accepted(objective, res.x, gtol)
            if got is not None and (res.success or "ABNORMAL" in str(res.message)):
                how = "L-BFGS-B" if res.success else "L-BFGS-B (line search ended at machine precision)"
                return Optimum(res.x, got[0], got[1], nit, nfev, how, k)
            if not polish:
                last = str(res.message) or "iteration limit"
                continue
            # derivative-free polish from where L-BFGS-B stopped, then L-BFGS-B once more
            x1 = res.x if np.isfinite(res.fun) else x0
            simplex = x1 + np.vstack([np.zeros(n), 0.1 * np.eye(n)])
            nm = optimize.minimize(value, x1, method="Nelder-Mead",
                                   options={"maxiter": min(max_iter, 200 * n), "maxfev": min(2 * max_iter, 400 * n),
                                            "xatol": 1e-10, "fatol": 1e-15, "adaptive": True,
                                            "initial_simplex": np.clip(simplex, -LOG_BOUND, LOG_BOUND)})
            nfev += int(nm.nfev)
            x2 = np.clip(nm.x, -LOG_BOUND, LOG_BOUND)
            res2 = lbfgsb(x2)
            nfev, nit = nfev + int(res2.nfev), nit + int(nm.nit) + int(res2.nit)
            best_x = res2.x if np.isfinite(res2.fun) and res2.fun <= value(x2) else x2
            got = _accepted(objective, best_x, 10 * gtol)
            if got is not None:
                return Optimum(best_x, got[0], got[1], nit, nfev, "Nelder-Mead polish + L-BFGS-B", k)
            if nm.success and np.isfinite(nm.fun):
                # Nelder-Mead converged (its simplex shrank to nothing) where the gradient is not
                # small: accept only if L-BFGS-B cannot improve on it either
                f2 = value(best_x)
                if np.isfinite(f2) and f2 >= nm.fun - 1e-12 * max(1.0, abs(nm.fun)):
                    g = objective(best_x)[1]
                    return Optimum(best_x, f2, float(np.max(np.abs(projected_gradient(best_x, g)))),
                                   nit, nfev, "Nelder-Mead", k)
            last = str(res2.message if not res2.success else res.message) or "iteration limit"
    raise ModelFitError(
        f"the {what} fit did not converge ({last.strip() or 'iteration limit'}); the data may not follow "
        "the model (too few repeat buyers, or too short an observation period) - try a longer period "
        "or a small penalizer"
    )


def _accepted(objective, x, gtol):
    """``(f, max |projected gradient|)`` if x is an optimum to the tolerance, else None."""
    f, g = objective(x)
    if not np.isfinite(f) or not np.all(np.isfinite(g)):
        return None
    pg = float(np.max(np.abs(projected_gradient(x, g))))
    return (float(f), pg) if pg <= gtol * max(1.0, abs(f)) else None
