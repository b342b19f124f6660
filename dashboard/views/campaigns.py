"""Campaigns: turn saved segments into a ranked, capped target list with a control group,
see the expected return, export the exact list, save it, and later read the uplift.

Computation lives in analytics.campaigns (targeting, expected outcome, control group,
storage, read-out) and analytics.recommend (items per customer); the customer frame with
its value columns and the target list are cached in dashboard.cache. User text (segment
and campaign names, descriptions, customer and item ids, uploaded values) is shown through
st.dataframe / st.text / widget labels, or escaped for Markdown (widgets.md_escape) and
Plotly labels (widgets.escape); never as HTML.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import campaigns as camp
from analytics import formatting, glossary
from analytics.campaigns.export import HEADER_STYLES, email_column_key, send_list
from analytics.export import to_parquet, to_safe_csv
from analytics.segments import rules, store
from dashboard import cache, widgets

MAX_EXTRA = 3
#: the largest amounts the money fields take (in the dataset's currency; ample for yen too): a typo such
#: as 1e308 read as a cost gave a break-even sentence of a 300-digit amount and an empty chart
MAX_COST_PER_CONTACT = 1_000_000.0
MAX_VALUE_PER_RESPONSE = 1_000_000_000.0
MAX_BUDGET = 1_000_000_000_000.0
MAX_CONTACTS = 100_000_000
#: rows of a target list drawn in the browser; the downloads always hold the whole list
SHOW_ROWS = 20_000
CURVE_POINTS = 500
DELETE_KEY = "camp_delete_pending"
#: the columns of the target table, in this order (others the library adds follow)
TABLE_FIRST = ("rank", "customer_id", "segment", "group", "rfm_segment", "expected_clv", "churn_risk",
               "rank_score", "recommended_items")



#: the recommender evaluations' shares (0-1), shown as percentages
RECOMMENDER_RATES = ["precision_at_k", "recall_at_k", "coverage"]
#: what the recommender evaluations' shares mean
RECOMMENDER_HELP = {
    "precision": "Of the 10 items recommended to a customer, the share the customer bought after the split "
                 "(averaged over customers).",
    "recall": "Of the items a customer bought after the split, the share among the 10 recommended (averaged over "
              "customers).",
    "coverage": "The share of the catalogue's items recommended to at least one customer."}
#: the category choice that puts no limit on the recommended items
ANY_CATEGORY = "(any category)"
#: the label of the extra conditions' count
EXTRA_LABEL = "Extra conditions"


def _recommender_columns() -> dict:
    """Column titles and formats of the recommender evaluation tables (full comparison and holdout)."""
    return {
        "label": st.column_config.TextColumn("Recommender"),
        "precision_at_k": widgets.percent_column("Precision@10", help=RECOMMENDER_HELP["precision"]),
        "recall_at_k": widgets.percent_column("Recall@10", help=RECOMMENDER_HELP["recall"]),
        "f1_at_k": st.column_config.NumberColumn("F1@10", format="%.3f"),
        "ndcg_at_k": st.column_config.NumberColumn("NDCG@10", format="%.3f"),
        "coverage": widgets.percent_column("Catalogue coverage", help=RECOMMENDER_HELP["coverage"]),
    }


def _extra_conditions(where, p: "_Page") -> tuple[dict | None, list[int]]:
    """The extra rule rows as a rules definition (None when there are none) and the blank rows;
    ``where``: the container of the row-count input."""
    fields, frame, first_day, last_day = p.fields, p.frame, p.first_day, p.last_day
    # a short label: the column is a quarter of the page, and a longer one ran into its help icon at 1280 px
    n = int(where.number_input(EXTRA_LABEL, min_value=0, max_value=MAX_EXTRA, value=0,
                               step=1, key="camp_rule_n",
                               help="How many conditions to add; all of them must hold. They narrow the chosen "
                               "segments further, e.g. Country is one of DE, AT."))
    if n == 0:
        return None, []
    names = sorted(fields, key=lambda f: fields[f].title.lower())
    default = "net_revenue" if "net_revenue" in names else names[0]
    conditions = [widgets.rule_condition_row("camp", i, frame, fields, default, first_day, last_day)
                  for i in range(n)]
    blank = widgets.blank_conditions(conditions)
    return {"op": "and", "conditions": conditions}, blank


def _ordered(targets: pd.DataFrame) -> pd.DataFrame:
    """The target list with the marketer's columns first (what is shown is what is exported)."""
    first = [c for c in TABLE_FIRST if c in targets.columns]
    return targets[first + [c for c in targets.columns if c not in first]].reset_index(drop=True)


#: the saved campaigns' table as people read it
SAVED_TITLES = {"id": "Campaign", "name": "Name", "as_of": "As of", "description": "Description",
                "ranking": "Ranked by", "n_eligible": "Eligible", "n_targets": "On the list",
                "n_treatment": "Contacted", "n_control": "Control", "created_at": "Saved (UTC)",
                "has_outcomes": "Outcomes"}
#: the read-out table's statistics columns as people read them
READOUT_TITLES = {"uplift (pp)": "Conversion uplift (pp)", "CI95 low (pp)": "95 % interval from (pp)",
                  "CI95 high (pp)": "95 % interval to (pp)", "p-value": "p-value (conversion)",
                  "revenue uplift": "Revenue uplift per customer", "revenue CI95 low": "Revenue 95 % interval from",
                  "revenue CI95 high": "Revenue 95 % interval to", "revenue p-value": "p-value (revenue)",
                  "too small to tell": "Too small to tell"}
#: why a cell of the target list is empty, in words
LIST_MISSING = {"churn_risk": "never bought", "churn_value": "never bought", "p_alive": "never bought",
                "expected_clv": formatting.NOT_ENOUGH_HISTORY, "recommended_items": "none"}
