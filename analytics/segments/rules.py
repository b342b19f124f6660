"""Rule-based segments: a filter definition as data, validated against a field whitelist.

A definition is a JSON-able dict::

    {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">=", "value": 500},
        {"op": "or", "conditions": [
            {"field": "country", "operator": "in", "value": ["DE", "AT"]},
            {"field": "last_purchase", "operator": "between", "value": ["2025-01-01", "2025-06-30"]}]}]}

A condition is ``{"field", "operator", "value"}``; a group is ``{"op": "and"|"or",
"conditions": [...]}`` and groups nest (up to ``MAX_DEPTH`` levels). Fields come
from a whitelist of :class:`Field` (name + type: ``numeric``, ``date``,
``category``, ``text``); values are coerced to the field's type with a clear
:class:`RuleError` when they do not fit. A condition on a known field that the
data at hand lack (a country on data without countries) says so in words.

Fields have a ``kind``: ``column`` (a column of the customer table), ``attribute``
(a customer attribute from the events: country and the columns kept at load
time; taken from the table when it has the column, else from an
:class:`analytics.segments.activity.EventSource`) or ``activity`` (what the
customer did, answered from the events by the source; :data:`ACTIVITY_FIELDS`)::

    {"field": "bought_category", "operator": "in", "value": ["books"], "days": 30}
    {"field": "bought_product", "operator": "not_in", "value": ["SKU1"]}          # never bought
    {"field": "event_count", "event": "view", "operator": ">=", "value": 3, "days": 7}

``days`` (1..3650, or absent for "ever") counts back from the end of the as-of day;
``event`` is an event type. A customer with no matching event has a count of 0.

Adding a field is one entry: a :class:`Field` in :data:`CUSTOMER_FIELDS` (its
column then only has to be in the customer table), or a provider registered with
:func:`register_field` (a function ``(wh, dataset, as_of) -> Series`` by customer
id) for a value computed elsewhere.

Semantics (identical in :func:`evaluate` over a DataFrame and in the SQL from
:func:`to_sql`):

* a condition on a missing value is false, whatever the operator (``!=`` and
  ``not_in`` included), except ``is_null``; ``{"operator": "is_null", "value":
  false}`` means "is not missing";
* ``between`` includes both ends; ``contains`` is a case-insensitive substring
  test on text and category fields; ``in`` / ``not_in`` take a non-empty list;
* an ``and`` group without conditions matches everyone, an ``or`` group
  without conditions matches no one (the usual identities), so an empty
  definition selects all customers.

:func:`to_sql` never puts user text into SQL: field names must be in the
whitelist and go through ``analytics.warehouse.quote_ident``; every value is
a ``?`` parameter; activity conditions become sub-queries on ``events`` whose
dataset, window and values are parameters too.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from analytics.warehouse import WarehouseError, quote_ident

FIELD_TYPES = ("numeric", "date", "category", "text")
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "between", "in", "not_in", "contains", "is_null")
_OPS_FOR_TYPE = {
    "numeric": ("=", "!=", "<", "<=", ">", ">=", "between", "in", "not_in", "is_null"),
    "date": ("=", "!=", "<", "<=", ">", ">=", "between", "is_null"),
    "category": ("=", "!=", "in", "not_in", "contains", "is_null"),
    "text": ("=", "!=", "in", "not_in", "contains", "is_null"),
}
MAX_DEPTH = 8
MAX_CONDITIONS = 200
MAX_LIST = 1000
MAX_TEXT = 500


class RuleError(ValueError):
    """A segment definition a user can fix (message names the condition)."""


FIELD_KINDS = ("column", "attribute", "activity")
#: the longest look-back of an activity condition (days)
MAX_DAYS = 3650


@dataclass(frozen=True)
class Field:
    """A whitelisted field: column name, type, a readable label, its kind (``column``,
    ``attribute`` or ``activity``: see the module docstring), the extra condition keys it
    takes (``params``: ``days``, ``event``) and, when narrower than its type's, its operators."""

    name: str
    type: str
    label: str = ""
    kind: str = "column"
    params: tuple[str, ...] = ()
    ops: tuple[str, ...] | None = None
    help: str | None = None

    def __post_init__(self):
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unknown field type {self.type!r}")
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}")
        try:
            quote_ident(self.name)
        except WarehouseError as exc:
            raise ValueError(f"field {self.name!r} is not a plain column name") from exc

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def operators(self) -> tuple[str, ...]:
        return self.ops if self.ops is not None else _OPS_FOR_TYPE[self.type]


