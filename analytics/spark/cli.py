"""``valuescope score --engine spark``: score Parquet events on Spark, with the columns of
``valuescope score --dataset NAME``.

    valuescope score --engine spark --events 'PATH/*.parquet' --as-of DAY --out FILE|DIR
        [--spark-master URL | --spark-remote sc://HOST:PORT] [--unit ...] [weights, CLV
        parameters, rules as for the warehouse] [--summary-out DIR] [--lightgbm-model DIR]

``--out FILE.csv`` or ``FILE.parquet`` collects the result to this machine (small
outputs: the same file the warehouse path writes, customers sorted by id);
any other ``--out`` is a folder of Parquet part files written by the executors
(large outputs). A sidecar ``OUT.json`` holds the parameters and fitted models.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analytics.cli import UserError

SMALL_SUFFIXES = (".csv", ".parquet")


def add_arguments(p) -> None:
    """The Spark options of ``valuescope score``."""
    g = p.add_argument_group("Spark engine (--engine spark)")
    g.add_argument("--events", metavar="PATH", nargs="+",
                   help="Parquet events (a glob such as 'data/*.parquet', a folder or files) in the layout of "
                        "`valuescope export`")
    g.add_argument("--spark-master", metavar="URL", default=None,
                   help="Spark master: local[*] (default), spark://HOST:7077, yarn, k8s://...")
    g.add_argument("--spark-remote", metavar="sc://HOST:PORT", default=None, help="a Spark Connect server instead")
    g.add_argument("--summary-out", metavar="DIR", default=None,
                   help="also write the per-customer summary as Parquet (for `valuescope attach-summary`)")
    g.add_argument("--lightgbm-model", metavar="DIR", default=None,
                   help="a saved LightGBM model folder: add predicted_value and churn_probability per customer")
    g.add_argument("--period", default="weeks", help="period of the LightGBM model's features (weeks or months)")
    g.add_argument("--n-periods", type=int, default=None, help="number of periods of the LightGBM model's features")


def cmd_score_spark(args, *, rfm_weights, behaviour_weights, clv, rules) -> int:
    from analytics.export import to_parquet, to_safe_csv
    from analytics.spark import scoring
    from analytics.spark import summary as ssum
    from analytics.spark.events import check_local_schema, event_span, expand_paths, read_events
    from analytics.spark.session import spark_session
    from analytics.summary import as_of_date, check_unit

    if not args.events:
        raise UserError("--engine spark needs --events 'PATH/*.parquet'")
    check_unit(args.unit)
    out = str(args.out)
    small = out.lower().endswith(SMALL_SUFFIXES)
    local_out = "://" not in out
    if local_out and not Path(out).resolve().parent.exists():
        raise UserError(f"the folder {Path(out).parent} does not exist")
    day = as_of_date(args.as_of)
    check_local_schema(expand_paths(args.events))  # before the JVM starts: fail fast on bad input
    spark = spark_session(args.spark_master, args.spark_remote)
    events = read_events(spark, args.events)
    span = event_span(events)
    name = ", ".join(args.events)
    if span["first"] is None:
        raise UserError(f"{name}: no usable events (every row lacks a customer id, event time or event type)")
    import pandas as pd

    first, last = pd.Timestamp(span["first"]), pd.Timestamp(span["last"])
    if pd.Timestamp(day) < first.normalize():
        raise UserError(f"the as-of date {day} is before the first event of {name} ({first.date()}); "
                        f"pick a date between {first.date()} and {last.date()}")
    summary = ssum.customer_summary(events, day, args.unit).persist()
    if args.summary_out:  # always in days, with its as-of day (what attach-summary reads)
        from pyspark.sql import functions as F

        days = summary if args.unit == "days" else ssum.customer_summary(events, day, "days")
        days.withColumn("as_of", F.lit(day).cast("date")).write.mode("overwrite").parquet(args.summary_out)
    run = scoring.score_summary(summary, day, args.unit, rfm_weights=rfm_weights,
                                behaviour_weights=behaviour_weights, clv=clv, rules=rules,
                                fallback=args.fallback_segment, bgnbd=not args.no_bgnbd, dataset=name,
                                purchase_model=getattr(args, "purchase_model", "bgnbd"),
                                penalizer=getattr(args, "penalizer", 0.0), customer_columns=True)
    frame = run.frame
    meta = dict(run.metadata)
    if args.lightgbm_model:
        from analytics.spark.features import add_lightgbm_predictions

        frame = add_lightgbm_predictions(frame, events, args.lightgbm_model, day, period=args.period,
                                         n_periods=args.n_periods)
        meta["lightgbm_model"] = str(args.lightgbm_model)
    meta["warehouse_only_columns"] = list(scoring.WAREHOUSE_ONLY)
    meta["events"] = {"paths": list(args.events), "rows": span["rows"], "unusable_rows": span["unusable"]}
    frame = frame.persist()
    totals = _totals(frame)
    meta["customers"] = totals["customers"]
    if small:
        pdf = ssum.collect(frame.orderBy("customer_id"))
        if out.lower().endswith(".csv"):
            to_safe_csv(pdf, out, bom=args.bom)
        else:
            to_parquet(pdf, out, metadata=meta)
    else:
        frame.write.mode("overwrite").parquet(out)
    sidecar = None
    if local_out:
        sidecar = Path(out.rstrip("/") + ".json")
        sidecar.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")

    where = f"{out} (+ {sidecar.name})" if sidecar else out
    print(f"scored {totals['customers']:,} customers of {name} as of {meta['as_of']} on Spark -> {where}")
    print(f"customers with orders: {totals['buyers']:,}; CLV by formula, total {totals['clv_formula']:,.2f}")
    if totals.get("clv_bgnbd") is not None:
        print(f"CLV by BG/NBD + Gamma-Gamma, total {totals['clv_bgnbd']:,.2f}")
    print("note: review sentiment and first-order value are left empty on Spark (their models are trained in "
          "the warehouse: valuescope ingest, then valuescope score --dataset)", file=sys.stderr)
    if span["unusable"]:
        print(f"note: {span['unusable']:,} rows without a customer id, a readable event time or an event type "
              "were left out", file=sys.stderr)
    if run.bgnbd_note:
        print(f"note: BG/NBD CLV skipped: {run.bgnbd_note}", file=sys.stderr)
    if run.fit_note:
        print(f"note: {run.fit_note}", file=sys.stderr)
    for extra in meta.get("fit_notes", []):
        print(f"note: {extra}", file=sys.stderr)
    total_rev = sum(r for _, _, r in totals["segments"]) or 0.0
    print(f"{'segment':22} {'customers':>10} {'revenue share':>14}")
    for seg, n, rev in sorted(totals["segments"], key=lambda t: -t[2]):
        share = rev / total_rev if total_rev else 0.0
        print(f"{seg:22} {n:>10,} {share:>13.1%}")
    return 0


def _totals(frame) -> dict:
    """Counts and totals for the printed report (one aggregation per segment on Spark)."""
    from pyspark.sql import functions as F

    has_bg = "clv_bgnbd" in frame.columns
    aggs = [F.count(F.lit(1)).alias("n"), F.sum((F.col("n_orders") > 0).cast("long")).alias("buyers"),
            F.sum("net_revenue").alias("rev"), F.sum("clv_formula").alias("clv")]
    if has_bg:
        aggs.append(F.sum(F.when(~F.isnan("clv_bgnbd"), F.col("clv_bgnbd"))).alias("bg"))
    rows = frame.groupBy("rfm_segment").agg(*aggs).collect()
    out = {
        "customers": int(sum(r["n"] for r in rows)),
        "buyers": int(sum(r["buyers"] or 0 for r in rows)),
        "clv_formula": float(sum(r["clv"] or 0.0 for r in rows)),
        "clv_bgnbd": float(sum(r["bg"] or 0.0 for r in rows)) if has_bg else None,
        "segments": [(r["rfm_segment"], int(r["n"]), float(r["rev"] or 0.0)) for r in rows],
    }
    return out
