"""``python -m dashboard.serve run APP [flags]``: Streamlit's command line, minus its call to the internet.

Streamlit asks an outside service (checkip.amazonaws.com) for the machine's external IP
address when it starts on a wildcard address (``--server.address 0.0.0.0``) and when it
checks a browser origin it does not know. Valuescope never needs that address (it shows
the local and network URLs), and a start must not call out, so the lookup is replaced by
"unknown" before Streamlit runs. ``valuescope serve`` starts the app through this module.

Under ``valuescope serve`` the server process also opens the warehouse and starts its job
server (:mod:`analytics.jobserver`) before Streamlit serves anything, so a CLI command run
before anyone opened the app is handed to the app too, instead of taking the file itself and
leaving the first page with "warehouse unavailable".
"""
from __future__ import annotations

import os
import sys
import threading


def no_external_ip() -> None:
    """Make Streamlit's external-IP lookup answer "unknown" without any network request."""
    from streamlit import net_util

    net_util.get_external_ip = lambda: None


def own_warehouse() -> None:
    """Open the warehouse in this process and serve CLI commands for it (``valuescope serve``).
    A warehouse another process holds right now is left to the pages, which retry on each run."""
    from analytics import jobserver
    from analytics.warehouse import default_db_path, get_warehouse

    try:
        wh = get_warehouse(str(default_db_path().resolve()))
    except Exception as exc:  # locked, no key, a damaged file: the pages say so in words
        print(f"note: the warehouse is not open yet ({exc}); the app opens it on the first page", file=sys.stderr)
        return
    jobserver.start(wh)


#: what the pages' first runs import (scikit-learn and SciPy for the CLV models, Plotly for the
#: charts, PyArrow for prepared frames): seconds of imports a first visit after a start waited for
WARM_MODULES = ("plotly.graph_objects", "pyarrow.parquet", "sklearn.base", "scipy.stats", "scipy.special",
                "analytics.prepare", "analytics.scores", "analytics.clv", "analytics.valuation",
                "analytics.diagnostics", "analytics.explorer", "analytics.periods", "analytics.formatting")


def warm_imports(modules=WARM_MODULES) -> threading.Thread:
    """Import the pages' heavy modules in a background thread while Streamlit starts, so the first
    visit after a start does not wait for them (a module still loading when a page needs it is
    simply waited for, as it would have been). A module that fails to import is left to the page."""
    def run():
        import importlib

        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the page that needs it reports it in words
                pass

    t = threading.Thread(target=run, name="valuescope-warm-imports", daemon=True)
    t.start()
    return t


def main(argv: list[str] | None = None) -> int:
    no_external_ip()
    if os.environ.get("VALUESCOPE_SERVE") == "1":
        own_warehouse()
        warm_imports()
    from streamlit.web import cli

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