HEADER_LABELS = {"tool": "Tool-friendly (customer_id, email, expected_value…)",
                 "people": "For people (Customer, Expected value (EUR)…)", "machine": "The library's own names"}


def _money(p: "_Page"):
    return widgets.money_text(p.currency)


def _show_list(targets: pd.DataFrame, key: str, currency=None) -> None:
    """The target list as a table people read (human titles, money in the dataset currency,
    rates as percentages), ordered as exported (its first SHOW_ROWS rows: the browser cannot
    draw millions; only those rows are reordered here)."""
    if len(targets) > SHOW_ROWS:
        st.caption(f"Showing the first {SHOW_ROWS:,} of {len(targets):,} rows (by rank); the downloads hold all "
                   f"{len(targets):,} in this order.")
    widgets.show_table(_ordered(targets.head(SHOW_ROWS)), currency, key=key, missing=LIST_MISSING,
                       kinds={"rank_score": "number"})


def _file_stem(name: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    return safe[:80] or "campaign"


def _error(exc: BaseException, what: str) -> None:
    """A user-facing error whose message may quote user text (names, ids): shown escaped."""
    st.error(f"{what}: {widgets.md_escape(exc)}", icon="🚫")


def _send_options(p: "_Page", key: str) -> dict:
    """Header style, customer attributes and the email column of the send-ready files."""
    o1, o2, o3 = st.columns([2, 3, 2])
    headers = o1.radio("Column headers", [h for h in HEADER_STYLES if h != "machine"], format_func=HEADER_LABELS.get,
                       key=f"{key}_headers", help="Tool-friendly headers map without help in Klaviyo, Mailchimp and "
                       "ad platforms; for people: titles with the currency code, for a spreadsheet.")
    try:
        fields = cache.event_source(p.dataset, p.as_of).fields()
    except ValueError:
        fields = {}
    attrs = {n: f.title for n, f in fields.items() if getattr(f, "kind", None) == "attribute"}
    email_key = email_column_key(p.wh, p.dataset)
    attrs = {n: t for n, t in attrs.items() if not (email_key and t == email_key)}
    chosen = o2.multiselect("Customer attributes to pass through", list(attrs), format_func=attrs.get,
                            key=f"{key}_attrs", help="Each customer's latest value up to the as-of day (country and "
                            "the columns kept when the data were loaded).", disabled=not attrs,
                            placeholder="none in this dataset" if not attrs else "Choose attributes")
    email = False
    if email_key:
        email = o3.checkbox("Add the email column", value=False, key=f"{key}_email",
                            help="The email kept when the data were loaded (personal data: share it only where "
                            "you may).")
    else:
        o3.caption("No email column: none was kept when the data were loaded.")
    return {"headers": headers, "attributes": chosen, "include_email": email,
            "may_see_personal_data": widgets.may_see_personal_data()}


def _downloads(targets: pd.DataFrame, stem: str, key: str, meta: dict, p: "_Page") -> None:
    """The send-ready treatment file (to upload to an email or ads tool) and the control file
    (to keep aside), then the full list of both groups for analysis as CSV (formula cells
    neutralized, optional BOM) and Parquet, in the table's column order and machine names
    (all built only when a button is clicked)."""
    if not widgets.may("export", p.dataset):
        widgets.needs_role("export")
        return
    opts = _send_options(p, key)
    bom = st.checkbox("UTF-8 with BOM for Excel", value=False, key=f"{key}_bom",
                      help="Adds a byte order mark so that Excel opens accented names correctly.")
    n_t = int((targets["group"] == "treatment").sum()) if "group" in targets else 0
    n_c = int((targets["group"] == "control").sum()) if "group" in targets else 0

    def _send(group, targets=targets, bom=bom, opts=opts, dataset=p.dataset, as_of=p.as_of,
              currency=p.currency) -> bytes:
        frame = send_list(cache.warehouse(), targets, dataset=dataset, as_of=as_of, group=group, currency=currency,
                          **opts)
        data = to_safe_csv(frame, bom=bom)
        return data if isinstance(data, bytes) else data.encode("utf-8")

    def _csv(targets=targets, bom=bom) -> bytes:
        data = to_safe_csv(_ordered(targets), bom=bom)
        return data if isinstance(data, bytes) else data.encode("utf-8")

    def _parquet(targets=targets, meta=meta) -> bytes:
        return to_parquet(_ordered(targets), metadata=meta)

    # the buttons' data run later in another thread: bound to this run's caller
    _csv, _parquet = widgets.deferred(_csv), widgets.deferred(_parquet)
    d1, d2 = st.columns(2)
    d1.download_button(f"Treatment list to upload ({n_t:,})", data=widgets.deferred(lambda: _send("treatment")),
                       file_name=f"{stem}_treatment.csv", mime="text/csv", on_click="ignore", icon="📤",
                       key=f"{key}_treatment", type="primary", disabled=n_t == 0,
                       help="Only the customers to contact, best-ranked first, money rounded: the file for your "
                       "email or ads tool.")
    d2.download_button(f"Control list, not to contact ({n_c:,})", data=widgets.deferred(lambda: _send("control")),
                       file_name=f"{stem}_control.csv", mime="text/csv", on_click="ignore", icon="🧪",
                       key=f"{key}_control", disabled=n_t == 0 or n_c == 0,
                       help="The customers held out at random: keep them out of the campaign and compare their "
                       "purchases with the treatment list's afterwards.")
    if opts["include_email"] and not opts["may_see_personal_data"]:
        st.caption("No email column: your role may not see personal data.")
    st.markdown("**Full list for analysis** (both groups, every column, the library's column names)")
    d3, d4 = st.columns(2)
    d3.download_button("Download CSV", data=_csv, file_name=f"{stem}.csv", mime="text/csv", on_click="ignore",
                       icon="⬇️", key=f"{key}_csv")
    d4.download_button("Download Parquet", data=_parquet, file_name=f"{stem}.parquet",
                       mime="application/vnd.apache.parquet", on_click="ignore", icon="⬇️", key=f"{key}_parquet")
    st.caption("CSV cells a spreadsheet would run as formulas (starting with = + - @, a tab or a carriage return) "
               "are neutralized with a leading '. Parquet keeps the values and types as they are.")


def _curve_figure(curve: pd.DataFrame, currency=None) -> go.Figure:
    """Incremental return against the number contacted, with the break-even points marked
    (reference lines as layout shapes: plotly's add_hline/add_vline cost ~0.1 s a figure)."""
    x = curve["n_contacted"].to_numpy(float)
    y = curve["incremental_return"].to_numpy(float)
    traces = [go.Scatter(x=x, y=y, mode="lines", name="Incremental return", line=dict(width=2))]
    shapes = [dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=0, y1=0,
                   line=dict(dash="dot", color="grey", width=1))]
    be = curve.attrs.get("break_even")
    if be is not None:
        traces.append(go.Scatter(x=[be], y=[float(np.interp(be, x, y))], mode="markers",
                                 name="Break-even (last contact that pays; best return)",
                                 marker=dict(size=13, symbol="diamond", color="crimson")))
        shapes.append(dict(type="line", xref="x", x0=float(be), x1=float(be), yref="paper", y0=0, y1=1,
                           line=dict(dash="dash", color="crimson", width=1)))
    zero = curve.attrs.get("zero_return_n")
    if zero is not None and zero != be and zero < x.max():
        traces.append(go.Scatter(x=[zero], y=[float(np.interp(zero, x, y))], mode="markers",
                                 name="Return back to 0", marker=dict(size=11, symbol="x", color="grey")))
    fig = go.Figure(data=traces, layout=dict(
        xaxis_title="Customers contacted (best-ranked first)", yaxis_title="Incremental return", shapes=shapes,
        height=360, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12)))
    fig.update_yaxes(**formatting.money_axis(currency))
    fig.update_xaxes(tickformat=",d")
    return fig


