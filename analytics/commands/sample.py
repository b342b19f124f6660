"""``valuescope sample``: write generated behaviour events (and the planted truth) as CSV."""
from __future__ import annotations

import datetime as dt
import json
import sys

from analytics.cli import UserError, add_db_argument


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from None


def register(sub) -> None:
    from sample_data.generator import (
        DEFAULT_CUSTOMERS, DEFAULT_END, DEFAULT_FUTURE_DAYS, DEFAULT_SEED, DEFAULT_START,
    )

    p = sub.add_parser(
        "sample",
        help="write generated behaviour events with planted personas (CSV, .gz compresses)",
        description=(
            "Write realistic e-commerce behaviour events for N customers with planted personas "
            "(loyal high spenders, promising newcomers, at-risk former big spenders, bargain hunters, "
            "window shoppers, one-time buyers). The same seed gives byte-identical files. "
            "--truth writes each customer's persona and actual behaviour in the --future-days after --end."
        ),
    )
    add_db_argument(p)  # accepted for uniformity; the generator does not touch the warehouse
    p.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS, metavar="N",
                   help=f"number of customers (default {DEFAULT_CUSTOMERS})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S", help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--out", required=True, metavar="FILE", help="events CSV to write (.csv or .csv.gz)")
    p.add_argument("--truth", default=None, metavar="FILE", help="truth CSV to write (.csv or .csv.gz)")
    p.add_argument("--start", type=_date, default=DEFAULT_START, metavar="DATE",
                   help=f"first day of the history (default {DEFAULT_START})")
    p.add_argument("--end", type=_date, default=DEFAULT_END, metavar="DATE",
                   help=f"last day of the history (default {DEFAULT_END})")
    p.add_argument("--future-days", type=int, default=DEFAULT_FUTURE_DAYS, metavar="DAYS",
                   help=f"length of the truth period after --end (default {DEFAULT_FUTURE_DAYS})")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_sample, local=True)  # writes files, never the warehouse


def cmd_sample(args) -> int:
    from sample_data.generator import SampleConfig, SampleError, generate

    # The CLI (not the library) compares with today's date: events after today would be
    # rejected by ingestion as future dates.
    if args.end >= dt.date.today():
        raise UserError(f"--end {args.end} is not in the past; ingestion rejects future dates")
    if args.truth and str(args.truth) == str(args.out):
        raise UserError("--truth must be a different file from --out")
    cfg = SampleConfig(customers=args.customers, seed=args.seed, start=args.start, end=args.end,
                       future_days=args.future_days)

    def progress(done: int, total: int) -> None:
        if not args.quiet and total > cfg.batch_size:
            print(f"\r{done:,} / {total:,} customers", end="", file=sys.stderr, flush=True)

    try:
        summary = generate(args.out, args.truth, cfg, progress=progress)
    except SampleError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename or args.out}: {exc.strerror or exc}") from None
    if not args.quiet and cfg.customers > cfg.batch_size:
        print(file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0
