"""Core subcommands: serve, datasets (ingest and sample are added by their modules)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from analytics.cli import add_db_argument, open_warehouse
from analytics.warehouse import ENV_DB, default_db_path

#: set by ``valuescope serve`` for the app process: serve CLI commands for its warehouse
ENV_SERVE = "VALUESCOPE_SERVE"


def register(sub) -> None:
    p = sub.add_parser("serve", help="start the web app on this machine (127.0.0.1 unless --server.address says "
                                     "otherwise); extra options pass through to streamlit run")
    add_db_argument(p)
    p.add_argument("--allow-anonymous", action="store_true",
                   help="serve on a non-local address without sign-in (everyone who reaches it is an admin)")
    p.set_defaults(func=cmd_serve, passthrough=True, local=True)

    p = sub.add_parser("encrypt", help="write an encrypted copy of a warehouse (key from VALUESCOPE_KEY, "
                                       "VALUESCOPE_KEY_FILE or the secrets file); the original is left as it is")
    add_db_argument(p)
    p.add_argument("--out", required=True, metavar="PATH", help="the new, encrypted warehouse file (must not exist)")
    p.set_defaults(func=cmd_encrypt, local=True)

    p = sub.add_parser("datasets", help="list the datasets in the warehouse")
    add_db_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_datasets, readonly=True)


# Used when the project's .streamlit/config.toml is not beside the package
# (a non-editable install): the choices that must hold wherever the app runs.
_FALLBACK_STREAMLIT_CONFIG = {
    "browser": {"gatherUsageStats": False},
    "server": {"maxUploadSize": 200, "headless": True},
    "client": {"toolbarMode": "minimal"},
    "runner": {"postScriptGC": False},
}


def streamlit_flags(config_file: Path) -> list[str]:
    """``--section.key value`` flags for every setting in the project's config.toml.

    Streamlit reads .streamlit/config.toml only from the working directory, so the
    project's settings (usage statistics off, upload limit, theme) are passed as
    flags and hold wherever ``valuescope serve`` is started. Usage statistics are
    always off (they call out to the internet).
    """
    import tomllib

    config = _FALLBACK_STREAMLIT_CONFIG
    if config_file.is_file():
        with open(config_file, "rb") as fh:
            config = tomllib.load(fh)
    flags: list[str] = []
    for section, values in config.items():
        for key, value in values.items():
            if isinstance(value, bool):
                value = str(value).lower()
            flags += [f"--{section}.{key}", str(value)]
    return flags + ["--browser.gatherUsageStats", "false"]


#: where the app listens unless ``--server.address`` says otherwise: this machine only
LOCAL_ADDRESS = "127.0.0.1"


def _has_option(extra: list[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in extra)


def serve_command(extra: list[str], package_dir: Path) -> list[str]:
    """The Streamlit command line of ``valuescope serve``: the project's settings as flags, the
    local address unless ``extra`` names one, then ``extra`` (given last, so it wins). It runs
    through ``dashboard.serve``, which keeps Streamlit from asking the internet for the external IP."""
    flags = streamlit_flags(package_dir.parent / ".streamlit" / "config.toml")
    if not _has_option(extra, "--server.address"):
        flags += ["--server.address", LOCAL_ADDRESS]
    return [sys.executable, "-m", "dashboard.serve", "run", str(package_dir / "app.py"), *flags, *extra]


def load_sample_before_serving(db: Path) -> None:
    """Load the bundled sample into an empty warehouse before the server starts, so the first page
    is served from data (``VALUESCOPE_SKIP_SAMPLE=1`` starts empty). A failure is printed, not fatal:
    the app starts anyway and the sidebar says why the sample is missing."""
    from analytics.bootstrap import SAMPLE_FILE, ensure_default_dataset, sample_skipped

    if sample_skipped():
        return
    from analytics.warehouse import Warehouse, WarehouseError

    try:
        wh = Warehouse(db)
    except WarehouseError as exc:
        print(f"valuescope: {exc}", file=sys.stderr)
        return
    try:
        if not wh.datasets() and SAMPLE_FILE.is_file():
            print("valuescope: empty warehouse, loading the sample data set (first start)...", file=sys.stderr,
                  flush=True)
            ensure_default_dataset(wh)
    except Exception as exc:  # the app must still start
        print(f"valuescope: the sample data set could not be loaded: {exc}", file=sys.stderr)
    finally:
        wh.close()  # the server opens the file next: release it


#: addresses that only this machine reaches
LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1", "[::1]")


def _option_value(extra: list[str], name: str) -> str | None:
    for i, a in enumerate(extra):
        if a == name and i + 1 < len(extra):
            return extra[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def anonymous_refusal(extra: list[str], allow_anonymous: bool, secrets_path: Path | None = None) -> str | None:
    """Why ``valuescope serve`` must not start (None: it may): a non-local address without sign-in
    configured (an ``[auth]`` table in the secrets file) and without ``--allow-anonymous``."""
    from analytics.warehouse import read_secrets

    address = _option_value(extra, "--server.address") or LOCAL_ADDRESS
    if address.strip().lower() in LOCAL_ADDRESSES or allow_anonymous:
        return None
    # where Streamlit looks for secrets: the working directory's .streamlit/, then the home folder's
    paths = [secrets_path] if secrets_path is not None else [Path(".streamlit") / "secrets.toml",
                                                             Path.home() / ".streamlit" / "secrets.toml"]
    for path in paths:
        try:
            secrets = read_secrets(path)
        except Exception as exc:  # a broken secrets file: say so rather than serve without sign-in
            return f"valuescope serve: {exc}"
        if isinstance(secrets.get("auth"), dict) and secrets["auth"]:
            return None
    where = secrets_path or Path(".streamlit") / "secrets.toml"
    return (f"valuescope serve: refusing to serve on {address} without sign-in: anyone who reaches that address "
            "would see every dataset as an admin. Configure sign-in with your identity provider in an [auth] "
            f"section of {where} (redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url; see "
            "the README, 'Sign-in, roles and encryption'), serve on 127.0.0.1, or pass --allow-anonymous to do "
            "it deliberately.")


def _auth_sections(extra: list[str], secrets_path: Path | None = None) -> list[tuple[Path, dict]]:
    """The ``[auth]`` tables Streamlit will read: the files of ``--secrets.files`` when given, else
    the working directory's ``.streamlit/secrets.toml``, then the home folder's."""
    from analytics.warehouse import read_secrets

    given = _option_value(extra, "--secrets.files")
    if secrets_path is not None:
        paths = [Path(secrets_path)]
    elif given:
        paths = [Path(p.strip().strip("'\"")) for p in given.strip("[]").split(",") if p.strip().strip("'\"")]
    else:
        paths = [Path(".streamlit") / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"]
    out = []
    for path in paths:
        try:
            secrets = read_secrets(path)
        except Exception:  # a broken file: anonymous_refusal and Streamlit name it
            continue
        if isinstance(secrets.get("auth"), dict) and secrets["auth"]:
            out.append((path, dict(secrets["auth"])))
    return out


def sign_in_refusal(extra: list[str], secrets_path: Path | None = None, warn=None) -> str | None:
    """Why ``valuescope serve`` must not start with the sign-in configured (None: it may): the
    identity provider refuses Valuescope's client id or secret (asked at its token endpoint, see
    ``analytics.oidc``), so nobody could sign in. A provider that cannot be reached now is only
    reported (``warn``), since it may answer later."""
    from analytics import oidc

    warn = warn or (lambda text: print(text, file=sys.stderr))
    for path, section in _auth_sections(extra, secrets_path):
        for problem, certain in oidc.provider_problems(section):
            if certain:
                return (f"valuescope serve: sign-in cannot work: {problem}. Nobody could sign in: set the "
                        f"client_id and client_secret registered at the identity provider in {path}, then start "
                        "again.")
            warn(f"valuescope serve: warning: {problem} (sign-in will fail until it does)")
    return None


def cmd_serve(args) -> int:
    import dashboard

    refusal = anonymous_refusal(list(args.extra), bool(getattr(args, "allow_anonymous", False)))
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    refusal = sign_in_refusal(list(args.extra))
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    package_dir = Path(dashboard.__file__).resolve().parent
    env = dict(os.environ)
    db = Path(args.db).resolve() if args.db else default_db_path().resolve()
    env[ENV_DB] = str(db)
    load_sample_before_serving(db)
    env[ENV_SERVE] = "1"  # the app owns the warehouse and runs CLI commands for it (analytics.jobserver)
    # Options given after `serve` come last, so they win over the project's config.
    cmd = serve_command(list(args.extra), package_dir)
    # Replace this process with Streamlit (no wrapper left behind): stopping
    # `valuescope serve` (Ctrl-C, SIGTERM from a supervisor or a test) stops the server.
    os.execve(sys.executable, cmd, env)
    return 0  # pragma: no cover - execve does not return


def cmd_datasets(args) -> int:
    import pandas as pd

    from analytics.overview import datasets_table

    table = datasets_table(open_warehouse(args))
    out = [
        {
            "name": r.dataset, "created_at": str(r.created_at), "updated_at": str(r.updated_at),
            "pseudonymized": bool(r.pseudonymized), "events": int(r.events), "customers": int(r.customers),
            "first_event": None if r.first_event is None or pd.isna(r.first_event) else str(r.first_event),
            "last_event": None if r.last_event is None or pd.isna(r.last_event) else str(r.last_event),
        }
        for r in table.itertuples()
    ]
    if args.json:
        print(json.dumps(out, indent=2))
    elif not out:
        print("no datasets yet: load one with `valuescope ingest FILE --dataset NAME`")
    else:
        print(f"{'name':24} {'customers':>10} {'events':>12}  first event          last event")
        for d in out:
            print(f"{d['name']:24} {d['customers']:>10} {d['events']:>12}  {d['first_event'] or '-':20} {d['last_event'] or '-'}")
    return 0


def cmd_encrypt(args) -> int:
    """Copy a plain warehouse into a new encrypted one (``COPY FROM DATABASE``), then check it opens."""
    import duckdb

    from analytics.cli import UserError, db_path
    from analytics.warehouse import Warehouse, _crypto, encryption_key, open_error

    src = Path(db_path(args)).resolve()
    out = Path(args.out).resolve()
    if not src.is_file():
        raise UserError(f"no warehouse file {src}")
    if out.exists():
        raise UserError(f"{out} exists: give a new file name (the copy never overwrites)")
    key = encryption_key(out)
    if not key:
        raise UserError("no encryption key: set VALUESCOPE_KEY (or VALUESCOPE_KEY_FILE, or encryption_key in the "
                        "[valuescope] section of .streamlit/secrets.toml)")
    con = duckdb.connect(":memory:")
    try:
        _crypto(con, str(out))
        con.execute("ATTACH ? AS src (READ_ONLY)", [str(src)])
        con.execute("ATTACH ? AS dst (ENCRYPTION_KEY ?)", [str(out), key])
        con.execute("COPY FROM DATABASE src TO dst")
    except duckdb.Error as exc:
        con.close()
        out.unlink(missing_ok=True)
        raise open_error(str(src), exc) from None
    con.close()
    Warehouse(out, key=key).close()  # opens with the key, schema current
    print(f"encrypted copy written: {out} (keep the key away from it; open it with the same key set)")
    return 0
