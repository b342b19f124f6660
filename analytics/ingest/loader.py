"""Loading a source file into the warehouse: preview, validate, append with de-duplication.

How a load works (all heavy work is DuckDB SQL, two passes over the data):

1. ``prepare_source`` streams the file once in Python (bounded chunks): decompressed-size
   cap, UTF-8 check (ASCII fast path), presence of quotes / NUL bytes; gzip and non-UTF-8
   files are transcoded to a temporary UTF-8 file. The content hash (SHA-256 of the
   original bytes, for the ingestion log) is computed in a thread meanwhile. The pass also
   counts the physical lines (line feeds), independently of any CSV reader.
2. DuckDB reads every *physical line* as one VARCHAR (``read_csv`` with an explicit,
   non-occurring delimiter, no quoting, no sniffing), so nothing is ever silently
   dropped and each line's table position is its line number. Lines DuckDB itself
   cannot read (invalid UTF-8, longer than 16 MB) land in its reject table with their
   line numbers; the remaining lines' numbers are corrected for them with an ASOF join.
3. Lines are split into fields with the decided dialect (``string_split``; a CSV-field
   regex only for lines that contain the quote character; runs of spaces for
   whitespace files). Records spanning several lines (line breaks inside quoted
   fields) are re-joined when some line has an odd number of quotes; such a record's
   line number is the line where it starts. A quote left open at the end of the file
   makes its record a reject ("unterminated quoted field"). (A stray unbalanced quote
   early in a file therefore swallows the lines after it into one rejected record, as
   in any CSV reader.)
4. One SQL statement computes the canonical columns and a reject reason per record;
   bad records go to ``rejects`` (line number, raw line cut to 2,000 characters,
   reason), good ones are appended to ``events`` unless already in the dataset.

A clean file (delimited UTF-8 without quote characters, NUL bytes or lone carriage returns)
into a new dataset is first read directly instead (``_load_direct``): DuckDB's CSV reader with
the decided dialect, no sniffing and every column as text, the same checks (``_records_sql``)
and the good rows inserted into ``events`` in the same statement, with no table of lines and
no staging table; bad rows, if any, are numbered by a second read into ``rejects``. Its records
are reconciled with the line count of step 1, so a line the reader skipped or split is never
lost: on any difference, reader error, all-invalid file or row whose fields it cannot count (a
few more fields than the header's are counted: the reader takes DIRECT_EXTRA_FIELDS more
columns) the direct read is rolled back and steps 2-4 run instead.

Counting: ``rows_read`` = non-blank records after the header (blank lines are not
rows). Every record is exactly one of loaded / rejected / duplicate, so
``rows_read == rows_loaded + rows_rejected + rows_duplicate`` always.

Duplicates: ``row_hash`` is DuckDB's 64-bit ``hash`` of all canonical fields. A row is a
duplicate when a row with the same hash is already in the dataset (from an earlier
ingestion). Identical lines *within one file* are all kept, because they are usually
genuine repeats (CDNOW has 21 same-day, same-amount purchases); the k-th copy (k > 1)
gets ``row_hash = hash(h, k)``, so re-loading the same file finds every copy present and
adds nothing, and a later file with one more copy adds just that one (multiset
semantics).

Dates "in the future" are the one place where the wall clock is used: a timestamp
later than the ingestion time (UTC) plus one day of grace for time zones is
rejected, as are timestamps before 1990-01-01.

Everything one ingestion writes (dataset row, events, ingestion log, rejects) is one
transaction: on any error the warehouse is exactly as before.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import pandas as pd

from analytics import access, customer_keys
from analytics.ingest.dialect import (
    DEFAULT_MAX_DECOMPRESSED, SAMPLE_BYTES, Dialect, decode_head, detect_delimiter, detect_encoding,
    detect_header, file_sha256, is_gzip, prepare_source, read_head, sample_lines, split_line,
)
from analytics.ingest.errors import IngestError
from analytics.ingest.mapping import (
    EXCEL_DAYS, FIELD_NAMES, SPECIAL_FORMAT_WORDS, UNIX_MILLIS, UNIX_SECONDS, Mapping, candidate_date_formats,
    date_misses, detect_layout, norm, propose_mapping,
)
from analytics.ingest.pii import detect_pii, hmac_pads, pseudonym_key, pseudonymize_sql
from analytics.warehouse import EVENT_TYPES, is_write_conflict, quote_ident, storage_error

MAX_LINE_BYTES = 16 * 1024 * 1024
#: columns the direct read takes beyond the header's, to count the fields of rows that have more
DIRECT_EXTRA_FIELDS = 4
UNCOUNTED = -1  # (the direct read's field count of a row it cannot count)
RAW_LINE_CHARS = 2000
MIN_DATE = dt.datetime(1990, 1, 1)
FUTURE_GRACE = dt.timedelta(days=1)
HASH_COLS = ("customer_id, event_time, event_type, order_id, item_id, category, quantity, revenue, rating, text,"
             " country, attributes")
_DATASET_RE = re.compile(r"^[\w][\w .\-]{0,99}$", re.UNICODE)
ProgressFn = Callable[[float, str], None]


@dataclass
class Preview:
    file_name: str
    size_bytes: int
    dialect: Dialect
    source_columns: list[str]
    sample: pd.DataFrame
    layout: str
    mapping: Mapping
    pii_columns: dict[str, str]
    date_formats: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def ambiguous_dates(self) -> bool:
        return len(self.date_formats) > 1


@dataclass
class IngestResult:
    ingestion_id: int
    dataset: str
    file_name: str
    layout: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    dialect: str = ""
    content_hash: str = ""
    #: loaded purchases whose amount was empty (kept, as orders with no revenue)
    purchases_without_amount: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["duration_s"] = round(float(self.duration_s), 3)
        return d

    def summary(self) -> str:
        return (f"{self.rows_read:,} rows read = {self.rows_loaded:,} loaded + {self.rows_rejected:,} rejected"
                f" + {self.rows_duplicate:,} duplicates")


# ------------------------------------------------------------------ preview
def _check_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise IngestError(f"no such file: {p}")
    if not p.is_file():
        raise IngestError(f"not a file: {p}")
    if p.stat().st_size == 0:
        raise IngestError("the file is empty")
    return p


def _source_columns(header_fields: list[str], n: int, has_header: bool) -> list[str]:
    if not has_header:
        return [f"column{i + 1}" for i in range(n)]
    cols = []
    for i, c in enumerate(header_fields):
        c = c.strip().strip("\ufeff")
        cols.append(c if c else f"column{i + 1}")
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        raise IngestError(f"duplicate column names in the header: {', '.join(repr(d) for d in dupes)}; "
                          "rename them so that each column has its own name")
    return cols


def _detect(path: Path, dialect: Dialect | None):
    compression = "gzip" if is_gzip(path) else None
    head = read_head(path, compression, SAMPLE_BYTES)
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise IngestError("the file is empty" if not compression else "the compressed file is empty")
    if dialect is None:
        encoding, bom = detect_encoding(head)
        text = decode_head(head, encoding)
        lines = sample_lines(text)
        if not lines:
            raise IngestError("the file has no lines of text")
        delim = detect_delimiter(lines)
        has_header = detect_header(lines, delim)
        dialect = Dialect(encoding=encoding, delimiter=delim, has_header=has_header,
                          quote="" if delim == "whitespace" else '"', compression=compression, bom=bom)
    else:
        dialect = Dialect.from_dict(dialect.to_dict())
        dialect.compression = compression
        if dialect.encoding == "utf-8" and _looks_binary_head(head):
            raise IngestError("this does not look like a text (CSV) file: it contains binary data")
        text = decode_head(head, dialect.encoding)
        lines = sample_lines(text)
        if not lines:
            raise IngestError("the file has no lines of text")
    return dialect, lines


def _looks_binary_head(head: bytes) -> bool:
    from analytics.ingest.dialect import _looks_binary

    return _looks_binary(head)


def inspect_source(path, file_name: str | None = None, *, dialect: Dialect | None = None) -> Preview:
    """Look at the start of a file: dialect, columns, layout, proposed mapping, PII, date formats."""
    p = _check_file(path)
    dialect, lines = _detect(p, dialect)
    rows = [split_line(ln, dialect.delimiter, dialect.quote) for ln in lines]
    if dialect.has_header:
        header, data = rows[0], rows[1:]
    else:
        header, data = [], rows
    n = len(header) if dialect.has_header else (max(len(r) for r in data[:50]) if data else 0)
    columns = _source_columns(header, n, dialect.has_header)
    warnings: list[str] = []
    if not data:
        warnings.append("the file has a header but no data rows")
    layout = detect_layout(columns, data[:2000], dialect.has_header, dialect.delimiter)
    mapping, date_formats = propose_mapping(columns, data[:2000], layout)
    good = [r for r in data if len(r) == len(columns)]
    samples = {c: [r[i] for r in good[:500]] for i, c in enumerate(columns)}
    mapped = {c for c in mapping.columns.values() if c}
    # a column mapped to an order or product id holds ids, whatever its name (Shopify's "Name" is the
    # order's number); Shopify's "Lineitem name" is the product's name
    not_personal = {mapping.columns.get(f) for f in ("customer_id", "order_id", "item_id")}
    if layout == "shopify":
        not_personal |= {c for c in columns if norm(c) == "lineitemname"}
    found = detect_pii(columns, samples, mapped)
    cid = mapping.columns.get("customer_id")
    if cid in found:
        warnings.append(f"the customer ids in {cid!r} are personal data ({found[cid]}): they are stored as they are "
                        "unless you pseudonymize them (a keyed hash; CLI: --pseudonymize)")
    pii = {c: k for c, k in found.items() if c not in not_personal}
    if pii:
        warnings.append("personal data columns found and dropped unless kept: "
                        + ", ".join(f"{c} ({k})" for c, k in pii.items()))
    for c in list(pii):
        if c in mapped and c != mapping.columns.get("customer_id"):
            # never load personal data into a canonical column without being asked
            for f, src in mapping.columns.items():
                if src == c:
                    mapping.columns[f] = None
    mapping.attributes = [a for a in mapping.attributes if a not in pii]
    mapping.strip_point_zero = [f for f in mapping.strip_point_zero if mapping.columns.get(f)]
    for f in mapping.strip_point_zero:
        c = mapping.columns[f]
        ex = next((v.strip() for v in samples.get(c, []) if v.strip()), "17850.0")
        warnings.append(f"the {f.replace('_', ' ')}s in {c!r} are whole numbers written as decimals "
                        f"({ex!r}): they are loaded without the '.0' ({ex.split('.')[0]!r})")
    tcol = mapping.columns.get("event_time")
    if tcol and len(date_formats) > 1:
        warnings.append(f"dates in {tcol!r} are ambiguous ({' or '.join(date_formats)}): choose the format")
    elif tcol and not date_formats:
        i = columns.index(tcol)
        words = _not_dates([r[i] for r in data[:2000] if len(r) > i])
        warnings.append(f"the values in {tcol!r} are not dates ({words}): choose the column that holds the dates"
                        if words else f"the dates in {tcol!r} do not match a known format: enter one")
    elif tcol:
        i = columns.index(tcol)
        values = [r[i] for r in data[:2000] if len(r) > i]
        missed = date_misses(values, date_formats[0])
        if missed:
            warnings.append(f"{missed} of the first {len(values)} values in {tcol!r} are not dates in "
                            f"{date_formats[0]}: those rows will be rejected")
    rcol = mapping.columns.get("revenue")
    if rcol and tcol:
        n_empty, n_rows = _purchases_without_amount(columns, data[:2000], mapping)
        if n_empty:
            warnings.append(no_amount_warning(n_empty, of_first=n_rows))
    sample = pd.DataFrame([(r + [""] * len(columns))[: len(columns)] for r in data[:20]], columns=columns, dtype=str) \
        if columns else pd.DataFrame()
    return Preview(
        file_name=file_name or p.name, size_bytes=p.stat().st_size, dialect=dialect, source_columns=columns,
        sample=sample, layout=layout, mapping=mapping, pii_columns=pii, date_formats=date_formats,
        warnings=warnings,
    )


def _purchases_without_amount(columns: list[str], rows: list[list[str]], m: Mapping) -> tuple[int, int]:
    """Of the well-formed rows, how many are purchases with an empty amount; and how many rows were looked at."""
    ri = columns.index(m.columns["revenue"])
    ec = m.columns.get("event_type")
    ei = columns.index(ec) if ec else None
    etmap = {k.strip().lower(): v for k, v in m.event_type_map.items()}
    for t in EVENT_TYPES:
        etmap.setdefault(t, t)
    good = [r for r in rows if len(r) == len(columns) and any(v.strip() for v in r)]
    n = 0
    for r in good:
        if r[ri].strip():
            continue
        etype = etmap.get(r[ei].strip().lower()) if ei is not None else m.default_event_type
        n += etype == "purchase"
    return n, len(good)


# ------------------------------------------------------------------ ingest
class _Tx:
    """BEGIN/COMMIT on one cursor that also owns this load's temporary tables."""

    def __init__(self, cur):
        self.cur = cur
        self.open = False

    def begin(self):
        self.cur.execute("BEGIN TRANSACTION")
        self.open = True

    def commit(self):
        try:
            self.cur.execute("COMMIT")
        finally:
            self.open = False  # a COMMIT that fails (a full disk) has ended the transaction too

    def rollback(self):
        if self.open:
            self.open = False
            try:
                self.cur.execute("ROLLBACK")
            except duckdb.Error:  # the transaction was already gone: nothing to undo
                pass



