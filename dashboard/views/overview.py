"""Overview: headline KPIs and activity of the dataset picked in the sidebar.

All-time numbers and the time series are aggregated in DuckDB (analytics.overview) once per
data version by the preparation step (analytics.prepare) and read back here (dashboard.cache);
the browser receives only a few hundred points. A date range compares its KPIs with the same
number of days just before it (analytics.periods.compare_ranges). Money is shown in the
dataset's currency (analytics.currency); a partial first or last period of a time chart is
drawn hatched (bars) or dashed (lines) with its day count.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import formatting as fmt
from analytics import periods
from analytics.glossary import term
from analytics.warehouse import WarehouseError
from dashboard import cache, widgets

GRAIN_LABEL = {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly", "year": "yearly"}
TYPE_COLORS = {
    "view": "#9db8e8", "search": "#7fb3a8", "cart": "#f2b35b",
    "purchase": "#2f6fdf", "return": "#d9534f", "review": "#8e6cc4",
}
TYPE_LABELS = {"view": "Views", "search": "Searches", "cart": "Cart adds", "purchase": "Purchases",
               "return": "Returns", "review": "Reviews", "other": "Other"}
RANGE_KEY = "ov_range"
RANGE_DATASET_KEY = "ov_range_dataset"  # the dataset whose days the held range are

# graph_objects directly: plotly.express costs far more per rerun for the same figure.
LAYOUT = dict(margin=dict(l=10, r=10, t=30, b=10), height=320, template="plotly_white")


def _no_data() -> None:
    st.info(
        "The warehouse has no data yet. Load a CSV of orders or behaviour events on the Data page "
        "to see your customers here.",
        icon="👋",
    )
    st.page_link("views/data.py", label="Go to the Data page", icon="🗂️")
    st.stop()


def _kpis(k: dict, cur) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(
        "Customers", fmt.integer(k["customers"]), border=True,
        help="Distinct customer ids with at least one event of any type.",
    )
    c2.metric(
        "Orders", fmt.integer(k["orders"]), border=True,
        help="Distinct order ids among purchases (rows without an order id: one order per customer and timestamp). "
        f"{fmt.integer(k['buyers'])} customers bought at least once.",
    )
    c3.metric(
        "Revenue (net)", widgets.card_money(k["revenue"], cur), border=True,
        help=f"{fmt.money(k['revenue'], cur)}: purchases {fmt.money(k['gross_revenue'], cur)} minus refunds "
        f"{fmt.money(k['refunds'], cur)}.",
    )
    c4.metric(
        f"Active, {k['active_days']} days", fmt.integer(k["active_customers"]), border=True,
        help=f"Customers with any event in the last {k['active_days']} days up to the dataset's last event "
        f"({fmt.date(k['as_of'])}), not up to today.",
    )
    c5.metric(
        "Repeat buyers", fmt.percent(k["repeat_rate"]), border=True,
        help=f"Repeat-purchase rate: the share of buying customers with two or more orders "
        f"({fmt.integer(k['repeat_customers'])} of "
        f"{fmt.integer(k['buyers'])}).",
    )


def _default_range(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The data's last days (the range whose comparison the preparation step holds ready)."""
    from analytics.prepare import default_range

    return default_range(first, last)


def _pick_range(dataset: str, first: dt.date, last: dt.date) -> tuple[dt.date, dt.date] | None:
    """The date range of the comparison (None while only its start is picked)."""
    held = st.session_state.get(RANGE_KEY)
    # a range picked on another dataset goes back to this one's default, even where it lies inside
    # this dataset's days; set through the session state, so that the browser shows it too
    if (held is None or st.session_state.get(RANGE_DATASET_KEY) != dataset
            or not all(first <= d <= last for d in held)):
        st.session_state[RANGE_KEY] = _default_range(first, last)
    st.session_state[RANGE_DATASET_KEY] = dataset
    value = st.date_input(
        "Date range", min_value=first, max_value=last, key=RANGE_KEY,
        format="YYYY-MM-DD",
        help="The KPIs below count the events of these days (both included) and compare them with the same "
        "number of days just before.")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        st.info("Pick the last day of the range too.", icon="📅")
        return None
    return value[0], value[1]


