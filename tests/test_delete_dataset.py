"""Deleting a dataset removes everything derived from it, and nothing of other datasets."""
from __future__ import annotations

import json

import pandas as pd

from analytics.customer_keys import assign_keys
from analytics.ingest import delete_dataset
from analytics.overview import stored_overview
from analytics.summary import customer_summary, summary_history

from tests.predict._events import add_events


def _events(prefix: str) -> pd.DataFrame:
    rows = []
    for i in range(6):
        for k, day in enumerate(["2025-01-03", "2025-02-10", "2025-03-20"][: 1 + i % 3]):
            rows.append({"customer_id": f"{prefix}{i}", "event_time": f"{day} 10:00:00", "event_type": "purchase",
                         "order_id": f"{prefix}o{i}{k}", "revenue": 10.0 + i + k, "quantity": 1.0})
        rows.append({"customer_id": f"{prefix}{i}", "event_time": "2025-03-01 09:00:00", "event_type": "view"})
    return pd.DataFrame(rows)


def _rows_of(wh, name: str, summary_runs) -> dict[str, int]:
    """Rows that belong to dataset ``name`` in every table that can hold them."""
    cur = wh.cursor()
    tables = [r[0] for r in cur.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'dataset' "
        "AND table_schema = 'main' AND table_name IN "
        "(SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')").fetchall()]
    assert {"events", "customer_summary_runs", "clustering_runs", "cluster_assignments", "predictor_runs",
            "predictor_models", "customer_predictions"} <= set(tables)
    out = {t: cur.execute(f'SELECT count(*) FROM "{t}" WHERE dataset = ?', [name]).fetchone()[0] for t in tables}
    out["datasets"] = cur.execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()[0]
    out["customer_summaries"] = cur.execute(
        "SELECT count(*) FROM customer_summaries WHERE list_contains(?, run_id)", [summary_runs]).fetchone()[0]
    out["settings"] = cur.execute("SELECT count(*) FROM settings WHERE key = ?", ["overview:" + name]).fetchone()[0]
    # prepared results keep their blobs in a table each (the shared prepared_chunks is the earlier layout)
    out.pop("prepared_chunks", None)
    ids = [r[0] for r in cur.execute("SELECT id FROM prepared_results WHERE dataset = ?", [name]).fetchall()]
    out["prepared_blobs"] = len(_blob_tables(wh) & {f"prepared_blob_{i}" for i in ids})
    return out


