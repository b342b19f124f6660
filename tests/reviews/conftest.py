"""A small generated sample with review texts and planted truth, loaded and scored once per module."""
from __future__ import annotations

import pandas as pd
import pytest

from analytics.ingest import ingest
from analytics.warehouse import Warehouse
from sample_data.generator import SampleConfig, generate

N_CUSTOMERS = 1000


@pytest.fixture(scope="package")
def generated(tmp_path_factory):
    """(warehouse with dataset "g" and its sentiment scored, events frame, truth frame)."""
    from analytics.reviews.sentiment import score_dataset_reviews

    d = tmp_path_factory.mktemp("reviews_sample")
    ev, tr = d / "events.csv.gz", d / "truth.csv"
    generate(ev, tr, SampleConfig(customers=N_CUSTOMERS, seed=5))
    wh = Warehouse(":memory:")
    ingest(wh, ev, "g")
    run = score_dataset_reviews(wh, "g")
    events = pd.read_csv(ev, dtype={"customer_id": str, "text": str}, parse_dates=["event_time"])
    truth = pd.read_csv(tr, dtype={"customer_id": str}).set_index("customer_id")
    yield wh, events, truth, run
    wh.close()
