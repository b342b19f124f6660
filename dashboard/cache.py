"""The one place that caches: the warehouse connection and query results.

Pages call these instead of the library directly when a result is worth keeping
across reruns. ``st.cache_data`` entries are keyed by the dataset's
``data_version`` so they refresh after an ingest or delete.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.warehouse import Warehouse, default_db_path, get_warehouse


@st.cache_resource(show_spinner=False)
def _warehouse(path: str) -> Warehouse:
    wh = get_warehouse(path)
    from analytics.bootstrap import ensure_default_dataset

    ensure_default_dataset(wh)
    return wh


def warehouse() -> Warehouse:
    """The process's warehouse (the sample data set is loaded on first start)."""
    return _warehouse(str(default_db_path().resolve()))


def data_version(dataset: str | None) -> str:
    """Changes whenever the dataset's rows change (used as a cache key)."""
    if not dataset:
        return ""
    row = warehouse().cursor().execute(
        "SELECT coalesce(max(id), 0), count(*) FROM ingestions WHERE dataset = ?", [dataset]
    ).fetchone()
    upd = warehouse().cursor().execute(
        "SELECT updated_at FROM datasets WHERE name = ?", [dataset]
    ).fetchone()
    return f"{row[0]}:{row[1]}:{upd[0] if upd else ''}"


@st.cache_data(show_spinner=False, max_entries=64)
def query_df(sql: str, params: tuple, version: str) -> pd.DataFrame:
    """Run a read-only, parameterised query; cached per ``version``."""
    return warehouse().cursor().execute(sql, list(params)).df()
