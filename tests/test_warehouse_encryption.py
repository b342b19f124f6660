"""An encrypted warehouse: the sample's customer ids are not in the file's bytes; a missing or wrong
key, a key on a plain file and a key file beside the warehouse each get a clear message."""
from __future__ import annotations

import gzip

import duckdb
import pandas as pd
import pytest

from analytics.bootstrap import SAMPLE_FILE
from analytics.warehouse import Warehouse, WarehouseError

KEY = "correct horse battery staple"


@pytest.fixture
def keyed(monkeypatch):
    """The key in the environment; DuckDB's built-in crypto module allowed to write (no httpfs here)."""
    monkeypatch.setenv("VALUESCOPE_KEY", KEY)
    monkeypatch.setenv("VALUESCOPE_ENCRYPTION_FALLBACK", "mbedtls")
    monkeypatch.delenv("VALUESCOPE_KEY_FILE", raising=False)


def _sample_ids(n: int = 300) -> list[str]:
    """Customer ids of the bundled sample (first rows of the file)."""
    head = pd.read_csv(gzip.open(SAMPLE_FILE, "rt"), nrows=5000, dtype=str)
    col = next(c for c in head.columns if "user" in c.lower() or "customer" in c.lower())
    ids = list(dict.fromkeys(head[col].dropna()))
    return [i for i in ids if len(i) >= 5][:n]


def _bytes(folder) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


def test_sample_customer_ids_are_not_in_the_encrypted_files(keyed, tmp_path):
    from analytics.ingest import ingest

    ids = _sample_ids()
    assert len(ids) >= 50
    db = tmp_path / "enc" / "w.duckdb"
    wh = Warehouse(db)
    assert wh.encrypted
    ingest(wh, SAMPLE_FILE, "sample")
    stored = {r[0] for r in wh.cursor().execute(
        "SELECT DISTINCT customer_id FROM events WHERE list_contains(?, customer_id)", [ids]).fetchall()}
    assert stored == set(ids)  # they are in the warehouse...
    wh.close()
    data = _bytes(db.parent)
    assert len(data) > 100_000
    leaked = [i for i in ids if i.encode() in data]
    assert not leaked, leaked[:5]  # ...but not in its bytes
    # the same check finds them in a plain DuckDB file (the test can fail)
    plain = tmp_path / "plain" / "p.duckdb"
    plain.parent.mkdir()
    con = duckdb.connect(str(plain))
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS customer_id", [ids])
    con.close()
    assert all(i.encode() in _bytes(plain.parent) for i in ids[:20])
    # and it opens again with the key
    again = Warehouse(db)
    assert again.datasets() == ["sample"]
    again.close()


def test_missing_wrong_and_unneeded_keys_have_clear_messages(keyed, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    Warehouse(db).close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    monkeypatch.delenv("VALUESCOPE_KEY")
    with pytest.raises(WarehouseError, match="it is encrypted and no key was given. Set VALUESCOPE_KEY"):
        Warehouse(db)
    monkeypatch.setenv("VALUESCOPE_KEY", "not the key")
    with pytest.raises(WarehouseError, match="the encryption key is wrong"):
        Warehouse(db)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # nothing written
    plain = tmp_path / "plain.duckdb"
    Warehouse(plain, key=None).close()
    plain_bytes = plain.read_bytes()
    with pytest.raises(WarehouseError, match="a key is set but this file is not encrypted"):
        Warehouse(plain)
    assert plain.read_bytes() == plain_bytes


def test_key_from_a_file_or_the_secrets_file_never_beside_the_warehouse(tmp_path, monkeypatch):
    from analytics.warehouse import encryption_key

    monkeypatch.delenv("VALUESCOPE_KEY", raising=False)
    monkeypatch.delenv("VALUESCOPE_KEY_FILE", raising=False)
    monkeypatch.setenv("VALUESCOPE_SECRETS", str(tmp_path / "none.toml"))
    assert encryption_key(tmp_path / "data" / "w.duckdb") is None
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[valuescope]\nencryption_key = "from-secrets"\n')
    monkeypatch.setenv("VALUESCOPE_SECRETS", str(secrets))
    assert encryption_key(tmp_path / "data" / "w.duckdb") == "from-secrets"
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "k").write_text("from-file\n")
    monkeypatch.setenv("VALUESCOPE_KEY_FILE", str(tmp_path / "keys" / "k"))
    assert encryption_key(tmp_path / "data" / "w.duckdb") == "from-file"
    with pytest.raises(WarehouseError, match="in the warehouse's own folder"):
        encryption_key(tmp_path / "keys" / "w.duckdb")


