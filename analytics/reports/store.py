"""Stored reports and their permalink tokens (migration 45).

``create_report`` stores a snapshot whole (JSON) with a random token
(``secrets.token_urlsafe(24)``: 192 bits). Only the token's SHA-256 is stored
(``token_hash``) plus its first characters (``token_hint``) to recognise it in a
list, so a copy of the warehouse file does not hand out working links; the token
itself is shown once, when the report is created. ``get_report`` answers with the
stored snapshot (the numbers of the day it was made, whatever arrived since), or a
:class:`ReportError`: "no such report" for a token that was never issued, "this
report link was revoked" after ``revoke_report``.

The table has a ``dataset`` column, so deleting a dataset deletes its reports too.

Links under control (``analytics.access``): making a link needs the analyst role on the report's
dataset; a link may carry an expiry (``expires``: after it, "this report link expired"); its maker
or an admin revokes it; an admin sees every link, others the links of the datasets they see.
A caller without the right to raw customer ids sees them pseudonymised in a report unless an admin
allowed raw ids for that report (:func:`allow_raw_ids`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets

import pandas as pd

from analytics import access
from analytics.reports.snapshot import ReportError, ReportRevokedError, clean_json
from analytics.warehouse import Warehouse

TOKEN_BYTES = 24  # 192 bits of randomness; token_urlsafe gives 32 characters
HINT_CHARS = 6
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
NO_SUCH_REPORT = "no such report: the link is incomplete, mistyped or was never issued"
REVOKED = "this report link was revoked"
EXPIRED = "this report link expired on {when}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now(now=None) -> dt.datetime:
    if now is not None:
        return pd.Timestamp(now).to_pydatetime().replace(tzinfo=None)
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _clean_token(token) -> str:
    if not isinstance(token, str) or not _TOKEN_RE.match(token.strip()):
        raise ReportError(NO_SUCH_REPORT)
    return token.strip()


def new_token() -> str:
    """A random token (``secrets.token_urlsafe``) that starts with a letter or digit: one that starts
    with ``-`` (one in 64 of them) reads as an option to ``valuescope report revoke TOKEN``."""
    while True:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if token[0].isalnum():
            return token


def create_report(wh: Warehouse, snapshot: dict, now=None, *, expires=None) -> str:
    """Store ``snapshot`` (from ``build_report``) for a permalink; returns the new token.
    ``expires``: a day or time after which the link no longer opens (None: never)."""
    if not isinstance(snapshot, dict) or "kind" not in snapshot or "dataset" not in snapshot:
        raise ReportError("that is not a report snapshot (build it with build_report)")
    dataset = str(snapshot["dataset"])
    caller = access.require(wh, "report", dataset if wh.exists_dataset(dataset) else None)
    expires_at = None
    if expires is not None and str(expires).strip():
        try:
            expires_at = pd.Timestamp(expires).to_pydatetime().replace(tzinfo=None)
        except (ValueError, TypeError):
            raise ReportError(f"not a date for the link's expiry: {expires!r}") from None
        if isinstance(expires, dt.date) and not isinstance(expires, dt.datetime):
            expires_at = expires_at + dt.timedelta(days=1)  # a day: valid through that day
        if expires_at <= _now(now):
            raise ReportError("the link's expiry is in the past: choose a later date")
    body = json.dumps(clean_json(snapshot), allow_nan=False, sort_keys=True)
    subject = (snapshot.get("subject") or {}).get("name")
    with wh.transaction() as tx:
        for _ in range(100):  # a collision of 192-bit tokens does not happen; still, never reuse one
            token = new_token()
            if not tx.execute("SELECT count(*) FROM reports WHERE token_hash = ?", [_hash(token)]).fetchone()[0]:
                break
        report_id = int(tx.execute("SELECT nextval('report_id_seq')").fetchone()[0])
        tx.execute(
            "INSERT INTO reports (id, token_hash, token_hint, kind, title, subject, dataset, as_of, snapshot, "
            "created_at, expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [report_id, _hash(token), token[:HINT_CHARS], str(snapshot["kind"]), str(snapshot.get("title", "")),
             None if subject is None else str(subject), dataset,
             pd.Timestamp(snapshot.get("as_of")).date() if snapshot.get("as_of") else None, body, _now(now),
             expires_at, caller.id if caller else None],
        )
        access.audit(wh, "create_report_link", dataset=dataset, target=f"report {report_id}",
                     detail={"title": str(snapshot.get("title", "")), "expires_at": expires_at}, cur=tx)
    return token


def _row(wh: Warehouse, token) -> tuple:
    row = wh.cursor().execute(
        "SELECT id, snapshot, revoked_at, expires_at, raw_ids, dataset FROM reports WHERE token_hash = ?",
        [_hash(_clean_token(token))]
    ).fetchone()
    if row is None:
        raise ReportError(NO_SUCH_REPORT)
    return row


def report_id(wh: Warehouse, token) -> int:
    """The id of the report behind ``token`` (revoked or not); ReportError if unknown."""
    return int(_row(wh, token)[0])


def get_report(wh: Warehouse, token, now=None) -> dict:
    """The stored snapshot behind ``token`` (ReportError if unknown, ReportRevokedError if revoked
    or expired). Customer ids in it are pseudonymised for a caller without raw ids unless an admin
    allowed them for this report. A link opens its report for anyone who may read pages; the
    dataset need not be granted (the link is the grant: it shows only the report)."""
    _, body, revoked_at, expires_at, raw_ids, _dataset = _row(wh, token)
    if revoked_at is not None:
        raise ReportRevokedError(REVOKED)
    if expires_at is not None and pd.Timestamp(expires_at) <= pd.Timestamp(_now(now)):
        raise ReportRevokedError(EXPIRED.format(when=pd.Timestamp(expires_at).strftime("%Y-%m-%d %H:%M")))
    access.require(wh, "read", what="open a report")
    snapshot = json.loads(body)
    if not raw_ids and not access.may(wh, "raw_ids"):
        snapshot = _pseudonymised(wh, snapshot)
    return snapshot


def _pseudonymised(wh: Warehouse, obj):
    """``obj`` with every value under a ``customer_id`` key (and lists under ``customer_ids``) replaced,
    and the free-text values beside a ``customer_id`` (``access.is_free_text``: a review snippet)
    with contact details replaced (``access.redact_text``)."""
    if isinstance(obj, dict):
        out = {}
        of_customer = "customer_id" in obj
        for k, v in obj.items():
            if k == "customer_id" and v is not None:
                out[k] = access.ids_for(wh, [v], caller=access.current())[0]
            elif k == "customer_ids" and isinstance(v, list):
                out[k] = access.ids_for(wh, v)
            elif of_customer and access.is_free_text(k) and isinstance(v, str):
                out[k] = access.redact_text(v)
            else:
                out[k] = _pseudonymised(wh, v)
        return out
    if isinstance(obj, list):
        return [_pseudonymised(wh, v) for v in obj]
    return obj


def allow_raw_ids(wh: Warehouse, report_id: int, allow: bool = True) -> None:
    """Let viewers see the raw customer ids of one report (admins only; recorded)."""
    access.require(wh, "manage_reports")
    if wh.cursor().execute("SELECT count(*) FROM reports WHERE id = ?", [int(report_id)]).fetchone()[0] == 0:
        raise ReportError(f"no report with id {report_id}")
    with wh.transaction() as tx:
        tx.execute("UPDATE reports SET raw_ids = ? WHERE id = ?", [bool(allow), int(report_id)])
        access.audit(wh, "report_raw_ids", target=f"report {int(report_id)}", detail={"allow": bool(allow)}, cur=tx)


def revoke_report(wh: Warehouse, token=None, *, report_id: int | None = None, now=None) -> int:
    """Revoke a report by its token (or, for its owner in the app, by its id); returns the id.
    Revoking twice is harmless; an unknown token or id is a ReportError."""
    if (token is None) == (report_id is None):
        raise ReportError("give either the report's token or its id")
    if token is not None:
        rid = int(_row(wh, token)[0])
    else:
        row = wh.cursor().execute("SELECT id FROM reports WHERE id = ?", [int(report_id)]).fetchone()
        if row is None:
            raise ReportError(f"no report with id {report_id}")
        rid = int(row[0])
    maker, dataset = wh.cursor().execute("SELECT created_by, dataset FROM reports WHERE id = ?", [rid]).fetchone()
    caller = access.current()
    if not (caller is not None and maker is not None and caller.id == maker
            and access.may(wh, "report", dataset if wh.exists_dataset(dataset) else None)):
        access.require(wh, "manage_reports", what="revoke another person's report link")
    with wh.transaction() as tx:
        tx.execute("UPDATE reports SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", [_now(now), rid])
        access.audit(wh, "revoke_report_link", dataset=dataset, target=f"report {rid}", cur=tx)
    return rid


def list_reports(wh: Warehouse, dataset: str | None = None, now=None) -> pd.DataFrame:
    """Stored reports, newest first: id, title, kind, subject, dataset, as_of, created_at,
    revoked_at, status (``active`` | ``revoked`` | ``expired``), token_hint (first characters of
    the token), expires_at, created_by, raw_ids. An admin sees every link; anyone else the links
    of the datasets they see."""
    sql = ("SELECT id, title, kind, subject, dataset, as_of, created_at, revoked_at, token_hint, expires_at, "
           "created_by, raw_ids FROM reports")
    params: list = []
    if dataset is not None:
        sql += " WHERE dataset = ?"
        params.append(dataset)
    df = wh.cursor().execute(sql + " ORDER BY created_at DESC, id DESC", params).df()
    visible = access.visible_datasets(wh)
    if visible is not None:
        df = df[df["dataset"].isin(visible)].reset_index(drop=True)
    t = pd.Timestamp(_now(now))
    df.insert(df.columns.get_loc("revoked_at") + 1, "status",
              ["revoked" if pd.notna(r) else "expired" if pd.notna(e) and pd.Timestamp(e) <= t else "active"
               for r, e in zip(df["revoked_at"], df["expires_at"])])
    return df