def _f(name, type_, label="", help=None):
    return Field(name, type_, label, help=help)


_COUNT_OPS = ("=", "!=", "<", "<=", ">", ">=", "between")
#: What customers did, answered from the events (see the module docstring).
ACTIVITY_FIELDS: dict[str, Field] = {f.name: f for f in [
    Field("bought_product", "category", "Bought product", kind="activity", params=("days",), ops=("in", "not_in"),
          help="Customers who bought any of these products (or none of them), ever or in the last N days."),
    Field("bought_category", "category", "Bought from category", kind="activity", params=("days",),
          ops=("in", "not_in"),
          help="Customers who bought a product of any of these categories (or of none), ever or in the last N days."),
    Field("event_count", "numeric", "Number of events", kind="activity", params=("event", "days"), ops=_COUNT_OPS,
          help="How many events of a type (views, cart adds, purchases...) the customer had, ever or in the last "
               "N days."),
]}


#: Customer attributes and scores a segment can filter on (summary columns,
#: scores, cluster assignment). Pages may pass their own whitelist.
CUSTOMER_FIELDS: dict[str, Field] = {f.name: f for f in [
    _f("customer_id", "text", "Customer id"),
    _f("country", "category", "Country"),
    _f("category", "category", "Favourite category"),
    _f("first_purchase", "date", "First purchase"),
    _f("last_purchase", "date", "Last purchase"),
    _f("first_event", "date", "First event"),
    _f("last_event", "date", "Last event"),
    _f("frequency", "numeric", "Repeat purchases"),
    _f("recency", "numeric", "Recency"),
    _f("T", "numeric", "Age (since first purchase)"),
    _f("monetary_value", "numeric", "Avg repeat purchase value"),
    _f("total_revenue", "numeric", "Revenue"),
    _f("return_revenue", "numeric", "Refunds"),
    _f("net_revenue", "numeric", "Net revenue"),
    _f("n_orders", "numeric", "Orders"),
    _f("n_views", "numeric", "Views"),
    _f("n_searches", "numeric", "Searches"),
    _f("n_carts", "numeric", "Cart adds"),
    _f("n_purchases", "numeric", "Purchase events"),
    _f("n_returns", "numeric", "Returns"),
    _f("n_reviews", "numeric", "Reviews"),
    _f("avg_rating", "numeric", "Avg rating"),
    _f("tenure", "numeric", "Tenure"),
    _f("avg_gap", "numeric", "Avg gap between orders"),
    _f("time_since_purchase", "numeric", "Time since last purchase"),
    _f("avg_order_value", "numeric", "Avg order value"),
    _f("return_rate", "numeric", "Return rate"),
    _f("rfm_segment", "category", "RFM segment", "Champions, Loyal, At risk...: a group named from how recently, "
       "how often and how much the customer bought."),
    _f("rfm_score", "numeric", "RFM score"),
    _f("r_score", "numeric", "R score"),
    _f("f_score", "numeric", "F score"),
    _f("m_score", "numeric", "M score"),
    _f("behaviour_score", "numeric", "Behaviour score"),
    _f("clv", "numeric", "CLV (formula)"),
    _f("expected_purchases", "numeric", "Expected purchases"),
    _f("probability_alive", "numeric", "Probability alive (0-1)"),
    _f("p_alive", "numeric", "Probability alive (0-1)", "P(alive): the BG/NBD model's chance that the customer "
       "has not quietly stopped buying, from 0 to 1."),
    _f("expected_spend", "numeric", "Expected spend"),
    _f("cluster", "numeric", "Cluster number"),
    _f("cluster_name", "category", "Cluster", "The cluster of the latest clustering run."),
    _f("predicted_value", "numeric", "Predicted value (model)"),
    _f("churn_probability", "numeric", "Churn probability (model, 0-1)"),
    _f("expected_clv", "numeric", "Predicted value", "What the customer is expected to bring over the next "
       "12 months: a published model's prediction, else the BG/NBD + Gamma-Gamma CLV."),
    _f("churn_risk", "numeric", "Churn risk (0-1)", "The chance that the customer has stopped buying, from 0 to 1: "
       "a published model's churn probability, else 1 - P(alive)."),
    _f("churn_value", "numeric", "Value at risk"),
]}
#: known fields of every kind (a condition on one of them that the data lack says so)
KNOWN_FIELDS: dict[str, Field] = {**CUSTOMER_FIELDS, **ACTIVITY_FIELDS}
#: providers of fields computed outside the customer table: name -> fn(wh, dataset, as_of) -> Series
FIELD_PROVIDERS: dict[str, Any] = {}


