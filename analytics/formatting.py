"""Numbers and column names as people read them: money in the dataset's currency, rates as
percentages, dates as dates, human column titles — one place used by pages, reports and exports.

Conventions (one English number style everywhere, whatever the currency):

* money: the currency's sign or code before the amount, thousands separators and the
  currency's minor units (2 for most, 0 for JPY, 3 for KWD): ``€1,670.23``, ``-£12.50``,
  ``CHF 1,000.00``, ``¥12,000``; without a currency the bare number (``1,670.23``).
  Rounding never shows ``-0.00``. ``compact=True`` writes ``€1.23 M`` / ``€4.56 bn`` from a
  million up (KPI tiles);
* rates (fractions 0-1) as percentages with one decimal: ``12.3 %``;
* counts with thousands separators; dates as ``31 Dec 2025`` (no ``00:00:00``);
* missing values as an en dash ``–``, or a phrase that says why (``not enough history``).

Tables keep machine column names in exports (``valuescope score --out``, campaign
files for analysis) and get human titles on screen (:func:`column_title`) or in a
"for people" header row (:func:`for_people`). :func:`table_columns` returns, per
column, the title, its kind and a printf format (the dashboard turns it into a
Streamlit column configuration; nothing here imports streamlit).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from analytics.currency import Currency, get as get_currency

MISSING = "–"
NOT_ENOUGH_HISTORY = "not enough history"

KINDS = ("money", "percent", "count", "number", "score", "date", "days", "text")


def resolve_currency(currency: Currency | str | None) -> Currency | None:
    """A :class:`Currency` from a code, a Currency or None (an unknown code gives None)."""
    if currency is None or isinstance(currency, Currency):
        return currency
    return get_currency(currency)


def _missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def minor_units(currency: Currency | str | None) -> int:
    """Decimals of ``currency`` (2 without one)."""
    c = resolve_currency(currency)
    return 2 if c is None else c.minor_units


def money(x: Any, currency: Currency | str | None = None, *, compact: bool = False,
          decimals: int | None = None, missing: str = MISSING) -> str:
    """``x`` as money in ``currency`` (see the module docstring)."""
    if _missing(x):
        return missing
    c = resolve_currency(currency)
    v = float(x)
    if not math.isfinite(v):
        return missing
    d = (c.minor_units if c else 2) if decimals is None else int(decimals)
    prefix = c.prefix if c else ""
    a = abs(v)
    if compact and a >= 1e9:
        body = f"{a / 1e9:,.2f} bn"
    elif compact and a >= 1e6:
        body = f"{a / 1e6:,.2f} M"
    else:
        a = round(a, d)
        body = f"{a:,.{d}f}"
    negative = v < 0 and float(body.replace(",", "").split(" ")[0]) != 0.0
    return ("-" if negative else "") + prefix + body


def money_printf(currency: Currency | str | None = None, decimals: int | None = None) -> str:
    """A printf format (sprintf-js, with ``,`` for thousands) for a money column: ``€%,.2f``."""
    c = resolve_currency(currency)
    d = (c.minor_units if c else 2) if decimals is None else int(decimals)
    prefix = (c.prefix if c else "").replace("%", "%%")
    return f"{prefix}%,.{d}f"


def money_axis(currency: Currency | str | None = None) -> dict:
    """Plotly axis settings for a money axis: the sign as tick prefix, thousands separators.

    Ticks keep up to the currency's minor digits with trailing zeros trimmed (d3's ``~``): ``€150,000``
    on a large axis, ``€0.5`` on a small one, where whole units would label the ticks -1, -1, 0, 1, 1."""
    c = resolve_currency(currency)
    d = c.minor_units if c else 2
    return {"tickprefix": c.prefix if c else "", "tickformat": f",.{d}~f", "hoverformat": f",.{d}f"}


def money_hover(currency: Currency | str | None = None, value: str = "y") -> str:
    """A plotly hovertemplate piece for a money value: ``€%{y:,.2f}``."""
    c = resolve_currency(currency)
    return f"{c.prefix if c else ''}%{{{value}:,.{c.minor_units if c else 2}f}}"


def round_money(values, currency: Currency | str | None = None):
    """Money rounded to the currency's minor units (half to even, as NumPy), ``-0.0`` made ``0.0``;
    a Series stays a Series, a scalar a float, anything else an array."""
    d = minor_units(currency)
    if isinstance(values, pd.Series):
        out = pd.to_numeric(values, errors="coerce").astype(float).round(d)
        return out + 0.0
    if np.ndim(values) == 0:
        return None if _missing(values) else float(np.round(float(values), d)) + 0.0
    return np.round(np.asarray(values, dtype=float), d) + 0.0


#: the printf format (sprintf-js) of a percentage column whose values are already x 100: ``12.3 %``,
#: as :func:`percent` writes one value
PERCENT_PRINTF = "%.1f %%"


def percent(x: Any, decimals: int = 1, *, missing: str = MISSING) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``12.3 %``."""
    if _missing(x):
        return missing
    v = 100.0 * float(x)
    if not math.isfinite(v):
        return missing
    text = f"{v:,.{decimals}f}"
    if float(text.replace(",", "")) == 0.0:
        text = text.lstrip("-")
    return f"{text} %"


