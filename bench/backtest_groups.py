"""Where a backtest's learned totals go wrong: predicted / actual per customer group, on the holdout
and on the rolling windows inside the calibration period.

Groups: tenure at the cut-off up to the training target length ("new") or longer, crossed with the
purchase state (no purchase yet, one purchase day, repeat purchases); with ``--truth`` (the
generator's truth file, e.g. ``sample_data/sample_truth.csv.gz``) also the planted persona.

1. **Holdout**: one ``run_backtest`` (LightGBM by default, the page's settings), every model's
   predicted / actual total per group.
2. **Rolling windows** (what a calibration chosen inside the calibration period can see): for every
   training window with at least two earlier windows whose targets end by its cut-off, LightGBM is
   trained on those earlier windows only (de-levelled as in the backtest, early stopping on the
   window), and each group's predicted / actual is printed *relative to the window's own total*
   (so the window's level drops out), beside BG/NBD x Gamma-Gamma and Pareto/NBD x Gamma-Gamma
   fitted at the window's cut-off, relative in the same way.

3. **Blend check**: the new customers' total blended between the learned model's share and a purchase
   model's share of the window total (weight 0..1), the weight each criterion on the rolling windows
   picks (the validation window alone; the mean absolute error of each window's total; the sum of
   squared log ratios; the pooled new-customer total), and what that weight does to the holdout's
   total, normalized Gini and top-decile capture (the new customers' values are scaled, so their
   order among themselves is the learned model's).

    .venv/bin/python bench/backtest_groups.py [--dataset sample] [--truth sample_data/sample_truth.csv.gz]
    .venv/bin/python bench/backtest_groups.py --dataset cdnow
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.predict import metrics as M  # noqa: E402
from analytics.predict.backtest import (  # noqa: E402
    DEFAULT_LIGHTGBM_PARAMS, _bgnbd, _paretonbd, _stack, design_matrix, run_backtest, window_levels,
)
from analytics.predict.features import backtest_plan, fit_statistical_models, model_features  # noqa: E402
from analytics.predict.gbm import LightGBMValueModel  # noqa: E402
from analytics.warehouse import Warehouse  # noqa: E402
from tests.predict._events import add_events, sample_events  # noqa: E402
from tests.predict.test_backtest import cdnow_events  # noqa: E402

SPLITS = {"sample": ("2025-09-30", "2025-12-31"), "cdnow": ("1997-09-30", "1998-06-30")}
GROUP_ORDER = ["new, no purchase", "new, one purchase day", "new, repeat", "older, no purchase",
               "older, one purchase day", "older, repeat"]


def groups(features: pd.DataFrame, target_days: int) -> np.ndarray:
    """Tenure at the cut-off (new: at most ``target_days``) x purchase state, per customer."""
    new = (features["tenure"] <= target_days).to_numpy()
    state = np.select([(features["n_orders"] == 0).to_numpy(), (features["frequency"] == 0).to_numpy()],
                      ["no purchase", "one purchase day"], "repeat")
    return np.where(new, "new, ", "older, ") + state


def ratio_table(frame: pd.DataFrame, by, values: list[str]) -> pd.DataFrame:
    g = frame.groupby(by, observed=True)
    out = pd.DataFrame({"customers": g.size(), "actual": g["actual_value"].sum()})
    for v in values:
        out[v.removesuffix("_value")] = g[v].sum() / out["actual"].where(out["actual"] > 0)
    return out


def holdout(wh, dataset, cal, hold, models, truth):
    t0 = time.perf_counter()
    res = run_backtest(wh, dataset, cal, hold, models=models, device="cpu")
    p, f = res.predictions.copy(), res.features
    values = [c for c in p if c.endswith("_value") and c != "actual_value"]
    p["group"] = groups(f, res.info["target_days"])
    print(f"holdout {cal}..{hold}: target length {res.info['target_days']} days, {len(p)} customers, "
          f"{time.perf_counter() - t0:.0f} s")
    print("predicted / actual per group (first row: all customers)")
    total = ratio_table(p.assign(all="all"), "all", values)
    tenure = ratio_table(p.assign(tenure=p["group"].str.split(",").str[0]), "tenure", values)
    print(pd.concat([total, tenure, ratio_table(p, "group", values)]).round(3).to_string())
    if truth is not None:
        t = pd.read_csv(truth, usecols=["customer_id", "persona"]).set_index("customer_id")["persona"]
        p["persona"] = t.reindex(p.index.astype(str)).to_numpy()
        print(ratio_table(p, ["group", "persona"], values).round(3).to_string())
    return res


def rolling(wh, dataset, cal, hold, random_state=0) -> pd.DataFrame:
    t0 = time.perf_counter()
    plan = backtest_plan(wh, dataset, cal, hold)
    h, windows = plan.target_days, plan.windows
    cut = [w.cutoff for w in windows]
    designs, stat = [], []
    for w in windows:
        bg, gg, _ = fit_statistical_models(w.features, random_state)
        designs.append(design_matrix(w, model_features(w.features, h, (bg, gg))))
        b0, g0, notes = fit_statistical_models(w.features, random_state, penalizer=0.0)
        pn, pn_notes = _paretonbd(w, random_state)
        row = []
        for m, n in (((b0, g0), notes), ((pn, g0), pn_notes)):
            try:
                row.append(_bgnbd(w, h, m, n)[0])
            except ValueError:
                row.append(np.full(len(w.customers), np.nan))
        stat.append(row)
    rows = []
    for k in range(len(windows)):
        earlier = [j for j in range(len(windows)) if cut[j] + pd.Timedelta(days=h) <= cut[k]]
        if len(earlier) < 2:
            continue
        lev = window_levels(designs, windows, earlier, random_state)
        X, y, c, _ = _stack(windows, earlier, designs)
        y = y * np.repeat(np.exp(-lev), [len(windows[j].customers) for j in earlier])
        yk = windows[k].targets["holdout_value"].to_numpy()
        model = LightGBMValueModel(random_state=random_state, **DEFAULT_LIGHTGBM_PARAMS).fit(  # early stop: window k
            X, y, c, X_val=designs[k], y_value_val=yk, y_churn_val=windows[k].targets["churn"].to_numpy())
        preds = {"lightgbm": model.predict_value(designs[k]), "bgnbd": stat[k][0], "paretonbd": stat[k][1]}
        g = groups(windows[k].features, h)
        for name in ["new", *GROUP_ORDER]:
            m = np.char.startswith(g.astype(str), "new") if name == "new" else g == name
            row = {"cutoff": str(cut[k].date()), "earlier windows": len(earlier), "group": name,
                   "customers": int(m.sum()), "actual": float(yk[m].sum()), "window actual": float(yk.sum())}
            for model_name, v in preds.items():  # relative to the window's total: the level drops out
                row[f"{model_name} share"] = float(np.nansum(v[m])) / float(np.nansum(v)) * float(yk.sum())
                row[model_name] = row[f"{model_name} share"] / row["actual"] if row["actual"] > 0 else math.nan
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        print(f"\nno training window has two earlier windows (targets ending by its cut-off) to learn from "
              f"({len(windows)} windows of {h} days)")
        return table
    print(f"\nrolling windows inside the calibration period (target length {h} days; predicted / actual of "
          f"each group relative to the window's total), {time.perf_counter() - t0:.0f} s")
    cols = ["cutoff", "earlier windows", "group", "customers", "actual", "lightgbm", "bgnbd", "paretonbd"]
    print(table[cols].round(3).to_string(index=False))
    return table


def blend_check(table: pd.DataFrame, res) -> None:
    """The new customers' share of the total, blended between a learned model's and a purchase model's:
    the weight each criterion on the rolling windows picks, and what it does to the holdout."""
    new = table[table["group"] == "new"] if len(table) else table
    if new.empty or not (res.features["tenure"] <= res.info["target_days"]).any():
        return
    p, f = res.predictions, res.features
    is_new = (f["tenure"] <= res.info["target_days"]).to_numpy()
    y = p["actual_value"].to_numpy()
    weights = np.linspace(0.0, 1.0, 21)
    print("\nnew customers' total blended with a purchase model's share (rolling-window criteria; holdout effect)")
    for stat in ("bgnbd", "paretonbd"):
        a, t, s = new["actual"].to_numpy(), new["lightgbm share"].to_numpy(), new[f"{stat} share"].to_numpy()
        window = new["window actual"].to_numpy()
        crit = {
            "validation window": lambda w: abs((1 - w) * t[0] + w * s[0] - a[0]),
            "mean |window total error|": lambda w: float(np.mean(np.abs((1 - w) * t + w * s - a) / window)),
            "sum of squared log ratios": lambda w: float(np.sum(np.log(((1 - w) * t + w * s) / np.maximum(a, 1e-9)) ** 2)),
            "pooled new-customer total": lambda w: abs(float(np.sum((1 - w) * t + w * s) / np.sum(a)) - 1),
        }
        for label, fn in crit.items():
            w = float(min(weights, key=fn))
            line = [f"{stat}, {label}: weight {w:.2f}"]
            for m in ("lightgbm", "lstm"):
                if f"{m}_value" not in p or f"{stat}_value" not in p:
                    continue
                v = p[f"{m}_value"].to_numpy().copy()
                share = p[f"{stat}_value"].to_numpy()[is_new].sum() / p[f"{stat}_value"].sum() * v.sum()
                if v[is_new].sum() > 0:
                    v[is_new] *= (1 - w) + w * share / v[is_new].sum()
                line.append(f"{m} total {v.sum() / y.sum():.3f}, Gini {M.normalized_gini(y, v):.3f}, "
                            f"top decile {M.value_metrics(y, v)['top_decile_capture']:.3f}")
            print("; ".join(line))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=sorted(SPLITS), default="sample")
    ap.add_argument("--models", default="lightgbm")
    ap.add_argument("--truth", default=None, help="the generator's truth file (persona per customer)")
    ap.add_argument("--no-rolling", action="store_true")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    wh = Warehouse(":memory:")
    try:
        add_events(wh, args.dataset, sample_events() if args.dataset == "sample" else cdnow_events())
        cal, hold = SPLITS[args.dataset]
        res = holdout(wh, args.dataset, cal, hold, args.models.split(","), args.truth)
        if not args.no_rolling:
            blend_check(rolling(wh, args.dataset, cal, hold), res)
    finally:
        wh.close()
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