def _check_dataset_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise IngestError("give the dataset a name")
    name = name.strip()
    if not _DATASET_RE.match(name):
        raise IngestError("a dataset name is 1-100 letters, digits, spaces, '.', '-' or '_', starting with a letter or digit")
    return name


def ingest(wh, path, dataset: str, *, mapping: Mapping | dict | None = None, dialect: Dialect | None = None,
           keep_pii=(), pseudonymize: bool = False, file_name: str | None = None,
           progress: ProgressFn | None = None, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED,
           max_bytes: int | None = None, description: str | None = None,
           on_wait: Callable[[str], None] | None = None) -> IngestResult:
    """Validate and append a file to ``dataset`` (created if new). See the module docstring.

    Loads into one warehouse run one at a time (``Warehouse.writer``): ``on_wait(what)`` is called
    when this one has to wait for another to finish first."""
    if not isinstance(max_decompressed_bytes, int) or max_decompressed_bytes <= 0:
        raise IngestError("the decompressed-size limit must be a positive number of bytes")
    name = str(dataset).strip()
    access.require(wh, "load", name if wh.exists_dataset(name) else None)
    with wh.writer(f"the load into {str(dataset).strip()!r}", on_wait):
        return _ingest(wh, path, dataset, mapping=mapping, dialect=dialect, keep_pii=keep_pii,
                       pseudonymize=pseudonymize, file_name=file_name, progress=progress,
                       max_decompressed_bytes=max_decompressed_bytes, max_bytes=max_bytes, description=description)


