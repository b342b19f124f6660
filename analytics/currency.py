"""A dataset's currency: ISO 4217 codes, a guess from the file's layout and contents, and the stored choice.

Every money figure of a dataset (pages, reports, exports) is shown in the
dataset's currency (:func:`dataset_currency`). The user sets it on the Data page
or with ``valuescope currency``; until then it is guessed, and the guess says
why (:class:`CurrencyInfo.reason`):

1. a column of currency codes kept at load time (``Currency`` in the
   attributes) whose most frequent value is an ISO 4217 code;
2. currency signs in the raw amounts of the file's first rows (``£12.50``,
   ``12,50 €``: the loader strips the sign, the preview still has it);
3. the layout: UCI Online Retail invoices are a UK retailer's (pounds
   sterling), CDNOW-style logs are the US music retailer's (US dollars),
   Taobao UserBehavior logs carry no amounts (yuan, if any);
4. the customers' countries: when the currency of one set of countries covers
   at least half of the events with a country (the euro area counts as one).

No guess gives ``None`` (figures are then shown without a sign). The stored
choice lives in ``dataset_settings`` (migration 90, deleted with the dataset).
Only codes of circulating currencies are accepted (not funds or metals such as
``XAU``); :func:`check_code` says so in words for anything else.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from analytics.warehouse import Warehouse

SETTING_KEY = "currency"


class CurrencyError(ValueError):
    """A currency code that is not ISO 4217 (message says what to type)."""


@dataclass(frozen=True)
class Currency:
    code: str
    name: str
    minor_units: int = 2
    symbol: str | None = None  # None: the code is written before the amount ("CHF 12.00")

    @property
    def prefix(self) -> str:
        """What goes before an amount: the sign (``€``) or the code and a space (``CHF ``)."""
        return self.symbol if self.symbol else self.code + " "


def _c(code, name, minor=2, symbol=None):
    return Currency(code, name, minor, symbol)


#: Circulating currencies of ISO 4217 (list of 2025): code, English name, minor units, sign.
#: Signs only where they are unambiguous in an English-language interface; the others
#: are written with their code.
CURRENCIES: dict[str, Currency] = {c.code: c for c in [
    _c("AED", "UAE dirham"), _c("AFN", "Afghan afghani"), _c("ALL", "Albanian lek"),
    _c("AMD", "Armenian dram"), _c("ANG", "Netherlands Antillean guilder"), _c("AOA", "Angolan kwanza"),
    _c("ARS", "Argentine peso"), _c("AUD", "Australian dollar", 2, "A$"), _c("AWG", "Aruban florin"),
    _c("AZN", "Azerbaijani manat"), _c("BAM", "Bosnia and Herzegovina convertible mark"),
    _c("BBD", "Barbados dollar"), _c("BDT", "Bangladeshi taka"), _c("BGN", "Bulgarian lev"),
    _c("BHD", "Bahraini dinar", 3), _c("BIF", "Burundian franc", 0), _c("BMD", "Bermudian dollar"),
    _c("BND", "Brunei dollar"), _c("BOB", "Boliviano"), _c("BRL", "Brazilian real", 2, "R$"),
    _c("BSD", "Bahamian dollar"), _c("BTN", "Bhutanese ngultrum"), _c("BWP", "Botswana pula"),
    _c("BYN", "Belarusian ruble"), _c("BZD", "Belize dollar"), _c("CAD", "Canadian dollar", 2, "CA$"),
    _c("CDF", "Congolese franc"), _c("CHF", "Swiss franc"), _c("CLP", "Chilean peso", 0),
    _c("CNY", "Chinese yuan", 2, "CN¥"), _c("COP", "Colombian peso"), _c("CRC", "Costa Rican colón"),
    _c("CUP", "Cuban peso"), _c("CVE", "Cape Verdean escudo"), _c("CZK", "Czech koruna"),
    _c("DJF", "Djiboutian franc", 0), _c("DKK", "Danish krone"), _c("DOP", "Dominican peso"),
    _c("DZD", "Algerian dinar"), _c("EGP", "Egyptian pound"), _c("ERN", "Eritrean nakfa"),
    _c("ETB", "Ethiopian birr"), _c("EUR", "Euro", 2, "€"), _c("FJD", "Fiji dollar"),
    _c("FKP", "Falkland Islands pound"), _c("GBP", "Pound sterling", 2, "£"), _c("GEL", "Georgian lari"),
    _c("GHS", "Ghanaian cedi"), _c("GIP", "Gibraltar pound"), _c("GMD", "Gambian dalasi"),
    _c("GNF", "Guinean franc", 0), _c("GTQ", "Guatemalan quetzal"), _c("GYD", "Guyanese dollar"),
    _c("HKD", "Hong Kong dollar", 2, "HK$"), _c("HNL", "Honduran lempira"), _c("HTG", "Haitian gourde"),
    _c("HUF", "Hungarian forint"), _c("IDR", "Indonesian rupiah"), _c("ILS", "Israeli new shekel", 2, "₪"),
    _c("INR", "Indian rupee", 2, "₹"), _c("IQD", "Iraqi dinar", 3), _c("IRR", "Iranian rial"),
    _c("ISK", "Icelandic króna", 0), _c("JMD", "Jamaican dollar"), _c("JOD", "Jordanian dinar", 3),
    _c("JPY", "Japanese yen", 0, "¥"), _c("KES", "Kenyan shilling"), _c("KGS", "Kyrgyzstani som"),
    _c("KHR", "Cambodian riel"), _c("KMF", "Comoro franc", 0), _c("KPW", "North Korean won"),
    _c("KRW", "South Korean won", 0, "₩"), _c("KWD", "Kuwaiti dinar", 3), _c("KYD", "Cayman Islands dollar"),
    _c("KZT", "Kazakhstani tenge"), _c("LAK", "Lao kip"), _c("LBP", "Lebanese pound"),
    _c("LKR", "Sri Lankan rupee"), _c("LRD", "Liberian dollar"), _c("LSL", "Lesotho loti"),
    _c("LYD", "Libyan dinar", 3), _c("MAD", "Moroccan dirham"), _c("MDL", "Moldovan leu"),
    _c("MGA", "Malagasy ariary"), _c("MKD", "Macedonian denar"), _c("MMK", "Myanmar kyat"),
    _c("MNT", "Mongolian tögrög"), _c("MOP", "Macanese pataca"), _c("MRU", "Mauritanian ouguiya"),
    _c("MUR", "Mauritian rupee"), _c("MVR", "Maldivian rufiyaa"), _c("MWK", "Malawian kwacha"),
    _c("MXN", "Mexican peso", 2, "MX$"), _c("MYR", "Malaysian ringgit"), _c("MZN", "Mozambican metical"),
    _c("NAD", "Namibian dollar"), _c("NGN", "Nigerian naira", 2, "₦"), _c("NIO", "Nicaraguan córdoba"),
    _c("NOK", "Norwegian krone"), _c("NPR", "Nepalese rupee"), _c("NZD", "New Zealand dollar", 2, "NZ$"),
    _c("OMR", "Omani rial", 3), _c("PAB", "Panamanian balboa"), _c("PEN", "Peruvian sol"),
    _c("PGK", "Papua New Guinean kina"), _c("PHP", "Philippine peso", 2, "₱"), _c("PKR", "Pakistani rupee"),
    _c("PLN", "Polish złoty"), _c("PYG", "Paraguayan guaraní", 0), _c("QAR", "Qatari riyal"),
    _c("RON", "Romanian leu"), _c("RSD", "Serbian dinar"), _c("RUB", "Russian ruble"),
    _c("RWF", "Rwandan franc", 0), _c("SAR", "Saudi riyal"), _c("SBD", "Solomon Islands dollar"),
    _c("SCR", "Seychelles rupee"), _c("SDG", "Sudanese pound"), _c("SEK", "Swedish krona"),
    _c("SGD", "Singapore dollar", 2, "S$"), _c("SHP", "Saint Helena pound"), _c("SLE", "Sierra Leonean leone"),
    _c("SOS", "Somali shilling"), _c("SRD", "Surinamese dollar"), _c("SSP", "South Sudanese pound"),
    _c("STN", "São Tomé and Príncipe dobra"), _c("SVC", "Salvadoran colón"), _c("SYP", "Syrian pound"),
    _c("SZL", "Swazi lilangeni"), _c("THB", "Thai baht", 2, "฿"), _c("TJS", "Tajikistani somoni"),
    _c("TMT", "Turkmenistan manat"), _c("TND", "Tunisian dinar", 3), _c("TOP", "Tongan paʻanga"),
    _c("TRY", "Turkish lira", 2, "₺"), _c("TTD", "Trinidad and Tobago dollar"), _c("TWD", "New Taiwan dollar", 2, "NT$"),
    _c("TZS", "Tanzanian shilling"), _c("UAH", "Ukrainian hryvnia", 2, "₴"), _c("UGX", "Ugandan shilling", 0),
    _c("USD", "US dollar", 2, "$"), _c("UYU", "Uruguayan peso"), _c("UZS", "Uzbekistani sum"),
    _c("VED", "Venezuelan digital bolívar"), _c("VES", "Venezuelan sovereign bolívar"),
    _c("VND", "Vietnamese đồng", 0, "₫"), _c("VUV", "Vanuatu vatu", 0), _c("WST", "Samoan tālā"),
    _c("XAF", "Central African CFA franc", 0), _c("XCD", "East Caribbean dollar"),
    _c("XCG", "Caribbean guilder"), _c("XOF", "West African CFA franc", 0), _c("XPF", "CFP franc", 0),
    _c("YER", "Yemeni rial"), _c("ZAR", "South African rand"), _c("ZMW", "Zambian kwacha"),
    _c("ZWG", "Zimbabwe gold"),
]}

#: codes a user is most likely to want, first in pickers
COMMON = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY", "CNY", "INR", "AUD", "CAD",
          "BRL", "MXN")

_EURO = ("AT", "BE", "HR", "CY", "EE", "FI", "FR", "DE", "GR", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PT",
         "SK", "SI", "ES", "MC", "SM", "VA", "AD", "ME", "XK")
#: ISO 3166 alpha-2 country -> currency, for the countries a shop's customers most often come from
COUNTRY_CURRENCY: dict[str, str] = {**{c: "EUR" for c in _EURO}, **{
    "GB": "GBP", "UK": "GBP", "US": "USD", "CH": "CHF", "LI": "CHF", "SE": "SEK", "NO": "NOK", "DK": "DKK",
    "IS": "ISK", "PL": "PLN", "CZ": "CZK", "HU": "HUF", "RO": "RON", "BG": "BGN", "RS": "RSD", "TR": "TRY",
    "UA": "UAH", "RU": "RUB", "JP": "JPY", "CN": "CNY", "HK": "HKD", "TW": "TWD", "KR": "KRW", "IN": "INR",
    "SG": "SGD", "MY": "MYR", "TH": "THB", "ID": "IDR", "PH": "PHP", "VN": "VND", "AU": "AUD", "NZ": "NZD",
    "CA": "CAD", "MX": "MXN", "BR": "BRL", "AR": "ARS", "CL": "CLP", "CO": "COP", "PE": "PEN", "ZA": "ZAR",
    "NG": "NGN", "KE": "KES", "EG": "EGP", "MA": "MAD", "IL": "ILS", "AE": "AED", "SA": "SAR", "QA": "QAR",
    "KW": "KWD", "BH": "BHD", "OM": "OMR", "JO": "JOD", "LB": "LBP", "PK": "PKR", "BD": "BDT", "LK": "LKR",
}}
#: English country names (lower case) as written in real files (UCI Online Retail uses names)
COUNTRY_NAMES: dict[str, str] = {
    "united kingdom": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "channel islands": "GB", "united states": "US", "usa": "US",
    "united states of america": "US", "germany": "DE", "france": "FR", "netherlands": "NL", "the netherlands": "NL",
    "belgium": "BE", "spain": "ES", "italy": "IT", "portugal": "PT", "austria": "AT", "ireland": "IE", "eire": "IE",
    "finland": "FI", "greece": "GR", "luxembourg": "LU", "malta": "MT", "cyprus": "CY", "slovakia": "SK",
    "slovenia": "SI", "estonia": "EE", "latvia": "LV", "lithuania": "LT", "croatia": "HR", "switzerland": "CH",
    "sweden": "SE", "norway": "NO", "denmark": "DK", "iceland": "IS", "poland": "PL", "czech republic": "CZ",
    "czechia": "CZ", "hungary": "HU", "romania": "RO", "bulgaria": "BG", "japan": "JP", "china": "CN",
    "hong kong": "HK", "singapore": "SG", "australia": "AU", "new zealand": "NZ", "canada": "CA", "brazil": "BR",
    "mexico": "MX", "india": "IN", "israel": "IL", "south africa": "ZA", "united arab emirates": "AE",
    "saudi arabia": "SA", "turkey": "TR", "korea": "KR", "south korea": "KR", "lebanon": "LB", "bahrain": "BH",
    "rsa": "ZA", "european community": "EU",
}
#: signs found in raw amounts -> currency (``$`` alone is taken as US dollars)
SIGNS = {"€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY", "₹": "INR", "₩": "KRW", "₽": "RUB", "₺": "TRY",
         "₪": "ILS", "₫": "VND", "฿": "THB", "₦": "NGN", "₱": "PHP", "₴": "UAH", "zł": "PLN"}
_LAYOUT_CURRENCY = {
    "uci_online_retail": ("GBP", "UCI Online Retail invoices are a UK online retailer's, priced in pounds sterling"),
    "cdnow": ("USD", "CDNOW-style logs come from the US music retailer CDNOW, amounts in US dollars"),
}
_CODE_RE = re.compile(r"^[A-Za-z]{3}$")


@dataclass(frozen=True)
class CurrencyInfo:
    """A dataset's currency: ``code`` (None when unknown), ``source`` (``"set"`` by a user,
    ``"guessed"`` or ``"unknown"``) and ``reason`` (a sentence for the user)."""

    code: str | None
    source: str
    reason: str

    @property
    def currency(self) -> Currency | None:
        return CURRENCIES.get(self.code) if self.code else None


def check_code(code: Any) -> str:
    """``code`` as an upper-case ISO 4217 code of a circulating currency; CurrencyError otherwise."""
    if not isinstance(code, str) or not code.strip():
        raise CurrencyError("give a currency as its three-letter ISO 4217 code, e.g. EUR, USD or GBP")
    text = code.strip()
    up = text.upper()
    if up in CURRENCIES:
        return up
    if text in SIGNS:
        raise CurrencyError(f"{text!r} is a sign, not a code: use its ISO 4217 code ({SIGNS[text]})")
    hint = "three letters" if not _CODE_RE.match(text) else "not a circulating currency"
    raise CurrencyError(f"{_short(text)} is not an ISO 4217 currency code ({hint}); use a code such as EUR, USD "
                        "or GBP")


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def get(code: str | None) -> Currency | None:
    """The :class:`Currency` of a (valid) code, None for None or an unknown code."""
    return CURRENCIES.get(str(code).upper()) if code else None


def choices() -> list[str]:
    """Every code, the common ones first (for a picker)."""
    return list(COMMON) + sorted(c for c in CURRENCIES if c not in COMMON)


def label(code: str) -> str:
    """``"EUR · Euro (€)"`` for a picker."""
    c = CURRENCIES[code]
    return f"{c.code} · {c.name}" + (f" ({c.symbol})" if c.symbol else "")


# ----------------------------------------------------------------- guessing
def country_currency(value: Any) -> str | None:
    """The currency of a country written as an ISO alpha-2 code or an English name."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    if len(v) == 2:
        return COUNTRY_CURRENCY.get(v.upper())
    code = COUNTRY_NAMES.get(v.lower())
    if code == "EU":
        return "EUR"
    return COUNTRY_CURRENCY.get(code) if code else None


