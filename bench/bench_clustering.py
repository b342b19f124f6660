"""Benchmark: customer clustering and k guidance on a synthetic 1M-customer feature table.

The table has ``customer_summary``-like columns for six planted personas (loyal
high spenders, newcomers, at-risk big spenders, bargain hunters, window
shoppers, one-time buyers) drawn with NumPy, so the benchmark measures the
clustering library only (no ingestion / SQL). Timed:

* a single k-means fit (k=6, default features, ``CustomerClustering`` defaults:
  fit on a seeded 100k sample, n_init=3, then assign every customer, profiles
  and names included) — goal < 3 s;
* the k guidance for k = 2..12 (k-means on a 50k sample per k, inertia over all
  customers, silhouette on a seeded 10k sample) — goal < 20 s;
* for information: saving the run with every assignment to an in-memory
  warehouse and loading it back, mini-batch k-means and a Gaussian mixture (k=6).

    .venv/bin/python bench/bench_clustering.py [--customers 1000000] [--seed 0] [--skip-gmm]

Prints each figure, its goal and the ratio time / goal (below 1 meets it), and
the adjusted Rand index against the planted personas as a sanity check.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd


def synthetic_features(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    # share, mean orders, order value median, views, searches, tenure days, days since purchase, rating
    spec = np.array([
        [0.15, 9.0, 160.0, 36, 5, 580, 60, 4.4],    # loyal high spender
        [0.15, 4.0, 60.0, 20, 4, 110, 20, 4.0],     # promising newcomer
        [0.15, 8.0, 150.0, 25, 3, 630, 340, 2.2],   # at-risk big spender
        [0.17, 9.0, 23.0, 35, 18, 530, 60, 3.5],    # bargain hunter
        [0.18, 0.0, 0.0, 44, 8, 510, np.nan, np.nan],  # window shopper
        [0.20, 1.0, 40.0, 2, 0, 400, 400, 3.0],     # one-time buyer
    ])
    persona = rng.choice(len(spec), size=n, p=spec[:, 0] / spec[:, 0].sum())
    p = spec[persona]
    orders = np.where(persona == 5, 1, rng.poisson(p[:, 1]))
    orders = np.where((persona != 4) & (orders == 0), 1, orders).astype(np.float64)
    aov = p[:, 2] * rng.lognormal(0, 0.35, n)
    total = orders * aov
    ret = total * rng.beta(1, 30, n)
    tenure = np.maximum(p[:, 5] * rng.lognormal(0, 0.2, n), 1)
    since = np.minimum(p[:, 6] * rng.lognormal(0, 0.4, n), tenure)
    T = np.where(orders > 0, tenure - rng.uniform(0, 5, n), np.nan)
    recency = np.where(orders > 0, np.maximum(T - since, 0), np.nan)
    frame = pd.DataFrame({
        "frequency": np.where(orders > 0, orders - 1, np.nan),
        "recency": recency,
        "T": T,
        "total_revenue": total,
        "return_revenue": ret,
        "net_revenue": total - ret,
        "n_orders": orders,
        "n_views": rng.poisson(p[:, 3]).astype(np.float64),
        "n_searches": rng.poisson(p[:, 4]).astype(np.float64),
        "avg_rating": np.clip(rng.normal(p[:, 7], 0.6), 1, 5),
        "tenure": tenure,
    }, index=pd.Index([f"C{i:07d}" for i in range(n)], name="customer_id"))
    return frame, persona


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    from sklearn.metrics import adjusted_rand_score

    from analytics.segments.clustering import CustomerClustering, k_guidance

    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-gmm", action="store_true")
    args = ap.parse_args()
    n = args.customers

    (frame, persona), t_gen = timed(lambda: synthetic_features(n, args.seed))
    print(f"synthetic feature table: {n:,} customers x {frame.shape[1]} columns in {t_gen:.1f} s "
          f"({os.cpu_count()} CPUs visible)")
    results = []

    def report(what, seconds, goal=None, extra=""):
        ratio = f"  ratio {seconds / goal:.2f} of the {goal:g} s goal" if goal else ""
        print(f"{what:<46} {seconds:7.2f} s{ratio}{extra}")
        results.append((what, seconds, goal))

    CustomerClustering(n_clusters=6).fit(frame.iloc[:20_000])  # warm imports / numba-free JIT paths

    m, t = timed(lambda: CustomerClustering(n_clusters=6, random_state=0).fit(frame))
    ari = adjusted_rand_score(persona, m.labels_.to_numpy())
    report("k-means fit, k=6, 1 run (fit + assign all)", t, 3.0, f"  ARI vs planted {ari:.2f}")
    for i, name in enumerate(m.names_):
        print(f"    cluster {i}: {name}  ({m.cluster_profiles_.loc[i, 'size_share']:.1%} of customers, "
              f"{m.cluster_profiles_.loc[i, 'revenue_share']:.1%} of revenue)")

    g, t = timed(lambda: k_guidance(frame, k_values=range(2, 13), random_state=0))
    report("k guidance k=2..12 (inertia + silhouette 10k)", t, 20.0,
           f"  suggested k={g.suggested_k}")
    print("    " + g.reason)
    print(g.table.round(3).to_string())

    from analytics.segments import store
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    run, t = timed(lambda: store.save_clustering_run(wh, m, "bench", "2025-12-31"))
    report(f"save run + {n:,} assignments (in-memory DuckDB)", t)
    _, t = timed(lambda: store.load_assignments(wh, run))
    report("load assignments", t)
    wh.close()

    mb, t = timed(lambda: CustomerClustering(n_clusters=6, algorithm="minibatch_kmeans", n_init=3).fit(frame))
    report("mini-batch k-means fit, k=6 (all rows)", t, None,
           f"  ARI vs planted {adjusted_rand_score(persona, mb.labels_.to_numpy()):.2f}")
    if not args.skip_gmm:
        gm, t = timed(lambda: CustomerClustering(n_clusters=6, algorithm="gmm", n_init=1).fit(frame))
        report("Gaussian mixture fit, k=6 (100k sample)", t, None,
               f"  ARI vs planted {adjusted_rand_score(persona, gm.labels_.to_numpy()):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