def _ingest(wh, path, dataset: str, *, mapping, dialect, keep_pii, pseudonymize, file_name, progress,
            max_decompressed_bytes, max_bytes, description) -> IngestResult:
    t0 = time.perf_counter()
    dataset = _check_dataset_name(dataset)
    p = _check_file(path)
    size = p.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise IngestError(f"the file is {size / 1e6:.1f} MB, over the limit of {max_bytes / 1e6:.1f} MB")
    report = progress or (lambda f, m: None)
    report(0.0, "inspecting the file")
    preview = inspect_source(p, file_name=file_name, dialect=dialect)
    dia = preview.dialect
    columns = preview.source_columns
    if mapping is None:
        m = preview.mapping
    else:
        m = mapping if isinstance(mapping, Mapping) else Mapping.from_dict(mapping)
        m = Mapping.from_dict(m.to_dict())  # a copy we may complete
    warnings = [w for w in preview.warnings
                if "ambiguous" not in w and "known format" not in w and "will be rejected" not in w
                and "with no amount" not in w]  # (the load counts them all)
    m.validate(columns)
    keep = list(keep_pii or ())
    for c in keep:
        if c not in columns:
            raise IngestError(f"--keep-pii names {c!r}, which is not a column of the file")
    if preview.sample.empty and dia.compression is None and size < SAMPLE_BYTES:
        raise IngestError("the file has a header but no data rows" if dia.has_header else "the file has no data rows")
    if not m.date_format:
        tcol = m.columns["event_time"]
        if tcol == preview.mapping.columns.get("event_time"):
            fmts = preview.date_formats
        else:
            i = columns.index(tcol)
            fmts = candidate_date_formats(preview.sample.iloc[:, i].tolist()) if not preview.sample.empty else []
        if len(fmts) == 1:
            m.date_format = fmts[0]
        elif len(fmts) > 1:
            raise IngestError(
                f"the dates in column {tcol!r} are ambiguous: they could be {' or '.join(fmts)}; "
                "choose one (CLI: --date-format)")
        else:
            words = (_not_dates(preview.sample.iloc[:, columns.index(tcol)].tolist())
                     if tcol in columns and not preview.sample.empty else None)
            if words:
                raise IngestError(f"the values in column {tcol!r} are not dates ({words}): map the column that "
                                  "holds the dates as the event time")
            raise IngestError(f"the dates in column {tcol!r} do not match a known format; give one (CLI: --date-format)")
    ncols = len(columns)
    if ncols < 2:
        raise IngestError("the file has a single column: it is not a delimited table (check the delimiter)")

    report(0.02, "reading the file")
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1)
    hash_future = pool.submit(file_sha256, p, stop)
    pool.shutdown(wait=False)
    try:
        prepared = _prepare(wh, p, dia, max_decompressed_bytes, report, warnings)
    except OSError as exc:  # the temporary copy could not be written (a full temporary folder...)
        stop.set()
        raise IngestError(str(storage_error(exc, "nothing was loaded: the temporary copy of the file failed",
                                            temp_folder=_copy_folder(wh)))) from None
    except BaseException:
        stop.set()
        raise
    cur = wh.cursor()
    tag = uuid.uuid4().hex[:12]
    names = {k: quote_ident(f"_vs_{k}_{tag}") for k in ("lines", "rej", "scan", "recs", "st", "keys", "rows")}
    tx = _Tx(cur)
    try:
        result = _load(cur, tx, names, prepared, dia, columns, m, keep, pseudonymize, dataset, preview,
                       file_name or p.name, warnings, report, t0, description, wh, hash_future)
    except duckdb.TransactionException as exc:
        stop.set()
        tx.rollback()
        if is_write_conflict(exc):
            raise IngestError("another change to this dataset was written at the same time; nothing was loaded, "
                              f"try again ({str(exc).splitlines()[0]})") from None
        raise IngestError(str(storage_error(exc, "nothing was loaded"))) from None
    except duckdb.Error as exc:
        stop.set()
        tx.rollback()
        if "state machine reached an invalid state" in str(exc):  # DuckDB's reader on \r\r\n and the like
            raise IngestError(
                "the file's lines cannot be told apart: its line endings are mixed up (for example two carriage "
                "returns before each line feed, as in a file converted to Windows line endings twice); nothing was "
                "written. Save it again from the program that made it, or convert its line endings once "
                "(e.g. dos2unix)") from None
        problem = storage_error(exc, "nothing was loaded")
        if str(problem).startswith("nothing was loaded: ") and "full" not in str(problem) \
                and "damaged" not in str(problem) and "memory" not in str(problem):
            raise IngestError(f"the database refused the load, nothing was written: {str(exc).splitlines()[0]}") \
                from None
        raise IngestError(str(problem)) from None
    except BaseException:
        stop.set()
        tx.rollback()
        raise
    finally:
        for n in names.values():
            try:
                cur.execute(f"DROP TABLE IF EXISTS {n}")
            except Exception:
                pass
        try:
            cur.close()
        except Exception:
            pass
        prepared.cleanup()
    report(1.0, "done")
    return result


def _copy_folder(wh):
    """The folder a load's temporary copy is written to (None: it is held in memory)."""
    from analytics.warehouse import memory_files

    return None if getattr(wh, "encrypted", False) and memory_files() else wh.temp_dir()


def _prepare(wh, p, dia, max_decompressed_bytes, report, warnings):
    # a transcoded copy goes to the warehouse's temporary folder, named with this process id: a
    # load killed with kill -9 leaves it behind, and the next start of any process removes it
    # (an encrypted warehouse's copy is held in memory and a gzip file in UTF-8 is decompressed by
    # DuckDB as it reads: no customer data passes through a file in the clear)
    secret = bool(getattr(wh, "encrypted", False))
    prepared = prepare_source(p, dia, max_decompressed_bytes=max_decompressed_bytes, progress=report,
                              temp_path=wh.scratch_file("ingest", ".csv"), stream_gzip=secret)
    if prepared.invalid_utf8:
        head = read_head(p, dia.compression, SAMPLE_BYTES)
        if head.isascii():  # a legacy-encoded file whose first part is plain ASCII
            prepared.cleanup()
            dia.encoding = "cp1252"
            prepared = prepare_source(p, dia, max_decompressed_bytes=max_decompressed_bytes, progress=report,
                                      temp_path=wh.scratch_file("ingest", ".csv"), stream_gzip=secret)
            warnings.append("the file is not UTF-8: read as Windows-1252")
    return prepared


def _used(sql: str, params: dict) -> dict:
    """Only the named parameters that the statement uses (DuckDB refuses extra ones)."""
    return {k: v for k, v in params.items() if re.search(r"\$" + k + r"\b", sql)}


def _num(expr: str, decimal_comma: bool) -> str:
    """A number from text: DuckDB's cast (which allows surrounding spaces) and, only for the
    values it refuses, a second try without currency signs and then one without thousands
    separators (COALESCE evaluates lazily). Separators are dropped only where they group the
    digits in threes ("1,234.50", a spreadsheet's formatted number), so "1,5" is still refused
    rather than read as 15."""
    if decimal_comma:
        x = f"replace(replace(trim({expr}, ' $€£'), '.', ''), ',', '.')"
        return f"try_cast({x} AS DOUBLE)"
    bare = f"trim({expr}, ' $€£')"
    grouped = (f"CASE WHEN regexp_full_match({bare}, '[-+]?[0-9]{{1,3}}(,[0-9]{{3}})+([.][0-9]*)?') "
               f"THEN try_cast(replace({bare}, ',', '') AS DOUBLE) END")
    return f"coalesce(try_cast({expr} AS DOUBLE), try_cast({bare} AS DOUBLE), {grouped})"


ISO_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d")


