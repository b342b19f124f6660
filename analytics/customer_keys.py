"""Dense integer customer keys, kept in the warehouse beside the customer ids.

A dataset whose customer ids carry no number of their own (UUIDs, e-mail addresses, hashes)
numbers its customers 1, 2, 3, ... in ``customer_keys`` (dataset, customer_id, customer_key),
and every one of its events carries its customer's number in ``events.customer_key``: a
surrogate key, as a warehouse's dimension tables have. A load gives the ids it brings for the
first time the next numbers (in id order within the load), from its staged rows, and writes every
new event with its key in the statement that writes the event (``analytics.ingest.loader``); a
deleted dataset takes its keys with it (every table with a ``dataset`` column is cleared). Keys are never
reused within a dataset, so their range is bounded by the number of customers it has ever had
(what the customer summary's packed sort needs).

Ids that are canonical integers ("12345") or one text followed by a number ("C0000123", the
usual forms of exported customer numbers) are their own key: the summary reads the number from
the id and checks every id against it (``analytics.summary._id_form``), so such a dataset gets
no key table and its loads pay nothing for keys. A dataset gets keys at the first load whose ids
are of another form (or of a form other than its earlier loads'): that load numbers all the
dataset's customers, earlier ones included (their rows updated once), and every later load
numbers its own.

What keys are for: grouping per customer on a small integer instead of the id's text, whatever
form the ids have. The customer summary sorts purchases on a packed (key, day, row) integer and
writes the ids back from the dictionary, one row per customer (:mod:`analytics.summary`).
Events written without a key (by hand, or by a tool that inserts rows directly) keep a NULL key:
readers that use keys check that every row they read has one and otherwise group on the ids.
"""
from __future__ import annotations

SAMPLE = 1000  # ids of a load whose form decides whether a keyless dataset needs keys

# The keys of ids new to the dataset among the ids ``{source}`` selects: the next numbers after the
# dataset's highest, in id order (so the same file loaded into a new dataset gets the same keys)
_NEW_KEYS_SQL = """
INSERT INTO customer_keys (dataset, customer_id, customer_key)
SELECT $dataset, customer_id, CAST($base + row_number() OVER (ORDER BY customer_id) AS INTEGER)
FROM (SELECT DISTINCT customer_id FROM {source}) n
{anti}
"""

_SET_KEYS_SQL = """
UPDATE events SET customer_key = k.customer_key
FROM (SELECT customer_id, customer_key FROM customer_keys WHERE dataset = $dataset) k
WHERE events.dataset = $dataset AND events.customer_key IS NULL AND events.customer_id = k.customer_id
"""

#: what a load's INSERT joins to its rows (alias ``{alias}``) to write each row's key as it is written
KEY_JOIN = ("LEFT JOIN (SELECT customer_id AS key_of, customer_key FROM customer_keys WHERE dataset = $dataset) "
            "keys_ ON keys_.key_of = {alias}.customer_id")


def has_keys(cur, dataset: str) -> bool:
    """Whether ``dataset`` numbers its customers in ``customer_keys``."""
    return cur.execute("SELECT count(*) FROM (SELECT 1 FROM customer_keys WHERE dataset = ? LIMIT 1)",
                       [dataset]).fetchone()[0] > 0


_NO_IDS = object()


def _form(cur, where: str, params: list):
    """The :func:`analytics.summary._id_form` of the first ids of the rows ``where`` selects
    (``_NO_IDS`` when there are none)."""
    from analytics.summary import _id_form

    ids = [r[0] for r in cur.execute(f"SELECT customer_id FROM events WHERE {where} LIMIT {SAMPLE}",
                                     params).fetchall()]
    return _id_form(ids) if ids else _NO_IDS


def needs_keys(cur, dataset: str, ingestion_id: int, *, new_dataset: bool = False) -> bool:
    """Whether load ``ingestion_id`` (its rows in ``events``) gives ``dataset`` customer keys: the
    dataset has them already, or the load's ids are of no form that carries its number, or of
    another form than the dataset's earlier rows' (``new_dataset``: the load created the dataset,
    there are none)."""
    if has_keys(cur, dataset):
        return True
    form = _form(cur, "ingestion_id = ?", [ingestion_id])
    if form is None:
        return True
    if new_dataset:
        return False
    earlier = _form(cur, "dataset = ? AND ingestion_id IS DISTINCT FROM ?", [dataset, ingestion_id])
    return earlier is not _NO_IDS and earlier != form


def add_keys(cur, dataset: str, source: str, params: dict | None = None) -> int:
    """Give the ids that ``source`` (a table or a parenthesized query with a ``customer_id``
    column) holds and ``dataset`` has not numbered yet the next keys. Returns their number."""
    base = cur.execute("SELECT coalesce(max(customer_key), 0) FROM customer_keys WHERE dataset = ?",
                       [dataset]).fetchone()[0]
    anti = ("WHERE NOT EXISTS (SELECT 1 FROM customer_keys k WHERE k.dataset = $dataset "
            "AND k.customer_id = n.customer_id)") if base else ""
    return int(cur.execute(_NEW_KEYS_SQL.format(source=source, anti=anti),
                           {**(params or {}), "dataset": dataset, "base": base}).fetchone()[0])


def assign_keys(cur, dataset: str) -> int:
    """Number the customers of ``dataset``'s rows that have no key yet: ids new to the dataset get
    the next keys, then every such row its customer's key. Runs on ``cur`` (inside the load's
    transaction). Returns the number of new keys."""
    if not cur.execute("SELECT count(*) FROM (SELECT 1 FROM events WHERE dataset = ? AND customer_key IS NULL "
                       "LIMIT 1)", [dataset]).fetchone()[0]:
        return 0
    new = add_keys(cur, dataset, "events WHERE dataset = $dataset AND customer_key IS NULL")
    cur.execute(_SET_KEYS_SQL, {"dataset": dataset})
    return new


def keys_for_load(cur, dataset: str, ingestion_id: int, *, new_dataset: bool = False) -> int:
    """What a load does after writing its rows: :func:`assign_keys` where :func:`needs_keys` (a
    load that wrote its rows' keys with them, :func:`keys_as_written`, leaves nothing to do)."""
    return assign_keys(cur, dataset) if needs_keys(cur, dataset, ingestion_id, new_dataset=new_dataset) else 0


def keys_as_written(cur, dataset: str, first_ids: list, *, new_dataset: bool) -> bool:
    """Whether a load should write its rows' keys as it writes the rows (their new ids added by
    :func:`add_keys` from the load's staged rows first, each row joined to its key by
    :data:`KEY_JOIN`): the dataset has keys, or it is new and the load's first ids (``first_ids``,
    as they will be stored) are of no form that carries its number. A keyless dataset with
    earlier rows that now needs keys is numbered after the load's rows are written
    (:func:`keys_for_load`), its earlier rows too."""
    from analytics.summary import _id_form

    if has_keys(cur, dataset):
        return True
    return new_dataset and bool(first_ids) and _id_form(first_ids) is None
