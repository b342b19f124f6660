"""Helpers: put canonical events into a test warehouse."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "sample_events.csv.gz"


def add_events(wh, dataset: str, events: pd.DataFrame) -> None:
    cols = ["customer_id", "event_time", "event_type", "order_id", "item_id", "category",
            "quantity", "revenue", "rating"]
    frame = events.reindex(columns=cols).copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["event_time"] = pd.to_datetime(frame["event_time"], format="ISO8601").astype("datetime64[us]")
    for c in ("order_id", "item_id", "category"):
        frame[c] = frame[c].astype(object)
    for c in ("quantity", "revenue", "rating"):
        frame[c] = frame[c].astype("float64")
    cur = wh.cursor()
    if not wh.has_dataset(dataset):
        cur.execute("INSERT INTO datasets (name) VALUES (?)", [dataset])
    cur.register("new_events", frame)
    cur.execute(
        "INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, category, "
        "quantity, revenue, rating) SELECT ?, customer_id, event_time, event_type, order_id, item_id, "
        "category, quantity, revenue, rating FROM new_events",
        [dataset],
    )
    cur.unregister("new_events")


def sample_events() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)
