"""Items by name for exports: a readable label per item id.

The events table has no item-name column; a name is taken from the event
``attributes`` (JSON keys ``item_name``, ``name``, ``title``, ``product_name`` or
``description`` — as written in the loaded file's header, e.g. UCI Online Retail's
``Description`` — when the loaded file had such a column) and otherwise is built from
the id and the item's most frequent category ("SKU10007 (books)").
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from analytics.warehouse import Warehouse

NAME_KEYS = ("item_name", "name", "title", "product_name", "description")
#: the keys as the loaded file's header may spell them (attribute keys keep the header's spelling);
#: a bare "Name" or "Title" column is more often the customer's than the item's, so only those two stay lower-case
_KEY_SPELLINGS = tuple(dict.fromkeys(
    v for k in NAME_KEYS for v in ((k,) if k in ("name", "title") else
                                   (k, k.title(), k.upper(), k.title().replace("_", ""), k.replace("_", " ").title()))))


def stored_names(wh: Warehouse, dataset: str, item_ids) -> dict[str, str]:
    """item_id -> the name (or description) loaded with the data, for the ids that have one
    (empty when the dataset kept no item names: it has codes only)."""
    ids = [str(i) for i in pd.unique(np.asarray(list(item_ids), dtype=object))]
    if not ids:
        return {}
    keys = list(_KEY_SPELLINGS)
    cur = wh.cursor()
    try:
        rows = cur.execute(
            "SELECT item_id, mode(name) FROM (SELECT item_id, coalesce("
            + ", ".join(["json_extract_string(attributes, ?)"] * len(keys)) + """) AS name
            FROM events WHERE dataset = ? AND item_id IS NOT NULL AND attributes IS NOT NULL
              AND list_contains(?::VARCHAR[], item_id))
            WHERE name IS NOT NULL AND trim(name) <> '' GROUP BY item_id""",
            [*(f"$.{json.dumps(k)}" for k in keys), dataset, ids]).fetchall()
    finally:
        cur.close()
    return {str(i): str(n).strip() for i, n in rows if n is not None}


def item_labels(wh: Warehouse, dataset: str, item_ids=None) -> pd.Series:
    """item_id -> readable label (the stored name, else "id (category)", else the id)."""
    keys = list(_KEY_SPELLINGS)
    ids = None if item_ids is None else [str(i) for i in pd.unique(np.asarray(list(item_ids), dtype=object))]
    cur = wh.cursor()
    try:
        df = cur.execute(
            """
            WITH e AS (
                SELECT item_id, category,
                       coalesce(""" + ", ".join(["json_extract_string(attributes, ?)"] * len(keys)) + """) AS name
                FROM events
                WHERE dataset = ? AND item_id IS NOT NULL
                  AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], item_id)))
            SELECT item_id, mode(name) AS name, mode(category) AS category FROM e GROUP BY item_id
            """, [*(f"$.{json.dumps(k)}" for k in keys), dataset, ids, ids]).df()
    finally:
        cur.close()
    name = df["name"].where(df["name"].notna() & (df["name"].astype(str).str.strip() != ""))
    fallback = np.where(df["category"].notna(), df["item_id"].astype(str) + " (" + df["category"].astype(str) + ")",
                        df["item_id"].astype(str))
    out = pd.Series(np.where(name.notna(), name.astype(object), fallback), index=df["item_id"].astype(str),
                    name="item_label", dtype=object)
    if ids is not None:
        out = out.reindex(ids)
        out = out.fillna(pd.Series(ids, index=ids))
    return out


def recommendations_named(wh: Warehouse, dataset: str, recs: pd.DataFrame, sep: str = "; ") -> pd.Series:
    """One string per customer with the recommended items by name, in rank order:
    customer_id -> "Blue kettle; Tea cups; ...". Same shape as ``recommendations_text``."""
    from analytics.recommend.core import recommendations_text

    if recs is None or len(recs) == 0:
        return recommendations_text(recs, sep)
    labels = item_labels(wh, dataset, recs["item_id"])
    named = recs.assign(item_id=recs["item_id"].astype(str).map(labels))
    text = recommendations_text(named, sep)
    text.name = "recommended_item_names"
    return text
