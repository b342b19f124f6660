"""An encrypted warehouse writes no customer data in the clear, not even for a moment: uploads and a
load's decompressed or transcoded copy are held in memory (or decompressed by DuckDB as it reads),
and fitted models are made and read back in memory. Every file under the data folder is scanned at
each step of a load (its progress calls) and at the moment a model is read back."""
from __future__ import annotations

import builtins
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import warehouse as warehouse_mod
from analytics.bootstrap import SAMPLE_FILE
from analytics.ingest import ingest
from analytics.warehouse import MemoryFile, Warehouse
from tests.test_warehouse_encryption import KEY, _sample_ids

pytestmark = pytest.mark.skipif(not warehouse_mod.memory_files(), reason="memory files need Linux (memfd)")


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("VALUESCOPE_KEY", KEY)
    monkeypatch.setenv("VALUESCOPE_ENCRYPTION_FALLBACK", "mbedtls")
    monkeypatch.delenv("VALUESCOPE_KEY_FILE", raising=False)
    monkeypatch.delenv("VALUESCOPE_TMP", raising=False)


class Watch:
    """Scans every file under ``folder`` for ``needles`` whenever :meth:`scan` runs, and records every
    file Python opens for writing there."""

    def __init__(self, folder: Path, needles: list[str], monkeypatch):
        self.folder, self.needles = folder.resolve(), [n.encode() for n in needles]
        self.scans, self.found, self.writes = 0, [], []
        real_open = builtins.open

        def watched_open(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, Path)) and any(c in str(mode) for c in "wax+"):
                p = Path(file).resolve()
                if self.folder in p.parents:
                    self.writes.append(str(p))
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", watched_open)

    def scan(self, *_args) -> None:
        self.scans += 1
        for f in self.folder.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                self.found += [(f.name, n.decode()) for n in self.needles if n in data]


def _cp1252_orders(path: Path, n: int = 400) -> list[str]:
    """Orders in Windows-1252 (a 'Café' category makes it so), customer ids CUSTQ7xxxxx."""
    ids = [f"CUSTQ7{i:05d}" for i in range(n)]
    rows = [f"{c},2025-0{1 + i % 9}-1{i % 10},{10 + i % 50}.5,Café" for i, c in enumerate(ids)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("customer_id,order_date,revenue,category\n" + "\n".join(rows) + "\n").encode("cp1252"))
    return ids


def _upload(data: bytes) -> MemoryFile:
    """An upload as the Data page keeps it for an encrypted warehouse."""
    mf = MemoryFile("upload")
    with mf.open("wb") as fh:
        fh.write(data)
    return mf


@pytest.mark.parametrize("source", ["gzip upload", "gzip file", "cp1252 upload", "cp1252 file"])
def test_loads_write_no_customer_id_in_the_clear(keyed, tmp_path, monkeypatch, source):
    outside = tmp_path / "incoming"
    if source.startswith("gzip"):
        ids, original = _sample_ids(100), Path(SAMPLE_FILE)
    else:
        original = outside / "orders.csv"
        ids = _cp1252_orders(original)
    data_dir = tmp_path / "data"
    wh = Warehouse(data_dir / "w.duckdb")
    assert wh.encrypted
    watch = Watch(data_dir, ids, monkeypatch)
    upload = _upload(original.read_bytes()) if source.endswith("upload") else None
    result = ingest(wh, upload.path if upload else original, "shop", progress=watch.scan,
                    file_name=original.name)
    watch.scan()
    wh.cursor().execute("CHECKPOINT")
    watch.scan()
    assert watch.scans >= 5 and not watch.found and not watch.writes, (watch.found[:5], watch.writes)
    # the load itself is the one an unencrypted warehouse makes of the same file
    monkeypatch.delenv("VALUESCOPE_KEY")
    plain = Warehouse(tmp_path / "plain" / "p.duckdb")
    expected = ingest(plain, original, "shop")
    assert (result.rows_loaded, result.rows_rejected) == (expected.rows_loaded, expected.rows_rejected)
    q = "SELECT count(DISTINCT customer_id), round(sum(revenue), 2) FROM events"
    assert wh.cursor().execute(q).fetchone() == plain.cursor().execute(q).fetchone()
    assert {r[0] for r in wh.cursor().execute(
        "SELECT customer_id FROM events WHERE list_contains(?, customer_id)", [ids]).fetchall()} == set(ids)
    if upload:
        upload.close()
    wh.close()
    plain.close()


