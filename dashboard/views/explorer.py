"""Explorer: compare segments, value concentration, cohorts, migration and single customers.

Computations live in analytics.explorer; the customer frame, the cohorts and the default
migration at the last day are prepared once per data version (analytics.prepare) and read
through dashboard.cache, so the first visit reads, and changing the groups only re-aggregates
cached arrays. Summaries at other as-of dates come from the dataset's summary history
(analytics.summary.SummaryHistory, built and stored once per data version), so a new date
costs a gather, not a pass over the events: at 1M customers ~0.9-1.1 s for a new as-of date (frame, scores, the migration's
earlier date as segment codes, cohorts; was ~2.7 s, then ~0.9-1.5 s), ~0.12-0.2 s for anything
on dates already seen (the RFM/cluster groups and their comparison are cached with the frame;
the version is read once per run) (bench/bench_explorer.py --page, 2-core dev VM). One function
per section; the migration and the customer search are fragments (only they rerun). Charts
receive aggregated data only (Lorenz curve <= 1000 points, segments x metrics, cohort
months, segment-to-segment flows). User text (segment / cluster names, ids, event texts)
goes through st.dataframe / st.text / widget labels, or is escaped for plotly labels.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import explorer, formatting, glossary
from analytics.segments import store
from analytics.warehouse import WarehouseError
from dashboard import cache, review_widgets, widgets

GROUP_KINDS = ("RFM segments", "Clusters (latest run)", "Saved segments")
TABLE_LIMIT = 2000
TIMELINE_LIMIT = 500
LORENZ_POINTS = 1000
COMPARE_LABELS = {
    "segment": "Segment", "customers": "Customers", "share": "Share of customers", "revenue": "Net revenue",
    "revenue_share": "Share of revenue", "avg_clv": "Avg CLV", "orders_per_customer": "Orders each",
    "avg_probability_alive": "Still active", "retention": f"Bought in {explorer.RETENTION_DAYS} days",
}
CHART_TITLES = {"revenue_share": "Share of revenue", "avg_clv": "Average CLV (formula)",
                "orders_per_customer": "Orders per customer", "avg_probability_alive": "Average probability still "
                "active", "retention": f"Retention (bought in the last {explorer.RETENTION_DAYS} days)"}
#: the comparison's rates (fractions 0-1), shown as percentages with one decimal
COMPARE_RATES = ("share", "revenue_share", "retention", "avg_probability_alive")
COMPARE_HELP = {
    "avg_clv": "Average customer lifetime value by formula. " + glossary.term("clv_formula"),
    "orders_per_customer": "Average number of orders per customer.",
    "avg_probability_alive": "Average probability still active (BG/NBD model). " + glossary.term("p_alive"),
    "retention": f"Retention: the share of the group's customers who bought in the last {explorer.RETENTION_DAYS} "
                 "days before the as-of date."}
#: a customer's events as people read them
TIMELINE_TITLES = {"event_time": "When", "event_type": "Event", "order_id": "Order", "item_id": "Item",
                   "category": "Category", "quantity": "Quantity", "revenue": "Amount", "rating": "Rating",
                   "text": "Text", "country": "Country"}
#: the customer search table: what fits on the page (the timeline below shows the rest of a customer)
TABLE_COLUMNS = ("rfm_segment", "cluster_name", "net_revenue", "n_orders", "clv", "last_purchase", "country",
                 "category", "predicted_value", "churn_probability")


def _label(text: object) -> str:
    """User text for plotly labels (plotly renders a subset of HTML in text)."""
    return widgets.escape(text)


def _available_groups(dataset: str, as_of, frame: pd.DataFrame, kind: str) -> tuple[dict, str | None]:
    """(name -> mask of the groups of ``kind``, the frame column they come from or None)."""
    group_column = {"RFM segments": "rfm_segment", "Clusters (latest run)": "cluster_name"}.get(kind)
    if group_column is not None:
        available = cache.explorer_groups(dataset, as_of, group_column) or {}  # cached with the frame
        if kind == "Clusters (latest run)" and not available:
            st.info("No clustering run for this dataset yet: train one on the Segments page.", icon="🧩")
        return available, group_column
    available = {}
    try:
        saved = store.list_segments(cache.warehouse(), dataset)
    except ValueError as exc:
        widgets.show_error(exc, "The saved segments could not be read")
        saved = pd.DataFrame()
    if saved.empty:
        st.info("No saved segment yet: save one on the Segments page.", icon="🧩")
    for name in saved.get("name", []):
        try:
            available[str(name)] = store.evaluate_segment(cache.warehouse(), name, frame, dataset=dataset,
                                                          source=cache.event_source(dataset, as_of))
        except ValueError as exc:
            st.warning(f"Segment “{widgets.md_escape(name)}” cannot be evaluated on this data: "
                       f"{widgets.md_escape(exc)}", icon="⚠️")
    return available, None


#: the comparison's number columns: their kind (how a value reads when the column is shown as text)
COMPARE_KINDS = {"customers": "count", "revenue": "money", "avg_clv": "money", "orders_per_customer": "number",
                 **{c: "percent" for c in COMPARE_RATES}}
#: a comparison cell without a value: a segment nobody is in has no averages
NO_CUSTOMERS = "no customers"


def compare_display(table: pd.DataFrame, currency=None) -> pd.DataFrame:
    """The comparison as shown: human titles, rates in percent (the library's table stays as it is).
    A column with a missing value (the averages of a segment nobody is in) is shown as text, its gaps
    saying why ("no customers", else "–"), so no cell reads "None"."""
    shown = table.copy()
    empty = shown["customers"].eq(0) if "customers" in shown.columns else pd.Series(False, index=shown.index)
    for c, kind in COMPARE_KINDS.items():
        if c not in shown.columns:
            continue
        if shown[c].isna().any():
            shown[c] = [(NO_CUSTOMERS if e else formatting.MISSING) if pd.isna(v) else
                        formatting.format_value(v, kind, currency) for v, e in zip(shown[c], empty)]
        elif kind == "percent":
            shown[c] = shown[c] * 100.0
    return shown.rename(columns=COMPARE_LABELS)


def _compare_config(currency, shown: pd.DataFrame | None = None) -> dict:
    """Number formats for the comparison's columns; a column ``compare_display`` wrote as text keeps its help."""
    money = formatting.money_printf(currency)
    config = {COMPARE_LABELS["customers"]: st.column_config.NumberColumn(format="%,d"),
              COMPARE_LABELS["revenue"]: st.column_config.NumberColumn(format=money),
              COMPARE_LABELS["avg_clv"]: st.column_config.NumberColumn(format=money, help=COMPARE_HELP["avg_clv"]),
              COMPARE_LABELS["orders_per_customer"]: st.column_config.NumberColumn(
                  format="%.2f", help=COMPARE_HELP["orders_per_customer"])}
    for c in COMPARE_RATES:
        config[COMPARE_LABELS[c]] = st.column_config.NumberColumn(format=formatting.PERCENT_PRINTF,
                                                                  help=COMPARE_HELP.get(c))
    if shown is not None:
        for c in COMPARE_KINDS:
            title = COMPARE_LABELS[c]
            if title in shown.columns and shown[title].dtype == object:
                config[title] = st.column_config.TextColumn(title, help=COMPARE_HELP.get(c))
    return config


def _compare(dataset: str, as_of, frame: pd.DataFrame, currency=None) -> dict[str, pd.Series]:
    """The group comparison; returns the chosen groups (the concentration section offers them)."""
    st.subheader("Compare segments")
    kind = st.radio("Groups", GROUP_KINDS, horizontal=True, key="explorer_kind")
    available, group_column = _available_groups(dataset, as_of, frame, kind)
    groups: dict[str, pd.Series] = {}
    if available:
        names = list(available)
        default = names[:10] if kind == "Saved segments" else names
        chosen = st.multiselect("Segments to compare", names, default=default, key=f"explorer_groups_{kind}")
        groups = {n: available[n] for n in chosen}
    if not groups:
        if available:
            st.info("Pick at least one segment to compare.", icon="👆")
        return groups
    table = None
    try:
        if group_column is None:  # saved segments: masks evaluated on this run
            table = explorer.segment_comparison(frame, groups, as_of=as_of)
        else:  # RFM segments / clusters: cached per frame and chosen groups
            table = cache.explorer_comparison(dataset, as_of, group_column, list(groups))
    except ValueError as exc:
        widgets.show_error(exc, "The comparison could not be computed")
    if table is None:
        return groups
    for name in table.loc[table["customers"] == 0, "segment"].tolist():
        st.info(f"Segment “{widgets.md_escape(name)}” has no customers as of {formatting.date(as_of)}.", icon="📭")
    compared = compare_display(table, currency)
    st.dataframe(compared, hide_index=True, width="stretch", key="explorer_compare_table",
                 column_config=_compare_config(currency, compared))
    shown = table[table["customers"] > 0]
    if not shown.empty and not (shown["revenue"] > 0).any() and not shown["orders_per_customer"].sum():
        # bars of zeros on made-up axes would read as broken charts (returns only: a 100 % share of a
        # negative revenue beside empty charts)
        st.info(f"No customer in {'this segment' if len(shown) == 1 else 'these segments'} has bought anything "
                f"up to {formatting.date(as_of)}: the revenue, CLV, order and retention charts appear once they buy.", icon="📭")
        return groups
    metric_cols = [c for c in ("revenue_share", "avg_clv", "orders_per_customer", "retention",
                               "avg_probability_alive") if c in shown.columns]
    cols = st.columns(2)
    for i, col in enumerate(metric_cols):
        if group_column is None:  # saved segments: this run's masks
            fig = _metric_figure(shown, col, currency)
        else:  # the cached comparison's charts, once per frame version and chosen groups
            fig = cache.shared(dataset, "explorer_compare", lambda col=col: _metric_figure(shown, col, currency),
                              str(as_of), group_column, tuple(str(n) for n in groups), col, currency)
        cols[i % 2].plotly_chart(fig, width="stretch")
    return groups


def _metric_figure(shown: pd.DataFrame, col: str, currency) -> go.Figure:
    y = pd.to_numeric(shown[col], errors="coerce").to_numpy(dtype=float)
    rate = col not in ("avg_clv", "orders_per_customer")
    # rates x 100 written "12.3 %", as formatting.percent (d3's ".1%" writes "12.3%")
    fig = go.Figure(go.Bar(x=[_label(s) for s in shown["segment"]], y=y,
                           customdata=100.0 * y if rate else None,
                           hovertemplate="%{x}: %{customdata:.1f} %<extra></extra>" if rate else
                           "%{x}: %{y:,.2f} orders<extra></extra>" if col == "orders_per_customer" else None))
    fig.update_layout(title=CHART_TITLES[col], height=300, margin=dict(l=10, r=10, t=40, b=10))
    if col == "avg_clv":
        fig.update_yaxes(**formatting.money_axis(currency))
    elif rate:
        top = np.nanmax(y) if np.isfinite(y).any() else 1.0
        fig.update_yaxes(**formatting.percent_axis(top))
    return fig


def _concentration(dataset: str, as_of, frame: pd.DataFrame, groups: dict[str, pd.Series]) -> None:
    st.subheader("Value concentration")
    scope_names = ["All customers"] + list(groups)
    scope = st.selectbox("Customers", scope_names, key="explorer_lorenz_scope")
    if scope == "All customers":  # the default: once per frame version
        conc = cache.explorer_concentration(dataset, as_of, (0.1, 0.2), LORENZ_POINTS)
    else:
        values = frame.loc[groups[scope].to_numpy(), "net_revenue"]
        if len(values) == 0:
            st.info("This segment has no customers.", icon="📭")
            return
        conc = explorer.concentration(values, (0.1, 0.2), max_points=LORENZ_POINTS)  # one sort for all three
    top10, top20, g, curve = conc["top"][0.1], conc["top"][0.2], conc["gini"], conc["curve"]
    if pd.isna(top10) and pd.isna(g):
        # no net revenue: a Lorenz curve on the equal-share line would read as "perfectly even"
        who = "these customers" if scope == "All customers" else "the customers of this segment"
        st.info(f"No net revenue from {who} up to {formatting.date(as_of)}: there is no revenue whose concentration could be "
                "shown.", icon="📭")
        return
    m1, m2, m3 = st.columns(3)
    m1.metric("Top 10% share of net revenue", "n/a" if pd.isna(top10) else formatting.percent(top10),
              help="The share of net revenue that the 10 % of customers who spent most brought.")
    m2.metric("Top 20% share of net revenue", "n/a" if pd.isna(top20) else formatting.percent(top20),
              help="The share of net revenue that the 20 % of customers who spent most brought.")
    m3.metric("Gini coefficient", "n/a" if pd.isna(g) else f"{g:.3f}",
              help="How unequally net revenue is spread over the customers, from 0 (everyone spent the same) to 1 "
                   "(one customer brought everything).")
    if not pd.isna(top10):
        who = "customers" if scope == "All customers" else "customers of this segment"
        st.caption(f"The 10 % of {who} who spent most brought {formatting.percent(top10)} of their net revenue, "
                   f"the top 20 % brought {formatting.percent(top20)}" + (
                       "" if pd.isna(g) else f"; a Gini coefficient of {g:.2f} means revenue is "
                       + ("very unequally" if g >= 0.6 else "unequally" if g >= 0.3 else "fairly evenly")
                       + " spread") + ".")
    if scope == "All customers":
        fig = cache.shared(dataset, "explorer_lorenz", lambda: _lorenz_figure(curve), str(as_of))
    else:
        fig = _lorenz_figure(curve)
    st.plotly_chart(fig, width="stretch")
    st.caption("Refunds beyond purchases count as zero value.")


def _lorenz_figure(curve: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    x = curve["customer_share"].to_numpy(dtype=float)
    y = curve["value_share"].to_numpy(dtype=float)
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="Lorenz curve", customdata=np.column_stack([100 * x, 100 * y]),
                             hovertemplate="The lowest %{customdata[0]:.1f} % of customers brought "
                                           "%{customdata[1]:.1f} % of net revenue<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Equal share", line=dict(dash="dot"),
                             hoverinfo="skip"))
    fig.update_layout(xaxis=dict(title="Share of customers (lowest value first)", **formatting.percent_ticks()),
                      yaxis=dict(title="Share of net revenue", **formatting.percent_ticks()), height=400,
                      margin=dict(l=10, r=10, t=36, b=10))  # room above for the legend, clear of the toolbar
    return fig


