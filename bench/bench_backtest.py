"""Benchmark: the value-predictor backtest on the bundled sample and on the CDNOW sample.

Prints, per model, RMSE, normalized Gini, top-decile capture, churn ROC AUC, predicted /
actual total and fit time, the whole run's wall time, and the peer on the same split:
lifetimes' plain ``BetaGeoFitter`` (expected purchases over the holdout, and x lifetimes'
``GammaGammaFitter`` spend), fitted on lifetimes' own calibration summary.

    .venv/bin/python bench/bench_backtest.py [--datasets sample,cdnow] [--models lightgbm,lstm]

Bundled sample: calibration to 2025-09-30, holdout to 2025-12-31 (92 days). CDNOW:
39/39 weeks (calibration to 1997-09-30, holdout to 1998-06-30). The page's CPU defaults.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.predict import metrics as M  # noqa: E402
from analytics.predict.backtest import run_backtest  # noqa: E402
from analytics.warehouse import Warehouse  # noqa: E402
from tests.predict._events import add_events, sample_events  # noqa: E402
from tests.predict.test_backtest import cdnow_events  # noqa: E402

SPLITS = {"sample": ("2025-09-30", "2025-12-31"), "cdnow": ("1997-09-30", "1998-06-30")}
LABELS = {"zero": "zero", "naive": "naive (rate x horizon x AOV)", "bgnbd": "BG/NBD x Gamma-Gamma",
          "paretonbd": "Pareto/NBD x Gamma-Gamma",
          "lightgbm": "LightGBM", "lstm": "LSTM (ZILN)", "ensemble": "ensemble"}


def lifetimes_peer(events: pd.DataFrame, cal: str, hold: str, actual: pd.Series) -> dict:
    """lifetimes' plain BG/NBD (and x Gamma-Gamma) ranking of the holdout on the same customers."""
    import warnings

    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    buys = events[events["event_type"] == "purchase"].copy()
    buys["event_time"] = pd.to_datetime(buys["event_time"], format="ISO8601")
    buys = buys[buys["event_time"] < pd.Timestamp(cal) + pd.Timedelta(days=1)]
    s = summary_data_from_transaction_data(buys, "customer_id", "event_time", monetary_value_col="revenue",
                                           observation_period_end=cal, freq="D", freq_multiplier=7)
    horizon = (pd.Timestamp(hold) - pd.Timestamp(cal)).days / 7.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BetaGeoFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"])
        purchases = bg.conditional_expected_number_of_purchases_up_to_time(horizon, s["frequency"], s["recency"],
                                                                          s["T"])
        rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
        gg = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
        spend = gg.conditional_expected_average_profit(s["frequency"], s["monetary_value"].clip(lower=0))
    ids = actual.index.astype(str)
    p = pd.Series(purchases.to_numpy(), index=s.index.astype(str)).reindex(ids).fillna(0.0).to_numpy()
    v = (pd.Series((purchases * spend).to_numpy(), index=s.index.astype(str)).reindex(ids).fillna(0.0).to_numpy())
    a = actual.to_numpy()
    return {"bgnbd purchases": (M.normalized_gini(a, p), M.top_decile_capture(a, p), math_nan()),
            "bgnbd x gg": (M.normalized_gini(a, v), M.top_decile_capture(a, v), float(v.sum() / a.sum()))}


def math_nan() -> float:
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="sample,cdnow")
    ap.add_argument("--models", default="lightgbm,lstm")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    for name in args.datasets.split(","):
        cal, hold = SPLITS[name]
        events = sample_events() if name == "sample" else cdnow_events()
        wh = Warehouse(":memory:")
        add_events(wh, name, events)
        t0 = time.perf_counter()
        res = run_backtest(wh, name, cal, hold, models=args.models.split(","), device="cpu")
        wall = time.perf_counter() - t0
        info = res.info
        print(f"\n== {name}: calibration to {cal}, holdout to {hold} ({info['holdout_days']} days), "
              f"{info['n_customers']:,} customers; training targets {info['target_days']} days at "
              f"{len(info['training_cutoffs'])} cut-offs; backtest wall {wall:.1f} s (features and statistical "
              f"fits {info['feature_seconds']:.1f} s); load average {os.getloadavg()[0]:.2f}")
        print(f"   {info.get('horizon')}; level: {(info.get('levels') or {}).get('note')}")
        print(f"{'model':30} {'RMSE':>8} {'Gini':>7} {'top10%':>7} {'churnAUC':>8} {'pred/act':>8} {'fit s':>7}")
        for model, row in res.metrics.iterrows():
            if isinstance(row.get("error"), str):
                print(f"{LABELS.get(model, model):30} failed: {row['error']}")
                continue
            print(f"{LABELS.get(model, model):30} {row['rmse']:8.2f} {row['normalized_gini']:7.3f} "
                  f"{row['top_decile_capture']:7.3f} {row['roc_auc']:8.3f} {row['total_ratio']:8.3f} "
                  f"{row['fit_seconds']:7.1f}")
        peer = lifetimes_peer(events, cal, hold, res.predictions["actual_value"])
        for label, (g, top, ratio) in peer.items():
            print(f"{'lifetimes ' + label:30} {'':8} {g:7.3f} {top:7.3f} {'':8} {ratio:8.3f}")
        wh.close()


if __name__ == "__main__":
    main()