def test_writing_without_httpfs_needs_the_explicit_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUESCOPE_KEY", KEY)
    monkeypatch.delenv("VALUESCOPE_ENCRYPTION_FALLBACK", raising=False)
    con = duckdb.connect(":memory:")
    try:
        con.execute("LOAD httpfs")
        pytest.skip("httpfs is installed here: encrypted writes use OpenSSL")
    except duckdb.Error:
        pass
    finally:
        con.close()
    with pytest.raises(WarehouseError, match="httpfs extension"):
        Warehouse(tmp_path / "w.duckdb")


def test_an_httpfs_file_that_does_not_load_is_named(tmp_path, monkeypatch):
    """VALUESCOPE_HTTPFS names an extension file to load without network; one that is not an httpfs
    build for this DuckDB is named with DuckDB's reason, and nothing is written."""
    monkeypatch.setenv("VALUESCOPE_KEY", KEY)
    monkeypatch.delenv("VALUESCOPE_ENCRYPTION_FALLBACK", raising=False)
    con = duckdb.connect(":memory:")
    try:
        con.execute("LOAD httpfs")
        pytest.skip("httpfs is installed here: encrypted writes use OpenSSL")
    except duckdb.Error:
        pass
    finally:
        con.close()
    fake = tmp_path / "ext" / "httpfs.duckdb_extension"
    fake.parent.mkdir()
    fake.write_bytes(b"not an extension" * 64)
    monkeypatch.setenv("VALUESCOPE_HTTPFS", str(fake))
    from analytics.warehouse import httpfs_files

    assert httpfs_files()[0] == fake
    with pytest.raises(WarehouseError, match="httpfs extension") as err:
        Warehouse(tmp_path / "w.duckdb")
    assert str(fake) in str(err.value) and "VALUESCOPE_HTTPFS" in str(err.value)
    assert not (tmp_path / "w.duckdb").exists()


def test_encrypt_command_makes_an_encrypted_copy(tmp_path, monkeypatch, capsys):
    from analytics.cli import main

    src = tmp_path / "plain.duckdb"
    wh = Warehouse(src, key=None)
    wh.cursor().execute("INSERT INTO datasets (name) VALUES ('shop')")
    wh.cursor().execute("INSERT INTO events (dataset, customer_id, event_time, event_type) "
                        "VALUES ('shop', 'CUSTOMER-ZX81', TIMESTAMP '2025-01-01', 'purchase')")
    wh.close()
    monkeypatch.setenv("VALUESCOPE_KEY", KEY)
    monkeypatch.setenv("VALUESCOPE_ENCRYPTION_FALLBACK", "mbedtls")
    out = tmp_path / "safe" / "enc.duckdb"
    out.parent.mkdir()
    assert main(["encrypt", "--db", str(src), "--out", str(out)]) == 0
    assert b"CUSTOMER-ZX81" not in out.read_bytes()
    enc = Warehouse(out)
    assert enc.cursor().execute("SELECT customer_id FROM events").fetchall() == [("CUSTOMER-ZX81",)]
    enc.close()
    assert main(["encrypt", "--db", str(src), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_model_files_live_inside_an_encrypted_warehouse(keyed, tmp_path):
    """A fitted model's files go into ``model_files``, not beside the warehouse, and load back."""
    from analytics.predict import registry

    class Fake:
        def to_files(self):
            return {"model.json": b'{"secret": "CUSTOMER-Q7"}'}

        def get_params(self):
            return {}

    class Result:
        info = {"dataset": "shop", "calibration_end": "2025-01-31", "holdout_end": "2025-02-28", "period": "weeks"}
        metrics = pd.DataFrame({"rmse": [1.0]}, index=["lightgbm"])
        models = {"lightgbm": Fake()}

    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    run_id = registry.save_backtest(wh, Result())
    path = wh.cursor().execute("SELECT path FROM predictor_models WHERE run_id = ?", [run_id]).fetchone()[0]
    assert path.startswith(registry.IN_WAREHOUSE)
    assert not (tmp_path / "models").exists()
    wh.cursor().execute("CHECKPOINT")
    assert b"CUSTOMER-Q7" not in _bytes(tmp_path)  # nothing in the clear beside the warehouse
    assert registry._files_in_warehouse(wh, run_id, "lightgbm") == {"model.json": b'{"secret": "CUSTOMER-Q7"}'}
    registry.delete_run(wh, run_id)
    assert wh.cursor().execute("SELECT count(*) FROM model_files").fetchone()[0] == 0
    wh.close()
