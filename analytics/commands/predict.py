"""``valuescope backtest``: run the value-predictor backtest headless.

    valuescope backtest --dataset NAME --calibration-end DATE --holdout-end DATE
        [--models bgnbd,naive,lightgbm,lstm] [--period weeks|months]
        [--device auto|cuda|mps|cpu] [--epochs N] [--hidden N] [--seed 0]
        [--json OUT.json] [--save [--label TEXT]] [--db PATH]

Prints the comparison table (one row per model with RMSE, Gini, top-decile
capture, predicted / actual total, churn AUC and fit time; the zero, naive and
BG/NBD baselines always run; a learned model that cannot run on the dates says
why in its row) and writes every metric, the decile tables and the run
information to ``--json``. ``--save`` stores the run and the fitted models in
the warehouse's model registry (files next to the warehouse).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from analytics.cli import UserError, add_db_argument, open_warehouse

COLUMNS = [("rmse", "RMSE", "{:.2f}"), ("mae", "MAE", "{:.2f}"), ("spearman", "Spearman", "{:.3f}"),
           ("normalized_gini", "Gini", "{:.3f}"), ("top_decile_capture", "Top10%", "{:.3f}"),
           ("total_ratio", "Pred/Act", "{:.2f}"), ("roc_auc", "ROC AUC", "{:.3f}"),
           ("pr_auc", "PR AUC", "{:.3f}"), ("brier", "Brier", "{:.3f}"), ("fit_seconds", "Fit s", "{:.1f}")]


def register(sub) -> None:
    p = sub.add_parser(
        "backtest",
        help="compare value/churn predictors (BG/NBD, naive, LightGBM, LSTM) on a holdout",
        description="Train on data up to the calibration end, score on the holdout, print and save every metric.",
    )
    add_db_argument(p)
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--calibration-end", required=True, metavar="DATE", help="last calibration day (inclusive)")
    p.add_argument("--holdout-end", required=True, metavar="DATE", help="last holdout day (inclusive)")
    p.add_argument("--models", default="bgnbd,naive,lightgbm,lstm", metavar="LIST",
                   help="comma-separated: zero,naive,bgnbd,paretonbd,lightgbm,lstm (baselines always run)")
    p.add_argument("--period", default="weeks", choices=["weeks", "months"], help="LSTM sequence period")
    p.add_argument("--device", default="auto", help="LSTM device: auto, cuda, mps or cpu")
    p.add_argument("--epochs", type=int, default=None,
                   help="LSTM maximum epochs (early stopping may stop sooner; default: the backtest's CPU default)")
    p.add_argument("--hidden", type=int, default=None, help="LSTM hidden units (default: the backtest's)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--json", default=None, metavar="OUT", help="write every metric to this JSON file")
    p.add_argument("--save", action="store_true", help="store the run and its models in the model registry")
    p.add_argument("--label", default=None, help="a label for the saved run")
    p.set_defaults(func=cmd_backtest)


def _fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def _clean(obj):
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item"):
        return _clean(obj.item())
    return obj


def cmd_backtest(args) -> int:
    from analytics.predict.backtest import run_backtest

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.epochs is not None and args.epochs < 1:
        raise UserError("--epochs must be at least 1")
    if args.hidden is not None and args.hidden < 1:
        raise UserError("--hidden must be at least 1")
    lstm_params = {k: v for k, v in (("epochs", args.epochs), ("hidden_size", args.hidden)) if v is not None}
    wh = open_warehouse(args)

    def progress(row):
        if row.get("status") == "epoch":
            print(f"  lstm {row.get('phase', '')} fit, epoch {row['epoch']}/{row['epochs']}: train loss "
                  f"{row['train_loss']:.4f}, validation loss {row['val_loss']:.4f}", file=sys.stderr)
        elif row.get("status") == "done":
            note = f" ({row['error']})" if row.get("error") else ""
            print(f"  {row['stage']}: {row['seconds']:.1f} s{note}", file=sys.stderr)

    res = run_backtest(wh, args.dataset, args.calibration_end, args.holdout_end, models, period=args.period,
                       device=args.device, random_state=args.seed, lstm_params=lstm_params,
                       progress=progress)
    info = res.info
    print(f"backtest of {info['dataset']}: calibration to {info['calibration_end']}, holdout to "
          f"{info['holdout_end']} ({info['holdout_days']} days), {info['n_customers']} customers, "
          f"{info['holdout_purchasers']} bought in the holdout")
    if info.get("learned_error"):
        print(f"note: {info['learned_error']}")
    for line in (info.get("horizon"), (info.get("levels") or {}).get("note"), info.get("ensemble")):
        if line and info.get("training_cutoffs"):
            print(f"  {line}")
    print(f"{'model':10}" + "".join(f"{label:>10}" for _, label, _ in COLUMNS))
    for name, row in res.metrics.iterrows():
        if isinstance(row.get("error"), str):
            print(f"{name:10}  failed: {row['error']}")
            continue
        print(f"{name:10}" + "".join(f"{_fmt(row.get(key), pat):>10}" for key, _, pat in COLUMNS))
    run_id = None
    if args.save:
        from analytics.predict.registry import save_backtest

        run_id = save_backtest(wh, res, label=args.label)
        print(f"saved as run {run_id}")
    if args.json:
        payload = {
            "info": info,
            "run_id": run_id,
            "metrics": {name: {k: v for k, v in row.items()} for name, row in res.metrics.iterrows()},
            "deciles": {name: table.to_dict(orient="records") for name, table in res.deciles.items()},
        }
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_clean(payload), indent=2, default=str))
        print(f"wrote {out}")
    return 0