def register_field(field: Field, provider=None) -> None:
    """Make ``field`` known to every segment builder (one call per new field). ``provider``:
    ``fn(wh, dataset, as_of) -> Series`` indexed by customer id, for a value the customer table
    does not carry (the source fetches it when a condition uses it)."""
    CUSTOMER_FIELDS[field.name] = field
    KNOWN_FIELDS[field.name] = field
    if provider is not None:
        FIELD_PROVIDERS[field.name] = provider


def window_words(days: int | None) -> str:
    """``"in the last 30 days"`` / ``"ever"``."""
    if days is None:
        return "ever"
    return "in the last day" if int(days) == 1 else f"in the last {int(days):,} days"


def fields_from_frame(frame: pd.DataFrame, base: Mapping[str, Field] | None = None) -> dict[str, Field]:
    """A whitelist for the columns of ``frame``: known fields keep their type and
    label, other plain-named columns get a type from their dtype (numeric, date,
    else category). Columns whose names are not plain identifiers are left out."""
    base = CUSTOMER_FIELDS if base is None else base
    out: dict[str, Field] = {}
    cols = list(frame.columns)
    if frame.index.name and frame.index.name not in cols:
        cols = [frame.index.name] + cols
    for col in cols:
        if not isinstance(col, str):
            continue
        if col in base:
            out[col] = base[col]
            continue
        series = frame.index.to_series() if col == frame.index.name and col not in frame.columns else frame[col]
        if pd.api.types.is_bool_dtype(series):
            continue
        if pd.api.types.is_numeric_dtype(series):
            t = "numeric"
        elif pd.api.types.is_datetime64_any_dtype(series):
            t = "date"
        else:
            t = "category"
        try:
            out[col] = Field(col, t)
        except ValueError:
            continue
    return out


def fields_for(frame: pd.DataFrame, source=None, base: Mapping[str, Field] | None = None, *,
               definition: Any = None) -> dict[str, Field]:
    """Every field a segment can use on ``frame``: its columns (:func:`fields_from_frame`) and,
    with an :class:`analytics.segments.activity.EventSource`, the attributes and activity the
    dataset's events can answer (columns of the frame win). With ``definition``, the events are
    only asked when the definition uses a field the frame lacks."""
    out = fields_from_frame(frame, base)
    if source is not None and definition is not None:
        try:
            names = {c.get("field") for c in iter_conditions(json.loads(definition) if isinstance(definition, str)
                                                             else definition) if isinstance(c, Mapping)}
        except (ValueError, AttributeError, TypeError):
            names = {None}
        if names <= set(out):
            return out
    if source is not None:
        for name, f in source.fields().items():
            out.setdefault(name, f)
        for name, f in CUSTOMER_FIELDS.items():
            if name in FIELD_PROVIDERS:
                out.setdefault(name, f)
    return out


