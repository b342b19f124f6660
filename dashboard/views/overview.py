"""Overview: headline KPIs and activity of the dataset picked in the sidebar.

All numbers are aggregated in DuckDB (analytics.overview) once per data version by the
preparation step (analytics.prepare) and read back here (dashboard.cache); the browser
receives only a few hundred points.
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from analytics.warehouse import WarehouseError
from dashboard import cache, widgets

GRAIN_LABEL = {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly", "year": "yearly"}
TYPE_COLORS = {
    "view": "#9db8e8", "search": "#7fb3a8", "cart": "#f2b35b",
    "purchase": "#2f6fdf", "return": "#d9534f", "review": "#8e6cc4",
}

# graph_objects directly: plotly.express costs far more per rerun for the same figure.
LAYOUT = dict(margin=dict(l=10, r=10, t=10, b=10), height=320, template="plotly_white")


def _no_data() -> None:
    st.info(
        "The warehouse has no data yet. Load a CSV of orders or behaviour events on the Data page "
        "to see your customers here.",
        icon="👋",
    )
    st.page_link("views/data.py", label="Go to the Data page", icon="🗂️")
    st.stop()


def _kpis(k: dict) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(
        "Customers", widgets.fmt_int(k["customers"]), border=True,
        help="Distinct customer ids with at least one event of any type.",
    )
    c2.metric(
        "Orders", widgets.fmt_int(k["orders"]), border=True,
        help="Distinct order ids among purchases (rows without an order id: one order per customer and timestamp). "
        f"{k['buyers']:,} customers bought at least once.",
    )
    c3.metric(
        "Revenue (net)", widgets.fmt_money(k["revenue"]), border=True,
        help=f"Purchases {k['gross_revenue']:,.2f} minus refunds {k['refunds']:,.2f}.",
    )
    c4.metric(
        f"Active, last {k['active_days']} days", widgets.fmt_int(k["active_customers"]), border=True,
        help=f"Customers with any event in the {k['active_days']} days up to the dataset's last event "
        f"({k['as_of']:%Y-%m-%d}), not up to today.",
    )
    c5.metric(
        "Repeat-purchase rate", widgets.fmt_pct(k["repeat_rate"]), border=True,
        help=f"Share of buying customers with two or more orders ({k['repeat_customers']:,} of {k['buyers']:,}).",
    )


def _timeline(ov: dict) -> None:
    timeline = ov["timeline"]
    grain = GRAIN_LABEL.get(ov["grain"], ov["grain"])
    left, right = st.columns(2)
    with left:
        st.subheader(f"Revenue, {grain}")
        fig = go.Figure(go.Bar(
            x=timeline["period"], y=timeline["revenue"], marker_color="#2f6fdf",
            hovertemplate="%{x|%Y-%m-%d}<br>net revenue %{y:,.2f}<extra></extra>",
        ))
        fig.update_layout(**LAYOUT, yaxis_title="net revenue")
        st.plotly_chart(fig, key="revenue_chart", config={"displaylogo": False})
    with right:
        st.subheader(f"Active customers, {grain}")
        fig = go.Figure(go.Scatter(
            x=timeline["period"], y=timeline["active_customers"],
            mode="lines+markers" if len(timeline) <= 60 else "lines", line_color="#2f6fdf",
            hovertemplate="%{x|%Y-%m-%d}<br>%{y:,} customers<extra></extra>",
        ))
        fig.update_layout(**LAYOUT, yaxis_title="customers with any event")
        st.plotly_chart(fig, key="active_chart", config={"displaylogo": False})


def _events_by_type(ov: dict) -> None:
    st.subheader("Events by type")
    by_type = ov["by_type"].iloc[::-1]  # first type on top
    fig = go.Figure(go.Bar(
        x=by_type["events"], y=by_type["event_type"], orientation="h",
        marker_color=[TYPE_COLORS.get(t, "#999999") for t in by_type["event_type"]],
        customdata=by_type["customers"],
        hovertemplate="%{y}: %{x:,} events by %{customdata:,} customers<extra></extra>",
    ))
    fig.update_layout(**{**LAYOUT, "height": 260}, xaxis_title="events")
    st.plotly_chart(fig, key="types_chart", config={"displaylogo": False})


def main() -> None:
    st.title("📈 Overview")
    dataset = widgets.current_dataset()
    if dataset is None:
        _no_data()
    widgets.stop_if_summary_only(dataset)
    try:
        ov = cache.overview(dataset)
    except (ValueError, WarehouseError) as exc:
        widgets.show_error(exc, "The overview could not be computed")
        st.stop()
    if ov is None:
        widgets.not_ready(dataset, "the overview")
    k = ov["kpis"]
    if k["events"] == 0:
        st.info(f"The dataset “{widgets.md_escape(dataset)}” has no events yet. Load a file into it on the Data page.",
                icon="📭")
        st.page_link("views/data.py", label="Go to the Data page", icon="🗂️")
        st.stop()
    st.caption(
        f"Dataset **{widgets.md_escape(dataset)}**: {k['events']:,} events from "
        f"{k['first_event']:%Y-%m-%d} to {k['last_event']:%Y-%m-%d}."
    )
    _kpis(k)
    _timeline(ov)
    _events_by_type(ov)


main()