def _load(cur, tx, names, prepared, dia: Dialect, columns, m: Mapping, keep, pseudonymize, dataset, preview,
          file_name, warnings, report, t0, description, wh, hash_future) -> IngestResult:
    L, REJ, SCAN, RECS, ST, KEYS = (names[k] for k in ("lines", "rej", "scan", "recs", "st", "keys"))
    iid = None
    if _direct_read_possible(prepared, dia):
        result, iid = _load_direct(cur, tx, prepared, dia, columns, m, keep, pseudonymize, dataset, preview,
                                   file_name, warnings, report, t0, description, wh, hash_future, names["rows"])
        if result is not None:
            return result
    # 1. physical lines, in file order (outside the transaction: temp tables only)
    cur.execute(
        f"CREATE TEMP TABLE {L} AS SELECT line FROM read_csv($path, columns={{'line': 'VARCHAR'}}, delim=$sep, "
        f"quote='', escape='', header=false, auto_detect=false, store_rejects=true, "
        f"rejects_table='{REJ[1:-1]}', rejects_scan='{SCAN[1:-1]}', max_line_size={MAX_LINE_BYTES}, "
        + ("compression='gzip', " if prepared.compression == "gzip" else "") +
        f"buffer_size={2 * MAX_LINE_BYTES})",  # buffers per reading thread: keep them modest
        {"path": prepared.path, "sep": prepared.separator_free},
    )
    report(0.35, "checking rows")
    dropped = cur.execute(
        f"SELECT line, error_type, error_message, csv_line FROM {REJ} ORDER BY line").fetchall()
    reject_msgs = {"INVALID ENCODING": "invalid UTF-8 byte sequence (mixed encodings in one file?)",
                   "LINE SIZE OVER MAXIMUM": f"line longer than {MAX_LINE_BYTES // 2**20} MB"}
    if dropped:
        cur.execute(f"CREATE TEMP TABLE {KEYS} AS SELECT line - j + 1 AS k, max(j) AS c FROM "
                    f"(SELECT line, row_number() OVER (ORDER BY line) AS j FROM {REJ}) GROUP BY ALL")
        numbered = (f"(SELECT l.idx + coalesce(k.c, 0) AS ln, l.line FROM (SELECT rowid + 1 AS idx, line FROM {L}) l "
                    f"ASOF LEFT JOIN {KEYS} k ON l.idx >= k.k)")
    else:
        numbered = f"(SELECT rowid + 1 AS ln, line FROM {L})"
    nonblank = ("line IS NOT NULL AND CASE WHEN starts_with(line, ' ') OR starts_with(line, chr(9)) "
                "THEN trim(line, ' ' || chr(9)) <> '' ELSE true END")
    first = cur.execute(f"SELECT min(ln) FROM (SELECT * FROM {numbered} WHERE ln <= 10000) WHERE {nonblank}").fetchone()[0]
    if first is None:
        first = cur.execute(f"SELECT min(ln) FROM {numbered} WHERE {nonblank}").fetchone()[0]
    header_ln = first if (dia.has_header and first is not None) else 0

    # 2. records (re-join lines broken inside quoted fields)
    quoted = bool(dia.quote) and dia.delimiter != "whitespace" and prepared.has_quote
    odd_expr = "(CASE WHEN contains(line, '\"') THEN (length(line) - length(replace(line, '\"', ''))) % 2 ELSE 0 END)"
    needs_merge = quoted and cur.execute(
        f"SELECT count(*) FROM {numbered} WHERE ln > ? AND line IS NOT NULL AND {odd_expr} = 1 LIMIT 1", [header_ln]
    ).fetchone()[0] > 0
    if needs_merge:
        odd_c = odd_expr.replace("line", "coalesce(line, '')")
        cur.execute(f"""
            CREATE TEMP TABLE {RECS} AS
            WITH a AS (SELECT ln, coalesce(line, '') AS line, {odd_c} AS odd
                       FROM {numbered} WHERE ln > ?),
            b AS (SELECT *, coalesce(sum(odd) OVER (ORDER BY ln ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) % 2 = 0 AS st FROM a),
            c AS (SELECT *, sum(st::INT) OVER (ORDER BY ln ROWS UNBOUNDED PRECEDING) AS rec FROM b)
            SELECT min(ln) AS ln, string_agg(line, chr(10) ORDER BY ln) AS line, sum(odd) % 2 = 1 AS open_quote
            FROM c GROUP BY rec""", [header_ln])
        recs = f"(SELECT ln, line, open_quote FROM {RECS} WHERE {nonblank})"
    else:
        recs = f"(SELECT ln, line, false AS open_quote FROM {numbered} WHERE ln > {int(header_ln)} AND {nonblank})"

    # 3. fields
    if dia.delimiter == "whitespace":
        fields = "string_split_regex(trim(line), '[ \\t]+')"
    else:
        d = dia.delimiter
        dq = re.escape(d)
        split = f"string_split(line, $delim)"
        if quoted:
            rx = f'{dq}("(?:[^"]|"")*"|[^{dq}"]*)'
            unq = ("list_transform(regexp_extract_all($delim || line, $fieldrx, 1), lambda x: CASE WHEN length(x) >= 2 "
                   "AND starts_with(x, '\"') AND ends_with(x, '\"') THEN replace(x[2:-2], '\"\"', '\"') ELSE x END)")
            fields = f"CASE WHEN contains(line, '\"') THEN {unq} ELSE {split} END"
        else:
            rx = None
            fields = split
    params: dict = {}
    if dia.delimiter != "whitespace":
        params["delim"] = dia.delimiter
        if quoted:
            params["fieldrx"] = rx
    sql = f"CREATE TEMP TABLE {ST} AS " + _records_sql(
        columns, m, keep, pseudonymize, wh, prepared.has_nul,
        f"SELECT ln, line, open_quote, {fields} AS f FROM {recs}", lambda i: f"f[{i + 1}]", "len(f)", params)
    cur.execute(sql, _used(sql, params))
    for t in (L, RECS):  # free the raw lines before writing (peak memory)
        cur.execute(f"DROP TABLE IF EXISTS {t}")
    report(0.7, "writing rows")
    n_read, n_bad, n_distinct = cur.execute(
        f"SELECT count(*), count(reason), count(DISTINCT h) FROM {ST}").fetchone()
    n_read += len(dropped)
    n_bad += len(dropped)
    if n_read == 0:
        raise IngestError("the file has a header but no data rows" if dia.has_header else "the file has no data rows")
    if n_bad == n_read:
        ex = cur.execute(f"SELECT ln, reason FROM {ST} WHERE reason IS NOT NULL ORDER BY ln LIMIT 1").fetchone()
        if ex is None:
            ex = (dropped[0][0], reject_msgs.get(dropped[0][1], dropped[0][2]))
        raise IngestError(f"no row of the file is valid (all {n_read:,} rejected; e.g. line {ex[0]}: {ex[1]})")

    # 4. write, in one transaction
    tx.begin()
    existing = cur.execute("SELECT pseudonymized FROM datasets WHERE name = ?", [dataset]).fetchone()
    if existing is not None and bool(existing[0]) != bool(pseudonymize):
        state = "pseudonymized" if existing[0] else "not pseudonymized"
        raise IngestError(f"dataset {dataset!r} is {state}: load into it with the same pseudonymize setting")
    if iid is None:  # (a direct read that was given up has already taken this load's id)
        iid = cur.execute("SELECT nextval('ingestion_id_seq')").fetchone()[0]
    if existing is None:
        cur.execute("INSERT INTO datasets (name, description, pseudonymized) VALUES (?, ?, ?)",
                    [dataset, description, bool(pseudonymize)])
        access.grant_creator(wh, dataset, cur=cur)
    else:
        cur.execute("UPDATE datasets SET updated_at = current_timestamp WHERE name = ?", [dataset])
    cur.execute(f"INSERT INTO rejects SELECT ?, ln, raw_line, reason FROM {ST} WHERE reason IS NOT NULL", [iid])
    if dropped:
        cur.executemany("INSERT INTO rejects VALUES (?, ?, ?, ?)", [
            [iid, r[0], (r[3] or "")[:RAW_LINE_CHARS], reject_msgs.get(r[1], str(r[2])[:200])] for r in dropped])
    has_rows = cur.execute("SELECT count(*) FROM (SELECT 1 FROM events WHERE dataset = ? LIMIT 1)", [dataset]).fetchone()[0]
    anti = "WHERE h NOT IN (SELECT row_hash FROM events WHERE dataset = $dataset AND row_hash IS NOT NULL)" if has_rows else ""
    # identical rows within the file are kept (often genuine repeats): the k-th copy (k > 1) gets
    # row_hash = hash(h, k), so re-loading the same file finds every copy already present
    has_repeats = n_distinct < n_read - n_bad
    if has_repeats:
        cur.execute(f"""
            UPDATE {ST} SET h = x.nh FROM (
                SELECT ln, hash(h, k) AS nh FROM (
                    SELECT ln, h, row_number() OVER (PARTITION BY h ORDER BY ln) AS k FROM {ST}
                    WHERE h IN (SELECT h FROM {ST} WHERE h IS NOT NULL GROUP BY h HAVING count(*) > 1))
                WHERE k > 1) x
            WHERE {ST}.ln = x.ln""")
    anti = "AND h NOT IN (SELECT row_hash FROM events WHERE dataset = $dataset AND row_hash IS NOT NULL)" if has_rows else ""
    # customers with dense keys (ids of no numeric form): new ids numbered, each row written with its key
    first = [r[0] for r in cur.execute(
        f"SELECT customer_id FROM {ST} WHERE reason IS NULL LIMIT {customer_keys.SAMPLE}").fetchall()]
    if customer_keys.keys_as_written(cur, dataset, first, new_dataset=existing is None):
        customer_keys.add_keys(cur, dataset, f"{ST} WHERE reason IS NULL")
        join, key = customer_keys.KEY_JOIN.format(alias="s"), "keys_.customer_key"
    else:
        join, key = "", "NULL"
    n_loaded = _insert_events(cur, f"""
        INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, category, quantity,
                            revenue, rating, text, country, attributes, ingestion_id, row_hash, customer_key)
        SELECT $dataset, s.customer_id, event_time, event_type, order_id, item_id, category, quantity, revenue,
               rating, text, country, attributes, $iid, h, {key}
        FROM {ST} s {join} WHERE reason IS NULL {anti}""", {"dataset": dataset, "iid": iid})
    n_dup = n_read - n_bad - n_loaded
    return _record_load(cur, tx, wh, iid, dataset, file_name, preview, dia, m, warnings, t0, hash_future,
                        n_read, n_loaded, n_bad, n_dup, new_dataset=existing is None)