# ----------------------------------------------------------------- validation
def _coerce_scalar(value: Any, ftype: str, where: str):
    if value is None:
        raise RuleError(f"{where}: a value is required")
    if ftype == "numeric":
        if isinstance(value, bool):
            raise RuleError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, (int, float, np.integer, np.floating)):
            v = float(value)
        elif isinstance(value, str):
            try:
                v = float(value.strip().replace(",", "")) if value.strip() else float("nan")
            except ValueError:
                raise RuleError(f"{where}: expected a number, got {_short(value)}") from None
        else:
            raise RuleError(f"{where}: expected a number, got {_short(value)}")
        if not math.isfinite(v):
            raise RuleError(f"{where}: expected a finite number, got {_short(value)}")
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if ftype == "date":
        if isinstance(value, bool) or isinstance(value, (int, float)):
            raise RuleError(f"{where}: expected a date like 2025-01-31, got {value!r}")
        if isinstance(value, (dt.datetime, pd.Timestamp)):
            ts = pd.Timestamp(value)
        elif isinstance(value, dt.date):
            ts = pd.Timestamp(value)
        elif isinstance(value, str):
            try:
                ts = pd.Timestamp(value.strip())
            except (ValueError, TypeError):
                raise RuleError(f"{where}: expected a date like 2025-01-31, got {_short(value)}") from None
        else:
            raise RuleError(f"{where}: expected a date like 2025-01-31, got {_short(value)}")
        if ts is pd.NaT or pd.isna(ts):
            raise RuleError(f"{where}: expected a date like 2025-01-31, got {_short(value)}")
        if ts.tzinfo is not None:
            ts = ts.tz_convert(None)
        return ts.isoformat() if (ts.hour or ts.minute or ts.second or ts.microsecond) else ts.date().isoformat()
    # category / text
    if isinstance(value, bool) or not isinstance(value, (str, int, float, np.integer, np.floating)):
        raise RuleError(f"{where}: expected text, got {_short(value)}")
    v = value if isinstance(value, str) else (str(int(value)) if float(value).is_integer() else str(value))
    if len(v) > MAX_TEXT:
        raise RuleError(f"{where}: text values can have at most {MAX_TEXT} characters")
    return v


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _validate_condition(cond: Mapping, fields: Mapping[str, Field], where: str) -> dict:
    name = cond.get("field")
    if isinstance(name, str) and name not in fields and (name in KNOWN_FIELDS or name.startswith("attr_")):
        title = KNOWN_FIELDS[name].title if name in KNOWN_FIELDS else name[5:].replace("_", " ")
        raise RuleError(f"{where}: this dataset has no data for “{title}” (field {name!r}); remove the condition "
                        "or use data that have it")
    if not isinstance(name, str) or name not in fields:
        known = ", ".join(sorted(fields)) if len(fields) <= 15 else f"{len(fields)} known fields, see the field list"
        raise RuleError(f"{where}: unknown field {_short(name)} (fields: {known})")
    field = fields[name]
    extra = set(cond) - {"field", "operator", "value"} - set(field.params)
    if extra:
        raise RuleError(f"{where}: unexpected key(s) {', '.join(sorted(map(str, extra)))}")
    params = {}
    if "days" in field.params and cond.get("days") is not None:
        d = cond.get("days")
        if isinstance(d, bool) or not isinstance(d, (int, float, np.integer, np.floating, str)):
            raise RuleError(f"{where} ({field.title}): the number of days must be a whole number")
        try:
            d = float(str(d).strip()) if isinstance(d, str) else float(d)
        except ValueError:
            raise RuleError(f"{where} ({field.title}): the number of days must be a whole number, got "
                            f"{_short(cond.get('days'))}") from None
        if not math.isfinite(d) or d != int(d) or not 1 <= d <= MAX_DAYS:
            raise RuleError(f"{where} ({field.title}): the number of days must be a whole number from 1 to "
                            f"{MAX_DAYS}")
        params["days"] = int(d)
    if "event" in field.params:
        from analytics.warehouse import EVENT_TYPES

        ev = cond.get("event")
        if ev not in EVENT_TYPES:
            raise RuleError(f"{where} ({field.title}): choose the event type to count ({', '.join(EVENT_TYPES)})")
        params["event"] = ev
    op = cond.get("operator")
    if op not in OPERATORS:
        raise RuleError(f"{where}: unknown operator {_short(op)} (operators: {', '.join(OPERATORS)})")
    if op not in field.operators:
        raise RuleError(
            f"{where}: operator {op!r} does not apply to {field.type} field {name!r} "
            f"(use one of: {', '.join(field.operators)})"
        )
    value = cond.get("value")
    where_f = f"{where} ({field.title} {op})"
    if op == "is_null":
        if value is None:
            value = True
        if not isinstance(value, bool):
            raise RuleError(f"{where_f}: value must be true (is missing) or false (is not missing)")
    elif op == "between":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise RuleError(f"{where_f}: 'between' needs a list of two values [low, high]")
        lo, hi = (_coerce_scalar(v, field.type, where_f) for v in value)
        if _order_key(lo, field.type) > _order_key(hi, field.type):
            raise RuleError(f"{where_f}: the low end {lo!r} is above the high end {hi!r}")
        value = [lo, hi]
    elif op in ("in", "not_in"):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set)):
            raise RuleError(f"{where_f}: '{op}' needs a list of values")
        if not value:
            raise RuleError(f"{where_f}: '{op}' needs at least one value")
        if len(value) > MAX_LIST:
            raise RuleError(f"{where_f}: at most {MAX_LIST} values in a list")
        value = list(dict.fromkeys(_coerce_scalar(v, field.type, where_f) for v in value))
    elif op == "contains":
        value = _coerce_scalar(value, field.type, where_f)
        if value == "":
            raise RuleError(f"{where_f}: 'contains' needs some text")
    else:
        value = _coerce_scalar(value, field.type, where_f)
    return {"field": name, "operator": op, "value": value, **params}


