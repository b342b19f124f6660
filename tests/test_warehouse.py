import threading

import pytest

from analytics.migrations import MIGRATIONS
from analytics.warehouse import Warehouse, WarehouseError, get_warehouse, quote_ident


def test_migrations_applied_on_open(wh):
    assert wh.schema_version() == max(v for v, _, _ in MIGRATIONS)
    tables = {r[0] for r in wh.cursor().execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"datasets", "events", "ingestions", "rejects", "settings"} <= tables


def test_reopen_does_not_reapply(tmp_path):
    path = tmp_path / "w.duckdb"
    w = Warehouse(path)
    w.cursor().execute("INSERT INTO datasets (name) VALUES ('a')")
    w.close()
    w2 = Warehouse(path)
    assert w2.datasets() == ["a"]
    n = w2.cursor().execute("SELECT count(*) FROM schema_version").fetchone()[0]
    assert n == len(MIGRATIONS)
    w2.close()


def test_transaction_rolls_back_every_statement(wh):
    with pytest.raises(RuntimeError):
        with wh.transaction() as tx:
            tx.execute("INSERT INTO datasets (name) VALUES ('x')")
            tx.execute("INSERT INTO settings VALUES ('k', 'v')")
            raise RuntimeError("boom")
    assert wh.datasets() == []
    assert wh.setting("k") is None


def test_quote_ident_refuses_sql():
    assert quote_ident("revenue") == '"revenue"'
    for bad in ['x"); DROP TABLE events; --', "a b", "", "1abc", None]:
        with pytest.raises(WarehouseError):
            quote_ident(bad)


def test_cursor_per_thread_is_safe(wh):
    wh.cursor().execute("CREATE TABLE t (i INTEGER)")
    errors = []

    def work(k):
        try:
            for i in range(50):
                wh.cursor().execute("INSERT INTO t VALUES (?)", [k * 1000 + i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert wh.cursor().execute("SELECT count(*) FROM t").fetchone()[0] == 200


def test_get_warehouse_is_one_per_path(tmp_path):
    a = get_warehouse(tmp_path / "x.duckdb")
    b = get_warehouse(str(tmp_path / "x.duckdb"))
    assert a is b
