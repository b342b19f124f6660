"""Dataset overview aggregates: the numbers and small series the Overview page draws.

Everything is aggregated inside DuckDB and comes back as a dict or a DataFrame of
at most a few hundred rows, so the page stays fast at millions of events and never
ships raw rows to the browser. The reference date for "recent" is the dataset's
own last event (``as_of`` defaults to it), never the wall clock.

Definitions (shown to users as help texts, so keep them in sync with the page):

- **customers**: distinct customer ids with at least one event of any type.
- **orders**: distinct order ids among purchase events; purchase rows without an
  order id count one order per customer and timestamp.
- **revenue**: net revenue = purchase revenue minus refunded revenue (a return's
  revenue is stored as the positive amount refunded).
- **active customers**: distinct customers with any event in the 90 days up to
  and including ``as_of`` (the last event in the dataset).
- **repeat-purchase rate**: among customers with at least one order, the share
  with two or more orders.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from analytics.warehouse import EVENT_TYPES, Warehouse

ACTIVE_DAYS = 90

# SQL fragment: one key per order (order id, or customer + time when there is none).
_ORDER_KEY = "coalesce(order_id, customer_id || '@' || CAST(event_time AS VARCHAR))"


def dataset_span(wh: Warehouse, dataset: str) -> dict[str, Any]:
    """Events, first and last event time of ``dataset`` (zeros/None when it has no events)."""
    row = wh.cursor().execute(
        "SELECT count(*), min(event_time), max(event_time) FROM events WHERE dataset = ?",
        [dataset],
    ).fetchone()
    return {"events": int(row[0]), "first_event": row[1], "last_event": row[2]}


def overview_kpis(
    wh: Warehouse, dataset: str, as_of: dt.datetime | None = None, active_days: int = ACTIVE_DAYS
) -> dict[str, Any]:
    """Headline numbers of ``dataset`` (see the module docstring for definitions).

    ``as_of``: the end of the "active" window; default the dataset's last event time.
    Returns a dict with events, customers, buyers, orders, revenue, gross_revenue,
    refunds, active_customers, active_days, repeat_customers, repeat_rate (None when
    nobody bought), first_event, last_event, as_of.
    """
    if active_days <= 0:
        raise ValueError("active_days must be a positive number of days")
    span = dataset_span(wh, dataset)
    out: dict[str, Any] = {
        **span,
        "customers": 0, "buyers": 0, "orders": 0, "revenue": 0.0, "gross_revenue": 0.0,
        "refunds": 0.0, "active_customers": 0, "active_days": active_days,
        "repeat_customers": 0, "repeat_rate": None, "as_of": as_of or span["last_event"],
    }
    if span["events"] == 0:
        return out
    as_of = out["as_of"]
    start = as_of - dt.timedelta(days=active_days)
    # One pass: per-customer summary, then totals over customers.
    row = wh.cursor().execute(
        f"""
        WITH per_customer AS (
            SELECT customer_id,
                   count(DISTINCT CASE WHEN event_type = 'purchase' THEN {_ORDER_KEY} END) AS orders,
                   sum(CASE WHEN event_type = 'purchase' THEN revenue END) AS gross,
                   sum(CASE WHEN event_type = 'return' THEN revenue END) AS refunds,
                   bool_or(event_time > ? AND event_time <= ?) AS active
            FROM events
            WHERE dataset = ?
            GROUP BY customer_id
        )
        SELECT count(*),
               count(*) FILTER (WHERE orders > 0),
               coalesce(sum(orders), 0),
               coalesce(sum(gross), 0),
               coalesce(sum(refunds), 0),
               count(*) FILTER (WHERE active),
               count(*) FILTER (WHERE orders >= 2)
        FROM per_customer
        """,
        [start, as_of, dataset],
    ).fetchone()
    customers, buyers, orders, gross, refunds, active, repeat = row
    out.update(
        customers=int(customers),
        buyers=int(buyers),
        orders=int(orders),
        gross_revenue=float(gross),
        refunds=float(refunds),
        revenue=float(gross) - float(refunds),
        active_customers=int(active),
        repeat_customers=int(repeat),
        repeat_rate=(int(repeat) / int(buyers)) if buyers else None,
    )
    return out


def choose_grain(first: dt.datetime | None, last: dt.datetime | None) -> str:
    """'day' for spans up to 31 days, 'week' up to 26 weeks, else 'month'."""
    if first is None or last is None:
        return "month"
    days = (last - first).total_seconds() / 86400
    if days <= 31:
        return "day"
    if days <= 182:
        return "week"
    return "month"


_GRAINS = {"day", "week", "month", "quarter", "year"}


def activity_over_time(wh: Warehouse, dataset: str, grain: str | None = None) -> pd.DataFrame:
    """Per period: net revenue, orders and active customers (any event in the period).

    ``grain``: 'day', 'week', 'month', 'quarter' or 'year'; default ``choose_grain``
    over the dataset's span. Columns: period (timestamp of the period start),
    revenue, orders, active_customers; sorted by period; empty when no events.
    """
    if grain is None:
        span = dataset_span(wh, dataset)
        grain = choose_grain(span["first_event"], span["last_event"])
    if grain not in _GRAINS:  # whitelisted: the grain is formatted into SQL as a literal
        raise ValueError(f"unknown time grain {grain!r}: choose one of {', '.join(sorted(_GRAINS))}")
    df = wh.cursor().execute(
        f"""
        SELECT date_trunc('{grain}', event_time) AS period,
               coalesce(sum(CASE WHEN event_type = 'purchase' THEN revenue END), 0)
                 - coalesce(sum(CASE WHEN event_type = 'return' THEN revenue END), 0) AS revenue,
               count(DISTINCT CASE WHEN event_type = 'purchase' THEN {_ORDER_KEY} END) AS orders,
               count(DISTINCT customer_id) AS active_customers
        FROM events
        WHERE dataset = ?
        GROUP BY 1
        ORDER BY 1
        """,
        [dataset],
    ).df()
    df["period"] = pd.to_datetime(df["period"])
    df["revenue"] = df["revenue"].astype(float)
    df["orders"] = df["orders"].astype("int64")
    df["active_customers"] = df["active_customers"].astype("int64")
    df.attrs["grain"] = grain
    return df


def events_by_type(wh: Warehouse, dataset: str) -> pd.DataFrame:
    """Events and distinct customers per event type, in the canonical type order.

    Every canonical type is listed (with zeros when absent). Columns: event_type,
    events, customers.
    """
    rows = wh.cursor().execute(
        "SELECT event_type, count(*), count(DISTINCT customer_id) FROM events "
        "WHERE dataset = ? GROUP BY event_type",
        [dataset],
    ).fetchall()
    found = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    order = list(EVENT_TYPES) + sorted(t for t in found if t not in EVENT_TYPES)
    return pd.DataFrame(
        {
            "event_type": order,
            "events": [found.get(t, (0, 0))[0] for t in order],
            "customers": [found.get(t, (0, 0))[1] for t in order],
        }
    )


def dataset_overview(wh: Warehouse, dataset: str) -> dict[str, Any]:
    """Everything the Overview page draws, in one call: kpis, timeline, by_type, grain."""
    wh.require_dataset(dataset)
    kpis = overview_kpis(wh, dataset)
    if kpis["events"] == 0:
        empty = pd.DataFrame(columns=["period", "revenue", "orders", "active_customers"])
        return {"kpis": kpis, "timeline": empty, "by_type": events_by_type(wh, dataset), "grain": "month"}
    grain = choose_grain(kpis["first_event"], kpis["last_event"])
    return {
        "kpis": kpis,
        "timeline": activity_over_time(wh, dataset, grain),
        "by_type": events_by_type(wh, dataset),
        "grain": grain,
    }
