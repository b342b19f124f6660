"""Per-customer summaries: RFM inputs, BG/NBD inputs and behaviour counts.

``customer_summary`` computes, in one DuckDB SQL pass over ``events`` (or, when
every purchase carries its customer's dense key (``analytics.customer_keys``: ids
of no numeric form) or every purchase's customer id is a canonical integer or one
text followed by a number, one NumPy sort of the purchases and the same SQL for
the rest: identical rows), for a dataset as of an explicit date, one row per
customer:

* ``first_purchase``, ``last_purchase``: first and last purchase *day*
  (timestamps at midnight; NaT if the customer never purchased);
* ``frequency``, ``recency``, ``T``: in the sense of the BG/NBD literature
  (Fader, Hardie & Lee 2005): purchase periods are calendar days (all purchases
  of a customer on the same day are merged into one), ``frequency`` is the
  number of *repeat* purchase days, ``recency`` the time from the first to the
  last purchase day and ``T`` the time from the first purchase day to the as-of
  day, both in ``unit``;
* ``monetary_value``: mean value of the repeat purchase days (the first day's
  value is left out, same-day purchases summed), 0 when ``frequency == 0``;
* totals: ``total_revenue`` (all purchases), ``return_revenue`` (refunds, a
  positive amount), ``net_revenue``; ``n_orders`` (distinct purchase days,
  including the first);
* behaviour: ``n_views``, ``n_searches``, ``n_carts``, ``n_purchases``,
  ``n_returns``, ``n_reviews`` (event counts) and ``avg_rating`` (NaN if none);
* ``tenure`` (as-of day minus the first event's day, in ``unit``), ``avg_gap``
  (mean gap between purchase days in ``unit``; NaN with fewer than 2),
  ``first_event``, ``last_event``.

These equal lifetimes' ``summary_data_from_transaction_data`` with
``freq="D"`` (``freq_multiplier=7`` for weeks, ``30.4375`` for months) on the
same data, including its conventions: the as-of day is *inclusive* (events up
to the end of that day count) and ``T`` is measured from the first purchase
day to the as-of day.

Time units (``TIME_UNITS``): ``days`` = 1 day, ``weeks`` = 7 days, ``months`` =
30.4375 days (365.25 / 12). The unit only rescales recency, T, tenure and
avg_gap; frequency never depends on it (purchase periods are always days), so
the same customers give the same BG/NBD likelihood shape in any unit. Every
result carries its unit in ``df.attrs["unit"]``.

Customers who only viewed / searched / ... (no purchase in the window) are
included (behaviour scores need them) with ``n_orders == 0`` and
``frequency``, ``recency``, ``T`` and ``monetary_value`` NaN: the BG/NBD and
Gamma-Gamma inputs are defined only from a first purchase on, so a model fitted
on ``df.dropna(subset=["frequency"])`` uses exactly the purchasers.

Results persist in the warehouse (``customer_summary_runs`` /
``customer_summaries``), keyed by dataset, as-of day, unit and a hash of the
other parameters, and tagged with a fingerprint of the dataset's events, so a
new ingest (or a deletion) invalidates them automatically.
"""
from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import hashlib
import json
import re
import threading

import duckdb
import numpy as np
import pandas as pd

from analytics.warehouse import Warehouse, WarehouseError

TIME_UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.4375}

SUMMARY_COLUMNS = [
    "first_purchase", "last_purchase", "frequency", "recency", "T", "monetary_value",
    "total_revenue", "return_revenue", "net_revenue", "n_orders",
    "n_views", "n_searches", "n_carts", "n_purchases", "n_returns", "n_reviews",
    "avg_rating", "tenure", "avg_gap", "first_event", "last_event",
]

MAX_RUNS_PER_DATASET = 8  # persisted summaries kept per dataset (most recent first)

_SUMMARY_VERSION = 1  # bump when the computation changes: old persisted runs stop matching


class SummaryError(ValueError):
    """A summary request a user can fix (unknown unit, bad date, empty window...)."""


# ---------------------------------------------------------------- helpers
def check_unit(unit: str) -> float:
    """The length of ``unit`` in days; SummaryError for an unknown unit."""
    try:
        return TIME_UNITS[unit]
    except (KeyError, TypeError):
        raise SummaryError(
            f"unknown time unit {unit!r}; use one of {', '.join(TIME_UNITS)}"
        ) from None


