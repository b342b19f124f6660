"""Reading a source file safely: compression, encoding, delimiter, header.

Everything here streams in bounded chunks; no function reads a whole file into
memory. ``detect_dialect`` looks at the first ``SAMPLE_BYTES`` of the text;
``prepare_source`` produces a UTF-8 file DuckDB can read with an explicit
dialect (the original file when it already is plain UTF-8, else a temporary
transcoded / decompressed copy) and scans it once for facts the loader needs.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import os
import re
import tempfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from analytics.ingest.errors import IngestError

SAMPLE_BYTES = 256 * 1024
CHUNK = 4 * 1024 * 1024
DEFAULT_MAX_DECOMPRESSED = 20 * 1024**3  # 20 GB
DELIMITERS = (",", ";", "\t", "|")
_DELIM_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "whitespace": "runs of spaces"}


@dataclass
class Dialect:
    """How a text file is laid out. ``delimiter`` is one of , ; \\t | or 'whitespace'."""

    encoding: str = "utf-8"
    delimiter: str = ","
    has_header: bool = True
    quote: str = '"'
    compression: str | None = None  # None or 'gzip'
    bom: bool = False

    def describe(self) -> str:
        parts = [
            self.encoding + (" with BOM" if self.bom else ""),
            f"{_DELIM_NAMES.get(self.delimiter, repr(self.delimiter))}-separated",
            "with header" if self.has_header else "no header",
        ]
        if self.compression:
            parts.append(f"{self.compression}-compressed")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Dialect":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        dia = cls(**known)
        if dia.delimiter not in DELIMITERS + ("whitespace",):
            raise IngestError(f"unsupported delimiter {dia.delimiter!r} (use , ; tab | or whitespace)")
        return dia


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open_raw(path, compression):
    return gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")


def read_head(path, compression=None, n=SAMPLE_BYTES) -> bytes:
    """The first ``n`` (decompressed) bytes of a file."""
    try:
        with _open_raw(path, compression) as f:
            return f.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"cannot read the file: {exc}") from None


def detect_encoding(head: bytes) -> tuple[str, bool]:
    """(python codec name, has BOM) from the first bytes of the text."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", True
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16", True
    if len(head) >= 4:
        # UTF-16 without BOM: every other byte NUL in mostly-ASCII text.
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le", False
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be", False
    if _looks_binary(head):
        raise IngestError("this does not look like a text (CSV) file: it contains binary data")
    try:
        head.decode("utf-8")
        return "utf-8", False
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a multi-byte character cut by the sample
            try:
                head[: exc.start].decode("utf-8")
                return "utf-8", False
            except UnicodeDecodeError:
                pass
    # mostly valid UTF-8 with real multi-byte characters and a few broken bytes: still UTF-8
    # (the broken lines are rejected); otherwise a legacy single-byte encoding
    text = head.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    multibyte = sum(1 for ch in text if ord(ch) > 127) - bad
    if multibyte > 0 and bad <= max(2, multibyte // 4):
        return "utf-8", False
    try:
        head.decode("cp1252")
        return "cp1252", False
    except UnicodeDecodeError:
        return "latin-1", False


def _looks_binary(head: bytes) -> bool:
    if not head:
        return False
    sample = head[:65536]
    nul = sample.count(0)
    controls = sum(sample.count(bytes([c])) for c in range(1, 32) if c not in (9, 10, 13))
    return nul > 0.05 * len(sample) or controls > 0.05 * len(sample)


def decode_head(head: bytes, encoding: str) -> str:
    text = head.decode(encoding, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def sample_lines(text: str, limit: int = 5000) -> list[str]:
    """Complete non-blank lines of a decoded sample (the last, possibly cut, line dropped)."""
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
    return [ln for ln in lines if ln.strip()][:limit]


def split_line(line: str, delimiter: str, quote: str = '"') -> list[str]:
    if delimiter == "whitespace":
        return line.split()
    return next(csv.reader([line], delimiter=delimiter, quotechar=quote or None, strict=False), [])


def detect_delimiter(lines: list[str]) -> str:
    """The delimiter giving the most consistent number of fields (> 1) over the sample lines."""
    probe = lines[:200]
    if not probe:
        return ","
    best, best_score = None, (0.0, 0)
    for d in DELIMITERS + ("whitespace",):
        counts = [len(split_line(ln, d)) for ln in probe]
        top = max(set(counts), key=counts.count)
        if top < 2:
            continue
        consistency = counts.count(top) / len(counts)
        score = (round(consistency, 2), top if d != "whitespace" else 0)
        if d == "whitespace" and consistency < 0.99:
            continue
        if score > best_score:
            best, best_score = d, score
    return best or ","


_NUMERIC_RE = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$")
_DATEISH_RE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


def _valueish(v: str) -> bool:
    return bool(_NUMERIC_RE.match(v) or _DATEISH_RE.match(v))


def detect_header(lines: list[str], delimiter: str, quote: str = '"') -> bool:
    """True when the first line names columns: none of its fields looks like a number or date
    while some later row has a number or date in one of those columns."""
    if not lines:
        return False
    first = split_line(lines[0], delimiter, quote)
    if any(_valueish(v) for v in first if v.strip()):
        return False
    rest = [split_line(ln, delimiter, quote) for ln in lines[1:50]]
    if not rest:
        return True  # a single line of names: header only
    for i in range(len(first)):
        col = [r[i] for r in rest if i < len(r) and r[i].strip()]
        if col and all(_valueish(v) for v in col):
            return True
    # all text: treat the first line as a header when its values are unique and name-like
    return len(set(first)) == len(first)


@dataclass
class PreparedSource:
    """A UTF-8 file DuckDB reads (``path``) and facts from one streaming pass."""

    path: str
    temporary: bool
    size_bytes: int
    decoded_bytes: int
    has_nul: bool = False
    has_quote: bool = True
    invalid_utf8: bool = False
    separator_free: str = "\x1f"
    notes: list[str] = field(default_factory=list)
    #: "gzip": ``path`` is the compressed original, for DuckDB to decompress as it reads
    compression: str | None = None
    #: the memory file holding the copy (an encrypted warehouse's loads), freed by cleanup
    memory: object = None
    #: physical lines of the text DuckDB reads (line feeds, plus a last line without one),
    #: counted here independently of any CSV reader
    lines: int = 0
    #: empty lines at the very end of that text (after the last line with content)
    trailing_blank_lines: int = 0
    #: whether the text has a carriage return not followed by a line feed (a CSV reader may take
    #: it for a line break, so ``lines`` would not be the number of records it sees)
    lone_cr: bool = False

    def cleanup(self) -> None:
        if self.memory is not None:
            self.memory.close()
        elif self.temporary:
            try:
                os.unlink(self.path)
            except OSError:
                pass


class _LineTally:
    """Counts the line feeds of a text fed in pieces (UTF-8 bytes), notes a carriage return that
    no line feed follows, and keeps the text's end to count the empty lines there."""

    TAIL = 4096

    def __init__(self):
        self.newlines = 0
        self.lone_cr = False
        self.pending_cr = False
        self.tail = b""

    def feed(self, b: bytes) -> None:
        if not b:
            return
        if self.pending_cr and not b.startswith(b"\n"):
            self.lone_cr = True
        self.newlines += b.count(b"\n")
        if not self.lone_cr and b"\r" in b:
            ends = b.endswith(b"\r")
            if b.count(b"\r") - b.count(b"\r\n") - ends > 0:
                self.lone_cr = True
            self.pending_cr = ends
        else:
            self.pending_cr = False
        self.tail = (self.tail + b)[-self.TAIL:] if len(b) < self.TAIL else b[-self.TAIL:]

    def finish(self) -> tuple[int, int, bool]:
        """(lines, empty lines at the end, lone carriage return)."""
        if self.pending_cr:
            self.lone_cr = True
        last = self.tail[-1:]
        lines = self.newlines + (1 if last not in (b"", b"\n") else 0)
        body = self.tail.rstrip(b"\r\n")
        if not body and len(self.tail) >= self.TAIL:  # only line breaks as far as the tail reaches
            return lines, -1, self.lone_cr
        blank = max(self.tail[len(body):].count(b"\n") - 1, 0) if body else self.tail.count(b"\n")
        return lines, blank, self.lone_cr


_SEPARATOR_CANDIDATES = ("\x1f", "\x1e", "\x1d", "\x1c", "\x02", "\x03")


def prepare_source(path, dialect: Dialect, *, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED,
                   progress=None, temp_path=None, stream_gzip: bool = False) -> PreparedSource:
    """Stream the file once: hash it, enforce the decompressed-size cap, and produce UTF-8.

    Plain UTF-8 files are used in place (one read-only pass). Gzip files and files in
    other encodings are streamed into a temporary UTF-8 file in ``CHUNK``-sized pieces,
    so memory stays bounded whatever the size. A gzip stream that inflates past
    ``max_decompressed_bytes`` stops there with an ``IngestError``. ``temp_path``: the name of the
    temporary copy (default: a new file in the system's temporary folder), or a
    ``warehouse.MemoryFile`` to hold it in memory. ``stream_gzip``: a gzip file in UTF-8 gets no copy
    at all (it is still read once for the checks); DuckDB decompresses it as it reads
    (``PreparedSource.compression``).
    """
    path = str(path)
    size = os.path.getsize(path)
    needs_copy = dialect.compression == "gzip" or dialect.encoding not in ("utf-8",)
    streamed = stream_gzip and dialect.compression == "gzip" and dialect.encoding == "utf-8"
    if streamed:
        needs_copy = False
    memory = None
    seen_sep = {c: False for c in _SEPARATOR_CANDIDATES}
    has_nul = False
    has_quote = False
    invalid = False
    decoded = 0
    tally = _LineTally()
    out = None
    out_path = None
    if needs_copy:
        if temp_path is not None and hasattr(temp_path, "fd"):  # a memory file: nothing on disk
            memory = temp_path
            out_path = memory.path
            out = memory.open("wb")
        elif temp_path is not None:
            out_path = str(temp_path)
            out = open(out_path, "xb")
        else:
            fd, out_path = tempfile.mkstemp(prefix="valuescope-ingest-", suffix=".csv")
            out = os.fdopen(fd, "wb")
    try:
        with open(path, "rb") as raw:
            src = gzip.GzipFile(fileobj=raw, mode="rb") if dialect.compression == "gzip" else raw
            decoder = codecs.getincrementaldecoder(dialect.encoding)(errors="strict" if dialect.encoding.startswith("utf-8") else "replace")
            utf8_check = codecs.getincrementaldecoder("utf-8")(errors="strict")
            first = True
            while True:
                try:
                    chunk = src.read(CHUNK)
                except (OSError, EOFError, zlib.error) as exc:
                    raise IngestError(f"the compressed file is damaged: {exc}") from None
                if not chunk:
                    break
                decoded += len(chunk)
                if decoded > max_decompressed_bytes:
                    raise IngestError(
                        f"the file decompresses to more than the limit of {_fmt_bytes(max_decompressed_bytes)}; "
                        "load a smaller file or raise the limit"
                    )
                if dialect.encoding == "utf-8":
                    if not invalid and not (chunk.isascii() and utf8_check.getstate()[0] == b""):
                        try:
                            utf8_check.decode(chunk)
                        except UnicodeDecodeError:
                            invalid = True
                    if b"\x00" in chunk:
                        has_nul = True
                    if not has_quote and b'"' in chunk:
                        has_quote = True
                    for c in _SEPARATOR_CANDIDATES:
                        if not seen_sep[c] and c.encode() in chunk:
                            seen_sep[c] = True
                    tally.feed(chunk)
                    if out is not None:
                        out.write(chunk)
                else:
                    text = decoder.decode(chunk)
                    if first and text.startswith("\ufeff"):
                        text = text[1:]
                    first = False
                    if "\x00" in text:
                        has_nul = True
                    if not has_quote and '"' in text:
                        has_quote = True
                    for c in _SEPARATOR_CANDIDATES:
                        if not seen_sep[c] and c in text:
                            seen_sep[c] = True
                    data = text.encode("utf-8")
                    tally.feed(data)
                    out.write(data)
                if progress and size:
                    progress(min(0.25, 0.25 * raw.tell() / size), "reading the file")
            if dialect.encoding != "utf-8":
                data = decoder.decode(b"", final=True).encode("utf-8")
                tally.feed(data)
                out.write(data)
        if out is not None:
            out.close()
            out = None
    except BaseException:
        if out is not None:
            out.close()
        _discard(out_path, memory)
        raise
    sep = next((c for c in _SEPARATOR_CANDIDATES if not seen_sep[c]), None)
    if sep is None:
        _discard(out_path, memory)
        raise IngestError("the file contains too many control characters to be read as CSV text")
    lines, trailing_blank, lone_cr = tally.finish()
    return PreparedSource(
        path=out_path or path, temporary=bool(out_path), size_bytes=size,
        decoded_bytes=decoded, has_nul=has_nul, has_quote=has_quote, invalid_utf8=invalid, separator_free=sep,
        compression="gzip" if streamed else None, memory=memory,
        lines=lines, trailing_blank_lines=trailing_blank, lone_cr=lone_cr,
    )


def _discard(out_path, memory) -> None:
    if memory is not None:
        memory.close()
    elif out_path:
        os.unlink(out_path)


def file_sha256(path, stop=None) -> str:
    """SHA-256 of a file's bytes, in chunks. hashlib releases the GIL, so the loader runs this
    in a thread alongside DuckDB's work; ``stop`` (a threading.Event) ends it early."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            if stop is not None and stop.is_set():
                return ""
            b = f.read(CHUNK)
            if not b:
                return sha.hexdigest()
            sha.update(b)


def _fmt_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