def _record_load(cur, tx, wh, iid, dataset, file_name, preview, dia: Dialect, m: Mapping, warnings, t0,
                 hash_future, n_read, n_loaded, n_bad, n_dup, *, new_dataset: bool) -> IngestResult:
    """Write the load's bookkeeping (ingestion row, audit entry), commit, and say what was loaded."""
    if n_loaded:  # keys of rows not written with them (a keyless dataset's first load of other ids)
        customer_keys.keys_for_load(cur, dataset, iid, new_dataset=new_dataset)
    content_hash = hash_future.result()
    no_amount = 0
    if m.columns.get("revenue") and n_loaded:
        # an empty amount is no reason to reject a purchase (the order happened), but its revenue is
        # unknown: the summaries count it as an order with no revenue, which the user should know
        no_amount = cur.execute("SELECT count(*) FROM events WHERE ingestion_id = ? AND event_type = 'purchase' "
                                "AND revenue IS NULL", [iid]).fetchone()[0]
        if no_amount:
            warnings.append(no_amount_warning(no_amount))
    duration = time.perf_counter() - t0
    if n_bad:
        warnings.append(f"{n_bad:,} {'row' if n_bad == 1 else 'rows'} rejected: see the reject report")
    if n_dup:
        warnings.append(f"{n_dup:,} duplicate rows skipped")
    cur.execute(
        "INSERT INTO ingestions (id, dataset, file_name, content_hash, layout, dialect, mapping, rows_read, rows_loaded,"
        " rows_rejected, rows_duplicate, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [iid, dataset, file_name, content_hash, preview.layout, json.dumps(dia.to_dict()), m.to_json(),
         n_read, n_loaded, n_bad, n_dup, duration],
    )
    access.audit(wh, "load", dataset=dataset, target=file_name, rows=int(n_loaded),
                 detail={"read": int(n_read), "rejected": int(n_bad), "duplicate": int(n_dup),
                         "new_dataset": new_dataset}, cur=cur)
    tx.commit()
    return IngestResult(
        ingestion_id=int(iid), dataset=dataset, file_name=file_name, layout=preview.layout, rows_read=int(n_read),
        rows_loaded=int(n_loaded), rows_rejected=int(n_bad), rows_duplicate=int(n_dup), duration_s=duration,
        warnings=warnings, dialect=dia.describe(), content_hash=content_hash,
        purchases_without_amount=int(no_amount),
    )


def _not_dates(values) -> str | None:
    """A few of ``values`` in quotes when most of them have no digit, so cannot be dates in any
    format ('soon', 'n/a'): asking for a date format would not help. None otherwise."""
    vals = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not vals or sum(any(ch.isdigit() for ch in v) for v in vals) * 2 >= len(vals):
        return None
    shown = list(dict.fromkeys(v for v in vals if not any(ch.isdigit() for ch in v)))[:3]
    return "e.g. " + ", ".join(repr(v) for v in shown)


def no_amount_warning(n: int, of_first: int | None = None) -> str:
    """What a load (or, with ``of_first``, the preview of a file's first rows) says about purchases
    whose amount is empty: they are kept and count as orders with no revenue."""
    if of_first is not None:
        return (f"{n:,} of the first {of_first:,} rows are purchases with no amount: they will load as orders "
                "with no revenue (fill in the amounts to count their revenue)")
    return (f"{n:,} purchase{'s have' if n != 1 else ' has'} no amount; "
            f"{'they count as orders' if n != 1 else 'it counts as an order'} with no revenue")


def _insert_events(cur, sql: str, params: dict) -> int:
    """Run one load's ``INSERT INTO events ... SELECT``; returns the number of rows inserted.

    A load's rows have no order of their own in ``events`` (every reader of the table orders or
    groups what it reads; line numbers live in ``rejects``), so the statement runs with DuckDB's
    insertion-order preservation off: each thread then writes its rows straight into row groups
    instead of handing ordered batches to be merged, which takes about a third off the write and
    leaves no deferred work for the next checkpoint. The setting is process-wide, so it is put back
    at once; loads into one warehouse run one at a time (``Warehouse.writer``), and nothing else
    in the product depends on an unordered query's row order. The line-by-line path depends on it
    (a line's row id is its line number), so the setting is switched on a cursor of its own, which
    can put it back even when the insert fails and leaves ``cur``'s transaction aborted.
    """
    ctl = cur.cursor()
    try:
        before = ctl.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
        ctl.execute("SET preserve_insertion_order = false")
        try:
            return cur.execute(sql, params).fetchone()[0]
        finally:
            ctl.execute(f"SET preserve_insertion_order = {'true' if before else 'false'}")
    finally:
        ctl.close()


def _direct_read_possible(prepared, dia: Dialect) -> bool:
    """Whether a file may first be read straight into ``events`` (see ``_load_direct``): a
    delimited UTF-8 text without quote characters, NUL bytes or lone carriage returns whose first
    line is not blank."""
    if dia.delimiter == "whitespace" or prepared.has_nul or prepared.invalid_utf8 or prepared.lines < 1:
        return False
    if prepared.lone_cr or prepared.trailing_blank_lines < 0:  # records and lines may not match one to one
        return False
    if dia.quote and prepared.has_quote:  # quoted fields: only the line-by-line split reads them our way
        return False
    if dia.has_header:
        # DuckDB skips blank lines silently: a blank first line would make it take the header for a row
        first = decode_head(read_head(prepared.path, prepared.compression, 65536), "utf-8")
        first = first.split("\n", 1)[0].strip(" \t\r")
        if not first:
            return False
    return True


