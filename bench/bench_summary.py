"""Benchmark: customer summary in DuckDB vs lifetimes' summary_data_from_transaction_data.

Synthesizes N purchase events (default 10M, ~1M customers, two years, revenue) in
DuckDB SQL directly into an in-memory warehouse, then times
``analytics.summary.customer_summary`` (no persistence, and with persistence) and
lifetimes on the same transactions (as a pandas DataFrame with integer customer
ids, which is lifetimes' fastest case; --string-ids gives it the warehouse's strings), checks that frequency / recency / T /
monetary_value agree to 1e-9 relative, and prints both times, the ratio (goal >= 7x) and the
machine's load average beside them. Both sides also report their process CPU time (DuckDB's
threads included), which a busy shared machine distorts less than the wall time: DuckDB's two
threads lose more to other processes than lifetimes' one. ``--threads 1`` runs DuckDB on one thread,
like lifetimes (on a busy 2-core machine its second thread costs CPU and gains little wall time).

Two summaries are timed: from the events (what a first summary after a load costs), and from the
per-customer, per-day rows that the preparation after every load stores (``customer_days``, built by
``analytics.summary.summary_history``; its build time is printed too), which ``customer_summary``
reads whenever they are current. Both are checked against lifetimes.

    python bench/bench_summary.py [--events 10000000] [--customers 1000000] [--unit weeks] [--repeat 2] [--string-ids] [--text-ids | --hashed-ids] [--no-keys] [--items-per-order 1] [--threads N]

The events get their customers' dense keys as a load assigns them (``analytics.customer_keys``:
ids of no numeric form, such as ``--hashed-ids``, are numbered in ``customer_keys`` and every
event carries its key; its time is printed); ``--no-keys`` leaves them out (the SQL statement).

lifetimes must import (it needs setuptools < 81 for pkg_resources).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from analytics.customer_keys import keys_for_load
from analytics.summary import customer_summary, summary_history
from analytics.warehouse import Warehouse


def synthesize(wh: Warehouse, n_events: int, n_customers: int, items_per_order: int = 1, prefix: str = "",
               hashed: bool = False, keys: bool = True) -> None:
    """n purchase events (order lines): order o = i // items_per_order has one customer and time;
    customer ids are integers written as text, after ``prefix`` if given ("c123": not integers),
    or with ``hashed`` 16 hex digits of the number's MD5 (ids of no text-and-number form). With
    ``keys`` the customers get their dense keys as a load gives them
    (``analytics.customer_keys.keys_for_load``: only ids of no numeric form get any)."""
    cur = wh.cursor()
    ident = "$prefix || CAST(hash(o) % $c AS VARCHAR)"
    if hashed:
        ident = f"substr(md5({ident}), 1, 16)"
    cur.execute("INSERT INTO datasets (name) VALUES ('bench')")
    cur.execute(
        f"""
        INSERT INTO events (dataset, customer_id, event_time, event_type, revenue, ingestion_id)
        SELECT 'bench',
               {ident},
               TIMESTAMP '2023-01-01' + to_seconds(CAST(hash(o * 7 + 1) % (730 * 86400) AS BIGINT)),
               'purchase',
               CAST(hash(i * 13 + 5) % 20000 AS DOUBLE) / 100.0 + 1.0,
               1
        FROM (SELECT i, i // $k AS o FROM range($n) t(i))
        """,
        {"n": n_events, "c": n_customers, "k": items_per_order, "prefix": prefix},
    )
    if keys:
        # ids of no numeric form get their dense keys (a load writes them with its rows; here the rows
        # are written first and numbered after, as a load does for a keyless dataset's earlier rows)
        t0, c0 = time.perf_counter(), time.process_time()
        with wh.transaction() as tx:
            n = keys_for_load(tx, "bench", 1)
        if n:
            print(f"customer keys numbered after the rows were written (keys_for_load): {n:,} keys in {time.perf_counter() - t0:.1f} s, "
                  f"CPU {time.process_time() - c0:.1f} s ({load()})")


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
    ap.add_argument("--text-ids", action="store_true",
                    help="customer ids of a text and a number ('c123'), which the packed sort takes as "
                         "it takes integer ids (implies --string-ids)")
    ap.add_argument("--hashed-ids", action="store_true",
                    help="customer ids of 16 hex digits ('3f2a...'): no integer in them, so the summary "
                         "runs as one SQL statement instead of the packed sort (implies --string-ids)")
    ap.add_argument("--no-keys", action="store_true",
                    help="write the events without the dense customer keys a load assigns (ids of no numeric "
                         "form then take the SQL statement, as before keys)")
    ap.add_argument("--threads", type=int, default=None,
                    help="DuckDB threads for our side (default: DuckDB's, one per core)")
    args = ap.parse_args()
    mult = {"days": 1, "weeks": 7}[args.unit]

    wh = Warehouse(":memory:")
    if args.threads:
        wh.cursor().execute(f"SET threads = {int(args.threads)}")
    threads = wh.cursor().execute("SELECT current_setting('threads')").fetchone()[0]
    t0 = time.perf_counter()
    synthesize(wh, args.events, args.customers, args.items_per_order, "c" if args.text_ids else "",
               hashed=args.hashed_ids, keys=not args.no_keys)
    print(f"synthesized {args.events:,} purchase events ({args.items_per_order} per order) "
          f"in {time.perf_counter() - t0:.1f} s")

    def timed(label: str):
        times, cpus = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            res = customer_summary(wh, "bench", args.as_of, args.unit, persist=False)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        print(f"valuescope customer_summary {label} ({threads} DuckDB threads): {min(times):.2f} s best of "
              f"{args.repeat} ({', '.join(f'{t:.2f}' for t in times)}; {len(res):,} customers); "
              f"CPU {min(cpus):.2f} s ({load()})")
        return res, min(times), min(cpus)

    ours, t_ours, c_ours = timed("from the events")
    t0 = time.perf_counter()
    customer_summary(wh, "bench", args.as_of, args.unit, persist=True)
    t_persist = time.perf_counter() - t0
    t0 = time.perf_counter()
    customer_summary(wh, "bench", args.as_of, args.unit, persist=True)
    t_reuse = time.perf_counter() - t0
    print(f"  with persisting {t_persist:.2f} s; reusing the persisted run {t_reuse:.2f} s")
    t0, c0 = time.perf_counter(), time.process_time()
    summary_history(wh, "bench", persist=True)
    print(f"per-day history stored as the preparation after a load does (summary_history): "
          f"{time.perf_counter() - t0:.2f} s, CPU {time.process_time() - c0:.2f} s ({load()})")
    days, t_days, c_days = timed("from the stored per-day rows")

    args.string_ids = args.string_ids or args.text_ids or args.hashed_ids
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

    def worst_difference(res) -> float:
        mine = res.loc[ref.index]
        worst = 0.0 if len(res) == len(ref) else float("inf")
        for col in ("frequency", "recency", "T", "monetary_value"):
            a, b = mine[col].to_numpy(), ref[col].to_numpy()
            rel = np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
            worst = max(worst, float(rel))
        return worst

    w_events, w_days = worst_difference(ours), worst_difference(days)
    equal = w_events <= 1e-9 and w_days <= 1e-9
    print(f"equal to lifetimes: {equal} (max relative difference {w_events:.2e} from the events, "
          f"{w_days:.2e} from the stored days)")
    print(f"speed-up from the events: {t_ref / t_ours:.1f}x wall (goal >= {GOAL:.0f}x), "
          f"{c_ref / c_ours:.1f}x CPU ({load()})")
    print(f"speed-up from the stored per-day rows: {t_ref / t_days:.1f}x wall, {c_ref / c_days:.1f}x CPU")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
