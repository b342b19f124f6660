"""Do review-sentiment features help LightGBM? The same time-based backtest with and without them.

    python bench/bench_sentiment_features.py [--events sample_data/sample_events.csv.gz]
        [--calibration-end 2025-06-30] [--holdout-end 2025-12-29] [--seeds 0,1,2]

Loads the events into a temporary warehouse, builds the backtest's training and test windows
(analytics.predict.features.backtest_frames), scores the review sentiment with a model trained
only on reviews written up to the calibration end (so the holdout is not read), adds the
per-customer sentiment features as of each window's cut-off, and fits LightGBMValueModel with and
without them (same seeds, same split). Prints holdout value and churn metrics of both.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", default="sample_data/sample_events.csv.gz")
    ap.add_argument("--calibration-end", default="2025-06-30")
    ap.add_argument("--holdout-end", default="2025-12-29")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()

    from analytics.ingest import ingest
    from analytics.predict import metrics as M
    from analytics.predict.features import backtest_frames
    from analytics.predict.gbm import LightGBMValueModel
    from analytics.reviews.columns import SENTIMENT_COLUMNS
    from analytics.reviews.features import customer_sentiment
    from analytics.reviews.sentiment import score_dataset_reviews
    from analytics.warehouse import Warehouse

    t0 = time.perf_counter()
    wh = Warehouse(os.path.join(tempfile.mkdtemp(), "bench.duckdb"))
    ingest(wh, args.events, "b")
    cal = pd.Timestamp(args.calibration_end)
    train, test = backtest_frames(wh, "b", cal, args.holdout_end)
    run = score_dataset_reviews(wh, "b", store=False, end=cal + pd.Timedelta(days=1))
    print(f"sentiment trained on reviews up to {cal.date()}: {run.message}")

    def with_sentiment(w):
        s = customer_sentiment(wh, "b", w.cutoff, reviews=run.reviews)
        return w.features.join(s[list(SENTIMENT_COLUMNS)].reindex(w.features.index))

    X_tr, X_te = with_sentiment(train), with_sentiment(test)
    y_tr, c_tr = train.targets["holdout_value"].to_numpy(), train.targets["churn"].to_numpy()
    y_te, c_te = test.targets["holdout_value"].to_numpy(), test.targets["churn"].to_numpy()
    scale = test.horizon_days / train.horizon_days
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(y_tr))
        n_val = int(round(0.2 * len(perm)))
        tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
        for name, a, b in (("without sentiment", train.features, test.features), ("with sentiment", X_tr, X_te)):
            m = LightGBMValueModel(random_state=seed).fit(a.iloc[tr], y_tr[tr], c_tr[tr], X_val=a.iloc[va],
                                                          y_value_val=y_tr[va], y_churn_val=c_tr[va])
            v, c = m.predict_value(b) * scale, m.predict_churn(b)
            rows.append({"features": name, "seed": seed, **M.value_metrics(y_te, v), **M.churn_metrics(c_te, c)})
    table = pd.DataFrame(rows)
    cols = ["rmse", "mae", "spearman", "normalized_gini", "top_decile_capture", "roc_auc", "pr_auc", "brier"]
    print(table.groupby("features")[cols].mean().round(4).to_string())
    print(f"customers: {len(y_te):,}; seeds {args.seeds}; {time.perf_counter() - t0:.0f} s")
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
