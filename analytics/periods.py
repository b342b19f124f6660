"""Time periods that tell the truth: partial first/last periods, and KPIs of a date range
against the period before it.

Partial periods (:func:`period_coverage`). A chart per month (week, quarter...) of data
that ends on the 5th draws the last month from 5 days; drawn like the others it looks
like a collapse. Every period gets the number of its calendar days that the data covers
(from the day of the first event to the day of the last event, both included) and a
``partial`` flag when that is fewer than the period's days; :func:`partial_traces` draws
such periods hatched (bars) or dashed (lines) and :func:`partial_note` says it in words
("last month: 5 of 31 days"). Periods start where DuckDB's ``date_trunc`` starts them
(weeks on Monday).

Date ranges (:func:`compare_ranges`). KPIs of the days ``start..end`` (both included) and
of the same number of days just before, in one pass over those events: active customers
(any event), buyers, orders, net revenue (purchases minus refunds), average order value,
new customers (first purchase ever in the window), repeat-buyer share (buyers with two or
more orders in the window). When the previous window starts before the data, it is
only partly covered and the result says so (``previous_covered_days``): its deltas are
then not like for like.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analytics.dates import parse_day
from analytics.warehouse import Warehouse

GRAINS = ("day", "week", "month", "quarter", "year")
#: hatching of partial bars (plotly marker pattern) and dash of partial line segments
PARTIAL_PATTERN = "/"
PARTIAL_DASH = "dot"


class PeriodError(ValueError):
    """A date range or grain a user can fix."""


def _day(value, what: str) -> pd.Timestamp:
    return parse_day(value, what, PeriodError).normalize()


def period_start(day, grain: str) -> pd.Timestamp:
    """The start of the period containing ``day`` (as DuckDB's ``date_trunc``; weeks start on Monday)."""
    d = pd.Timestamp(day).normalize()
    if grain == "day":
        return d
    if grain == "week":
        return d - pd.Timedelta(days=d.weekday())
    if grain == "month":
        return d.replace(day=1)
    if grain == "quarter":
        return d.replace(month=3 * ((d.month - 1) // 3) + 1, day=1)
    if grain == "year":
        return d.replace(month=1, day=1)
    raise PeriodError(f"unknown time grain {grain!r}: choose one of {', '.join(GRAINS)}")


def period_end(start, grain: str) -> pd.Timestamp:
    """The first day after the period starting at ``start`` (exclusive end)."""
    s = pd.Timestamp(start).normalize()
    step = {"day": pd.DateOffset(days=1), "week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1),
            "quarter": pd.DateOffset(months=3), "year": pd.DateOffset(years=1)}
    if grain not in step:
        raise PeriodError(f"unknown time grain {grain!r}: choose one of {', '.join(GRAINS)}")
    return s + step[grain]


def period_coverage(periods: Sequence, grain: str, first_day, last_day) -> pd.DataFrame:
    """Per period start: ``period``, ``period_end`` (exclusive), ``days`` (calendar days of the
    period), ``covered_days`` (days of it between ``first_day`` and ``last_day``, both included),
    ``partial`` (fewer covered days than days) and ``note`` (``"5 of 31 days"`` for partial
    periods, else empty). The index is the input's order."""
    first = pd.Timestamp(first_day).normalize()
    last_excl = pd.Timestamp(last_day).normalize() + pd.Timedelta(days=1)
    rows = []
    for p in periods:
        s = period_start(p, grain)
        e = period_end(s, grain)
        n = (e - s).days
        covered = max(0, (min(e, last_excl) - max(s, first)).days)
        partial = covered < n
        rows.append({"period": s, "period_end": e, "days": n, "covered_days": covered, "partial": partial,
                     "note": f"{covered} of {n} days" if partial else ""})
    cols = ["period", "period_end", "days", "covered_days", "partial", "note"]
    return pd.DataFrame(rows, columns=cols)


def partial_note(coverage: pd.DataFrame, grain: str) -> str | None:
    """A sentence about the partial first/last periods, e.g. ``"The last month has data for 5 of
    its 31 days (drawn hatched)."``; None when every period is whole."""
    if coverage is None or coverage.empty:
        return None
    word = grain
    parts = []
    if len(coverage) == 1:
        r = coverage.iloc[0]
        if r.partial:
            parts.append(f"the only {word} has data for {r.covered_days} of its {r.days} days")
    else:
        for which, r in (("first", coverage.iloc[0]), ("last", coverage.iloc[-1])):
            if r.partial:
                parts.append(f"the {which} {word} has data for {r.covered_days} of its {r.days} days")
    if not parts:
        return None
    text = " and ".join(parts)
    return text[0].upper() + text[1:] + " (drawn hatched or dashed): compare it with care."


def partial_traces(x, y, partial, *, kind: str = "bar", name: str = "", color: str = "#2f6fdf",
                   hovertemplate: str | None = None, notes=None) -> list:
    """Plotly traces for a time series whose ``partial`` periods are marked: bars hatched (and
    lighter), lines dashed from the last whole period to a partial one, with open markers.
    ``notes`` (e.g. ``coverage["note"]``) goes into the hover text of each point."""
    import plotly.graph_objects as go

    x = list(x)
    y = np.asarray(y, dtype=float)
    part = np.asarray(partial, dtype=bool)
    notes = [""] * len(x) if notes is None else [str(n) for n in notes]
    custom = [f" (partial: {n})" if p and n else "" for p, n in zip(part, notes)]
    hover = hovertemplate or "%{x}<br>%{y:,.2f}<extra></extra>"
    if "%{customdata}" not in hover:
        hover = hover.replace("<extra>", "%{customdata}<extra>") if "<extra>" in hover else hover + "%{customdata}"
    if kind == "bar":
        return [go.Bar(
            x=x, y=y, name=name, customdata=custom, hovertemplate=hover,
            marker=dict(color=color, opacity=[0.45 if p else 1.0 for p in part],
                        pattern=dict(shape=[PARTIAL_PATTERN if p else "" for p in part], fillmode="overlay",
                                     fgcolor="#333333", size=6)),
        )]
    whole = np.where(part, np.nan, y)
    traces = [go.Scatter(x=x, y=whole, name=name, mode="lines+markers" if len(x) <= 60 else "lines",
                         line=dict(color=color), customdata=custom, hovertemplate=hover, connectgaps=False)]
    # a dashed segment from each whole neighbour to each partial point
    seg_x, seg_y, seg_c = [], [], []
    for i in np.flatnonzero(part):
        for j in (i - 1, i + 1):
            if 0 <= j < len(x) and not part[j]:
                a, b = (j, i) if j < i else (i, j)
                seg_x += [x[a], x[b], None]
                seg_y += [y[a], y[b], None]
                seg_c += [custom[a], custom[b], ""]
    if seg_x:
        traces.append(go.Scatter(x=seg_x, y=seg_y, mode="lines", line=dict(color=color, dash=PARTIAL_DASH),
                                 hoverinfo="skip", showlegend=False, name=f"{name} (partial)"))
    if part.any():
        idx = np.flatnonzero(part)
        traces.append(go.Scatter(
            x=[x[i] for i in idx], y=y[idx], mode="markers", showlegend=False, name=f"{name} (partial)",
            marker=dict(color="white", line=dict(color=color, width=2), size=8, symbol="circle"),
            customdata=[custom[i] for i in idx], hovertemplate=hover))
    return traces


def annotate_partial(fig, coverage: pd.DataFrame, y=None, *, yref: str = "paper") -> None:
    """Add a small ``partial: 5 of 31 days`` label above each partial period of ``fig``."""
    for i, r in coverage.iterrows():
        if not r["partial"]:
            continue
        fig.add_annotation(x=r["period"], y=1.0 if y is None else y[i], yref=yref if y is None else "y",
                           text=f"partial: {r['note']}", showarrow=False, yanchor="bottom",
                           font=dict(size=11, color="#555555"))


# ----------------------------------------------------------------- date ranges
@dataclass
class RangeComparison:
    """KPIs of a window and of the window of the same length before it (see the module docstring)."""

    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    current: dict[str, Any]
    previous: dict[str, Any]
    days: int
    previous_covered_days: int
    data_first_day: dt.date | None = None
    deltas: dict[str, float | None] = field(default_factory=dict)

    @property
    def like_for_like(self) -> bool:
        """Whether the previous window is covered by data for all of its days."""
        return self.previous_covered_days == self.days


KPI_KEYS = ("active_customers", "buyers", "orders", "revenue", "aov", "new_customers", "repeat_share")


def previous_window(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The ``(start, end)`` days of the same length just before ``start..end``."""
    s, e = _day(start, "the start date"), _day(end, "the end date")
    n = (e - s).days + 1
    return s - pd.Timedelta(days=n), s - pd.Timedelta(days=1)


def relative_change(current, previous) -> float | None:
    """``current / previous - 1`` (None when either is missing or the previous is 0)."""
    if current is None or previous is None:
        return None
    try:
        c, p = float(current), float(previous)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(c) or not np.isfinite(p) or p == 0:
        return None
    return c / p - 1.0


def compare_ranges(wh: Warehouse, dataset: str, start, end) -> RangeComparison:
    """KPIs of ``start..end`` and of the window before it (one pass over their events)."""
    s, e = _day(start, "the start date"), _day(end, "the end date")
    if e < s:
        raise PeriodError(f"the range ends ({e.date()}) before it starts ({s.date()})")
    ps, pe = previous_window(s, e)
    n = (e - s).days + 1
    cur = wh.cursor()
    try:
        first = cur.execute("SELECT min(event_time) FROM events WHERE dataset = ?", [dataset]).fetchone()[0]
        rows = cur.execute(
            """
            WITH w AS (
                SELECT customer_id, event_type, order_id, event_time, revenue,
                       CASE WHEN event_time >= ? THEN 'current' ELSE 'previous' END AS win
                FROM events
                WHERE dataset = ? AND event_time >= ? AND event_time < ?
            ),
            per AS (
                SELECT win, customer_id,
                       count(DISTINCT (order_id, CASE WHEN order_id IS NULL THEN event_time END))
                           FILTER (WHERE event_type = 'purchase') AS orders,
                       coalesce(sum(revenue) FILTER (WHERE event_type = 'purchase'), 0)
                         - coalesce(sum(revenue) FILTER (WHERE event_type = 'return'), 0) AS revenue
                FROM w GROUP BY win, customer_id
            ),
            firsts AS (
                SELECT customer_id, min(event_time) AS first_purchase
                FROM events WHERE dataset = ? AND event_type = 'purchase' AND event_time < ?
                GROUP BY customer_id
            )
            SELECT per.win, count(*) AS active_customers,
                   count(*) FILTER (WHERE orders > 0) AS buyers,
                   coalesce(sum(orders), 0) AS orders, coalesce(sum(revenue), 0) AS revenue,
                   count(*) FILTER (WHERE orders >= 2) AS repeat_buyers,
                   count(*) FILTER (WHERE f.first_purchase >= CASE per.win WHEN 'current' THEN ? ELSE ? END)
                       AS new_customers
            FROM per LEFT JOIN firsts f USING (customer_id)
            GROUP BY per.win
            """,
            [s, dataset, ps, e + pd.Timedelta(days=1), dataset, e + pd.Timedelta(days=1), s, ps],
        ).fetchall()
    finally:
        cur.close()
    empty = {"active_customers": 0, "buyers": 0, "orders": 0, "revenue": 0.0, "repeat_buyers": 0,
             "new_customers": 0}
    out = {"current": dict(empty), "previous": dict(empty)}
    for r in rows:
        out[r[0]] = {"active_customers": int(r[1]), "buyers": int(r[2]), "orders": int(r[3]),
                     "revenue": float(r[4]), "repeat_buyers": int(r[5]), "new_customers": int(r[6])}
    for k in out.values():
        k["aov"] = k["revenue"] / k["orders"] if k["orders"] else None
        k["repeat_share"] = k["repeat_buyers"] / k["buyers"] if k["buyers"] else None
    first_day = pd.Timestamp(first).normalize() if first is not None else None
    covered = n if first_day is None else max(0, min(n, (pe - max(ps, first_day)).days + 1))
    comp = RangeComparison(
        start=s.date(), end=e.date(), previous_start=ps.date(), previous_end=pe.date(),
        current=out["current"], previous=out["previous"], days=n, previous_covered_days=covered,
        data_first_day=first_day.date() if first_day is not None else None)
    comp.deltas = {k: relative_change(comp.current.get(k), comp.previous.get(k)) for k in KPI_KEYS}
    return comp
