"""The ``valuescope`` command line.

Each capability registers its subcommands from a module in ``analytics.commands``
(see ``COMMAND_MODULES``): a module has ``register(subparsers)`` and each
subcommand sets ``func(args) -> int``. Every subcommand takes ``--db PATH``.

Errors a user can cause are raised as ``UserError`` (or the library's own
user-facing error types listed in ``USER_ERRORS``) and printed as one line
on stderr with exit status 2; never a traceback.

While ``valuescope serve`` runs on the same warehouse, a command is handed to it
(``analytics.jobserver``): the app owns the file, the command runs there and its output
and exit status come back here. Otherwise the command opens the file itself; when another
process has it open, the command says so and waits (``--no-wait``: exit 2 instead).
A subcommand that never opens the warehouse sets ``local=True``; one that only reads it
sets ``readonly=True`` (it does not queue behind writes in the server).
"""
from __future__ import annotations

import argparse
import contextlib
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


@contextlib.contextmanager
def atomic_output(path):
    """Write a command's output file under a temporary name next to ``path`` and rename it into
    place only when complete: a command stopped mid-write (Ctrl-C, kill -9, a full disk) never
    leaves a cut-off file under the name asked for. Yields the temporary path to write to.
    What an earlier run killed mid-write (``kill -9``: nothing could clean up) left under a
    temporary name for the same file is removed first."""
    import os
    import re
    import secrets
    from pathlib import Path

    from analytics.warehouse import pid_alive

    target = Path(path)
    stale = re.compile(rf"^\.{re.escape(target.name)}\.partial-(\d+)-[0-9a-f]+$")
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            m = stale.match(entry.name)
            if m and not pid_alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    entry.unlink()
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def db_path(args: argparse.Namespace):
    """The warehouse file a subcommand's ``--db`` names (default: $VALUESCOPE_DB or data/valuescope.duckdb)."""
    from analytics.warehouse import default_db_path

    return getattr(args, "db", None) or default_db_path()


def open_warehouse(args: argparse.Namespace):
    """The warehouse a subcommand's ``--db`` names; when another process has the file open, say so
    on stderr and wait for it (unless ``--no-wait``)."""
    from analytics.warehouse import get_warehouse

    def tell(exc) -> None:
        print(f"valuescope {args.command}: {exc} Waiting for it to close the warehouse… (Ctrl-C to stop)",
              file=sys.stderr, flush=True)

    from analytics import access

    wh = get_warehouse(db_path(args), wait=not getattr(args, "no_wait", False), on_wait=tell)
    access.set_warehouse(wh)
    return wh


def add_db_argument(p: argparse.ArgumentParser) -> None:
    """Every subcommand's ``--db``: the DuckDB file (default: $VALUESCOPE_DB or data/valuescope.duckdb)."""
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="warehouse file (default: $VALUESCOPE_DB or ./data/valuescope.duckdb)",
    )
    p.add_argument("--no-wait", action="store_true",
                   help="exit (status 2) instead of waiting when another process has the warehouse open")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    # `serve` passes unknown options through to Streamlit.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra = extra
    return args


def _run(args: argparse.Namespace) -> int:
    import duckdb

    from analytics.warehouse import storage_error

    from analytics import access

    # the command line acts as a local admin (whoever holds the file and its key), recorded as cli:USER@HOST;
    # a command the app server runs for a client keeps the client's caller
    caller = access.current()
    if caller is None or caller.kind not in ("cli",):
        caller = access.cli_caller()
    try:
        with access.acting_as(caller), access.on_warehouse(None):  # the command's warehouse, for this command
            return int(args.func(args) or 0)
    except _user_error_types() as exc:
        print(f"valuescope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of the output stopped reading (`| head`): no error to report
        from analytics.jobserver import silence_stdout

        silence_stdout(sys.stdout)
        return 141  # as a command stopped by SIGPIPE
    except (duckdb.Error, OSError) as exc:  # a full disk, a damaged file...: what happened, no traceback
        print(f"valuescope {args.command}: error: {storage_error(exc, 'the command failed')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_args(argv: list[str], overrides: dict | None = None) -> int:
    """Run a command in this process (``overrides``: argument values the caller resolved, e.g. its
    paths made absolute); what the app server runs for a CLI client."""
    try:
        args = _parse(list(argv))
    except SystemExit as exc:  # argparse already printed why
        return int(exc.code or 0)
    for dest, value in (overrides or {}).items():
        if hasattr(args, dest):
            setattr(args, dest, value)
    return _run(args)


def _resolved_paths(args: argparse.Namespace) -> dict:
    """The path arguments of ``args`` made absolute against this process's working directory."""
    import os

    from analytics.jobserver import PATH_DESTS

    out = {}
    for dest, value in vars(args).items():
        if not isinstance(value, str) or not value:
            continue
        if dest in PATH_DESTS or dest == "db":
            out[dest] = os.path.abspath(os.path.expanduser(value))
        elif value.startswith("@") and len(value) > 1:  # a JSON option given as @FILE
            out[dest] = "@" + os.path.abspath(os.path.expanduser(value[1:]))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    if not getattr(args, "local", False):
        from analytics import jobserver

        info = jobserver.find_server(db_path(args))
        if info is not None:
            try:
                status = jobserver.submit(info, argv, _resolved_paths(args),
                                          readonly=bool(getattr(args, "readonly", False)))
            except KeyboardInterrupt:
                print(f"valuescope {args.command}: detached; the command keeps running in the app server "
                      "(check with `valuescope datasets`)", file=sys.stderr)
                return 130
            if status is not None:
                return status
    return _run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
