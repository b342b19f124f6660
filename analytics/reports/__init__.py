"""Shareable segment and campaign reports.

``build_report`` makes a JSON-serializable snapshot of a saved segment or campaign;
``render_html`` turns it into one self-contained HTML file (plotly.js inline, no
network request, every piece of user text escaped); ``create_report`` stores it
behind a random permalink token, ``get_report`` reads it back, ``revoke_report``
revokes it, ``list_reports`` lists them.
"""
from analytics.reports.render import render_html, report_figures
from analytics.reports.snapshot import ReportError, ReportRevokedError, build_report, clean_json, expected_clv
from analytics.reports.store import create_report, get_report, list_reports, report_id, revoke_report

__all__ = ["ReportError", "ReportRevokedError", "build_report", "render_html", "report_figures",
           "create_report", "get_report", "report_id", "revoke_report", "list_reports", "clean_json", "expected_clv"]