def _sentiment(dataset: str, as_of) -> None:
    st.subheader("Review sentiment by segment")
    st.caption("What each group's customers write in their reviews: who is unhappy, and where.")
    review_widgets.sentiment_by_segment(dataset, as_of, key="explorer_sentiment_by")


def _cohorts(dataset: str, as_of) -> None:
    st.subheader("Cohort retention")
    try:
        cohorts = cache.explorer_cohorts(dataset, str(as_of), 24)
    except ValueError as exc:
        widgets.show_error(exc, "The cohorts could not be computed")
        cohorts = pd.DataFrame()
    if cohorts is None:
        widgets.not_ready(dataset, "the cohort table", stop=False)
        return
    if cohorts.empty:
        st.info(f"No purchase up to {formatting.date(as_of)}.", icon="📭")
        return
    st.plotly_chart(cache.shared(dataset, "explorer_cohorts", lambda: _cohort_figure(cohorts), str(as_of), 24),
                    width="stretch")
    st.caption("Share of each first-purchase cohort that purchased again in each later month (last 24 months).")


def _cohort_figure(cohorts: pd.DataFrame) -> go.Figure:
    matrix = explorer.cohort_matrix(cohorts)
    z = matrix.to_numpy(dtype=float)
    # shares x 100 written "12.3 %", as formatting.percent (d3's ".1%" writes "12.3%"); months as "Mar 2025"
    fig = go.Figure(go.Heatmap(z=z, x=[str(c) for c in matrix.columns], y=[formatting.month(c) for c in matrix.index],
                               customdata=100.0 * z, colorscale="Blues", zmin=0, zmax=1, hoverongaps=False,
                               colorbar=dict(title="Share of cohort", **formatting.percent_ticks()),
                               hovertemplate="%{y} cohort, month %{x}: %{customdata:.1f} %"
                                             "<extra></extra>"))
    fig.update_layout(xaxis_title="Months since first purchase", yaxis_title="First-purchase month",
                      yaxis_autorange="reversed", height=max(300, 18 * len(matrix) + 140),
                      margin=dict(l=10, r=10, t=36, b=10))  # room above for the colour bar's title
    return fig


