"""A warehouse file with the generated sample data at N customers, for the Explorer benchmark.

``build_sample_warehouse(path, customers)`` streams ``sample_data.generator.iter_batches``
straight into the ``events`` table of a new warehouse file (dataset ``sample``; no CSV round
trip and no validation pass: the generator's rows are canonical already), so the benchmark
runs on the same data the app would hold after ``valuescope sample`` + ``valuescope ingest``.
Reused when the file exists (delete it to rebuild).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATASET = "sample"


def build_sample_warehouse(path: str | Path, customers: int, seed: int = 42) -> dict:
    from analytics.warehouse import Warehouse
    from sample_data.generator import SampleConfig, iter_batches

    path = Path(path)
    if path.exists():
        wh = Warehouse(path)
        n = wh.cursor().execute("SELECT count(*) FROM events WHERE dataset = ?", [DATASET]).fetchone()[0]
        wh.close()
        return {"path": str(path), "events": int(n), "reused": True}
    part = path.with_name(path.name + ".part")
    part.unlink(missing_ok=True)
    wh = Warehouse(part)
    cur = wh.cursor()
    cur.execute("INSERT INTO datasets (name, description) VALUES (?, ?)",
                [DATASET, f"generated sample, {customers:,} customers, seed {seed}"])
    cur.execute("INSERT INTO ingestions (id, dataset, file_name, layout) VALUES (1, ?, 'generator', 'events')",
                [DATASET])
    n = 0
    for i, batch in enumerate(iter_batches(SampleConfig(customers=customers, seed=seed))):
        tbl = batch.events  # noqa: F841 (read by DuckDB's replacement scan)
        cur.execute(
            "INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, category, "
            "quantity, revenue, rating, text, country, attributes, ingestion_id, row_hash) "
            "SELECT $dataset, customer_id, CAST(event_time AS TIMESTAMP), event_type, order_id, item_id, category, "
            "CAST(quantity AS DOUBLE), CAST(revenue AS DOUBLE), CAST(rating AS DOUBLE), text, country, NULL, 1, "
            "hash(customer_id, event_time, event_type, order_id, item_id, revenue, rating, $batch, "
            "     row_number() OVER ()) FROM tbl",
            {"dataset": DATASET, "batch": i},
        )
        n += batch.events.num_rows
    cur.execute("UPDATE ingestions SET rows_read = ?, rows_loaded = ? WHERE id = 1", [n, n])
    cur.execute("CHECKPOINT")
    wh.close()
    part.rename(path)
    return {"path": str(path), "events": n, "reused": False}