def _order_key(v, ftype):
    return pd.Timestamp(v) if ftype == "date" else v


def validate(definition: Any, fields: Mapping[str, Field] | None = None) -> dict:
    """The definition checked and normalized (values coerced to their field's type,
    JSON-able); :class:`RuleError` naming the offending condition otherwise."""
    fields = CUSTOMER_FIELDS if fields is None else fields
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError as exc:
            raise RuleError(f"the segment definition is not valid JSON: {exc.msg}") from None
    count = [0]

    def group(g: Any, where: str, depth: int) -> dict:
        if not isinstance(g, Mapping):
            raise RuleError(f"{where}: expected a group {{'op': 'and'|'or', 'conditions': [...]}}")
        extra = set(g) - {"op", "conditions"}
        if extra:
            raise RuleError(f"{where}: unexpected key(s) {', '.join(sorted(map(str, extra)))}")
        if depth > MAX_DEPTH:
            raise RuleError(f"{where}: groups can nest at most {MAX_DEPTH} levels")
        op = g.get("op", "and")
        if op not in ("and", "or"):
            raise RuleError(f"{where}: group op must be 'and' or 'or', got {_short(op)}")
        conds = g.get("conditions", [])
        if not isinstance(conds, (list, tuple)):
            raise RuleError(f"{where}: 'conditions' must be a list")
        out = []
        for i, c in enumerate(conds, start=1):
            w = f"{where} › condition {i}" if where != "definition" else f"condition {i}"
            if isinstance(c, Mapping) and ("conditions" in c or "op" in c):
                out.append(group(c, w, depth + 1))
            elif isinstance(c, Mapping):
                count[0] += 1
                if count[0] > MAX_CONDITIONS:
                    raise RuleError(f"a segment can have at most {MAX_CONDITIONS} conditions")
                out.append(_validate_condition(c, fields, w))
            else:
                raise RuleError(f"{w}: expected a condition or a group, got {_short(c)}")
        return {"op": op, "conditions": out}

    return group(definition, "definition", 1)


def used_fields(definition: Mapping) -> list[str]:
    """Field names used by a (validated) definition, in order of appearance."""
    out: list[str] = []

    def walk(g):
        for c in g["conditions"]:
            if "conditions" in c:
                walk(c)
            elif c["field"] not in out:
                out.append(c["field"])

    walk(definition)
    return out


# ----------------------------------------------------------------- evaluation
def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    if frame.index.name == name:
        return frame.index.to_series(index=frame.index)
    raise RuleError(f"the customer data has no column {name!r}")


