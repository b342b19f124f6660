"""AppTest: a warehouse file that opens but is cut short (or damaged) further in is a message on
the page, never a traceback: the failure comes when the sidebar first reads the datasets."""
from __future__ import annotations

import streamlit as st
from streamlit.testing.v1 import AppTest

from analytics import warehouse as warehouse_mod
from analytics.warehouse import Warehouse
from tests.dashboard.conftest import APP, TIMEOUT


def _cut_short(path) -> None:
    # the catalog is rewritten into blocks freed early in the file (as after loads and deletes), so
    # the file cut in half still opens; reading the tables then runs past its end
    wh = Warehouse(path)
    cur = wh.cursor()
    cur.execute("CREATE TABLE filler AS SELECT range AS x, 'pad' || range AS y FROM range(300000)")
    cur.execute("CHECKPOINT")
    cur.execute("INSERT INTO datasets (name) VALUES ('shop')")
    cur.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) SELECT 'shop', "
                "'c' || (range % 1000), TIMESTAMP '2024-01-01' + INTERVAL (range % 300) DAY, 'purchase', range "
                "FROM range(300000)")
    cur.execute("CHECKPOINT")
    cur.execute("DROP TABLE filler")
    cur.execute("CHECKPOINT")
    cur.execute("INSERT INTO settings VALUES ('k', 'v')")
    wh.close()
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)


def test_a_warehouse_cut_short_after_it_opened_is_a_message(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    _cut_short(db)
    monkeypatch.setenv("VALUESCOPE_DB", str(db))
    monkeypatch.setenv("VALUESCOPE_SKIP_SAMPLE", "1")
    monkeypatch.setenv("VALUESCOPE_PREPARE", "inline")
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error]
        assert any(e.startswith("The warehouse could not be read: the warehouse file is cut short")
                   and "restore it from a backup" in e for e in errors), errors
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
        with warehouse_mod._WAREHOUSES_LOCK:
            left = warehouse_mod._WAREHOUSES.pop(str(db.resolve()), None)
        if left is not None:
            left.close()
