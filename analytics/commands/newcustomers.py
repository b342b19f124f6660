"""``valuescope new-customers``: the first-order model for recent first-time buyers.

    valuescope new-customers backtest --dataset NAME --calibration-end DATE --holdout-end DATE
        [--window-days 90] [--models lightgbm] [--json]
    valuescope new-customers score --dataset NAME --as-of DATE [--window-days 90] [--horizon-days 182]
        [--groups 4] --out FILE.csv|FILE.parquet
    valuescope new-customers recommend --dataset NAME --as-of DATE [--n 10] [--customer ID ...] --out FILE.csv
"""
from __future__ import annotations

import json
from pathlib import Path

from analytics.cli import UserError, add_db_argument, open_warehouse


def register(sub) -> None:
    from analytics.newcustomers import DEFAULT_HORIZON_DAYS, DEFAULT_WINDOW_DAYS

    p = sub.add_parser("new-customers", help="value, groups and recommendations for recent first-time buyers",
                       description="The first-order model: predicted value of customers whose first purchase is "
                                   "recent, its backtest, new-customer groups and recommendations for customers "
                                   "without history.")
    s = p.add_subparsers(dest="action", metavar="ACTION")
    s.required = True
    b = s.add_parser("backtest", help="judge the first-order model on a holdout against the population mean and "
                                      "the other models")
    add_db_argument(b)
    b.add_argument("--dataset", required=True, metavar="NAME")
    b.add_argument("--calibration-end", required=True, metavar="DATE")
    b.add_argument("--holdout-end", required=True, metavar="DATE")
    b.add_argument("--window-days", type=int, default=DEFAULT_WINDOW_DAYS, metavar="DAYS",
                   help=f"a customer is new when the first purchase is in this many days (default {DEFAULT_WINDOW_DAYS})")
    b.add_argument("--models", default="lightgbm", help="existing models to compare with besides the baselines "
                                                        "(comma-separated, e.g. lightgbm,lstm; 'none' for baselines only)")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(func=cmd_backtest)
    c = s.add_parser("score", help="predicted next-period value and group of every new customer")
    add_db_argument(c)
    c.add_argument("--dataset", required=True, metavar="NAME")
    c.add_argument("--as-of", required=True, metavar="DATE")
    c.add_argument("--window-days", type=int, default=DEFAULT_WINDOW_DAYS, metavar="DAYS")
    c.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS, metavar="DAYS")
    c.add_argument("--groups", type=int, default=4, metavar="K", help="number of new-customer groups (default 4)")
    c.add_argument("--out", required=True, metavar="FILE")
    c.set_defaults(func=cmd_score)
    r = s.add_parser("recommend", help="popular items for customers without a purchase (labelled)")
    add_db_argument(r)
    r.add_argument("--dataset", required=True, metavar="NAME")
    r.add_argument("--as-of", required=True, metavar="DATE")
    r.add_argument("--n", type=int, default=10)
    r.add_argument("--customer", action="append", default=None, metavar="ID",
                   help="customer id (repeatable; default: every customer without a purchase)")
    r.add_argument("--out", required=True, metavar="FILE")
    r.set_defaults(func=cmd_recommend)


def _out(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"--out must end in .csv or .parquet, got {out.name!r}")
    if not out.parent.exists():
        raise UserError(f"folder does not exist: {out.parent}")
    return out


def _write(frame, out: Path, meta: dict) -> None:
    from analytics.export import to_parquet, to_safe_csv

    if out.suffix.lower() == ".csv":
        to_safe_csv(frame, out)
    else:
        to_parquet(frame, out, metadata=meta)


def cmd_backtest(args) -> int:
    from analytics.newcustomers import backtest

    wh = open_warehouse(args)
    wh.require_dataset(args.dataset)
    models = () if args.models.strip().lower() in ("", "none") else tuple(m.strip() for m in args.models.split(","))
    bt = backtest(wh, args.dataset, args.calibration_end, args.holdout_end, window_days=args.window_days,
                  models=models)
    table = bt.metrics
    if args.json:
        print(json.dumps({"info": bt.info, "metrics": json.loads(table.reset_index().to_json(orient="records"))},
                         indent=2, default=str))
    else:
        print(f"{bt.info['n_new_customers']:,} customers new at {bt.info['calibration_end']} (first purchase in the "
              f"last {bt.info['window_days']} days); their value over {bt.info['holdout_days']} days:")
        print(table[[c for c in ("n_customers", "rmse", "mae", "spearman", "normalized_gini", "total_ratio")
                     if c in table.columns]].round(3).to_string())
        for what, why in bt.info["errors"].items():
            print(f"{what}: {why}")
    return 0


def cmd_score(args) -> int:
    from analytics.newcustomers import first_order_values, new_customer_segments

    out = _out(args.out)
    wh = open_warehouse(args)
    wh.require_dataset(args.dataset)
    fov = first_order_values(wh, args.dataset, args.as_of, window_days=args.window_days,
                             horizon_days=args.horizon_days)
    if fov.problem:
        raise UserError(fov.problem)
    seg, _profile = new_customer_segments(fov.features, k=args.groups)
    frame = fov.features.copy()
    frame.insert(0, "first_order_value", fov.values)
    frame.insert(1, "new_customer_segment", seg)
    _write(frame.reset_index(), out, {"dataset": args.dataset, "as_of": fov.as_of, "window_days": fov.window_days,
                                      "horizon_days": fov.horizon_days})
    print(f"wrote {len(frame):,} new customers to {out}")
    return 0


def cmd_recommend(args) -> int:
    from analytics.newcustomers import cold_start_recommendations, no_history_customers

    out = _out(args.out)
    wh = open_warehouse(args)
    wh.require_dataset(args.dataset)
    ids = args.customer or list(no_history_customers(wh, args.dataset, args.as_of))
    recs = cold_start_recommendations(wh, args.dataset, ids, args.as_of, n=args.n)
    _write(recs, out, {"dataset": args.dataset, "as_of": args.as_of})
    print(f"wrote {len(recs):,} recommendations for {recs['customer_id'].nunique():,} customers to {out}")
    return 0
