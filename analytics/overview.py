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
import json
from typing import Any

import pandas as pd

from analytics.warehouse import EVENT_TYPES, Warehouse

ACTIVE_DAYS = 90

_GRAINS = ("day", "week", "month", "quarter", "year")


def dataset_span(wh: Warehouse, dataset: str) -> dict[str, Any]:
    """Events, first and last event time of ``dataset`` (zeros/None when it has no events)."""
    row = wh.cursor().execute(
        "SELECT count(*), min(event_time), max(event_time) FROM events WHERE dataset = ?",
        [dataset],
    ).fetchone()
    return {"events": int(row[0]), "first_event": row[1], "last_event": row[2]}


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


def _empty_timeline() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": pd.Series([], dtype="datetime64[us]"),
            "revenue": pd.Series([], dtype=float),
            "orders": pd.Series([], dtype="int64"),
            "active_customers": pd.Series([], dtype="int64"),
        }
    )


def _compute(
    wh: Warehouse,
    dataset: str,
    grain: str | None = None,
    as_of: dt.datetime | None = None,
    active_days: int = ACTIVE_DAYS,
) -> dict[str, Any]:
    """All overview aggregates in three scans of the dataset's events.

    1. per customer (one hash aggregate): customers, active customers, events and
       customers per type, revenue;
    2. per period: revenue and distinct active customers;
    3. purchases only, de-duplicated into a small temporary table (private to this
       cursor): orders per customer and per period.
    """
    if active_days <= 0:
        raise ValueError("active_days must be a positive number of days")
    span = dataset_span(wh, dataset)
    if grain is None:
        grain = choose_grain(span["first_event"], span["last_event"])
    if grain not in _GRAINS:  # whitelisted: the grain is formatted into SQL as a literal
        raise ValueError(f"unknown time grain {grain!r}: choose one of {', '.join(_GRAINS)}")
    kpis: dict[str, Any] = {
        **span,
        "customers": 0, "buyers": 0, "orders": 0, "revenue": 0.0, "gross_revenue": 0.0,
        "refunds": 0.0, "active_customers": 0, "active_days": active_days,
        "repeat_customers": 0, "repeat_rate": None, "as_of": as_of or span["last_event"],
    }
    types = list(EVENT_TYPES)
    if span["events"] == 0:
        by_type = pd.DataFrame({"event_type": types, "events": [0] * len(types), "customers": [0] * len(types)})
        return {"kpis": kpis, "timeline": _empty_timeline(), "by_type": by_type, "grain": grain}

    as_of = kpis["as_of"]
    start = as_of - dt.timedelta(days=active_days)
    # EVENT_TYPES are constants of this package (never user text), so they can name columns.
    per_type = ", ".join(f"count(*) FILTER (WHERE event_type = '{t}') AS n_{t}" for t in types)
    in_list = ", ".join(f"'{t}'" for t in types)
    cur = wh.cursor()
    try:
        sums = ", ".join(f"sum(n_{t}), count(*) FILTER (WHERE n_{t} > 0)" for t in types + ["other"])
        row = cur.execute(
            f"""
            SELECT count(*), count(*) FILTER (WHERE active),
                   coalesce(sum(gross), 0), coalesce(sum(refunds), 0), {sums}
            FROM (
                SELECT customer_id,
                       bool_or(event_time > ? AND event_time <= ?) AS active,
                       {per_type},
                       count(*) FILTER (WHERE event_type NOT IN ({in_list})) AS n_other,
                       sum(revenue) FILTER (WHERE event_type = 'purchase') AS gross,
                       sum(revenue) FILTER (WHERE event_type = 'return') AS refunds
                FROM events
                WHERE dataset = ?
                GROUP BY customer_id
            )
            """,
            [start, as_of, dataset],
        ).fetchone()
        timeline = cur.execute(
            f"""
            SELECT date_trunc('{grain}', event_time) AS period,
                   coalesce(sum(revenue) FILTER (WHERE event_type = 'purchase'), 0)
                     - coalesce(sum(revenue) FILTER (WHERE event_type = 'return'), 0) AS revenue,
                   count(DISTINCT customer_id) AS active_customers
            FROM events
            WHERE dataset = ?
            GROUP BY period
            """,
            [dataset],
        ).df()
        cur.execute(
            f"""
            CREATE TEMP TABLE _overview_orders AS
            SELECT DISTINCT customer_id, order_id,
                   CASE WHEN order_id IS NULL THEN event_time END AS t,
                   date_trunc('{grain}', event_time) AS period
            FROM events
            WHERE dataset = ? AND event_type = 'purchase'
            """,
            [dataset],
        )
        buyers, orders, repeat = cur.execute(
            """
            SELECT count(*), coalesce(sum(n), 0), count(*) FILTER (WHERE n >= 2)
            FROM (SELECT customer_id, count(DISTINCT (order_id, t)) AS n
                  FROM _overview_orders GROUP BY customer_id)
            """
        ).fetchone()
        orders_per_period = cur.execute(
            "SELECT period, count(DISTINCT (customer_id, order_id, t)) AS orders "
            "FROM _overview_orders GROUP BY period"
        ).df()
    finally:
        cur.execute("DROP TABLE IF EXISTS _overview_orders")
        cur.close()

    customers, active, gross, refunds = row[:4]
    counts = row[4:]
    names = types + ["other"]
    events = [int(counts[2 * i] or 0) for i in range(len(names))]
    with_type = [int(counts[2 * i + 1] or 0) for i in range(len(names))]
    if not events[-1]:  # no events outside the canonical types
        names, events, with_type = names[:-1], events[:-1], with_type[:-1]
    by_type = pd.DataFrame({"event_type": names, "events": events, "customers": with_type})

    timeline = timeline.merge(orders_per_period, on="period", how="left")
    timeline["period"] = pd.to_datetime(timeline["period"])
    timeline["revenue"] = timeline["revenue"].astype(float)
    timeline["orders"] = timeline["orders"].fillna(0).astype("int64")
    timeline["active_customers"] = timeline["active_customers"].astype("int64")
    timeline = timeline[["period", "revenue", "orders", "active_customers"]].sort_values("period")
    timeline = timeline.reset_index(drop=True)
    timeline.attrs["grain"] = grain

    kpis.update(
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
    return {"kpis": kpis, "timeline": timeline, "by_type": by_type, "grain": grain}


def overview_kpis(
    wh: Warehouse, dataset: str, as_of: dt.datetime | None = None, active_days: int = ACTIVE_DAYS
) -> dict[str, Any]:
    """Headline numbers of ``dataset`` (see the module docstring for definitions).

    ``as_of``: the end of the "active" window; default the dataset's last event time.
    Returns a dict with events, customers, buyers (customers with an order), orders,
    revenue (net), gross_revenue, refunds, active_customers, active_days,
    repeat_customers, repeat_rate (None when nobody bought), first_event,
    last_event, as_of.
    """
    return _compute(wh, dataset, "year", as_of, active_days)["kpis"]


def activity_over_time(wh: Warehouse, dataset: str, grain: str | None = None) -> pd.DataFrame:
    """Per period: net revenue, orders and active customers (any event in the period).

    ``grain``: 'day', 'week', 'month', 'quarter' or 'year'; default ``choose_grain``
    over the dataset's span. Columns: period (timestamp of the period start),
    revenue, orders, active_customers; sorted by period; empty when no events.
    """
    return _compute(wh, dataset, grain)["timeline"]


def events_by_type(wh: Warehouse, dataset: str) -> pd.DataFrame:
    """Events and distinct customers per event type, in the canonical type order.

    Every canonical type is listed (with zeros when absent); types outside the
    canonical list are summed up as 'other'. Columns: event_type, events, customers.
    """
    return _compute(wh, dataset, "year")["by_type"]


#: item categories listed by :func:`dataset_overview` (most frequent first)
MAX_CATEGORIES = 500


def event_categories(wh: Warehouse, dataset: str, limit: int = MAX_CATEGORIES) -> list[str]:
    """The dataset's item categories, most frequent first (ties by name), at most ``limit``."""
    rows = wh.cursor().execute(
        "SELECT category FROM events WHERE dataset = ? AND category IS NOT NULL "
        "GROUP BY category ORDER BY count(*) DESC, category LIMIT ?", [dataset, int(limit)]).fetchall()
    return [str(r[0]) for r in rows]


def dataset_overview(wh: Warehouse, dataset: str) -> dict[str, Any]:
    """Everything the Overview page draws, in one call: kpis, timeline, by_type, grain, and the
    item ``categories`` (:func:`event_categories`) pickers offer."""
    wh.require_dataset(dataset)
    res = _compute(wh, dataset)
    res["categories"] = event_categories(wh, dataset) if res["kpis"]["events"] else []
    return res


# ---------------------------------------------------------------- stored results
_SETTING_PREFIX = "overview:"


def to_json(res: dict[str, Any]) -> str:
    """``dataset_overview``'s result as JSON text (read back by :func:`from_json`)."""
    def ts(v):
        return None if v is None else pd.Timestamp(v).isoformat()

    kpis = {k: (ts(v) if k in ("first_event", "last_event", "as_of") else v) for k, v in res["kpis"].items()}
    tl = res["timeline"]
    return json.dumps({
        "kpis": kpis,
        "grain": res["grain"],
        "timeline": {
            "period": [ts(v) for v in tl["period"]],
            "revenue": [float(v) for v in tl["revenue"]],
            "orders": [int(v) for v in tl["orders"]],
            "active_customers": [int(v) for v in tl["active_customers"]],
        },
        "by_type": res["by_type"].to_dict(orient="list"),
        "categories": list(res.get("categories", [])),
    })


def from_json(blob: str) -> dict[str, Any]:
    """The result :func:`to_json` wrote."""
    d = json.loads(blob)
    kpis = d["kpis"]
    for k in ("first_event", "last_event", "as_of"):
        if kpis.get(k) is not None:
            kpis[k] = dt.datetime.fromisoformat(kpis[k])
    tl = d["timeline"]
    timeline = pd.DataFrame({
        "period": pd.to_datetime(pd.Series(tl["period"], dtype=object)),
        "revenue": pd.Series(tl["revenue"], dtype=float),
        "orders": pd.Series(tl["orders"], dtype="int64"),
        "active_customers": pd.Series(tl["active_customers"], dtype="int64"),
    })
    timeline.attrs["grain"] = d["grain"]
    return {"kpis": kpis, "timeline": timeline, "by_type": pd.DataFrame(d["by_type"]), "grain": d["grain"],
            "categories": list(d.get("categories", []))}


def stored_overview(wh: Warehouse, dataset: str) -> dict[str, Any]:
    """``dataset_overview``, kept in the warehouse until the dataset's events change.

    The result (a few kB) is stored in the settings table under the dataset's content
    fingerprint (``analytics.summary.events_fingerprint``: exact and order-independent), so
    the first Overview after a restart, or after a load from the CLI, reads it back
    instead of scanning millions of events again. A read-only warehouse just computes.
    """
    import duckdb

    from analytics.summary import events_fingerprint

    wh.require_dataset(dataset)
    version = events_fingerprint(wh, dataset)
    key = _SETTING_PREFIX + dataset
    raw = wh.setting(key)
    if raw:
        try:
            stored = json.loads(raw)
            if stored.get("version") == version:
                return from_json(stored["result"])
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable entry is recomputed and overwritten
    res = dataset_overview(wh, dataset)
    try:
        wh.set_setting(key, json.dumps({"version": version, "result": to_json(res)}))
    except duckdb.Error:  # read-only warehouse or a concurrent writer: keep the result in memory only
        pass
    return res


def datasets_table(wh: Warehouse) -> pd.DataFrame:
    """One row per dataset: name, events, customers, first_event, last_event, pseudonymized,
    created_at, updated_at. The counts come from the prepared overview when the dataset's current
    version has one (no pass over the events), else from one aggregate over its events."""
    from analytics import access, prepare

    meta = wh.cursor().execute(
        "SELECT name, pseudonymized, created_at, updated_at FROM datasets ORDER BY name").fetchall()
    rows = []
    visible = access.visible_datasets(wh)
    for name, pseudo, created, updated in meta:
        if visible is not None and name not in visible:
            continue
        ov = prepare.overview(wh, name, compute=False)
        if ov is not None:
            k = ov["kpis"]
            events, customers, first, last = k["events"], k["customers"], k["first_event"], k["last_event"]
        else:
            events, customers, first, last = wh.cursor().execute(
                "SELECT count(*), count(DISTINCT customer_id), min(event_time), max(event_time) FROM events "
                "WHERE dataset = ?", [name]).fetchall()[0]
        rows.append({"dataset": name, "events": int(events), "customers": int(customers),
                     "first_event": None if first is None else pd.Timestamp(first),
                     "last_event": None if last is None else pd.Timestamp(last),
                     "pseudonymized": bool(pseudo), "created_at": created, "updated_at": updated})
    cols = ["dataset", "events", "customers", "first_event", "last_event", "pseudonymized", "created_at", "updated_at"]
    return pd.DataFrame(rows, columns=cols)
