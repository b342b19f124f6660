"""Safe export of tables a user downloads: CSV that spreadsheets cannot execute, and Parquet.

A CSV cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is run as a formula by Excel, LibreOffice and Google Sheets ("CSV
injection", OWASP). Customer ids, product names and review texts come from
uploaded files, so every exported CSV goes through :func:`to_safe_csv`, which
prefixes such *text* cells with a single quote ``'`` (the OWASP
recommendation). Numbers are never touched: a negative refund stays the number
``-12.5``; only string cells (and column names) are neutralized, including
strings that merely look like numbers (``"+1"`` in a text column becomes
``'+1``). Leading spaces do not hide a trigger (``"  =1+1"`` is neutralized
too). Quoting is ``csv.QUOTE_MINIMAL`` (pandas), so commas, quotes and line
breaks inside cells are quoted properly. ``bom=True`` writes a UTF-8 byte order
mark so that Excel opens non-ASCII text correctly.

Parquet keeps types, so nothing is neutralized there; run parameters can be
stored in the file's key-value metadata under ``valuescope``.
"""
from __future__ import annotations

import csv
import io
import json
import os
from typing import IO, Any, Mapping

import numpy as np
import pandas as pd

#: characters that make a spreadsheet evaluate a cell when they start it
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_RE = r"^[ ]*[=+\-@\t\r]"


class ExportError(ValueError):
    """An export a user asked for cannot be written (bad path, unknown format)."""


def neutralize_text(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would execute.

    Anything that is not a ``str`` (numbers, dates, missing values) is returned
    unchanged.
    """
    if isinstance(value, str) and value.lstrip(" ")[:1] in FORMULA_TRIGGERS and value.lstrip(" "):
        return "'" + value
    return value


def _neutralize_series(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if cats.dtype == object or pd.api.types.is_string_dtype(cats.dtype):
            new = [neutralize_text(c) for c in cats]
            if list(new) != list(cats):
                return s.cat.rename_categories(new)
        return s
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        # pandas string dtype: every non-missing cell is a str, so vectorize.
        mask = s.str.contains(_TRIGGER_RE, regex=True, na=False)
        if mask.any():
            s = s.copy()
            s[mask] = "'" + s[mask]
        return s
    if s.dtype == object:
        values = s.to_numpy(dtype=object, copy=False)
        out = None
        for i, v in enumerate(values):
            nv = neutralize_text(v)
            if nv is not v:
                if out is None:
                    out = values.copy()
                out[i] = nv
        if out is not None:
            return pd.Series(out, index=s.index, name=s.name, dtype=object)
    return s


def neutralize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells and column names cannot run as formulas."""
    out = df.copy(deep=False)
    for i, name in enumerate(df.columns):
        col = df.iloc[:, i]
        new = _neutralize_series(col)
        if new is not col:
            out.isetitem(i, new)
    out.columns = [neutralize_text(str(c)) for c in df.columns]
    if not isinstance(df.index, pd.RangeIndex):
        idx = df.index
        if idx.dtype == object or pd.api.types.is_string_dtype(idx.dtype):
            out.index = pd.Index([neutralize_text(v) for v in idx], name=neutralize_text(idx.name))
    return out


def to_safe_csv(
    df: pd.DataFrame,
    path_or_buffer: str | os.PathLike | IO | None = None,
    bom: bool = False,
    *,
    index: bool = False,
) -> str | bytes | None:
    """Write ``df`` as CSV with formula cells neutralized (see the module docstring).

    ``path_or_buffer``: a file path, a text or binary file object, or None to
    get the CSV back (``bytes`` when ``bom`` is set, so the mark survives a
    download button; else ``str``). ``index``: also write the index.
    """
    from analytics.access import check_export

    check_export(df)
    safe = neutralize_frame(df)
    # CRLF line ends (RFC 4180): the csv writer then also quotes cells holding a bare "\r".
    text = safe.to_csv(index=index, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    prefix = "\ufeff" if bom else ""
    if path_or_buffer is None:
        return (prefix + text).encode("utf-8") if bom else text
    if isinstance(path_or_buffer, (str, os.PathLike)):
        try:
            with open(path_or_buffer, "w", encoding="utf-8", newline="") as fh:
                fh.write(prefix + text)
        except OSError as exc:
            raise ExportError(f"cannot write {os.fspath(path_or_buffer)}: {exc.strerror or exc}") from exc
        return None
    if isinstance(path_or_buffer, (io.RawIOBase, io.BufferedIOBase)) or "b" in getattr(path_or_buffer, "mode", ""):
        path_or_buffer.write((prefix + text).encode("utf-8"))
    else:
        path_or_buffer.write(prefix + text)
    return None


def to_parquet(
    df: pd.DataFrame,
    path: str | os.PathLike | IO | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    index: bool = False,
) -> bytes | None:
    """Write ``df`` as Parquet (types kept); ``metadata`` goes to the schema under ``valuescope``.

    ``path`` None returns the file's bytes (for a download button).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analytics.access import check_export

    check_export(df)
    frame = df if index else df.reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=index)
    if metadata:
        meta = dict(table.schema.metadata or {})
        meta[b"valuescope"] = json.dumps(dict(metadata), default=_json_default).encode("utf-8")
        table = table.replace_schema_metadata(meta)
    if path is None:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()
    try:
        pq.write_table(table, path)
    except OSError as exc:
        raise ExportError(f"cannot write {os.fspath(path) if isinstance(path, (str, os.PathLike)) else 'file'}: {exc}") from exc
    return None


def read_parquet_metadata(path_or_bytes: str | os.PathLike | bytes) -> dict:
    """The ``valuescope`` metadata written by :func:`to_parquet` (empty dict if none)."""
    import pyarrow.parquet as pq

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    meta = pq.read_schema(src).metadata or {}
    raw = meta.get(b"valuescope")
    return json.loads(raw) if raw else {}


def _json_default(value: Any):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return str(value)