def _sankey_figure(flows: pd.DataFrame, from_day, as_of) -> go.Figure:
    sk = explorer.sankey_data(flows)
    n_left = flows["from"].nunique()
    n_right = flows["to"].nunique()
    sizes = ([int(flows.loc[flows["from"].astype(str) == v, "customers"].sum()) for v in sk["labels"][:n_left]]
             + [int(flows.loc[flows["to"].astype(str) == v, "customers"].sum()) for v in sk["labels"][n_left:]])
    # the same segment has the same colour on both sides (the library's palette); each side is a column
    # headed by its date, and each label says its customers
    labels = [f"{_label(v)} · {n:,}" for v, n in zip(sk["labels"], sizes)]
    fig = go.Figure(go.Sankey(
        arrangement="fixed",
        node=dict(label=labels, pad=14, thickness=18, color=sk["node_colors"], x=sk["x"], y=sk["y"],
                  line=dict(color="white", width=0.5),
                  hovertemplate="%{label} customers<extra></extra>"),
        link=dict(source=sk["source"], target=sk["target"], value=sk["value"], color=sk["link_colors"],
                  hovertemplate="%{source.label} → %{target.label}: %{value:,} customers<extra></extra>"),
        textfont=dict(size=13)))
    fig.update_layout(height=max(520, 42 * max(n_left, n_right) + 80), margin=dict(l=10, r=10, t=36, b=10),
                      annotations=[dict(x=0, y=1.06, xref="paper", yref="paper", showarrow=False, xanchor="left",
                                        text=f"<b>{formatting.date(from_day)}</b>"),
                                   dict(x=1, y=1.06, xref="paper", yref="paper", showarrow=False, xanchor="right",
                                        text=f"<b>{formatting.date(as_of)}</b>")])
    return fig


