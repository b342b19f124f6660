"""A report snapshot as one self-contained HTML file, and its charts as Plotly figures.

The file carries plotly.js inline (``plotly.offline.get_plotlyjs()``): no ``<script
src>``, no stylesheet, font or image from elsewhere, no fetch, so it opens offline in
any browser and makes no network request. A Content-Security-Policy meta tag
(``default-src 'none'``; inline scripts and styles only; ``data:`` images) enforces
that as defence in depth.

User text (segment names and descriptions, categories, item ids, campaign names,
anything that came from a file) is escaped everywhere:

* in the HTML with :func:`html.escape`;
* in chart labels too: Plotly renders a subset of HTML in its text (``<b>``,
  ``<br>``, ``<a href>``, ``<span style>``... and some entities). Checked in Chromium
  with plotly.js 4: a raw ``<b>x</b>`` shows bold ``x``, a raw ``<a href=...>x</a>``
  becomes a link element, a raw ``a &lt; b`` shows ``a < b``; an unknown tag such as
  ``<img ...>`` happens to stay text. So every label, legend name and category goes
  through :func:`chart_text`: ``&``, ``<``, ``>`` as entities (``&amp;``, ``&lt;``,
  ``&gt;``), which Plotly decodes and shows as those characters, so the text reads
  exactly as typed. Quotes stay as they are: Plotly does not decode ``&quot;`` (it would
  show the entity) and, with no ``<`` left, a quote cannot be part of a tag.
  ``tests/browser/test_report_flow.py`` checks the legends and axis labels in a browser;
* the data (the snapshot and the figures) sits in ``<script type="application/json">``
  blocks with ``<``, ``>``, ``&`` written as ``\\u003c``, ``\\u003e``, ``\\u0026``, so
  a ``</script>`` inside user text cannot end the block.
"""
from __future__ import annotations

import contextlib
import contextvars
import html
import json
from typing import Any, Iterable

from analytics import formatting
from analytics.periods import PARTIAL_DASH, PARTIAL_PATTERN

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

SEGMENT_COLOR = "#2563eb"
ALL_COLOR = "#9ca3af"


# ----------------------------------------------------------------- item names and notes
NO_CATEGORIES = "No categories in this dataset: the loaded file had no category column."
CODES_ONLY = ("This dataset has item codes only: no item names or descriptions were loaded (map a name or "
              "Description column when loading to see names here).")


def item_label(row: dict) -> str:
    """A top item as people read it: its loaded name (or description), else its code."""
    return str(row.get("name") or row["item_id"])


def items_note(snapshot: dict) -> str | None:
    """Why the top items show codes (None when they have names, or there are no items)."""
    if not snapshot.get("top_items"):
        return None
    if snapshot.get("items_named") or any(r.get("name") for r in snapshot["top_items"]):
        return None
    return CODES_ONLY


def categories_note(snapshot: dict) -> str | None:
    """Said in place of the top categories when the dataset has none."""
    return NO_CATEGORIES if not snapshot.get("top_categories") else None


# ----------------------------------------------------------------- escaping and formats
def esc(value: Any) -> str:
    """HTML-escape anything for the HTML document (quotes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def chart_text(value: Any) -> str:
    """Text for a Plotly label: ``&``, ``<``, ``>`` as entities, so Plotly shows it literally."""
    return html.escape("" if value is None else str(value), quote=False)


def json_for_script(obj: Any) -> str:
    """JSON safe to put inside ``<script type="application/json">`` (no ``<``, ``>``, ``&``)."""
    text = json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_CURRENCY: contextvars.ContextVar[str | None] = contextvars.ContextVar("report_currency", default=None)


@contextlib.contextmanager
def report_currency(snapshot: dict):
    """Within the block, :func:`fmt_money` writes amounts in the snapshot's currency."""
    token = _CURRENCY.set(snapshot.get("currency"))
    try:
        yield
    finally:
        _CURRENCY.reset(token)


def fmt_money(x, currency: str | None = None) -> str:
    """Money in the report's currency (``€1,234.50``; ``€1.23 M`` from a million)."""
    return formatting.money(x, currency or _CURRENCY.get(), compact=True)


def fmt_pct(x, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * float(x):.{digits}f} %"


