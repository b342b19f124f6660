"""``valuescope recommend``: recommendations, their holdout evaluation and the default model, headless.

    valuescope recommend items --dataset D --customer ID [--customer ID ...] [--customers-file FILE]
        [--model auto|popularity|recent_popularity|item_cf|item_knn|ease|als|bpr|blend|sequence] [--n 10]
        [--category CAT] [--as-of DAY] [--include-purchased] [--names] [--out FILE.csv] [--json]
    valuescope recommend similar --dataset D --item ID [--n 10] [--as-of DAY]
    valuescope recommend evaluate --dataset D [--split DAY --end DAY | --days 90] [--k 10]
        [--models als,sequence,...] [--include-purchased] [--validation-days N] [--folds 3] [--step-days N]
        [--no-validation] [--device auto|cuda|mps|cpu] [--json]
    valuescope recommend choose --dataset D [--as-of DAY] [--models ...] [--json]

Models train on events up to the end of ``--as-of`` (default: the last event day, said on
stderr). ``evaluate`` chooses every model's settings on validation windows before
``--split`` (never on the holdout), refits them on all events before it and measures
precision@k, recall@k, F1@k, NDCG@k and coverage on the purchases from ``--split`` to
``--end`` (inclusive); without them the last ``--days`` days are the holdout. ``items
--model auto`` (the default) uses the validation winner, as campaigns do.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analytics.cli import UserError, add_db_argument, open_warehouse

MODEL_CHOICES = ("auto", "popularity", "recent_popularity", "item_cf", "item_knn", "ease", "als", "bpr", "blend",
                 "sequence")


def register(sub) -> None:
    p = sub.add_parser("recommend", help="product recommendations, their holdout evaluation and the default model",
                       description="Top-N items per customer (popularity, item neighbours, matrix factorisation, "
                                   "a GRU sequence model); precision/recall/F1/NDCG/coverage on a time holdout "
                                   "against popularity baselines.")
    rsub = p.add_subparsers(dest="recommend_command", metavar="SUBCOMMAND")
    rsub.required = True

    def seq_args(q):
        q.add_argument("--device", default="auto", help="sequence model device: auto, cuda, mps or cpu")
        q.add_argument("--seq-epochs", type=int, default=None, metavar="N", help="sequence model max epochs")

    q = rsub.add_parser("items", help="top-N items for given customers")
    add_db_argument(q)
    q.add_argument("--dataset", required=True, metavar="NAME")
    q.add_argument("--customer", action="append", default=[], metavar="ID", help="customer id (repeat)")
    q.add_argument("--customers-file", default=None, metavar="FILE", help="text file, one customer id a line")
    q.add_argument("--model", default="auto", choices=MODEL_CHOICES,
                   help="auto (default) = the model that wins on the last 90 days before the as-of day")
    q.add_argument("--n", type=int, default=10, help="items per customer (10)")
    q.add_argument("--category", default=None, metavar="CAT", help="only items of this category")
    q.add_argument("--as-of", default=None, metavar="DAY", help="train on events up to this day (default: last)")
    q.add_argument("--include-purchased", action="store_true", help="allow items the customer already bought")
    q.add_argument("--names", action="store_true", help="add the item's name (or id and category)")
    seq_args(q)
    q.add_argument("--out", default=None, metavar="FILE.csv", help="write the recommendations as CSV")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_items)

    q = rsub.add_parser("similar", help="the items most similar to an item (item-based CF)")
    add_db_argument(q)
    q.add_argument("--dataset", required=True, metavar="NAME")
    q.add_argument("--item", required=True, metavar="ID")
    q.add_argument("--n", type=int, default=10)
    q.add_argument("--as-of", default=None, metavar="DAY")
    q.add_argument("--neighbors", type=int, default=50, metavar="K", help="neighbours kept per item (50)")
    q.add_argument("--shrinkage", type=float, default=25.0, metavar="S", help="cosine shrinkage (25)")
    q.set_defaults(func=cmd_similar)

    q = rsub.add_parser("evaluate", help="every model on one time holdout, settings chosen on validation")
    add_db_argument(q)
    q.add_argument("--dataset", required=True, metavar="NAME")
    q.add_argument("--split", default=None, metavar="DAY", help="first holdout day")
    q.add_argument("--end", default=None, metavar="DAY", help="last holdout day (inclusive)")
    q.add_argument("--days", type=int, default=90, help="holdout = the last DAYS days when --split is not given")
    q.add_argument("--k", type=int, default=10, help="list length (10)")
    q.add_argument("--models", default=None, metavar="LIST",
                   help="comma-separated (default: all; popularity always runs)")
    q.add_argument("--include-purchased", action="store_true",
                   help="re-purchases count as hits and already bought items may be recommended")
    q.add_argument("--validation-days", type=int, default=None, metavar="N",
                   help="validation window length (default: the holdout's, at most a third of the history)")
    q.add_argument("--folds", type=int, default=3, help="validation windows before the split (3)")
    q.add_argument("--step-days", type=int, default=None, metavar="N",
                   help="days between the validation cut-offs (default: a third of a window, so they overlap)")
    q.add_argument("--no-validation", action="store_true", help="use each model's default setting")
    seq_args(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_evaluate)

    q = rsub.add_parser("choose", help="the default model for campaigns (validation winner before the as-of day)")
    add_db_argument(q)
    q.add_argument("--dataset", required=True, metavar="NAME")
    q.add_argument("--as-of", default=None, metavar="DAY")
    q.add_argument("--models", default=None, metavar="LIST")
    q.add_argument("--validation-days", type=int, default=None, metavar="N")
    seq_args(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_choose)


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


def _end(args, wh):
    import pandas as pd

    from analytics.recommend import data_range

    if args.as_of is None:
        last = data_range(wh, args.dataset)[1]
        if last is None:
            raise UserError(f"dataset {args.dataset!r} has no events")
        end = last.normalize() + pd.Timedelta(days=1)
        print(f"as of {(end - pd.Timedelta(days=1)).date()} (the last event day)", file=sys.stderr)
        return end
    return _day(args.as_of, "--as-of") + pd.Timedelta(days=1)


def _seq_params(args) -> dict:
    from analytics.device import pick_device

    out = {"device": pick_device(args.device)}
    if getattr(args, "seq_epochs", None):
        out["epochs"] = int(args.seq_epochs)
    return out


def _progress(row: dict) -> None:
    if row.get("status") == "epoch":
        print(f"  {row.get('stage')} {row.get('model')}: epoch {row['epoch']}/{row['epochs']} loss "
              f"{row['train_loss']:.4f} validation recall@10 {row['val_recall']:.4f}", file=sys.stderr)
    elif row.get("status") == "start":
        print(f"{row.get('stage')}: {row.get('model')} ({settings_text(row.get('params') or {})})", file=sys.stderr)


def cmd_items(args) -> int:
    from analytics import recommend as R

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
    known = {r[0] for r in wh.cursor().execute(
        "SELECT DISTINCT customer_id FROM events WHERE dataset = ? AND customer_id IN (SELECT unnest(?))",
        [args.dataset, ids]).fetchall()}
    unknown = [i for i in dict.fromkeys(ids) if i not in known]
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        if len(unknown) == len(set(ids)):
            raise UserError(f"no customer {shown} in dataset {args.dataset!r} (no events with that id)")
        print(f"valuescope recommend items: skipped {len(unknown):,} unknown customer id(s): {shown}",
              file=sys.stderr)
        ids = [i for i in ids if i in known]
    end = _end(args, wh)
    if args.model == "auto":
        choice = R.choose_default(wh, args.dataset, end, sequence_params=_seq_params(args))
        print(f"model: {choice['label']}" + (f" ({choice['note']})" if choice.get("note") else ""), file=sys.stderr)
    else:
        choice = {"model": args.model, "params": R.DEFAULT_GRID[args.model][0]}
        if args.model == "sequence":
            choice["params"] = {**choice["params"], **_seq_params(args)}
    model = R.fit_default(wh, args.dataset, end, choice)
    recs = model.recommend(ids, n=args.n, exclude_purchased=not args.include_purchased, category=args.category)
    if args.names:
        recs = recs.assign(item_name=recs["item_id"].map(R.item_labels(wh, args.dataset, recs["item_id"])))
    fallback = int((recs["source"] == "popularity").sum())
    if fallback and args.model != "popularity":
        print(f"{fallback:,} of {len(recs):,} recommendations came from the popularity fallback (customers "
              "without history or too few candidates)", file=sys.stderr)
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
    from analytics.recommend import ItemCF, load_interactions

    wh = _wh(args)
    model = ItemCF(n_neighbors=args.neighbors, shrinkage=args.shrinkage).fit(
        load_interactions(wh, args.dataset, end=_end(args, wh)))
    print(model.similar_items(args.item, n=args.n).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


def evaluation_report(res) -> dict:
    """The JSON document of ``recommend evaluate`` for an ``evaluate_holdout`` result."""
    from analytics.recommend import ratio_summary

    cols = ["model", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k", "coverage", "customers",
            "popularity_share", "k", "params", "fit_seconds", "label"]
    rows = json.loads(res[cols].to_json(orient="records"))
    for r in rows:
        r["params"] = json.loads(r["params"])
        r["vs_popularity"] = ratio_summary(res, r["model"], "popularity")
        r["vs_recent_popularity"] = ratio_summary(res, r["model"], "recent_popularity")
    val = res.attrs.get("validation")
    return {**res.attrs.get("window", {}), "k": int(res["k"].iloc[0]) if len(res) else None,
            "exclude_purchased": res.attrs.get("exclude_purchased", True), "results": rows,
            "validation": val, "default_model": val["winner"] if val else "popularity",
            "notes": res.attrs.get("notes", [])}


def cmd_evaluate(args) -> int:
    import pandas as pd

    from analytics.recommend import evaluate_holdout, holdout_window

    wh = _wh(args)
    if (args.split is None) != (args.end is None):
        raise UserError("give both --split and --end, or neither (then the last --days days are the holdout)")
    if args.split is None:
        split, end = holdout_window(wh, args.dataset, days=args.days)
    else:
        split, end = _day(args.split, "--split"), _day(args.end, "--end") + pd.Timedelta(days=1)
    res = evaluate_holdout(wh, args.dataset, split, end, k=args.k, families=args.models,
                           exclude_purchased=not args.include_purchased, validate=not args.no_validation,
                           fold_days=args.validation_days, folds=args.folds, step_days=args.step_days,
                           sequence_params=_seq_params(args),
                           progress=None if args.json else _progress)
    report = evaluation_report(res)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    k = report["k"]
    n = int(res["customers"].iloc[0]) if len(res) else 0
    rule = "items new to each customer" if report["exclude_purchased"] else "all purchases (re-purchases count)"
    print(f"trained on events before {report['train_before']}; holdout purchases {report['holdout_from']} .. "
          f"{report['holdout_to']} ({rule}); {n:,} customers with history")
    print(f"  {'model':<18} {'prec@' + str(k):>9} {'rec@' + str(k):>9} {'F1@' + str(k):>9} {'NDCG@' + str(k):>9} "
          f"{'coverage':>9} {'x pop P':>8} {'x pop R':>8}")
    for r in report["results"]:
        vp = r["vs_popularity"] or {}
        fmt = (lambda x: f"{x:8.2f}" if x is not None else "       -")
        print(f"  {r['model']:<18} {r['precision_at_k']:9.4f} {r['recall_at_k']:9.4f} {r['f1_at_k']:9.4f} "
              f"{r['ndcg_at_k']:9.4f} {r['coverage']:9.3f} {fmt(vp.get('precision'))} {fmt(vp.get('recall'))}")
    val = report["validation"]
    if val:
        rv = val["ratios_vs_popularity"].get(val["winner"], {})
        print(f"validation ({', '.join(a + ' .. ' + b for a, b in val['windows'])}): the default is {val['label']} "
              f"({settings_text(val['params'])}): precision x{rv.get('precision', float('nan')):.2f}, recall "
              f"x{rv.get('recall', float('nan')):.2f} of popularity there")
    for note in report["notes"]:
        print(f"note: {note}")
    return 0


def settings_text(params: dict) -> str:
    """A model's settings as a reader sees them: ``l2 300, half_life_days 30`` (``no settings`` for none)."""
    if not params:
        return "no settings"
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())


def cmd_choose(args) -> int:
    from analytics.recommend import choose_default

    wh = _wh(args)
    choice = choose_default(wh, args.dataset, _end(args, wh), families=args.models, fold_days=args.validation_days,
                            sequence_params=_seq_params(args), progress=None if args.json else _progress)
    if args.json:
        print(json.dumps(choice, indent=2))
        return 0
    r = choice["ratios_vs_popularity"].get(choice["model"], {})
    settings = f" with {settings_text(choice['params'])}" if choice["params"] else ", which has no settings"
    print(f"default: {choice['label']}{settings}"
          + (f"; on {choice['windows'][0][0]} .. {choice['windows'][0][1]} precision x{r['precision']:.2f}, "
             f"recall x{r['recall']:.2f} of popularity" if r else "")
          + (f" ({choice['note']})" if choice.get("note") else ""))
    return 0
