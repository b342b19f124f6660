"""Fixtures for the segments tests: a small planted-persona customer frame (pure
NumPy, summary-like columns) and, when the sample data package is present, the
per-customer summary of the generated sample with its planted personas."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.warehouse import Warehouse

PLANTED = ("loyal", "newcomer", "window", "one_time")


def planted_frame(n_per: int = 150, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Summary-like columns for four well separated personas, and the truth."""
    rng = np.random.default_rng(seed)
    parts, truth = [], []
    # persona: orders (poisson mean), order value (lognormal median), views, tenure days, days since purchase
    spec = {
        "loyal": (12, 150.0, 40, 600, 20),
        "newcomer": (3, 60.0, 20, 60, 10),
        "window": (0, 0.0, 60, 400, None),
        "one_time": (1, 40.0, 3, 400, 380),
    }
    for p in PLANTED:
        orders_mu, aov, views, tenure, since = spec[p]
        n_orders = rng.poisson(orders_mu, n_per) if p not in ("window", "one_time") else \
            np.full(n_per, orders_mu)
        n_orders = np.maximum(n_orders, 0 if p == "window" else 1)
        value = n_orders * aov * rng.lognormal(0, 0.3, n_per)
        ten = np.maximum(rng.normal(tenure, tenure * 0.1, n_per), 5)
        if since is None:
            recency = np.full(n_per, np.nan)
            T = np.full(n_per, np.nan)
        else:
            s = np.clip(rng.normal(since, since * 0.2 + 1, n_per), 0, ten)
            T = ten - rng.uniform(0, 3, n_per)
            recency = np.maximum(T - s, 0)
        parts.append(pd.DataFrame({
            "n_orders": n_orders.astype(float),
            "frequency": np.where(n_orders > 0, n_orders - 1, np.nan),
            "total_revenue": value, "return_revenue": np.zeros(n_per), "net_revenue": value,
            "n_views": rng.poisson(views, n_per).astype(float),
            "n_searches": rng.poisson(views / 5, n_per).astype(float),
            "tenure": ten, "T": T, "recency": recency,
            "avg_rating": np.where(n_orders > 0, rng.normal(4.0, 0.3, n_per), np.nan),
            "country": rng.choice(["DE", "FR", "GB"], n_per),
        }))
        truth += [p] * n_per
    df = pd.concat(parts, ignore_index=True)
    df.index = pd.Index([f"c{i:05d}" for i in range(len(df))], name="customer_id")
    return df, pd.Series(truth, index=df.index, name="persona")


@pytest.fixture(scope="session")
def planted():
    return planted_frame()


@pytest.fixture(scope="session")
def sample_summary(tmp_path_factory):
    """customer_summary of the generated sample data (in-memory warehouse) + personas.

    Uses the shipped default data set (``sample_data/sample_events.csv.gz``) when
    present, else generates the same layout with the project's generator (4,000
    customers, seed 42), loads it with the real ingestion
    (``analytics.ingest.ingest``) and summarizes it with
    ``analytics.summary.customer_summary`` as of the last event's day.
    """
    sd = pytest.importorskip("sample_data")
    from analytics.ingest import ingest
    from analytics.summary import customer_summary

    events, truth = sd.SAMPLE_EVENTS, sd.SAMPLE_TRUTH
    if not (events.exists() and truth.exists()):
        out = tmp_path_factory.mktemp("sample")
        events, truth = out / "events.csv.gz", out / "truth.csv.gz"
        sd.generate(events, truth, sd.SampleConfig(customers=4000, seed=42))
    wh = Warehouse(":memory:")
    ingest(wh, events, "sample")
    cur = wh.cursor()
    as_of = cur.execute("SELECT max(event_time) FROM events").fetchone()[0].date()
    summary = customer_summary(wh, "sample", as_of, persist=False)
    wh.close()
    personas = pd.read_csv(truth, dtype={"customer_id": str}, usecols=["customer_id", "persona"])
    personas = personas.set_index("customer_id")["persona"].reindex(summary.index)
    return summary, personas
