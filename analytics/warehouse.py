"""The embedded DuckDB warehouse.

One DuckDB file per installation; one connection per process (``get_warehouse``)
and a ``cursor()`` per use, which is what DuckDB documents as safe across threads
(Streamlit runs every browser session in its own thread). Every write that spans
several statements goes through ``Warehouse.transaction()`` so that a failure
leaves the file exactly as it was.

Schema changes are versioned migrations (``analytics.migrations``), applied in
order on open and recorded in ``schema_version``.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import Iterator

import duckdb

from analytics.migrations import MIGRATIONS

ENV_DB = "VALUESCOPE_DB"
DEFAULT_DB = Path("data") / "valuescope.duckdb"

EVENT_TYPES = ("view", "search", "cart", "purchase", "return", "review")

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class WarehouseError(RuntimeError):
    """A problem with the warehouse a user can act on (message is user-facing)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def storage_error(exc: BaseException, what: str) -> WarehouseError:
    """A user-facing :class:`WarehouseError` for a DuckDB/OS failure while ``what`` (e.g. "the load
    failed"): a full disk, a full temporary folder, a damaged file and a lock held by another
    process each get their own advice; anything else its first line."""
    text = str(exc)
    low = text.lower()
    if "no space left" in low or "disk full" in low or "not enough space" in low or "enospc" in low:
        if "temp" in low or ".tmp" in low:
            return WarehouseError(f"{what}: the temporary folder is full ({_first_line(exc)}); free space there "
                                  "(or set VALUESCOPE_TMP to a folder with room) and try again; nothing was changed")
        return WarehouseError(f"{what}: the disk holding the warehouse is full; free some space and try again "
                              "(nothing was changed)")
    if "out of memory" in low or "could not allocate" in low:
        return WarehouseError(f"{what}: not enough memory ({_first_line(exc)}); nothing was changed")
    if "corrupt" in low or "checksum" in low or "invalid block" in low or "bad block" in low:
        return WarehouseError(f"{what}: the warehouse file is damaged ({_first_line(exc)}); restore it from a "
                              "backup or export what can still be read")
    if "could not set lock" in low or "conflicting lock" in low:
        return WarehouseError(f"{what}: another process holds the warehouse ({_first_line(exc)})")
    return WarehouseError(f"{what}: {_first_line(exc)}")


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


class Warehouse:
    """A DuckDB file with the Valuescope schema applied.

    Use ``cursor()`` for reads and single statements, ``transaction()`` for
    anything that writes more than once.
    """

    def __init__(self, path: str | Path = ":memory:", read_only: bool = False):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:  # locked by another process, unreadable...
            raise WarehouseError(
                f"cannot open the warehouse {self.path}: {exc}. "
                "Only one process can write a DuckDB file at a time; stop the other "
                "Valuescope process (app or CLI) or pass another --db."
            ) from exc
        self._lock = threading.Lock()
        if not read_only:
            self._migrate()

    # -- connections -------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the shared connection (one per use / per thread)."""
        with self._lock:
            return self._con.cursor()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN ... COMMIT on a fresh cursor; ROLLBACK on any exception."""
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            cur.close()
            raise
        else:
            cur.execute("COMMIT")
            cur.close()

    def close(self) -> None:
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
        return [r[0] for r in self.cursor().execute("SELECT name FROM datasets ORDER BY name").fetchall()]

    def has_dataset(self, name: str) -> bool:
        row = self.cursor().execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()
        return bool(row[0])

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


def _split_sql(sql: str) -> list[str]:
    """Split a migration script on ';' at line ends (migrations contain no literals with ';')."""
    return [s.strip() for s in sql.split(";\n") if s.strip() and not s.strip().startswith("--")]


_WAREHOUSES: dict[str, Warehouse] = {}
_WAREHOUSES_LOCK = threading.Lock()


def get_warehouse(path: str | Path | None = None) -> Warehouse:
    """The process-wide warehouse for ``path`` (default: ``default_db_path()``)."""
    if path is None:
        path = default_db_path()
    key = ":memory:" if str(path) == ":memory:" else str(Path(path).resolve())
    with _WAREHOUSES_LOCK:
        wh = _WAREHOUSES.get(key)
        if wh is None:
            wh = Warehouse(key)
            _WAREHOUSES[key] = wh
        return wh
