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

With ``--page`` it measures the whole Explorer page instead (Streamlit AppTest, in process)
on the generated sample data (``sample_data`` generator, ``--customers`` customers, about 58
events each), built once into ``bench/out/explorer_sample_<N>.duckdb`` and reused: a cold
first run, then each interaction (group kind, compared segments, a new as-of date, back to a
seen date, the migration From date, a search, a customer timeline) with the page script's own
server time (the caption it prints) and the whole AppTest rerun, and last a run after clearing
Streamlit's caches (an app restart: the summary history is read back from the warehouse).
Persisted customer summaries and the stored summary history are dropped first, so the cold
run and new dates are really new.

    .venv/bin/python bench/bench_explorer.py --page [--customers 1000000]

With ``--history`` it times analytics.summary's summary history on the same warehouse: the
build from the events (no store), the read-back of the stored one, a summary at a new as-of
date from it against ``customer_summary`` (SQL over the events, not stored), and its memory.

    .venv/bin/python bench/bench_explorer.py --history [--customers 1000000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import timed  # noqa: E402

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


def _server_seconds(at) -> float:
    for c in at.caption:
        if c.value.startswith("Server time for this view:"):
            return float(c.value.split(":")[1].strip().split()[0])
    return float("nan")


def bench_page(customers: int, db: str | None) -> None:
    import datetime as dt
    import os

    from streamlit.testing.v1 import AppTest

    from bench_explorer_db import DATASET, build_sample_warehouse

    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    db = db or str(out / f"explorer_sample_{customers}.duckdb")
    t0 = time.perf_counter()
    info = build_sample_warehouse(db, customers)
    print(f"warehouse {db}: {info['events']:,} events of {customers:,} customers "
          f"({'reused' if info['reused'] else f'built in {time.perf_counter() - t0:.0f} s'})")

    from analytics.segments import store
    from analytics.summary import delete_summaries
    from analytics.warehouse import get_warehouse

    wh = get_warehouse(db)
    delete_summaries(wh, DATASET)
    for name, cond in (("Big spenders", {"field": "net_revenue", "operator": ">=", "value": 500}),
                       ("Lapsed", {"field": "time_since_purchase", "operator": ">=", "value": 180}),
                       ("Browsers", {"field": "n_orders", "operator": "=", "value": 0})):
        try:
            store.delete_segment(wh, name)
        except ValueError:
            pass
        store.save_segment(wh, name, {"op": "and", "conditions": [cond]})
    last = pd.Timestamp(wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = ?",
                                            [DATASET]).fetchone()[0]).date()
    os.environ["VALUESCOPE_DB"] = db
    os.environ["VALUESCOPE_SKIP_SAMPLE"] = "1"
    app = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
    at = AppTest.from_file(app, default_timeout=1800)
    at.switch_page("views/explorer.py")

    rows = []

    def step(label, change):
        if change is not None:
            change(at)
        t = time.perf_counter()
        at.run()
        wall = time.perf_counter() - t
        assert not at.exception, at.exception
        errors = [e.value for e in at.error]
        rows.append((label, _server_seconds(at), wall, errors))
        print(f"  {label:48s} page {rows[-1][1]:7.2f} s   AppTest {wall:7.2f} s" + (f"  errors: {errors}" if errors else ""),
              flush=True)

    d1, d2, d3 = last - dt.timedelta(days=30), last - dt.timedelta(days=200), last - dt.timedelta(days=45)
    print("interaction (page = the page script's own server time)")
    step(f"cold first run (as of {last})", None)
    step("rerun, nothing changed", None)
    step("groups: saved segments (3)", lambda a: a.radio(key="explorer_kind").set_value("Saved segments"))
    step("compared segments: drop one", lambda a: a.multiselect(key="explorer_groups_Saved segments")
         .set_value(["Big spenders", "Lapsed"]))
    step("groups: RFM segments", lambda a: a.radio(key="explorer_kind").set_value("RFM segments"))
    step("Lorenz scope: one segment", lambda a: a.selectbox(key="explorer_lorenz_scope").set_value(
        a.selectbox(key="explorer_lorenz_scope").options[1]))
    step(f"as-of date: new ({d1})", lambda a: a.date_input(key="explorer_as_of").set_value(d1))
    step(f"as-of date: back to {last}", lambda a: a.date_input(key="explorer_as_of").set_value(last))
    step(f"migration From: new ({d3})", lambda a: a.date_input(key="explorer_from").set_value(d3))
    step(f"as-of date: new ({d2})", lambda a: a.date_input(key="explorer_as_of").set_value(d2))
    step("search customer id '00042'", lambda a: a.text_input(key="explorer_search").input("00042"))
    step("customer timeline: pick one", lambda a: a.selectbox(key="explorer_customer").set_value(
        a.selectbox(key="explorer_customer").options[-1]))
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    step("app restart: caches cleared, same view", None)
    warm = [r for r in rows[1:-1] if "new" not in r[0]]
    new = [r for r in rows[1:-1] if "new" in r[0]]
    print(f"\nslowest interaction on cached dates: {max(r[1] for r in warm):.2f} s page server time "
          f"({max(r[1] for r in warm) / TARGET_S:.2f}x the {TARGET_S:.0f} s target)")
    print(f"slowest new date: {max(r[1] for r in new):.2f} s ({max(r[1] for r in new) / TARGET_S:.2f}x)")


def bench_history(customers: int, db: str | None) -> None:
    from bench_explorer_db import DATASET, build_sample_warehouse

    from analytics.summary import customer_summary, summary_history
    from analytics.warehouse import Warehouse

    db = db or str(Path(__file__).resolve().parent / "out" / f"explorer_sample_{customers}.duckdb")
    info = build_sample_warehouse(db, customers)
    wh = Warehouse(db)
    t0 = time.perf_counter()
    summary_history(wh, DATASET)  # stored (built first if the events changed)
    t_stored = time.perf_counter() - t0
    t0 = time.perf_counter()
    built = summary_history(wh, DATASET, persist=False)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    hist = summary_history(wh, DATASET)
    t_read = time.perf_counter() - t0
    print(f"{info['events']:,} events, {hist.n_customers:,} customers, {hist.n_rows:,} active customer-days; "
          f"history arrays {hist.nbytes / 1e6:,.0f} MB")
    print(f"history: build from the events {t_build:.1f} s; read back stored {t_read:.1f} s "
          f"(first call, incl. storing if needed: {t_stored:.1f} s)")
    del built
    for day in ("2025-09-17", "2025-03-02"):
        t0 = time.perf_counter()
        s = hist.summary(day)
        t_h = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = customer_summary(wh, DATASET, day, persist=False)
        t_sql = time.perf_counter() - t0
        assert len(s) == len(ref)
        print(f"summary as of {day} ({len(s):,} customers): history {t_h:.2f} s, SQL over the events "
              f"{t_sql:.2f} s ({t_sql / t_h:.0f}x)")
    wh.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--events-customers", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--page", action="store_true", help="time the whole Explorer page (AppTest) on sample data")
    ap.add_argument("--history", action="store_true", help="time the summary history (build, read, summary)")
    ap.add_argument("--db", default=None, help="warehouse file for --page (default bench/out/explorer_sample_N.duckdb)")
    a = ap.parse_args()
    if a.page:
        bench_page(a.customers, a.db)
        return
    if a.history:
        bench_history(a.customers, a.db)
        return

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
