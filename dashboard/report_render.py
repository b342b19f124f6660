"""Draw a report snapshot (``analytics.reports``) with Streamlit elements.

Used by the Reports page (preview) and the read-only permalink view. Every piece of
user text goes through ``widgets.md_escape`` (Markdown/HTML specials escaped) or into
``st.text`` / ``st.dataframe`` cells, never into ``unsafe_allow_html``; chart labels
come escaped from ``analytics.reports.report_figures`` (Plotly shows the entities as
literal characters).
"""
from __future__ import annotations

import functools

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import formatting
from analytics.reports import render_html, report_figures
from analytics.reports.render import (categories_note, fmt_money, fmt_num, fmt_pct, fmt_unit, item_label,
                                      items_note, partial_months, readout_rows, report_currency, value_rows)
from dashboard.widgets import md_escape


#: the top lists' share columns, in full in their tooltips
SHARE_HELP = {"Share (segment)": st.column_config.TextColumn(help="Share of the segment's net revenue."),
              "Share (all)": st.column_config.TextColumn(help="Share of all customers' net revenue.")}
#: a backtest's figures as the Predict page titles them
METRIC_TITLES = {"rmse": "RMSE", "mae": "MAE", "normalized_gini": "Normalized Gini",
                 "top_decile_capture": "Top-decile capture", "total_ratio": "Predicted / actual",
                 "spearman": "Spearman", "roc_auc": "Churn ROC AUC", "pr_auc": "Churn PR AUC", "brier": "Churn Brier",
                 "total_predicted": "Total predicted", "total_actual": "Total actual", "fit_seconds": "Fit (s)",
                 "validation_gini": "Validation Gini"}


def _metric(key: str, value) -> str:
    """One backtest figure as text: money for the money figures, else three decimals."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if not isinstance(value, (int, float)):
        return str(value)
    if key in ("rmse", "mae", "total_predicted", "total_actual"):
        return fmt_money(value)
    if key == "fit_seconds":
        return f"{value:,.1f}"
    if key == "total_ratio":
        return f"{value:.2f} x"
    return f"{value:.3f}"


def html_file_name(snapshot: dict) -> str:
    """The report's download name, built from safe characters only."""
    base = "".join(ch if ch.isalnum() else "-" for ch in str(snapshot["subject"]["name"]).lower())
    base = "-".join(p for p in base.split("-") if p)[:60] or snapshot["kind"]
    return f"valuescope-report-{base}-{snapshot['as_of']}.html"


def html_bytes(snapshot: dict) -> bytes:
    """The self-contained HTML report file."""
    return render_html(snapshot).encode("utf-8")


def html_download(snapshot: dict):
    """A callable for ``st.download_button(data=...)`` that renders the HTML file when clicked.

    A download button given bytes stores them as a media file and the browser fetches that
    whole file (~5 MB: plotly.js is inline) as soon as the button is drawn, to check the link;
    leaving or rerunning the page while that fetch runs aborts it (a failed ``/media/...html``
    request in the browser). A callable is rendered only on a click and nothing is fetched before.
    """
    return functools.partial(html_bytes, snapshot)


def _chart(figs: dict, key: str) -> None:
    if key in figs:
        st.plotly_chart(go.Figure(figs[key]), width="stretch", theme=None, config={"displaylogo": False})


def show_report(snapshot: dict) -> None:
    """The whole report, read-only (money in the snapshot's currency)."""
    with report_currency(snapshot):
        _show_report(snapshot)