def test_the_scan_sees_a_copy_in_the_clear(keyed, tmp_path, monkeypatch):
    """The same watch finds the ids when the transcoded copy goes to the data folder's tmp/ (as it
    does where memory files are not available): the check above can fail."""
    original = tmp_path / "incoming" / "orders.csv"
    ids = _cp1252_orders(original)
    data_dir = tmp_path / "data"
    wh = Warehouse(data_dir / "w.duckdb")
    monkeypatch.setattr(warehouse_mod, "memory_files", lambda: False)
    watch = Watch(data_dir, ids, monkeypatch)
    ingest(wh, original, "shop", progress=watch.scan)
    assert watch.found and any(Path(w).parent.name == "tmp" for w in watch.writes)
    wh.close()


def test_models_are_made_and_read_back_in_memory(keyed, tmp_path, monkeypatch):
    """A LightGBM and an LSTM model saved into an encrypted warehouse and loaded back: their bytes are
    never in a file under the data folder, at saving or at the moment they are read back, and they
    predict as before."""
    import lightgbm as lgb

    from analytics.predict import registry
    from analytics.predict.gbm import LightGBMValueModel
    from analytics.predict.lstm import LSTMValueModel
    from tests.predict.test_lstm import planted as planted_sequences

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"spend_CUSTQ7": rng.gamma(2, 30, 400), "orders": rng.poisson(3, 400).astype(float)})
    y = X["spend_CUSTQ7"] * 0.3 + rng.normal(0, 1, 400).clip(0)
    gbm = LightGBMValueModel(n_estimators=20, random_state=0).fit(X, y.clip(0), (y < 15).astype(float))
    seq, static, yl, _ = planted_sequences(60, 8, seed=1)
    lstm = LSTMValueModel(epochs=1, batch_size=32, device="cpu", num_threads=1).fit(seq, static, yl)
    needles = [gbm.to_files()["value.txt"][:400].decode(), "spend_CUSTQ7"]
    lstm_bytes = lstm.to_files()["weights.pt"]

    class Result:
        info = {"dataset": "shop", "calibration_end": "2025-01-31", "holdout_end": "2025-02-28", "period": "weeks"}
        metrics = pd.DataFrame({"rmse": [1.0, 1.0]}, index=["lightgbm", "lstm"])
        models = {"lightgbm": gbm, "lstm": lstm}

    data_dir = tmp_path / "data"
    wh = Warehouse(data_dir / "w.duckdb")
    watch = Watch(data_dir, needles, monkeypatch)
    run_id = registry.save_backtest(wh, Result())
    wh.cursor().execute("CHECKPOINT")
    watch.scan()
    real_booster = lgb.Booster.__init__

    def booster(self, *args, **kwargs):  # the moment the model is read back
        watch.scan()
        assert kwargs.get("model_file") is None
        real_booster(self, *args, **kwargs)

    monkeypatch.setattr(lgb.Booster, "__init__", booster)
    loaded = registry.load_model(wh, run_id, "lightgbm")
    loaded_lstm = registry.load_model(wh, run_id, "lstm", device="cpu")
    watch.scan()
    assert watch.scans >= 4 and not watch.found and not watch.writes, (watch.found, watch.writes)
    assert not any(lstm_bytes[-64:] in f.read_bytes() for f in data_dir.rglob("*") if f.is_file())
    assert not (data_dir / "models").exists() and not list((data_dir / "tmp").glob("model-*"))
    np.testing.assert_array_equal(loaded.predict_value(X), gbm.predict_value(X))
    np.testing.assert_allclose(loaded_lstm.predict_value(seq, static), lstm.predict_value(seq, static), rtol=1e-6)
    wh.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_download_is_made_in_memory(keyed, tmp_path, monkeypatch, fmt):
    """The Data page's download of an encrypted warehouse's dataset: made in a memory file, with the
    same bytes as an export to a file, and nothing under the data folder."""
    from analytics.ingest import export_dataset

    original = tmp_path / "incoming" / "orders.csv"
    ids = _cp1252_orders(original, 50)
    wh = Warehouse(tmp_path / "data" / "w.duckdb")
    ingest(wh, original, "shop")
    watch = Watch(tmp_path / "data", ids, monkeypatch)
    scratch = wh.scratch_file("export", f".{fmt}")
    assert isinstance(scratch, MemoryFile)
    export_dataset(wh, "shop", scratch, fmt)
    made = scratch.read_bytes()
    scratch.close()
    watch.scan()
    assert not watch.found and not watch.writes
    reference = export_dataset(wh, "shop", tmp_path / f"shop.{fmt}", fmt)
    if fmt == "csv":
        assert made == reference.read_bytes() and all(i.encode() in made for i in ids)
    else:
        import io

        pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(made)), pd.read_parquet(reference))
    wh.close()