@st.fragment
def _migration(dataset: str, first_day, as_of) -> None:
    """Segment or cluster migration between two dates (a fragment: its controls rerun only it)."""
    st.subheader("Segment migration")
    kinds = ("RFM segments", "Clusters (latest run)")
    mig_kind = st.radio("Migration of", kinds, horizontal=True, key="explorer_mig_kind")
    default_from = max(first_day, as_of - dt.timedelta(days=90))
    from_day = st.date_input("From", min_value=first_day, max_value=as_of,
                             key=widgets.state_default("explorer_from", default_from), help=f"Segments at this date vs. at {formatting.date(as_of)}.")
    run_id = None
    if mig_kind == kinds[1]:
        try:
            run_id = store.latest_clustering_run(cache.warehouse(), dataset)
        except ValueError:
            run_id = None
    if from_day >= as_of:
        st.info("Pick a date before the as-of date to see how customers moved.", icon="📅")
        return
    if mig_kind == kinds[1] and run_id is None:
        st.info("No clustering run for this dataset yet: train one on the Segments page.", icon="🧩")
        return
    try:
        if run_id is None:
            flows = cache.explorer_migration(dataset, from_day, as_of, "rfm_segment")
        else:
            flows = cache.explorer_cluster_migration(dataset, from_day, as_of, run_id)
    except ValueError as exc:
        widgets.show_error(exc, "The migration could not be computed")
        return
    if flows is None:
        widgets.not_ready(dataset, "the segment migration", stop=False)
        return
    if flows.empty:
        return
    fig = cache.shared(dataset, "explorer_sankey", lambda: _sankey_figure(flows, from_day, as_of), str(from_day),
                      str(as_of), run_id)
    st.plotly_chart(fig, width="stretch", key="explorer_sankey")
    # a customer who arrived after the first date has no segment to change from: counted apart
    known = (flows["from"] != explorer.NOT_A_CUSTOMER) & (flows["to"] != explorer.NOT_A_CUSTOMER)
    moved = int(flows.loc[known & (flows["from"] != flows["to"]), "customers"].sum())
    arrived = int(flows.loc[flows["from"] == explorer.NOT_A_CUSTOMER, "customers"].sum())
    what = "segment" if run_id is None else "cluster"
    st.caption(f"{moved:,} of {int(flows.loc[known, 'customers'].sum()):,} customers of both dates changed {what} "
               f"between {formatting.date(from_day)} and {formatting.date(as_of)}"
               + (f"; {arrived:,} arrived after {formatting.date(from_day)}." if arrived else ".")
               + ("" if run_id is None else f" Both dates are assigned with clustering run {run_id} "
                  "(its scaling and cluster centres), so a cluster means the same at both dates."))
    with st.expander("Flows as a table"):
        st.dataframe(flows.rename(columns={"from": f"On {formatting.date(from_day)}",
                                           "to": f"On {formatting.date(as_of)}", "customers": "Number of customers"}),
                     hide_index=True, width="stretch", key="explorer_flows_table",
                     column_config={"Number of customers": st.column_config.NumberColumn(format="%,d")})


