"""A synthetic stand-in, shaped like MovieLens-100k used as purchase events, for the recommenders.

The real check uses 100,000 timestamped user x item events of a public data set as purchases
with a holdout from 1998-02-01; we cannot download it here, so this script draws data of
that shape (SYNTHETIC, clearly not the real thing) and runs ``evaluate_holdout`` on it:

* 943 customers, 1,682 items, ~100,000 events between 1997-09-20 and 1998-04-22;
* item appeal is lognormal (the top item is bought by about 60% of the customers, a long
  tail of items bought by a handful); items carry 1-3 of 19 genres; about 8% of the items
  are released during the period with a burst of interest after release;
* customers arrive over the whole period (every one has at least 20 events, a heavy tail
  up to several hundred); most of a customer's events come in a first long session, the
  rest on later visits spread over weeks (some after 1998-02-01: the evaluated ones);
* a customer's taste is a mix of genres (Dirichlet) that drifts a little per visit; within
  a visit consecutive events often stay in a genre, and items of a series (sequels) follow
  each other; later visits lean to recent releases.

    .venv/bin/python bench/movielens_like.py [--seed 0] [--models LIST] [--out events.csv] [--json out.json]

Writes the events as a CSV (the ingestion's order-log layout: customer_id, event_time,
event_type=purchase, item_id, category), loads it into an in-memory warehouse and prints
every model against popularity and recent popularity on the holdout 1998-02-01 ..
1998-04-22, settings chosen on validation windows before 1998-02-01.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

START, END = pd.Timestamp("1997-09-20"), pd.Timestamp("1998-04-23")
SPLIT = pd.Timestamp("1998-02-01")


def generate(seed: int = 0, n_users: int = 943, n_items: int = 1682, n_events: int = 113_000,
             n_genres: int = 19) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    span_days = (END - START).days
    # items: appeal, genres, release day (most before the start), series
    appeal = rng.lognormal(0.0, 1.5, n_items)
    genres = np.zeros((n_items, n_genres))
    for i in range(n_items):
        genres[i, rng.choice(n_genres, size=rng.integers(1, 4), replace=False)] = 1.0
    genres /= genres.sum(axis=1, keepdims=True)
    release = np.where(rng.random(n_items) < 0.08, rng.uniform(0, span_days, n_items), -1e9)
    appeal[release > 0] *= 3.0  # new releases are the films people go to see
    series = -np.ones(n_items, dtype=np.int64)  # the next item of the series
    heads = rng.choice(n_items, size=n_items // 12, replace=False)
    for h in heads:
        nxt = int(rng.integers(0, n_items))
        if nxt != h and series[h] < 0:
            series[h] = nxt
            genres[nxt] = genres[h]
    # customers: arrival, activity, taste
    arrival = np.sort(rng.beta(1.1, 1.4, n_users) * (span_days - 10))
    activity = 20 + np.round(rng.lognormal(3.55, 1.05, n_users)).astype(np.int64)
    activity = np.minimum(activity, 740)
    scale = (n_events - 20 * n_users) / max(activity.sum() - 20 * n_users, 1)
    activity = 20 + np.round((activity - 20) * scale).astype(np.int64)
    taste = rng.dirichlet(np.full(n_genres, 0.25), n_users)
    rows = []
    for u in range(n_users):
        n = int(activity[u])
        first = min(n, max(20, int(round(n * rng.beta(3.0, 1.6)))))
        # later visits: exponential gaps (mean 25 days) after arrival
        rest = n - first
        visits = [(arrival[u], first)]
        t = arrival[u]
        while rest > 0:
            t += rng.exponential(25.0)
            k = min(rest, int(rng.integers(1, 25)))
            visits.append((t, k))
            rest -= k
        seen = np.zeros(n_items, dtype=bool)
        tu = taste[u].copy()
        prev = -1
        for day, k in visits:
            if day >= span_days:
                break
            avail = release < day
            fresh = np.where(release > 0, np.exp(-np.maximum(day - release, 0) / 30.0), 0.0)
            later = 1.0 if day > arrival[u] + 1 else 0.0
            base = appeal * (genres @ tu + 0.02) ** 1.3 * (1.0 + 4.0 * later * fresh)
            base = np.where(avail & ~seen, base, 0.0)
            tu = 0.85 * tu + 0.15 * rng.dirichlet(np.full(n_genres, 0.25))  # drift per visit
            for j in range(k):
                w = base.copy()
                if prev >= 0:
                    w *= 1.0 + 2.0 * (genres @ genres[prev] > 0.3)  # stay in the genre
                    if series[prev] >= 0 and w[series[prev]] > 0 and rng.random() < 0.5:
                        item = int(series[prev])
                        w = None
                if w is not None:
                    total = w.sum()
                    if total <= 0:
                        break
                    item = int(rng.choice(n_items, p=w / total))
                seen[item] = True
                base[item] = 0.0
                prev = item
                ts = START + pd.Timedelta(days=float(day)) + pd.Timedelta(seconds=int(j * rng.integers(20, 200)))
                rows.append((u, ts, item))
    df = pd.DataFrame(rows, columns=["u", "event_time", "i"])
    df = df[df["event_time"] < END]
    g = genres.argmax(axis=1)
    return pd.DataFrame({
        "customer_id": [f"U{u + 1:04d}" for u in df["u"]],
        "event_time": df["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "event_type": "purchase",
        "item_id": [f"M{i + 1:04d}" for i in df["i"]],
        "category": [f"genre{x:02d}" for x in g[df["i"].to_numpy()]],
    })


def shape(df: pd.DataFrame) -> dict:
    per_user = df.groupby("customer_id").size()
    per_item = df.groupby("item_id").size()
    t = pd.to_datetime(df["event_time"])
    after = df[t >= SPLIT]["customer_id"].unique()
    before = set(df[t < SPLIT]["customer_id"])
    return {"events": len(df), "customers": int(per_user.size), "items": int(per_item.size),
            "events_per_customer_min_median_mean_max": [int(per_user.min()), float(per_user.median()),
                                                          round(float(per_user.mean()), 1), int(per_user.max())],
            "top_item_share_of_customers": round(float(per_item.max() / per_user.size), 3),
            "items_with_<=5_events": int((per_item <= 5).sum()),
            "events_from_split": int((t >= SPLIT).sum()),
            "customers_with_history_and_holdout": int(sum(1 for c in after if c in before))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default=None)
    ap.add_argument("--out", default=None, help="also keep the events CSV here")
    ap.add_argument("--json", default=None, help="write the results as JSON here")
    ap.add_argument("--folds", type=int, default=3, help="validation cut-offs (3)")
    ap.add_argument("--step-days", type=int, default=None, help="days between them (default: a third of a window)")
    ap.add_argument("--seq-epochs", type=int, default=None, help="sequence model max epochs (default: its own)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from analytics.commands.recommend import evaluation_report
    from analytics.ingest import ingest
    from analytics.recommend import evaluate_holdout
    from analytics.warehouse import Warehouse

    t0 = time.perf_counter()
    df = generate(args.seed)
    info = shape(df)
    print(f"SYNTHETIC MovieLens-100k-shaped data, seed {args.seed}: {json.dumps(info)} "
          f"({time.perf_counter() - t0:.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.out) if args.out else Path(tmp) / "ml_like.csv"
        df.to_csv(path, index=False)
        wh = Warehouse(":memory:")
        ingest(wh, path, "ml")
    t1 = time.perf_counter()
    seq = {"epochs": args.seq_epochs} if args.seq_epochs else None
    res = evaluate_holdout(wh, "ml", SPLIT, END, k=10, families=args.models, folds=args.folds,
                          step_days=args.step_days, sequence_params=seq)
    rep = evaluation_report(res)
    print(f"holdout {rep['holdout_from']} .. {rep['holdout_to']}, {int(res['customers'].iloc[0])} customers; "
          f"evaluation {time.perf_counter() - t1:.0f} s")
    print(f"  {'model':<18} {'P@10':>7} {'R@10':>7} {'F1@10':>7} {'NDCG@10':>8} {'cov':>6}  {'P/pop':>6} {'R/pop':>6}"
          f"  {'P/rec':>6} {'R/rec':>6}")
    for r in rep["results"]:
        vp, vr = r["vs_popularity"] or {}, r["vs_recent_popularity"] or {}
        f = (lambda x: f"{x:6.2f}" if x is not None else "     -")
        print(f"  {r['model']:<18} {r['precision_at_k']:7.4f} {r['recall_at_k']:7.4f} {r['f1_at_k']:7.4f} "
              f"{r['ndcg_at_k']:8.4f} {r['coverage']:6.3f}  {f(vp.get('precision'))} {f(vp.get('recall'))}  "
              f"{f(vr.get('precision'))} {f(vr.get('recall'))}")
    v = rep["validation"]
    if v:
        print(f"validation winner (the default): {v['winner']} {json.dumps(v['params'])} on {v['windows']}")
    for n in rep["notes"]:
        print("note:", n)
    if args.json:
        Path(args.json).write_text(json.dumps({"data": info, "seed": args.seed, **rep}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
