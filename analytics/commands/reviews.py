"""``valuescope sentiment``: learn review sentiment from a dataset's own rated reviews, score and store.

    valuescope sentiment --dataset NAME [--out FILE.csv|FILE.parquet] [--bom] [--json] [--db PATH]

Trains (or falls back to the VADER lexicon, see ``analytics.reviews.sentiment``), scores every
review and stores the scores in the warehouse (what the pages, segments and models read).
Prints which source was used and how well it did on held-out rated reviews. ``--out`` writes
one row per review: customer_id, event_time, item_id, text, rating, sentiment (CSV cells
neutralized against formula injection).
"""
from __future__ import annotations

import json
from pathlib import Path

from analytics.cli import UserError, add_db_argument, open_warehouse


def register(sub) -> None:
    p = sub.add_parser(
        "sentiment",
        help="score every review's sentiment (learned from the dataset's rated reviews) and store it",
        description="Learn review sentiment from the dataset's own rated reviews (character n-grams + "
                    "logistic regression; the VADER lexicon when there are too few), score every review, "
                    "store the scores and optionally write them to a file.",
    )
    add_db_argument(p)
    p.add_argument("--dataset", required=True, metavar="NAME", help="dataset whose reviews to score")
    p.add_argument("--out", default=None, metavar="FILE", help="write the scored reviews (.csv or .parquet)")
    p.add_argument("--bom", action="store_true", help="CSV: start with a UTF-8 byte order mark (for Excel)")
    p.add_argument("--json", action="store_true", help="print the run's details as JSON")
    p.add_argument("--seed", type=int, default=0, help="random seed of the held-out split and the fit (default 0)")
    p.set_defaults(func=cmd_sentiment)


def cmd_sentiment(args) -> int:
    from analytics.export import to_parquet, to_safe_csv
    from analytics.reviews.sentiment import output_frame, score_dataset_reviews

    out = Path(args.out) if args.out else None
    if out is not None:
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise UserError(f"--out must end in .csv or .parquet, got {out.name!r}")
        if not out.parent.exists():
            raise UserError(f"folder does not exist: {out.parent}")
        if out.is_dir():
            raise UserError(f"{out} is a folder, not a file name")
    wh = open_warehouse(args)
    wh.require_dataset(args.dataset)
    from analytics.reviews.segments import ensure_ready_made_segments

    run = score_dataset_reviews(wh, args.dataset, random_state=args.seed)
    ensure_ready_made_segments(wh, args.dataset)
    if out is not None:
        rows = output_frame(run.reviews)
        if out.suffix.lower() == ".csv":
            to_safe_csv(rows, out, bom=args.bom)
        else:
            to_parquet(rows, out, metadata={"dataset": args.dataset, "sentiment": run.info})
    if args.json:
        print(json.dumps({**run.info, "out": str(out) if out else None}, indent=2, default=str))
    else:
        print(run.message)
        if out is not None:
            print(f"wrote {len(run.reviews):,} reviews to {out}")
    return 0