@st.fragment
def _customers(dataset: str, frame: pd.DataFrame, as_of, currency=None) -> None:
    """Customer search and one customer's timeline (a fragment: typing reruns only it)."""
    st.subheader("Customers")
    needle = st.text_input("Search customer id", key="explorer_search", placeholder="part of an id")
    hits, n_hits = explorer.search_customers(frame, needle, limit=TABLE_LIMIT)
    if n_hits == 0:
        st.info("No customer id contains that text.", icon="🔎")
        return
    cols = [c for c in TABLE_COLUMNS if c in hits.columns]
    st.caption(f"{n_hits:,} customers match" + (f"; showing the first {TABLE_LIMIT:,}" if n_hits > TABLE_LIMIT else ""))
    widgets.show_table(hits[cols].reset_index(), currency, key="explorer_customers_table",
                       once_per=None if needle.strip() else (dataset, "explorer_customers", str(as_of)),
                       titles={"clv": "CLV (formula)", "category": "Top category", "predicted_value": "Predicted value",
                               "churn_probability": "Churn risk"}, kinds={"clv": "money"},
                       missing={"predicted_value": "not scored by the model",
                                "churn_probability": "not scored by the model",
                                "last_purchase": "no purchase yet", "first_purchase": "no purchase yet",
                                "cluster_name": "not clustered", "category": "–", "country": "–"})
    who = st.selectbox("Customer timeline", list(hits.index.astype(str)), key="explorer_customer")
    if who is None:
        return
    try:
        n_events = explorer.customer_event_count(cache.warehouse(), dataset, who, as_of=as_of)
        timeline = explorer.customer_timeline(cache.warehouse(), dataset, who, TIMELINE_LIMIT, as_of=as_of)
    except (ValueError, WarehouseError) as exc:
        widgets.show_error(exc, "The timeline could not be read")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Events", f"{n_events:,}")
    row = hits.loc[who]  # the search hits (at most TABLE_LIMIT rows): no id lookup over every customer
    c2.metric("Orders", f"{int(row['n_orders']):,}")
    c3.metric("Net revenue", formatting.money(float(row["net_revenue"]), currency))
    if n_events > TIMELINE_LIMIT:
        st.caption(f"Newest {TIMELINE_LIMIT} of {n_events:,} events.")
    shown = timeline.assign(event_time=[f"{formatting.date(t)}, {pd.Timestamp(t):%H:%M}" for t in
                                        timeline["event_time"]])
    widgets.show_table(shown, currency, key="explorer_timeline_table", titles=TIMELINE_TITLES,
                       once_per=(dataset, "explorer_timeline", str(as_of), str(who)),
                       kinds={"event_time": "text", "revenue": "money", "quantity": "count", "rating": "number"},
                       missing={c: formatting.MISSING for c in TIMELINE_TITLES})


def main() -> None:
    st.title("🔭 Explorer")
    dataset, _version, first_day, last_day = widgets.dataset_span_or_stop(needs_events=True)
    as_of = st.date_input("As of", min_value=first_day, max_value=last_day,
                          key=widgets.state_default("explorer_as_of", last_day),
                          help="Everything on this page uses events up to the end of this day.")
    frame = widgets.customer_frame_or_stop(cache.explorer_frame, dataset, as_of)
    currency = widgets.dataset_currency(dataset)
    groups = _compare(dataset, as_of, frame, currency)
    _concentration(dataset, as_of, frame, groups)
    _sentiment(dataset, as_of)
    _cohorts(dataset, as_of)
    _migration(dataset, first_day, as_of)
    _customers(dataset, frame, as_of, currency)


main()