def _blob_tables(wh) -> set[str]:
    return {r[0] for r in wh.cursor().execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'prepared_blob_%'").fetchall()}


def _derive(wh, name: str, model_dir) -> tuple[list[int], object]:
    """Summaries, a stored overview, a clustering run and a predictor run with a model file."""
    customer_summary(wh, name, "2025-03-31")
    customer_summary(wh, name, "2025-02-28", "weeks")
    summary_history(wh, name)  # the persisted per-customer-day history (migration 11)
    stored_overview(wh, name)
    from analytics import prepare

    prepare.scores(wh, name)  # a prepared result with its blob (migration 50)
    from analytics.segments import store

    store.save_segment(wh, f"big {name}", {"op": "and", "conditions": [  # a segment of this dataset (migration 91)
        {"field": "net_revenue", "operator": ">=", "value": 10}]}, dataset=name)
    cur = wh.cursor()
    runs = [r[0] for r in cur.execute("SELECT run_id FROM customer_summary_runs WHERE dataset = ?", [name]).fetchall()]
    rid = cur.execute("SELECT nextval('clustering_run_id_seq')").fetchone()[0]
    cur.execute("INSERT INTO clustering_runs VALUES (?, ?, DATE '2025-03-31', '[]', '{}', '[]', NULL, 2, NULL, "
                "current_timestamp)", [rid, name])
    cur.execute("INSERT INTO cluster_assignments (run_id, customer_id, cluster, name, dataset) "
                "VALUES (?, 'x', 0, 'A', ?), (?, 'y', 1, 'B', ?)", [rid, name, rid, name])
    pid = cur.execute("SELECT nextval('predictor_run_id_seq')").fetchone()[0]
    folder = model_dir / f"run_{pid}" / "lightgbm"
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text("tree")
    cur.execute("INSERT INTO predictor_runs VALUES (?, ?, DATE '2025-02-28', DATE '2025-03-31', 'weeks', ?, NULL, "
                "current_timestamp)", [pid, name, json.dumps({"dataset": name})])
    cur.execute("INSERT INTO predictor_models VALUES (?, ?, 'lightgbm', '{}', '{}', 'cpu', 1.0, ?, NULL)",
                [pid, name, str(folder)])
    cur.execute("INSERT INTO customer_predictions VALUES (?, 'x', 1.0, 0.5, ?, 'lightgbm', DATE '2025-03-31', 30, "
                "current_timestamp)", [name, pid])
    # a saved campaign (list + outcomes) and a stored report (issue 6)
    from analytics import campaigns

    targets = pd.DataFrame({"customer_id": [f"{name}1", f"{name}2"], "rank": [1, 2],
                            "group": ["treatment", "control"]})
    cid = campaigns.save_campaign(wh, campaigns.CampaignSpec(name=f"camp {name}", dataset=name,
                                                             as_of="2025-03-31"), targets)
    campaigns.save_outcomes(wh, cid, pd.DataFrame({"customer_id": [f"{name}1"], "converted": [True],
                                                   "revenue": [5.0]}))
    cur.execute("INSERT INTO reports (id, token_hash, kind, title, dataset, snapshot, created_at) "
                "VALUES (nextval('report_id_seq'), ?, 'segment', 't', ?, '{}', current_timestamp)",
                ["hash-" + name, name])
    # a person's grant for the dataset and a model file kept inside the warehouse (migrations 60, 62)
    cur.execute("INSERT INTO dataset_grants (person, dataset) VALUES (?, ?)", ["ana@example.com", name])
    cur.execute("INSERT INTO model_files (run_id, dataset, model, name, data) VALUES (?, ?, 'lightgbm', 'model.txt', "
                "'tree'::BLOB)", [pid, name])
    from analytics.currency import set_dataset_currency

    set_dataset_currency(wh, name, "EUR")  # a per-dataset setting (migration 90)
    from analytics.reviews.sentiment import score_dataset_reviews

    score_dataset_reviews(wh, name)  # a sentiment run (migration 70); these events have no reviews, so one by hand
    cur.execute("INSERT INTO review_sentiment (dataset, customer_id, event_time, sentiment) "
                "VALUES (?, 'x', TIMESTAMP '2025-03-01 10:00:00', -0.5)", [name])
    from analytics.reviews.segments import ensure_ready_made_segments

    assert ensure_ready_made_segments(wh, name)  # a segment of the dataset's own (migration 91)
    # an attached Spark summary's rows (migration 100: a dataset holds them instead of events, so only on the
    # dataset that is deleted: the kept one's summary is read back below)
    if name != "gone":
        return runs, folder
    cur.execute("INSERT INTO attached_summaries (dataset, as_of, source, n_customers) VALUES (?, DATE '2025-03-31', "
                "'test', 1)", [name])
    cur.execute("INSERT INTO attached_customers (dataset, customer_id) VALUES (?, 'x')", [name])
    return runs, folder


def test_delete_dataset_removes_everything_derived(wh, tmp_path):
    add_events(wh, "gone", _events("g"))
    add_events(wh, "kept", _events("k"))
    for name in ("gone", "kept"):  # customer keys, as a load of ids of no numeric form gives them
        with wh.transaction() as tx:
            assign_keys(tx, name)
    gone_runs, gone_model = _derive(wh, "gone", tmp_path / "models")
    kept_runs, kept_model = _derive(wh, "kept", tmp_path / "models")
    before = _rows_of(wh, "gone", gone_runs)
    # the test can fail: everything was there (events come in without the ingestion log here)
    assert all(n > 0 for t, n in before.items() if t != "ingestions"), before
    kept_before = _rows_of(wh, "kept", kept_runs)

    delete_dataset(wh, "gone")

    assert all(n == 0 for n in _rows_of(wh, "gone", gone_runs).values()), _rows_of(wh, "gone", gone_runs)
    assert _rows_of(wh, "kept", kept_runs) == kept_before
    # no blob table is left behind: only the kept dataset's results have theirs
    kept_ids = [r[0] for r in wh.cursor().execute("SELECT id FROM prepared_results").fetchall()]
    assert _blob_tables(wh) <= {f"prepared_blob_{i}" for i in kept_ids} and kept_before["prepared_blobs"] > 0
    assert not gone_model.exists() and not gone_model.parent.exists()  # model files and the run folder
    assert (kept_model / "model.txt").read_text() == "tree"
    # the kept dataset's stored results still work
    assert len(customer_summary(wh, "kept", "2025-03-31")) == 6
    assert stored_overview(wh, "kept")["kpis"]