def _delta(cur, prev, kind: str) -> str | None:
    """``+12.3 %`` (relative change) or ``+2.1 pp`` for a share; None when there is nothing to compare."""
    if kind == "share":
        if cur is None or prev is None:
            return None
        pp = 100.0 * (float(cur) - float(prev))
        text = f"{pp:+,.1f} pp"
        return text if float(text.split()[0].replace(",", "")) != 0 else "0.0 pp"
    change = periods.relative_change(cur, prev)
    if change is None:
        return None
    text = f"{100 * change:+,.1f} %"
    return text if float(text.split()[0].replace(",", "")) != 0 else "0.0 %"


#: the comparison's KPIs: key, label, kind (count, money, share) and help
RANGE_KPIS = (
    ("active_customers", "Active customers", "count", "Customers with any event in the range."),
    ("buyers", "Buyers", "count", "Customers with at least one order in the range."),
    ("orders", "Orders", "count", "Orders placed in the range."),
    ("revenue", "Net revenue", "money", "Purchases minus refunds in the range."),
    ("aov", "Average order value", "money", "Net revenue per order in the range."),
    ("new_customers", "New customers", "count", "Customers whose first purchase ever falls in the range."),
    ("repeat_share", "Repeat buyers", "share", "Share of the range's buyers with two or more orders in it; the "
     "change is in percentage points (pp)."),
)


def _range_kpis(dataset: str, start: dt.date, end: dt.date, cur) -> None:
    try:
        comp = cache.range_comparison(dataset, str(start), str(end))
    except (ValueError, WarehouseError) as exc:
        widgets.show_error(exc, "The date range could not be compared")
        return
    days = fmt.days(comp.days)
    prev_words = f"the {days} before ({fmt.date_range(comp.previous_start, comp.previous_end)})"
    st.markdown(f"**{fmt.date_range(comp.start, comp.end)}** ({days}) vs {prev_words}")
    cols = st.columns(4) + st.columns(4)  # two rows: seven figures fit without being cut
    comparable = comp.previous_covered_days > 0
    for col, (key, label, kind, help_text) in zip(cols, RANGE_KPIS):
        v, pv = comp.current.get(key), comp.previous.get(key)
        if kind == "money":
            shown, prev_shown = widgets.card_money(v, cur), fmt.money(pv, cur)
            help_text = f"{help_text} This period: {fmt.money(v, cur)}."
        elif kind == "share":
            shown, prev_shown = fmt.percent(v), fmt.percent(pv)
        else:
            shown, prev_shown = fmt.integer(v), fmt.integer(pv)
        delta = _delta(v, pv, kind) if comparable else None
        flat = delta is not None and float(delta.split()[0].replace(",", "")) == 0
        col.metric(label, shown, delta=delta, border=True, delta_color="off" if flat else "normal",
                   help=f"{help_text} Previous period: {prev_shown}.")
    if not comparable:
        st.caption(f"The data start on {fmt.date(comp.data_first_day)}: there is no earlier period to compare with.")
    elif not comp.like_for_like:
        st.warning(f"Only {fmt.days(comp.previous_covered_days)} of the previous {days} hold data (the data start "
                   f"on {fmt.date(comp.data_first_day)}): its changes are not like for like.", icon="⚠️")


def _coverage(ov: dict) -> pd.DataFrame:
    k = ov["kpis"]
    return periods.period_coverage(ov["timeline"]["period"], ov["grain"], k["first_event"], k["last_event"])


def _shade(fig, rng) -> None:
    if rng is not None:
        fig.add_vrect(x0=pd.Timestamp(rng[0]), x1=pd.Timestamp(rng[1]) + pd.Timedelta(days=1),
                      fillcolor="#f2b35b", opacity=0.12, line_width=0, layer="below")


def _revenue_figure(ov: dict, cov: pd.DataFrame, cur, rng) -> go.Figure:
    timeline = ov["timeline"]
    fig = go.Figure(periods.partial_traces(
        timeline["period"], timeline["revenue"], cov["partial"], kind="bar", name="Net revenue",
        color="#2f6fdf", notes=cov["note"],
        hovertemplate="%{x|%d %b %Y}<br>net revenue " + fmt.money_hover(cur) + "<extra></extra>"))
    periods.annotate_partial(fig, cov)
    _shade(fig, rng)
    fig.update_layout(**LAYOUT, showlegend=False, yaxis_title=f"Net revenue ({cur.code})" if cur else "Net revenue",
                      yaxis=fmt.money_axis(cur))
    return fig


