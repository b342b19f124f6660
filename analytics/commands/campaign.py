"""``valuescope campaign``: build, list, export, read out and delete campaigns, headless.

    valuescope campaign create --dataset D --as-of DAY --name N [--segment S ...] [--rules JSON|@FILE]
        [--rank expected_clv|churn_value|score] [--score-column COL] [--max-contacts N]
        [--budget B] [--cost C] [--control 0.1] [--seed 42] [--recommend 10] [--recommend-category CAT]
        [--response-rate R] [--value-per-response V] [--description TEXT] [--out FILE.csv|.parquet] [--json]
    valuescope campaign list [--dataset D] [--json]
    valuescope campaign show ID [--json]
    valuescope campaign export ID --out FILE.csv|FILE.parquet [--bom] [--group treatment|control|all]
        [--headers tool|people] [--attributes country,attr_tier] [--email]
    valuescope campaign readout ID [--outcomes FILE] [--no-save] [--json]
    valuescope campaign delete ID

``ID`` is a campaign id or name. ``readout --outcomes FILE`` stores the outcomes with the
campaign (replacing earlier ones; ``--no-save`` to only print) and prints the uplift;
without ``--outcomes`` it reads out the stored outcomes. CSV exports are neutralized
against formula injection (``analytics.export``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analytics.cli import UserError, add_db_argument, json_option, open_warehouse


def _ranking_words(ranking, column) -> str:
    """What a list is ranked by, in a sentence ("ranked by ..."): the page's option labels read as
    a choice ("A score I pick"), not as a description."""
    from analytics.campaigns import RANKINGS

    if ranking == "score" and column:
        return f"the customer-table column {column!r}"
    return RANKINGS.get(ranking, ranking)


def register(sub) -> None:
    from analytics.campaigns import RANKINGS

    p = sub.add_parser("campaign", help="campaign targeting with a control group, exports and uplift read-outs",
                       description="Build a ranked, capped campaign list with a seeded control group, export it, "
                                   "and read out the uplift from an outcomes file.")
    csub = p.add_subparsers(dest="campaign_command", metavar="SUBCOMMAND")
    csub.required = True

    q = csub.add_parser("create", help="select, rank and cap the targets, hold out a control group, save")
    add_db_argument(q)
    q.add_argument("--dataset", required=True, metavar="NAME")
    q.add_argument("--as-of", required=True, metavar="DAY", help="as-of day (YYYY-MM-DD)")
    q.add_argument("--name", required=True, help="campaign name (unique)")
    q.add_argument("--segment", action="append", default=[], metavar="NAME",
                   help="saved segment to target (repeat for several; OR-combined; default: every customer)")
    q.add_argument("--rules", default=None, metavar="JSON|@FILE", help="extra rules definition, ANDed")
    q.add_argument("--rank", default="expected_clv", choices=list(RANKINGS), help="ranking (default expected_clv)")
    q.add_argument("--score-column", default=None, metavar="COL", help="numeric column for --rank score")
    q.add_argument("--max-contacts", type=int, default=None, metavar="N")
    q.add_argument("--budget", type=float, default=None, metavar="B")
    q.add_argument("--cost", type=float, default=1.0, metavar="C", help="cost per contact (default 1)")
    q.add_argument("--control", type=float, default=0.1, metavar="SHARE", help="control share (default 0.1)")
    q.add_argument("--seed", type=int, default=42)
    q.add_argument("--recommend", type=int, default=0, metavar="N", help="top-N recommended items per customer")
    q.add_argument("--recommend-category", default=None, metavar="CAT")
    q.add_argument("--response-rate", type=float, default=None, metavar="R",
                   help="expected incremental response rate (default: an earlier campaign's measured uplift, else an "
                        "assumed 2%%, never above the selection's purchase rate)")
    q.add_argument("--value-per-response", type=float, default=None, metavar="V",
                   help="expected revenue per response (default: derived from the data)")
    q.add_argument("--description", default="")
    q.add_argument("--out", default=None, metavar="FILE.csv|.parquet", help="also export the list")
    q.add_argument("--bom", action="store_true", help="CSV with a UTF-8 byte order mark (Excel)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_create)

    q = csub.add_parser("list", help="list saved campaigns")
    add_db_argument(q)
    q.add_argument("--dataset", default=None, metavar="NAME")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = csub.add_parser("show", help="a saved campaign's definition, counts and expected outcome")
    add_db_argument(q)
    q.add_argument("campaign", metavar="ID")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_show)

    q = csub.add_parser("export", help="export a saved campaign's exact list")
    add_db_argument(q)
    q.add_argument("campaign", metavar="ID")
    q.add_argument("--out", required=True, metavar="FILE.csv|.parquet")
    q.add_argument("--bom", action="store_true", help="CSV with a UTF-8 byte order mark (Excel)")
    q.add_argument("--group", choices=("treatment", "control", "all"), default=None,
                   help="a send-ready file of one group (treatment: the list to upload to an email or ads tool) "
                        "or of both; without it, the exact stored list for analysis")
    q.add_argument("--headers", choices=("tool", "people"), default="tool",
                   help="send-ready headers: tool-friendly (customer_id, email, expected_value...) or for people")
    q.add_argument("--attributes", default="", metavar="A,B",
                   help="customer attributes to pass through (country, attr_<column kept at load>)")
    q.add_argument("--email", action="store_true",
                   help="add the email column kept at load time (personal data: only where you may share it)")
    q.set_defaults(func=cmd_export)

    q = csub.add_parser("readout", help="uplift of treatment over control from an outcomes file")
    add_db_argument(q)
    q.add_argument("campaign", metavar="ID")
    q.add_argument("--outcomes", default=None, metavar="FILE",
                   help="CSV/Parquet with customer_id, converted, revenue (default: the stored outcomes)")
    q.add_argument("--no-save", action="store_true", help="do not store the outcomes with the campaign")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_readout)

    q = csub.add_parser("delete", help="delete a saved campaign, its list and outcomes")
    add_db_argument(q)
    q.add_argument("campaign", metavar="ID")
    q.set_defaults(func=cmd_delete)


def _rules(text: str | None):
    return None if text is None else json_option(text, "--rules")


def _check_out(out: str | None) -> Path | None:
    if out is None:
        return None
    p = Path(out)
    if p.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"--out must end in .csv or .parquet, got {p.name!r}")
    if not p.parent.exists():
        raise UserError(f"the folder {p.parent} does not exist")
    return p


def export_table(targets):
    """The exported columns, in order: id, group, rank, segment, scores, recommendations."""
    cols = ["customer_id", "group", "rank", "segment", "rfm_segment", "expected_clv", "churn_risk", "churn_value",
            "p_alive", "rank_score", "recommended_items"]
    return targets[[c for c in cols if c in targets.columns]]


def _write(targets, out: Path, bom: bool, meta: dict) -> None:
    from analytics.export import to_parquet, to_safe_csv

    table = export_table(targets)
    if out.suffix.lower() == ".parquet":
        to_parquet(table, out, metadata=meta)
    else:
        to_safe_csv(table, out, bom=bom)


def _fmt(x, pct=False, money=False) -> str:
    if x is None:
        return "n/a"
    if pct:
        return f"{x:.2%}"
    if money:
        return f"{x:,.2f}"
    return f"{x:,.4g}"


def cmd_create(args) -> int:
    from analytics import campaigns as c
    from analytics.explorer import build_frame

    out = _check_out(args.out)
    spec = c.CampaignSpec(
        name=args.name, dataset=args.dataset, as_of=args.as_of, segments=list(args.segment),
        extra_rules=_rules(args.rules), ranking=args.rank, score_column=args.score_column,
        max_contacts=args.max_contacts, budget=args.budget, cost_per_contact=args.cost,
        response_rate=args.response_rate, value_per_response=args.value_per_response,
        control_share=args.control, seed=args.seed, recommendations=args.recommend,
        recommendation_category=args.recommend_category, description=args.description,
    ).validated()
    wh = open_warehouse(args)
    wh.require_dataset(spec.dataset)
    if spec.name in set(c.list_campaigns(wh)["name"]):
        raise UserError(f"a campaign named {spec.name!r} already exists; choose another name")
    spec, rec_note = c.recommendations_possible(wh, spec)
    frame = build_frame(wh, spec.dataset, spec.as_of)
    frame = c.value_columns(wh, frame)
    targets = c.select_targets(wh, frame, spec)
    defaults = c.response_defaults(frame.loc[targets["customer_id"]], spec, wh=wh)
    d_rate, d_value = defaults["response_rate"], defaults["value_per_response"]
    rate = spec.response_rate if spec.response_rate is not None else d_rate
    value = spec.value_per_response if spec.value_per_response is not None else d_value
    expected = c.expected_outcome(targets, rate, value, spec.cost_per_contact)
    curve = c.return_curve(targets, rate, value, spec.cost_per_contact)
    summary = {"expected": expected, "break_even": None if expected["roi_withheld"] else curve.attrs["break_even"],
               "zero_return_n": curve.attrs["zero_return_n"],
               "default_response_rate": d_rate, "default_value_per_response": d_value,
               "default_source": defaults["source"]}
    cid = c.save_campaign(wh, spec, targets, summary=summary)
    if out is not None:
        _write(targets, out, args.bom, {"campaign_id": cid, "name": spec.name, "dataset": spec.dataset,
                                        "as_of": spec.as_of})
    a = targets.attrs
    if args.json:
        print(json.dumps({"id": cid, "eligible": a["eligible"], "cap": a["cap"], "cap_reason": a["cap_reason"],
                          "n_treatment": a["n_treatment"], "n_control": a["n_control"],
                          "value_source": a["value_source"], "score_source": a.get("score_source"),
                          "score_warning": a.get("score_warning"), "recommendations_note": rec_note,
                          **summary}, indent=2, default=str))
        return 0
    print(f"campaign {cid} {spec.name!r} saved: {a['eligible']:,} eligible customers, "
          f"{a['n_treatment']:,} to contact (limited by {a['cap_reason']}), {a['n_control']:,} held out "
          f"as control ({spec.control_share:.0%}, seed {spec.seed}, stratified by segment)")
    print(f"ranked by {_ranking_words(spec.ranking, spec.score_column)}; values from {a['value_source']}")
    if a.get("score_warning"):
        print(f"warning: {a['score_warning']}")
    if rec_note:
        print(f"note: {rec_note}")
    print(f"assumed response rate {rate:.2%}" + (" (default)" if spec.response_rate is None else "")
          + f", value per response {value:,.2f}" + (" (from the data)" if spec.value_per_response is None else ""))
    if spec.response_rate is None or spec.value_per_response is None:
        print(f"  defaults: {defaults['source']}")
    roi = expected["roi"]
    if expected["roi_withheld"]:
        print(f"expected: cost {expected['cost']:,.2f}; revenue, return and ROI not shown: the list is not "
              "ranked (see the warning above); pick a ranking that differs between customers")
    else:
        print(f"expected: {expected['expected_responses']:,.1f} responses, revenue "
              f"{expected['expected_revenue']:,.2f}, cost {expected['cost']:,.2f}, incremental return "
              f"{expected['incremental_return']:,.2f}, ROI {'n/a' if roi is None else f'{roi:.1%}'}")
        be = curve.attrs["break_even"]
        print("break-even: " + (f"the {be:,}th contact is the last whose expected return covers its cost"
                                if be is not None else "no contact is expected to cover its cost"))
    if out is not None:
        print(f"wrote {len(targets):,} rows to {out}")
    return 0


def cmd_list(args) -> int:
    from analytics.campaigns import list_campaigns

    df = list_campaigns(open_warehouse(args), args.dataset)
    if args.json:
        print(df.to_json(orient="records", date_format="iso", indent=2))
        return 0
    if df.empty:
        print("no campaigns yet")
        return 0
    print(f"{'id':>4}  {'created':19}  {'dataset':12} {'as of':10} {'treat':>7} {'ctrl':>6} {'outcomes':8}  name")
    for r in df.itertuples():
        print(f"{r.id:>4}  {str(r.created_at)[:19]:19}  {str(r.dataset)[:12]:12} {r.as_of:10} "
              f"{r.n_treatment:>7,} {r.n_control:>6,} {'yes' if r.has_outcomes else 'no':8}  {r.name}")
    return 0


def cmd_show(args) -> int:
    from analytics import campaigns as c

    camp = c.get_campaign(open_warehouse(args), args.campaign)
    if args.json:
        print(json.dumps(camp, indent=2, default=str))
        return 0
    spec = camp["spec"]
    print(f"campaign {camp['id']} {camp['name']!r} on {camp['dataset']} as of {camp['as_of']}, "
          f"created {str(camp['created_at'])[:19]} UTC")
    if camp["description"]:
        print(f"  description: {camp['description']}")
    print(f"  segments: {', '.join(spec.get('segments') or []) or 'every customer'}"
          + ("; extra rules: " + json.dumps(spec["extra_rules"]) if spec.get("extra_rules") else ""))
    print(f"  ranked by {_ranking_words(spec.get('ranking'), spec.get('score_column'))}"
          + f"; {camp['n_eligible']:,} eligible, {camp['n_treatment']:,} contacted, {camp['n_control']:,} control "
          f"({spec.get('control_share', 0):.0%}, seed {spec.get('seed')})")
    exp = (camp["summary"] or {}).get("expected")
    if (camp["summary"] or {}).get("score_warning"):
        print(f"  warning: {camp['summary']['score_warning']}")
    if exp and exp.get("roi_withheld"):
        print(f"  expected: cost {exp['cost']:,.2f}; revenue, return and ROI not shown (the list is not ranked)")
    elif exp:
        roi = exp.get("roi")
        print(f"  expected: revenue {exp['expected_revenue']:,.2f}, cost {exp['cost']:,.2f}, incremental return "
              f"{exp['incremental_return']:,.2f}, ROI {'n/a' if roi is None else f'{roi:.1%}'}")
    print(f"  outcomes: {camp['n_outcomes']:,} rows" + (f", uploaded {str(camp['outcomes_uploaded_at'])[:19]}"
                                                       if camp["outcomes_uploaded_at"] is not None else ""))
    return 0


def cmd_export(args) -> int:
    from analytics import campaigns as c

    out = _check_out(args.out)
    wh = open_warehouse(args)
    camp = c.get_campaign(wh, args.campaign)
    targets = c.campaign_targets(wh, camp["id"])
    meta = {"campaign_id": camp["id"], "name": camp["name"], "dataset": camp["dataset"], "as_of": camp["as_of"]}
    if args.group is None:
        _write(targets, out, args.bom, meta)
        print(f"wrote {len(targets):,} rows of campaign {camp['id']} to {out}")
        return 0
    from analytics.campaigns.export import send_list
    from analytics.currency import dataset_currency
    from analytics.export import to_parquet, to_safe_csv

    attrs = [a.strip() for a in args.attributes.split(",") if a.strip()]
    # the command line has no sign-in: whoever runs it can read the warehouse file, personal data included
    table = send_list(wh, targets, group=None if args.group == "all" else args.group,
                      currency=dataset_currency(wh, camp["dataset"]).code, attributes=attrs,
                      include_email=args.email, may_see_personal_data=True, headers=args.headers)
    if out.suffix.lower() == ".parquet":
        to_parquet(table, out, metadata={**meta, "group": args.group})
    else:
        to_safe_csv(table, out, bom=args.bom)
    if table.attrs.get("email_note"):
        print(table.attrs["email_note"], file=sys.stderr)
    print(f"wrote {len(table):,} {args.group} rows of campaign {camp['id']} to {out}")
    return 0


def _print_row(label: str, r: dict) -> None:
    lo, hi = r["ci95"]
    rlo, rhi = r["ci95_revenue"]
    print(f"{label}: treatment {r['n_treatment']:,} (conversion {_fmt(r['conversion_t'], pct=True)}, "
          f"revenue/customer {_fmt(r['revenue_per_customer_t'], money=True)}), control {r['n_control']:,} "
          f"(conversion {_fmt(r['conversion_c'], pct=True)}, revenue/customer "
          f"{_fmt(r['revenue_per_customer_c'], money=True)})")
    print(f"  conversion uplift {_fmt(r['uplift_conversion'], pct=True)} "
          f"[95% CI {_fmt(lo, pct=True)} .. {_fmt(hi, pct=True)}], p = {_fmt(r['p_value'])}"
          + (f" ({r['p_value_method']})" if r.get("p_value_method") else ""))
    print(f"  revenue/customer uplift {_fmt(r['uplift_revenue'], money=True)} "
          f"[95% CI {_fmt(rlo, money=True)} .. {_fmt(rhi, money=True)}], p = {_fmt(r['p_value_revenue'])}")
    if r.get("warning"):
        print(f"  warning: {r['warning']}")


def cmd_readout(args) -> int:
    from analytics import campaigns as c

    wh = open_warehouse(args)
    camp = c.get_campaign(wh, args.campaign)
    if args.outcomes:
        path = Path(args.outcomes)
        if not path.exists():
            raise UserError(f"no such file: {path}")
        outcomes = c.read_outcomes(path)
        if args.no_save:
            result = c.readout(c.campaign_targets(wh, camp["id"]), outcomes)
        else:
            result = c.save_outcomes(wh, camp["id"], outcomes)
    else:
        result = c.campaign_readout(wh, camp["id"])
        if result is None:
            raise UserError(f"campaign {camp['id']} has no outcomes yet: pass --outcomes FILE")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"campaign {camp['id']} {camp['name']!r}: {result['n_outcomes']:,} outcome rows, "
          f"{result['n_matched']:,} matched, {result['n_missing']:,} campaign customers without an outcome "
          "(counted as not converted, revenue 0)")
    if result["unknown_count"]:
        shown = ", ".join(result["unknown_ids"][:10])
        print(f"{result['unknown_count']:,} outcome ids are not in the campaign (not used): {shown}"
              + (" ..." if result["unknown_count"] > 10 else ""))
    if not result["revenue_given"]:
        print("the outcomes file has no revenue column: revenue figures are 0")
    _print_row("overall", result["overall"])
    for r in (result["per_segment"] if len(result["per_segment"]) > 1 else []):
        _print_row(f"segment {r['segment']!r}", r)
    return 0


def cmd_delete(args) -> int:
    from analytics import campaigns as c

    wh = open_warehouse(args)
    camp = c.get_campaign(wh, args.campaign)
    c.delete_campaign(wh, camp["id"])
    print(f"deleted campaign {camp['id']} {camp['name']!r}")
    return 0