def _show_report(snapshot: dict) -> None:
    s = snapshot
    subj = s["subject"]
    kind = "Saved segment" if s["kind"] == "segment" else "Saved campaign"
    st.header(md_escape(s["title"]), anchor=False)
    st.caption(md_escape(f"{kind} · dataset {s['dataset']} · data as of {formatting.date(s['as_of'])} · "
                         f"report made {formatting.date_time(s['created_at'])} UTC · a snapshot: these numbers "
                         "do not change"))
    st.markdown("**Name:** " + md_escape(subj["name"]))
    if subj.get("description"):
        st.text(subj["description"])
    st.markdown("**Who is in it:** " + md_escape(subj["definition_text"]))
    if subj.get("ranking_warning"):
        st.warning("**Not ranked:** " + md_escape(subj["ranking_warning"]) + "; no expected return or ROI is "
                   "reported for this list.", icon="⚠️")

    seg = s["value"]["segment"]
    st.subheader("Size and value", anchor=False)
    cols = st.columns(5)
    cols[0].metric("Customers", fmt_num(s["size"]["customers"]),
                   help=f"{fmt_pct(s['size']['share'])} of {s['size']['all_customers']:,} customers")
    cols[1].metric("Share of customers", fmt_pct(s["size"]["share"]))
    cols[2].metric("Net revenue", fmt_money(seg["net_revenue"]))
    cols[3].metric("Share of net revenue", fmt_pct(seg["revenue_share"]))
    cols[4].metric("Avg CLV (formula)", fmt_money(seg["avg_clv"]))
    st.dataframe(pd.DataFrame(value_rows(s), columns=["Measure", "This segment", "All customers"]),
                 hide_index=True, width="stretch")

    figs = report_figures(s)
    st.subheader("Trend", anchor=False)
    _chart(figs, "trend")
    tr = s["trend"]
    if tr["months"]:
        partial = partial_months(tr)
        st.dataframe(pd.DataFrame({
            "Month": [pd.Timestamp(m + "-01").strftime("%b %Y") + (f" ({p})" if p else "")
                      for m, p in zip(tr["months"], partial)],
            "Active customers": [fmt_num(x) for x in tr["active_customers"]],
            "Buyers": [fmt_num(x) for x in tr["buyers"]],
            "Net revenue": [fmt_money(x) for x in tr["revenue"]],
            "All active customers": [fmt_num(x) for x in tr["all_active_customers"]],
            "All net revenue": [fmt_money(x) for x in tr["all_revenue"]]}),
            hide_index=True, width="stretch", height=220, key="report_trend_table")

    st.subheader("Profile against all customers", anchor=False)
    left, right = st.columns(2)
    with left:
        _chart(figs, "profile")
    with right:
        st.dataframe(pd.DataFrame([{"Feature": p["label"], "This segment": fmt_unit(p["segment"], p["unit"]),
                                    "All customers": fmt_unit(p["all"], p["unit"]),
                                    # a dash where all customers' mean is 0 (no index), as the HTML file writes it
                                    "Index (all = 100)": formatting.MISSING if p["ratio"] is None
                                    else f"{100 * p['ratio']:.0f}"}
                                   for p in s["profile"]]), hide_index=True, width="stretch")
    _chart(figs, "rfm_mix")

    c = s["concentration"]
    st.subheader("Value concentration", anchor=False)
    st.write(f"The top 10 % of the segment's customers hold {fmt_pct(c['top10_share'])} of its net revenue, "
             f"the top 20 % hold {fmt_pct(c['top20_share'])} (Gini {fmt_num(c['gini'])}).")
    _chart(figs, "lorenz")

    st.subheader("Top categories and items", anchor=False)
    left, right = st.columns(2)
    with left:
        _chart(figs, "top_categories")
        if s["top_categories"]:
            st.dataframe(pd.DataFrame([{
                "Category": r["category"], "Net revenue": fmt_money(r["revenue"]), "Buyers": fmt_num(r["buyers"]),
                "Share (segment)": fmt_pct(r["share"]), "Share (all)": fmt_pct(r["all_share"])}
                for r in s["top_categories"]]), hide_index=True, width="stretch", key="report_top_categories",
                column_config=SHARE_HELP)
        elif s["top_items"]:
            st.info(categories_note(s), icon="🏷️")
    with right:
        _chart(figs, "top_items")
        if s["top_items"]:
            note = items_note(s)
            if note:
                st.caption(md_escape(note))
            rows = [{"Item": item_label(r), "Code": r["item_id"], "Category": r.get("category") or "–",
                     "Net revenue": fmt_money(r["revenue"]), "Buyers": fmt_num(r["buyers"]),
                     "Share (segment)": fmt_pct(r["share"]), "Share (all)": fmt_pct(r["all_share"])}
                    for r in s["top_items"]]
            items = pd.DataFrame(rows)
            if note:  # codes only: the code is the item
                items = items.drop(columns=["Code"])
            st.dataframe(items, hide_index=True, width="stretch", key="report_top_items", column_config=SHARE_HELP)

    p = s.get("predictor")
    if p:
        st.subheader("Predictor", anchor=False)
        st.write(md_escape(
            f"Published predictions: model {p.get('title') or p['model']} of backtest run {p['run_id']}, scored as of "
            f"{formatting.date(p['as_of'])} "
            f"for the next {p['horizon_days']} days. Mean predicted value {fmt_money(p.get('segment_predicted_value'))}"
            f" in the segment vs {fmt_money(p.get('all_predicted_value'))} among all; mean churn probability "
            f"{fmt_pct(p.get('segment_churn_probability'))} vs {fmt_pct(p.get('all_churn_probability'))}."))
        if p["models"]:
            st.dataframe(pd.DataFrame([{"Model": (m.get("title") or m["model"]) + (" (published)" if m["published"] else ""),
                                        **{METRIC_TITLES.get(k, k): _metric(k, v) for k, v in m["metrics"].items()}}
                                       for m in p["models"]]), hide_index=True, width="stretch",
                         key="report_models_table")
    if s.get("campaigns"):
        st.subheader("Campaign results", anchor=False)
        for camp in s["campaigns"]:
            st.markdown("**" + md_escape(camp["name"]) + "**")
            pairs, per = readout_rows(camp["readout"])
            st.dataframe(pd.DataFrame(pairs, columns=["Measure", "Value"]), hide_index=True, width="stretch")
            if per:
                st.dataframe(pd.DataFrame(per), hide_index=True, width="stretch")
    for note in s.get("notes") or []:
        st.caption(md_escape(note))
