"""Valuescope's Streamlit UI: navigation, pages, widgets and caching only."""


def _navigation_only() -> None:
    """Keep Streamlit out of its legacy "pages/ folder" mode.

    Streamlit decides once per process, when the first browser session starts,
    whether the app is an old-style multipage app: it is when a folder named
    ``pages`` sits beside the main script, as ``dashboard/pages/`` does. The flag is
    only cleared when ``st.navigation`` runs. If the first request of a fresh server
    is a deep link (``/data``), Streamlit runs that page file on its own — no app.py,
    so no sidebar and the legacy page list — and the flag is never cleared.

    Every page imports this package, so the first run of a fresh server clears the
    flag here and reruns at once: the rerun goes through app.py and st.navigation,
    on the same page (page hashes are the file paths in both modes).
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    except Exception:  # another Streamlit layout: nothing to fix
        return
    if PagesManager.uses_pages_directory and get_script_run_ctx() is not None:
        PagesManager.uses_pages_directory = False
        import streamlit as st

        st.rerun()


_navigation_only()