def percent_ticks(values=(0.0, 0.25, 0.5, 0.75, 1.0), decimals: int = 0) -> dict:
    """Plotly axis or colorbar ticks at the fractions ``values``, written as :func:`percent` writes
    them (``25 %``; d3's ``.0%`` writes ``25%``): ``tickvals`` and ``ticktext``."""
    vals = [float(v) for v in values]
    return {"tickvals": vals, "ticktext": [percent(v, decimals) for v in vals]}


def percent_axis(top: float, *, most: int = 6) -> dict:
    """Ticks for an axis of fractions from 0 to ``top`` (a round step, at most ``most`` + 1 ticks),
    written as :func:`percent` writes them (``20 %``): ``tickvals`` and ``ticktext``."""
    top = float(top) if top is not None and math.isfinite(float(top)) and float(top) > 0 else 1.0
    steps = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0)
    step = next((s for s in steps if top / s <= most), 1.0)
    n = int(math.floor(top / step + 1e-9)) + 1
    decimals = 0 if step >= 0.01 else 1
    return percent_ticks([round(k * step, 6) for k in range(n + (1 if (n - 1) * step < top - 1e-12 else 0))],
                         decimals)


def month(x: Any, *, missing: str = MISSING) -> str:
    """A month as ``Mar 2025``."""
    if _missing(x):
        return missing
    try:
        return pd.Timestamp(x).strftime("%b %Y")
    except (TypeError, ValueError):
        return str(x)


def integer(x: Any, *, missing: str = MISSING) -> str:
    """A count with thousands separators: ``1,234``."""
    if _missing(x) or not math.isfinite(float(x)):
        return missing
    return f"{int(round(float(x))):,}"


def number(x: Any, decimals: int = 2, *, missing: str = MISSING) -> str:
    """A plain number with thousands separators and ``decimals`` decimals (no ``-0.00``)."""
    if _missing(x) or not math.isfinite(float(x)):
        return missing
    text = f"{float(x):,.{decimals}f}"
    if float(text.replace(",", "")) == 0.0:
        text = text.lstrip("-")
    return text


def _day_text(x: Any, rest: str, missing: str) -> str:
    """``x`` as its day of the month, then ``rest`` (a strftime format); not a time: as written."""
    if _missing(x):
        return missing
    try:
        d = pd.Timestamp(x)
    except (TypeError, ValueError):
        return str(x)
    return f"{d.day} {d.strftime(rest)}"


def date(x: Any, *, missing: str = MISSING) -> str:
    """A day as ``31 Dec 2025`` (times of day are dropped)."""
    return _day_text(x, "%b %Y", missing)


def date_time(x: Any, *, missing: str = MISSING) -> str:
    """A moment as ``4 Dec 2026, 19:01`` (to the minute; no time zone is added or converted)."""
    return _day_text(x, "%b %Y, %H:%M", missing)


