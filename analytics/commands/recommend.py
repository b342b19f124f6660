"""``valuescope recommend``: item-based CF recommendations and their holdout evaluation, headless.

    valuescope recommend items --dataset D --customer ID [--customer ID ...] [--customers-file FILE]
        [--n 10] [--category CAT] [--as-of DAY] [--include-purchased] [--neighbors 50] [--shrinkage 10]
        [--out FILE.csv] [--json]
    valuescope recommend similar --dataset D --item ID [--n 10] [--as-of DAY]
    valuescope recommend evaluate --dataset D [--split DAY --end DAY | --days 90] [--k 10]
        [--neighbors 50] [--shrinkage 10] [--json]

The recommender trains on events up to the end of ``--as-of`` (default: the last event
day, said on stderr). ``evaluate`` trains ItemCF and the popularity baseline on the
events before ``--split`` and measures precision@k / recall@k on the purchases from
``--split`` to ``--end`` (inclusive); without them, the last ``--days`` days are the holdout.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analytics.cli import UserError, add_db_argument, open_warehouse


def register(sub) -> None:
    p = sub.add_parser("recommend", help="product recommendations (item-based CF) and their holdout evaluation",
                       description="Top-N items per customer from item-based collaborative filtering over "
                                   "purchases, carts and views; precision/recall against a popularity baseline.")
    rsub = p.add_subparsers(dest="recommend_command", metavar="SUBCOMMAND")
    rsub.required = True

    def model_args(q):
        q.add_argument("--neighbors", type=int, default=50, metavar="K", help="neighbours kept per item (50)")
        q.add_argument("--shrinkage", type=float, default=25.0, metavar="S", help="cosine shrinkage (25)")

    q = rsub.add_parser("items", help="top-N items for given customers")
    add_db_argument(q)
    q.add_argument("--dataset", required=True, metavar="NAME")
    q.add_argument("--customer", action="append", default=[], metavar="ID", help="customer id (repeat)")
    q.add_argument("--customers-file", default=None, metavar="FILE", help="text file, one customer id a line")
    q.add_argument("--n", type=int, default=10, help="items per customer (10)")
    q.add_argument("--category", default=None, metavar="CAT", help="only items of this category")
    q.add_argument("--as-of", default=None, metavar="DAY", help="train on events up to this day (default: last)")
    q.add_argument("--include-purchased", action="store_true", help="allow items the customer already bought")
    model_args(q)
    q.add_argument("--out", default=None, metavar="FILE.csv", help="write the recommendations as CSV")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_items)

    q = rsub.add_parser("similar", help="the items most similar to an item")
    add_db_argument(q)
    q.add_argument("--dataset", required=True, metavar="NAME")
    q.add_argument("--item", required=True, metavar="ID")
    q.add_argument("--n", type=int, default=10)
    q.add_argument("--as-of", default=None, metavar="DAY")
    model_args(q)
    q.set_defaults(func=cmd_similar)

    q = rsub.add_parser("evaluate", help="precision@k / recall@k of ItemCF vs popularity on a time holdout")
    add_db_argument(q)
    q.add_argument("--dataset", required=True, metavar="NAME")
    q.add_argument("--split", default=None, metavar="DAY", help="first holdout day")
    q.add_argument("--end", default=None, metavar="DAY", help="last holdout day (inclusive)")
    q.add_argument("--days", type=int, default=90, help="holdout = the last DAYS days when --split is not given")
    q.add_argument("--k", type=int, default=10, help="list length (10)")
    model_args(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_evaluate)


def _wh(args):
    wh = open_warehouse(args)
    wh.require_dataset(args.dataset)
    return wh


def _day(value: str, what: str):
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if pd.isna(ts):
        raise UserError(f"{what} is not a date: {value!r}")
    return ts.normalize()


def _fit(args, wh):
    import pandas as pd

    from analytics.recommend import ItemCF, data_range, load_interactions

    if args.as_of is None:
        last = data_range(wh, args.dataset)[1]
        if last is None:
            raise UserError(f"dataset {args.dataset!r} has no events")
        end = last.normalize() + pd.Timedelta(days=1)
        print(f"as of {(end - pd.Timedelta(days=1)).date()} (the last event day)", file=sys.stderr)
    else:
        end = _day(args.as_of, "--as-of") + pd.Timedelta(days=1)
    inter = load_interactions(wh, args.dataset, end=end)
    return ItemCF(n_neighbors=args.neighbors, shrinkage=args.shrinkage).fit(inter)


def cmd_items(args) -> int:
    ids = list(args.customer)
    if args.customers_file:
        path = Path(args.customers_file)
        if not path.is_file():
            raise UserError(f"no such file: {path}")
        ids += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise UserError("give at least one --customer ID (or --customers-file)")
    out = Path(args.out) if args.out else None
    if out is not None and not out.parent.exists():
        raise UserError(f"the folder {out.parent} does not exist")
    wh = _wh(args)
    model = _fit(args, wh)
    recs = model.recommend(ids, n=args.n, exclude_purchased=not args.include_purchased, category=args.category)
    if out is not None:
        from analytics.export import to_safe_csv

        to_safe_csv(recs, out)
        print(f"{len(recs):,} recommendations for {recs['customer_id'].nunique():,} customers written to {out}",
              file=sys.stderr)
    if args.json:
        print(recs.to_json(orient="records"))
    elif out is None:
        print(recs.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


def cmd_similar(args) -> int:
    wh = _wh(args)
    model = _fit(args, wh)
    print(model.similar_items(args.item, n=args.n).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


def cmd_evaluate(args) -> int:
    import pandas as pd

    from analytics.recommend import ItemCF, PopularityRecommender, evaluate_holdout, holdout_window

    wh = _wh(args)
    if (args.split is None) != (args.end is None):
        raise UserError("give both --split and --end, or neither (then the last --days days are the holdout)")
    if args.split is None:
        split, end = holdout_window(wh, args.dataset, days=args.days)
    else:
        split, end = _day(args.split, "--split"), _day(args.end, "--end") + pd.Timedelta(days=1)
    models = {"item_cf": ItemCF(n_neighbors=args.neighbors, shrinkage=args.shrinkage),
              "popularity": PopularityRecommender()}
    res = evaluate_holdout(wh, args.dataset, split, end, k=args.k, models=models)
    window = {"train_before": str(split.date()), "holdout_from": str(split.date()),
              "holdout_to": str((end - pd.Timedelta(days=1)).date())}
    if args.json:
        print(json.dumps({**window, "results": res.to_dict(orient="records")}, indent=2))
        return 0
    print(f"trained on events before {window['train_before']}; holdout purchases {window['holdout_from']} .. "
          f"{window['holdout_to']}; {int(res['customers'].iloc[0]):,} customers with history who bought "
          f"new items")
    for row in res.itertuples():
        print(f"  {row.model:<11} precision@{row.k} {row.precision_at_k:.4f}   recall@{row.k} {row.recall_at_k:.4f}")
    return 0
