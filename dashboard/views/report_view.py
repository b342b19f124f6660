"""The read-only report a permalink opens (``?report=TOKEN``).

``dashboard/app.py`` builds the navigation with only this page when the address
carries ``report``, so a shared link shows the report and nothing else (no sidebar,
no dataset picker). The stored snapshot is shown as it was made; a revoked link or a
token that was never issued gets a clear message, never a traceback.
"""
from __future__ import annotations

import streamlit as st

from analytics.reports import ReportError, ReportRevokedError, get_report
from analytics.warehouse import WarehouseError
from dashboard import cache, report_render, widgets

token = st.query_params.get("report", "")
try:
    snapshot = get_report(cache.warehouse(), token)
except ReportRevokedError as exc:
    what = "expired" if "expired" in str(exc) else "was revoked"
    st.error(f"This report link {what}. Ask whoever shared it for a new one.", icon="🚫")
    st.stop()
except WarehouseError as exc:  # refused (e.g. a signed-in person without a role)
    st.error(widgets.md_escape(exc), icon="🚫")
    st.stop()
except ReportError as exc:
    msg = str(exc)
    st.error(widgets.md_escape(msg[:1].upper() + msg[1:]) + ". Check that the whole link was copied.", icon="🔍")
    st.stop()
except Exception:  # a broken warehouse file or the like: a message, not a traceback
    st.error("This report cannot be shown right now.", icon="⚠️")
    st.stop()

st.caption("📄 Valuescope · shared report (read-only)")
report_render.show_report(snapshot)
st.download_button("Download as an HTML file", data=report_render.html_download(snapshot),
                   file_name=report_render.html_file_name(snapshot), mime="text/html", icon="⬇️",
                   on_click="ignore", key="report_view_download")