def _as_day(value, what: str) -> pd.Timestamp:
    """A date-like value as a midnight Timestamp (the day it falls on)."""
    if value is None:
        raise SummaryError(f"{what} is required (an explicit date, e.g. 2024-06-30)")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise SummaryError(f"{what} is not a date: {value!r}") from None
    if ts is pd.NaT or pd.isna(ts):
        raise SummaryError(f"{what} is not a date: {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    from analytics.dates import check_range

    return check_range(ts.normalize(), what, SummaryError)


def _py(ts: pd.Timestamp | None):
    return None if ts is None else ts.to_pydatetime()


# ---------------------------------------------------------------- SQL
# Money sums are exact: DECIMAL at 1e-6 (the warehouse's money precision). A plain float sum over
# parallel threads adds in a different order each run and gave totals that differed in the last
# bits, which moved the learned models' fits from one run to the next (an ordered sum,
# sum(rev ORDER BY d), is as exact but took 1.8x as long at 10M events). Values below 1e12 are cast
# to DECIMAL(18, 6), a 64-bit integer of micro-units (cheaper to add than the 128-bit DECIMAL(38, 6));
# a dataset with a larger amount is summed again in DECIMAL(38, 6) (same sums, see _MONEY).
_MONEY = ("DECIMAL(18, 6)", "DECIMAL(38, 6)")

# The per-customer columns every summary source produces (CTE ``c``), then one projection.
_SUMMARY_SELECT = """
SELECT
    CAST(customer_id AS VARCHAR) AS customer_id,
    CAST(fp AS TIMESTAMP) AS first_purchase,
    CAST(lp AS TIMESTAMP) AS last_purchase,
    CASE WHEN n_orders > 0 THEN CAST(n_orders - 1 AS DOUBLE) END AS frequency,
    (lp - fp) / $unit_days AS recency,
    (CAST($as_of AS DATE) - fp) / $unit_days AS "T",
    -- mean of the repeat purchase days: (all days - the first day) / repeat days
    CASE WHEN n_orders > 1 THEN (total_revenue - first_rev) / (n_orders - 1)
         WHEN n_orders = 1 THEN 0.0 END AS monetary_value,
    CAST(total_revenue AS DOUBLE) AS total_revenue,
    CAST(return_revenue AS DOUBLE) AS return_revenue,
    round(CAST(total_revenue - return_revenue AS DOUBLE), 6) AS net_revenue,  -- float sums: -1e-13 is 0
    CAST(n_orders AS BIGINT) AS n_orders,
    n_views, n_searches, n_carts, n_purchases, n_returns, n_reviews,
    CAST(avg_rating AS DOUBLE) AS avg_rating,
    (CAST($as_of AS DATE) - CAST(first_event AS DATE)) / $unit_days AS tenure,
    CASE WHEN n_orders >= 2 THEN (lp - fp) / $unit_days / (n_orders - 1) END AS avg_gap,
    first_event,
    last_event
FROM c
ORDER BY customer_id
"""

_SUMMARY_SQL = """
WITH pday AS (
    -- purchases: one row per customer and purchase day (same-day purchases merged),
    -- days as DATE (4 bytes, plain integer arithmetic). This is the one big
    -- aggregation (about one group per purchase), kept narrow; it also carries the
    -- purchase counts and first/last event times, so purchases are aggregated once.
    SELECT customer_id, CAST(event_time AS DATE) AS d, coalesce(sum(revenue), 0) AS rev,
           count(*) AS n, min(event_time) AS fe, max(event_time) AS le
    FROM {source}
    WHERE {where} AND event_type = 'purchase'
    GROUP BY customer_id, d
),
pcust AS (
    SELECT customer_id, min(d) AS fp, max(d) AS lp, count(*) AS n_orders,
           CAST(sum(CAST(rev AS {money})) AS DOUBLE) AS total_revenue,
           arg_min(rev, d) AS first_rev, sum(n) AS n_purchases, min(fe) AS fe, max(le) AS le
    FROM pday
    GROUP BY customer_id
),
other AS (
    -- every other event (views, searches, ...) and rated purchases, one row per
    -- customer: no second pass over all the purchases
    SELECT customer_id,
           min(event_time) AS fe, max(event_time) AS le,
           count(*) FILTER (WHERE event_type = 'view') AS n_views,
           count(*) FILTER (WHERE event_type = 'search') AS n_searches,
           count(*) FILTER (WHERE event_type = 'cart') AS n_carts,
           count(*) FILTER (WHERE event_type = 'return') AS n_returns,
           count(*) FILTER (WHERE event_type = 'review') AS n_reviews,
           CAST(sum(CAST(revenue AS {money})) FILTER (WHERE event_type = 'return') AS DOUBLE) AS return_revenue,
           sum(rating) AS srat, count(rating) AS nrat
    FROM {source}
    WHERE {where} AND (event_type <> 'purchase' OR rating IS NOT NULL)
    GROUP BY customer_id
),
c AS (
    SELECT coalesce(p.customer_id, o.customer_id) AS customer_id, p.fp, p.lp,
           coalesce(p.n_orders, 0) AS n_orders, coalesce(p.total_revenue, 0) AS total_revenue, p.first_rev,
           coalesce(o.n_views, 0) AS n_views, coalesce(o.n_searches, 0) AS n_searches,
           coalesce(o.n_carts, 0) AS n_carts, coalesce(p.n_purchases, 0) AS n_purchases,
           coalesce(o.n_returns, 0) AS n_returns, coalesce(o.n_reviews, 0) AS n_reviews,
           coalesce(o.return_revenue, 0) AS return_revenue,
           o.srat / nullif(o.nrat, 0) AS avg_rating,
           CASE WHEN o.fe IS NULL OR p.fe < o.fe THEN p.fe ELSE o.fe END AS first_event,
           CASE WHEN o.le IS NULL OR p.le > o.le THEN p.le ELSE o.le END AS last_event
    FROM pcust p FULL OUTER JOIN other o ON p.customer_id = o.customer_id
)
""" + _SUMMARY_SELECT

# The same summary from the stored per-customer, per-day rows (``customer_days``, written by
# ``summary_history``): one aggregation over about one row per purchase instead of two over
# the events. Its per-day revenue is the same per-day sum ``pday`` makes, so the purchase
# columns are identical; the return revenue and rating sums add per-day sums (float rounding).
_DAYS_SUMMARY_SQL = """
WITH c AS (
    SELECT customer_id,
           DATE '1970-01-01' + min(day) FILTER (WHERE n_p > 0) AS fp,
           DATE '1970-01-01' + max(day) FILTER (WHERE n_p > 0) AS lp,
           count(*) FILTER (WHERE n_p > 0) AS n_orders,
           coalesce(CAST(sum(CAST(rev AS {money})) FILTER (WHERE n_p > 0) AS DOUBLE), 0) AS total_revenue,
           arg_min(rev, day) FILTER (WHERE n_p > 0) AS first_rev,
           CAST(sum(n_v) AS BIGINT) AS n_views, CAST(sum(n_s) AS BIGINT) AS n_searches,
           CAST(sum(n_c) AS BIGINT) AS n_carts, CAST(sum(n_p) AS BIGINT) AS n_purchases,
           CAST(sum(n_r) AS BIGINT) AS n_returns, CAST(sum(n_w) AS BIGINT) AS n_reviews,
           CAST(sum(CAST(rrev AS {money})) AS DOUBLE) AS return_revenue,
           sum(srat) / nullif(sum(n_rat), 0) AS avg_rating,
           make_timestamp(min(fe)) AS first_event, make_timestamp(max(le)) AS last_event
    FROM customer_days
    WHERE {where}
    GROUP BY customer_id
)
""" + _SUMMARY_SELECT


# The same summary when every purchase's customer id is a canonical integer (``"12345"``: what
# ``CAST(id AS BIGINT)`` reads and ``CAST(.. AS VARCHAR)`` writes back unchanged), the usual case
# for exported customer numbers. The per-(customer, day) grouping, about one group per purchase,
# is then a sort instead of DuckDB's hash table: DuckDB hands over one packed integer per purchase
# (id * 2^17 + epoch day), its time and revenue, and :func:`_purchase_columns` sorts them in NumPy
# and writes one row per purchasing customer, registered as ``purchase_customers``. The money
# columns are the same exact sums as ``pcust``'s (each day's revenue rounded to 1e-6 as DuckDB's
# DECIMAL cast rounds, summed as 64-bit integers of micro-units); the other columns come from
# the same ``other`` pass and projection as ``_SUMMARY_SQL``'s.
#
# Ids made of one constant text and a number (``"C0000123"``, ``"cust-42"``: the other usual form)
# go the same way: the number is packed and the id written back as the text followed by the
# number, zero-padded to the ids' fixed width where they have one (see :func:`_id_form`). Every
# purchase's id is checked to be exactly what is written back, so a row whose id is of another
# form sends the whole summary to the SQL statement.
#
# Ids of any other form (UUIDs, e-mail addresses, hashes) carry the dense integer key the load gave
# their customer (``events.customer_key``, see ``analytics.customer_keys``): the key is packed
# instead of a number read from the id (``_KEYED_ROWS_SQL``), and the ids are written back from the
# dataset's key dictionary, one per purchasing customer (:func:`_keyed_summary_sql`). Where every
# purchase has a key this way is taken first, whatever the ids' form.
_PURCHASE_ROWS_SQL = """
SELECT CASE WHEN {id_text} = customer_id AND i BETWEEN -35184372088832 AND 35184372088831
            THEN i * 131072 + CAST(CAST(event_time AS DATE) - DATE '1970-01-01' AS BIGINT) END AS k,
       epoch_us(event_time) AS t,
       coalesce(revenue, 0) AS r
FROM (SELECT TRY_CAST({id_number} AS BIGINT) AS i, customer_id, event_time, revenue
      FROM {source} WHERE {where} AND event_type = 'purchase')
"""

_PURCHASE_CUSTOMERS_SQL = """
WITH pcust AS (
    SELECT {id_text} AS customer_id,
           DATE '1970-01-01' + fp AS fp, DATE '1970-01-01' + lp AS lp, n_orders,
           total_revenue, first_rev, n_purchases, fe, le
    FROM purchase_customers
),
other AS (""" + _SUMMARY_SQL.split("),\nother AS (", 1)[1]

_ID_TAIL = re.compile(r"(.*?)([0-9]+)", re.S)  # a text, then the number the id ends with
_ID_SAMPLE = 1000  # purchases whose ids decide the id form before every id is checked


def _id_form(ids: list[str]) -> tuple[str, int] | None:
    """How a sample of purchase ids turns into integers and back: ``("", 0)`` when they are
    canonical integers; ``(prefix, width)`` when each is one ASCII text followed by a number,
    zero-padded to ``width`` digits (0: not padded, the number as ``str(int)`` writes it); None
    for any other form (the SQL statement then computes the summary)."""
    def canonical(s: str) -> bool:
        try:
            return str(int(s)) == s and s.isascii()
        except ValueError:
            return False

    if not ids or any(not isinstance(s, str) for s in ids):
        return None
    if all(canonical(s) for s in ids):
        return "", 0
    parts = [_ID_TAIL.fullmatch(s) for s in ids]
    if not parts or any(m is None for m in parts):
        return None
    prefix = parts[0].group(1)
    digits = [m.group(2) for m in parts]
    if not prefix or not prefix.isascii() or any(m.group(1) != prefix for m in parts) or any(
            not d.isascii() for d in digits):
        return None
    if any(len(d) > 1 and d[0] == "0" for d in digits):  # zero-padded: one width for all
        width = len(digits[0])
        return (prefix, width) if all(len(d) == width for d in digits) else None
    return prefix, 0


def _id_text_sql(prefix: str, width: int, number: str) -> str:
    """The id written back from the integer column ``number``, as SQL, for an id form of
    :func:`_id_form`; the prefix is the bound parameter ``$id_prefix``."""
    if not prefix:
        return f"CAST({number} AS VARCHAR)"
    digits = f"lpad(CAST({number} AS VARCHAR), {width}, '0')" if width else f"CAST({number} AS VARCHAR)"
    return f"($id_prefix || {digits})"


_SORT_MAX_PURCHASES = 50_000_000  # the packed sort's memory: about 4.5 GB at this many
_DAY_BITS = 17  # days since 1970 below 2^17 (the year 2328) fit the packed key's low bits


def _purchase_columns(k: np.ndarray, t: np.ndarray, r: np.ndarray):
    """Per purchasing customer, from one row per purchase (``k`` = id * 2^17 + epoch day, ``t`` its
    time in microseconds, ``r`` its revenue, NULL as 0): an Arrow table with the columns of
    ``pcust`` (days since 1970 for ``fp`` and ``lp``), rows in id order. None where the packed
    sort does not apply (no purchases, days before 1970 or after 2327, too wide an id range, a
    non-finite amount, sums beyond 2^53 micro-units); the SQL statement then computes the
    summary. The few large arrays are reused from step to step: at 10M purchases every fresh one
    costs about as much to map in as the arithmetic on it."""
    import pyarrow as pa

    n = k.size
    if n == 0 or int(t.min()) < 0 or int(t.max()) >= (1 << _DAY_BITS) * _US_PER_DAY:
        return None
    base = (int(k.min()) >> _DAY_BITS) << _DAY_BITS
    rbits = max(1, (n - 1).bit_length())
    if (int(k.max()) - base).bit_length() + rbits > 63:
        return None
    # sort (customer, day, row) packed in one int64: the row number carries the payload along
    key = np.subtract(k, base)
    buf = np.arange(n, dtype=np.int64)
    key <<= rbits
    key |= buf
    key.sort()
    row = np.bitwise_and(key, (1 << rbits) - 1, out=buf)
    key >>= rbits  # (customer - first customer) * 2^17 + day, sorted
    rev, ts = r.take(row), t.take(row)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    day_start = np.flatnonzero(new)  # first row of every (customer, day)
    del new
    n_days = day_start.size
    day_key = np.take(key, day_start, out=buf[:n_days])
    day_rev = np.add.reduceat(rev, day_start)  # the day's revenue, same-day purchases summed
    top = max(float(day_rev.max()), -float(day_rev.min()))
    if not np.isfinite(top) or top * 1e6 * n_days >= 2.0 ** 62:
        return None
    cust = np.right_shift(day_key, _DAY_BITS, out=key[:n_days])
    new = np.empty(n_days, dtype=bool)
    new[0] = True
    np.not_equal(cust[1:], cust[:-1], out=new[1:])
    first_day = np.flatnonzero(new)  # first day of every customer
    del new
    last_day = np.empty_like(first_day)
    last_day[:-1] = first_day[1:] - 1
    last_day[-1] = n_days - 1
    first_row = day_start[first_day]
    low = (1 << _DAY_BITS) - 1
    out = {
        "customer_id": cust[first_day] + (base >> _DAY_BITS),
        "fp": (day_key[first_day] & low).astype(np.int32),
        "lp": (day_key[last_day] & low).astype(np.int32),
        "n_orders": last_day - first_day + 1,
        "first_rev": day_rev[first_day],
        "n_purchases": np.diff(first_row, append=n),
        "fe": np.minimum.reduceat(ts, first_row).view("datetime64[us]"),
        "le": np.maximum.reduceat(ts, first_row).view("datetime64[us]"),
    }
    # DECIMAL(18, 6)'s rounding of a double: the value times 1e6, half away from zero
    micro = np.multiply(day_rev, 1e6, out=rev[:n_days])
    micro += np.copysign(0.5, micro, out=day_rev)
    np.trunc(micro, out=micro)
    units = ts[:n_days]
    np.copyto(units, micro, casting="unsafe")
    total = np.add.reduceat(units, first_day)
    if int(np.abs(total).max()) >= 1 << 53:
        return None
    out["total_revenue"] = total.astype(np.float64) / 1e6
    return pa.table({c: out[c] for c in ("customer_id", "fp", "lp", "n_orders", "total_revenue", "first_rev",
                                         "n_purchases", "fe", "le")})


@contextlib.contextmanager
def _small_pages():
    """NumPy without its transparent-huge-page hint for new large arrays, while any packed sort
    runs: on the virtual machines measured, first touching a fresh 80 MB array cost about 0.27 s
    in huge pages (the kernel compacting memory to find them) against 0.05 s in ordinary ones,
    which doubled the sort's time on a process's first summary. The hint is one process-wide flag
    (what ``NUMPY_MADVISE_HUGEPAGE`` sets at import), restored when the last sort ends; a NumPy
    without the switch is left as it is."""
    switch = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    with _PAGES_LOCK:
        if _PAGES["users"] == 0:
            _PAGES["before"] = switch(False)
        _PAGES["users"] += 1
    try:
        yield
    finally:
        with _PAGES_LOCK:
            _PAGES["users"] -= 1
            if _PAGES["users"] == 0:
                switch(_PAGES["before"])


_PAGES_LOCK = threading.Lock()
_PAGES = {"users": 0, "before": True}


def _sorted_summary_sql(cur, where: str, bind: dict) -> str | None:
    """The summary over ``events`` through the packed sort (see ``_PURCHASE_CUSTOMERS_SQL``), its
    per-customer purchase rows registered on ``cur``; None where some purchase's customer id is
    not of an :func:`_id_form` or :func:`_purchase_columns` does not apply. ``bind``: the values of
    the parameters ``where`` uses; the id prefix is added to it as ``id_prefix`` for the returned
    statement. Beyond ``_SORT_MAX_PURCHASES`` purchases the statement runs (DuckDB spills to
    disk; the sort's arrays, about 90 bytes a purchase, would not)."""
    count = f"SELECT count(*), count(customer_key) FROM events WHERE {where} AND event_type = 'purchase'"
    n, n_keyed = cur.execute(count, _binds(count, bind)).fetchall()[0]
    if n == 0 or n > _SORT_MAX_PURCHASES:
        return None
    if n_keyed == n:  # every purchase carries its customer's dense key (analytics.customer_keys)
        sql = _keyed_summary_sql(cur, where, bind)
        if sql is not None:
            return sql
    first = f"SELECT customer_id FROM events WHERE {where} AND event_type = 'purchase' LIMIT {_ID_SAMPLE}"
    form = _id_form([r[0] for r in cur.execute(first, _binds(first, bind)).fetchall()])
    if form is None:  # ids of no form the sort handles: no pass over the purchases for nothing
        return None
    bind["id_prefix"] = form[0]
    id_number = f"substr(customer_id, {len(form[0]) + 1})" if form[0] else "customer_id"
    sql = _PURCHASE_ROWS_SQL.format(source="events", where=where, id_number=id_number,
                                    id_text=_id_text_sql(*form, "i"))
    rows = cur.sql(sql, params=_binds(sql, bind)).to_arrow_table()
    col = rows.column("k")
    if col.null_count:
        return None
    k = col.to_numpy()
    with _small_pages():
        table = _purchase_columns(k, rows.column("t").to_numpy(), rows.column("r").to_numpy())
    del rows, col, k
    if table is None:
        return None
    cur.register("purchase_customers", table)
    return _PURCHASE_CUSTOMERS_SQL.format(source="events", where=where, money=_MONEY[0],
                                          id_text=_id_text_sql(*form, "customer_id"))


_KEYED_ROWS_SQL = """
SELECT CAST(customer_key AS BIGINT) * 131072 + CAST(CAST(event_time AS DATE) - DATE '1970-01-01' AS BIGINT) AS k,
       epoch_us(event_time) AS t,
       coalesce(revenue, 0) AS r
FROM events WHERE {where} AND event_type = 'purchase'
"""


def _keyed_summary_sql(cur, where: str, bind: dict) -> str | None:
    """:func:`_sorted_summary_sql` on the customers' dense keys (``events.customer_key``, ids of
    any form): the packed sort groups on the key and each purchasing customer's id is read back
    from the dataset's key dictionary (one row per customer). None where some key is missing
    from the dictionary or the dictionary gives two ids one key (the ids' form or the SQL
    statement then computes the summary)."""
    import pyarrow as pa

    sql = _KEYED_ROWS_SQL.format(where=where)
    rows = cur.sql(sql, params=_binds(sql, bind)).to_arrow_table()
    k = rows.column("k").to_numpy()
    with _small_pages():
        table = _purchase_columns(k, rows.column("t").to_numpy(), rows.column("r").to_numpy())
    del rows, k
    if table is None:
        return None
    words = cur.sql("SELECT customer_key, customer_id FROM customer_keys WHERE dataset = $dataset",
                    params={"dataset": bind["dataset"]}).to_arrow_table()
    dict_keys = words.column("customer_key").to_numpy()
    keys = table.column("customer_id").to_numpy()
    top = int(keys.max())
    if dict_keys.size == 0 or int(dict_keys.min()) < 0 or int(keys.min()) < 0:
        return None
    size = max(int(dict_keys.max()), top) + 1
    if np.bincount(dict_keys, minlength=size).max() > 1:
        return None
    where_in_dict = np.full(size, -1, dtype=np.int64)
    where_in_dict[dict_keys] = np.arange(dict_keys.size)
    pos = where_in_dict[keys]
    if (pos < 0).any():
        return None
    ids = words.column("customer_id").combine_chunks().take(pa.array(pos))
    table = table.set_column(0, "customer_id", ids)
    cur.register("purchase_customers", table)
    return _PURCHASE_CUSTOMERS_SQL.format(source="events", where=where, money=_MONEY[0], id_text="customer_id")


def _summary_sql(source: str, where: str, money: str = _MONEY[0]) -> str:
    return _SUMMARY_SQL.format(source=source, where=where, money=money)


def _days_summary_sql(where: str, money: str = _MONEY[0]) -> str:
    return _DAYS_SUMMARY_SQL.format(where=where, money=money)


def _money_overflow(exc: BaseException) -> bool:
    """DuckDB's error for an amount too large for the narrow money type (retried in the wide one)."""
    return isinstance(exc, duckdb.ConversionException) and "DECIMAL(18,6)" in str(exc)


def _summary_query(cur, dataset: str, version: str | None, money: str, start_day,
                   bind: dict | None = None) -> str:
    """The summary SQL for ``dataset``: from its stored per-day rows when they were made from the
    events as they are now (``version``: their fingerprint; None: compute it only if such rows
    exist), else from the events: through the packed sort when ``bind`` (the binds
    :func:`customer_summary` makes) is given and it applies, else in one SQL statement."""
    rows = cur.execute("SELECT data_version FROM customer_day_runs WHERE dataset = ?", [dataset]).fetchall()
    if rows:
        if version is None:
            version = events_fingerprint_cursor(cur, dataset)
        if rows[0][0] == version:
            where = "dataset = $dataset AND day < $end_day" + (
                " AND day >= $start_day" if start_day is not None else "")
            return _days_summary_sql(where, money)
    where = "dataset = $dataset AND event_time < $end" + (
        " AND event_time >= $start" if start_day is not None else "")
    if bind is not None and money == _MONEY[0]:
        sql = _sorted_summary_sql(cur, where, bind)
        if sql is not None:
            return sql
    return _summary_sql("events", where, money)


def _binds(sql: str, bind: dict) -> dict:
    """The parameters ``sql`` uses (DuckDB refuses unused named parameters)."""
    return {k: v for k, v in bind.items() if re.search(rf"\${k}\b", sql)}


def _epoch_day(ts: pd.Timestamp) -> int:
    return int((ts - _EPOCH).days)


def _finish(df: pd.DataFrame, unit: str, as_of: pd.Timestamp, dataset: str | None) -> pd.DataFrame:
    """Index, dtypes and attrs shared by every summary result (rows come sorted by id)."""
    if "customer_id" in df.columns:
        df = df.set_index("customer_id")
    if not (pd.api.types.is_string_dtype(df.index.dtype) or df.index.dtype == object):
        df.index = df.index.astype(str)
    df.index.name = "customer_id"
    for col in ("first_purchase", "last_purchase", "first_event", "last_event"):
        if not pd.api.types.is_datetime64_any_dtype(df[col].dtype):
            df[col] = pd.to_datetime(df[col])
    for col in ("n_orders", "n_views", "n_searches", "n_carts", "n_purchases", "n_returns", "n_reviews"):
        if df[col].dtype != "int64":
            df[col] = df[col].fillna(0).astype("int64")
    for col in ("frequency", "recency", "T", "monetary_value", "total_revenue", "return_revenue",
                "net_revenue", "avg_rating", "tenure", "avg_gap"):
        if df[col].dtype != "float64":
            df[col] = df[col].astype("float64")
    if list(df.columns) != SUMMARY_COLUMNS:
        df = df[SUMMARY_COLUMNS]
    df.attrs = {"unit": unit, "as_of": as_of, "dataset": dataset}
    return df


# ---------------------------------------------------------------- warehouse
def events_fingerprint(wh: Warehouse, dataset: str) -> str:
    """An exact, order-independent fingerprint of a dataset's events (one pass over them): what
    the persisted summaries and the stored per-day history check before they are reused, so even
    rows written without an ingestion record invalidate them. It is not the data version of the
    derived data (``analytics.prepare.data_version``, a cheap lookup every cached read is keyed by)."""
    return events_fingerprint_cursor(wh.cursor(), dataset)


def events_fingerprint_cursor(cur, dataset: str) -> str:
    """``events_fingerprint`` on a given cursor (e.g. inside a transaction)."""
    row = cur.execute(
        # order-independent and exact (a float sum would differ run to run with parallel threads)
        "SELECT count(*), max(ingestion_id), min(event_time), max(event_time), "
        "bit_xor(row_hash), bit_xor(hash(event_type, revenue, rating)) FROM events WHERE dataset = ?",
        [dataset],
    ).fetchall()[0]  # fetchall: leaves no open result on the cursor
    return json.dumps([None if v is None else str(v) for v in row])


def _attached(wh: Warehouse, dataset: str, as_of, unit: str, calibration_start):
    """The attached summary of ``dataset`` (``analytics.spark.attach``), or None for a dataset of events."""
    from analytics.spark.attach import attached_summary

    return attached_summary(wh, dataset, as_of, unit, calibration_start=calibration_start)


def _params_hash(params: dict) -> str:
    blob = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def customer_summary(
    wh: Warehouse,
    dataset: str,
    as_of,
    unit: str = "days",
    *,
    calibration_start=None,
    persist: bool = True,
) -> pd.DataFrame:
    """Per-customer summary of ``dataset`` as of the end of day ``as_of``.

    ``calibration_start`` (optional) drops events before that day (the window is
    ``[calibration_start, as_of]``, both days inclusive). Events after the as-of
    day are always ignored, so a past as-of date gives a true calibration
    summary. With ``persist`` the result is stored in the warehouse (one
    transaction) and reused by later calls with the same key while the
    dataset's events are unchanged. See the module docstring for the columns.
    """
    unit_days = check_unit(unit)
    wh.require_dataset(dataset)
    attached = _attached(wh, dataset, as_of, unit, calibration_start)
    if attached is not None:  # a summary computed on Spark, attached without its events
        return attached
    as_of_day = _as_day(as_of, "the as-of date")
    start_day = None if calibration_start is None else _as_day(calibration_start, "the calibration start")
    if start_day is not None and start_day > as_of_day:
        raise SummaryError(
            f"the calibration start {start_day.date()} is after the as-of date {as_of_day.date()}"
        )
    end = as_of_day + pd.Timedelta(days=1)
    bind = {"dataset": dataset, "end": _py(end), "as_of": _py(as_of_day), "unit_days": unit_days,
            "end_day": _epoch_day(end)}
    if start_day is not None:
        bind["start"] = _py(start_day)
        bind["start_day"] = _epoch_day(start_day)

    def run(cur, sql):
        return cur.execute(sql, _binds(sql, bind))

    if not persist:
        for money in _MONEY:
            try:
                # one snapshot: stored per-day rows are checked against the events they stand for
                with wh.transaction() as tx:
                    df = run(tx, _summary_query(tx, dataset, None, money, start_day, bind)).df()
                return _finish(df, unit, as_of_day, dataset)
            except duckdb.ConversionException as exc:
                if not _money_overflow(exc) or money == _MONEY[-1]:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    params = {"calibration_start": None if start_day is None else str(start_day.date()),
              "summary_version": _SUMMARY_VERSION}
    phash = _params_hash(params)
    cols = ", ".join(["customer_id"] + [f'"{c}"' for c in SUMMARY_COLUMNS])
    money = _MONEY[0]
    attempt = 0
    while True:
        try:
            # lookup, (re)compute and read back in one transaction: a concurrent ingest or
            # pruning by another session can never hand back a half-deleted run
            with wh.transaction() as tx:
                version = events_fingerprint_cursor(tx, dataset)
                row = tx.execute(
                    "SELECT run_id FROM customer_summary_runs WHERE dataset = ? AND as_of = ? "
                    "AND unit = ? AND params_hash = ? AND data_version = ? ORDER BY run_id DESC LIMIT 1",
                    [dataset, as_of_day.date(), unit, phash, version],
                ).fetchone()
                if row is None:
                    sql = _summary_query(tx, dataset, version, money, start_day, bind)
                    run_id = _compute_run(tx, sql, _binds(sql, bind),
                                          dataset, as_of_day, unit, phash, params, version)
                else:
                    run_id = row[0]
                df = tx.execute(
                    f"SELECT {cols} FROM customer_summaries WHERE run_id = ? ORDER BY customer_id", [run_id]
                ).df()
            return _finish(df, unit, as_of_day, dataset)
        except duckdb.ConversionException as exc:
            if not _money_overflow(exc) or money == _MONEY[-1]:
                raise
            money = _MONEY[-1]
        except duckdb.TransactionException:
            attempt += 1
            if attempt == 3:
                raise SummaryError(
                    "the customer summary could not be saved because another session was writing "
                    "the same data; try again"
                ) from None
        except WarehouseError as exc:
            if not exc.disk_full:
                raise
            # the stored copy is only for reuse: with the warehouse's disk full the summary is still
            # computed (and scores, exports and reports made from it), just not kept
            return customer_summary(wh, dataset, as_of, unit, calibration_start=calibration_start, persist=False)


def _compute_run(tx, sql, bind, dataset, as_of_day, unit, phash, params, version) -> int:
    # drop the run this one replaces, runs made from older data (they can never be
    # reused) and all but the most recent MAX_RUNS_PER_DATASET - 1 others
    old = [r[0] for r in tx.execute(
        "SELECT run_id FROM customer_summary_runs WHERE dataset = ? AND ("
        " (as_of = ? AND unit = ? AND params_hash = ?) OR data_version <> ?"
        " OR run_id NOT IN (SELECT run_id FROM customer_summary_runs WHERE dataset = ?"
        "   ORDER BY run_id DESC LIMIT ?))",
        [dataset, as_of_day.date(), unit, phash, version, dataset, MAX_RUNS_PER_DATASET - 1],
    ).fetchall()]
    for run in old:
        tx.execute("DELETE FROM customer_summaries WHERE run_id = ?", [run])
        tx.execute("DELETE FROM customer_summary_runs WHERE run_id = ?", [run])
    run_id = tx.execute("SELECT nextval('customer_summary_run_seq')").fetchone()[0]
    tx.execute(
        f"INSERT INTO customer_summaries SELECT CAST($run_id AS BIGINT) AS run_id, * FROM ({sql})",
        {**bind, "run_id": run_id},
    )
    n = tx.execute("SELECT count(*) FROM customer_summaries WHERE run_id = ?", [run_id]).fetchone()[0]
    tx.execute(
        "INSERT INTO customer_summary_runs (run_id, dataset, as_of, unit, params_hash, params, "
        "data_version, n_customers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, dataset, as_of_day.date(), unit, phash, json.dumps(params), version, n],
    )
    return run_id


def delete_summaries(wh: Warehouse, dataset: str, tx=None) -> int:
    """Remove a dataset's persisted summaries and summary history (call it when the dataset is deleted).

    Pass ``tx`` (a cursor inside ``wh.transaction()``) to take part in a larger
    transaction. Returns the number of runs removed.
    """
    def run(cur) -> int:
        runs = [r[0] for r in cur.execute(
            "SELECT run_id FROM customer_summary_runs WHERE dataset = ?", [dataset]).fetchall()]
        for run_id in runs:
            cur.execute("DELETE FROM customer_summaries WHERE run_id = ?", [run_id])
        cur.execute("DELETE FROM customer_summary_runs WHERE dataset = ?", [dataset])
        cur.execute("DELETE FROM customer_days WHERE dataset = ?", [dataset])  # the summary history
        cur.execute("DELETE FROM customer_day_runs WHERE dataset = ?", [dataset])
        return len(runs)

    if tx is not None:
        return run(tx)
    with wh.transaction() as cur:
        return run(cur)


def summary_from_transactions(
    df: pd.DataFrame,
    customer_col: str,
    time_col: str,
    as_of,
    unit: str = "days",
    monetary_col: str | None = None,
) -> pd.DataFrame:
    """The same summary for a plain DataFrame of purchases (every row a purchase).

    Runs the identical SQL on an in-process DuckDB over ``df`` (for tests,
    notebooks and the CDNOW golden data). Without ``monetary_col`` the revenue
    columns are 0. Only the purchase-related and count columns are meaningful
    (every row is a purchase event).
    """
    import duckdb

    unit_days = check_unit(unit)
    as_of_day = _as_day(as_of, "the as-of date")
    for col in (customer_col, time_col) + ((monetary_col,) if monetary_col else ()):
        if col not in df.columns:
            raise SummaryError(f"no column {col!r} in the transactions")
    frame = pd.DataFrame({
        "customer_id": df[customer_col].astype(str),
        "event_time": pd.to_datetime(df[time_col]).astype("datetime64[us]"),
        "event_type": "purchase",
        "revenue": (pd.to_numeric(df[monetary_col], errors="coerce").astype("float64")
                    if monetary_col else 0.0),
        "rating": np.nan,
    })
    con = duckdb.connect(":memory:")
    try:
        con.register("tx_frame", frame)
        bind = {"end": _py(as_of_day + pd.Timedelta(days=1)), "as_of": _py(as_of_day),
                "unit_days": unit_days}
        for money in _MONEY:
            try:
                out = con.execute(_summary_sql("tx_frame", "event_time < $end", money), bind).df()
                break
            except duckdb.ConversionException as exc:
                if not _money_overflow(exc) or money == _MONEY[-1]:
                    raise
    finally:
        con.close()
    return _finish(out, unit, as_of_day, None)


def model_inputs(summary: pd.DataFrame) -> pd.DataFrame:
    """The purchasers only (rows with a first purchase): frequency, recency, T, monetary_value."""
    return summary.loc[summary["n_orders"] > 0, ["frequency", "recency", "T", "monetary_value"]]


def as_of_date(value) -> _dt.date:
    """Parse a user-given as-of date (str/date/Timestamp) to a date; SummaryError if invalid."""
    return _as_day(value, "the as-of date").date()


# ---------------------------------------------------------------- the summary at any as-of day
_HISTORY_SQL = """
-- one row per customer and active day (a day with any event): what happened that day
SELECT CAST(customer_id AS VARCHAR) AS customer_id,
       CAST(CAST(event_time AS DATE) - DATE '1970-01-01' AS INTEGER) AS day,
       CAST(count(*) FILTER (WHERE event_type = 'purchase') AS INTEGER) AS n_p,
       coalesce(sum(revenue) FILTER (WHERE event_type = 'purchase'), 0) AS rev,
       CAST(count(*) FILTER (WHERE event_type = 'view') AS INTEGER) AS n_v,
       CAST(count(*) FILTER (WHERE event_type = 'search') AS INTEGER) AS n_s,
       CAST(count(*) FILTER (WHERE event_type = 'cart') AS INTEGER) AS n_c,
       CAST(count(*) FILTER (WHERE event_type = 'return') AS INTEGER) AS n_r,
       CAST(count(*) FILTER (WHERE event_type = 'review') AS INTEGER) AS n_w,
       coalesce(sum(revenue) FILTER (WHERE event_type = 'return'), 0) AS rrev,
       coalesce(sum(rating), 0) AS srat,
       CAST(count(rating) AS INTEGER) AS n_rat,
       epoch_us(min(event_time)) AS fe,
       epoch_us(max(event_time)) AS le
FROM events
WHERE dataset = $dataset
GROUP BY customer_id, CAST(event_time AS DATE)
ORDER BY customer_id, day
"""

_US_PER_DAY = 86_400_000_000
_EPOCH = pd.Timestamp("1970-01-01")


def _small_uint(values: np.ndarray) -> np.ndarray:
    """Non-negative integers in the smallest unsigned type that holds them (memory at 1M customers)."""
    top = int(values.max()) if values.size else 0
    return values.astype(np.min_scalar_type(max(top, 0)), copy=False)


def _lossless_float32(values: np.ndarray) -> np.ndarray:
    """float32 when that loses nothing (e.g. sums of whole-star ratings), else float64."""
    small = values.astype(np.float32)
    if np.array_equal(small.astype(np.float64), values, equal_nan=True):
        return small
    return values


class SummaryHistory:
    """Every customer's running totals per active day, from which :func:`customer_summary` at
    *any* as-of day is a gather instead of a pass over all the events.

    Built once per dataset data version by :func:`summary_history`: one DuckDB pass over the
    events grouped per customer and day, then running totals per customer in NumPy. It holds one
    row per (customer, day with any event), counts in the smallest integer type that holds them,
    in memory (about 50 bytes a row: ~0.8 GB for the 16.5M active days of 1M generated sample
    customers / 58M events; :attr:`nbytes`). :meth:`summary` finds every customer's last active
    day on or before the as-of day (a compare and a segmented count over the rows) and reads the
    running totals there: a fraction of a second at 1M customers, against ~20 s for the SQL pass.

    The result equals ``customer_summary(wh, dataset, as_of, unit, persist=False)`` (no
    calibration start): ids, order, dtypes, counts, days and times exactly; revenue and rating
    sums to float rounding (the running sums add a customer's days in day order, the SQL in
    any order). :meth:`cohort_counts` gives the purchase-month cohorts the same way.
    """

    def __init__(self, table, dataset: str, version: str):
        import pyarrow as pa
        import pyarrow.compute as pc

        n_rows = table.num_rows
        self.dataset = dataset
        self.version = version
        # (customers, rows) located per relative day: a new Explorer date asks for the same day
        # for its summary and again for the migration's positions (see _located)
        self._located_cache: collections.OrderedDict = collections.OrderedDict()
        self._located_lock = threading.Lock()
        self.n_rows = n_rows
        ids = table.column("customer_id").combine_chunks() if n_rows else pa.array([], pa.string())
        if n_rows:
            change = np.empty(n_rows, dtype=bool)
            change[0] = True
            change[1:] = pc.not_equal(ids.slice(1), ids.slice(0, n_rows - 1)).to_numpy(zero_copy_only=False)
            starts = np.flatnonzero(change)
        else:
            starts = np.array([], dtype=np.int64)
        self.starts = starts.astype(np.int64)
        n_cust = len(starts)
        self.customer_index = pd.Index(ids.take(pa.array(self.starts)).to_pylist(), dtype=str, name="customer_id")
        del ids
        lengths = np.diff(np.append(self.starts, n_rows))
        seg = np.repeat(np.arange(n_cust, dtype=np.int32), lengths)
        ends = self.starts + lengths - 1

        def col(name: str) -> np.ndarray:
            return table.column(name).to_numpy()

        def running_int(x: np.ndarray) -> np.ndarray:  # exact per-customer running sums
            # int32 when the column's grand total fits (half the memory traffic), else int64
            wide = x.dtype == np.bool_ or int(x.sum(dtype=np.int64)) < 2**31
            cs = np.cumsum(x, dtype=np.int32 if wide else np.int64)
            before = np.zeros(n_cust, dtype=cs.dtype)
            before[1:] = cs[ends[:-1]]
            cs -= np.repeat(before, lengths)
            return _small_uint(cs)

        def running_float(x: np.ndarray) -> np.ndarray:  # per customer, in day order
            return pd.Series(x, copy=False).groupby(seg, sort=False).cumsum().to_numpy(dtype=np.float64)

        day = col("day")  # days since 1970 (int32)
        self.day0 = int(day.min()) if n_rows else 0
        rel = day - np.int32(self.day0)
        self.day = _small_uint(rel)
        n_p = col("n_p")
        purchased = n_p > 0
        self.counts = {
            "n_orders": running_int(purchased),
            "n_purchases": running_int(n_p),
            **{name: running_int(col(c)) for name, c in (
                ("n_views", "n_v"), ("n_searches", "n_s"), ("n_carts", "n_c"), ("n_returns", "n_r"),
                ("n_reviews", "n_w"), ("n_ratings", "n_rat"))},
        }
        self.sums = {
            "total_revenue": running_float(col("rev")),
            "return_revenue": running_float(col("rrev")),
            "rating_sum": _lossless_float32(running_float(col("srat"))),
        }
        fe = col("fe")
        self.first_event = fe[self.starts].astype(np.int64)
        le = col("le").astype(np.int64, copy=False)
        sec_of_day = le - day.astype(np.int64) * _US_PER_DAY
        if n_rows and not (sec_of_day % 1_000_000).any():
            self._le_seconds = True   # whole seconds (usual): seconds of the day, 4 bytes a row
            self.last_event = (sec_of_day // 1_000_000).astype(np.uint32)
        else:
            self._le_seconds = False
            self.last_event = le
        # last purchase day up to each row: a running max that restarts per customer (customer
        # offsets keep it from leaking across customers)
        span = int(rel.max()) + 2 if n_rows else 2
        base = np.repeat(np.arange(n_cust, dtype=np.int64) * span, lengths)
        lp = np.maximum.accumulate(np.where(purchased, rel, -1) + base)
        lp -= base
        self.last_purchase = lp.astype(np.int32)  # -1: no purchase yet (relative to day0)
        del base
        # the first purchase day and its revenue never change once on or before the as-of day
        p_rows = np.flatnonzero(purchased)
        pc_ = seg[p_rows]
        first_in_cust = np.ones(p_rows.size, dtype=bool)
        first_in_cust[1:] = pc_[1:] != pc_[:-1]
        self.first_purchase = np.full(n_cust, -1, dtype=np.int32)
        self.first_revenue = np.full(n_cust, np.nan)
        self.first_purchase[pc_[first_in_cust]] = rel[p_rows[first_in_cust]]
        self.first_revenue[pc_[first_in_cust]] = col("rev")[p_rows[first_in_cust]]
        # cohorts: the first purchase day of each calendar month per customer (month of each
        # relative day from a small lookup table, not a date conversion per row)
        month_of = (np.arange(self.day0, self.day0 + span, dtype=np.int64).astype("datetime64[D]")
                    .astype("datetime64[M]").astype(np.int64))
        pm = month_of[rel[p_rows]]
        new_month = first_in_cust.copy()
        new_month[1:] |= pm[1:] != pm[:-1]
        mrows = p_rows[new_month]
        self._m_cust = seg[mrows]
        self._m_month = pm[new_month].astype(np.int32)
        self._m_day = self.day[mrows]
        # each row's cohort (its customer's first purchase month, relative to the earliest month)
        # and months since it: a customer's rows up to any day are a prefix of its rows, so the
        # cohort is the same at every as-of day where the customer has bought (cohort_counts
        # is then a compare and two bincounts, no per-date regrouping)
        n_m = self._m_cust.size
        first_m = np.ones(n_m, dtype=bool)
        first_m[1:] = self._m_cust[1:] != self._m_cust[:-1]
        cohort = np.repeat(self._m_month[first_m], np.diff(np.append(np.flatnonzero(first_m), n_m)))
        self._m0 = int(self._m_month.min()) if n_m else 0
        rel_cohort = cohort - self._m0
        since = self._m_month - cohort
        small = n_m == 0 or max(int(rel_cohort.max()), int(since.max())) < 2**15
        self._m_cohort = rel_cohort.astype(np.int16 if small else np.int32)
        self._m_since = since.astype(np.int16 if small else np.int32)
        self._m_first = first_m

    @property
    def n_customers(self) -> int:
        return len(self.starts)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (customer ids not counted)."""
        arrays = [self.starts, self.day, self.first_event, self.last_event, self.last_purchase,
                  self.first_purchase, self.first_revenue, self._m_cust, self._m_month, self._m_day,
                  self._m_cohort, self._m_since, self._m_first,
                  *self.counts.values(), *self.sums.values()]
        return int(sum(a.nbytes for a in arrays))

    def _relative_day(self, as_of_day: pd.Timestamp) -> int:
        return (as_of_day - _EPOCH).days - self.day0

    def _upto(self, days: np.ndarray, t: int) -> np.ndarray:
        if t < 0:
            return np.zeros(len(days), dtype=bool)
        if t > np.iinfo(days.dtype).max:
            return np.ones(len(days), dtype=bool)
        return days <= t

    #: relative days whose located customers/rows are kept (16 bytes per customer each)
    LOCATED_CACHE_DAYS = 4

    def _located(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(customers with an event on or before relative day ``t``, the row of their last such day).
        The last few days asked for are kept (read-only arrays), since a page asks for the same
        day more than once (its summary, then its customers' positions for a migration)."""
        if not self.n_rows:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        with self._located_lock:
            hit = self._located_cache.get(t)
            if hit is not None:
                self._located_cache.move_to_end(t)
                return hit
        n_upto = np.add.reduceat(self._upto(self.day, t), self.starts, dtype=np.int32)
        cust = np.flatnonzero(n_upto > 0)
        rows = self.starts[cust] + n_upto[cust] - 1
        cust.flags.writeable = False
        rows.flags.writeable = False
        with self._located_lock:
            self._located_cache[t] = (cust, rows)
            while len(self._located_cache) > self.LOCATED_CACHE_DAYS:
                self._located_cache.popitem(last=False)
        return cust, rows

    def customer_positions(self, as_of) -> np.ndarray:
        """Positions (in :attr:`customer_index`) of the customers :meth:`summary` returns for
        ``as_of``, in its row order: an integer key to line up summaries of two dates."""
        cust, _ = self._located(self._relative_day(_as_day(as_of, "the as-of date")))
        return cust

    def summary(self, as_of, unit: str = "days") -> pd.DataFrame:
        """``customer_summary(wh, dataset, as_of, unit, persist=False)`` from the running totals."""
        unit_days = check_unit(unit)
        as_of_day = _as_day(as_of, "the as-of date")
        t = self._relative_day(as_of_day)
        cust, k = self._located(t)
        n_orders = self.counts["n_orders"][k].astype(np.int64)
        buyer = n_orders > 0
        fp = self.first_purchase[cust].astype(np.int64)
        lp = self.last_purchase[k].astype(np.int64)
        total = self.sums["total_revenue"][k]
        ret = self.sums["return_revenue"][k]
        nrat = self.counts["n_ratings"][k].astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            recency = np.where(buyer, (lp - fp) / unit_days, np.nan)
            age = np.where(buyer, (t - fp) / unit_days, np.nan)
            monetary = np.where(n_orders > 1, (total - self.first_revenue[cust]) / (n_orders - 1),
                                np.where(buyer, 0.0, np.nan))
            avg_rating = np.where(nrat > 0, self.sums["rating_sum"][k].astype(np.float64) / nrat, np.nan)
            avg_gap = np.where(n_orders >= 2, (lp - fp) / unit_days / (n_orders - 1), np.nan)
        first_event = self.first_event[cust]
        fe_day = np.floor_divide(first_event, _US_PER_DAY) - self.day0
        if self._le_seconds:
            last_event = ((self.day[k].astype(np.int64) + self.day0) * _US_PER_DAY
                          + self.last_event[k].astype(np.int64) * 1_000_000)
        else:
            last_event = self.last_event[k]

        def days_ts(d: np.ndarray) -> np.ndarray:
            out = (np.where(buyer, d, 0) + self.day0).astype("datetime64[D]").astype("datetime64[us]")
            out[~buyer] = np.datetime64("NaT")
            return out

        df = pd.DataFrame({
            "first_purchase": days_ts(fp),
            "last_purchase": days_ts(lp),
            "frequency": np.where(buyer, n_orders - 1, np.nan).astype(np.float64),
            "recency": recency,
            "T": age,
            "monetary_value": monetary,
            "total_revenue": total,
            "return_revenue": ret,
            # differences of per-day running sums carry float noise (a customer who returned
            # everything got -1e-13, not 0): rounded to 1e-6, far below any currency's minor unit
            "net_revenue": np.round(total - ret, 6),
            "n_orders": n_orders,
            **{c: self.counts[c][k].astype(np.int64) for c in
               ("n_views", "n_searches", "n_carts", "n_purchases", "n_returns", "n_reviews")},
            "avg_rating": avg_rating,
            "tenure": (t - fe_day) / unit_days,
            "avg_gap": avg_gap,
            "first_event": first_event.astype("datetime64[us]"),
            "last_event": last_event.astype("datetime64[us]"),
        }, index=self.customer_index.take(cust) if cust.size else pd.Index([], dtype=object, name="customer_id"),
            copy=False)  # every column is a fresh array made here: no copy into consolidated blocks
        return _finish(df, unit, as_of_day, self.dataset)

    def rfm_inputs(self, as_of) -> pd.DataFrame:
        """Only ``last_purchase``, ``n_orders`` and ``net_revenue`` of :meth:`summary` (same rows,
        values and dtypes, attrs in days): what RFM scores need, without building the other
        columns (for a migration's earlier date)."""
        as_of_day = _as_day(as_of, "the as-of date")
        cust, k = self._located(self._relative_day(as_of_day))
        n_orders = self.counts["n_orders"][k].astype(np.int64)
        buyer = n_orders > 0
        lp = (np.where(buyer, self.last_purchase[k], 0).astype(np.int64) + self.day0).astype("datetime64[D]")
        lp = lp.astype("datetime64[us]")
        lp[~buyer] = np.datetime64("NaT")
        df = pd.DataFrame({
            "last_purchase": lp, "n_orders": n_orders,
            "net_revenue": np.round(self.sums["total_revenue"][k] - self.sums["return_revenue"][k], 6),
        }, index=self.customer_index.take(cust) if cust.size else pd.Index([], dtype=object, name="customer_id"))
        df.attrs = {"unit": "days", "as_of": as_of_day, "dataset": self.dataset}
        return df

    def rfm_values(self, as_of) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What :func:`analytics.scores.rfm_scores` reads from :meth:`rfm_inputs`, as plain arrays
        in the same row order: (customer positions, days from the last purchase to the as-of day
        (float; NaN without purchase), ``n_orders`` (int64), ``net_revenue``). Days are whole
        (purchase days and the as-of day are midnights), so they equal the summary's exactly."""
        as_of_day = _as_day(as_of, "the as-of date")
        t = self._relative_day(as_of_day)
        cust, k = self._located(t)
        n_orders = self.counts["n_orders"][k].astype(np.int64)
        days = (t - self.last_purchase[k].astype(np.int64)).astype(np.float64)
        days[n_orders <= 0] = np.nan
        net = self.sums["total_revenue"][k] - self.sums["return_revenue"][k]
        return cust, days, n_orders, net

    def cohort_counts(self, as_of, max_months: int) -> pd.DataFrame:
        """Purchase-month cohorts up to the end of ``as_of``: per (``cohort`` = first purchase
        month, ``months_since`` it, up to ``max_months``) the ``customers`` of the cohort who
        purchased in that month and the ``cohort_size``, sorted by cohort and month (the rows
        ``analytics.explorer.cohort_retention`` computes in SQL)."""
        as_of_day = _as_day(as_of, "the as-of date")
        keep = self._upto(self._m_day, self._relative_day(as_of_day))
        if not keep.any():
            return pd.DataFrame({"cohort": pd.Series(dtype="datetime64[us]"),
                                 "months_since": pd.Series(dtype=np.int32),
                                 "customers": pd.Series(dtype=np.int64),
                                 "cohort_size": pd.Series(dtype=np.int64)})
        span = int(max_months) + 1
        ok = keep & (self._m_since <= int(max_months))
        counts = np.bincount(self._m_cohort[ok].astype(np.int64) * span + self._m_since[ok])
        sizes = np.bincount(self._m_cohort[keep & self._m_first])  # a customer's first row: its cohort
        nz = np.flatnonzero(counts)
        coh = nz // span
        return pd.DataFrame({
            "cohort": (coh + self._m0).astype("datetime64[M]").astype("datetime64[us]"),
            "months_since": (nz % span).astype(np.int32),
            "customers": counts[nz].astype(np.int64),
            "cohort_size": sizes[coh].astype(np.int64),
        })


_DAY_COLUMNS = ("customer_id", "day", "n_p", "rev", "n_v", "n_s", "n_c", "n_r", "n_w", "rrev", "srat", "n_rat",
                "fe", "le")


def _sorted_by_customer(table) -> bool:
    """Rows in (customer_id, day) order (a stored table read back in insertion order normally is)."""
    import pyarrow.compute as pc

    n = table.num_rows
    if n < 2:
        return True
    ids = table.column("customer_id").combine_chunks()
    day = table.column("day").combine_chunks()
    a, b = ids.slice(0, n - 1), ids.slice(1)
    ok = pc.or_(pc.less(a, b), pc.and_(pc.equal(a, b), pc.less(day.slice(0, n - 1), day.slice(1))))
    return bool(pc.all(ok).as_py())


def summary_history(wh: Warehouse, dataset: str, *, persist: bool = True) -> SummaryHistory:
    """The :class:`SummaryHistory` of ``dataset``: one pass over its events grouped per customer
    and day. With ``persist`` those per-day rows are stored in the warehouse
    (``customer_days``, one set per dataset, tagged with the events' :func:`events_fingerprint`) and
    read back while the events are unchanged, so a restarted app does not pass over the events
    again. Build it once per data version (the dashboard caches it) and ask it for summaries at
    any as-of day."""
    wh.require_dataset(dataset)
    from analytics.spark.attach import attached_as_of, events_needed_message

    day = attached_as_of(wh, dataset)
    if day is not None:
        raise SummaryError(events_needed_message(dataset, day))
    if not persist:
        version = events_fingerprint(wh, dataset)
        table = wh.cursor().sql(_HISTORY_SQL, params={"dataset": dataset}).to_arrow_table()
        return SummaryHistory(table, dataset, version)
    cols = ", ".join(_DAY_COLUMNS)
    for attempt in range(3):
        try:
            with wh.transaction() as tx:
                version = events_fingerprint_cursor(tx, dataset)
                rows = tx.execute("SELECT data_version FROM customer_day_runs WHERE dataset = ?",
                                  [dataset]).fetchall()
                if not rows or rows[0][0] != version:
                    tx.execute("DELETE FROM customer_days WHERE dataset = ?", [dataset])
                    tx.execute("DELETE FROM customer_day_runs WHERE dataset = ?", [dataset])
                    tx.execute(f"INSERT INTO customer_days (dataset, {cols}) SELECT $dataset, * FROM ({_HISTORY_SQL})",
                               {"dataset": dataset})
                    n = tx.execute("SELECT count(*) FROM customer_days WHERE dataset = ?", [dataset]).fetchall()[0][0]
                    tx.execute("INSERT INTO customer_day_runs (dataset, data_version, n_rows) VALUES (?, ?, ?)",
                               [dataset, version, n])
                table = tx.sql(f"SELECT {cols} FROM customer_days WHERE dataset = $dataset",
                               params={"dataset": dataset}).to_arrow_table()
            break
        except duckdb.TransactionException:
            if attempt == 2:
                raise SummaryError("the customer history could not be saved because another session was "
                                   "writing the same data; try again") from None
    if not _sorted_by_customer(table):  # insertion order not kept: sort here (rare)
        table = table.sort_by([("customer_id", "ascending"), ("day", "ascending")])
    return SummaryHistory(table, dataset, version)
