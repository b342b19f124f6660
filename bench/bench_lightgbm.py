"""Benchmark: LightGBMValueModel.fit on 1M customers x 25 features.

Target (issue 5): under 60 s on the 2-core dev VM. Fits both models (Tweedie
value + binary churn) with early stopping on a 10 % validation split, as the
backtest does, and prints the figures.

    .venv/bin/python bench/bench_lightgbm.py [--customers 1000000] [--features 25]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from analytics.predict import metrics
from analytics.predict.gbm import LightGBMValueModel


def make_data(n: int, n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    X[:, 0] = rng.poisson(3, n)  # frequency-like
    X[:, 1] = rng.uniform(0, 365, n)  # recency-like
    logit = 0.6 * X[:, 0] - X[:, 1] / 80 + 0.3 * X[:, 2]
    buys = rng.random(n) < 1 / (1 + np.exp(-logit))
    value = np.where(buys, np.exp(3 + 0.5 * X[:, 3]) * (1 + rng.poisson(0.5 * X[:, 0])), 0.0)
    cols = [f"feature_{i:02d}" for i in range(n_features)]
    return pd.DataFrame(X, columns=cols), value, (~buys).astype(float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    X, y, c = make_data(args.customers, args.features)
    n_val = args.customers // 10
    model = LightGBMValueModel(n_jobs=args.threads, random_state=0)
    t0 = time.perf_counter()
    c0 = time.process_time()
    model.fit(X.iloc[n_val:], y[n_val:], c[n_val:],
              X_val=X.iloc[:n_val], y_value_val=y[:n_val], y_churn_val=c[:n_val])
    fit_s = time.perf_counter() - t0
    fit_cpu = time.process_time() - c0
    t0 = time.perf_counter()
    pv = model.predict_value(X.iloc[:n_val])
    pc = model.predict_churn(X.iloc[:n_val])
    pred_s = time.perf_counter() - t0

    print(f"machine: {platform.node()} {os.cpu_count()} cores, {args.threads} LightGBM threads")
    print(f"customers={args.customers:,} features={args.features} (train {args.customers - n_val:,}, validation {n_val:,})")
    print(f"best iterations: value={model.best_iteration_['value']} churn={model.best_iteration_['churn']}")
    print(f"fit (both models, early stopping): {fit_s:.1f} s  (target < 60 s: {'OK' if fit_s < 60 else 'MISSED'}, "
          f"ratio to target {fit_s / 60:.2f})")
    print(f"fit CPU time (all threads): {fit_cpu:.1f} s; wall/CPU {fit_s / fit_cpu:.2f} "
          f"(wall >> CPU / threads means other processes were competing for the cores; "
          f"load average now {os.getloadavg()[0]:.1f})")
    print(f"predict value+churn for {n_val:,} customers: {pred_s:.2f} s")
    print(f"validation normalized Gini {metrics.normalized_gini(y[:n_val], pv):.3f}, "
          f"churn ROC AUC {metrics.roc_auc(c[:n_val], pc):.3f}")


if __name__ == "__main__":
    main()
