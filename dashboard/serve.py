"""``python -m dashboard.serve run APP [flags]``: Streamlit's command line, minus its call to the internet.

Streamlit asks an outside service (checkip.amazonaws.com) for the machine's external IP
address when it starts on a wildcard address (``--server.address 0.0.0.0``) and when it
checks a browser origin it does not know. Valuescope never needs that address (it shows
the local and network URLs), and a start must not call out, so the lookup is replaced by
"unknown" before Streamlit runs. ``valuescope serve`` starts the app through this module.
"""
from __future__ import annotations

import sys


def no_external_ip() -> None:
    """Make Streamlit's external-IP lookup answer "unknown" without any network request."""
    from streamlit import net_util

    net_util.get_external_ip = lambda: None


def main(argv: list[str] | None = None) -> int:
    no_external_ip()
    from streamlit.web import cli

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
