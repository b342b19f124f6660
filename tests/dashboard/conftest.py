"""AppTest fixtures: each test gets its own warehouse file and empty Streamlit caches."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st

from analytics import warehouse as warehouse_mod
from analytics.warehouse import get_warehouse

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 60


def _close(path: Path) -> None:
    key = str(path.resolve())
    with warehouse_mod._WAREHOUSES_LOCK:
        wh = warehouse_mod._WAREHOUSES.pop(key, None)
    if wh is not None:
        wh.close()


@pytest.fixture
def app_wh(tmp_path, monkeypatch):
    """The warehouse the app under test will open (VALUESCOPE_DB), empty, sample not loaded."""
    db = tmp_path / "app.duckdb"
    monkeypatch.setenv("VALUESCOPE_DB", str(db))
    monkeypatch.setenv("VALUESCOPE_SKIP_SAMPLE", "1")
    # pages compute what the preparation step has not stored yet themselves, in the script run
    # (no background thread): each test sees its data prepared on first read
    monkeypatch.setenv("VALUESCOPE_PREPARE", "inline")
    st.cache_data.clear()
    st.cache_resource.clear()
    wh = get_warehouse(db)
    yield wh
    from analytics import prepare

    prepare.stop_all(wh)  # a test of background preparation leaves no job running
    st.cache_data.clear()
    st.cache_resource.clear()
    _close(db)


def insert_events(wh, dataset: str, rows: list[tuple]) -> pd.DataFrame:
    """Insert (customer_id, event_time, event_type, order_id, revenue) rows into ``dataset``."""
    df = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "order_id", "revenue"])
    df.insert(0, "dataset", dataset)
    with wh.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [dataset])
        tx.register("incoming", df)
        tx.execute(
            "INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, revenue) "
            "SELECT dataset, customer_id, event_time, event_type, order_id, revenue FROM incoming"
        )
        # a fake ingestion record so that the data version moves like after a real load
        tx.execute(
            "INSERT INTO ingestions (id, dataset, file_name, rows_read, rows_loaded, rows_rejected, rows_duplicate) "
            "VALUES (nextval('ingestion_id_seq'), ?, 'test', ?, ?, 0, 0)",
            [dataset, len(df), len(df)],
        )
    return df


def synthetic_rows(n_customers: int, seed: int = 1) -> list[tuple]:
    import numpy as np

    rng = np.random.default_rng(seed)
    start = dt.datetime(2023, 1, 1)
    rows = []
    for c in range(n_customers):
        for _ in range(int(rng.integers(1, 6))):
            t = start + dt.timedelta(hours=int(rng.integers(0, 24 * 400)))
            kind = str(rng.choice(["view", "cart", "purchase", "purchase", "return"]))
            order = f"o{c}-{rng.integers(0, 3)}" if kind in ("purchase", "return") else None
            rev = float(rng.integers(5, 200)) if kind in ("purchase", "return") else None
            rows.append((f"cust{c:05d}", t, kind, order, rev))
    return rows