def _leaf_mask(s: pd.Series, field: Field, op: str, value) -> np.ndarray:
    if op == "is_null":
        isna = s.isna().to_numpy()
        return isna if value else ~isna
    present = s.notna().to_numpy().copy()
    if field.type == "numeric":
        col = pd.to_numeric(s, errors="coerce")
        present &= col.notna().to_numpy()
        arr = col.to_numpy(dtype=np.float64, na_value=np.nan)
    elif field.type == "date":
        col = pd.to_datetime(s, errors="coerce")
        if getattr(col.dt, "tz", None) is not None:
            col = col.dt.tz_convert(None)
        present &= col.notna().to_numpy()
        arr = col
        if op == "between":
            value = [pd.Timestamp(v) for v in value]
        else:
            value = pd.Timestamp(value)
    else:
        arr = s.astype("string")
    with np.errstate(invalid="ignore"):
        if op == "=":
            m = arr == value
        elif op == "!=":
            m = arr != value
        elif op == "<":
            m = arr < value
        elif op == "<=":
            m = arr <= value
        elif op == ">":
            m = arr > value
        elif op == ">=":
            m = arr >= value
        elif op == "between":
            m = (arr >= value[0]) & (arr <= value[1])
        elif op == "in":
            m = pd.Series(arr).isin(value) if not isinstance(arr, pd.Series) else arr.isin(value)
        elif op == "not_in":
            m = ~(pd.Series(arr).isin(value) if not isinstance(arr, pd.Series) else arr.isin(value))
        elif op == "contains":
            m = arr.str.lower().str.contains(str(value).lower(), regex=False)
        else:  # pragma: no cover - validated before
            raise RuleError(f"unknown operator {op!r}")
    if not isinstance(m, np.ndarray):  # pandas (nullable) result: missing -> False
        m = pd.Series(m).fillna(False).to_numpy(dtype=bool)
    return m.astype(bool) & present


def evaluate(definition: Any, frame: pd.DataFrame, fields: Mapping[str, Field] | None = None, *,
             source=None) -> pd.Series:
    """Boolean mask (a Series aligned with ``frame``) of the customers the definition selects.
    ``source``: an :class:`analytics.segments.activity.EventSource` of the frame's dataset and
    as-of day, for activity conditions and attributes the frame does not carry."""
    fields = CUSTOMER_FIELDS if fields is None else fields
    d = validate(definition, fields)
    n = len(frame)

    def leaf(c) -> np.ndarray:
        f = fields[c["field"]]
        if f.kind == "activity":
            if source is None:
                raise RuleError(f"“{f.title}” conditions need the dataset's events (no event source given)")
            return source.mask(c, frame.index)
        if c["field"] in frame.columns or frame.index.name == c["field"] or source is None:
            col = _column(frame, c["field"])
        elif c["field"] in FIELD_PROVIDERS:
            col = FIELD_PROVIDERS[c["field"]](source.wh, source.dataset, source.as_of)
            col = col.reindex(frame.index.astype(str)).set_axis(frame.index)
        else:
            col = source.column(c["field"], frame.index)
        return _leaf_mask(col, f, c["operator"], c["value"])

    def group(g) -> np.ndarray:
        masks = [group(c) if "conditions" in c else leaf(c) for c in g["conditions"]]
        if g["op"] == "and":
            out = np.ones(n, dtype=bool)
            for m in masks:
                out &= m
        else:
            out = np.zeros(n, dtype=bool)
            for m in masks:
                out |= m
        return out

    return pd.Series(group(d), index=frame.index, name="selected")