def _from_countries(counts: Iterable[tuple[Any, int]]) -> tuple[str | None, str]:
    per: Counter = Counter()
    total = 0
    for country, n in counts:
        if country is None:
            continue
        total += int(n)
        cur = country_currency(country)
        if cur:
            per[cur] += int(n)
    if not total or not per:
        return None, ""
    code, n = per.most_common(1)[0]
    share = n / total
    if share < 0.5:
        return None, ""
    from analytics.formatting import percent  # here: formatting imports this module

    return code, (f"{percent(share, 0)} of the events with a country come from countries that pay in "
                  f"{CURRENCIES[code].name}")


def _from_codes(values: Iterable[Any]) -> tuple[str | None, str]:
    counts = Counter(str(v).strip().upper() for v in values if isinstance(v, str) and v.strip())
    if not counts:
        return None, ""
    code, n = counts.most_common(1)[0]
    if code in CURRENCIES and n / sum(counts.values()) >= 0.5:
        return code, f"the file's currency column says {code}"
    return None, ""


def _from_signs(values: Iterable[Any]) -> tuple[str | None, str]:
    counts: Counter = Counter()
    for v in values:
        if not isinstance(v, str):
            continue
        for sign, code in SIGNS.items():
            if sign in v:
                counts[code] += 1
                break
        else:
            m = re.search(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])", v)
            if m and m.group(1) in CURRENCIES and re.search(r"\d", v):
                counts[m.group(1)] += 1
    if not counts:
        return None, ""
    code, _ = counts.most_common(1)[0]
    return code, f"the amounts in the file are written with {CURRENCIES[code].symbol or code}"