def date_range(start: Any, end: Any) -> str:
    """``1 Jan – 31 Mar 2025`` (the year once when both ends share it)."""
    a, b = pd.Timestamp(start), pd.Timestamp(end)
    if a.year == b.year:
        return f"{a.day} {a:%b} – {date(b)}"
    return f"{date(a)} – {date(b)}"


def days(x: Any, *, missing: str = MISSING) -> str:
    """A number of days: ``1 day``, ``12 days``, ``1,200 days``."""
    if _missing(x) or not math.isfinite(float(x)):
        return missing
    n = int(round(float(x)))
    return "1 day" if n == 1 else f"{n:,} days"


# ----------------------------------------------------------------- column titles and kinds
#: machine name -> (title, kind, plain-words help or None). One table for every page and export.
COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "customer_id": ("Customer", "text", None),
    "country": ("Country", "text", None),
    "category": ("Favourite category", "text", None),
    "segment": ("Segment", "text", "The saved segment the customer was selected through."),
    "rfm_segment": ("RFM segment", "text", "A group named from how recently, how often and how much the customer "
                    "bought (R, F and M scores of 1-5)."),
    "cluster": ("Cluster number", "count", None),
    "cluster_name": ("Cluster", "text", "The group of the latest clustering run the customer belongs to."),
    "first_purchase": ("First purchase", "date", None),
    "last_purchase": ("Last purchase", "date", None),
    "first_event": ("First activity", "date", None),
    "last_event": ("Last activity", "date", None),
    "n_orders": ("Orders", "count", None),
    "orders": ("Orders", "count", None),
    "n_views": ("Views", "count", None),
    "n_searches": ("Searches", "count", None),
    "n_carts": ("Cart adds", "count", None),
    "n_purchases": ("Purchase lines", "count", None),
    "n_returns": ("Returns", "count", None),
    "n_reviews": ("Reviews", "count", None),
    "frequency": ("Repeat purchases", "count", "Purchase days after the first one (the BG/NBD model's frequency)."),
    "recency": ("Days from first to last purchase", "number", None),
    "T": ("Days since first purchase", "number", None),
    "tenure": ("Days since first activity", "number", None),
    "time_since_purchase": ("Days since last purchase", "number", None),
    "avg_gap": ("Average days between orders", "number", None),
    "monetary_value": ("Average repeat order value", "money", "The average value of the orders after the first "
                       "(what the Gamma-Gamma spend model learns from)."),
    "total_revenue": ("Revenue", "money", None),
    "revenue": ("Revenue", "money", None),
    "return_revenue": ("Refunds", "money", None),
    "refunds": ("Refunds", "money", None),
    "net_revenue": ("Net revenue", "money", "Purchases minus refunds."),
    "avg_order_value": ("Average order value", "money", None),
    "aov": ("Average order value", "money", None),
    "return_rate": ("Return rate", "percent", None),
    "avg_rating": ("Average rating", "number", None),
    "views_per_order": ("Views per order", "number", None),
    "r_score": ("Recency score (1-5)", "score", "5 = bought most recently."),
    "f_score": ("Frequency score (1-5)", "score", "5 = bought most often."),
    "m_score": ("Money score (1-5)", "score", "5 = spent the most."),
    "rfm_score": ("RFM score (1-5)", "score", "The weighted mean of the recency, frequency and money scores."),
    "behaviour_score": ("Behaviour score (0-100)", "score", "How active the customer is on the site: views, "
                        "searches, cart adds, purchases and reviews, weighted."),
    "clv": ("CLV (formula)", "money", "Average order value × orders per year × margin × the discounted months of "
            "the horizon."),
    "clv_formula": ("CLV (formula)", "money", "Average order value × orders per year × margin × the discounted "
                    "months of the horizon."),
    "clv_bgnbd": ("CLV (BG/NBD model)", "money", "Expected profit over the horizon from the BG/NBD purchase model "
                  "and the Gamma-Gamma spend model, discounted."),
    "expected_clv": ("Expected value", "money", "What the customer is expected to bring over the horizon: a "
                     "published model's prediction when there is one, else the BG/NBD CLV."),
    "predicted_value": ("Predicted value (model)", "money", "Next period's revenue predicted by the published "
                        "model."),
    "expected_value": ("Predicted value (model)", "money", None),
    "expected_purchases": ("Expected orders", "number", "Orders the BG/NBD model expects over the horizon."),
    "expected_spend": ("Expected order value", "money", "The Gamma-Gamma model's expected value of one order."),
    "discounted_revenue": ("Expected revenue (discounted)", "money", None),
    "p_alive": ("Probability still active", "percent", "P(alive): the chance, from the BG/NBD model, that the "
                "customer has not quietly stopped buying."),
    "probability_alive": ("Probability still active", "percent", "P(alive): the chance, from the BG/NBD model, "
                          "that the customer has not quietly stopped buying."),
    "churn_probability": ("Churn risk (model)", "percent", "The published model's chance that the customer buys "
                          "nothing next period."),
    "churn_risk": ("Churn risk", "percent", "The chance that the customer has stopped buying: the published "
                   "model's churn probability, else 1 - P(alive)."),
    "churn_value": ("Value at risk", "money", "Churn risk × expected value: what losing the customer would cost."),
    "rank": ("Rank", "count", None),
    "rank_score": ("Ranking score", "number", None),
    "group": ("Group", "text", "Treatment: contacted. Control: held out at random to measure the uplift."),
    "recommended_items": ("Recommended items", "text", None),
    "customers": ("Customers", "count", None),
    "share": ("Share of customers", "percent", None),
    "size_share": ("Share of customers", "percent", None),
    "revenue_share": ("Share of revenue", "percent", None),
    "value_share": ("Share of value", "percent", None),
    "events": ("Events", "count", None),
    "active_customers": ("Active customers", "count", None),
    "period": ("Period", "date", None),
    "email": ("Email", "text", None),
    # reviews, churn bands, next order and new customers
    "sentiment": ("Sentiment", "number", "The review's tone from -1 (very negative) to +1 (very positive)."),
    "sentiment_mean": ("Review sentiment", "number", "The average tone of the customer's reviews, -1 (very "
                       "negative) to +1 (very positive)."),
    "sentiment_negative_share": ("Negative reviews", "percent", "The share of the customer's reviews that read "
                                 "as negative."),
    "sentiment_latest": ("Latest review sentiment", "number", "The tone of the customer's most recent review."),
    "days_since_negative_review": ("Days since a negative review", "days", None),
    "n_scored_reviews": ("Reviews with a sentiment", "count", None),
    "churn_band": ("Churn risk band", "text", "Low / medium / high: the churn risk cut at the thresholds shown on "
                   "the Value page (repeat buyers only)."),
    "next_order_date": ("Expected next order", "date", "When the purchase model (BG/NBD) expects the customer's "
                        "next order (repeat buyers only)."),
    "days_to_next_order": ("Days to next order", "days", None),
    "first_order_value": ("Predicted value (new customer)", "money", "For a recent first-time buyer: the value "
                          "the first-order model expects over the next six months."),
    "new_customer_segment": ("New-customer group", "text", "The group of a recent first-time buyer, from what "
                             "the first order looked like."),
    "clv_source": ("CLV from", "text", "Formula, or the first-order model for recent first-time buyers."),
}


