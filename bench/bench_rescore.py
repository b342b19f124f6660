"""Benchmark: re-scoring every customer after a slider move (target < 300 ms at 1M customers).

Builds a synthetic customer summary (the columns ``customer_summary`` returns),
builds the ``Scorer`` once (ranking, normalization: what the page caches), then
times ``Scorer.score`` with new RFM weights, behaviour weights and CLV
parameters each time: all scores for all customers + the segment table + the
top customers + the histogram. Prints figures and the ratio to the target.

    .venv/bin/python bench/bench_rescore.py [--customers 1000000] [--repeats 15]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.scores import CLVParams, Scorer, compile_segment_rules  # noqa: E402

TARGET_MS = 300.0


def synthetic_summary(n: int, seed: int = 42) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp("2024-01-01")
    orders = rng.negative_binomial(1, 0.35, n)  # many one-time / zero buyers, a long tail
    last_days = rng.integers(0, 730, n)
    first_days = last_days + rng.integers(0, 730, n)
    day = np.timedelta64(1, "D")
    as_of64 = np.datetime64(as_of.to_datetime64(), "ns")
    first = np.where(orders > 0, as_of64 - first_days * day, np.datetime64("NaT"))
    last = np.where(orders > 0, as_of64 - last_days * day, np.datetime64("NaT"))
    df = pd.DataFrame(
        {
            "first_purchase": first.astype("datetime64[ns]"),
            "last_purchase": last.astype("datetime64[ns]"),
            "n_orders": orders,
            "net_revenue": np.round(orders * rng.gamma(2.0, 35.0, n), 2),
            "n_views": rng.poisson(25, n),
            "n_searches": rng.poisson(6, n),
            "n_carts": rng.poisson(3, n),
            "n_purchases": orders + rng.poisson(0.5, n) * (orders > 0),
            "n_reviews": rng.poisson(0.4, n),
        },
        index=pd.Index(np.char.add("c", np.arange(n).astype(str)).astype(object), name="customer_id"),
    )
    df.attrs.update(as_of=as_of, unit="days", dataset="bench")
    return df


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()

    t0 = time.perf_counter()
    summary = synthetic_summary(args.customers)
    t1 = time.perf_counter()
    scorer = Scorer(summary)
    t2 = time.perf_counter()
    smap = compile_segment_rules()
    rng = np.random.default_rng(7)
    scorer.score()  # warm-up (first-touch page faults)
    times = []
    for i in range(args.repeats):
        rfm_w = rng.uniform(0.1, 3.0, 3)
        beh_w = rng.uniform(0.0, 1.0, 5) + 0.01
        clv = CLVParams(
            margin=float(rng.uniform(0.1, 0.6)),
            horizon_months=float(rng.integers(3, 37)),
            discount_rate=float(rng.uniform(0.0, 0.2)),
            expected_lifetime_years=float(rng.uniform(1, 5)),
        )
        rank_by = ("clv_formula", "rfm_score", "behaviour_score")[i % 3]
        s = time.perf_counter()
        res = scorer.score(rfm_w, beh_w, clv, segment_map=smap, top_n=50, rank_by=rank_by)
        times.append((time.perf_counter() - s) * 1000.0)
    # a rule-table edit recompiles the 26-cell lookup too
    s = time.perf_counter()
    scorer.score(rules=[{"segment": "Recent", "r_min": 4, "r_max": 5, "fm_min": 1, "fm_max": 5}], fallback="Rest")
    edit_ms = (time.perf_counter() - s) * 1000.0

    med = statistics.median(times)
    print(f"customers:                       {args.customers:,}")
    print(f"synthetic summary built in       {t1 - t0:8.2f} s")
    print(f"Scorer built (ranks, norms) in   {t2 - t1:8.2f} s   (once per dataset/as-of; cached by the page)")
    print(f"re-score, {args.repeats} runs:  median {med:8.1f} ms   min {min(times):.1f} ms   max {max(times):.1f} ms")
    print(f"re-score after a rule-table edit {edit_ms:8.1f} ms")
    print(f"segments: {len(res.segment_table)}  top rows: {len(res.top_customers)}  histogram bins: {len(res.histogram)}")
    print(f"target {TARGET_MS:.0f} ms: median is {med / TARGET_MS:.2f}x the target ({TARGET_MS / med:.1f}x headroom)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