# ----------------------------------------------------------------- SQL
def to_sql(definition: Any, fields: Mapping[str, Field] | None = None,
           column_map: Mapping[str, str] | None = None, *, events: Mapping[str, Any] | None = None,
           id_column: str = "customer_id") -> tuple[str, list]:
    """A parameterised WHERE clause (without the keyword) and its parameter list.

    Column names come only from the whitelist (``column_map`` may rename a
    field to another plain column name; it is quoted all the same) and are
    quoted by ``quote_ident``; values are ``?`` parameters. Use as
    ``f"SELECT ... FROM t WHERE {where}"`` with ``params``. Activity conditions become
    sub-queries on the ``events`` table: ``events`` gives their ``dataset`` and ``end``
    (exclusive end of the as-of day; ``EventSource.sql_context()``), ``id_column`` the
    customer id column of the outer table.
    """
    fields = CUSTOMER_FIELDS if fields is None else fields
    d = validate(definition, fields)
    params: list = []

    def col(name: str) -> str:
        real = column_map.get(name, name) if column_map else name
        return quote_ident(real)

    def activity(c) -> str:
        if events is None:
            raise RuleError(f"“{fields[c['field']].title}” conditions need the events' dataset and as-of day")
        idc = quote_ident(id_column)
        end = events["end"]
        window = "e.event_time < CAST(? AS TIMESTAMP)"
        wparams: list = [end]
        if c.get("days") is not None:
            window = "e.event_time >= CAST(? AS TIMESTAMP) AND " + window
            wparams = [pd.Timestamp(end) - pd.Timedelta(days=int(c["days"])), end]
        if c["field"] == "event_count":
            # uncorrelated (the outer table's name is unknown): customers whose count passes, or, when a
            # count of 0 passes too, everyone but the customers whose count fails
            op, v = c["operator"], c["value"]
            if op == "between":
                test, tparams = "count(*) BETWEEN CAST(? AS DOUBLE) AND CAST(? AS DOUBLE)", [float(v[0]), float(v[1])]
                zero_passes = float(v[0]) <= 0 <= float(v[1])
            else:
                test, tparams = f"count(*) {'<>' if op == '!=' else op} CAST(? AS DOUBLE)", [float(v)]
                zero_passes = {"=": 0 == float(v), "!=": 0 != float(v), "<": 0 < float(v), "<=": 0 <= float(v),
                               ">": 0 > float(v), ">=": 0 >= float(v)}[op]
            params.extend([events["dataset"], c["event"], *wparams, *tparams])
            sub = (f"SELECT e.customer_id FROM events e WHERE e.dataset = ? AND e.event_type = ? AND {window} "
                   f"GROUP BY e.customer_id HAVING {'NOT ' if zero_passes else ''}({test})")
            return f"(CAST({idc} AS VARCHAR) {'NOT IN' if zero_passes else 'IN'} ({sub}))"
        target = "e.item_id" if c["field"] == "bought_product" else "e.category"
        params.extend([events["dataset"], *wparams, *[str(x) for x in c["value"]]])
        marks = ", ".join(["CAST(? AS VARCHAR)"] * len(c["value"]))
        sub = (f"SELECT e.customer_id FROM events e WHERE e.dataset = ? AND e.event_type = 'purchase' AND {window} "
               f"AND CAST({target} AS VARCHAR) IN ({marks})")
        return f"(CAST({idc} AS VARCHAR) {'NOT IN' if c['operator'] == 'not_in' else 'IN'} ({sub}))"

    def leaf(c) -> str:
        f = fields[c["field"]]
        if f.kind == "activity":
            return activity(c)
        op, v = c["operator"], c["value"]
        q = col(f.name)
        if op == "is_null":
            return f"({q} IS NULL)" if v else f"({q} IS NOT NULL)"
        if f.type == "numeric":
            ref, cast = f"CAST({q} AS DOUBLE)", "CAST(? AS DOUBLE)"
            conv = float
        elif f.type == "date":
            ref, cast = f"CAST({q} AS TIMESTAMP)", "CAST(? AS TIMESTAMP)"
            conv = str
        else:
            ref, cast = f"CAST({q} AS VARCHAR)", "CAST(? AS VARCHAR)"
            conv = str
        if op in ("=", "!=", "<", "<=", ">", ">="):
            params.append(conv(v))
            sql = f"{ref} {'<>' if op == '!=' else op} {cast}"
        elif op == "between":
            params.extend([conv(v[0]), conv(v[1])])
            sql = f"{ref} BETWEEN {cast} AND {cast}"
        elif op in ("in", "not_in"):
            params.extend(conv(x) for x in v)
            sql = f"{ref} {'NOT IN' if op == 'not_in' else 'IN'} ({', '.join([cast] * len(v))})"
        elif op == "contains":
            params.append(str(v))
            sql = f"strpos(lower({ref}), lower(CAST(? AS VARCHAR))) > 0"
        else:  # pragma: no cover
            raise RuleError(f"unknown operator {op!r}")
        return f"coalesce({sql}, false)"

    def group(g) -> str:
        parts = [group(c) if "conditions" in c else leaf(c) for c in g["conditions"]]
        if not parts:
            return "(true)" if g["op"] == "and" else "(false)"
        return "(" + f" {g['op'].upper()} ".join(parts) + ")"

    return group(d), params


# ----------------------------------------------------------------- helpers for pages
def customer_frame(summary: pd.DataFrame, *others: pd.DataFrame) -> pd.DataFrame:
    """The frame segments filter on: a customer summary with the derived features
    (``analytics.segments.clustering.add_derived_features``) left-joined with other
    customer-indexed frames (scores, cluster assignments...). Columns already
    present are kept from the earlier frame."""
    from analytics.segments.clustering import add_derived_features

    out = add_derived_features(summary)
    for other in others:
        if other is None:
            continue
        new = [c for c in other.columns if c not in out.columns]
        out = out.join(other[new], how="left")
    return out