@dataclass(frozen=True)
class ColumnFormat:
    """How one column reads: ``title``, ``kind`` (one of :data:`KINDS`), ``printf`` (for numbers),
    ``help`` (a tooltip or None)."""

    name: str
    title: str
    kind: str
    printf: str | None = None
    help: str | None = None


def column_title(name: str) -> str:
    """A human title for a machine column name (``n_orders`` -> ``Orders``)."""
    if name in COLUMNS:
        return COLUMNS[name][0]
    text = str(name).replace("_", " ").strip()
    if text.startswith("n "):
        text = text[2:]
    return text[:1].upper() + text[1:] if text else str(name)


def column_help(name: str) -> str | None:
    """The plain-words tooltip of a known column, else None."""
    return COLUMNS[name][2] if name in COLUMNS else None


def column_kind(name: str, series: pd.Series | None = None) -> str:
    """The kind of a column: known names first, else from the values' type."""
    if name in COLUMNS:
        return COLUMNS[name][1]
    if series is not None:
        if pd.api.types.is_datetime64_any_dtype(series):
            return "date"
        if pd.api.types.is_bool_dtype(series):
            return "text"
        if pd.api.types.is_integer_dtype(series):
            return "count"
        if pd.api.types.is_numeric_dtype(series):
            return "number"
    return "text"


