"""Benchmark: Explorer interactions at 1M customers (target: < 1 s server time each).

A synthetic customer frame (bench_rescore.synthetic_summary + RFM segment and formula
CLV from analytics.scores.Scorer, as analytics.explorer.build_frame makes it) at two
as-of dates, then times what a page interaction recomputes from the cached frames:

* compare: category_groups(rfm_segment) + segment_comparison over all segments;
* lorenz: lorenz_curve (1000 points) + top_share 10% / 20% + gini;
* migration: segment_migration between the two dates + sankey_data;
* search: search_customers substring over all ids (first 2000 rows);
* cohorts / timeline: DuckDB over a synthetic events table (``--events-customers``
  customers, a few purchases each), in memory.

Also prints the once-per-date cost of the Scorer (cached by the page) and the largest
number of points a chart gets. Prints figures only (no asserts).

    .venv/bin/python bench/bench_explorer.py [--customers 1000000] [--events-customers 1000000] [--repeats 5]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analytics import explorer  # noqa: E402
from analytics.scores import Scorer  # noqa: E402
from bench_rescore import synthetic_summary  # noqa: E402

TARGET_S = 1.0


def scored_frame(n: int, seed: int) -> tuple[pd.DataFrame, float]:
    summary = synthetic_summary(n, seed=seed)
    t0 = time.perf_counter()
    scorer = Scorer(summary)
    sc = scorer.frame(scorer.score(top_n=1), with_params=False).set_index("customer_id")
    frame = summary.join(sc[["rfm_segment", "clv_formula"]].rename(columns={"clv_formula": "clv"}))
    frame.attrs = {"as_of": str(summary.attrs["as_of"].date())}
    return frame, time.perf_counter() - t0


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def events_warehouse(n: int):
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES ('bench')")
        # each customer: a first purchase day in 2022-2023, then 0-5 more purchases up to ~2 years later
        tx.execute(
            """
            INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, revenue)
            SELECT 'bench', 'c' || c, TIMESTAMP '2022-01-01' + to_days(CAST(f + k * g AS INTEGER)),
                   'purchase', 'o' || c || '-' || k, 10 + (c % 90)
            FROM (SELECT range AS c, CAST(hash(range) % 700 AS BIGINT) AS f, CAST(1 + hash(range * 7) % 120 AS BIGINT) AS g,
                         CAST(hash(range * 13) % 6 AS BIGINT) AS extra FROM range(?)) s,
                 LATERAL (SELECT range AS k FROM range(extra + 1)) r
            """,
            [n],
        )
    return wh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--events-customers", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()

    frame_b, t_b = scored_frame(a.customers, seed=42)
    frame_a, t_a = scored_frame(a.customers, seed=43)
    print(f"customers: {len(frame_b):,}; Scorer + frame per as-of date (cached by the page): "
          f"{t_b:.2f} s / {t_a:.2f} s")

    rows = []

    def compare():
        return explorer.segment_comparison(frame_b, explorer.category_groups(frame_b, "rfm_segment"))

    def lorenz():
        v = frame_b["net_revenue"]
        return (explorer.lorenz_curve(v, 1000), explorer.top_share(v, 0.1), explorer.top_share(v, 0.2),
                explorer.gini(v))

    def migration():
        flows = explorer.segment_migration(frame_a, frame_b, "rfm_segment")
        return flows, explorer.sankey_data(flows)

    def search():
        return explorer.search_customers(frame_b, "c12345", limit=2000)

    t, table = timed(compare, a.repeats)
    rows.append(("compare RFM segments", t, len(table) * (table.shape[1] - 1)))
    t, out = timed(lorenz, a.repeats)
    rows.append(("lorenz + top shares + gini", t, len(out[0])))
    t, out = timed(migration, a.repeats)
    rows.append(("migration between two dates", t, len(out[0])))
    t, out = timed(search, a.repeats)
    rows.append((f"search ids ({out[1]:,} matches)", t, 0))

    t0 = time.perf_counter()
    wh = events_warehouse(a.events_customers)
    n_events = wh.cursor().execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"events table: {n_events:,} purchases of {a.events_customers:,} customers "
          f"(built in {time.perf_counter() - t0:.1f} s)")
    t, coh = timed(lambda: explorer.cohort_retention(wh, "bench", "2024-12-31", 24), a.repeats)
    rows.append(("cohort retention (DuckDB)", t, len(coh)))
    t, tl = timed(lambda: explorer.customer_timeline(wh, "bench", "c777", 500), a.repeats)
    rows.append(("customer timeline", t, len(tl)))
    wh.close()

    print(f"\n{'interaction':36s} {'median s':>9s} {'ratio to 1 s':>13s} {'chart points':>13s}")
    for name, t, pts in rows:
        print(f"{name:36s} {t:9.3f} {t / TARGET_S:13.2f} {pts:13,d}")


if __name__ == "__main__":
    main()
