"""Valuescope entry point: builds the navigation and the shared sidebar, nothing else."""
from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the project root.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import duckdb  # noqa: E402
import streamlit as st  # noqa: E402

from analytics import access  # noqa: E402
from analytics.warehouse import WarehouseError  # noqa: E402
from dashboard import auth, cache, widgets  # noqa: E402

st.set_page_config(page_title="Valuescope", page_icon="📈", layout="wide")

PAGES = {
    "Data": [
        st.Page("views/overview.py", title="Overview", icon="🏠", default=True),
        st.Page("views/data.py", title="Data", icon="🗂️", url_path="data"),
    ],
    "Analyse": [
        st.Page("views/value.py", title="Value", icon="💎", url_path="value"),
        st.Page("views/predict.py", title="Predict", icon="🔮", url_path="predict"),
        st.Page("views/reviews.py", title="Reviews & new customers", icon="💬", url_path="reviews"),
    ],
    "Segment": [
        st.Page("views/segments.py", title="Segments", icon="🧩", url_path="segments"),
        st.Page("views/explorer.py", title="Explorer", icon="🔭", url_path="explorer"),
    ],
    "Act": [
        st.Page("views/campaigns.py", title="Campaigns", icon="🎯", url_path="campaigns"),
        st.Page("views/reports.py", title="Reports", icon="📤", url_path="reports"),
    ],
}

ADMIN_PAGE = st.Page("views/admin.py", title="Admin", icon="🛡️", url_path="admin")

try:
    wh = cache.warehouse()
except WarehouseError as exc:  # e.g. a CLI command holds the file: say so and look again shortly
    widgets.warehouse_unavailable(exc)
    st.stop()


def _app(wh) -> None:
    # who acts in this run: the local user without sign-in configured; else the signed-in person
    # (a request without sign-in sees the sign-in page and nothing else)
    caller = auth.gate(wh)

    if "report" in st.query_params:
        # a shared report link (?report=TOKEN): the read-only report and nothing else
        # (no other page, no sidebar, no dataset picker)
        nav = st.navigation([st.Page("views/report_view.py", title="Report", icon="📄", url_path="report",
                                     default=True)], position="hidden")
    else:
        pages = dict(PAGES)
        if not caller.trusted and access.may(wh, "manage_people"):  # shared deployments only
            pages["Manage"] = [ADMIN_PAGE]
        nav = st.navigation(pages)
        widgets.sidebar()
        auth.account_box(caller, wh)
    try:
        nav.run()
    except access.AccessDenied as exc:  # a control the page should have hidden: the refusal, not a read error
        why = str(exc)  # e.g. "not allowed to train or publish models: Vic is a viewer; ..."
        st.error(widgets.md_escape(why[:1].upper() + why[1:]), icon="🔒")


try:
    _app(wh)
except (WarehouseError, duckdb.Error) as exc:  # a warehouse problem while the sidebar or a page read (a file
    # cut short or damaged after it opened): a message, not a traceback
    widgets.show_error(widgets.warehouse_problem(exc), "The warehouse could not be read")
