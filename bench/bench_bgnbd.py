"""Benchmark: BG/NBD or Pareto/NBD fit on 1M customers, valuescope vs lifetimes.

The summary is synthetic: 1M customers drawn from the model's process
(``analytics.clv.sample_bgnbd_summary`` / ``sample_paretonbd_summary``) with CDNOW-like
parameters (BG/NBD r=0.24, alpha=4.4, a=0.79, b=2.43; Pareto/NBD r=0.55, alpha=10.58,
s=0.61, beta=11.67; weeks), first purchases spread uniformly over a year (T = whole days / 7)
and recency rounded down to whole days, as a ``customer_summary`` in weeks would give. Both
libraries are fitted on exactly the same arrays (lifetimes' fitters take them as they are;
valuescope groups identical rows itself); the log-likelihoods of both fitted parameter sets are
evaluated with the same function and compared.

    .venv/bin/python bench/bench_bgnbd.py [--model bgnbd|paretonbd]
        [--customers 1000000] [--seed 42] [--lifetimes-limit SECONDS] [--repeats N] [--ours-only]

``--lifetimes-limit``: stop lifetimes' fit after that many seconds (Pareto/NBD's fit in
lifetimes evaluates the hypergeometric function on every row for every Nelder-Mead step) and
report the speed-up as a lower bound. lifetimes must import (setuptools < 81 for pkg_resources).
"""
from __future__ import annotations

import argparse
import os
import signal
import time
import warnings

import numpy as np

from analytics.clv import BetaGeoModel, ParetoNBDModel, sample_bgnbd_summary, sample_paretonbd_summary

MODELS = {
    "bgnbd": (BetaGeoModel, sample_bgnbd_summary, (0.24, 4.4, 0.79, 2.43), "BetaGeoFitter", ("r", "alpha", "a", "b")),
    "paretonbd": (ParetoNBDModel, sample_paretonbd_summary, (0.55, 10.58, 0.61, 11.67), "ParetoNBDFitter",
                  ("r", "alpha", "s", "beta")),
}


class _Limit(Exception):
    pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS), default="bgnbd")
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--lifetimes-limit", type=float, default=0.0, help="seconds; 0: no limit")
    ap.add_argument("--repeats", type=int, default=1, help="fit ours this many times; the best wall time counts")
    ap.add_argument("--ours-only", action="store_true", help="skip lifetimes (to compare two versions of ours)")
    args = ap.parse_args()
    cls, sample, truth, peer, names = MODELS[args.model]
    n = args.customers
    rng = np.random.default_rng(args.seed)
    T = rng.integers(1, 366, n) / 7.0
    d = sample(n, *truth, T, random_state=args.seed)
    d["recency"] = np.floor(d["recency"] * 7.0) / 7.0
    x, tx, tt = d["frequency"].to_numpy(), d["recency"].to_numpy(), d["T"].to_numpy()
    print(f"load average {os.getloadavg()[0]:.2f} at start; {n:,} customers, {int((x > 0).sum()):,} repeat buyers, "
          f"{len(d.drop_duplicates()):,} distinct (frequency, recency, T) rows")

    walls, cpus = [], []
    for _ in range(max(1, args.repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = cls().fit(x, tx, tt, unit="weeks")
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    t_ours = min(walls)
    print(f"valuescope {cls.__name__}.fit: {t_ours:.2f} s  {ours}  LL {ours.log_likelihood_:.6f}")
    if args.repeats > 1:
        print(f"  {len(walls)} fits: wall min {min(walls):.3f} / median {np.median(walls):.3f} s, "
              f"process CPU min {min(cpus):.3f} / median {np.median(cpus):.3f} s")
    if args.ours_only:
        return 0

    warnings.simplefilter("ignore")
    import lifetimes

    def stop(*_):
        raise _Limit

    limited = False
    t0 = time.perf_counter()
    if args.lifetimes_limit > 0:
        signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, args.lifetimes_limit)
    try:
        ref = getattr(lifetimes, peer)().fit(x, tx, tt)
    except _Limit:
        limited = True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    t_ref = time.perf_counter() - t0
    if limited:
        print(f"lifetimes {peer}.fit: stopped after {t_ref:.1f} s without a result")
        print(f"speed-up: more than {t_ref / t_ours:.1f}x; load average {os.getloadavg()[0]:.2f} at the end")
        return 0
    p = ref.params_
    twin = cls().fit(x[:5000], tx[:5000], tt[:5000], unit="weeks")
    twin._set_params([float(p[k]) for k in names], "weeks")  # lifetimes' optimum, our likelihood
    ll_ref = twin.log_likelihood(x, tx, tt)
    print(f"lifetimes {peer}.fit: {t_ref:.2f} s  " + " ".join(f"{k}={p[k]:.4g}" for k in names) + f"  LL {ll_ref:.6f}")
    rel = abs(ours.log_likelihood_ - ll_ref) / abs(ll_ref)
    print(f"log-likelihood relative difference: {rel:.2e} (target <= 1e-6; "
          f"valuescope {'higher' if ours.log_likelihood_ >= ll_ref else 'lower'})")
    print(f"speed-up: {t_ref / t_ours:.1f}x (aim >= 10x); load average {os.getloadavg()[0]:.2f} at the end")
    return 0 if rel <= 1e-6 or ours.log_likelihood_ >= ll_ref else 1


if __name__ == "__main__":
    raise SystemExit(main())