def _load_direct(cur, tx, prepared, dia: Dialect, columns, m: Mapping, keep, pseudonymize, dataset, preview,
                 file_name, warnings, report, t0, description, wh, hash_future, staged):
    """The fast way for clean files: DuckDB's CSV reader with the decided dialect and every column
    as text (no sniffing), the same checks as the line-by-line path (``_records_sql``), and the
    good rows inserted into ``events`` in the same statement, with no staging table. The bad rows,
    if any, are found by a second read into ``rejects``.

    Nothing is trusted that the reader could have skipped: the records it returns are compared
    with the physical lines counted by ``prepare_source``. The load is given up (rolled back,
    returning ``(None, id)``) and the line-by-line path runs instead when the counts differ
    (a blank line, a record over several lines), when the reader refuses the file (a line too
    long), when a row has more fields than it can count or is a line of spaces, when no row is
    valid or when the dataset already exists (duplicates against its rows). Returns ``(result,
    ingestion id or None)``.

    Rows whose customers get dense keys (ids of no numeric form, ``analytics.customer_keys``) are
    staged in the temporary table ``staged`` first: their new ids are numbered from it and each
    row is written with its key, in the same statement that writes it.
    """
    # empty lines at the end are no rows in either path (the reader skips them too)
    expected = prepared.lines - prepared.trailing_blank_lines - (1 if dia.has_header else 0)
    if expected <= 0:
        return None, None
    n = len(columns)
    # DIRECT_EXTRA_FIELDS more columns than the header's, missing fields as NULL: a row's number
    # of fields is its number of non-NULL values, exact up to n + DIRECT_EXTRA_FIELDS - 1 (a row
    # that fills the last column may have been cut by the reader: the load then goes the
    # line-by-line way, as it does for a line of spaces, a blank line to us and a row to the reader)
    names = [f"c{i + 1}" for i in range(n + DIRECT_EXTRA_FIELDS)]
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in names) + "}"
    read = (f"read_csv($path, columns={spec}, delim=$delim, quote='', escape='', header=false, "
            f"skip={1 if dia.has_header else 0}, auto_detect=false, strict_mode=false, null_padding=true, "
            f"nullstr=$nullstr, "
            f"max_line_size={MAX_LINE_BYTES}, "
            + ("compression='gzip', " if prepared.compression == "gzip" else "")
            + f"buffer_size={2 * MAX_LINE_BYTES})")
    # empty fields are '' as in the line split (no text equals nullstr: the file lacks that character)
    base = {"path": prepared.path, "delim": dia.delimiter, "nullstr": prepared.separator_free,
            "dataset": dataset}
    cols = ", ".join(names)
    count_all = " + ".join(f"({c} IS NOT NULL)::INT" for c in names)
    nf = (f"CASE WHEN {names[n - 1]} IS NOT NULL AND {names[n]} IS NULL THEN {n} "
          f"WHEN {names[-1]} IS NOT NULL OR ({names[1]} IS NULL AND trim({names[0]}, ' ' || chr(9)) = '') "
          f"THEN {UNCOUNTED} ELSE {count_all} END")

    def records(numbered: bool) -> tuple[str, dict]:
        params = dict(base)
        if numbered:  # the reader keeps the file's order; a record is one line (checked by the count)
            src = (f"SELECT row_number() OVER () + {1 if dia.has_header else 0} AS ln, "
                   f"concat_ws($delim, {cols}) AS line, false AS open_quote, {cols} FROM {read}")
        else:
            src = f"SELECT NULL::BIGINT AS ln, NULL::VARCHAR AS line, false AS open_quote, {cols} FROM {read}"
        sql = _records_sql(columns, m, keep, pseudonymize, wh, False, src, lambda i: names[i], nf, params)
        return sql, params

    report(0.3, "checking rows")
    tx.begin()
    if cur.execute("SELECT 1 FROM datasets WHERE name = ?", [dataset]).fetchone() is not None:
        tx.rollback()
        return None, None
    iid = cur.execute("SELECT nextval('ingestion_id_seq')").fetchone()[0]
    try:
        cur.execute("INSERT INTO datasets (name, description, pseudonymized) VALUES (?, ?, ?)",
                    [dataset, description, bool(pseudonymize)])
        access.grant_creator(wh, dataset, cur=cur)
        sql, params = records(False)
        first = f"SELECT customer_id FROM ({sql}) WHERE reason IS NULL LIMIT {customer_keys.SAMPLE}"
        first = [r[0] for r in cur.execute(first, _used(first, params)).fetchall()]
        if customer_keys.keys_as_written(cur, dataset, first, new_dataset=True):
            cur.execute(f"CREATE TEMP TABLE {staged} AS SELECT * FROM ({sql}) WHERE reason IS NULL",
                        _used(sql, params))
            customer_keys.add_keys(cur, dataset, staged)
            source, key = f"{staged} s {customer_keys.KEY_JOIN.format(alias='s')}", "keys_.customer_key"
        else:
            source, key = f"({sql}) s WHERE reason IS NULL", "NULL"
        sql = f"""
            INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, category, quantity,
                                revenue, rating, text, country, attributes, ingestion_id, row_hash, customer_key)
            SELECT $dataset, s.customer_id, event_time, event_type, order_id, item_id, category, quantity, revenue,
                   rating, text, country, attributes, $iid, h, {key}
            FROM {source}"""
        params["iid"] = iid
        n_loaded = _insert_events(cur, sql, _used(sql, params))
        n_bad = 0
        if 0 < n_loaded < expected:
            sql, params = records(True)
            sql = f"INSERT INTO rejects SELECT $iid, ln, raw_line, reason FROM ({sql}) WHERE reason IS NOT NULL"
            params["iid"] = iid
            n_bad = cur.execute(sql, _used(sql, params)).fetchone()[0]
        if n_loaded == 0 or n_loaded + n_bad != expected:
            tx.rollback()
            return None, iid
        if n_bad and cur.execute("SELECT count(*) FROM rejects WHERE ingestion_id = ? AND reason = ?",
                                 [iid, f"expected {n} fields, found {UNCOUNTED}"]).fetchone()[0]:
            tx.rollback()  # a row the reader may have cut, or a line of spaces
            return None, iid
        # rows repeated within the file: the k-th copy's row hash becomes hash(h, k), as in the
        # line-by-line path. Copies are equal in every stored field, so which one counts as the
        # k-th does not matter and their order in the table serves. (Finding repeats by sorting
        # the hashes costs about half a DISTINCT count's hash table.)
        n_repeat = cur.execute(
            "SELECT count(*) FROM (SELECT row_hash, lag(row_hash) OVER (ORDER BY row_hash) AS prev "
            "FROM events WHERE ingestion_id = ?) WHERE row_hash = prev", [iid]).fetchone()[0]
        if n_repeat:
            n_renumbered = cur.execute("""
                UPDATE events SET row_hash = x.nh FROM (
                    SELECT rid, hash(row_hash, k) AS nh FROM (
                        SELECT rowid AS rid, row_hash,
                               row_number() OVER (PARTITION BY row_hash ORDER BY rowid) AS k
                        FROM events WHERE ingestion_id = $iid AND row_hash IN (
                            SELECT row_hash FROM events WHERE ingestion_id = $iid
                            GROUP BY row_hash HAVING count(*) > 1))
                    WHERE k > 1) x
                WHERE events.rowid = x.rid""", {"iid": iid}).fetchone()[0]
            if n_renumbered != n_repeat:  # cannot happen; the line-by-line path would still be right
                tx.rollback()
                return None, iid
    except duckdb.Error:
        tx.rollback()
        return None, iid
    report(0.9, "writing rows")
    return _record_load(cur, tx, wh, iid, dataset, file_name, preview, dia, m, warnings, t0, hash_future,
                        expected, n_loaded, n_bad, 0, new_dataset=True), iid


