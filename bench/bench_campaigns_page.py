"""Benchmark: the Campaigns page end to end (Streamlit AppTest, in process) on generated data.

The generated sample data (``sample_data`` generator, ``--customers`` customers, about 58
events each) is built once into ``bench/out/campaigns_sample_<N>.duckdb`` (reused when it
exists; see bench_explorer_db.build_sample_warehouse) with three saved segments. Then the
page is driven like a marketer would: a cold first run, picking segments, the cap, the
control share, the ranking, no cap at all (the whole selection), recommendations on and a
control change with them, saving the campaign, the CSV export of the list, and the read-out
of an uploaded outcomes file. For each step it prints the page script's own server time (the
caption the page prints) and the whole AppTest rerun, and the ratio to the 1 s target for
interactions once the per-date customer table is cached (the cold run builds it).

    .venv/bin/python bench/bench_campaigns_page.py [--customers 100000] [--db PATH]

Prints figures only (no asserts).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_S = 1.0
SEGMENTS = (("Big spenders", {"field": "net_revenue", "operator": ">=", "value": 500}),
            ("Lapsed", {"field": "time_since_purchase", "operator": ">=", "value": 180}),
            ("Frequent", {"field": "n_orders", "operator": ">=", "value": 3}))


def _server_seconds(at) -> float:
    for c in at.caption:
        if c.value.startswith("Server time for this view:"):
            return float(c.value.split(":")[1].strip().split()[0])
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--db", default=None)
    a = ap.parse_args()

    from streamlit.delta_generator import DeltaGenerator
    from streamlit.testing.v1 import AppTest

    from analytics import campaigns as camp
    from analytics.segments import store
    from analytics.warehouse import get_warehouse
    from bench_explorer_db import DATASET, build_sample_warehouse

    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    db = a.db or str(out / f"campaigns_sample_{a.customers}.duckdb")
    t0 = time.perf_counter()
    info = build_sample_warehouse(db, a.customers)
    print(f"warehouse {db}: {info['events']:,} events of {a.customers:,} customers "
          f"({'reused' if info['reused'] else f'built in {time.perf_counter() - t0:.0f} s'})", flush=True)
    wh = get_warehouse(db)
    for c in camp.list_campaigns(wh)["id"]:
        camp.delete_campaign(wh, int(c))
    for name, cond in SEGMENTS:
        try:
            store.delete_segment(wh, name)
        except ValueError:
            pass
        store.save_segment(wh, name, {"op": "and", "conditions": [cond]})

    # the data the page hands to its download buttons (built only when clicked in a browser)
    downloads: dict = {}
    real = DeltaGenerator.download_button

    def spy(self, label, data, *args, **kwargs):
        downloads[kwargs.get("key")] = data
        return real(self, label, data, *args, **kwargs)

    DeltaGenerator.download_button = spy
    os.environ["VALUESCOPE_DB"] = db
    os.environ["VALUESCOPE_SKIP_SAMPLE"] = "1"
    app = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
    at = AppTest.from_file(app, default_timeout=3600)
    at.switch_page("views/campaigns.py")
    rows = []

    def step(label, change, cold=False):
        if change is not None:
            change(at)
        t = time.perf_counter()
        at.run()
        wall = time.perf_counter() - t
        assert not at.exception, at.exception
        errors = [e.value for e in at.error]
        metrics = {m.label: m.value for m in at.metric}
        rows.append((label, _server_seconds(at), wall, cold))
        print(f"  {label:52s} page {rows[-1][1]:7.2f} s   AppTest {wall:7.2f} s   contacted "
              f"{metrics.get('Contacted', '–'):>9s}  control {metrics.get('Control (not contacted)', '–'):>8s}"
              + (f"  errors: {errors}" if errors else ""), flush=True)

    print("interaction (page = the page script's own server time)")
    step("cold first run (customer table, CLV models, list)", None, cold=True)
    step("rerun, nothing changed", None)
    step("segments: Big spenders + Lapsed", lambda x: x.multiselect(key="camp_segments").set_value(
        ["Big spenders", "Lapsed"]))
    step("cap 500 -> 20,000 contacts", lambda x: x.number_input(key="camp_max").set_value(20_000))
    step("control share 10 % -> 20 %", lambda x: x.slider(key="camp_control").set_value(20))
    step("rank by churn risk x value", lambda x: x.selectbox(key="camp_ranking").set_value("churn_value"))
    step("no cap: the whole selection", lambda x: x.checkbox(key="camp_cap_on").uncheck())
    step("segments: none (every customer)", lambda x: x.multiselect(key="camp_segments").set_value([]))
    step("cap 50,000 again", lambda x: x.checkbox(key="camp_cap_on").check())
    step("cap value 50,000", lambda x: x.number_input(key="camp_max").set_value(50_000))
    step("recommendations: 5 items (fits item-CF once)", lambda x: x.number_input(key="camp_recs").set_value(5),
         cold=True)
    step("control share 20 % -> 25 % (recommender cached)", lambda x: x.slider(key="camp_control").set_value(25))
    t = time.perf_counter()
    csv = downloads["camp_dl_csv"]()
    t_csv = time.perf_counter() - t
    n_rows = len(pd.read_csv(io.BytesIO(csv), usecols=["customer_id"]))
    print(f"  {'CSV export of the list (download callable)':52s} {t_csv:7.2f} s for {n_rows:,} rows, "
          f"{len(csv) / 1e6:.1f} MB", flush=True)
    at.text_input(key="camp_name").input("bench campaign")
    step("save the campaign", lambda x: x.button(key="camp_save").click())
    stored = camp.campaign_targets(wh, "bench campaign")
    rng = np.random.default_rng(0)
    conv = rng.random(len(stored)) < np.where(stored["group"] == "treatment", 0.06, 0.04)
    data = pd.DataFrame({"customer_id": stored["customer_id"], "converted": conv.astype(int),
                         "revenue": np.where(conv, 60.0, 0.0)}).to_csv(index=False).encode()
    step(f"read-out: upload outcomes ({len(stored):,} rows, {len(data) / 1e6:.1f} MB)",
         lambda x: x.file_uploader(key="camp_outcomes").set_value(("outcomes.csv", data, "text/csv")))
    step("rerun with the read-out shown", None)

    warm = [r for r in rows if not r[3]]
    worst = max(warm, key=lambda r: r[1])
    print(f"\nslowest interaction with the customer table and recommender cached: {worst[1]:.2f} s page server "
          f"time ({worst[0]}; {worst[1] / TARGET_S:.2f}x the {TARGET_S:.0f} s target)")
    cold = [r for r in rows if r[3]]
    print("once per data version / as-of day: " + "; ".join(f"{r[0]} {r[1]:.1f} s" for r in cold))


if __name__ == "__main__":
    main()
