"""``valuescope segments``: clustering with k guidance, saved segments, headless.

    valuescope segments guide-k --dataset NAME --as-of DATE [--features a,b,...]
        [--scaling log1p_standard|standard|robust] [--algorithm kmeans|minibatch_kmeans|gmm]
        [--k-min 2] [--k-max 12] [--seed 0] [--json]
    valuescope segments cluster --dataset NAME --as-of DATE [--k 6] [--features ...]
        [--scaling ...] [--algorithm ...] [--seed 0] [--save] [--label TEXT] [--out FILE.csv] [--json]
    valuescope segments runs [--dataset NAME]
    valuescope segments list [--dataset NAME]
    valuescope segments save NAME --definition JSON|@FILE (--dataset NAME | --all-datasets) [--description TEXT]
    valuescope segments delete NAME [--dataset NAME]
    valuescope segments select --dataset NAME --as-of DATE (--segment NAME | --definition JSON|@FILE)
        [--run ID] [--out FILE.csv]

Features come from the per-customer summary (``analytics.summary``) plus the
derived clustering features; ``select`` also sees the cluster assignment of a
saved run (``cluster``, ``cluster_name``; the newest run of the dataset and
as-of date unless ``--run``), and answers conditions on what customers did
(bought a product or category, event counts in the last N days) and on their
attributes from the events. A saved segment belongs to one dataset unless saved
with ``--all-datasets`` (``--dataset`` may be left out when the warehouse has one
dataset). CSV output is neutralized against formula injection (``analytics.export``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analytics.cli import UserError, add_db_argument, json_option, open_warehouse

_ALGOS = ("kmeans", "minibatch_kmeans", "gmm")
_SCALINGS = ("log1p_standard", "standard", "robust")


def register(sub) -> None:
    p = sub.add_parser("segments", help="cluster customers, get help choosing k, manage saved segments",
                       description="Clustering with k guidance and rule-based saved segments.")
    ssub = p.add_subparsers(dest="segments_command", metavar="SUBCOMMAND")
    ssub.required = True

    def common(q, features=True):
        add_db_argument(q)
        q.add_argument("--dataset", required=True, metavar="NAME")
        q.add_argument("--as-of", required=True, metavar="DATE", help="as-of date (YYYY-MM-DD)")
        if features:
            q.add_argument("--features", default=None, metavar="A,B,...",
                           help="features to cluster on (default: the standard set)")
            q.add_argument("--scaling", default="log1p_standard", choices=_SCALINGS)
            q.add_argument("--algorithm", default="kmeans", choices=_ALGOS)
            q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    q = ssub.add_parser("guide-k", help="inertia, silhouette (and BIC) for a range of k, with a suggestion")
    common(q)
    q.add_argument("--k-min", type=int, default=2)
    q.add_argument("--k-max", type=int, default=12)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_guide_k)

    q = ssub.add_parser("cluster", help="cluster the customers; print profiles; optionally save the run")
    common(q)
    q.add_argument("--k", type=int, default=6, help="number of clusters (default 6)")
    q.add_argument("--save", action="store_true", help="store the run and every assignment in the warehouse")
    q.add_argument("--label", default=None, help="a label for the saved run")
    q.add_argument("--out", default=None, metavar="FILE.csv", help="write customer_id, cluster, cluster_name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_cluster)

    q = ssub.add_parser("runs", help="list saved clustering runs")
    add_db_argument(q)
    q.add_argument("--dataset", default=None, metavar="NAME")
    q.set_defaults(func=cmd_runs)

    q = ssub.add_parser("list", help="list saved segments")
    add_db_argument(q)
    q.add_argument("--dataset", default=None, metavar="NAME", help="only the segments this dataset sees")
    q.set_defaults(func=cmd_list)

    q = ssub.add_parser("save", help="save a rule-based segment")
    add_db_argument(q)
    q.add_argument("name")
    q.add_argument("--definition", required=True, metavar="JSON|@FILE")
    q.add_argument("--description", default="")
    scope = q.add_mutually_exclusive_group()
    scope.add_argument("--dataset", default=None, metavar="NAME", help="the dataset the segment belongs to")
    scope.add_argument("--all-datasets", action="store_true", help="share the segment with every dataset")
    q.set_defaults(func=cmd_save)

    q = ssub.add_parser("delete", help="delete a saved segment")
    add_db_argument(q)
    q.add_argument("name")
    q.add_argument("--dataset", default=None, metavar="NAME", help="the dataset whose segment of that name to delete")
    q.set_defaults(func=cmd_delete)

    q = ssub.add_parser("select", help="evaluate a saved segment or a definition on a dataset")
    common(q, features=False)
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--segment", metavar="NAME")
    g.add_argument("--definition", metavar="JSON|@FILE")
    q.add_argument("--run", type=int, default=None, help="clustering run whose assignment to use")
    q.add_argument("--out", default=None, metavar="FILE.csv", help="write the selected customers")
    q.set_defaults(func=cmd_select)


def _summary(wh, args):
    from analytics.summary import customer_summary

    return customer_summary(wh, args.dataset, args.as_of)


def _features(args, summary):
    """The --features list, or the standard set without the features that no customer has (an order
    log has no ratings), as the Segments page does; a note names what was left out."""
    if args.features is None:
        from analytics.segments.clustering import DEFAULT_FEATURES

        missing = [f for f in DEFAULT_FEATURES if f in summary.columns and not summary[f].notna().any()]
        if missing:
            print(f"note: left out of the default features (missing for every customer): {', '.join(missing)}",
                  file=sys.stderr)
        return [f for f in DEFAULT_FEATURES if f not in missing]
    feats = [f.strip() for f in args.features.split(",") if f.strip()]
    if not feats:
        raise UserError("--features needs at least one feature name")
    return feats


def _definition(text: str):
    return json_option(text, "--definition")


def _check_out(out: str | None) -> Path | None:
    if out is None:
        return None
    p = Path(out)
    if p.suffix.lower() != ".csv":
        raise UserError(f"--out must end in .csv, got {p.name!r}")
    if not p.parent.exists():
        raise UserError(f"the folder {p.parent} does not exist")
    return p


def cmd_guide_k(args) -> int:
    from analytics.segments.clustering import k_guidance

    if not 2 <= args.k_min < args.k_max:
        raise UserError("need 2 <= --k-min < --k-max")
    wh = open_warehouse(args)
    summary = _summary(wh, args)
    g = k_guidance(summary, features=_features(args, summary), scaling=args.scaling, algorithm=args.algorithm,
                   k_values=range(args.k_min, args.k_max + 1), random_state=args.seed)
    if args.json:
        print(json.dumps({"suggested_k": g.suggested_k, "reason": g.reason, "features": g.features,
                          "table": json.loads(g.table.reset_index().to_json(orient="records"))}, indent=2))
        return 0
    print(f"{g.n_customers:,} customers, features: {', '.join(g.features)}")
    print(f"{'k':>3} {'inertia':>14} {'silhouette':>11} {'BIC':>14}")
    for k, row in g.table.iterrows():
        bic = "" if row["bic"] != row["bic"] else f"{row['bic']:14,.0f}"
        print(f"{k:>3} {row['inertia']:14,.1f} {row['silhouette']:11.3f} {bic:>14}")
    print(f"suggested k = {g.suggested_k}: {g.reason}")
    return 0


def cmd_cluster(args) -> int:
    from analytics.export import to_safe_csv
    from analytics.segments import store
    from analytics.segments.clustering import CustomerClustering

    out = _check_out(args.out)
    wh = open_warehouse(args)
    summary = _summary(wh, args)
    model = CustomerClustering(features=_features(args, summary), scaling=args.scaling, algorithm=args.algorithm,
                               n_clusters=args.k, random_state=args.seed).fit(summary)
    run_id = store.save_clustering_run(wh, model, args.dataset, args.as_of, label=args.label) if args.save else None
    if out is not None:
        to_safe_csv(model.assignments().reset_index(), out)
    prof = model.cluster_profiles_
    if args.json:
        print(json.dumps({"run_id": run_id, **model.summary()}, indent=2, default=str))
        return 0
    print(f"{len(summary):,} customers in {model.n_clusters_} clusters "
          f"({args.algorithm}, {args.scaling}; features: {', '.join(model.features_)})")
    if model.dropped_features_:
        print(f"note: dropped features with no variance: {', '.join(model.dropped_features_)}", file=sys.stderr)
    print(f"{'#':>2} {'name':44} {'customers':>10} {'share':>7} {'revenue share':>14}")
    for c, row in prof.iterrows():
        print(f"{c:>2} {row['name'][:44]:44} {int(row['size']):>10,} {row['size_share']:>7.1%} "
              f"{row['revenue_share']:>14.1%}")
    if run_id is not None:
        print(f"saved as clustering run {run_id}")
    if out is not None:
        print(f"assignments -> {out}")
    return 0


def cmd_runs(args) -> int:
    from analytics.segments import store

    runs = store.list_clustering_runs(open_warehouse(args), args.dataset)
    if runs.empty:
        print("no clustering runs yet: `valuescope segments cluster ... --save`")
        return 0
    for _, r in runs.iterrows():
        print(f"run {r['id']}: {r['dataset']} as of {r['as_of']}, {r['n_customers']:,} customers, "
              f"k={len(r['names'])}, {r['parameters'].get('algorithm')}, created {r['created_at']:%Y-%m-%d %H:%M}"
              + (f" ({r['label']})" if r["label"] else ""))
    return 0


def cmd_list(args) -> int:
    from analytics.segments import rules, store

    segs = store.list_segments(open_warehouse(args), args.dataset)
    if segs.empty:
        print("no saved segments yet: `valuescope segments save NAME --definition JSON --dataset NAME`")
        return 0
    known = {**rules.KNOWN_FIELDS}
    for _, s in segs.iterrows():
        scope = store.ALL_DATASETS.lower() if s["dataset"] is None else f"dataset {s['dataset']}"
        try:
            words = rules.describe(s["definition"], known)
        except rules.RuleError:
            words = "(a definition on fields this version does not know)"
        print(f"{s['name']} [{scope}]: {words}" + (f" — {s['description']}" if s["description"] else ""))
    return 0


def cmd_save(args) -> int:
    from analytics.segments import rules, store

    wh = open_warehouse(args)
    dataset = None
    if not args.all_datasets:
        dataset = args.dataset
        if dataset is None:
            names = wh.datasets()
            if len(names) != 1:
                raise UserError("say which dataset the segment belongs to (--dataset NAME), or share it with "
                                "--all-datasets")
            dataset = names[0]
    fields = dict(rules.KNOWN_FIELDS)
    if dataset is not None and wh.has_dataset(dataset):
        from analytics.segments.activity import EventSource

        fields.update(EventSource(wh, dataset, None).fields())  # the dataset's attributes (attr_...)
    seg_id = store.save_segment(wh, args.name, _definition(args.definition), args.description,
                                fields=fields, dataset=dataset)
    where = "all datasets" if dataset is None else f"dataset {dataset!r}"
    print(f"saved segment {args.name.strip()!r} (id {seg_id}, {where})")
    return 0


def cmd_delete(args) -> int:
    from analytics.segments import store

    store.delete_segment(open_warehouse(args), args.name, args.dataset)
    print(f"deleted segment {args.name.strip()!r}")
    return 0


def cmd_select(args) -> int:
    from analytics.export import to_safe_csv
    from analytics.segments import rules, store

    out = _check_out(args.out)
    wh = open_warehouse(args)
    from analytics.segments.activity import EventSource

    definition = (store.get_segment(wh, args.segment, args.dataset)["definition"] if args.segment
                  else _definition(args.definition))
    rules.validate(definition, rules.KNOWN_FIELDS)
    summary = _summary(wh, args)
    run = args.run if args.run is not None else store.latest_clustering_run(wh, args.dataset, args.as_of)
    assignments = store.load_assignments(wh, run) if run is not None else None
    from analytics.predict.registry import prediction_columns, published_predictions

    # a published model's predicted_value / churn_probability, so segments can filter on them
    predictions = published_predictions(wh, args.dataset)
    frame = rules.customer_frame(summary, assignments,
                                 prediction_columns(predictions) if not predictions.empty else None)
    frame.attrs.update(dataset=args.dataset)
    source = EventSource(wh, args.dataset, args.as_of)
    mask = rules.evaluate(definition, frame, rules.fields_for(frame, source, definition=definition), source=source)
    st = rules.selection_stats(frame, mask)
    share = f"{st['value_share']:.1%}" if st["value_share"] is not None else "n/a"
    print(f"{st['customers']:,} of {len(frame):,} customers ({st['share']:.1%}), "
          f"net revenue {st['value']:,.2f} ({share} of all)")
    if out is not None:
        to_safe_csv(frame[mask.to_numpy()].reset_index(), out)
        print(f"selected customers -> {out}")
    return 0