def _records_sql(columns, m: Mapping, keep, pseudonymize, wh, has_nul: bool, source: str, field_ref, nf: str,
                 params: dict) -> str:
    """The statement that turns records into canonical columns, a reject reason and a row hash.

    ``source`` selects ``ln, line, open_quote`` and the fields; ``field_ref(i)`` is the SQL for
    the i-th (0-based) field of a record and ``nf`` its number of fields. Both ways of reading a
    file (the line-by-line split and the typed read of clean files) share it, so their checks and
    messages are the same. Adds its named parameters to ``params``.
    """

    def col(field_name):
        c = m.columns.get(field_name)
        return None if c is None else field_ref(columns.index(c))

    def text(field_name):
        c = col(field_name)
        if c is None:
            return "NULL::VARCHAR"
        # trim only values that need it (trim copies every string: 3x slower on big files)
        return f"nullif(CASE WHEN starts_with({c}, ' ') OR ends_with({c}, ' ') THEN trim({c}) ELSE {c} END, '')"

    def ident(field_name):
        t = text(field_name)
        if field_name in m.strip_point_zero:  # '17850.0' -> '17850'
            t = f"CASE WHEN regexp_full_match({t}, '[0-9]+[.]0+') THEN split_part({t}, '.', 1) ELSE {t} END"
        return t

    cust = ident("customer_id")
    if m.strip_leading_zeros:
        cust = f"CASE WHEN ltrim({cust}, '0') = '' AND {cust} IS NOT NULL THEN '0' ELSE ltrim({cust}, '0') END"
    traw = text("event_time")
    fmt = m.date_format
    if fmt == UNIX_SECONDS:
        tparsed = f"make_timestamp(try_cast({traw} AS BIGINT) * 1000000)"
    elif fmt == UNIX_MILLIS:
        tparsed = f"make_timestamp(try_cast({traw} AS BIGINT) * 1000)"
    elif fmt == EXCEL_DAYS:  # days since 1899-12-30 (25,569 before 1970-01-01), to the millisecond;
        # before Excel's fictitious 1900-02-29 (serial 60) they count from 1899-12-31
        days = f"try_cast({traw} AS DOUBLE)"
        tparsed = (f"CASE WHEN {days} BETWEEN 1 AND 2958466 "  # Excel's own range (to 9999-12-31)
                   f"THEN make_timestamp(CAST(round(({days} - CASE WHEN {days} < 61 THEN 25568 ELSE 25569 END)"
                   f" * 86400000) AS BIGINT) * 1000) END")
    elif fmt in ISO_FORMATS:  # fast path: DuckDB's ISO 8601 cast (also takes a date alone or a 'T')
        tparsed = f"try_cast({traw} AS TIMESTAMP)"
    elif "%z" in fmt:
        # a time with a UTC offset is the instant it names, stored in UTC, as the Spark engine takes
        # it (calendar days are UTC days on every machine); without the explicit conversion DuckDB
        # would store it in the machine's time zone
        tparsed = f"timezone('UTC', try_strptime({traw}, $fmt))"
        params["fmt"] = fmt
    else:
        tparsed = f"try_strptime({traw}, $fmt)"
        params["fmt"] = fmt
    qraw, rraw, rtraw = text("quantity"), text("revenue"), text("rating")
    qnum = _num(qraw, m.decimal_comma) if col("quantity") else "NULL::DOUBLE"
    rnum = _num(rraw, m.decimal_comma) if col("revenue") else "NULL::DOUBLE"
    if m.revenue_is_unit_price:
        rnum = f"({qnum} * {rnum})"
    rating = f"try_cast({rtraw} AS DOUBLE)" if col("rating") else "NULL::DOUBLE"
    # event type
    if col("event_type"):
        etmap = {k.strip().lower(): v for k, v in m.event_type_map.items()}
        for t in EVENT_TYPES:
            etmap.setdefault(t, t)
        whens = []
        for i, (k, v) in enumerate(sorted(etmap.items())):
            params[f"etk{i}"], params[f"etv{i}"] = k, v
            whens.append(f"WHEN $etk{i} THEN $etv{i}")
        etype0 = f"CASE lower({text('event_type')}) {' '.join(whens)} END"
    else:
        etype0 = "$deftype"
        params["deftype"] = m.default_event_type
    order = ident("order_id")
    ret_conds = []
    if m.return_prefix:
        params["retprefix"] = m.return_prefix
        ret_conds.append("coalesce(starts_with(order_id, $retprefix), false)")
    if m.negative_is_return:
        ret_conds.append("(coalesce(q_num, 0) < 0 OR coalesce(r_num, 0) < 0)")
    is_return = " OR ".join(ret_conds) if ret_conds else "false"
    # attributes: mapped extra columns and kept personal data
    attr_cols = [c for c in list(m.attributes) + list(keep) if c in columns]
    attr_cols = list(dict.fromkeys(attr_cols))
    if attr_cols:
        parts = []
        for i, c in enumerate(attr_cols):
            params[f"ak{i}"] = c
            parts.append(f"$ak{i}, nullif(trim({field_ref(columns.index(c))}), '')")
        attrs = f"json_object({', '.join(parts)})::VARCHAR"
    else:
        attrs = "NULL::VARCHAR"
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    params["maxtime"] = now + FUTURE_GRACE
    params["mintime"] = MIN_DATE
    params["ncols"] = len(columns)
    if pseudonymize:
        ipad, opad = hmac_pads(pseudonym_key(wh))
        params["ipad"], params["opad"] = ipad, opad
        cust_out = pseudonymize_sql("customer_id")
    else:
        cust_out = "customer_id"
    nul_check = "WHEN contains(line, chr(0)) THEN 'contains NUL bytes' " if has_nul else ""
    fmt_text = SPECIAL_FORMAT_WORDS.get(fmt, fmt)
    params["fmttext"] = fmt_text
    sql = f"""
        SELECT *, CASE WHEN reason IS NULL THEN hash({HASH_COLS}) END AS h FROM (
        WITH s AS ({source}),
        c AS (
            SELECT ln, line, open_quote, {nf} AS nf,
                   {cust} AS customer_id, {traw} AS t_raw, {tparsed} AS event_time,
                   {etype0} AS etype0, {text('event_type')} AS et_raw,
                   {order} AS order_id, {ident('item_id')} AS item_id, {text('category')} AS category,
                   {qraw} AS q_raw, {qnum} AS q_num, {rraw} AS r_raw, {rnum} AS r_num,
                   {rtraw} AS rt_raw, {rating} AS rating, {text('text')} AS text, {text('country')} AS country,
                   {attrs} AS attributes
            FROM s),
        v AS (
            SELECT *, CASE
                WHEN open_quote THEN 'unterminated quoted field (is the file cut off?)'
                {nul_check}
                WHEN nf <> $ncols THEN 'expected ' || $ncols || ' fields, found ' || nf
                WHEN customer_id IS NULL AND t_raw IS NULL AND r_raw IS NULL AND q_raw IS NULL AND et_raw IS NULL
                    THEN 'empty row (no customer, date or amount)'
                WHEN customer_id IS NULL THEN 'missing customer id'
                WHEN t_raw IS NULL THEN 'missing date'
                WHEN event_time IS NULL THEN 'date ''' || left(t_raw, 40) || ''' does not match the format ' || $fmttext
                WHEN event_time > $maxtime THEN 'date in the future: ' || event_time::VARCHAR
                WHEN event_time < $mintime THEN 'date before 1990: ' || event_time::VARCHAR
                WHEN et_raw IS NOT NULL AND etype0 IS NULL THEN 'unknown event type ''' || left(et_raw, 40) || ''''
                WHEN etype0 IS NULL THEN 'missing event type'
                WHEN q_raw IS NOT NULL AND q_num IS NULL THEN 'non-numeric quantity ''' || left(q_raw, 40) || ''''
                WHEN r_raw IS NOT NULL AND r_num IS NULL AND NOT (q_raw IS NOT NULL AND q_num IS NULL) THEN 'non-numeric amount ''' || left(r_raw, 40) || ''''
                WHEN rt_raw IS NOT NULL AND rating IS NULL THEN 'non-numeric rating ''' || left(rt_raw, 40) || ''''
                WHEN NOT isfinite(coalesce(r_num, 0)) OR NOT isfinite(coalesce(q_num, 0)) THEN 'amount is not a finite number'
                {"" if m.negative_is_return else "WHEN coalesce(r_num, 0) < 0 THEN 'negative amount'"}
                END AS reason
            FROM c)
        SELECT ln, reason, CASE WHEN reason IS NOT NULL THEN left(line, {RAW_LINE_CHARS}) END AS raw_line,
               {cust_out} AS customer_id, event_time,
               CASE WHEN etype0 IN ('purchase') AND ({is_return}) THEN 'return' ELSE etype0 END AS event_type,
               order_id, item_id, category,
               CASE WHEN {is_return} THEN abs(q_num) ELSE q_num END AS quantity,
               CASE WHEN {is_return} THEN abs(r_num) ELSE r_num END AS revenue,
               rating, text, country, attributes
        FROM v)"""
    return sql


