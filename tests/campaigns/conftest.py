"""Fixtures for the campaigns tests: a small seeded shop (purchases and views of a few
hundred customers with different buying rates) loaded straight into an in-memory
warehouse, and its customer frame as of the last day."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analytics.warehouse import Warehouse

AS_OF = "2024-12-31"


def make_events(n_customers: int = 400, seed: int = 7) -> pd.DataFrame:
    """Events of ``n_customers`` customers over 2024: ~15% never buy (views only), the
    others buy at individual Poisson rates with lognormal order values."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 1, 1)
    rows = []
    for i in range(n_customers):
        cid = f"c{i:04d}"
        first = rng.integers(0, 300)
        rows.append((cid, start + dt.timedelta(days=int(first), hours=9), "view", None, None, "shoes",
                     f"shoes-{rng.integers(0, 8)}"))
        if rng.random() < 0.15:
            continue
        rate = rng.gamma(1.5, 1 / 40)  # purchases per day
        life = rng.integers(20, 366 - first)
        n = max(1, rng.poisson(rate * life))
        days = np.sort(rng.integers(first, first + life, n))
        aov = rng.lognormal(3.5, 0.5)
        for k, d in enumerate(days):
            cat = str(rng.choice(["shoes", "bags", "hats"]))
            rows.append((cid, start + dt.timedelta(days=int(min(d, 365)), hours=12), "purchase", f"{cid}-{k}",
                         float(round(aov * rng.lognormal(0, 0.6), 2)), cat, f"{cat}-{rng.integers(0, 8)}"))
    return pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "order_id", "revenue",
                                       "category", "item_id"])


def load(wh: Warehouse, dataset: str, events: pd.DataFrame) -> None:
    df = events.copy()
    df.insert(0, "dataset", dataset)
    with wh.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [dataset])
        tx.register("incoming", df)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, revenue, category, item_id) "
                   "SELECT dataset, customer_id, event_time, event_type, order_id, revenue, category, item_id "
                   "FROM incoming")
        tx.unregister("incoming")


@pytest.fixture(scope="module")
def shop():
    """(warehouse, customer frame) of the seeded shop, as of AS_OF; module-scoped."""
    from analytics.explorer import build_frame

    w = Warehouse(":memory:")
    load(w, "shop", make_events())
    frame = build_frame(w, "shop", AS_OF)
    yield w, frame
    w.close()
