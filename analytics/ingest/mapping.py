"""Column mapping: canonical fields, layout recognition, date formats, proposals.

A ``Mapping`` says which source column feeds each canonical field of ``events``
plus the few transformations the known layouts need. Proposals come from column
names first and from contents second (a column of parseable dates, numeric
amounts, Unix timestamps, behaviour codes).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import duckdb

from analytics.ingest.errors import IngestError

#: (field, required, description) in the order the mapping editor shows them
CANONICAL_FIELDS: list[tuple[str, bool, str]] = [
    ("customer_id", True, "who: customer, user or client id"),
    ("event_time", True, "when: date or timestamp of the event"),
    ("event_type", False, "what: view / search / cart / purchase / return / review (default: purchase)"),
    ("order_id", False, "order, invoice or transaction id"),
    ("item_id", False, "product, item or SKU id"),
    ("category", False, "product category"),
    ("quantity", False, "number of units"),
    ("revenue", False, "amount of money (line total; or unit price when 'revenue is unit price')"),
    ("rating", False, "review rating"),
    ("text", False, "review or search text"),
    ("country", False, "customer's country"),
]
FIELD_NAMES = [f for f, _, _ in CANONICAL_FIELDS]
REQUIRED_FIELDS = [f for f, req, _ in CANONICAL_FIELDS if req]
#: the fields as people read them (the mapping editor's labels and what it says is missing)
FIELD_TITLES: dict[str, str] = {
    "customer_id": "Customer id", "event_time": "Date and time", "event_type": "Event type",
    "order_id": "Order id", "item_id": "Product id", "category": "Category", "quantity": "Quantity",
    "revenue": "Amount", "rating": "Rating", "text": "Review or search text", "country": "Country",
}


#: the layouts ``detect_layout`` recognises, as people read them
LAYOUT_TITLES: dict[str, str] = {
    "uci_online_retail": "UCI Online Retail invoices", "events": "event log", "taobao": "Taobao UserBehavior events",
    "cdnow": "CDNOW purchase log", "orders": "order lines", "shopify": "Shopify orders export",
}

#: Shopify's orders export (Admin > Orders > Export): one row per line item, the order's number in
#: "Name" (#1001), the buyer only as "Email" (the export has no customer id), and the order's
#: totals ("Subtotal", "Total", ...) on its first line only. A customer is their e-mail address, an
#: order its number and a line's revenue its price x quantity: every line carries its own, and the
#: order's "Total" adds shipping and taxes, which are not the customer's value to the shop.
SHOPIFY_COLUMNS = {"customer_id": "email", "order_id": "name", "event_time": "createdat",
                   "item_id": "lineitemsku", "quantity": "lineitemquantity", "revenue": "lineitemprice",
                   "country": "billingcountry"}


def layout_title(layout: str) -> str:
    """A layout in words (``uci_online_retail`` -> ``UCI Online Retail invoices``)."""
    return LAYOUT_TITLES.get(layout, str(layout).replace("_", " "))


def field_title(name: str) -> str:
    """A canonical field in words (``customer_id`` -> ``Customer id``)."""
    return FIELD_TITLES.get(name, name.replace("_", " ").capitalize())


def load_blockers(columns: dict[str, str | None], *, revenue_is_unit_price: bool = False) -> list[str]:
    """What a mapping (field -> source column or None) still lacks before a load can start, in
    words, in the editor's order; empty when nothing does. The same rules as
    :meth:`Mapping.validate` raises on, so a page can say them before the load instead of after."""
    out = [f"a column for {field_title(f)}" for f in REQUIRED_FIELDS if not columns.get(f)]
    if revenue_is_unit_price and not columns.get("quantity"):
        out.append(f"a column for {field_title('quantity')} (the amount is a unit price, so revenue = "
                   "quantity × price)")
    return out

#: special date formats besides strptime patterns
UNIX_SECONDS = "unix"
UNIX_MILLIS = "unix_ms"
#: Excel's serial day numbers (35431 = 1997-01-01; a fraction is the time of day), as a
#: spreadsheet saves its dates when the cells are not formatted as dates. Counted from
#: 1899-12-30, which absorbs Excel's fictitious 29 February 1900 for every serial after it.
EXCEL_DAYS = "excel"
#: the serials proposed as dates: 1954-10-03 .. 2119-01-10 (other 5-digit numbers are rarely dates)
EXCEL_SERIAL_RANGE = (20000, 80000)
#: words for the special formats in messages
SPECIAL_FORMAT_WORDS = {UNIX_SECONDS: "Unix seconds", UNIX_MILLIS: "Unix milliseconds",
                        EXCEL_DAYS: "Excel serial day"}

DATE_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%SZ",
    # with the shop's UTC offset, as Shopify's orders export ('2025-01-17 15:04:00 +0100') and ISO 8601
    # APIs ('2025-01-17T15:04:00+01:00') write them; loaded as the instant, in UTC (see the loader)
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d.%m.%y",
]

#: Taobao UserBehavior codes; 'fav' (add to favourites) is a purchase-intent bookmark with no
#: canonical type of its own, so it counts as 'cart' (documented choice).
TAOBAO_EVENT_MAP = {"pv": "view", "fav": "cart", "cart": "cart", "buy": "purchase"}
EVENT_SYNONYMS = {
    "view": "view", "page_view": "view", "pageview": "view", "pv": "view", "click": "view", "visit": "view",
    "search": "search", "query": "search",
    "cart": "cart", "add_to_cart": "cart", "addtocart": "cart", "basket": "cart", "fav": "cart",
    "purchase": "purchase", "buy": "purchase", "order": "purchase", "transaction": "purchase", "sale": "purchase",
    "return": "return", "refund": "return",
    "review": "review", "rating": "review",
}


@dataclass
class Mapping:
    """Source column for each canonical field (None = not in the file) plus transformations.

    - ``date_format``: strptime pattern for ``event_time`` or 'unix' / 'unix_ms' / 'excel'
      (Excel serial day numbers).
    - ``negative_is_return``: a negative amount or quantity makes the row a 'return'
      (stored with positive revenue and quantity).
    - ``revenue_is_unit_price``: the revenue column is a unit price; revenue = quantity x price (UCI).
    - ``return_prefix``: order ids starting with this text are returns (UCI: 'C').
    - ``event_type_map``: source value (lower-cased) -> canonical event type.
    - ``strip_leading_zeros``: customer ids '0001' -> '1' (CDNOW).
    - ``strip_point_zero``: id fields (customer_id, order_id, item_id) whose integers were written
      as decimals by a program that read them as floats ('17850.0', as in UCI Online Retail copies
      saved by pandas): such values lose the '.0'. Proposed for a field whose sampled values all are.
    - ``decimal_comma``: amounts written as 12,50.
    - ``attributes``: further source columns kept in events.attributes (JSON).
    """

    columns: dict[str, str | None] = field(default_factory=lambda: {f: None for f in FIELD_NAMES})
    date_format: str | None = None
    negative_is_return: bool = True
    revenue_is_unit_price: bool = False
    return_prefix: str | None = None
    event_type_map: dict[str, str] = field(default_factory=dict)
    default_event_type: str = "purchase"
    strip_leading_zeros: bool = False
    strip_point_zero: list[str] = field(default_factory=list)
    decimal_comma: bool = False
    attributes: list[str] = field(default_factory=list)

    def __post_init__(self):
        cols = {f: None for f in FIELD_NAMES}
        for k, v in (self.columns or {}).items():
            if k not in cols:
                raise IngestError(f"unknown field {k!r} in the mapping (fields: {', '.join(FIELD_NAMES)})")
            cols[k] = v or None
        self.columns = cols

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Mapping":
        if not isinstance(d, dict):
            raise IngestError("a mapping must be a JSON object")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise IngestError(f"unknown mapping keys: {', '.join(sorted(unknown))}")
        return cls(**d)

    def validate(self, source_columns: list[str]) -> None:
        from analytics.warehouse import EVENT_TYPES

        for f in REQUIRED_FIELDS:
            if not self.columns.get(f):
                raise IngestError(
                    f"required column missing: no source column is mapped to {f!r} "
                    f"(columns in the file: {_list(source_columns)})"
                )
        for f, col in self.columns.items():
            if col is not None and col not in source_columns:
                raise IngestError(f"the mapping uses column {col!r} for {f!r}, but the file has no such column "
                                  f"(columns: {_list(source_columns)})")
        for col in self.attributes:
            if col not in source_columns:
                raise IngestError(f"attribute column {col!r} is not in the file")
        bad = {v for v in self.event_type_map.values() if v not in EVENT_TYPES}
        if bad or self.default_event_type not in EVENT_TYPES:
            raise IngestError(f"unknown event types in the mapping: {', '.join(sorted(bad) or [self.default_event_type])}"
                              f" (allowed: {', '.join(EVENT_TYPES)})")
        bad = [f for f in self.strip_point_zero if f not in POINT_ZERO_FIELDS]
        if bad:
            raise IngestError(f"'strip_point_zero' takes id fields only ({', '.join(POINT_ZERO_FIELDS)}), "
                              f"not {', '.join(map(repr, bad))}")
        if self.revenue_is_unit_price and not self.columns.get("quantity"):
            raise IngestError("'revenue is unit price' needs a quantity column")


def _list(cols) -> str:
    shown = [repr(c) for c in cols[:20]]
    return ", ".join(shown) + (" ..." if len(cols) > 20 else "") if shown else "none"


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_NAME_HINTS: dict[str, list[str]] = {
    "customer_id": ["customerid", "customer", "custid", "cust", "clientid", "client", "userid", "user", "memberid",
                    "member", "buyerid", "buyer", "accountid", "account", "shopperid", "visitorid", "uid", "kunde", "kundennummer", "kundenid", "kundennr", "cliente", "idcliente", "clientnumber", "customernumber", "customerno"],
    "event_time": ["eventtime", "timestamp", "datetime", "time", "date", "orderdate", "invoicedate", "purchasedate",
                   "transactiondate", "createdat", "created", "ts", "day", "datum", "fecha", "data", "zeit", "zeitpunkt", "bestelldatum", "dateheure", "horodatage"],
    "event_type": ["eventtype", "event", "behaviortype", "behaviourtype", "behavior", "behaviour", "action", "type",
                   "activity"],
    "order_id": ["orderid", "order", "invoiceno", "invoice", "invoiceid", "transactionid", "transaction", "orderno",
                 "ordernumber", "receipt", "basketid", "bestellung", "bestellnummer", "bestellnr", "pedido", "commande", "rechnung", "rechnungsnummer", "factura"],
    "item_id": ["itemid", "item", "productid", "product", "sku", "stockcode", "articleid", "article", "productcode", "artikel", "artikelnummer", "produkt", "producto", "produit", "articulo"],
    "category": ["category", "categoryid", "productcategory", "cat", "department", "group", "productgroup", "kategorie", "categoria", "categorie", "warengruppe"],
    "quantity": ["quantity", "qty", "units", "quantities", "count", "amountunits", "nunits", "items", "menge", "anzahl", "cantidad", "quantite", "stueck", "stuck"],
    "revenue": ["revenue", "amount", "total", "totalamount", "sales", "value", "spend", "price", "unitprice",
                "ordertotal", "gmv", "net", "netamount", "sum", "dollars", "totalprice", "linetotal", "betrag", "umsatz", "summe", "preis", "importe", "montant", "total_eur", "totaleur", "precio", "prix", "wert"],
    "rating": ["rating", "stars", "score", "reviewscore"],
    "text": ["text", "review", "reviewtext", "comment", "searchquery", "query", "description"],
    "country": ["country", "countrycode", "nation", "land", "pais", "pays"],
}


#: the id fields whose integers written as decimals ('17850.0') are read as integers
POINT_ZERO_FIELDS = ("customer_id", "order_id", "item_id")
_POINT_ZERO = re.compile(r"\d+\.0+")


def integers_written_as_decimals(values: list[str]) -> bool:
    """Whether every non-empty value is an integer with a '.0' ('17850.0')."""
    vals = [v.strip() for v in values if v and v.strip()]
    return bool(vals) and all(_POINT_ZERO.fullmatch(v) for v in vals)


#: unmapped columns with these (normalized) names are proposed as customer attributes
ATTRIBUTE_HINTS = {
    "gender", "sex", "age", "agegroup", "agebracket", "birthyear", "segment", "customersegment", "city", "region",
    "state", "province", "channel", "acquisitionchannel", "source", "device", "platform", "tier", "loyaltytier",
    "membership", "membershiplevel", "language", "currency", "store", "storeid", "shop", "paymentmethod",
    "signupdate", "registrationdate",
}


def _name_match(field_name: str, columns: list[str], taken: set[str], exact: bool = True) -> str | None:
    normed = {c: norm(c) for c in columns if c not in taken}
    if exact:
        for hint in _NAME_HINTS[field_name]:  # exact, in preference order
            for c, n in normed.items():
                if n == hint:
                    return c
        return None
    for hint in _NAME_HINTS[field_name][:4]:  # names starting or ending with the strongest hints
        if len(hint) < 4:
            continue
        for c, n in normed.items():
            if n.startswith(hint) or n.endswith(hint):
                return c
    return None


# ---------------------------------------------------------------- contents
def _con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


# A date column may miss this share of its sampled values (rejected rows) and still get a format.
DATE_MISS_SHARE = 0.01
DATE_MISS_MIN_SAMPLE = 50


def _is_excel_serial(v: str) -> bool:
    lo, hi = EXCEL_SERIAL_RANGE
    return bool(re.fullmatch(r"\d{5}(\.\d*)?", v)) and lo <= float(v) < hi


def candidate_date_formats(values: list[str], *, excel: bool = True) -> list[str]:
    """Formats (strptime patterns, or 'unix'/'unix_ms'/'excel') that parse the non-empty sample values.

    A column of plain numbers, each in ``EXCEL_SERIAL_RANGE`` (with or without a fraction for the
    time of day), is Excel serial days; ``excel=False`` leaves that reading out (for a column that
    is guessed to be the date from its contents alone, where such numbers are more often codes).

    Formats that parse every value win. Real exports carry the odd broken date ("not a date",
    1997-02-30) among thousands of good ones, so when no format parses them all, the formats that
    parse the most values are still proposed if they miss at most ``DATE_MISS_SHARE`` of a sample
    of at least ``DATE_MISS_MIN_SAMPLE`` values: the load then rejects those rows one by one
    (counted and listed with their line numbers) instead of refusing the file. A smaller sample
    must parse whole, and a column of mixed formats misses far more than that and is still
    refused with a request for the format.

    More than one strptime candidate differing in day/month order means the dates
    are ambiguous (e.g. 02/01/2024): the user must choose.
    """
    vals = [v.strip() for v in values if v and v.strip()]
    if not vals:
        return []
    if all(re.fullmatch(r"\d{9,10}", v) for v in vals):
        return [UNIX_SECONDS]
    if all(re.fullmatch(r"\d{12,13}", v) for v in vals):
        return [UNIX_MILLIS]
    if excel and all(_is_excel_serial(v) for v in vals):
        return [EXCEL_DAYS]
    con = _con()
    try:
        con.execute("CREATE TABLE v AS SELECT unnest(?::VARCHAR[]) AS v", [vals[:2000]])
        n = min(len(vals), 2000)
        parsed = {fmt: con.execute("SELECT count(try_strptime(v, ?)) FROM v", [fmt]).fetchone()[0]
                  for fmt in DATE_FORMATS}
    finally:
        con.close()
    fits = [fmt for fmt in DATE_FORMATS if parsed[fmt] == n]
    if not fits and n >= DATE_MISS_MIN_SAMPLE:
        best = max(parsed.values())
        if n - best <= DATE_MISS_SHARE * n:
            fits = [fmt for fmt in DATE_FORMATS if parsed[fmt] == best]
    # prefer the most specific pattern among those that differ only by optional parts
    return _dedupe_formats(fits)


def date_misses(values: list[str], fmt: str) -> int:
    """How many non-empty ``values`` the strptime pattern ``fmt`` does not parse (0 for unix times,
    or Excel serial days, which :func:`candidate_date_formats` only proposes when every value is one)."""
    vals = [v.strip() for v in values if v and v.strip()]
    if not vals or fmt in SPECIAL_FORMAT_WORDS:
        return 0
    con = _con()
    try:
        return con.execute("SELECT count(*) - count(try_strptime(v, ?)) FROM unnest(?::VARCHAR[]) t(v)",
                           [fmt, vals]).fetchone()[0]
    finally:
        con.close()


def _dedupe_formats(fits: list[str]) -> list[str]:
    out = []
    for f in fits:
        # '%d/%m/%y' also "parses" 4-digit years oddly: keep 2-digit-year formats only when nothing else fits
        if f.endswith("%y") and any(not g.endswith("%y") for g in fits):
            continue
        out.append(f)
    return out


def is_ambiguous(formats: list[str]) -> bool:
    return len(formats) > 1


def _numeric_share(values: list[str], decimal_comma=False) -> float:
    vals = [v.strip() for v in values if v and v.strip()]
    if not vals:
        return 0.0
    pat = r"[-+]?(\d+(,\d*)?|,\d+)" if decimal_comma else r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
    return sum(bool(re.fullmatch(pat, v)) for v in vals) / len(vals)


def _is_integerish(values):
    vals = [v.strip() for v in values if v and v.strip()]
    return bool(vals) and all(re.fullmatch(r"[-+]?\d+", v) for v in vals)


def looks_decimal_comma(values: list[str]) -> bool:
    vals = [v.strip() for v in values if v and v.strip()]
    return bool(vals) and all(re.fullmatch(r"[-+]?\d{1,3}(\.\d{3})*(,\d+)?|[-+]?\d+(,\d+)?", v) for v in vals) \
        and any("," in v for v in vals)


# ---------------------------------------------------------------- layouts
def detect_layout(columns: list[str], rows: list[list[str]], has_header: bool, delimiter: str) -> str:
    names = {norm(c) for c in columns}
    cols = list(zip(*[r for r in rows if len(r) == len(columns)])) if rows else []
    if {"invoiceno", "invoice"} & names and "stockcode" in names and ({"unitprice", "price"} & names):
        return "uci_online_retail"
    if {"name", "email", "createdat", "lineitemquantity", "lineitemprice"} <= names:
        return "shopify"
    if {"customerid", "eventtime", "eventtype"} <= names:
        return "events"
    if len(columns) == 5 and cols:
        behav = {v.strip().lower() for v in cols[3]}
        if behav and behav <= set(TAOBAO_EVENT_MAP) and _is_integerish(cols[4]):
            return "taobao"
    if not has_header and delimiter == "whitespace" and len(columns) in (4, 5) and cols:
        date_col = cols[-3]
        if all(re.fullmatch(r"(19|20)\d{6}", v.strip()) for v in date_col if v.strip()):
            return "cdnow"
    return "orders"


def propose_mapping(columns: list[str], rows: list[list[str]], layout: str) -> tuple[Mapping, list[str]]:
    """A mapping for the layout, from names and contents; returns (mapping, date format candidates)."""
    by_col = {}
    good_rows = [r for r in rows if len(r) == len(columns)]
    for i, c in enumerate(columns):
        by_col[c] = [r[i] for r in good_rows]
    m = Mapping()
    if layout == "taobao":
        m.columns.update(customer_id=columns[0], item_id=columns[1], category=columns[2], event_type=columns[3],
                         event_time=columns[4])
        m.event_type_map = dict(TAOBAO_EVENT_MAP)
        m.date_format = UNIX_SECONDS
        return m, [UNIX_SECONDS]
    if layout == "cdnow":
        # 5 columns: original id, sample id (1..2357 in the published summary), date, qty, amount.
        # The sample id is the customer id; the original id is kept as an attribute.
        if len(columns) == 5:
            m.columns.update(customer_id=columns[1], event_time=columns[2], quantity=columns[3], revenue=columns[4])
            m.attributes = [columns[0]]
        else:
            m.columns.update(customer_id=columns[0], event_time=columns[1], quantity=columns[2], revenue=columns[3])
        m.date_format = "%Y%m%d"
        m.strip_leading_zeros = True
        return m, ["%Y%m%d"]
    taken: set[str] = set()
    if layout == "shopify":
        by_norm = {norm(c): c for c in reversed(columns)}
        for f, n in SHOPIFY_COLUMNS.items():
            if n in by_norm:
                m.columns[f] = by_norm[n]
                taken.add(by_norm[n])
        m.revenue_is_unit_price = True
    order = ["customer_id", "event_time", "event_type", "order_id", "item_id", "category", "quantity",
             "revenue", "rating", "text", "country"]
    for exact in (True, False):  # exact names for every field first, then looser ones
        for f in order:
            if m.columns[f] is not None:
                continue
            c = _name_match(f, columns, taken, exact)
            if c is not None:
                m.columns[f] = c
                taken.add(c)
    if layout == "uci_online_retail":
        price = next(c for c in columns if norm(c) in ("unitprice", "price"))
        if m.columns["revenue"] != price:
            if m.columns["revenue"]:
                taken.discard(m.columns["revenue"])
            m.columns["revenue"] = price
        m.revenue_is_unit_price = True
        m.return_prefix = "C"
        desc = next((c for c in columns if norm(c) == "description"), None)
        if m.columns["text"] == desc:
            m.columns["text"] = None
        if desc:
            m.attributes = [desc]
    # contents: dates, amounts
    if m.columns["event_time"] is None:
        for c in columns:
            if c in taken:
                continue
            vals = by_col.get(c, [])
            if vals and candidate_date_formats(vals[:200], excel=False):
                m.columns["event_time"] = c
                taken.add(c)
                break
    if m.columns["revenue"] is None:
        for c in columns:
            vals = by_col.get(c, [])
            if c not in taken and vals and not _is_integerish(vals) and (
                    _numeric_share(vals) == 1.0 or looks_decimal_comma(vals)):
                m.columns["revenue"] = c
                taken.add(c)
                break
    # optional customer attributes (segment, city, age...) go to events.attributes
    if layout != "uci_online_retail":
        for c in columns:
            if c not in taken and c not in m.columns.values() and norm(c) in ATTRIBUTE_HINTS:
                m.attributes.append(c)
    date_formats: list[str] = []
    tcol = m.columns["event_time"]
    if tcol:
        date_formats = candidate_date_formats(by_col.get(tcol, []))
        m.date_format = date_formats[0] if len(date_formats) == 1 else None
    m.strip_point_zero = [f for f in POINT_ZERO_FIELDS
                          if m.columns[f] and integers_written_as_decimals(by_col.get(m.columns[f], []))]
    rcol = m.columns["revenue"]
    if rcol and looks_decimal_comma(by_col.get(rcol, [])):
        m.decimal_comma = True
    if m.columns["event_type"]:
        m.event_type_map = {}
        for v in {x.strip().lower() for x in by_col.get(m.columns["event_type"], []) if x.strip()}:
            if v in EVENT_SYNONYMS:
                m.event_type_map[v] = EVENT_SYNONYMS[v]
        for k, v in EVENT_SYNONYMS.items():
            m.event_type_map.setdefault(k, v)
    return m, date_formats
