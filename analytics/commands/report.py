"""``valuescope report``: shareable segment / campaign reports.

    valuescope report --segment NAME --out FILE.html [--dataset D] [--as-of DAY] [--permalink]
    valuescope report --campaign ID_OR_NAME --out FILE.html [--dataset D] [--as-of DAY] [--permalink]
    valuescope report list [--dataset D] [--json]
    valuescope report revoke TOKEN

Without a subcommand, ``report`` builds a report: ``--dataset`` defaults to the only
dataset (or ``sample``), ``--as-of`` to that dataset's last event day (a campaign: its
own as-of day); both are said on stdout. ``--out`` writes the self-contained HTML file;
``--permalink`` also stores the report and prints its token and the link path
(``?report=TOKEN``), shown this once (only a hash of the token is stored).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from analytics.cli import UserError, add_db_argument, open_warehouse


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="write a segment or campaign report (HTML file and/or permalink); list / revoke reports",
        description="Build a report of a saved segment or campaign: a self-contained HTML file (--out)\n"
                    "and/or a permalink into the app (--permalink). Subcommands list and revoke stored reports.",
        epilog="examples:\n"
               "  valuescope report --segment \"Big spenders\" --out big.html\n"
               "  valuescope report --campaign 3 --out campaign.html --permalink\n"
               "  valuescope report list\n"
               "  valuescope report revoke TOKEN",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db_argument(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--segment", metavar="NAME", help="saved segment to report on")
    what.add_argument("--campaign", metavar="ID", help="saved campaign (id or name) to report on")
    p.add_argument("--out", metavar="FILE.html", help="write the self-contained HTML report here")
    p.add_argument("--dataset", help="dataset (default: the only one, or 'sample')")
    p.add_argument("--as-of", dest="as_of", metavar="DAY",
                   help="as-of day (default: the dataset's last event day; a campaign: its own as-of day)")
    p.add_argument("--permalink", action="store_true", help="also store the report and print its link token")
    p.set_defaults(func=cmd_report, report_command=None)
    rsub = p.add_subparsers(dest="report_command", metavar="{list,revoke}",
                            title="subcommands (optional; without one, a report is built)")
    rsub.required = False

    q = rsub.add_parser("list", help="list stored reports")
    add_db_argument(q)
    q.add_argument("--dataset", help="only reports of this dataset")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)

    q = rsub.add_parser("revoke", help="revoke a stored report's link")
    add_db_argument(q)
    q.add_argument("token", help="the report's token (as printed by --permalink); one that starts with '-' "
                                 "(made before tokens started with a letter or digit) goes after '--'")
    q.set_defaults(func=cmd_revoke)


def _default_dataset(wh, given: str | None) -> str:
    if given:
        wh.require_dataset(given)
        return given
    names = wh.datasets()
    if not names:
        raise UserError("the warehouse has no dataset yet: load one with `valuescope ingest FILE --dataset NAME`")
    if len(names) == 1:
        return names[0]
    if "sample" in names:
        return "sample"
    raise UserError(f"several datasets ({', '.join(names)}): pick one with --dataset")


def _last_day(wh, dataset: str) -> str:
    row = wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = ?", [dataset]).fetchone()
    if row[0] is None:
        raise UserError(f"dataset {dataset!r} has no events yet")
    return str(row[0].date())


def cmd_report(args) -> int:
    from analytics.reports import build_report, create_report, render_html

    if args.segment is None and args.campaign is None:
        raise UserError("say what to report on: --segment NAME or --campaign ID (or use `report list` / "
                        "`report revoke TOKEN`)")
    if not args.out and not args.permalink:
        raise UserError("say where the report goes: --out FILE.html and/or --permalink")
    wh = open_warehouse(args)
    campaign = None
    if args.campaign is not None:
        try:
            from analytics.campaigns import get_campaign
        except ImportError:
            raise UserError("campaign reports need the campaigns module, which is not installed") from None
        camp = get_campaign(wh, args.campaign)
        campaign = camp["id"]
        dataset = args.dataset or camp["dataset"]
        as_of = args.as_of or str(camp["as_of"])
    else:
        dataset = _default_dataset(wh, args.dataset)
        as_of = args.as_of or _last_day(wh, dataset)
    print(f"dataset: {dataset}" + ("" if args.dataset else " (default)"))
    print(f"as of: {as_of}" + ("" if args.as_of else " (default: " + (
        "the campaign's as-of day)" if campaign is not None else "the last event day)")))
    snapshot = build_report(wh, dataset, as_of, segment=args.segment, campaign_id=campaign)
    print(f"{snapshot['title']}: {snapshot['size']['customers']:,} of {snapshot['size']['all_customers']:,} "
          f"customers")
    if args.out:
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render_html(snapshot), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained: opens offline)")
    if args.permalink:
        token = create_report(wh, snapshot)
        print(f"token: {token}")
        print(f"link: ?report={token}  (append to the app's address, e.g. http://localhost:8501/?report={token})")
        print("the token is shown only now: the warehouse keeps only its hash")
    return 0


def cmd_list(args) -> int:
    from analytics.reports import list_reports

    df = list_reports(open_warehouse(args), dataset=args.dataset)
    if args.json:
        rows = [{k: (None if v is None or (isinstance(v, float) and v != v) else str(v)) for k, v in r.items()}
                for r in df.to_dict("records")]
        print(json.dumps(rows, indent=2))
        return 0
    if df.empty:
        print("no reports yet: make one with `valuescope report --segment NAME --permalink`")
        return 0
    print(f"{'id':>5}  {'status':8} {'token':9} {'created':19}  {'dataset':12} {'as of':10}  title")
    for r in df.itertuples(index=False):
        print(f"{r.id:>5}  {r.status:8} {r.token_hint + '…':9} {str(r.created_at)[:19]:19}  {str(r.dataset)[:12]:12} "
              f"{str(r.as_of)[:10]:10}  {r.title}")
    return 0


def cmd_revoke(args) -> int:
    from analytics.reports import revoke_report

    rid = revoke_report(open_warehouse(args), args.token)
    print(f"revoked report {rid}: its link now shows 'this report link was revoked'")
    return 0