def _pct_points(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:+.2f} pp"


def _ci_points(ci) -> str:
    lo, hi = (ci or [None, None])[:2]
    return "–" if lo is None or hi is None else f"[{100 * lo:+.2f}, {100 * hi:+.2f}] pp"


def _signed_money(x, currency) -> str:
    return "–" if x is None else ("+" if x > 0 else "") + formatting.money(x, currency)


def _ci_money(ci, currency=None) -> str:
    lo, hi = (ci or [None, None])[:2]
    return "–" if lo is None or hi is None else f"[{_signed_money(lo, currency)}, {_signed_money(hi, currency)}]"


def _p(x: float | None) -> str:
    return "–" if x is None else (f"{x:.4f}" if x >= 0.0001 else "< 0.0001")


#: the read-out table's columns as people read them (the figure uses the same frame)
READOUT_KINDS = {"Contacted": "count", "Control": "count", "Conversion, contacted": "percent",
                 "Conversion, control": "percent", "Revenue per customer, contacted": "money",
                 "Revenue per customer, control": "money"}


def _readout_table(result: dict) -> pd.DataFrame:
    rows = [result["overall"]] + list(result["per_segment"])
    return pd.DataFrame({
        "segment": [str(r["segment"]) for r in rows],
        "Contacted": [r["n_treatment"] for r in rows],
        "Control": [r["n_control"] for r in rows],
        "Conversion, contacted": [r["conversion_t"] for r in rows],
        "Conversion, control": [r["conversion_c"] for r in rows],
        "uplift (pp)": [None if r["uplift_conversion"] is None else 100 * r["uplift_conversion"] for r in rows],
        "CI95 low (pp)": [None if r["ci95"][0] is None else 100 * r["ci95"][0] for r in rows],
        "CI95 high (pp)": [None if r["ci95"][1] is None else 100 * r["ci95"][1] for r in rows],
        "p-value": [r["p_value"] for r in rows],
        "Revenue per customer, contacted": [r["revenue_per_customer_t"] for r in rows],
        "Revenue per customer, control": [r["revenue_per_customer_c"] for r in rows],
        "revenue uplift": [r["uplift_revenue"] for r in rows],
        "revenue CI95 low": [r["ci95_revenue"][0] for r in rows],
        "revenue CI95 high": [r["ci95_revenue"][1] for r in rows],
        "revenue p-value": [r["p_value_revenue"] for r in rows],
        "too small to tell": [bool(r["too_small"]) for r in rows],
    })