# ------------------------------------------------------------------ reading back
def rejects_frame(wh, ingestion_id: int, limit: int | None = None) -> pd.DataFrame:
    """The rejected rows of one ingestion: line_number, raw_line, reason (in file order)."""
    sql = "SELECT line_number, raw_line, reason FROM rejects WHERE ingestion_id = ? ORDER BY line_number"
    params: list = [int(ingestion_id)]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return wh.cursor().execute(sql, params).df()


def ingestion_history(wh, dataset: str | None = None) -> pd.DataFrame:
    """The ingestion log, newest first (optionally for one dataset)."""
    sql = ("SELECT id AS ingestion_id, dataset, file_name, layout, rows_read, rows_loaded, rows_rejected,"
           " rows_duplicate, round(duration_s, 2) AS duration_s, created_at, content_hash FROM ingestions")
    params: list = []
    if dataset is not None:
        sql += " WHERE dataset = ?"
        params.append(dataset)
    df = wh.cursor().execute(sql + " ORDER BY id DESC", params).df()
    visible = access.visible_datasets(wh)
    return df if visible is None else df[df["dataset"].isin(visible)].reset_index(drop=True)


def _other_dataset_tables(cur) -> list[str]:
    """Tables (other than the core ones) that have a ``dataset`` column: results of later stages."""
    rows = cur.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'dataset' "
        "AND table_schema = 'main' AND table_name NOT IN ('events', 'ingestions', 'datasets')"
        " AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')"
    ).fetchall()
    return [r[0] for r in rows]


def delete_dataset(wh, name: str) -> None:
    """Remove a dataset and everything derived from it, in one transaction.

    Events, ingestion log and rejects; its customer summaries (runs and rows); its
    stored overview (setting ``overview:<name>``); and the rows of every later
    stage's table with a ``dataset`` column (clustering runs and assignments,
    predictor runs and models, published predictions, the dataset's own saved
    segments and settings). Segments shared by all datasets stay. After the commit, the predictor model
    files of the dataset's runs are removed from disk.
    """
    from analytics.overview import _SETTING_PREFIX as overview_prefix
    from analytics.prepare import delete_prepared
    from analytics.summary import delete_summaries

    access.require(wh, "delete_dataset", name if wh.exists_dataset(name) else None)
    if not wh.has_dataset(name):
        known = ", ".join(wh.datasets()) or "none yet"
        raise IngestError(f"no dataset named {name!r} (datasets: {known})")
    model_paths: list[str] = []
    with wh.writer(f"the deletion of {name!r}"), wh.transaction() as tx:
        others = _other_dataset_tables(tx)
        if "predictor_models" in others:
            model_paths = [r[0] for r in tx.execute(
                "SELECT path FROM predictor_models WHERE dataset = ? AND path IS NOT NULL", [name]).fetchall()]
        delete_summaries(wh, name, tx)  # customer_summaries rows carry only a run id
        delete_prepared(wh, name, tx)  # prepared results keep their blobs in tables of their own
        tx.execute("DELETE FROM settings WHERE key = ?", [overview_prefix + name])
        tx.execute("DELETE FROM rejects WHERE ingestion_id IN (SELECT id FROM ingestions WHERE dataset = ?)", [name])
        tx.execute("DELETE FROM events WHERE dataset = ?", [name])
        tx.execute("DELETE FROM ingestions WHERE dataset = ?", [name])
        for t in others:
            tx.execute(f"DELETE FROM {quote_ident(t)} WHERE dataset = ?", [name])
        tx.execute("DELETE FROM datasets WHERE name = ?", [name])
        access.audit(wh, "delete_dataset", dataset=name, cur=tx)
    _remove_model_files(model_paths)


def _remove_model_files(paths: list[str]) -> None:
    """Delete model folders/files, then their run folders when left empty."""
    import shutil

    for p in paths:
        if str(p).startswith("warehouse:"):  # kept inside the (encrypted) warehouse: gone with its rows
            continue
        path = Path(p)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # run_<id>/ once its last model is gone
        except OSError:
            pass


EXPORT_COLUMNS = ["customer_id", "event_time", "event_type", "order_id", "item_id", "category", "quantity",
                  "revenue", "rating", "text", "country", "attributes"]


def export_dataset(wh, name: str, path, fmt: str = "csv") -> Path:
    """Write a dataset's events (canonical layout, time order) to CSV or Parquet; returns the path.

    The CSV can be loaded back with ``ingest`` (layout 'events'). Text cells that a
    spreadsheet would run as formulas are neutralized in CSV (see ``analytics.export``).
    """
    if fmt not in ("csv", "parquet"):
        raise IngestError(f"unknown export format {fmt!r} (csv or parquet)")
    access.require(wh, "export", name if wh.exists_dataset(name) else None)
    if not wh.has_dataset(name):
        known = ", ".join(wh.datasets()) or "none yet"
        raise IngestError(f"no dataset named {name!r} (datasets: {known})")
    in_memory = hasattr(path, "fd")  # a warehouse.MemoryFile: DuckDB writes into it directly
    out = Path(path)
    if not in_memory and out.parent and not out.parent.exists():
        raise IngestError(f"the folder {out.parent} does not exist")
    direct = ", USE_TMP_FILE false" if in_memory else ""
    cols = ", ".join(EXPORT_COLUMNS)
    cur = wh.cursor()
    if fmt == "parquet":
        cur.execute(f"COPY (SELECT {cols} FROM events WHERE dataset = $name ORDER BY event_time, customer_id) "
                    f"TO $path (FORMAT parquet{direct})", {"name": name, "path": str(out)})
        return out
    # CSV: formula cells neutralized with the OWASP quote prefix, in SQL (no Python row loop)
    trig = "'^[ ]*[=+\\-@\\t\\r]'"
    sel = []
    for c in EXPORT_COLUMNS:
        if c in ("quantity", "revenue", "rating"):
            sel.append(c)
        elif c == "event_time":
            sel.append("strftime(event_time, '%Y-%m-%d %H:%M:%S') AS event_time")
        else:
            sel.append(f"CASE WHEN regexp_matches({c}, {trig}) THEN '''' || {c} ELSE {c} END AS {c}")
    cur.execute(f"COPY (SELECT {', '.join(sel)} FROM events WHERE dataset = $name ORDER BY event_time, customer_id) "
                f"TO $path (FORMAT csv, HEADER true{direct})", {"name": name, "path": str(out)})
    return out
