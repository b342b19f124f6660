"""The ``valuescope`` command line.

Each capability registers its subcommands from a module in ``analytics.commands``
(see ``COMMAND_MODULES``): a module has ``register(subparsers)`` and each
subcommand sets ``func(args) -> int``. Every subcommand takes ``--db PATH``.

Errors a user can cause are raised as ``UserError`` (or the library's own
user-facing error types listed in ``USER_ERRORS``) and printed as one line
on stderr with exit status 2; never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "analytics.commands.core",
    "analytics.commands.data",
    "analytics.commands.sample",
    "analytics.commands.score",
    "analytics.commands.segments",
    "analytics.commands.predict",
    "analytics.commands.campaign",
    "analytics.commands.report",
    "analytics.commands.recommend",
    "analytics.commands.currency",
    "analytics.commands.attach",
    "analytics.commands.reviews",
    "analytics.commands.newcustomers",
]


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    from analytics.warehouse import WarehouseError

    types: list[type[BaseException]] = [UserError, WarehouseError, ValueError, FileNotFoundError]
    return tuple(types)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="valuescope",
        description="Valuescope: customer-value studio (RFM, CLV, segments, predictors, campaigns).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def json_option(text: str, option: str):
    """The JSON value of a command-line option, given inline or as ``@FILE``
    (UserError naming the option when the file is missing or the JSON is invalid)."""
    import json
    from pathlib import Path

    if text.startswith("@"):
        path = Path(text[1:])
        if not path.exists():
            raise UserError(f"no such file: {path}")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{option} is not valid JSON: {exc.msg}") from None


def open_warehouse(args: argparse.Namespace):
    """The warehouse a subcommand's ``--db`` names (default: $VALUESCOPE_DB or data/valuescope.duckdb)."""
    from analytics.warehouse import default_db_path, get_warehouse

    return get_warehouse(args.db or default_db_path())


def add_db_argument(p: argparse.ArgumentParser) -> None:
    """Every subcommand's ``--db``: the DuckDB file (default: $VALUESCOPE_DB or data/valuescope.duckdb)."""
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="warehouse file (default: $VALUESCOPE_DB or ./data/valuescope.duckdb)",
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # `serve` passes unknown options through to Streamlit.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra = extra
    try:
        return int(args.func(args) or 0)
    except _user_error_types() as exc:
        print(f"valuescope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
