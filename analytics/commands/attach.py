"""``valuescope attach-summary``: a customer summary computed on Spark as a dataset the app opens.

    valuescope score --engine spark --events 'PATH/*.parquet' --as-of DAY --out scores.csv --summary-out DIR
    valuescope attach-summary DIR --dataset NAME [--as-of DAY] [--db PATH]
"""
from __future__ import annotations

from analytics.cli import add_db_argument, open_warehouse


def register(sub) -> None:
    p = sub.add_parser("attach-summary",
                       help="attach a customer summary computed on Spark (--summary-out) as a dataset without events")
    p.add_argument("path", metavar="DIR", help="the Parquet folder (or file / glob) that --summary-out wrote")
    p.add_argument("--dataset", required=True, metavar="NAME", help="dataset to create (or replace, if attached)")
    p.add_argument("--as-of", default=None, metavar="DATE", help="check that the summary is as of this day")
    add_db_argument(p)
    p.set_defaults(func=cmd_attach)


def cmd_attach(args) -> int:
    from analytics.spark.attach import attach_summary

    info = attach_summary(open_warehouse(args), args.path, args.dataset, as_of=args.as_of)
    print(f"attached {info['customers']:,} customers as dataset {args.dataset!r} (summary as of {info['as_of']}); "
          "scores, segments, campaigns and reports work at that day, pages that need raw events say so")
    return 0
