"""Data subcommands: ingest, prepare, export, delete-dataset."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from analytics.cli import UserError, add_db_argument, atomic_output, open_warehouse


def register(sub) -> None:
    p = sub.add_parser("ingest", help="load a CSV file into a dataset; prints a JSON summary")
    p.add_argument("file", metavar="FILE", help=".csv, .tsv, .txt or .csv.gz")
    p.add_argument("--dataset", required=True, metavar="NAME", help="dataset to create or append to")
    p.add_argument("--mapping", metavar="JSON_FILE", help="column mapping (as shown by the Data page or `--show`)")
    p.add_argument("--date-format", metavar="FMT",
                   help="strptime format of the dates, e.g. %%d/%%m/%%Y (or 'unix', 'unix_ms', "
                   "'excel' for Excel serial day numbers such as 35431)")
    p.add_argument("--keep-pii", nargs="+", default=[], metavar="COL", help="keep these personal-data columns")
    p.add_argument("--pseudonymize", action="store_true", help="replace customer ids with a keyed hash")
    p.add_argument("--max-decompressed-gb", type=_positive_gb, default=20.0, metavar="GB",
                   help="stop when a .gz file inflates past this size (default 20)")
    p.add_argument("--show", action="store_true", help="only print the detected dialect, layout and mapping")
    p.add_argument("--no-prepare", action="store_true",
                   help="skip the preparation step after the load (the app, or `valuescope prepare`, runs it later)")
    add_db_argument(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("prepare", help="compute and store what the pages read (summaries, scores, model fits, "
                                       "customer table, overview, recommender); prints a JSON summary")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--force", action="store_true", help="recompute results already stored for the current data")
    add_db_argument(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("export", help="write a dataset's events to CSV or Parquet")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--out", required=True, metavar="FILE", help="*.csv or *.parquet")
    p.add_argument("--format", choices=["csv", "parquet"], help="default: from the file extension")
    add_db_argument(p)
    p.set_defaults(func=cmd_export, readonly=True)

    p = sub.add_parser("delete-dataset", help="delete a dataset and everything derived from it")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    add_db_argument(p)
    p.set_defaults(func=cmd_delete)


def _positive_gb(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of gigabytes: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of gigabytes, got {text}")
    return value


def _prepare(wh, dataset: str, *, force: bool = False) -> dict:
    """Run the preparation step with progress lines on stderr; its JSON summary."""
    from analytics import prepare

    def progress(i, n, label, frac):
        if label != "done":
            print(f"preparing {i}/{n}: {label}…", file=sys.stderr, flush=True)

    job = prepare.Job(wh.path, dataset, prepare.data_version(wh, dataset))
    prepare.record(wh, job)  # an app serving this warehouse shows the progress too
    try:
        prepare.run(wh, dataset, progress=progress, job=job, force=force)
    except Exception as exc:  # the summary says where it failed; the data are unchanged
        print(f"valuescope: preparation failed at {job.stage}/{job.n_stages} ({job.label}): {job.error or exc}",
              file=sys.stderr)
    return job.summary()


def cmd_prepare(args) -> int:
    wh = open_warehouse(args)
    wh.require_dataset(args.dataset)
    summary = _prepare(wh, args.dataset, force=args.force)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if summary["state"] in ("done", "superseded") else 1


def cmd_ingest(args) -> int:
    from analytics.ingest import Mapping, ingest, inspect_source

    mapping = None
    if args.mapping:
        try:
            mapping = Mapping.from_dict(json.loads(Path(args.mapping).read_text(encoding="utf-8")))
        except OSError as exc:
            raise UserError(f"cannot read the mapping file: {exc.strerror}: {args.mapping}") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"the mapping file is not valid JSON: {exc}") from None
    if args.show:
        pv = inspect_source(args.file)
        print(json.dumps({
            "file_name": pv.file_name, "dialect": pv.dialect.describe(), "layout": pv.layout,
            "source_columns": pv.source_columns, "mapping": pv.mapping.to_dict(), "date_formats": pv.date_formats,
            "pii_columns": pv.pii_columns, "warnings": pv.warnings,
        }, indent=2, ensure_ascii=False))
        return 0
    if args.date_format:
        if mapping is None:
            mapping = inspect_source(args.file).mapping
        mapping.date_format = args.date_format
    wh = open_warehouse(args)
    last = [-1.0]

    def progress(frac, msg):
        if sys.stderr.isatty() and frac - last[0] >= 0.05:
            last[0] = frac
            print(f"\r{frac:5.0%} {msg:30}", end="", file=sys.stderr, flush=True)

    def waiting(what: str) -> None:
        print(f"valuescope ingest: waiting for {what} to finish…", file=sys.stderr, flush=True)

    result = ingest(wh, args.file, args.dataset, mapping=mapping, keep_pii=args.keep_pii,
                    pseudonymize=args.pseudonymize, progress=progress,
                    max_decompressed_bytes=int(args.max_decompressed_gb * 1024**3), on_wait=waiting)
    if sys.stderr.isatty():
        print("", file=sys.stderr)
    out = result.to_dict()
    if not args.no_prepare:
        out["prepare"] = _prepare(wh, result.dataset)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def cmd_export(args) -> int:
    from analytics.ingest import export_dataset

    fmt = args.format or ("parquet" if args.out.lower().endswith(".parquet") else "csv")
    wh = open_warehouse(args)
    with atomic_output(args.out) as tmp:  # a stopped export leaves no cut-off file
        export_dataset(wh, args.dataset, tmp, fmt=fmt)
    print(f"wrote {args.out}")
    return 0


def cmd_delete(args) -> int:
    from analytics.ingest import delete_dataset

    if not args.yes:
        raise UserError(f"this deletes dataset {args.name!r} and everything derived from it; add --yes to confirm")
    wh = open_warehouse(args)
    delete_dataset(wh, args.name)
    print(f"deleted dataset {args.name}")
    return 0