def _uplift_figure(table: pd.DataFrame) -> go.Figure:
    """Conversion and revenue uplift per group with their 95% intervals as error bars
    (grey: too small to tell)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Conversion uplift (pp)", "Revenue uplift per customer"))
    for col, (value, lo_col, hi_col) in enumerate((("uplift (pp)", "CI95 low (pp)", "CI95 high (pp)"),
                                                   ("revenue uplift", "revenue CI95 low", "revenue CI95 high")),
                                                  start=1):
        shown = table.dropna(subset=[value])
        y = shown[value].to_numpy(float)
        lo = shown[lo_col].to_numpy(float)
        hi = shown[hi_col].to_numpy(float)
        fig.add_trace(go.Scatter(
            x=[widgets.escape(s) for s in shown["segment"]], y=y, mode="markers",
            marker=dict(size=12, color=["grey" if small else "seagreen" for small in shown["too small to tell"]]),
            error_y=dict(type="data", symmetric=False, array=np.nan_to_num(hi - y), arrayminus=np.nan_to_num(y - lo)),
            name=value), row=1, col=col)
        axis = "" if col == 1 else str(col)
        fig.add_shape(type="line", xref=f"x{axis} domain", x0=0, x1=1, yref=f"y{axis}", y0=0, y1=0,
                      line=dict(dash="dot", color="grey", width=1))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


def _show_readout(result: dict, currency=None) -> None:
    o = result["overall"]
    st.markdown("**Overall**")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Conversion, contacted", widgets.fmt_pct(o["conversion_t"]),
              help=f"{o['conversions_t']:,} of {o['n_treatment']:,} contacted customers converted")
    c2.metric("Conversion, control", widgets.fmt_pct(o["conversion_c"]),
              help=f"{o['conversions_c']:,} of {o['n_control']:,} control customers converted")
    c3.metric("Conversion uplift", _pct_points(o["uplift_conversion"]),
              help="Treatment minus control, in percentage points; 95% interval and p-value below. "
              + glossary.term("uplift"))
    c4.metric("p-value (conversion)", _p(o["p_value"]), help=o.get("p_value_method") or None)
    st.caption(f"Conversion uplift 95% CI: {_ci_points(o['ci95'])} · "
               f"{o.get('p_value_method') or ''}")
    r1, r2, r3, r4 = st.columns(4)
    r1.metric("Revenue per customer, contacted", formatting.money(o["revenue_per_customer_t"], currency))
    r2.metric("Revenue per customer, control", formatting.money(o["revenue_per_customer_c"], currency))
    r3.metric("Revenue uplift per customer", _signed_money(o["uplift_revenue"], currency))
    r4.metric("p-value (revenue)", _p(o["p_value_revenue"]), help="Welch t-test")
    st.caption(f"Revenue uplift 95% CI: {_ci_money(o['ci95_revenue'], currency)} (Welch). "
               + glossary.term("ci95"))
    if o.get("too_small"):
        st.warning("Overall: " + str(o.get("warning") or "the groups are too small to tell"), icon="⚠️")
    small = [r["segment"] for r in result["per_segment"] if r.get("too_small")]
    if small and result["per_segment"]:
        st.warning(f"{len(small)} of {len(result['per_segment'])} segment(s) are too small to tell (marked in the "
                   "table; grey points in the chart): their intervals are wide and their tests weak.", icon="⚠️")
    if result.get("unknown_count"):
        few = ", ".join(widgets.md_escape(i) for i in result["unknown_ids"][:5])
        more = " …" if result["unknown_count"] > 5 else ""
        st.warning(f"{result['unknown_count']:,} customer id(s) in the outcomes file are not in this campaign "
                   f"and were not used: {few}{more}", icon="🔎")
    if result.get("n_missing"):
        st.info(f"{result['n_missing']:,} customer(s) of the campaign have no row in the file: counted as not "
                "converted, revenue 0.", icon="ℹ️")
    table = _readout_table(result)
    st.markdown("**Per segment**")
    money = st.column_config.NumberColumn(format=formatting.money_printf(currency))
    points = st.column_config.NumberColumn(format="%+.2f")
    pval = st.column_config.NumberColumn(format="%.3g")
    pct = st.column_config.NumberColumn(format="%.1f %%")
    shown = table.assign(**{c: table[c] * 100.0 for c in ("Conversion, contacted", "Conversion, control")})
    formats = {"Conversion, contacted": pct, "Conversion, control": pct, "uplift (pp)": points,
               "CI95 low (pp)": points, "CI95 high (pp)": points, "p-value": pval,
               "Revenue per customer, contacted": money, "Revenue per customer, control": money,
               "revenue uplift": money, "revenue CI95 low": money, "revenue CI95 high": money,
               "revenue p-value": pval}
    st.dataframe(shown.rename(columns={"segment": "Segment", **READOUT_TITLES}), hide_index=True,
                 key="camp_readout_table", width="stretch",
                 column_config={READOUT_TITLES.get(c, c): f for c, f in formats.items()})
    st.plotly_chart(_uplift_figure(table), key="camp_uplift_fig", width="stretch")
    st.caption("Method: " + str(result.get("method", "")))


FULL_KEY = "camp_full_comparison"


def _full_comparison(dataset: str, version: str, split, as_of) -> None:
    """Every recommender (matrix factorisation, the sequence model...) on the same holdout, trained here
    with live progress; any click (the stop button) ends the run at the next progress update and the
    last finished comparison stays shown. Kept in this browser session (it belongs to who ran it)."""
    from analytics.recommend import FAMILIES, LABELS, evaluate_holdout

    st.markdown("**Full comparison** (matrix factorisation, BPR, the blend and the GRU sequence model; minutes "
                "on a small machine, the sequence model trains on the best available device)")
    picked = st.multiselect("Recommenders", list(FAMILIES), default=list(FAMILIES), key="camp_full_models",
                            format_func=lambda f: LABELS.get(f, f))
    if st.button("▶️ Run the full comparison", key="camp_full_run"):
        st.button("⏹️ Stop", key="camp_full_stop")
        bar = st.progress(0.0, text="Preparing…")
        line = st.empty()
        steps = {"n": 0}

        def on_progress(row: dict) -> None:
            if row.get("status") == "start":
                steps["n"] += 1
                bar.progress(min(steps["n"] / (4 * max(len(picked), 1)), 0.99),
                             text=f"{row['stage']}: {LABELS.get(row['model'], row['model'])}")
            elif row.get("status") == "epoch":
                line.caption(f"{row['stage']} · sequence model epoch {row['epoch']}/{row['epochs']} · loss "
                             f"{row['train_loss']:.4f} · held-out recall@10 {row['val_recall']:.3f} · at most "
                             f"{row['eta_s']:.0f} s left")
        try:
            res = evaluate_holdout(cache.warehouse(), dataset, split, as_of + dt.timedelta(days=1), k=10,
                                   families=picked, progress=on_progress)
        except ValueError as exc:
            bar.empty()
            line.empty()
            _error(exc, "The comparison could not run")
            return
        bar.empty()  # the bar and the figures line go when the work ends
        line.empty()
        st.session_state[FULL_KEY] = {"dataset": dataset, "version": version, "split": str(split), "result": res}
    held = st.session_state.get(FULL_KEY)
    if not held or held["dataset"] != dataset:
        return
    res = held["result"]
    if held["version"] != version or held["split"] != str(split):
        st.warning("The data or the holdout changed since this comparison ran; run it again.", icon="⚠️")
    pop = res.set_index("model")["precision_at_k"].get("popularity")
    pop_r = res.set_index("model")["recall_at_k"].get("popularity")
    shown = res.assign(precision_vs_popularity=res["precision_at_k"] / pop if pop else None,
                       recall_vs_popularity=res["recall_at_k"] / pop_r if pop_r else None)
    shown = widgets.as_percent(shown, RECOMMENDER_RATES)
    st.dataframe(shown[["label", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k", "coverage",
                        "precision_vs_popularity", "recall_vs_popularity", "fit_seconds"]], hide_index=True,
                 key="camp_full_table", column_config={
                     **_recommender_columns(),
                     "precision_vs_popularity": st.column_config.NumberColumn("Precision vs popularity (×)",
                                                                              format="%.2f"),
                     "recall_vs_popularity": st.column_config.NumberColumn("Recall vs popularity (×)", format="%.2f"),
                     "fit_seconds": st.column_config.NumberColumn("Seconds to fit", format="%.1f"),
                 })
    val = res.attrs.get("validation")
    if val:
        r = val["ratios_vs_popularity"].get(val["winner"], {})
        st.caption(f"Validation winner (the default to use): **{widgets.md_escape(val['label'])}**, precision@10 "
                   f"x{r.get('precision', float('nan')):.2f} and recall@10 x{r.get('recall', float('nan')):.2f} of "
                   f"popularity on {val['windows'][0][0]} .. {val['windows'][0][1]}.")


@dataclasses.dataclass
class _Page:
    """What every tab of this page works on (read once per run)."""

    wh: object
    dataset: str
    first_day: object
    last_day: object
    as_of: object
    frame: pd.DataFrame  # the prepared customer frame with the value columns (read-only)
    fields: dict
    currency: object = None  # the dataset's analytics.currency.Currency (None: no sign)


def _load() -> _Page:
    dataset, _version, first_day, last_day = widgets.dataset_span_or_stop()
    as_of = st.columns([1, 3])[0].date_input(
        "As of", min_value=first_day, max_value=last_day, key=widgets.state_default("camp_as_of", last_day),
        help="Customers, scores and segments use events up to the end of this day.")
    frame = widgets.customer_frame_or_stop(cache.campaigns_frame, dataset, as_of,
                                           "the customer table with expected values")
    return _Page(cache.warehouse(), dataset, first_day, last_day, as_of, frame, rules.fields_from_frame(frame),
                 widgets.dataset_currency(dataset))



# ------------------------------------------------------------------------ build
def _tab_build(p: _Page) -> None:
    """Pick segments and rules, rank, cap, control group, recommendations; expected outcome; list; save."""
    wh, dataset, as_of, frame, fields = p.wh, p.dataset, p.as_of, p.frame, p.fields
    money = _money(p)
    segs = store.list_segments(wh, dataset)
    seg_names = [str(n) for n in segs["name"]] if not segs.empty else []
    g1, g2 = st.columns([3, 1])
    chosen = g1.multiselect("Saved segments (any of them; none = every customer)", seg_names, key="camp_segments",
                            help="Build segments on the Segments page.")
    if not seg_names:
        st.caption("No saved segments yet: the campaign starts from every customer. "
                   "Save segments on the Segments page.")
    extra, blank = _extra_conditions(g2, p)
    if blank:
        st.info("Enter a value for extra condition " + ", ".join(map(str, blank)) + " to see the selection.",
                icon="✍️")

    r1, r2 = st.columns([1, 1])
    ranking = r1.selectbox("Rank by", list(camp.RANKINGS), key="camp_ranking", format_func=camp.RANKINGS.get)
    score_column = None
    if ranking == "score":
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
                   and not pd.api.types.is_bool_dtype(frame[c])]
        default_col = numeric.index("rfm_score") if "rfm_score" in numeric else 0
        score_column = r2.selectbox("Score (highest first)", numeric, index=default_col, key="camp_score_col",
                                    format_func=lambda c: fields[c].title if c in fields else c)

    c1, c2, c3, c4 = st.columns(4)
    cap_on = c1.checkbox("Cap the number of contacts", value=True, key="camp_cap_on")
    max_contacts = c1.number_input("Max contacts", min_value=1, max_value=MAX_CONTACTS, value=500, step=50,
                                   key="camp_max",
                                   disabled=not cap_on)
    budget_on = c2.checkbox("Cap by budget", value=False, key="camp_budget_on")
    budget = c2.number_input("Budget" + (f" ({p.currency.code})" if p.currency else ""), min_value=0.0, max_value=MAX_BUDGET, value=1000.0, step=100.0, key="camp_budget",
                             disabled=not budget_on)
    cost = c3.number_input("Cost per contact" + (f" ({p.currency.code})" if p.currency else ""), min_value=0.0, max_value=MAX_COST_PER_CONTACT, value=1.0, step=0.1, key="camp_cost",
                           help="Used for the budget cap and the expected cost.")
    control_pct = c4.slider("Control group (% held out)", min_value=0, max_value=100, value=10, step=1,
                            key="camp_control", help="A random share of the selected customers, drawn within each "
                            "segment, is not contacted; comparing it with the contacted group gives the uplift. "
                            "Must be strictly between 0 % and 100 %.")
    s1, s2, s3 = st.columns(3)
    seed = s1.number_input("Random seed", min_value=0, value=42, step=1, key="camp_seed",
                           help="The same seed and selection give the same control group.")
    n_recs = s2.number_input("Recommended items per customer", min_value=0, max_value=20, value=0, step=1,
                             key="camp_recs", help="Item-based collaborative filtering over purchases "
                             "(carts and views count less); excludes what the customer already bought.")
    categories = cache.event_categories(dataset) or []
    # "any category" is a text option, not None: a None option reads as the empty "Choose an option"
    # once the page reruns
    rec_cat = s3.selectbox("Recommend only from category", [ANY_CATEGORY] + categories, key="camp_rec_cat",
                           format_func=lambda c: "any category" if c == ANY_CATEGORY else str(c),
                           disabled=int(n_recs) == 0)
    rec_cat = None if rec_cat == ANY_CATEGORY else rec_cat

    _recommend_holdout(dataset, as_of)

    spec = None
    targets = None
    if not blank:
        try:
            spec = camp.CampaignSpec(
                name="draft", dataset=dataset, as_of=str(as_of), segments=list(chosen), extra_rules=extra,
                ranking=ranking, score_column=score_column,
                max_contacts=int(max_contacts) if cap_on else None,
                budget=float(budget) if budget_on else None, cost_per_contact=float(cost),
                control_share=control_pct / 100.0, seed=int(seed), recommendations=int(n_recs),
                recommendation_category=rec_cat if int(n_recs) > 0 else None,
            ).validated()
            spec, rec_note = camp.recommendations_possible(cache.warehouse(), spec)
            if rec_note:
                st.info(widgets.md_escape(rec_note[0].upper() + rec_note[1:]) + ".", icon="ℹ️")
            targets = cache.campaign_targets(dataset, as_of, spec)
        except ValueError as exc:
            spec, targets = None, None
            _error(exc, "Check the campaign")

    if targets is not None:
        treat = int(targets.attrs.get("n_treatment", (targets["group"] == "treatment").sum()))
        ctrl = int(targets.attrs.get("n_control", (targets["group"] == "control").sum()))
        eligible = targets.attrs.get("eligible")
        m1, m2, m3 = st.columns(3)
        m1.metric("Eligible customers", widgets.fmt_int(eligible) if eligible is not None else "–",
                  help="Customers in the chosen segments who also meet the extra conditions.")
        m2.metric("Contacted", widgets.fmt_int(treat), help="The treatment group: the best-ranked customers "
                  "up to the cap.")
        m3.metric("Control (not contacted)", widgets.fmt_int(ctrl))

        if spec.recommendations > 0:
            choice = cache.campaign_recommender_choice(dataset, as_of)
            ratio = choice.get("ratios_vs_popularity", {}).get(choice["model"], {})
            margin = (f": on {choice['windows'][0][0]} .. {choice['windows'][0][1]} it had precision@10 "
                      f"x{ratio['precision']:.2f} and recall@10 x{ratio['recall']:.2f} of popularity"
                      if ratio and choice.get("windows") else "")
            st.caption(f"Recommended items from **{widgets.md_escape(choice['label'])}**, the recommender that won "
                       f"on the 90 days before the as-of day{margin}."
                       + (f" {widgets.md_escape(choice['note'])}." if choice.get("note") else ""))
        if targets.attrs.get("value_source"):
            st.caption(f"Expected CLV from: {targets.attrs['value_source']} · churn risk from: "
                       f"{targets.attrs.get('risk_source') or '–'} · contacts limited by: "
                       f"{targets.attrs.get('cap_reason', '–')}.")

        score_warning = targets.attrs.get("score_warning")
        if score_warning:
            said = widgets.md_escape(score_warning[:1].upper() + score_warning[1:])
            st.warning(f"**This list is not ranked.** {said}. No expected return or ROI is shown for it: pick a "
                       "ranking (or a score column) that differs between these customers.", icon="⚠️")

        # -------------------------------------------------------- expected outcome
        st.subheader("Expected outcome")
        defaults = cache.campaign_response_defaults(dataset, as_of, spec)
        d_rate, d_value = float(defaults["response_rate"]), float(defaults["value_per_response"])
        e1, e2 = st.columns(2)
        # keyed by the default: a new selection brings its own default back into the box
        rate_pct = e1.number_input("Response rate (%)", min_value=0.0, max_value=100.0,
                                   value=round(100.0 * d_rate, 2), step=0.5, key=f"camp_rate_{round(d_rate, 6)}",
                                   help="Share of contacted customers expected to respond.")
        per_response = e2.number_input(
            "Value per response" + (f" ({p.currency.code})" if p.currency else ""), min_value=0.0,
            max_value=max(MAX_VALUE_PER_RESPONSE, round(d_value, 2)), value=round(d_value, 2), step=1.0,
                                       key=f"camp_vpr_{round(d_value, 4)}",
                                       help="Revenue one response is expected to bring.")
        st.caption(f"Defaults ({formatting.percent(d_rate)}, {money(d_value)}) for these {len(targets):,} customers: "
                   f"{widgets.md_escape(defaults.get('source', ''))}. Better-ranked customers are assumed more "
                   "likely to respond (in proportion to their rank score, averaging the rate above).")
        try:
            outcome = camp.expected_outcome(targets, rate_pct / 100.0, per_response, float(cost))
            curve = camp.return_curve(targets, rate_pct / 100.0, per_response, float(cost),
                                      max_points=CURVE_POINTS)
        except ValueError as exc:
            outcome = curve = None
            _error(exc, "Check the assumptions")
        if outcome is not None and outcome.get("roi_withheld"):
            o1, o2 = st.columns([1, 3])
            o2.metric("Cost", money(outcome["cost"]))
            o1.metric("ROI", "not shown", help="The ranking score does not rank this selection (see the warning "
                      "above), so no return is computed for it.")
        elif outcome is not None:
            o1, o2, o3, o4 = st.columns(4)
            o1.metric("Expected revenue", money(outcome["expected_revenue"]),
                      help=f"{outcome['expected_responses']:,.1f} expected responses among "
                           f"{outcome['contacted']:,} contacted")
            o2.metric("Cost", money(outcome["cost"]))
            o3.metric("Incremental return", money(outcome["incremental_return"]),
                      help="Expected revenue less the cost of the contacts.")
            roi = outcome.get("roi")
            o4.metric("ROI", "–" if roi is None else widgets.fmt_pct(roi),
                      help="Incremental return / cost (– when contacts cost nothing).")
            st.plotly_chart(_curve_figure(curve, p.currency), key="camp_curve", width="stretch")
            be = curve.attrs.get("break_even")
            if be is None:
                words = "not even the first contact is expected to pay for itself at these assumptions."
            elif be >= outcome["contacted"]:
                words = (f"every one of the {outcome['contacted']:,} contacts is expected to pay for itself: the cap, "
                         "not the return, limits this campaign.")
            else:
                words = (f"contacts up to the {int(be):,}th pay for themselves; beyond it each extra contact is "
                         "expected to bring less than it costs.")
            st.caption(f"Break-even: {words} Best incremental return "
                       f"{money(curve.attrs.get('best_return'))} at "
                       f"{int(curve.attrs.get('best_n') or 0):,} contacted.")

        # -------------------------------------------------------- target list
        st.subheader("Target list")
        st.caption(f"{len(targets):,} customers ({treat:,} to contact, {ctrl:,} held out as control). "
                   "The downloads hold exactly these rows in this order.")
        _show_list(targets, "camp_table", p.currency)
        _downloads(targets, _file_stem(f"campaign-{dataset}-{as_of}"), "camp_dl",
                   {"campaign": spec.to_dict(), "dataset": dataset, "as_of": str(as_of)}, p)

        # -------------------------------------------------------- save
        st.subheader("Save the campaign")
        n1, n2 = st.columns([1, 2])
        name = n1.text_input("Campaign name", key="camp_name", max_chars=200)
        desc = n2.text_area("Description", key="camp_desc", max_chars=5000, height=68)
        if st.button("💾 Save campaign", key="camp_save", type="primary"):
            try:
                to_save = camp.CampaignSpec.from_dict({
                    **spec.to_dict(), "name": name, "description": desc,
                    "response_rate": rate_pct / 100.0, "value_per_response": float(per_response),
                }).validated()
                cid = camp.save_campaign(wh, to_save, targets)
                st.success(f"Saved the campaign “{widgets.md_escape(name.strip())}” (id {cid}, "
                           f"{len(targets):,} customers).", icon="✅")
            except ValueError as exc:
                _error(exc, "Could not save the campaign")

@st.fragment
def _recommend_holdout(dataset: str, as_of) -> None:
    """The recommenders' holdout test (a fragment: its controls rerun only this part)."""
    version = cache.version(dataset).data
    with st.expander("📏 How good are the recommendations? (holdout test)"):
        h1, h2 = st.columns([1, 2])
        holdout_days = h1.number_input("Holdout (last days before the as-of day)", min_value=7, max_value=365,
                                       value=90, step=1, key="camp_holdout_days")
        split = as_of - dt.timedelta(days=int(holdout_days) - 1)
        h2.caption(f"Both recommenders learn from events before {formatting.date(split)}; each customer who then bought items "
                   f"new to them up to {formatting.date(as_of)} gets 10 recommendations, compared with what they bought "
                   "(precision@10 = hits / 10, recall@10 = hits / items bought). Popularity (the most bought "
                   "items) is the baseline to beat.")
        if st.toggle("Run the holdout test", key="camp_holdout_run"):
            try:
                ev = cache.recommend_holdout(dataset, split, as_of + dt.timedelta(days=1), 10)
            except ValueError as exc:
                _error(exc, "The recommenders cannot be evaluated")
            else:
                cols = ["label", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k", "coverage", "customers",
                        "model"]
                st.dataframe(widgets.as_percent(ev[[c for c in cols if c in ev.columns]], RECOMMENDER_RATES),
                             hide_index=True, key="camp_holdout_table",
                             column_config={
                                 **_recommender_columns(),
                                 "model": None,
                             })
                byname = ev.set_index("model")
                if {"item_cf", "popularity"} <= set(byname.index):
                    better = byname.loc["item_cf", "precision_at_k"] > byname.loc["popularity", "precision_at_k"]
                    st.caption("Item-based CF " + ("beats" if better else "does not beat")
                               + " the popularity baseline on precision@10 over "
                               f"{int(byname.loc['item_cf', 'customers']):,} customers.")
                val = ev.attrs.get("validation")
                if val:
                    r = val["ratios_vs_popularity"].get(val["winner"], {})
                    st.caption(f"Chosen on the validation window {val['windows'][0][0]} .. {val['windows'][0][1]} "
                               f"(before the holdout, never on it): **{widgets.md_escape(val['label'])}**, "
                               f"precision@10 x{r.get('precision', float('nan')):.2f} and recall@10 "
                               f"x{r.get('recall', float('nan')):.2f} of popularity there.")
                for note in ev.attrs.get("notes", []):
                    st.caption("ℹ️ " + widgets.md_escape(note))
        _full_comparison(dataset, version, split, as_of)


