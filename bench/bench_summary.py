"""Benchmark: customer summary in DuckDB vs lifetimes' summary_data_from_transaction_data.

Synthesizes N purchase events (default 10M, ~1M customers, two years, revenue) in
DuckDB SQL directly into an in-memory warehouse, then times
``analytics.summary.customer_summary`` (no persistence, and with persistence) and
lifetimes on the same transactions (as a pandas DataFrame with integer customer
ids, which is lifetimes' fastest case; --string-ids gives it the warehouse's strings), checks that frequency / recency / T /
monetary_value agree to 1e-9 relative, and prints both times, the ratio (goal >= 7x) and the
machine's load average beside them. Both sides also report their process CPU time (DuckDB's
threads included), which a busy shared machine distorts less than the wall time: DuckDB's two
threads lose more to other processes than lifetimes' one.

    .venv/bin/python bench/bench_summary.py [--events 10000000] [--customers 1000000] [--unit weeks] [--repeat 2] [--string-ids] [--items-per-order 1]

lifetimes must import (it needs setuptools < 81 for pkg_resources).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from analytics.summary import customer_summary
from analytics.warehouse import Warehouse


def synthesize(wh: Warehouse, n_events: int, n_customers: int, items_per_order: int = 1) -> None:
    """n purchase events (order lines): order o = i // items_per_order has one customer and time."""
    cur = wh.cursor()
    cur.execute("INSERT INTO datasets (name) VALUES ('bench')")
    cur.execute(
        """
        INSERT INTO events (dataset, customer_id, event_time, event_type, revenue, ingestion_id)
        SELECT 'bench',
               CAST(hash(o) % $c AS VARCHAR),
               TIMESTAMP '2023-01-01' + to_seconds(CAST(hash(o * 7 + 1) % (730 * 86400) AS BIGINT)),
               'purchase',
               CAST(hash(i * 13 + 5) % 20000 AS DOUBLE) / 100.0 + 1.0,
               1
        FROM (SELECT i, i // $k AS o FROM range($n) t(i))
        """,
        {"n": n_events, "c": n_customers, "k": items_per_order},
    )


GOAL = 7.0


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--unit", default="weeks", choices=["days", "weeks"])
    ap.add_argument("--as-of", default="2024-12-31")
    ap.add_argument("--repeat", type=int, default=2, help="runs of ours; the best is reported")
    ap.add_argument("--items-per-order", type=int, default=1,
                    help="order lines per order (same customer and time); 1 = every event its own order")
    ap.add_argument("--string-ids", action="store_true",
                    help="give lifetimes the customer ids as the warehouse stores them (strings) "
                         "instead of integers (its fastest case, the default)")
    args = ap.parse_args()
    mult = {"days": 1, "weeks": 7}[args.unit]

    wh = Warehouse(":memory:")
    t0 = time.perf_counter()
    synthesize(wh, args.events, args.customers, args.items_per_order)
    print(f"synthesized {args.events:,} purchase events ({args.items_per_order} per order) "
          f"in {time.perf_counter() - t0:.1f} s")

    times, cpus = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = customer_summary(wh, "bench", args.as_of, args.unit, persist=False)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    t_ours, c_ours = min(times), min(cpus)
    t0 = time.perf_counter()
    customer_summary(wh, "bench", args.as_of, args.unit, persist=True)
    t_persist = time.perf_counter() - t0
    t0 = time.perf_counter()
    customer_summary(wh, "bench", args.as_of, args.unit, persist=True)
    t_reuse = time.perf_counter() - t0
    print(f"valuescope customer_summary: {t_ours:.2f} s best of {args.repeat} "
          f"({', '.join(f'{t:.2f}' for t in times)}; {len(ours):,} customers); "
          f"with persisting {t_persist:.2f} s; reusing the persisted run {t_reuse:.2f} s; "
          f"CPU {c_ours:.2f} s ({load()})")

    id_sql = "customer_id" if args.string_ids else "CAST(customer_id AS BIGINT) AS customer_id"
    tx = wh.cursor().execute(f"SELECT {id_sql}, event_time, revenue FROM events").df()
    warnings.simplefilter("ignore")
    from lifetimes.utils import summary_data_from_transaction_data

    t0, c0 = time.perf_counter(), time.process_time()
    ref = summary_data_from_transaction_data(
        tx, "customer_id", "event_time", monetary_value_col="revenue",
        observation_period_end=args.as_of, freq="D", freq_multiplier=mult,
    )
    t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0
    print(f"lifetimes summary_data_from_transaction_data ({'string' if args.string_ids else 'integer'} ids): "
          f"{t_ref:.2f} s, CPU {c_ref:.2f} s ({len(ref):,} customers; {load()})")
    ref.index = ref.index.astype(str)
    ref = ref.sort_index()
    mine = ours.loc[ref.index]
    worst = 0.0
    for col in ("frequency", "recency", "T", "monetary_value"):
        a, b = mine[col].to_numpy(), ref[col].to_numpy()
        rel = np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
        worst = max(worst, float(rel))
    equal = len(mine) == len(ours) and worst <= 1e-9
    print(f"equal to lifetimes: {equal} (max relative difference {worst:.2e})")
    print(f"speed-up: {t_ref / t_ours:.1f}x wall (goal >= {GOAL:.0f}x), {c_ref / c_ours:.1f}x CPU ({load()})")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
