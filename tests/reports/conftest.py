"""Reports tests: one warehouse with the bundled sample per module (loading it takes ~2 s)."""
from __future__ import annotations

import pandas as pd
import pytest

from analytics.warehouse import Warehouse

AS_OF = "2025-09-30"
HTML_NAME = "<img src=x onerror=alert(1)>"
HTML_DESCRIPTION = '<iframe srcdoc="<script>parent.alert(1)</script>">'
BIG = {"op": "and", "conditions": [{"field": "net_revenue", "operator": ">=", "value": 500}]}


@pytest.fixture(scope="module")
def sample_wh():
    from analytics.bootstrap import ensure_default_dataset
    from analytics.segments import store

    wh = Warehouse(":memory:")
    if ensure_default_dataset(wh) is None:
        pytest.skip("the bundled sample is missing")
    store.save_segment(wh, HTML_NAME, BIG, description=HTML_DESCRIPTION)
    store.save_segment(wh, "nobody", {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">", "value": 1e12}]})
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def sample_events(sample_wh) -> pd.DataFrame:
    return sample_wh.cursor().execute("SELECT * FROM events WHERE dataset = 'sample'").df()