def _active_figure(ov: dict, cov: pd.DataFrame, rng) -> go.Figure:
    timeline = ov["timeline"]
    fig = go.Figure(periods.partial_traces(
        timeline["period"], timeline["active_customers"], cov["partial"], kind="line", name="Active customers",
        color="#2f6fdf", notes=cov["note"],
        hovertemplate="%{x|%d %b %Y}<br>%{y:,} customers<extra></extra>"))
    periods.annotate_partial(fig, cov)
    _shade(fig, rng)
    fig.update_layout(**LAYOUT, showlegend=False, yaxis_title="Customers with any event",
                      yaxis=dict(tickformat=",d"))
    return fig


def _timeline(dataset: str, ov: dict, cur, rng) -> None:
    grain = GRAIN_LABEL.get(ov["grain"], ov["grain"])
    cov = _coverage(ov)
    note = periods.partial_note(cov, ov["grain"])
    if note:
        st.caption("🟧 " + note + " The shaded band is the date range above."
                   if rng is not None else note, help=term("partial_period"))
    rng = None if rng is None else (rng[0], rng[1])
    left, right = st.columns(2)
    with left:
        st.subheader(f"Net revenue, {grain}")
        k = ov["kpis"]
        if not k["orders"] and not k["gross_revenue"] and not k["refunds"]:
            # a chart of zeros (views or carts only) would read as a broken chart: say why there is none
            st.info("No revenue to chart: this dataset has no purchases (only "
                    + _event_types_words(ov) + "). Load order data into it on the Data page to see revenue "
                    "here.", icon="📭")
        else:
            fig = cache.shared(dataset, "overview_revenue", lambda: _revenue_figure(ov, cov, cur, rng), cur, rng)
            st.plotly_chart(fig, key="revenue_chart", config={"displaylogo": False})
    with right:
        st.subheader(f"Active customers, {grain}")
        fig = cache.shared(dataset, "overview_active", lambda: _active_figure(ov, cov, rng), rng)
        st.plotly_chart(fig, key="active_chart", config={"displaylogo": False})


def _event_types_words(ov: dict) -> str:
    """The dataset's event types in words: ``views and cart adds``."""
    by_type = ov["by_type"]
    names = [TYPE_LABELS.get(t, str(t).capitalize()).lower()
             for t, n in zip(by_type["event_type"], by_type["events"]) if n]
    if not names:
        return "other events"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _types_figure(ov: dict) -> go.Figure:
    by_type = ov["by_type"].iloc[::-1]  # first type on top
    fig = go.Figure(go.Bar(
        x=by_type["events"], y=[TYPE_LABELS.get(t, str(t).capitalize()) for t in by_type["event_type"]],
        orientation="h",
        marker_color=[TYPE_COLORS.get(t, "#999999") for t in by_type["event_type"]],
        customdata=by_type["customers"],
        hovertemplate="%{y}: %{x:,} events by %{customdata:,} customers<extra></extra>",
    ))
    fig.update_layout(**{**LAYOUT, "height": 260}, xaxis_title="Events", xaxis=dict(tickformat=",d"))
    return fig


def _events_by_type(dataset: str, ov: dict) -> None:
    st.subheader("Events by type")
    st.plotly_chart(cache.shared(dataset, "overview_types", lambda: _types_figure(ov)), key="types_chart",
                    config={"displaylogo": False})


def _currency_caption(dataset: str) -> str:
    try:
        info = cache.dataset_currency(dataset)
    except (ValueError, WarehouseError):
        return ""
    if info.currency is None:
        return " Money is shown without a currency (set it on the Data page)."
    c = info.currency
    return f" Money in {c.name} ({c.symbol or c.code}; {info.reason})."


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
    cur = widgets.dataset_currency(dataset)
    st.caption(
        f"Dataset **{widgets.md_escape(dataset)}**: {fmt.integer(k['events'])} events from "
        f"{fmt.date(k['first_event'])} to {fmt.date(k['last_event'])}." + widgets.md_escape(_currency_caption(dataset))
    )
    st.markdown("##### All time")
    _kpis(k, cur)
    st.markdown("##### A date range vs the period before")
    first, last = pd.Timestamp(k["first_event"]).date(), pd.Timestamp(k["last_event"]).date()
    rng = _pick_range(dataset, first, last)
    if rng is not None:
        _range_kpis(dataset, rng[0], rng[1], cur)
    _timeline(dataset, ov, cur, rng)
    _events_by_type(dataset, ov)


main()
