"""``valuescope score``: score every customer of a dataset headless and write CSV or Parquet.

    valuescope score --dataset NAME --as-of DATE [--unit days|weeks|months]
        [--rfm-weights 1,1,1] [--behaviour-weights views=0.1,carts=0.5,...]
        [--margin 0.3] [--horizon-months 12] [--discount-rate 0.1]
        [--lifetime-years 3] [--min-age-months 9] [--no-bgnbd]
        [--purchase-model bgnbd|paretonbd] [--penalizer 0]
        [--segment-rules RULES.csv|RULES.json] [--fallback-segment NAME]
        --out FILE.csv|FILE.parquet [--bom] [--db PATH]
    valuescope score --engine spark --events 'PATH/*.parquet' --as-of DATE --out FILE|DIR
        [--spark-master URL | --spark-remote sc://HOST:PORT] (same scoring options; see analytics.spark.cli)

Writes one row per customer (RFM scores and segment, behaviour score, CLV by
formula and, unless ``--no-bgnbd``, by a purchase model (BG/NBD or Pareto/NBD, column
``clv_bgnbd`` either way) + Gamma-Gamma) with every
parameter as a ``param_*`` column, plus a sidecar ``FILE.json`` with the
parameters, the fitted model parameters and counts. CSV cells are neutralized
against formula injection (``analytics.export``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analytics.cli import UserError, add_db_argument, atomic_output, open_warehouse


def register(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score every customer (RFM, behaviour, CLV) and write a CSV or Parquet file",
        description="Score every customer of a dataset as of a date and write CSV/Parquet.",
    )
    add_db_argument(p)
    p.add_argument("--dataset", metavar="NAME", help="dataset to score (the warehouse engine)")
    p.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                   help="duckdb: a dataset of the warehouse (default); spark: Parquet --events on Spark")
    p.add_argument("--as-of", required=True, metavar="DATE", help="as-of date (YYYY-MM-DD); later events are ignored")
    p.add_argument("--unit", default="days", help="time unit of recency/T: days, weeks or months (default days)")
    p.add_argument("--rfm-weights", default="1,1,1", metavar="R,F,M",
                   help="weights of recency, frequency, monetary (e.g. 2,1,1 or recency=2,monetary=1)")
    p.add_argument("--behaviour-weights", default=None, metavar="W",
                   help="weights of views,searches,carts,purchases,reviews (default 0.1,0.1,0.2,0.4,0.2)")
    p.add_argument("--margin", type=float, default=0.3, help="gross margin, 0-1 (default 0.3)")
    p.add_argument("--horizon-months", type=float, default=12.0, help="CLV horizon in months (default 12)")
    p.add_argument("--discount-rate", type=float, default=0.10, help="annual discount rate, 0-1 (default 0.10)")
    p.add_argument("--lifetime-years", type=float, default=3.0,
                   help="expected customer lifetime in years for the CLV formula (default 3)")
    p.add_argument("--min-age-months", type=float, default=None,
                   help="customers younger than this are counted as this old for orders per year, so a new "
                   "customer's few orders are not blown up to a year's worth (default: "
                   "analytics.scores.DEFAULT_MIN_AGE_MONTHS, 9 months)")
    p.add_argument("--no-bgnbd", action="store_true", help="skip the probabilistic CLV (BG/NBD or Pareto/NBD + Gamma-Gamma)")
    p.add_argument("--purchase-model", default="bgnbd", choices=("bgnbd", "paretonbd"),
                   help="purchase model of the probabilistic CLV: bgnbd (BG/NBD, default) or paretonbd (Pareto/NBD)")
    p.add_argument("--penalizer", type=float, default=0.0,
                   help="L2 penalizer the model fits start from (default 0; a fit that fails or runs off "
                   "is retried with 0.001, 0.01, 0.1)")
    p.add_argument("--segment-rules", metavar="FILE", default=None,
                   help="RFM segment rule table (CSV or JSON list) with columns segment,r_min,r_max,fm_min,fm_max; "
                   "first matching rule wins (default: the standard R-vs-FM grid)")
    p.add_argument("--fallback-segment", metavar="NAME", default="Other",
                   help="segment of customers no rule covers (default Other)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file: .csv or .parquet")
    p.add_argument("--bom", action="store_true", help="write a UTF-8 byte order mark in the CSV (for Excel)")
    from analytics.spark.cli import add_arguments as add_spark_arguments

    add_spark_arguments(p)
    p.set_defaults(func=cmd_score)


def cmd_score(args) -> int:
    from analytics import scores
    from analytics.export import to_parquet, to_safe_csv

    out = Path(args.out)
    fmt = out.suffix.lower()
    if args.engine == "duckdb" and not args.dataset:
        raise UserError("--dataset NAME is required (or --engine spark --events 'PATH/*.parquet')")
    if args.engine == "spark":
        if args.dataset:
            raise UserError("--engine spark scores --events, not a --dataset of the warehouse")
    elif fmt not in (".csv", ".parquet"):
        raise UserError(f"--out must end in .csv or .parquet, got {out.name!r}")
    elif not out.parent.exists():
        raise UserError(f"the folder {out.parent} does not exist")
    rfm_w = scores.parse_weights(args.rfm_weights, scores.RFM_KEYS, "RFM weights")
    beh_w = (
        scores.parse_weights(args.behaviour_weights, scores.BEHAVIOUR_KEYS, "behaviour weights")
        if args.behaviour_weights is not None
        else dict(scores.DEFAULT_BEHAVIOUR_WEIGHTS)
    )
    params = scores.CLVParams(
        margin=args.margin,
        horizon_months=args.horizon_months,
        discount_rate=args.discount_rate,
        expected_lifetime_years=args.lifetime_years,
        min_age_months=scores.DEFAULT_MIN_AGE_MONTHS if args.min_age_months is None else args.min_age_months,
    ).validated()

    rules = _read_rules(args.segment_rules) if args.segment_rules else None
    scores.compile_segment_rules(rules, args.fallback_segment)  # validate before any work
    if args.engine == "spark":
        from analytics.spark.cli import cmd_score_spark

        return cmd_score_spark(args, rfm_weights=rfm_w, behaviour_weights=beh_w, clv=params, rules=rules)

    wh = open_warehouse(args)
    run = scores.score_dataset(
        wh, args.dataset, args.as_of, args.unit,
        rfm_weights=rfm_w, behaviour_weights=beh_w, clv=params, bgnbd=not args.no_bgnbd,
        rules=rules, fallback=args.fallback_segment, purchase_model=args.purchase_model,
        penalizer=args.penalizer,
    )
    frame = run.frame
    meta = run.metadata()
    spend_warning = None
    if run.models is not None and (meta["model_params"].get("spend_check") or {}).get("poor_fit"):
        from analytics.currency import dataset_currency

        meta["model_params"]["spend_check"] = scores.spend_check(
            run.models[1], dataset_currency(wh, args.dataset).code)
        spend_warning = meta["model_params"]["spend_check"]["warning"]
    # review sentiment, expected next order and churn band, new customers' first-order value
    from analytics.reviews.columns import add_customer_columns

    frame = add_customer_columns(wh, args.dataset, meta["as_of"], frame,
                                 bgnbd=run.models[0] if run.models else None, summary=run.scorer.summary,
                                 first_order=True)
    # written under temporary names and renamed when complete: a stopped run leaves no cut-off file
    with atomic_output(out) as tmp:
        if fmt == ".csv":
            to_safe_csv(frame, tmp, bom=args.bom)
        else:
            to_parquet(frame, tmp, metadata=meta)
    sidecar = out.with_name(out.name + ".json")
    with atomic_output(sidecar) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")

    print(f"scored {len(frame):,} customers of {args.dataset!r} as of {meta['as_of']} -> {out} (+ {sidecar.name})")
    buyers = int((frame["n_orders"] > 0).sum())
    print(f"customers with orders: {buyers:,}; CLV by formula, total {frame['clv_formula'].sum():,.2f}")
    clv_values = frame["clv_bgnbd"] if "clv_bgnbd" in frame else None
    covered = int(clv_values.notna().sum()) if clv_values is not None else 0
    if covered:
        print(f"CLV by {run.model_label}, total {clv_values.sum():,.2f} ({covered:,} customers with orders)")
    elif not args.no_bgnbd:
        # never a silent "total 0.00": say that there is no probabilistic CLV, why, and what to do
        reason = run.bgnbd_note or "the models gave no CLV for any customer"
        print(f"warning: no probabilistic CLV in {out.name}: {reason}. "
              f"{scores.clv_unavailable_advice(reason, cli=True)}", file=sys.stderr)
    if run.fit_note:
        print(f"note: {run.fit_note}", file=sys.stderr)
    if spend_warning:
        print(f"warning: {spend_warning}", file=sys.stderr)
    _note_days_after_the_data(wh, args.dataset, meta["as_of"])
    table = run.result.segment_table.sort_values("revenue", ascending=False)
    print(f"{'segment':22} {'customers':>10} {'revenue share':>14}")
    for _, row in table.iterrows():
        print(f"{row['segment']:22} {int(row['customers']):>10,} {row['revenue_share']:>13.1%}")
    return 0


def _note_days_after_the_data(wh, dataset: str, as_of) -> None:
    """A note when the as-of day lies after the data's last event day: every customer's recency
    and age then count those days without data (a mistyped year reads as a dead customer base)."""
    import pandas as pd

    last = wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = ?", [dataset]).fetchone()[0]
    if last is None:
        return
    gap = (pd.Timestamp(as_of).normalize() - pd.Timestamp(last).normalize()).days
    if gap > 0:
        print(f"note: the as-of date {pd.Timestamp(as_of).date()} is {gap:,} day{'s' if gap != 1 else ''} after the "
              f"last event of {dataset!r} ({pd.Timestamp(last).date()}): recency and the models count those days "
              "as days without purchases", file=sys.stderr)


def _read_rules(path: str):
    """A rule table from a CSV file or a JSON list of objects."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise UserError(f"no segment rules file {path}")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise UserError(f"{p.name}: expected a JSON list of rules")
            return data
        return pd.read_csv(p, dtype={"segment": str})
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot read the segment rules {p.name}: {exc}") from None