def guess_from_preview(preview) -> tuple[str | None, str]:
    """``(code, reason)`` guessed from an ``analytics.ingest.inspect_source`` preview (before a load):
    a currency column, signs in the amounts, the layout, then the countries (module docstring)."""
    sample = preview.sample
    cols = list(preview.source_columns)
    m = preview.mapping.columns

    def values(col):
        if col is None or col not in cols or sample is None or sample.empty:
            return []
        return sample.iloc[:, cols.index(col)].tolist()

    cur_col = next((c for c in cols if c.strip().lower() in ("currency", "currency_code", "currencycode")), None)
    for found in (_from_codes(values(cur_col)), _from_signs(values(m.get("revenue")))):
        if found[0]:
            return found
    if preview.layout in _LAYOUT_CURRENCY:
        return _LAYOUT_CURRENCY[preview.layout]
    countries = Counter(v for v in values(m.get("country")) if isinstance(v, str) and v.strip())
    return _from_countries(countries.items())


def guess_from_data(wh: Warehouse, dataset: str) -> tuple[str | None, str]:
    """``(code, reason)`` guessed from a loaded dataset: a currency attribute kept at load, the
    layout of its first load, then the customers' countries."""
    cur = wh.cursor()
    rows = cur.execute(
        "SELECT attributes FROM events WHERE dataset = ? AND attributes IS NOT NULL LIMIT 200", [dataset]).fetchall()
    codes = []
    for (raw,) in rows:
        try:
            attrs = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if isinstance(attrs, dict):
            codes += [v for k, v in attrs.items() if str(k).strip().lower() in ("currency", "currency_code",
                                                                               "currencycode")]
    found = _from_codes(codes)
    if found[0]:
        return found
    layout = cur.execute("SELECT layout FROM ingestions WHERE dataset = ? ORDER BY id LIMIT 1", [dataset]).fetchone()
    if layout and layout[0] in _LAYOUT_CURRENCY:
        return _LAYOUT_CURRENCY[layout[0]]
    counts = cur.execute(
        "SELECT country, count(*) FROM events WHERE dataset = ? AND country IS NOT NULL GROUP BY country",
        [dataset]).fetchall()
    return _from_countries(counts)