def printf_for(kind: str, currency: Currency | str | None = None) -> str | None:
    """The printf format of a kind (None for text and dates)."""
    return {"money": money_printf(currency), "count": "%,d", "number": "%,.2f", "score": "%.1f",
            "days": "%,d"}.get(kind)


def table_columns(frame: pd.DataFrame, currency: Currency | str | None = None,
                  overrides: Mapping[str, str] | None = None) -> dict[str, ColumnFormat]:
    """Per column of ``frame``: title, kind, printf and help (``overrides`` maps a column to a kind)."""
    out = {}
    for col in frame.columns:
        name = str(col)
        kind = (overrides or {}).get(name) or column_kind(name, frame[col])
        out[name] = ColumnFormat(name, column_title(name), kind, printf_for(kind, currency), column_help(name))
    return out


def format_value(value: Any, kind: str, currency: Currency | str | None = None) -> str:
    """One value as text by its kind."""
    if kind == "money":
        return money(value, currency)
    if kind == "percent":
        return percent(value)
    if kind == "count":
        return integer(value)
    if kind == "date":
        return date(value)
    if kind == "days":
        return days(value)
    if kind == "score":
        return number(value, 1)
    if kind == "number":
        return number(value)
    return MISSING if _missing(value) else str(value)


def for_people(frame: pd.DataFrame, currency: Currency | str | None = None, *,
               kinds: Mapping[str, str] | None = None, titles: Mapping[str, str] | None = None,
               drop_empty: bool = True) -> pd.DataFrame:
    """A copy of ``frame`` for people: human titles, money rounded to the currency's minor units
    (with the code in the title: ``Net revenue (EUR)``), rates as percentages rounded to 0.1,
    dates as days, columns missing for every row left out. Values stay numbers (sortable)."""
    c = resolve_currency(currency)
    cols = table_columns(frame, c, kinds)
    data = {}
    for col in frame.columns:
        f = cols[str(col)]
        s = frame[col]
        if drop_empty and len(frame) and s.isna().all():
            continue
        title = (titles or {}).get(str(col), f.title)
        if f.kind == "money":
            s = round_money(s, c)
            if c is not None:
                title = f"{title} ({c.code})"
        elif f.kind == "percent":
            s = (pd.to_numeric(s, errors="coerce") * 100).round(1) + 0.0
            title = f"{title} (%)"
        elif f.kind == "date":
            s = pd.to_datetime(s, errors="coerce").dt.date
        elif f.kind in ("number", "score"):
            s = pd.to_numeric(s, errors="coerce").round(2) + 0.0
        data[title] = s.to_numpy() if isinstance(s, pd.Series) else s
    return pd.DataFrame(data, index=frame.index)


def drop_empty_columns(frame: pd.DataFrame, keep: Iterable[str] = ()) -> pd.DataFrame:
    """``frame`` without the columns that are missing (NaN / None / empty text) in every row."""
    keep = set(keep)
    if frame.empty:
        return frame
    empty = [c for c in frame.columns if c not in keep and (
        frame[c].isna().all() or (frame[c].dtype == object and frame[c].map(lambda v: v in ("", None)).all()))]
    return frame.drop(columns=empty)


def explain_missing(values: pd.Series, reason: str = NOT_ENOUGH_HISTORY) -> pd.Series:
    """Text values with missing ones replaced by ``reason`` (for a column shown as text)."""
    return values.astype(object).where(values.notna(), reason)

