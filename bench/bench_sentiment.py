"""Review sentiment at scale: train + score + store every review of N generated customers.

    python bench/bench_sentiment.py [--customers 100000]

Generates the sample layout for N customers (to bench/out/), loads only its review rows into a
warehouse, then times ``score_dataset_reviews`` (held-out judging, the final fit, scoring every
review, storing) and, as the peer, the VADER lexicon (the fallback) scoring the same texts.
Prints reviews, seconds, reviews per second, the ratio and the held-out figures.

``--compare-caps 50000,200000``: also learns with each cap on the training reviews
(``MAX_TRAIN_REVIEWS``), every time judged on the whole held-out fifth (the same reviews for
every cap), and prints the held-out ROC AUC and the seconds of each: what the default cap costs
in quality.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--compare-caps", default="", help="comma-separated training caps to compare, e.g. 50000,200000")
    args = ap.parse_args()

    from analytics.reviews.sentiment import LexiconSentiment, score_dataset_reviews
    from analytics.warehouse import Warehouse
    from sample_data.generator import SampleConfig, generate

    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    ev = out / f"sentiment_{args.customers}.csv.gz"
    if not ev.exists():
        generate(ev, None, SampleConfig(customers=args.customers, seed=3))
    db = out / f"sentiment_{args.customers}.duckdb"
    if db.exists():
        db.unlink()
    wh = Warehouse(db)
    cur = wh.cursor()
    cur.execute("INSERT INTO datasets (name) VALUES ('b')")
    cur.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, item_id, category, rating, text) "
                "SELECT 'b', customer_id, event_time, event_type, item_id, category, rating, text "
                f"FROM read_csv('{ev}', header=true, all_varchar=true) WHERE event_type = 'review'")
    n = cur.execute("SELECT count(*) FROM events").fetchone()[0]
    t0 = time.perf_counter()
    run = score_dataset_reviews(wh, "b")
    learned = time.perf_counter() - t0
    texts = run.reviews["text"].tolist()
    t0 = time.perf_counter()
    LexiconSentiment().fit().sentiment(texts)
    lexicon = time.perf_counter() - t0
    held = run.info["heldout"]
    print(f"{args.customers:,} customers, {n:,} reviews")
    print(f"learned (train, judge, refit, score, store): {learned:.1f} s, {n / learned:,.0f} reviews/s")
    print(f"VADER lexicon (score only): {lexicon:.1f} s, {n / lexicon:,.0f} reviews/s; "
          f"ratio learned/lexicon {learned / lexicon:.2f}")
    print("held-out ROC AUC: " + ", ".join(f"{k} {v['roc_auc']:.3f}" for k, v in held.items() if v.get("roc_auc")))
    print("load average:", os.getloadavg())
    if args.compare_caps:
        import analytics.reviews.sentiment as S

        texts, ratings = run.reviews["text"].to_numpy(dtype=object), run.reviews["rating"].to_numpy()
        for cap in [int(c) for c in args.compare_caps.split(",") if c.strip()]:
            S.MAX_TRAIN_REVIEWS, S.MAX_HELDOUT_REVIEWS = cap, 10**12
            t0 = time.perf_counter()
            fit = S.fit_sentiment(texts, ratings)
            print(f"training cap {cap:,}: held-out ROC AUC {fit.heldout['all']['roc_auc']:.4f} on "
                  f"{fit.heldout['all']['n']:,} reviews, train + judge + refit {time.perf_counter() - t0:.1f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    wh.close()
    db.unlink()


if __name__ == "__main__":
    main()
