"""What customers did and who they are, from the dataset's events, for segment conditions.

:class:`EventSource` answers the segment conditions that a customer table does not hold:

* **activity** (``kind="activity"`` fields of :data:`analytics.segments.rules.ACTIVITY_FIELDS`):
  bought a product / a product of a category (ever, or in the last ``days`` days up to the
  as-of day), and the number of events of a type (views, carts, purchases...) in the last
  ``days`` days;
* **customer attributes** (``kind="attribute"``): the country, and each extra column kept at
  load time (``events.attributes``: segment, city, age, loyalty tier...), as its latest known
  value per customer up to the as-of day. Columns that hold personal data (email, phone,
  name, address, recognized by name as at load time) are never offered as segment fields.

Every query binds its values (dataset, days, items, event types) as parameters; attribute
keys reach SQL only as bound JSON paths. Results are kept per condition inside one source
(a live counter re-evaluates cheaply), so build one source per dataset, as-of day and data
version (the dashboard caches it).
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analytics.dates import parse_day
from analytics.segments.rules import ACTIVITY_FIELDS, Field, RuleError
from analytics.warehouse import EVENT_TYPES, Warehouse

#: attribute keys (normalized) never offered as segment fields: personal data
_PII_KEYS = {"email", "emailaddress", "mail", "phone", "phonenumber", "telephone", "tel", "mobile", "cell",
             "fax", "name", "fullname", "firstname", "lastname", "surname", "givenname", "customername",
             "contactname", "address", "streetaddress", "street", "address1", "address2", "postcode", "zip",
             "zipcode", "postalcode", "ip", "ipaddress", "birthdate", "dateofbirth", "dob"}
MAX_ATTRIBUTES = 30
ATTRIBUTE_PREFIX = "attr_"


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


def attribute_field_name(key: str) -> str:
    """The segment field name of an attribute key: ``attr_`` + its letters and digits, lower case."""
    base = re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")[:50] or "x"
    return ATTRIBUTE_PREFIX + base


def is_personal(key: str) -> bool:
    """Whether an attribute key names personal data (never a segment field)."""
    n = _norm(key)
    return n in _PII_KEYS or any(n.endswith(h) for h in ("email", "phone", "address"))


class EventSource:
    """Activity and attributes of ``dataset``'s customers up to the end of ``as_of`` (module docstring;
    ``as_of`` None: all events, e.g. to list the fields a dataset can answer)."""

    def __init__(self, wh: Warehouse, dataset: str, as_of):
        self.wh = wh
        self.dataset = dataset
        if as_of is None:
            self.as_of = None
            self.end = pd.Timestamp("9999-12-31")
        else:
            day = parse_day(as_of, "the as-of date", RuleError).normalize()
            self.as_of = day.date()
            self.end = day + pd.Timedelta(days=1)   # events before the end of the as-of day
        self._lock = threading.Lock()
        self._memo: dict[str, Any] = {}
        self._info: dict | None = None

    # ------------------------------------------------------------------ what the dataset has
    def info(self) -> dict:
        """What the events hold: event types present, whether purchases carry items / categories,
        whether customers have a country, and the attribute keys (personal data left out)."""
        with self._lock:
            if self._info is None:
                cur = self.wh.cursor()
                row = cur.execute(
                    "SELECT count(*) FILTER (WHERE event_type = 'purchase' AND item_id IS NOT NULL), "
                    "count(*) FILTER (WHERE event_type = 'purchase' AND category IS NOT NULL), "
                    "count(*) FILTER (WHERE country IS NOT NULL) FROM events WHERE dataset = ? AND event_time < ?",
                    [self.dataset, self.end]).fetchone()
                types = [r[0] for r in cur.execute(
                    "SELECT DISTINCT event_type FROM events WHERE dataset = ? AND event_time < ?",
                    [self.dataset, self.end]).fetchall()]
                keys = [r[0] for r in cur.execute(
                    "SELECT k FROM (SELECT unnest(json_keys(attributes)) AS k FROM "
                    "(SELECT attributes FROM events WHERE dataset = ? AND attributes IS NOT NULL LIMIT 10000)) "
                    "GROUP BY k ORDER BY min(k)", [self.dataset]).fetchall()]
                keys = [k for k in keys if isinstance(k, str) and not is_personal(k)][:MAX_ATTRIBUTES]
                names: dict[str, str] = {}
                for k in keys:
                    n = attribute_field_name(k)
                    while n in names:  # two keys that differ only in punctuation or case
                        n += "_"
                    names[n] = k
                self._info = {"items": bool(row[0]), "categories": bool(row[1]), "country": bool(row[2]),
                              "event_types": [t for t in EVENT_TYPES if t in types], "attributes": names}
            return self._info

    def fields(self) -> dict[str, Field]:
        """The activity and attribute fields this dataset can answer (others are left out, so a
        condition on them says the dataset lacks that data)."""
        info = self.info()
        out: dict[str, Field] = {}
        if info["items"]:
            out["bought_product"] = ACTIVITY_FIELDS["bought_product"]
        if info["categories"]:
            out["bought_category"] = ACTIVITY_FIELDS["bought_category"]
        if info["event_types"]:
            out["event_count"] = ACTIVITY_FIELDS["event_count"]
        if info["country"]:
            out["country"] = Field("country", "category", "Country", kind="attribute")
        if info["attributes"]:
            attrs = self.attributes()
            for name, key in info["attributes"].items():
                col = attrs[name] if name in attrs.columns else pd.Series(dtype=object)
                out[name] = Field(name, "numeric" if pd.api.types.is_numeric_dtype(col) else "category",
                                  str(key), kind="attribute")
        return out

    # ------------------------------------------------------------------ attributes
    def attributes(self) -> pd.DataFrame:
        """Per customer (index ``customer_id``): ``country`` and every attribute field, each the latest
        non-missing value up to the as-of day; an attribute whose values are all numbers is numeric."""
        with self._lock:
            if "attributes" in self._memo:
                return self._memo["attributes"]
        info = self.info()
        names = list(info["attributes"])
        parts = ["arg_max(country, event_time) FILTER (WHERE country IS NOT NULL) AS country"]
        params: list = []
        for i, n in enumerate(names):
            path = "$." + json.dumps(info["attributes"][n])  # a bound JSON path, never SQL text
            parts.append(f"arg_max(json_extract_string(attributes, ?), event_time) "
                         f"FILTER (WHERE json_extract_string(attributes, ?) IS NOT NULL) AS a{i}")
            params += [path, path]
        df = self.wh.cursor().execute(
            f"SELECT customer_id, {', '.join(parts)} FROM events WHERE dataset = ? AND event_time < ? "
            "GROUP BY customer_id", params + [self.dataset, self.end]).df().set_index("customer_id")
        df.index = df.index.astype(str)
        df.columns = ["country"] + names
        for n in names:
            num = pd.to_numeric(df[n], errors="coerce")
            have = df[n].notna()
            if have.any() and num[have].notna().all():
                df[n] = num.astype(float)
        with self._lock:
            self._memo["attributes"] = df
        return df

    def column(self, name: str, index: pd.Index) -> pd.Series:
        """An attribute column aligned with ``index`` (missing for customers without a value)."""
        attrs = self.attributes()
        if name not in attrs.columns:
            raise RuleError(f"this dataset has no customer attribute {name!r}")
        return attrs[name].reindex(index.astype(str)).set_axis(index)

    def values(self, name: str, limit: int = 300) -> list[str] | None:
        """The distinct values of an attribute field, or of the bought products / categories
        (most frequent first; None when there are more than ``limit``)."""
        if name in ("bought_product", "bought_category"):
            col = "item_id" if name == "bought_product" else "category"
            rows = self.wh.cursor().execute(
                f"SELECT {col} FROM events WHERE dataset = ? AND event_type = 'purchase' AND {col} IS NOT NULL "
                f"AND event_time < ? GROUP BY {col} ORDER BY count(*) DESC, {col} LIMIT ?",
                [self.dataset, self.end, int(limit) + 1]).fetchall()
            vals = [str(r[0]) for r in rows]
        else:
            s = self.attributes()[name].dropna() if name in self.attributes().columns else pd.Series(dtype=object)
            vals = list(s.astype(str).value_counts().index)
        return vals if 0 < len(vals) <= limit else None

    # ------------------------------------------------------------------ activity
    def _window(self, days) -> tuple[str, list]:
        if days is None:
            return "event_time < ?", [self.end]
        return "event_time >= ? AND event_time < ?", [self.end - pd.Timedelta(days=int(days)), self.end]

    def activity_values(self, cond: Mapping) -> pd.Series:
        """Per customer with any matching event: for ``bought_*`` True, for ``event_count`` the count
        (customers absent have none). Kept per condition."""
        key = json.dumps({k: cond.get(k) for k in ("field", "value", "operator", "days", "event")
                          if cond["field"] != "event_count" or k not in ("value", "operator")},
                         sort_keys=True, default=str)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        window, wparams = self._window(cond.get("days"))
        cur = self.wh.cursor()
        if cond["field"] in ("bought_product", "bought_category"):
            col = "item_id" if cond["field"] == "bought_product" else "category"
            values = [str(v) for v in cond["value"]]
            marks = ", ".join("?" * len(values))
            rows = cur.execute(
                f"SELECT DISTINCT customer_id FROM events WHERE dataset = ? AND event_type = 'purchase' "
                f"AND {window} AND CAST({col} AS VARCHAR) IN ({marks})",
                [self.dataset, *wparams, *values]).fetchall()
            out = pd.Series(True, index=pd.Index([str(r[0]) for r in rows], dtype=object))
        elif cond["field"] == "event_count":
            df = cur.execute(
                f"SELECT customer_id, count(*) AS n FROM events WHERE dataset = ? AND event_type = ? AND {window} "
                "GROUP BY customer_id", [self.dataset, cond["event"], *wparams]).df()
            out = pd.Series(df["n"].to_numpy(dtype=float), index=pd.Index(df["customer_id"].astype(str)))
        else:  # pragma: no cover - validated before
            raise RuleError(f"{cond['field']!r} is not an activity field")
        with self._lock:
            self._memo[key] = out
        return out

    def mask(self, cond: Mapping, index: pd.Index) -> np.ndarray:
        """The customers of ``index`` that a validated activity condition selects."""
        from analytics.segments.rules import _leaf_mask

        vals = self.activity_values(cond)
        ids = index.astype(str)
        if cond["field"] == "event_count":
            counts = pd.Series(vals.reindex(ids).fillna(0.0).to_numpy(), index=index)
            return _leaf_mask(counts, Field("event_count", "numeric"), cond["operator"], cond["value"])
        hit = ids.isin(vals.index)
        return np.asarray(~hit if cond["operator"] == "not_in" else hit, dtype=bool)

    def sql_context(self) -> dict:
        """What :func:`analytics.segments.rules.to_sql` needs to compile activity conditions."""
        return {"dataset": self.dataset, "end": self.end.to_pydatetime()}

