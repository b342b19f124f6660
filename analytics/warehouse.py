"""The embedded DuckDB warehouse.

One DuckDB file per installation; one connection per process (``get_warehouse``)
and a ``cursor()`` per use, which is what DuckDB documents as safe across threads
(Streamlit runs every browser session in its own thread). Every write that spans
several statements goes through ``Warehouse.transaction()`` so that a failure
leaves the file exactly as it was.

Connection model (one warehouse, many clients). DuckDB lets one process open a file for
writing and then no other process may open it. While ``valuescope serve`` runs, the app
process owns the warehouse and CLI commands are handed to it (``analytics.jobserver``);
without a server a CLI command opens the file itself, and a second one waits (with a
message) until the first closes it (:func:`get_warehouse` with ``wait``). Inside a process,
big writes (loads, deletions) take :meth:`Warehouse.writer` one at a time, and a caller that
has to wait is told who it waits for. :func:`connect` is the one place a file is opened.

Schema changes are versioned migrations (``analytics.migrations``), applied in
order on open and recorded in ``schema_version``.

Encryption at rest. With a key (:func:`encryption_key`: ``$VALUESCOPE_KEY``, else the file named by
``$VALUESCOPE_KEY_FILE``, else ``encryption_key`` in the ``[valuescope]`` table of the secrets file
``.streamlit/secrets.toml`` or ``$VALUESCOPE_SECRETS``) the warehouse is an encrypted DuckDB
database (``ATTACH ... (ENCRYPTION_KEY ...)``, AES-GCM; its WAL and spill files are encrypted too).
The key is never written anywhere by Valuescope, and a key file in the warehouse's own folder is
refused. Opening an encrypted file without the key, or with a wrong one, is a clear
:class:`WarehouseError`. Writing needs DuckDB's ``httpfs`` extension (OpenSSL); where it is not
installed, ``VALUESCOPE_ENCRYPTION_FALLBACK=mbedtls`` lets DuckDB's built-in module write, which
DuckDB itself does not call secure (see the README).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from analytics.migrations import MIGRATIONS

ENV_DB = "VALUESCOPE_DB"
#: the warehouse's encryption key itself / a file holding it / the secrets file to read it from
ENV_KEY = "VALUESCOPE_KEY"
ENV_KEY_FILE = "VALUESCOPE_KEY_FILE"
ENV_SECRETS = "VALUESCOPE_SECRETS"
#: ``mbedtls``: write encrypted warehouses with DuckDB's built-in crypto module when httpfs is missing
ENV_FALLBACK = "VALUESCOPE_ENCRYPTION_FALLBACK"
#: the catalog name of the attached (encrypted) warehouse
CATALOG = "vs"
#: the folder for temporary files (loads' transcoded copies, uploads, DuckDB's spill files);
#: default: ``tmp/`` next to the warehouse file
ENV_TMP = "VALUESCOPE_TMP"
DEFAULT_DB = Path("data") / "valuescope.duckdb"

EVENT_TYPES = ("view", "search", "cart", "purchase", "return", "review")

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class WarehouseError(RuntimeError):
    """A problem with the warehouse a user can act on (message is user-facing). ``disk_full``: the
    disk holding the warehouse has no space left (nothing can be stored; reading still works)."""

    disk_full = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_write_conflict(exc: BaseException) -> bool:
    """Whether a DuckDB transaction error is a write-write conflict with another transaction (retry
    it), not a storage failure (a full disk also ends in a TransactionException at COMMIT)."""
    low = str(exc).lower()
    return "conflict" in low and not any(w in low for w in ("no space", "could not write", "i/o error", "io error"))


def storage_error(exc: BaseException, what: str = "", *, temp_folder: str | Path | None = None) -> WarehouseError:
    """A user-facing :class:`WarehouseError` for a DuckDB/OS failure while ``what`` (e.g. "the load
    failed"; empty: the reason alone): a full disk, a full temporary folder, a damaged or cut-short
    file and a lock held by another process each get their own advice; anything else its first line.
    ``temp_folder``: the failure was writing there (an OS error names no file), so a full disk is
    that folder's."""
    text = str(exc)
    low = text.lower()
    lead = f"{what}: " if what else ""
    if "no space left" in low or "disk full" in low or "not enough space" in low or "enospc" in low:
        if temp_folder is not None:
            return WarehouseError(f"{lead}the temporary folder is full ({temp_folder}: its disk has no space left); "
                                  "free space there (or set VALUESCOPE_TMP to a folder with room) and try again; "
                                  "nothing was changed")
        if "temp" in low or ".tmp" in low:
            return WarehouseError(f"{lead}the temporary folder is full ({_first_line(exc)}); free space there "
                                  "(or set VALUESCOPE_TMP to a folder with room) and try again; nothing was changed")
        full = WarehouseError(f"{lead}the disk holding the warehouse is full; free some space and try again "
                              "(nothing was changed)")
        full.disk_full = True  # what only reads can still do: see analytics.summary.customer_summary
        return full
    if "out of memory" in low or "could not allocate" in low:
        return WarehouseError(f"{lead}not enough memory ({_first_line(exc)}); nothing was changed")
    if "corrupt" in low or "checksum" in low or "invalid block" in low or "bad block" in low:
        return WarehouseError(f"{lead}the warehouse file is damaged ({_first_line(exc)}); restore it from a "
                              "backup or export what can still be read")
    if "could not read enough bytes" in low:
        return WarehouseError(f"{lead}the warehouse file is cut short (truncated: a copy that did not finish, or "
                              f"a disk that filled while it was written) ({_first_line(exc)}); restore it from a backup")
    if "could not set lock" in low or "conflicting lock" in low:
        return WarehouseError(f"{lead}another process holds the warehouse ({_first_line(exc)})")
    return WarehouseError(f"{lead}{_first_line(exc)}")


def temp_dir(db_path: str | Path) -> Path:
    """$VALUESCOPE_TMP, else the ``tmp`` folder next to the warehouse file ``db_path``."""
    env = os.environ.get(ENV_TMP, "").strip()
    if env:
        return Path(env)
    if str(db_path) == ":memory:":
        import tempfile

        return Path(tempfile.gettempdir()) / "valuescope"
    return Path(db_path).resolve().parent / "tmp"


class MemoryFile:
    """A file kept in this process's memory (a Linux ``memfd``), under a path that Python's ``open``,
    ``os.stat`` and DuckDB's readers accept like any file's (``/proc/self/fd/N``): where an
    encrypted warehouse keeps an upload or a load's decompressed / transcoded copy, so that no
    customer data passes through a file in the clear. :meth:`close` frees it (so does the end of
    the process); DuckDB writes into it with ``USE_TMP_FILE false`` (it cannot make a file beside it)."""

    def __init__(self, name: str):
        self.name = str(name)
        self.fd: int | None = os.memfd_create(f"valuescope-{self.name}"[:200], getattr(os, "MFD_CLOEXEC", 1))
        self.path = f"/proc/self/fd/{self.fd}"

    def __fspath__(self) -> str:
        return self.path

    @property
    def size(self) -> int:
        return os.fstat(self.fd).st_size if self.fd is not None else 0

    def open(self, mode: str = "rb"):
        """A new file object on the memory file (its own position; closing it keeps the file)."""
        if self.fd is None:
            raise ValueError(f"the memory file {self.name} is closed")
        f = os.fdopen(os.dup(self.fd), mode)
        if "w" in mode:
            f.truncate(0)
        return f

    def read_bytes(self) -> bytes:
        with self.open("rb") as f:
            return f.read()

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self):
        self.close()


