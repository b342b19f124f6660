"""Benchmark: BG/NBD fit on 1M customers, valuescope vs lifetimes' BetaGeoFitter.

The summary is synthetic: 1M customers drawn from the BG/NBD process
(``analytics.clv_models.sample_bgnbd_summary``) with CDNOW-like parameters
(r=0.24, alpha=4.4, a=0.79, b=2.43; weeks), first purchases spread uniformly over
a year (T = whole days / 7) and recency rounded down to whole days, as a
``customer_summary`` in weeks would give. Both models are fitted on exactly the
same arrays; the log-likelihoods of both fitted parameter sets are evaluated with
the same function and compared.

    .venv/bin/python bench/bench_bgnbd.py [--customers 1000000] [--seed 42]

lifetimes must import (it needs setuptools < 81 for pkg_resources).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from analytics.clv_models import BetaGeoModel, sample_bgnbd_summary


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    n = args.customers
    rng = np.random.default_rng(args.seed)
    T = rng.integers(1, 366, n) / 7.0
    d = sample_bgnbd_summary(n, 0.24, 4.4, 0.79, 2.43, T, random_state=args.seed)
    d["recency"] = np.floor(d["recency"] * 7.0) / 7.0
    x, tx, tt = d["frequency"].to_numpy(), d["recency"].to_numpy(), d["T"].to_numpy()
    print(f"{n:,} customers, {int((x > 0).sum()):,} repeat buyers, "
          f"{len(d.drop_duplicates()):,} distinct (frequency, recency, T) rows")

    t0 = time.perf_counter()
    ours = BetaGeoModel().fit(x, tx, tt, unit="weeks")
    t_ours = time.perf_counter() - t0
    print(f"valuescope BetaGeoModel.fit: {t_ours:.2f} s  {ours}  LL {ours.log_likelihood_:.6f}")

    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter

    t0 = time.perf_counter()
    ref = BetaGeoFitter().fit(x, tx, tt)
    t_ref = time.perf_counter() - t0
    p = ref.params_
    twin = BetaGeoModel().fit(x[:1000], tx[:1000], tt[:1000], unit="weeks")
    twin.r_, twin.alpha_, twin.a_, twin.b_ = (float(p[k]) for k in ("r", "alpha", "a", "b"))
    ll_ref = twin.log_likelihood(x, tx, tt)
    print(f"lifetimes BetaGeoFitter.fit: {t_ref:.2f} s  r={p['r']:.4g} alpha={p['alpha']:.4g} "
          f"a={p['a']:.4g} b={p['b']:.4g}  LL {ll_ref:.6f}")
    rel = abs(ours.log_likelihood_ - ll_ref) / abs(ll_ref)
    print(f"log-likelihood relative difference: {rel:.2e} (target <= 1e-6; "
          f"valuescope {'higher' if ours.log_likelihood_ >= ll_ref else 'lower'})")
    print(f"speed-up: {t_ref / t_ours:.1f}x (target >= 5x)")
    return 0 if rel <= 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
