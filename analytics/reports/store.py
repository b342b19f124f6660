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
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets

import pandas as pd

from analytics.reports.snapshot import ReportError, ReportRevokedError, clean_json
from analytics.warehouse import Warehouse

TOKEN_BYTES = 24  # 192 bits of randomness; token_urlsafe gives 32 characters
HINT_CHARS = 6
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
NO_SUCH_REPORT = "no such report: the link is incomplete, mistyped or was never issued"
REVOKED = "this report link was revoked"


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


def create_report(wh: Warehouse, snapshot: dict, now=None) -> str:
    """Store ``snapshot`` (from ``build_report``) for a permalink; returns the new token."""
    if not isinstance(snapshot, dict) or "kind" not in snapshot or "dataset" not in snapshot:
        raise ReportError("that is not a report snapshot (build it with build_report)")
    body = json.dumps(clean_json(snapshot), allow_nan=False, sort_keys=True)
    subject = (snapshot.get("subject") or {}).get("name")
    with wh.transaction() as tx:
        for _ in range(5):  # a collision of 192-bit tokens does not happen; still, never reuse one
            token = secrets.token_urlsafe(TOKEN_BYTES)
            if not tx.execute("SELECT count(*) FROM reports WHERE token_hash = ?", [_hash(token)]).fetchone()[0]:
                break
        report_id = int(tx.execute("SELECT nextval('report_id_seq')").fetchone()[0])
        tx.execute(
            "INSERT INTO reports (id, token_hash, token_hint, kind, title, subject, dataset, as_of, snapshot, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [report_id, _hash(token), token[:HINT_CHARS], str(snapshot["kind"]), str(snapshot.get("title", "")),
             None if subject is None else str(subject), str(snapshot["dataset"]),
             pd.Timestamp(snapshot.get("as_of")).date() if snapshot.get("as_of") else None, body, _now(now)],
        )
    return token


def _row(wh: Warehouse, token) -> tuple:
    row = wh.cursor().execute(
        "SELECT id, snapshot, revoked_at FROM reports WHERE token_hash = ?", [_hash(_clean_token(token))]
    ).fetchone()
    if row is None:
        raise ReportError(NO_SUCH_REPORT)
    return row


def report_id(wh: Warehouse, token) -> int:
    """The id of the report behind ``token`` (revoked or not); ReportError if unknown."""
    return int(_row(wh, token)[0])


def get_report(wh: Warehouse, token) -> dict:
    """The stored snapshot behind ``token`` (ReportError if unknown, ReportRevokedError if revoked)."""
    _, body, revoked_at = _row(wh, token)
    if revoked_at is not None:
        raise ReportRevokedError(REVOKED)
    return json.loads(body)


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
    wh.cursor().execute("UPDATE reports SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", [_now(now), rid])
    return rid


def list_reports(wh: Warehouse, dataset: str | None = None) -> pd.DataFrame:
    """Stored reports, newest first: id, title, kind, subject, dataset, as_of, created_at,
    revoked_at, status (``active`` | ``revoked``), token_hint (first characters of the token)."""
    sql = ("SELECT id, title, kind, subject, dataset, as_of, created_at, revoked_at, token_hint FROM reports")
    params: list = []
    if dataset is not None:
        sql += " WHERE dataset = ?"
        params.append(dataset)
    df = wh.cursor().execute(sql + " ORDER BY created_at DESC, id DESC", params).df()
    df.insert(df.columns.get_loc("revoked_at") + 1, "status",
              ["revoked" if pd.notna(v) else "active" for v in df["revoked_at"]])
    return df
