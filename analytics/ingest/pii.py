"""Personal data: spotting PII columns and pseudonymizing customer ids.

A column is flagged when its name says so (email, phone, name, address...) or
when most sample values look like e-mail addresses, phone numbers or street
addresses. Flagged columns are dropped at load time unless the user keeps them.

Pseudonymization replaces each customer id with HMAC-SHA256(key, id), hex,
truncated to 24 characters (96 bits), prefixed 'p_'. The key is 32 random bytes
generated once per warehouse and stored in the ``settings`` table, so the same
customer gets the same pseudonym in every ingestion into that warehouse and
nobody without the warehouse file can reverse or recompute it. The HMAC is
computed in DuckDB SQL (sha256 over BLOBs, RFC 2104 construction).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from analytics.ingest.mapping import norm

PSEUDONYM_KEY_SETTING = "pseudonymization_key"
PSEUDONYM_HEX_CHARS = 24

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_RE = re.compile(r"^(\+\d{1,3}[\s.-]?)?(\(\d{1,5}\)[\s.-]?)?\d{2,5}([\s.-]\d{2,5}){1,4}$")
_DATEISH_RE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?$")
_ADDRESS_RE = re.compile(
    r"^\d+[a-zA-Z]?\s+\w+.*\b(street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|"
    r"strasse|straße|str|weg|platz|rue|calle|via)\b\.?", re.IGNORECASE)
_NAME_RE = re.compile(r"^[A-Z][a-zà-ÿ'’-]+( [A-Z]\.?)?( [A-Z][a-zà-ÿ'’-]+){1,2}$")

_NAME_HINTS = {
    "email": ["email", "emailaddress", "mail", "email1"],
    "phone": ["phone", "phonenumber", "telephone", "tel", "mobile", "cell", "cellphone", "fax"],
    "name": ["name", "fullname", "firstname", "lastname", "surname", "givenname", "customername", "contactname",
             "familyname", "forename"],
    "address": ["address", "streetaddress", "street", "address1", "address2", "addressline1", "addressline2",
                "billingaddress", "shippingaddress", "postaddress", "homeaddress"],
}


def detect_pii(columns: list[str], samples: dict[str, list[str]], mapped=()) -> dict[str, str]:
    """{column: 'email'|'phone'|'name'|'address'} for columns that look like personal data.

    Columns in ``mapped`` (recognized by name as a canonical field, e.g. Country) are judged
    by their name only, so 'United Kingdom' is not taken for a person's name."""
    found: dict[str, str] = {}
    for c in columns:
        n = norm(c)
        for kind, hints in _NAME_HINTS.items():
            if n in hints or any(len(h) >= 5 and n.endswith(h) for h in hints):
                found[c] = kind
                break
        if c in found or c in mapped:
            continue
        vals = [v.strip() for v in samples.get(c, []) if v and v.strip()]
        if len(vals) < 1:
            continue

        def share(rx):
            return sum(bool(rx.match(v)) for v in vals) / len(vals)

        if share(_EMAIL_RE) >= 0.6:
            found[c] = "email"
        elif share(_ADDRESS_RE) >= 0.6:
            found[c] = "address"
        elif share(_DATEISH_RE) > 0.2:
            continue
        elif share(_PHONE_RE) >= 0.8 and all(sum(ch.isdigit() for ch in v) >= 7 for v in vals if _PHONE_RE.match(v)):
            found[c] = "phone"
        elif share(_NAME_RE) >= 0.8 and len(set(vals)) > 1:
            found[c] = "name"
    return found


def pseudonym_key(wh) -> bytes:
    """The warehouse's pseudonymization key (created on first use)."""
    hexkey = wh.setting(PSEUDONYM_KEY_SETTING)
    if not hexkey:
        hexkey = secrets.token_hex(32)
        wh.set_setting(PSEUDONYM_KEY_SETTING, hexkey)
    return bytes.fromhex(hexkey)


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """(K xor ipad, K xor opad) for HMAC-SHA256 (RFC 2104; key shorter than the 64-byte block)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonymize_sql(expr: str) -> str:
    """SQL computing the pseudonym of the VARCHAR expression ``expr``; binds (ipad, opad) blobs as
    parameters named $ipad and $opad."""
    inner = f"unhex(sha256($ipad || encode({expr})))"
    return f"'p_' || left(sha256($opad || {inner}), {PSEUDONYM_HEX_CHARS})"


def pseudonymize_value(key: bytes, customer_id: str) -> str:
    """The same pseudonym computed in Python (for tests and for looking a customer up)."""
    return "p_" + hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]