def fmt_num(x, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def fmt_unit(x, unit: str) -> str:
    if unit == "money":
        return fmt_money(x)
    if unit == "ratio":
        return fmt_pct(x)
    if unit == "count":
        return fmt_num(x, 2)
    return fmt_num(x, 1)


def value_rows(snapshot: dict) -> list[tuple[str, str, str]]:
    """(metric, segment, all customers) rows of the value section, formatted."""
    seg, all_ = snapshot["value"]["segment"], snapshot["value"]["all"]
    src = snapshot["value"].get("expected_clv_source")
    rows = [
        ("Customers", fmt_num(seg["customers"]), fmt_num(all_["customers"])),
        ("Net revenue", fmt_money(seg["net_revenue"]), fmt_money(all_["net_revenue"])),
        ("Share of net revenue", fmt_pct(seg["revenue_share"]), fmt_pct(all_["revenue_share"])),
        ("Avg net revenue per customer", fmt_money(seg["avg_net_revenue"]), fmt_money(all_["avg_net_revenue"])),
        ("Avg CLV (formula)", fmt_money(seg["avg_clv"]), fmt_money(all_["avg_clv"])),
        (f"Avg expected CLV ({src})" if src else "Avg expected CLV", fmt_money(seg["avg_expected_clv"]),
         fmt_money(all_["avg_expected_clv"])),
        ("Avg order value (revenue per purchase day)", fmt_money(seg["avg_order_value"]), fmt_money(all_["avg_order_value"])),
        ("Purchase frequency (purchase days per customer)", fmt_num(seg["purchase_frequency"]),
         fmt_num(all_["purchase_frequency"])),
        ("Repeat rate (2+ purchase days)", fmt_pct(seg["repeat_rate"]), fmt_pct(all_["repeat_rate"])),
    ]
    return rows


def _pp(x) -> str:
    return "–" if x is None else f"{100 * float(x):+.1f} pts"


def _interval(ci, fmt) -> str:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return "–"
    return f"{fmt(ci[0])} to {fmt(ci[1])}"


def _p(x) -> str:
    return "–" if x is None else (f"{float(x):.3f}" if float(x) >= 0.001 else "< 0.001")


def readout_rows(readout: dict) -> tuple[list[tuple[str, str]], list[dict]]:
    """A campaign read-out (:func:`analytics.campaigns.readout`) as readable (measure, value)
    rows of its overall figures and counts, and formatted per-segment rows."""
    o = readout.get("overall") if isinstance(readout.get("overall"), dict) else {}
    pairs: list[tuple[str, str]] = []
    if o:
        pairs += [
            ("Customers treated / held out", f"{fmt_num(o.get('n_treatment'))} / {fmt_num(o.get('n_control'))}"),
            ("Conversion: treatment vs control",
             f"{fmt_pct(o.get('conversion_t'))} vs {fmt_pct(o.get('conversion_c'))}"),
            ("Uplift in conversion (95 % interval)",
             f"{_pp(o.get('uplift_conversion'))} ({_interval(o.get('ci95'), _pp)}), p = {_p(o.get('p_value'))}"),
            ("Revenue per customer: treatment vs control",
             f"{fmt_money(o.get('revenue_per_customer_t'))} vs {fmt_money(o.get('revenue_per_customer_c'))}"),
            ("Uplift in revenue per customer (95 % interval)",
             f"{fmt_money(o.get('uplift_revenue'))} ({_interval(o.get('ci95_revenue'), fmt_money)}), "
             f"p = {_p(o.get('p_value_revenue'))}"),
        ]
        if o.get("warning"):
            pairs.append(("Warning", str(o["warning"])))
    labels = {"n_outcomes": "Outcome rows", "n_matched": "Outcomes matched to the list",
              "n_missing": "Listed customers without an outcome", "unknown_count": "Unknown customer ids"}
    for key, label in labels.items():
        if key in readout:
            pairs.append((label, fmt_num(readout[key])))
    if readout.get("unknown_ids"):
        pairs.append(("Unknown ids (first ones)", ", ".join(map(str, readout["unknown_ids"][:10]))))
    if readout.get("method"):
        pairs.append(("Method", str(readout["method"])))
    per = []
    for r in readout.get("per_segment") or []:
        if not isinstance(r, dict):
            continue
        per.append({"Segment": str(r.get("segment", "")),
                    "Treated / held out": f"{fmt_num(r.get('n_treatment'))} / {fmt_num(r.get('n_control'))}",
                    "Conversion t vs c": f"{fmt_pct(r.get('conversion_t'))} vs {fmt_pct(r.get('conversion_c'))}",
                    "Uplift (95 % interval)": f"{_pp(r.get('uplift_conversion'))} ({_interval(r.get('ci95'), _pp)})",
                    "p": _p(r.get("p_value")),
                    "Revenue uplift per customer": fmt_money(r.get("uplift_revenue")),
                    "Note": str(r.get("warning") or "")})
    return pairs, per


# ----------------------------------------------------------------- figures
def _layout(**kw) -> dict:
    base = {"height": 340, "margin": {"l": 60, "r": 30, "t": 40, "b": 50},
            "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
            "paper_bgcolor": "white", "plot_bgcolor": "white", "showlegend": True,
            "legend": {"orientation": "h", "y": -0.2}}
    base.update(kw)
    return base


def partial_months(trend: dict) -> list[str]:
    """``""`` for whole months, ``"5 of 31 days"`` for months the data cover only in part (the first
    month of the data, the as-of month); older snapshots only know about the last month."""
    months = trend.get("months") or []
    if "covered_days" in trend and len(trend["covered_days"]) == len(months):
        return [f"{c} of {d} days" if c < d else "" for c, d in zip(trend["covered_days"], trend["days"])]
    out = [""] * len(months)
    if months and trend.get("partial_last_month"):
        out[-1] = "partial"
    return out


def _trend_figure(tr: dict, name: str, currency: str | None) -> dict:
    """Monthly active customers (bars) and net revenue (line); partial months hatched and dashed,
    with their day count in the hover and above the bar."""
    months = tr["months"]
    notes = partial_months(tr)
    part = [bool(n) for n in notes]
    suffix = [f" (partial: {n})" if n else "" for n in notes]
    rev = list(tr["revenue"])
    whole = [None if p else v for p, v in zip(part, rev)]
    dashed_x, dashed_y = [], []
    for i, p in enumerate(part):
        if not p:
            continue
        for j in (i - 1, i + 1):
            if 0 <= j < len(months) and not part[j]:
                a, b = sorted((i, j))
                dashed_x += [months[a], months[b], None]
                dashed_y += [rev[a], rev[b], None]
    prefix = chart_text(formatting.resolve_currency(currency).prefix) if formatting.resolve_currency(currency) else ""
    data = [
        {"type": "bar", "x": months, "y": tr["active_customers"], "name": name + " · active customers",
         "customdata": suffix,
         "marker": {"color": SEGMENT_COLOR, "opacity": [0.45 if p else 1.0 for p in part],
                    "pattern": {"shape": [PARTIAL_PATTERN if p else "" for p in part], "fillmode": "overlay",
                                "fgcolor": "#333333", "size": 6}},
         "hovertemplate": "%{x}: %{y:,} active%{customdata}<extra></extra>"},
        {"type": "scatter", "mode": "lines+markers", "x": months, "y": whole, "yaxis": "y2",
         "name": name + " · net revenue", "line": {"color": "#f59e0b"}, "customdata": suffix,
         "hovertemplate": "%{x}: " + prefix + "%{y:,.2f}%{customdata}<extra></extra>"},
    ]
    if dashed_x:
        data.append({"type": "scatter", "mode": "lines", "x": dashed_x, "y": dashed_y, "yaxis": "y2",
                     "line": {"color": "#f59e0b", "dash": PARTIAL_DASH}, "hoverinfo": "skip", "showlegend": False,
                     "name": name + " · net revenue (partial month)"})
        data.append({"type": "scatter", "mode": "markers", "x": [m for m, p in zip(months, part) if p],
                     "y": [v for v, p in zip(rev, part) if p], "yaxis": "y2", "showlegend": False,
                     "name": name + " · net revenue (partial month)",
                     "marker": {"color": "white", "size": 8, "line": {"color": "#f59e0b", "width": 2}},
                     "customdata": [s_ for s_, p in zip(suffix, part) if p],
                     "hovertemplate": "%{x}: " + prefix + "%{y:,.2f}%{customdata}<extra></extra>"})
    annotations = [{"x": m, "y": 1.0, "yref": "paper", "text": f"partial: {n}", "showarrow": False,
                    "yanchor": "bottom", "font": {"size": 11, "color": "#555555"}}
                   for m, n in zip(months, notes) if n]
    return {
        "data": data,
        "layout": _layout(title={"text": "Monthly active customers and net revenue"},
                          yaxis={"title": {"text": "Active customers"}, "rangemode": "tozero", "tickformat": ",d"},
                          yaxis2={"title": {"text": "Net revenue"}, "overlaying": "y", "side": "right",
                                  "rangemode": "tozero", "showgrid": False, "tickprefix": prefix,
                                  "tickmode": "auto", "nticks": 6, "tickformat": "~s", "automargin": True},
                          # the months as the table under the chart writes them (Jan 2024, not 2024-01)
                          xaxis={"type": "category", "tickmode": "array", "tickvals": months,
                                 "ticktext": [month_label(m) for m in months]},
                          annotations=annotations),
    }


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_label(month: str) -> str:
    """``"2024-01"`` as ``"Jan 2024"`` (anything else as it is)."""
    year, _, mm = str(month).partition("-")
    return f"{_MONTHS[int(mm) - 1]} {year}" if mm.isdigit() and 1 <= int(mm) <= 12 and year.isdigit() else str(month)


def report_figures(snapshot: dict) -> dict[str, dict]:
    """The report's charts as Plotly figure dicts (``data`` + ``layout``), keyed by a
    chart id; every piece of user text in them is escaped with :func:`chart_text`."""
    with report_currency(snapshot):
        return _report_figures(snapshot)


def _report_figures(snapshot: dict) -> dict[str, dict]:
    name = chart_text(snapshot["subject"]["name"])
    figs: dict[str, dict] = {}
    tr = snapshot["trend"]
    if tr["months"]:
        figs["trend"] = _trend_figure(tr, name, snapshot.get("currency"))
    prof = [p for p in snapshot["profile"] if p.get("ratio") is not None]
    if prof:
        figs["profile"] = {
            "data": [{"type": "bar", "orientation": "h", "y": [chart_text(p["label"]) for p in prof],
                      "x": [round(100 * p["ratio"], 1) for p in prof], "name": name,
                      "marker": {"color": SEGMENT_COLOR},
                      "hovertemplate": "%{y}: %{x:.0f} (all customers = 100)<extra></extra>"}],
            "layout": _layout(title={"text": "Profile: segment mean, all customers = 100"},
                              height=max(300, 28 * len(prof) + 80), showlegend=False,
                              yaxis={"autorange": "reversed", "automargin": True},
                              shapes=[{"type": "line", "x0": 100, "x1": 100, "yref": "paper", "y0": 0, "y1": 1,
                                       "line": {"color": ALL_COLOR, "dash": "dash"}}]),
        }
    conc = snapshot["concentration"]
    figs["lorenz"] = {
        "data": [
            {"type": "scatter", "mode": "lines", "x": conc["lorenz"]["customer_share"],
             "y": conc["lorenz"]["value_share"], "name": name, "line": {"color": SEGMENT_COLOR}},
            {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "equal value",
             "line": {"color": ALL_COLOR, "dash": "dash"}},
        ],
        "layout": _layout(title={"text": "Value concentration (Lorenz curve of net revenue)"},
                          xaxis={"title": {"text": "share of customers (lowest value first)"}, "tickformat": ".0%"},
                          yaxis={"title": {"text": "share of net revenue"}, "tickformat": ".0%"}),
    }
    cur = formatting.resolve_currency(snapshot.get("currency"))
    prefix = chart_text(cur.prefix) if cur else ""
    for key, label, title in (("top_categories", "category", "Top categories by net revenue"),
                              ("top_items", "item_id", "Top items by net revenue")):
        rows = snapshot[key]
        if rows:
            shown = [str(r[label]) for r in rows]
            if key == "top_items":  # names (or descriptions) loaded with the data, long ones cut for the axis
                shown = [t if len(t) <= 60 else t[:59] + "…" for t in map(item_label, rows)]
            figs[key] = {
                "data": [{"type": "bar", "orientation": "h", "y": [chart_text(t) for t in shown],
                          "x": [r["revenue"] for r in rows], "name": name, "marker": {"color": SEGMENT_COLOR},
                          "hovertemplate": "%{y}: " + prefix + "%{x:,.2f}<extra></extra>"}],
                "layout": _layout(title={"text": title}, showlegend=False, height=max(300, 26 * len(rows) + 80),
                                  xaxis={"tickprefix": prefix, "tickformat": "~s"},
                                  yaxis={"autorange": "reversed", "automargin": True, "type": "category"}),
            }
    mix = snapshot.get("rfm_mix") or []
    if mix:
        labels = [chart_text(r["rfm_segment"]) for r in mix]
        figs["rfm_mix"] = {
            "data": [{"type": "bar", "x": labels, "y": [r["segment_share"] for r in mix], "name": name,
                      "marker": {"color": SEGMENT_COLOR}},
                     {"type": "bar", "x": labels, "y": [r["all_share"] for r in mix], "name": "All customers",
                      "marker": {"color": ALL_COLOR}}],
            "layout": _layout(title={"text": "RFM segments"}, barmode="group",
                              xaxis={"type": "category", "automargin": True}, yaxis={"tickformat": ".0%"}),
        }
    return figs


# ----------------------------------------------------------------- HTML
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px;overflow-wrap:anywhere}h2{font-size:1.2rem;margin:28px 0 8px}
.meta,.note{color:#6b7280;font-size:.9rem}
section{background:white;border:1px solid #e5e7eb;border-radius:8px;padding:16px 20px;margin:16px 0}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
summary{cursor:pointer;color:#374151;margin:8px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px;background:#f9fafb}
.card .v{font-size:1.3rem;font-weight:600}.card .l{color:#6b7280;font-size:.8rem}
.chart{min-height:300px}
.desc{white-space:pre-wrap;overflow-wrap:anywhere}
.warning{background:#fef3c7;border-left:4px solid #d97706;padding:6px 10px}
"""

_BOOT = """
(function () {
  var figs = JSON.parse(document.getElementById("report-figures").textContent);
  Object.keys(figs).forEach(function (id) {
    var el = document.getElementById("chart-" + id);
    if (el && window.Plotly) {
      Plotly.newPlot(el, figs[id].data, figs[id].layout,
                     {displaylogo: false, responsive: true, showLink: false, showSendToCloud: false,
                      typesetMath: false});
    }
  });
})();
"""


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]], numeric: Iterable[int] = ()) -> str:
    num = set(numeric)
    head = "".join(f'<th class="n">{esc(h)}</th>' if i in num else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{esc(c)}</td>' if i in num else f"<td>{esc(c)}</td>"
                         for i, c in enumerate(r)) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _card(label: str, value: str) -> str:
    return f'<div class="card"><div class="v">{esc(value)}</div><div class="l">{esc(label)}</div></div>'


def _chart(figs: dict, key: str) -> str:
    return f'<div class="chart" id="chart-{esc(key)}"></div>' if key in figs else ""


def render_html(snapshot: dict, *, plotly_js: str | None = None) -> str:
    """The report as one self-contained HTML document (money in the snapshot's currency)."""
    with report_currency(snapshot):
        return _render_html(snapshot, plotly_js=plotly_js)


def _render_html(snapshot: dict, *, plotly_js: str | None = None) -> str:
    """One self-contained HTML document for ``snapshot`` (from ``build_report``):
    plotly.js inline (``plotly_js``: the library text, default
    ``plotly.offline.get_plotlyjs()``), no network request, all user text escaped."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    # the library goes into a <script> element: it must not contain its end tag
    plotly_js = plotly_js.replace("</script", "<\\/script")
    s = snapshot
    subj = s["subject"]
    seg, all_ = s["value"]["segment"], s["value"]["all"]
    figs = report_figures(s)
    parts: list[str] = []
    add = parts.append
    add("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
    add(f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">')
    add('<meta name="viewport" content="width=device-width, initial-scale=1">')
    add('<meta name="referrer" content="no-referrer">')
    add(f"<title>{esc(s['title'])}</title><style>{_STYLE}</style>")
    add(f"<script>{plotly_js}</script></head><body><main>")
    add(f'<header><h1 id="report-title">{esc(s["title"])}</h1>')
    kind = "Saved segment" if s["kind"] == "segment" else "Saved campaign"
    add(f'<p class="meta">{esc(kind)} · dataset {esc(s["dataset"])} · data as of '
        f'{esc(formatting.date(s["as_of"]))} · report made {esc(formatting.date_time(s["created_at"]))} UTC</p>'
        '</header>')

    add("<section><h2>Definition</h2>")
    add(f'<p><strong>Name:</strong> <span id="subject-name">{esc(subj["name"])}</span></p>')
    if subj.get("description"):
        add(f'<p class="desc" id="subject-description">{esc(subj["description"])}</p>')
    add(f'<p><strong>Who is in it:</strong> <span id="subject-definition">{esc(subj["definition_text"])}</span></p>')
    if subj.get("ranking_warning"):
        add(f'<p class="warning" id="ranking-warning"><strong>Not ranked:</strong> {esc(subj["ranking_warning"])}; '
            'no expected return or ROI is reported for this list.</p>')
    add("</section>")

    add("<section><h2>Size and value</h2><div class=\"cards\">")
    add(_card("customers", f"{s['size']['customers']:,} ({fmt_pct(s['size']['share'])} of {s['size']['all_customers']:,})"))
    add(_card("net revenue", f"{fmt_money(seg['net_revenue'])} ({fmt_pct(seg['revenue_share'])} of all)"))
    add(_card("avg CLV (formula)", fmt_money(seg["avg_clv"])))
    add(_card("avg expected CLV", fmt_money(seg["avg_expected_clv"])))
    add(_card("avg order value", fmt_money(seg["avg_order_value"])))
    add(_card("purchase days per customer", fmt_num(seg["purchase_frequency"])))
    add("</div>")
    add(_table(["", "This segment", "All customers"], value_rows(s), numeric=(1, 2)))
    add("</section>")

    tr = s["trend"]
    add("<section><h2>Trend</h2>")
    add(_chart(figs, "trend"))
    if tr["months"]:
        partial = [f"{m} ({n})" for m, n in zip(tr["months"], partial_months(tr)) if n]
        note = (". Partial months (drawn hatched and dashed), with the days of data they hold: " + ", ".join(partial)
                if partial else "")
        add(f'<p class="note">Members of the segment (as of {esc(s["as_of"])}) active per month: any event; '
            f'buyers: a purchase; net revenue: purchases minus refunds{esc(note)}.</p>')
        add("<details><summary>Monthly figures</summary>")
        add(_table(["Month", "Active", "Buyers", "Net revenue", "All active", "All net revenue"],
                   [(m, fmt_num(a), fmt_num(b), fmt_money(r), fmt_num(aa), fmt_money(ar))
                    for m, a, b, r, aa, ar in zip(tr["months"], tr["active_customers"], tr["buyers"], tr["revenue"],
                                                  tr["all_active_customers"], tr["all_revenue"])],
                   numeric=(1, 2, 3, 4, 5)))
        add("</details>")
    add("</section>")

    add("<section><h2>Profile against all customers</h2>")
    add(_chart(figs, "profile"))
    add(_table(["Feature", "This segment", "All customers", "Index (all = 100)"],
               [(p["label"], fmt_unit(p["segment"], p["unit"]), fmt_unit(p["all"], p["unit"]),
                 "–" if p["ratio"] is None else f"{100 * p['ratio']:.0f}") for p in s["profile"]],
               numeric=(1, 2, 3)))
    if s.get("rfm_mix"):
        add(_chart(figs, "rfm_mix"))
        add(_table(["RFM segment", "Share in this segment", "Share of all customers"],
                   [(r["rfm_segment"], fmt_pct(r["segment_share"]), fmt_pct(r["all_share"])) for r in s["rfm_mix"]],
                   numeric=(1, 2)))
    add("</section>")

    c = s["concentration"]
    add("<section><h2>Value concentration</h2>")
    add(f'<p>The top 10 % of the segment\'s customers hold {esc(fmt_pct(c["top10_share"]))} of its net revenue, '
        f'the top 20 % hold {esc(fmt_pct(c["top20_share"]))} (Gini {esc(fmt_num(c["gini"]))}).</p>')
    add(_chart(figs, "lorenz"))
    add("</section>")

    add("<section><h2>Top categories and items</h2>")
    if s["top_categories"]:
        add(_chart(figs, "top_categories"))
        add(_table(["Category", "Net revenue", "Buyers", "Share of segment revenue", "Share of all revenue"],
                   [(r["category"], fmt_money(r["revenue"]), fmt_num(r["buyers"]), fmt_pct(r["share"]),
                     fmt_pct(r["all_share"])) for r in s["top_categories"]], numeric=(1, 2, 3, 4)))
    elif s["top_items"]:
        add(f'<p class="note">{esc(NO_CATEGORIES)}</p>')
    if s["top_items"]:
        add(_chart(figs, "top_items"))
        if items_note(s):
            add(f'<p class="note">{esc(items_note(s))}</p>')
        if items_note(s):  # codes only: the code is the item
            add(_table(["Item", "Category", "Net revenue", "Buyers", "Share of segment revenue"],
                       [(r["item_id"], r.get("category") or "–", fmt_money(r["revenue"]), fmt_num(r["buyers"]),
                         fmt_pct(r["share"])) for r in s["top_items"]], numeric=(2, 3, 4)))
        else:
            add(_table(["Item", "Code", "Category", "Net revenue", "Buyers", "Share of segment revenue"],
                       [(item_label(r), r["item_id"], r.get("category") or "–", fmt_money(r["revenue"]),
                         fmt_num(r["buyers"]), fmt_pct(r["share"])) for r in s["top_items"]], numeric=(3, 4, 5)))
    if not s["top_categories"] and not s["top_items"]:
        add('<p class="note">The data has no categories or item ids.</p>')
    add("</section>")

    p = s.get("predictor")
    if p:
        add("<section><h2>Predictor</h2>")
        add(f'<p>Published predictions: model {esc(p.get("title") or p["model"])} of backtest run {esc(p["run_id"])}, '
            f'scored as of {esc(formatting.date(p["as_of"]))} for the next {esc(p["horizon_days"])} days. Mean predicted value: '
            f'{esc(fmt_money(p.get("segment_predicted_value")))} in the segment, '
            f'{esc(fmt_money(p.get("all_predicted_value")))} among all; mean churn probability '
            f'{esc(fmt_pct(p.get("segment_churn_probability")))} vs {esc(fmt_pct(p.get("all_churn_probability")))}.</p>')
        metric_names = sorted({k for m in p["models"] for k in m["metrics"]})
        if metric_names:
            add("<p class=\"note\">Backtest metrics of the run's models (the published one marked):</p>")
            add(_table(["Model"] + metric_names,
                       [[(m.get("title") or m["model"]) + (" (published)" if m["published"] else "")]
                        + [fmt_num(m["metrics"].get(k), 4) for k in metric_names] for m in p["models"]],
                       numeric=range(1, len(metric_names) + 1)))
        add("</section>")

    if s.get("campaigns"):
        add("<section><h2>Campaign results</h2>")
        for camp in s["campaigns"]:
            pairs, per = readout_rows(camp["readout"])
            add(f"<h3>{esc(camp['name'])}</h3>")
            add(_table(["Measure", "Value"], pairs))
            if per:
                cols = list(per[0].keys())
                add(_table(cols, [[r[k] for k in cols] for r in per]))
        add("</section>")

    if s.get("notes"):
        add("<section><h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in s["notes"]) + "</ul></section>")
    add(f'<p class="note">Made with Valuescope. A snapshot: the numbers are those of the data as of '
        f'{esc(s["as_of"])}, recorded when the report was made, and do not change.</p>')
    add("</main>")
    add(f'<script type="application/json" id="report-snapshot">{json_for_script(s)}</script>')
    add(f'<script type="application/json" id="report-figures">{json_for_script(figs)}</script>')
    add(f"<script>{_BOOT}</script></body></html>\n")
    return "".join(parts)
