"""Customers with only returns, same-day duplicates and time zones: the Spark engine gives the
planted values and the warehouse's results.

The events are the bundled sample plus planted customers; the warehouse holds them with
UTC wall-clock times. Spark reads the same instants written with time zones: as
``timestamp[us, tz=America/New_York]`` Parquet (instants) and as ISO-8601 text with
mixed offsets (-05:00, +02:00, +05:30, Z).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics import scores
from analytics.cli import main
from analytics.summary import customer_summary
from analytics.warehouse import Warehouse, get_warehouse
from tests.spark._compare import assert_frames_equal, assert_scores_equal

pytestmark = pytest.mark.spark

AS_OF = "2025-12-31"
# (customer, UTC time, type, revenue)
PLANTED = [
    # only returns (and a view): no order, refunds counted, "No purchase yet"
    ("Z_returns_only", "2025-05-01 10:00:00", "return", 15.0),
    ("Z_returns_only", "2025-06-01 10:00:00", "return", 5.0),
    ("Z_returns_only", "2025-06-02 10:00:00", "view", None),
    # same-day purchases (one an exact duplicate row) merge into one purchase day
    ("Z_same_day", "2025-04-01 09:00:00", "purchase", 10.0),
    ("Z_same_day", "2025-04-01 12:00:00", "purchase", 20.0),
    ("Z_same_day", "2025-04-01 12:00:00", "purchase", 20.0),
    ("Z_same_day", "2025-04-01 23:59:59", "purchase", 30.0),
    ("Z_same_day", "2025-04-20 08:00:00", "purchase", 40.0),
    # 2025-03-01 23:30 in New York is 03-02 04:30 UTC: the same UTC day as the next purchase
    ("Z_time_zone", "2025-03-02 04:30:00", "purchase", 25.0),
    ("Z_time_zone", "2025-03-02 10:00:00", "purchase", 35.0),
    ("Z_time_zone", "2025-03-09 23:00:00", "purchase", 50.0),  # 03-10 01:00 in Berlin
    ("Z_time_zone", "2025-03-10 00:30:00", "cart", None),
]


@pytest.fixture(scope="module")
def edge(spark, data, tmp_path_factory):
    """(warehouse path, Parquet with tz-aware timestamps, Parquet with offset text)."""
    from analytics.ingest import export_dataset, ingest

    folder = tmp_path_factory.mktemp("edge")
    db = folder / "edge.duckdb"
    wh = Warehouse(db)
    from tests.spark.conftest import ROOT

    ingest(wh, ROOT / "sample_data" / "sample_events.csv.gz", "edge")
    with wh.transaction() as tx:
        tx.executemany("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) VALUES (?, ?, ?, ?, ?)",
                       [("edge", c, dt.datetime.fromisoformat(t), e, r) for c, t, e, r in PLANTED])
    naive = export_dataset(wh, "edge", folder / "naive.parquet", fmt="parquet")
    wh.close()
    table = pq.read_table(naive)
    utc = pd.Series(table.column("event_time").to_pandas()).dt.tz_localize("UTC")
    aware = table.set_column(table.schema.get_field_index("event_time"), "event_time",
                             pa.array(utc.dt.tz_convert("America/New_York"), type=pa.timestamp("us", tz="America/New_York")))
    pq.write_table(aware, folder / "aware.parquet")
    offsets = [pd.Timedelta(hours=-5), pd.Timedelta(hours=2), pd.Timedelta(hours=5, minutes=30), pd.Timedelta(0)]
    suffix = ["-05:00", "+02:00", "+05:30", "Z"]
    k = np.arange(len(utc)) % 4
    naive_utc = utc.dt.tz_localize(None)
    text = pd.Series([""] * len(utc), dtype=object)
    for i in range(4):
        sel = k == i
        text[sel] = (naive_utc[sel] + offsets[i]).dt.strftime("%Y-%m-%dT%H:%M:%S") + suffix[i]
    texty = table.set_column(table.schema.get_field_index("event_time"), "event_time", pa.array(text.tolist(), pa.string()))
    pq.write_table(texty, folder / "text.parquet")
    return db, folder / "aware.parquet", folder / "text.parquet"


def _warehouse(db, unit="days"):
    wh = get_warehouse(db)  # the process-wide connection: the CLI tests open the same file
    s = customer_summary(wh, "edge", AS_OF, unit, persist=False)
    return s


def test_planted_customers_in_the_warehouse(edge):
    s = _warehouse(edge[0])
    r = s.loc["Z_returns_only"]
    assert (r.n_orders, r.n_returns, r.return_revenue, r.net_revenue) == (0, 2, 20.0, -20.0)
    assert np.isnan(r.frequency) and pd.isna(r.first_purchase)
    d = s.loc["Z_same_day"]
    assert (d.n_orders, d.n_purchases, d.frequency, d.recency, d.monetary_value) == (2, 5, 1.0, 19.0, 40.0)
    assert d.total_revenue == 120.0
    z = s.loc["Z_time_zone"]
    assert (z.n_orders, z.n_purchases, z.frequency, z.recency) == (2, 3, 1.0, 7.0)
    assert z.first_purchase == pd.Timestamp("2025-03-02") and z.last_event == pd.Timestamp("2025-03-10 00:30:00")


@pytest.mark.parametrize("variant", ["text"])
def test_offset_text_gives_the_warehouse_summary(spark, edge, variant):
    from analytics.spark import summary as ss
    from analytics.spark.events import read_events

    db, _, text = edge
    want = _warehouse(db, "weeks")
    got = ss.to_pandas_summary(ss.customer_summary(read_events(spark, str(text)), AS_OF, "weeks"), "weeks", AS_OF)
    assert got.index.equals(want.index)
    assert_frames_equal(got.reset_index(), want.reset_index(), rtol=1e-9)


def test_time_zone_parquet_scores_equal_the_warehouse(spark, edge, tmp_path, capsys):
    db, aware, _ = edge
    want_csv, got_csv = tmp_path / "want.csv", tmp_path / "got.csv"
    assert main(["score", "--db", str(db), "--dataset", "edge", "--as-of", AS_OF, "--out", str(want_csv)]) == 0
    assert main(["score", "--engine", "spark", "--events", str(aware), "--as-of", AS_OF, "--out", str(got_csv)]) == 0
    capsys.readouterr()
    want = pd.read_csv(want_csv, dtype={"customer_id": str}).set_index("customer_id", drop=False)
    got = pd.read_csv(got_csv, dtype={"customer_id": str}).set_index("customer_id", drop=False)
    assert_scores_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    assert got.loc["Z_returns_only", "rfm_segment"] == scores.NO_PURCHASE
    assert got.loc["Z_returns_only", "net_revenue"] == -20.0
    assert got.loc["Z_same_day", "n_orders"] == 2 and got.loc["Z_time_zone", "n_orders"] == 2


def test_warehouse_ingest_of_offsets_is_utc(tmp_path):
    """The warehouse side of the convention: a CSV with offsets loaded with a %z format keeps
    the UTC instant (on this UTC machine), the days the Spark engine uses."""
    from analytics.ingest import Mapping, ingest, inspect_source

    path = tmp_path / "tz.csv"
    path.write_text("customer_id,event_time,event_type,revenue\n"
                    "a,2025-03-01T23:30:00-05:00,purchase,25\n"
                    "a,2025-03-02T10:00:00+00:00,purchase,35\n", encoding="utf-8")
    wh = Warehouse(":memory:")
    m = inspect_source(path).mapping
    m.date_format = "%Y-%m-%dT%H:%M:%S%z"
    ingest(wh, path, "tz", mapping=m)
    s = customer_summary(wh, "tz", "2025-03-31", persist=False)
    assert s.loc["a", "n_orders"] == 1 and s.loc["a", "first_purchase"] == pd.Timestamp("2025-03-02")
    wh.close()
    assert isinstance(m, Mapping)