def cluster_names_in(definition: Mapping) -> list[str]:
    """The cluster names a definition's ``cluster_name`` conditions compare with (in order, once each)."""
    found: list[str] = []

    def walk(g) -> None:
        for c in g.get("conditions", []):
            if isinstance(c, Mapping) and "conditions" in c:
                walk(c)
            elif isinstance(c, Mapping) and c.get("field") == "cluster_name":
                v = c.get("value")
                for name in (v if isinstance(v, (list, tuple)) else [v]):
                    if isinstance(name, str) and name not in found:
                        found.append(name)

    walk(definition)
    return found


def cluster_definition(cluster_name: str) -> dict:
    """A segment definition selecting one named cluster (``cluster_name`` field)."""
    return {"op": "and", "conditions": [condition("cluster_name", "=", cluster_name)]}


def selection_stats(frame: pd.DataFrame, mask: pd.Series | np.ndarray,
                    value_column: str | None = "net_revenue") -> dict:
    """Count, share, value and value share of a selection (for a live counter)."""
    m = np.asarray(mask, dtype=bool)
    n_all = len(frame)
    n = int(m.sum())
    out = {"customers": n, "share": (n / n_all) if n_all else 0.0, "value": None, "value_share": None}
    if value_column and value_column in frame.columns:
        v = pd.to_numeric(frame[value_column], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        total = float(v.sum())
        sel = float(v[m].sum())
        out["value"] = sel
        out["value_share"] = sel / total if total else None
    return out


def condition(field: str, operator: str, value: Any = None) -> dict:
    """Convenience constructor for a condition dict."""
    return {"field": field, "operator": operator, "value": value}


def all_of(*conditions: Mapping) -> dict:
    return {"op": "and", "conditions": [copy.deepcopy(dict(c)) for c in conditions]}


def any_of(*conditions: Mapping) -> dict:
    return {"op": "or", "conditions": [copy.deepcopy(dict(c)) for c in conditions]}


def describe(definition: Any, fields: Mapping[str, Field] | None = None) -> str:
    """Plain-text description, e.g. ``Net revenue >= 500 and (Country in DE, AT)``.
    (Plain text containing user values: escape it when rendering as markup.)"""
    fields = CUSTOMER_FIELDS if fields is None else fields
    d = validate(definition, fields)

    def fmt(v):
        return ", ".join(map(str, v)) if isinstance(v, list) else str(v)

    def leaf(c):
        f = fields[c["field"]]
        op, v = c["operator"], c["value"]
        if f.kind == "activity":
            when = window_words(c.get("days"))
            if c["field"] == "event_count":
                what = f"{c['event']} events {when}"
                if op == "between":
                    return f"{what} between {fmt(v[0])} and {fmt(v[1])}"
                return f"{what} {op} {fmt(v)}"
            what = "product" if c["field"] == "bought_product" else "from category"
            ever = c.get("days") is None
            if op == "not_in":
                return (f"never bought {what} {fmt(v)}" if ever else f"did not buy {what} {fmt(v)} {when}")
            return f"bought {what} {fmt(v)}" + ("" if ever else f" {when}")
        if op == "is_null":
            return f"{f.title} is {'missing' if v else 'present'}"
        if op == "between":
            return f"{f.title} between {v[0]} and {v[1]}"
        return f"{f.title} {op.replace('_', ' ')} {fmt(v)}"

    def group(g, top=False):
        parts = [group(c) if "conditions" in c else leaf(c) for c in g["conditions"]]
        if not parts:
            return "everyone" if g["op"] == "and" else "no one"
        s = f" {g['op']} ".join(parts)
        return s if top or len(parts) == 1 else f"({s})"

    return group(d, top=True)


def iter_conditions(definition: Mapping) -> Iterable[dict]:
    """Every condition of a definition, nested groups included (in order)."""
    for c in definition.get("conditions", []) if isinstance(definition, Mapping) else []:
        if isinstance(c, Mapping) and ("conditions" in c or "op" in c):
            yield from iter_conditions(c)
        else:
            yield c