# ------------------------------------------------------------------------ saved
def _tab_saved(p: _Page) -> None:
    """The saved campaigns: their exact lists, downloads, delete."""
    wh, dataset = p.wh, p.dataset
    saved = camp.list_campaigns(wh, dataset)
    if saved.empty:
        st.info("No saved campaigns for this dataset yet: build one and save it.", icon="🗂️")
    else:
        # st.dataframe shows every cell as plain text (names and descriptions are user text)
        shown = saved.assign(ranking=saved["ranking"].map(lambda r: camp.RANKINGS.get(r, r)),
                             as_of=saved["as_of"].map(formatting.date),
                             has_outcomes=saved["has_outcomes"].map({True: "yes", False: "no"}))
        st.dataframe(shown.drop(columns=["dataset"]).rename(columns=SAVED_TITLES), hide_index=True,
                     key="camp_saved_table", width="stretch", column_config={
                         SAVED_TITLES["created_at"]: st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm"),
                         **{SAVED_TITLES[c]: st.column_config.NumberColumn(format="%,d")
                            for c in ("n_eligible", "n_targets", "n_treatment", "n_control")}})
        ids = [int(i) for i in saved["id"]]
        labels = {int(r["id"]): f"{int(r['id'])}: {r['name']}" for _, r in saved.iterrows()}
        pick = st.selectbox("Campaign", ids, key="camp_saved_pick", format_func=labels.get)
        try:
            info = camp.get_campaign(wh, pick)
            stored = cache.stored_campaign_targets(dataset, pick)
        except ValueError as exc:
            _error(exc, "Could not read the campaign")
        else:
            st.markdown(f"**{widgets.md_escape(info['name'])}** · {len(stored):,} customers "
                        f"({info['n_treatment']:,} contacted, {info['n_control']:,} control) · as of {info['as_of']}"
                        f" · saved {widgets.md_escape(info['created_at'])}")
            if info.get("description"):
                st.text(info["description"])
            _show_list(stored, "camp_saved_targets", p.currency)
            stored_page = dataclasses.replace(p, as_of=pd.Timestamp(info["as_of"]).date())
            _downloads(stored, _file_stem(f"campaign-{pick}-{info['name']}"), "camp_saved_dl",
                       {"campaign_id": pick, "campaign": info["spec"], "as_of": info["as_of"]}, stored_page)
            if st.button("🗑️ Delete…", key="camp_delete"):
                st.session_state[DELETE_KEY] = pick
            if st.session_state.get(DELETE_KEY) == pick:
                st.warning(f"Delete the campaign “{widgets.md_escape(info['name'])}” with its list and outcomes? "
                           "This cannot be undone.", icon="⚠️")
                y, n = st.columns(2)
                if y.button("Yes, delete", key="camp_delete_yes", type="primary"):
                    try:
                        camp.delete_campaign(wh, pick)
                    except ValueError as exc:
                        _error(exc, "Could not delete")
                    st.session_state.pop(DELETE_KEY, None)
                    st.rerun()
                if n.button("Cancel", key="camp_delete_no"):
                    st.session_state.pop(DELETE_KEY, None)
                    st.rerun()

