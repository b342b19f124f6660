"""Benchmark: a segment report at scale (analytics.reports).

A synthetic events table in an in-memory warehouse: ``--customers`` customers, each
with a first purchase in 2023-2024, 1-8 purchase days (one item of 10,000 in 20
categories each), a few views and carts and sometimes a return (about 10 events per
customer). A saved segment "net revenue >= 300" (roughly a third of the customers).
Timed (median of ``--repeats``):

* ``build_frame``: the customer frame (summary + scores), which the Reports page takes from
  its cache (``dashboard.cache.explorer_frame``), so it is shown apart;
* ``expected_clv``: the BG/NBD + Gamma-Gamma fit on every buyer (no model is published),
  also cached by the page (``dashboard.cache.reports_expected_clv``);
* ``build_report`` given both: what a "Build the report" click costs, and its SQL part
  (monthly trend, top categories/items over the events of the members, a registered
  relation of their ids);
* ``render_html``: the self-contained HTML file (plotly.js inline) and its size;
* ``create_report`` / ``get_report``: storing the snapshot and opening a permalink.

Prints figures and the ratio to the targets (report build < 10 s at 1M customers on the
2-core dev VM; opening a permalink < 0.1 s: it reads one stored row). No asserts.

    .venv/bin/python bench/bench_reports.py [--customers 1000000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import timed  # noqa: E402

BUILD_TARGET_S = 10.0
OPEN_TARGET_S = 0.1


def synthetic_warehouse(n: int):
    from analytics.warehouse import Warehouse

    wh = Warehouse(":memory:")
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES ('bench')")
        tx.execute(
            """
            INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, category, revenue)
            WITH c AS (
                SELECT i AS c, hash(i) AS h FROM range(?) t(i)
            ), p AS (
                SELECT c, h, k,
                       TIMESTAMP '2023-01-01' + to_days(CAST(h % 600 AS INTEGER))
                           + to_days(CAST(k * (5 + (h >> 8) % 60) AS INTEGER))
                           + to_minutes(CAST((h >> 16) % 1440 AS INTEGER)) AS t,
                       (hash(c, k) % 10000) AS item
                FROM c, range(8) r(k)
                WHERE k < 1 + (h >> 24) % 8
            )
            SELECT 'bench', 'c' || c, t, e.kind, 'o' || c || '-' || k, 'SKU' || item,
                   'cat' || (item % 20),
                   -- spend: a customer level times a per-order factor, both lognormal (Box-Muller
                   -- over hashes), so Gamma-Gamma has the kind of data it models
                   round(CASE e.kind WHEN 'purchase' THEN 1.0 WHEN 'return' THEN 0.5 END
                         * 40 * exp(0.6 * sqrt(-2 * ln((hash(c, 7) % 1000000 + 0.5) / 1e6))
                                    * cos(2 * pi() * (hash(c, 8) % 1000000) / 1e6))
                         * exp(0.3 * sqrt(-2 * ln((hash(c, k, 1) % 1000000 + 0.5) / 1e6))
                                    * cos(2 * pi() * (hash(c, k, 3) % 1000000) / 1e6)), 2)
            FROM p, (VALUES ('view'), ('cart'), ('purchase'), ('return')) e(kind)
            WHERE e.kind <> 'return' OR hash(c, k, 2) % 12 = 0
            """,
            [int(n)],
        )
    return wh


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from analytics.explorer import build_frame
    from analytics.reports import build_report, create_report, get_report, render_html
    from analytics.reports import snapshot as snap_mod
    from analytics.segments import store

    t0 = time.perf_counter()
    wh = synthetic_warehouse(args.customers)
    n_events, last = wh.cursor().execute("SELECT count(*), max(event_time) FROM events").fetchone()
    print(f"synthetic events: {n_events:,} for {args.customers:,} customers "
          f"({time.perf_counter() - t0:.1f} s to generate)")
    as_of = last.date()
    store.save_segment(wh, "big", {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">=", "value": 300}]})

    t_frame, frame = timed(lambda: build_frame(wh, "bench", as_of), 1)
    print(f"build_frame (cached by the page, once per dataset version and day): {t_frame:.2f} s, "
          f"{len(frame):,} customers")

    t_clv, expected = timed(lambda: snap_mod.expected_clv(frame), 1)
    if expected[2]:
        print(f"  note: {expected[2]}")
    t_build, snap = timed(lambda: build_report(wh, "bench", as_of, segment="big", frame=frame, expected=expected),
                          args.repeats)
    mask = frame["net_revenue"].to_numpy() >= 300
    members = frame.index[mask].astype(str).to_numpy(dtype=object)
    net = frame["net_revenue"].to_numpy()
    t_sql, _ = timed(lambda: snap_mod._sql_sections(wh, "bench", pd.Timestamp(as_of), members, 24, 10,
                                                    float(net[mask].sum()), float(net.sum())), args.repeats)
    print(f"expected CLV (BG/NBD + Gamma-Gamma fit; cached by the page like the frame): {t_clv:.2f} s")
    print(f"build_report with the cached frame and expected CLV (a 'Build the report' click): {t_build:.2f} s "
          f"(target {BUILD_TARGET_S:.0f} s: {t_build / BUILD_TARGET_S:.2f} of it) for "
          f"{snap['size']['customers']:,} members ({100 * snap['size']['share']:.1f} %)")
    print(f"  of which the SQL trend + top lists: {t_sql:.2f} s")
    print(f"first report of a day, nothing cached (frame + expected CLV + report): "
          f"{t_frame + t_clv + t_build:.2f} s")

    t_render, doc = timed(lambda: render_html(snap), args.repeats)
    print(f"render_html: {t_render:.3f} s, {len(doc.encode()) / 1e6:.2f} MB "
          f"(snapshot JSON {len(json.dumps(snap)) / 1e3:.0f} kB; the rest is plotly.js)")

    t_create, token = timed(lambda: create_report(wh, snap), 1)
    t_open, again = timed(lambda: get_report(wh, token), max(5, args.repeats))
    assert again == snap
    print(f"create_report: {t_create * 1000:.1f} ms; get_report (open a permalink): {t_open * 1000:.1f} ms "
          f"(target {OPEN_TARGET_S * 1000:.0f} ms: {t_open / OPEN_TARGET_S:.3f} of it)")
    print(f"chart points: trend {len(snap['trend']['months'])} months, Lorenz "
          f"{len(snap['concentration']['lorenz']['customer_share'])} points, top lists "
          f"{len(snap['top_categories'])} + {len(snap['top_items'])} rows")


if __name__ == "__main__":
    main()