def memory_files() -> bool:
    """Whether this system can keep files in memory (:class:`MemoryFile`: Linux)."""
    return hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir()


_TEMP_RE = re.compile(r"^[a-z]+-(\d+)(?:-|$)")


def clean_temp(folder: Path) -> list[Path]:
    """Remove what processes that no longer run left in ``folder`` (files and folders named
    ``KIND-PID-...``, e.g. the copies of a load killed with ``kill -9``); returns what was removed."""
    import shutil

    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if not m or pid_alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (this process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def default_db_path() -> Path:
    """The database file: ``$VALUESCOPE_DB`` or ``./data/valuescope.duckdb``."""
    return Path(os.environ.get(ENV_DB) or DEFAULT_DB)


def quote_ident(name: str) -> str:
    """Validate and quote an SQL identifier (the only way identifiers reach SQL).

    Only plain identifiers (letters, digits, underscore; not starting with a
    digit) are allowed; anything else is refused rather than escaped, so a
    user-supplied column name can never change the shape of a statement.
    """
    if not isinstance(name, str) or not _IDENT_RE.match(name):
        raise WarehouseError(f"not a valid column or table name: {name!r}")
    return '"' + name + '"'


class WarehouseLocked(WarehouseError):
    """Another process has the warehouse file open (``pid``: that process when DuckDB names it)."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


def open_error(path: str, exc: BaseException) -> WarehouseError:
    """A user-facing error for a failure to open the warehouse file ``path``: each cause gets its
    own advice (only a lock held by another process mentions other processes)."""
    text = str(exc)
    low = text.lower()
    where = f"cannot open the warehouse {path}"
    if "could not set lock" in low or "conflicting lock" in low:
        m = re.search(r"PID (\d+)", text)
        pid = int(m.group(1)) if m else None
        who = f" (process {pid})" if pid else ""
        return WarehouseLocked(
            f"{where}: another process{who} has it open. Only one process can open a DuckDB file; while "
            "`valuescope serve` runs, CLI commands are handed to it. Wait for the other command to finish, "
            "stop it, or pass another --db.", pid)
    if "is a directory" in low:
        return WarehouseError(f"{where}: it is a folder, not a file; give the path of a .duckdb file (--db)")
    if "not a valid duckdb database" in low:
        return WarehouseError(f"{where}: the file is not a DuckDB database (is it the right file?); "
                              "give the path of a .duckdb file (--db) or a new name to start an empty warehouse")
    if "could not read enough bytes" in low or "truncated" in low:
        return WarehouseError(f"{where}: the file is cut short (truncated: a copy that did not finish?); "
                              "restore it from a backup")
    if "corrupt" in low or "checksum" in low:
        return WarehouseError(f"{where}: the file is damaged ({_first_line(exc)}); restore it from a backup")
    if "permission denied" in low or "read-only file system" in low or "read only" in low:
        return WarehouseError(f"{where}: it cannot be written (read-only file or folder, or permission denied); "
                              "give a writable location (--db)")
    if "no space left" in low:
        return WarehouseError(f"{where}: the disk is full; free some space and try again")
    return WarehouseError(f"{where}: {_first_line(exc)}")


def secrets_file() -> Path:
    """The secrets file: ``$VALUESCOPE_SECRETS`` or ``.streamlit/secrets.toml`` here."""
    return Path(os.environ.get(ENV_SECRETS) or Path(".streamlit") / "secrets.toml")


def read_secrets(path: Path | None = None) -> dict:
    """The secrets file as a dict ({} when there is none); WarehouseError when it is not valid TOML."""
    import tomllib

    p = secrets_file() if path is None else Path(path)
    if not p.is_file():
        return {}
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WarehouseError(f"the secrets file {p} cannot be read: {_first_line(exc)}") from None


def encryption_key(db_path: str | Path | None = None) -> str | None:
    """The warehouse key: ``$VALUESCOPE_KEY``, the file ``$VALUESCOPE_KEY_FILE``, or ``encryption_key`` in
    the secrets file's ``[valuescope]`` table (None: not encrypted). A key file kept in the
    warehouse's own folder is refused (a copy of the folder would carry the key with the data)."""
    key = os.environ.get(ENV_KEY)
    if key is not None and key.strip():
        return key.strip()
    key_file = os.environ.get(ENV_KEY_FILE, "").strip()
    if key_file:
        kp = Path(key_file).expanduser()
        if db_path is not None and str(db_path) != ":memory:" and kp.resolve().parent == Path(db_path).resolve().parent:
            raise WarehouseError(f"the key file {kp} is in the warehouse's own folder: keep the key away from the "
                                 "data (another folder, a secrets manager) and point VALUESCOPE_KEY_FILE at it")
        try:
            key = kp.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WarehouseError(f"the key file {kp} (VALUESCOPE_KEY_FILE) cannot be read: {exc.strerror or exc}") \
                from None
        if not key:
            raise WarehouseError(f"the key file {kp} (VALUESCOPE_KEY_FILE) is empty")
        return key
    section = read_secrets().get("valuescope") or {}
    key = section.get("encryption_key") if isinstance(section, dict) else None
    return str(key).strip() if key and str(key).strip() else None


#: the path of DuckDB's httpfs extension file (``httpfs.duckdb_extension``) to load without network
ENV_HTTPFS = "VALUESCOPE_HTTPFS"


def httpfs_files() -> list[Path]:
    """Where an httpfs extension built for this DuckDB may be, in order: ``$VALUESCOPE_HTTPFS``, then
    the one inside an installed ``duckdb_extension_httpfs`` / ``duckdb_extensions`` / ``duckdb_ext``
    package (PyPI packages that ship DuckDB's extension binaries, one release per DuckDB version)."""
    out = []
    env = os.environ.get(ENV_HTTPFS, "").strip()
    if env:
        out.append(Path(env).expanduser())
    import importlib.util

    version = "v" + duckdb.__version__
    for package in ("duckdb_extension_httpfs", "duckdb_extensions", "duckdb_ext"):
        with contextlib.suppress(Exception):
            spec = importlib.util.find_spec(package)
            if spec is not None and spec.submodule_search_locations:
                for root in spec.submodule_search_locations:
                    out += sorted(Path(root).glob(f"**/{version}/**/httpfs.duckdb_extension*"))
                    out += sorted(Path(root).glob(f"**/{version}/httpfs.duckdb_extension*"))
    return list(dict.fromkeys(out))


def _crypto(con, path: str) -> str:
    """DuckDB writes encrypted files with OpenSSL from its httpfs extension (installed in DuckDB's
    extension folder, or an extension file named by ``$VALUESCOPE_HTTPFS`` or shipped by an installed
    package: loaded from the file, no network); without it, only with its built-in module when the
    fallback is asked for. Returns which one writes: ``openssl`` or ``mbedtls``."""
    try:
        con.execute("LOAD httpfs")
        return "openssl"
    except duckdb.Error:
        pass
    problems = []
    for candidate in httpfs_files():
        try:
            con.execute(f"LOAD '{_sql_text(candidate)}'")
            return "openssl"
        except duckdb.Error as exc:
            problems.append(f"{candidate}: {_first_line(exc)}")
    if os.environ.get(ENV_FALLBACK, "").strip().lower() == "mbedtls":
        con.execute("SET force_mbedtls_unsafe = 'true'")
        return "mbedtls"
    tried = f" ({'; '.join(problems)})" if problems else ""
    raise WarehouseError(
        f"cannot open the encrypted warehouse {path} for writing: DuckDB's httpfs extension (OpenSSL) is not "
        f"installed{tried}. Install it once where the internet can be reached (python -c \"import duckdb; "
        "duckdb.execute('INSTALL httpfs')\"), or point VALUESCOPE_HTTPFS at an httpfs.duckdb_extension file built "
        f"for DuckDB {duckdb.__version__}, or set VALUESCOPE_ENCRYPTION_FALLBACK=mbedtls to write with "
        "DuckDB's built-in crypto module (DuckDB does not consider it secure for writing)")


def _sql_text(value) -> str:
    """A path as the text of a single-quoted SQL literal (LOAD takes no bound parameter)."""
    return str(value).replace("'", "''")


def _key_error(path: str, exc: BaseException) -> WarehouseError | None:
    low = str(exc).lower()
    if "without a key" in low or ("encrypted" in low and "key" in low and "not encrypted" not in low
                                  and "wrong" not in low):
        return WarehouseError(f"cannot open the warehouse {path}: it is encrypted and no key was given. Set "
                              "VALUESCOPE_KEY (or VALUESCOPE_KEY_FILE, or encryption_key in the [valuescope] "
                              "section of .streamlit/secrets.toml) to its key")
    if "wrong encryption key" in low or "wrong key" in low:
        return WarehouseError(f"cannot open the warehouse {path}: the encryption key is wrong (it does not "
                              "open this file); nothing was read or changed")
    if "is not encrypted" in low:
        return WarehouseError(f"cannot open the warehouse {path}: a key is set but this file is not encrypted. "
                              "Unset VALUESCOPE_KEY to open it as it is, or make an encrypted copy with "
                              "`valuescope encrypt --db FILE --out NEW_FILE`")
    return None


def connect(path: str, *, read_only: bool = False, key: str | None | bool = True) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file ``path`` (``":memory:"``: a private in-memory one): the one place a
    warehouse is opened, so that opening options (encryption) are added here for every caller.
    ``key``: the encryption key (True: :func:`encryption_key`; None/False: none). Raises
    :class:`WarehouseError` (:class:`WarehouseLocked` for a lock) with advice."""
    if key is True:
        key = encryption_key(path) if path != ":memory:" else None
    if path != ":memory:":
        p = Path(path)
        if p.is_dir():
            raise WarehouseError(f"cannot open the warehouse {path}: it is a folder, not a file; "
                                 "give the path of a .duckdb file (--db)")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise open_error(path, exc) from None
    if key:
        return _connect_encrypted(path, key, read_only)
    try:
        return duckdb.connect(path, read_only=read_only)
    except (duckdb.Error, OSError) as exc:  # locked by another process, not a database, unreadable...
        raise _key_error(path, exc) or open_error(path, exc) from None


def _connect_encrypted(path: str, key: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    try:
        if not read_only:
            _crypto(con, path)
        with contextlib.suppress(duckdb.Error):
            con.execute("SET temp_file_encryption = true")
        options = "READ_ONLY, ENCRYPTION_KEY ?" if read_only else "ENCRYPTION_KEY ?"
        con.execute(f"ATTACH ? AS {CATALOG} ({options})", [path, key])
        con.execute(f"USE {CATALOG}")
    except (duckdb.Error, OSError) as exc:
        con.close()
        raise _key_error(path, exc) or open_error(path, exc) from None
    except BaseException:
        con.close()
        raise
    return con


class Warehouse:
    """A DuckDB file with the Valuescope schema applied.

    Use ``cursor()`` for reads and single statements, ``transaction()`` for
    anything that writes more than once, ``writer()`` around big writes.
    """

    def __init__(self, path: str | Path = ":memory:", read_only: bool = False, *, key: str | None | bool = True):
        self.path = str(path)
        if key is True:
            key = encryption_key(self.path) if self.path != ":memory:" else None
        #: whether the file is an encrypted DuckDB database (model files then live inside it too)
        self.encrypted = bool(key)
        self._con = connect(self.path, read_only=read_only, key=key)
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        self._writing: dict | None = None
        #: a count of the changes this object saw end (commits of ``transaction()``, ends of ``writer()``,
        #: :meth:`note_change`): a reader that remembered it can tell that nothing was written since
        self.changes = 0
        if self.path != ":memory:":
            clean_temp(self.temp_dir())
            try:  # DuckDB's spill files go to this process's own folder, removed at the next start
                self._con.execute("SET temp_directory = ?", [str(self.temp_dir() / f"duckdb-{os.getpid()}")])
            except duckdb.Error:
                pass
        if not read_only:
            try:
                self._migrate()
            except duckdb.Error as exc:
                self._con.close()
                raise open_error(self.path, exc) from None

    def temp_dir(self) -> Path:
        """The folder for this warehouse's temporary files ($VALUESCOPE_TMP or ``tmp/`` beside the file)."""
        return temp_dir(self.path)

    def temp_path(self, kind: str, suffix: str = "") -> Path:
        """A new temporary file name for ``kind`` (e.g. "ingest") in :meth:`temp_dir`, tagged with this
        process id so that a later start removes it when this process died without cleaning up."""
        folder = self.temp_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{kind}-{os.getpid()}-{secrets.token_hex(6)}{suffix}"

    def scratch_file(self, kind: str, suffix: str = "") -> "Path | MemoryFile":
        """Where a temporary copy of customer data goes (an upload, a load's decompressed or
        transcoded copy, a download being made): a new file in :meth:`temp_dir`, or, for an
        encrypted warehouse, a :class:`MemoryFile`, so that nothing of it is ever on disk in the clear
        (a system without memory files gets the temporary folder; the README says so)."""
        if self.encrypted and memory_files():
            return MemoryFile(f"{kind}{suffix}")
        return self.temp_path(kind, suffix)

    # -- connections -------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the shared connection (one per use / per thread)."""
        with self._lock:
            cur = self._con.cursor()
        if self.encrypted:  # a cursor starts in the in-memory catalog: point it at the attached warehouse
            cur.execute(f"USE {CATALOG}")
        return cur

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN ... COMMIT on a fresh cursor; ROLLBACK on any exception. A COMMIT that fails
        (a full disk...) has already ended the transaction: it raises a :class:`WarehouseError`
        saying nothing was written, never DuckDB's "cannot rollback - no transaction is active"."""
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            _rollback(cur)
            cur.close()
            raise
        try:
            cur.execute("COMMIT")
        except duckdb.TransactionException as exc:
            _rollback(cur)
            cur.close()
            if is_write_conflict(exc):
                raise  # callers that retry on a conflict look for this one
            raise storage_error(exc, "the change could not be saved") from None
        except duckdb.Error as exc:
            _rollback(cur)
            cur.close()
            raise storage_error(exc, "the change could not be saved") from None
        self.note_change()
        cur.close()

    def note_change(self) -> None:
        """Count a change made through this warehouse (see :attr:`changes`)."""
        with self._lock:
            self.changes += 1

    @contextlib.contextmanager
    def writer(self, what: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Take this process's turn for a big write (a load, a deletion): one at a time. A caller
        that has to wait gets ``on_wait(description of the write it waits for)`` once, then waits."""
        if not self._writer.acquire(blocking=False):
            held = self._writing or {}
            if on_wait is not None:
                since = time.strftime("%H:%M:%S", time.localtime(held.get("since", time.time())))
                on_wait(f"{held.get('what', 'another change')} (since {since})")
            self._writer.acquire()
        self._writing = {"what": what, "since": time.time()}
        try:
            yield
        finally:
            self._writing = None
            self._writer.release()
            self.note_change()

    def writing(self) -> str | None:
        """What big write runs in this process now (None: none)."""
        held = self._writing
        return None if held is None else held.get("what")

    #: set by :meth:`close`
    closed = False

    def close(self) -> None:
        self.closed = True
        self._con.close()

    # -- schema ------------------------------------------------------------
    def schema_version(self) -> int:
        cur = self.cursor()
        try:
            row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
        except duckdb.CatalogException:
            return 0
        return int(row[0] or 0)

    def _migrate(self) -> None:
        cur = self.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
        )
        done = {r[0] for r in cur.execute("SELECT version FROM schema_version").fetchall()}
        for version, name, sql in sorted(MIGRATIONS, key=lambda m: m[0]):
            if version in done:
                continue
            with self.transaction() as tx:
                for statement in _split_sql(sql):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name]
                )

    # -- small helpers used everywhere ---------------------------------------
    def datasets(self) -> list[str]:
        """The datasets the current caller may see (``analytics.access``), by name."""
        names = [r[0] for r in self.cursor().execute("SELECT name FROM datasets ORDER BY name").fetchall()]
        allowed = self._visible()
        return names if allowed is None else [n for n in names if n in allowed]

    def has_dataset(self, name: str) -> bool:
        """Whether ``name`` is a dataset the current caller may see."""
        row = self.cursor().execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()
        if not row[0]:
            return False
        allowed = self._visible()
        return allowed is None or name in allowed

    def exists_dataset(self, name: str) -> bool:
        """Whether a dataset ``name`` exists, visible to the caller or not (a load must not create a
        second one beside a dataset the caller cannot see)."""
        return bool(self.cursor().execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()[0])

    def _visible(self) -> set[str] | None:
        from analytics.access import visible_datasets

        return visible_datasets(self)

    def require_dataset(self, name: str) -> None:
        if not self.has_dataset(name):
            known = ", ".join(self.datasets()) or "none yet"
            raise WarehouseError(f"no dataset named {name!r} (datasets: {known})")

    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.cursor().execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        self.cursor().execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [key, value]
        )


def _rollback(cur) -> None:
    """ROLLBACK when a transaction is still open (a failed COMMIT has already ended it)."""
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _split_sql(sql: str) -> list[str]:
    """Split a migration script on ';' at line ends (migrations contain no literals with ';')."""
    return [s.strip() for s in sql.split(";\n") if s.strip() and not s.strip().startswith("--")]


_WAREHOUSES: dict[str, Warehouse] = {}
_WAREHOUSES_LOCK = threading.Lock()


def get_warehouse(path: str | Path | None = None, *, wait: bool = False,
                  on_wait: Callable[[WarehouseLocked], None] | None = None,
                  stop: threading.Event | None = None) -> Warehouse:
    """The process-wide warehouse for ``path`` (default: ``default_db_path()``).

    ``wait``: when another process has the file open, wait until it closes it (``on_wait`` is
    called once with the lock error, e.g. to say so; ``stop`` set ends the wait with that error)
    instead of raising :class:`WarehouseLocked` at once."""
    if path is None:
        path = default_db_path()
    key = ":memory:" if str(path) == ":memory:" else str(Path(path).resolve())
    told = False
    while True:
        with _WAREHOUSES_LOCK:
            wh = _WAREHOUSES.get(key)
            if wh is not None:
                return wh
            try:
                wh = Warehouse(key)
            except WarehouseLocked as exc:
                if not wait or (stop is not None and stop.is_set()):
                    raise
                locked = exc
            else:
                _WAREHOUSES[key] = wh
                return wh
        if not told and on_wait is not None:
            on_wait(locked)
            told = True
        # the other process holds the file: look again shortly (no event crosses processes)
        (stop or threading.Event()).wait(LOCK_POLL_S)


#: how often a waiting process looks whether the warehouse file is free again
LOCK_POLL_S = 0.5