# ------------------------------------------------------------------------ read-out
def _tab_readout(p: _Page) -> None:
    """Upload outcomes and read the uplift (or the outcomes kept with the campaign)."""
    wh, dataset = p.wh, p.dataset
    st.markdown("Upload what happened after the campaign: a CSV with the columns `customer_id`, `converted` "
                "(1/0, true/false, yes/no) and `revenue`, one row per customer of the list (contacted and "
                "control). Customers without a row count as not converted.")
    saved_r = camp.list_campaigns(wh, dataset)
    if saved_r.empty:
        st.info("Save a campaign first (Build tab).", icon="🗂️")
    else:
        ids_r = [int(i) for i in saved_r["id"]]
        labels_r = {int(r["id"]): f"{int(r['id'])}: {r['name']}" for _, r in saved_r.iterrows()}
        cid = st.selectbox("Campaign", ids_r, key="camp_readout_pick", format_func=labels_r.get)
        up = st.file_uploader("Outcomes CSV", type=["csv"], key="camp_outcomes")
        result = None
        if up is not None:
            try:
                outcomes, result = cache.uploaded_readout(dataset, cid, up.file_id, up.getvalue())
            except ValueError as exc:
                _error(exc, "The outcomes file cannot be used")
            else:
                if st.button("💾 Keep these outcomes with the campaign", key="camp_outcomes_save"):
                    try:
                        camp.save_outcomes(wh, cid, outcomes)
                        st.success("Outcomes saved: the read-out is kept with the campaign.", icon="✅")
                    except ValueError as exc:
                        _error(exc, "Could not save the outcomes")
        else:
            try:
                result = cache.stored_campaign_readout(dataset, cid)
            except ValueError as exc:
                _error(exc, "Could not read the stored outcomes")
            if result is not None:
                st.caption(f"Showing the outcomes saved with this campaign ({result.get('uploaded_at') or ''}).")
            else:
                st.info("No outcomes for this campaign yet: upload a file.", icon="📥")
        if result is not None:
            _show_readout(result, p.currency)


def main() -> None:
    st.title("🎯 Campaigns")
    p = _load()
    tab_build, tab_saved, tab_readout = st.tabs(["🛠️ Build", "🗂️ Saved campaigns", "📊 Read-out"])
    with tab_build:
        _tab_build(p)
    with tab_saved:
        _tab_saved(p)
    with tab_readout:
        _tab_readout(p)


main()
