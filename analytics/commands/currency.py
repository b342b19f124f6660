"""``valuescope currency``: show, set or forget the currency a dataset's money is shown in.

    valuescope currency --dataset NAME            # the currency and where it comes from (set or guessed)
    valuescope currency --dataset NAME --set GBP  # an ISO 4217 code
    valuescope currency --dataset NAME --unset    # back to the guess
"""
from __future__ import annotations

from analytics.cli import add_db_argument, open_warehouse


def register(sub) -> None:
    p = sub.add_parser("currency", help="show or set the currency of a dataset's money (ISO 4217 code)")
    add_db_argument(p)
    p.add_argument("--dataset", required=True, metavar="NAME")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--set", dest="code", default=None, metavar="CODE", help="a code such as EUR, USD or GBP")
    what.add_argument("--unset", action="store_true", help="forget the choice (back to the guess from the data)")
    p.set_defaults(func=cmd_currency)


def cmd_currency(args) -> int:
    from analytics import currency

    wh = open_warehouse(args)
    wh.require_dataset(args.dataset)
    if args.code is not None:
        currency.set_dataset_currency(wh, args.dataset, args.code)
    elif args.unset:
        currency.set_dataset_currency(wh, args.dataset, None)
    info = currency.dataset_currency(wh, args.dataset)
    print(f"{args.dataset}: {currency.label(info.code) if info.code else 'no currency'} ({info.reason})")
    return 0