# ----------------------------------------------------------------- the stored choice
def set_dataset_currency(wh: Warehouse, dataset: str, code: str | None) -> str | None:
    """Store the dataset's currency (validated; None forgets the choice, back to the guess)."""
    wh.require_dataset(dataset)
    with wh.transaction() as tx:
        tx.execute("DELETE FROM dataset_settings WHERE dataset = ? AND key = ?", [dataset, SETTING_KEY])
        if code is None:
            return None
        code = check_code(code)
        tx.execute("INSERT INTO dataset_settings (dataset, key, value) VALUES (?, ?, ?)", [dataset, SETTING_KEY, code])
    return code


def stored_currency(wh: Warehouse, dataset: str) -> str | None:
    """The code a user set for ``dataset`` (None when never set): one small read, no guess."""
    row = wh.cursor().execute("SELECT value FROM dataset_settings WHERE dataset = ? AND key = ?",
                              [dataset, SETTING_KEY]).fetchone()
    return row[0] if row and row[0] in CURRENCIES else None


def dataset_currency(wh: Warehouse, dataset: str | None, *, guess=None) -> CurrencyInfo:
    """The currency money of ``dataset`` is shown in: the stored choice, else a guess (with its reason).
    ``guess``: a callable giving ``(code, reason)`` in place of :func:`guess_from_data` (a cached one:
    the guess reads the events)."""
    if not dataset:
        return CurrencyInfo(None, "unknown", "no dataset")
    stored = stored_currency(wh, dataset)
    if stored:
        return CurrencyInfo(stored, "set", "set for this dataset")
    code, reason = guess() if guess is not None else guess_from_data(wh, dataset)
    if code:
        return CurrencyInfo(code, "guessed", f"guessed: {reason}")
    return CurrencyInfo(None, "unknown", "not set and nothing in the data says which; set it on the Data page")
