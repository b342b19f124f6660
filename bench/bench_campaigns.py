"""Benchmark: campaign targeting and read-out at scale (prints figures, no asserts).

A synthetic customer frame of ``--customers`` customers (BG/NBD-distributed frequency,
recency, T from ``analytics.clv_models.sample_bgnbd_summary``, lognormal order values,
15% never-buyers; RFM segment and formula CLV from ``analytics.scores.Scorer``), then:

* value_columns: BG/NBD + Gamma-Gamma fit and per-customer CLV / p(alive) (once per
  dataset and as-of day; the page caches it);
* select_targets: rank + cap + seeded stratified control group over every customer
  (what re-runs when the marketer changes a cap, a ranking or the control share);
* expected_outcome + return_curve (500 points) over the contacted list;
* save_campaign + campaign_targets round trip of a ``--list`` customer list (file warehouse);
* read_outcomes of a CSV with one row per listed customer, and readout.

Targets: interactions (select, outcome + curve) under 1 s, save/read-out a few seconds.

    .venv/bin/python bench/bench_campaigns.py [--customers 1000000] [--list 200000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import timed  # noqa: E402

from analytics import campaigns as c  # noqa: E402
from analytics.clv_models import sample_bgnbd_summary  # noqa: E402
from analytics.scores import Scorer  # noqa: E402

TARGET_S = 1.0


def synthetic_frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T = rng.integers(30, 731, n).astype(float)
    s = sample_bgnbd_summary(n, r=0.25, alpha=4.0, a=0.8, b=2.5, T=T, random_state=seed)
    s["recency"] = np.floor(s["recency"])  # whole days, as customer_summary makes them
    buyer = rng.random(n) >= 0.15
    as_of = pd.Timestamp("2024-12-31")
    f = np.where(buyer, s["frequency"], np.nan)
    rec = np.where(buyer, s["recency"], np.nan)
    TT = np.where(buyer, s["T"], np.nan)
    aov = rng.lognormal(3.5, 0.6, n)
    mv = np.where(f > 0, aov * rng.lognormal(0, 0.3, n), np.where(buyer, 0.0, np.nan))
    n_orders = np.where(buyer, f + 1, 0)
    day = np.timedelta64(1, "D")
    first = np.where(buyer, np.datetime64(as_of.to_datetime64(), "ns") - np.nan_to_num(TT).astype(np.int64) * day,
                     np.datetime64("NaT"))
    last = np.where(buyer, first + np.nan_to_num(rec).astype(np.int64) * day, np.datetime64("NaT"))
    total = np.where(buyer, aov * n_orders, 0.0)
    df = pd.DataFrame({
        "first_purchase": first.astype("datetime64[ns]"), "last_purchase": last.astype("datetime64[ns]"),
        "frequency": f, "recency": rec, "T": TT, "monetary_value": mv, "total_revenue": total,
        "net_revenue": total, "n_orders": n_orders, "n_views": rng.poisson(20, n), "n_searches": rng.poisson(5, n),
        "n_carts": rng.poisson(2, n), "n_purchases": n_orders, "n_reviews": rng.poisson(0.3, n),
    }, index=pd.Index(np.char.add("c", np.arange(n).astype(str)).astype(object), name="customer_id"))
    df.attrs.update(as_of=as_of, unit="days", dataset="bench")
    scorer = Scorer(df)
    sc = scorer.frame(scorer.score(top_n=1), with_params=False).set_index("customer_id")
    df = df.join(sc[["rfm_segment", "clv_formula"]].rename(columns={"clv_formula": "clv"}))
    df.attrs = {"as_of": str(as_of.date()), "dataset": "bench", "unit": "days"}
    return df


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--list", type=int, default=200_000, help="contacted customers of the saved campaign")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    t0 = time.perf_counter()
    frame = synthetic_frame(a.customers)
    print(f"synthetic frame: {len(frame):,} customers in {time.perf_counter() - t0:.1f} s")

    t_val, vframe = timed(lambda: c.value_columns(None, frame), 1)
    print(f"value_columns (BG/NBD + GG fit, CLV, p_alive; once per dataset/date): {t_val:.2f} s "
          f"[{vframe.attrs['value_source']}]")

    rows = []
    spec_all = c.CampaignSpec(name="b", dataset="bench", as_of=frame.attrs["as_of"], budget=a.list * 2.0,
                              cost_per_contact=2.0, control_share=0.1)
    t_sel, targets = timed(lambda: c.select_targets(None, vframe, spec_all), a.repeats)
    rows.append(("select_targets (rank + cap + stratified control)", t_sel))
    spec_churn = c.CampaignSpec(name="b", dataset="bench", as_of=frame.attrs["as_of"], ranking="churn_value",
                                control_share=0.2)
    t_sel2, big = timed(lambda: c.select_targets(None, vframe, spec_churn), a.repeats)
    rows.append((f"select_targets, no cap ({len(big):,} rows, churn x value)", t_sel2))
    rate, value = c.default_response(vframe.loc[targets["customer_id"]], spec_all)

    def outcome():
        c.expected_outcome(targets, rate, value, 2.0)
        return c.return_curve(targets, rate, value, 2.0, max_points=500)

    t_out, curve = timed(outcome, a.repeats)
    rows.append((f"expected_outcome + return_curve ({a.list:,} contacted, {len(curve)} points)", t_out))
    t_out2, curve2 = timed(lambda: c.return_curve(big, rate, value, 2.0), a.repeats)
    rows.append((f"return_curve over {int((big['group'] == 'treatment').sum()):,} contacted", t_out2))
    print(f"\n{'interaction':62} {'median s':>9} {'x target':>9}")
    for name, t in rows:
        print(f"{name:62} {t:9.3f} {t / TARGET_S:9.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        from analytics.warehouse import Warehouse

        wh = Warehouse(Path(tmp) / "w.duckdb")
        wh.cursor().execute("INSERT INTO datasets (name) VALUES ('bench')")
        n_saved = [0]

        def save():
            n_saved[0] += 1
            spec = c.CampaignSpec(name=f"b{n_saved[0]}", dataset="bench", as_of=spec_all.as_of,
                                  budget=spec_all.budget, cost_per_contact=2.0)
            return c.save_campaign(wh, spec, targets)

        t_save, cid = timed(save, 1)
        t_load, back = timed(lambda: c.campaign_targets(wh, cid), a.repeats)
        rng = np.random.default_rng(0)
        conv = rng.random(len(back)) < np.where(back["group"] == "treatment", 0.06, 0.05)
        out = pd.DataFrame({"customer_id": back["customer_id"], "converted": conv.astype(int),
                            "revenue": np.where(conv, 40.0, 0.0)})
        path = Path(tmp) / "outcomes.csv"
        out.to_csv(path, index=False)
        t_read, parsed = timed(lambda: c.read_outcomes(path), a.repeats)
        t_ro, result = timed(lambda: c.readout(back, parsed), a.repeats)
        t_store, _ = timed(lambda: c.save_outcomes(wh, cid, parsed), 1)
        t_stored, _ = timed(lambda: c.campaign_readout(wh, cid), a.repeats)
        print(f"\n{'persistence / read-out of ' + format(len(back), ',') + ' listed customers':62} {'median s':>9}")
        for name, t in (("save_campaign (one transaction)", t_save), ("campaign_targets (load the list)", t_load),
                        ("read_outcomes (CSV)", t_read), ("readout (overall + per segment)", t_ro),
                        ("save_outcomes (store + read-out)", t_store), ("campaign_readout (stored)", t_stored)):
            print(f"{name:62} {t:9.3f}")
        o = result["overall"]
        print(f"\nplanted 6% vs 5% conversion: uplift {o['uplift_conversion']:.4f} "
              f"CI [{o['ci95'][0]:.4f}, {o['ci95'][1]:.4f}] p={o['p_value']:.2g}")
        wh.close()


if __name__ == "__main__":
    main()
