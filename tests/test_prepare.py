"""The preparation step: results equal the library computed directly, are keyed by one data
version, are read back after a restart, and a change of the data mid-run is never stored under
the old version."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics import prepare
from analytics.warehouse import Warehouse
from tests.campaigns.conftest import make_events

SHOP = make_events(300, seed=3)
DAY = str(SHOP["event_time"].max().date())  # the last day: what preparation prepares


def _load(wh: Warehouse, dataset: str, events: pd.DataFrame) -> None:
    """Insert events with an ingestion record, as a load does (the data version moves)."""
    df = events.copy()
    df.insert(0, "dataset", dataset)
    with wh.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [dataset])
        tx.execute("UPDATE datasets SET updated_at = now() WHERE name = ?", [dataset])
        tx.register("incoming", df)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, revenue, category, "
                   "item_id) SELECT dataset, customer_id, event_time, event_type, order_id, revenue, category, item_id "
                   "FROM incoming")
        tx.unregister("incoming")
        tx.execute("INSERT INTO ingestions (id, dataset, file_name, rows_read, rows_loaded, rows_rejected, "
                   "rows_duplicate) VALUES (nextval('ingestion_id_seq'), ?, 'test', ?, ?, 0, 0)",
                   [dataset, len(df), len(df)])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A warehouse file with one dataset of 300 customers, prepared once (module-scoped)."""
    path = tmp_path_factory.mktemp("prep") / "w.duckdb"
    wh = Warehouse(path)
    _load(wh, "shop", SHOP)
    seen = []
    job = prepare.run(wh, "shop", progress=lambda i, n, label, frac: seen.append((i, n, label)))
    yield wh, path, job, seen
    wh.close()


def test_stages_run_in_order_with_progress(prepared):
    _, _, job, seen = prepared
    assert job.state == "done" and job.error is None
    assert [s[2] for s in seen] == [s.label for s in prepare.STAGES] + ["done"]
    assert [s[0] for s in seen[:-1]] == list(range(1, len(prepare.STAGES) + 1))
    assert set(job.timings) == {s.name for s in prepare.STAGES}
    assert job.text().startswith("prepared in")


def test_results_equal_the_library_computed_directly(prepared):
    from analytics.campaigns import value_columns
    from analytics.explorer import build_frame, cohort_retention, rfm_migration
    from analytics.overview import dataset_overview
    from analytics.scores import fit_clv_models
    from analytics.summary import customer_summary

    wh, _, _, _ = prepared
    direct = value_columns(wh, build_frame(wh, "shop", DAY, with_clusters=False))
    frame = prepare.customer_frame(wh, "shop", compute=False)
    assert frame is not None and frame.attrs["as_of"] == DAY
    assert list(frame.index) == list(direct.index)
    for col in ("net_revenue", "n_orders", "frequency", "recency", "T", "rfm_score", "behaviour_score", "clv"):
        np.testing.assert_allclose(frame[col].to_numpy(float), direct[col].to_numpy(float), rtol=1e-9,
                                   equal_nan=True, err_msg=col)
    # the model columns come from fits on the history's summary (revenue summed in day order, the SQL's in
    # any order: equal to float rounding), so the fitted parameters agree to ~1e-9, not bit for bit
    for col in ("expected_clv", "p_alive", "churn_risk", "churn_value"):
        np.testing.assert_allclose(frame[col].to_numpy(float), direct[col].to_numpy(float), rtol=1e-6,
                                   equal_nan=True, err_msg=col)
    assert (frame["rfm_segment"].astype(str) == direct["rfm_segment"].astype(str)).all()
    assert frame.attrs["value_source"] == direct.attrs["value_source"] == "BG/NBD + Gamma-Gamma CLV"

    ov = prepare.overview(wh, "shop", compute=False)
    fresh = dataset_overview(wh, "shop")
    assert ov["kpis"]["customers"] == fresh["kpis"]["customers"] == 300
    assert ov["kpis"]["revenue"] == pytest.approx(fresh["kpis"]["revenue"])
    assert ov["categories"] == fresh["categories"] and set(ov["categories"]) == {"shoes", "bags", "hats"}

    bg, gg = prepare.clv_models(wh, "shop", compute=False)
    bg2, gg2 = fit_clv_models(customer_summary(wh, "shop", DAY, "days", persist=False))
    assert bg.params_ == pytest.approx(bg2.params_, rel=1e-6) and gg.params_ == pytest.approx(gg2.params_, rel=1e-6)

    pd.testing.assert_frame_equal(prepare.cohorts(wh, "shop", compute=False).reset_index(drop=True),
                                  cohort_retention(wh, "shop", DAY).reset_index(drop=True), check_dtype=False)
    start = prepare.default_migration_start(pd.Timestamp(ov["kpis"]["first_event"]).date(), pd.Timestamp(DAY).date())
    flows = prepare.rfm_migration(wh, "shop", start, compute=False)
    expected = rfm_migration(wh, "shop", start, build_frame(wh, "shop", DAY, with_clusters=False))
    pd.testing.assert_frame_equal(flows.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)

    model = prepare.recommender(wh, "shop", compute=False)  # the campaigns' validation winner, stored
    from analytics.recommend import campaign_recommender

    direct_model = campaign_recommender(wh, "shop", pd.Timestamp(DAY) + pd.Timedelta(days=1))
    assert model.choice_["model"] == direct_model.choice_["model"]
    ids = list(frame.index[:20])
    pd.testing.assert_frame_equal(model.recommend(ids, n=3), direct_model.recommend(ids, n=3))


@pytest.mark.parametrize("unit", ["weeks", "months"])
def test_summary_in_other_units_equals_the_sql_summary(prepared, unit):
    from analytics.summary import customer_summary

    wh, _, _, _ = prepared
    ours = prepare.summary(wh, "shop", unit=unit, compute=False)
    ref = customer_summary(wh, "shop", DAY, unit, persist=False)
    assert list(ours.index) == list(ref.index) and ours.attrs["unit"] == unit
    for col in ("frequency", "recency", "T", "tenure", "avg_gap", "monetary_value"):
        np.testing.assert_allclose(ours[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12, equal_nan=True)


def test_a_restart_reads_results_back_instead_of_recomputing(prepared, monkeypatch):
    import analytics.explorer as explorer_mod
    import analytics.overview as overview_mod
    import analytics.scores as scores_mod

    wh, path, _, _ = prepared
    before = prepare.customer_frame(wh, "shop", compute=False)

    def boom(*a, **k):
        raise AssertionError("recomputed instead of read back")

    for mod, name in ((explorer_mod, "build_frame"), (overview_mod, "dataset_overview"),
                      (scores_mod, "fit_clv_models"), (scores_mod, "probabilistic_clv")):
        monkeypatch.setattr(mod, name, boom)
    reopened = Warehouse(path)  # a fresh connection to the file, nothing in memory
    again = prepare.run(reopened, "shop")  # everything stored: a rerun only reads
    assert again.state == "done"
    after = prepare.customer_frame(reopened, "shop", compute=False)
    pd.testing.assert_frame_equal(before, after)
    assert prepare.overview(reopened, "shop", compute=False)["kpis"]["customers"] == 300
    reopened.close()


def test_missing_results_are_none_without_compute_and_a_new_version_is_prepared_again(tmp_path):
    wh = Warehouse(tmp_path / "v.duckdb")
    events = make_events(120, seed=5)
    _load(wh, "shop", events[events["event_time"] < "2024-10-01"])
    assert prepare.customer_frame(wh, "shop", compute=False) is None
    assert prepare.overview(wh, "shop", compute=False) is None
    v1 = prepare.data_version(wh, "shop")
    prepare.run(wh, "shop")
    assert prepare.is_prepared(wh, "shop")
    n1 = len(prepare.customer_frame(wh, "shop", compute=False))
    # an append is a new version: nothing of it is prepared yet, the old results stay until replaced
    _load(wh, "shop", events[events["event_time"] >= "2024-10-01"])
    v2 = prepare.data_version(wh, "shop")
    assert v2 != v1 and not prepare.is_prepared(wh, "shop")
    assert prepare.customer_frame(wh, "shop", compute=False) is None
    prepare.run(wh, "shop")
    frame = prepare.customer_frame(wh, "shop", compute=False)
    assert len(frame) == 120 > n1 and frame.attrs["as_of"] == str(events["event_time"].max().date())
    versions = {r[0] for r in wh.cursor().execute("SELECT DISTINCT version FROM prepared_results").fetchall()}
    assert versions == {v2}  # the old version's results were dropped when replaced
    # each stored blob in a table of its own, and only the current results' tables are left
    blobs = {r[0] for r in wh.cursor().execute("SELECT id FROM prepared_results WHERE format IN "
                                              "('parquet', 'pickle')").fetchall()}
    assert len(blobs) >= 5 and _blob_tables(wh) == {f"prepared_blob_{i}" for i in blobs}
    # a published prediction is a new version too (the expected CLV changes)
    wh.cursor().execute("INSERT INTO customer_predictions VALUES ('shop', ?, 1e6, 0.5, 1, 'lightgbm', "
                        "DATE '2024-12-31', 90, TIMESTAMP '2025-01-01')", [frame.index[0]])
    assert prepare.data_version(wh, "shop") != v2
    prepare.run(wh, "shop")
    frame = prepare.customer_frame(wh, "shop", compute=False)
    assert frame["expected_clv"].iloc[0] == 1e6 and frame["expected_clv_source"].iloc[0] == "published model"
    assert (frame["expected_clv_source"].iloc[1:] == "probabilistic model").all()
    # deleting the dataset deletes its prepared results
    from analytics.ingest import delete_dataset

    delete_dataset(wh, "shop")
    assert wh.cursor().execute("SELECT count(*) FROM prepared_results").fetchone()[0] == 0
    assert wh.cursor().execute("SELECT count(*) FROM prepared_chunks").fetchone()[0] == 0
    assert _blob_tables(wh) == set()
    wh.close()


def _blob_tables(wh) -> set[str]:
    return {r[0] for r in wh.cursor().execute("SELECT table_name FROM duckdb_tables() "
                                              "WHERE table_name LIKE 'prepared_blob_%'").fetchall()}


def test_blobs_of_the_earlier_shared_layout_are_read_back_and_removed(tmp_path):
    """A result whose chunks an earlier version kept in the shared ``prepared_chunks`` table reads
    back the same, and replacing it removes those rows."""
    wh = Warehouse(tmp_path / "l.duckdb")
    _load(wh, "shop", make_events(40, seed=2))
    version = prepare.data_version(wh, "shop")
    frame = pd.DataFrame({"a": np.arange(5.0), "b": list("vwxyz")})
    prepare.put(wh, "shop", "thing", frame, {"k": 1}, version=version, fmt="parquet")
    rid = wh.cursor().execute("SELECT id FROM prepared_results WHERE name = 'thing'").fetchone()[0]
    with wh.transaction() as tx:  # move its chunks to the earlier layout
        tx.execute(f"INSERT INTO prepared_chunks SELECT {rid}, 'shop', seq, data FROM prepared_blob_{rid}")
        tx.execute(f"DROP TABLE prepared_blob_{rid}")
    pd.testing.assert_frame_equal(prepare.get(wh, "shop", "thing", {"k": 1}).value, frame)
    prepare.put(wh, "shop", "thing", frame.head(2), {"k": 1}, version=version, fmt="parquet")
    assert wh.cursor().execute("SELECT count(*) FROM prepared_chunks").fetchone()[0] == 0
    pd.testing.assert_frame_equal(prepare.get(wh, "shop", "thing", {"k": 1}).value, frame.head(2))
    wh.close()


def test_data_changing_during_the_run_is_not_stored_under_the_old_version(tmp_path):
    wh = Warehouse(tmp_path / "s.duckdb")
    events = make_events(80, seed=9)
    _load(wh, "shop", events.iloc[:200])
    old = prepare.data_version(wh, "shop")

    def progress(i, n, label, frac):
        if i == 3 and label == prepare.STAGES[2].label:  # a load lands while the step runs
            _load(wh, "shop", events.iloc[200:])

    job = prepare.run(wh, "shop", progress=progress)
    assert job.state == "superseded" and job.text() == "the data changed: preparing again"
    stored = {r[0] for r in wh.cursor().execute("SELECT DISTINCT version FROM prepared_results").fetchall()}
    # the stages that finished before the load are stored under the old version, nothing after it
    names = {r[0] for r in wh.cursor().execute("SELECT name FROM prepared_results WHERE version = ?",
                                               [old]).fetchall()}
    assert stored <= {old} and names <= {"overview", "range_comparison", "history", "scores"} and "complete" not in names
    assert not prepare.is_prepared(wh, "shop") and not prepare.is_prepared(wh, "shop", version=old)
    wh.close()


def test_background_job_reports_progress_and_is_idempotent(tmp_path):
    wh = Warehouse(tmp_path / "b.duckdb")
    _load(wh, "shop", make_events(60, seed=4))
    job = prepare.start(wh, "shop")
    assert prepare.start(wh, "shop") is job  # the same version: the same job
    assert job.wait(120) and job.state == "done", job.error
    assert prepare.job(wh, "shop") is job and job.fraction == 1.0
    assert prepare.is_prepared(wh, "shop")
    prepare.stop_all(wh)
    wh.close()


def test_a_failing_stage_fails_the_job_with_its_message(tmp_path, monkeypatch):
    import analytics.explorer as explorer_mod

    wh = Warehouse(tmp_path / "f.duckdb")
    _load(wh, "shop", make_events(40, seed=2))

    def broken(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(explorer_mod, "build_frame", broken)
    job = prepare.start(wh, "shop")
    assert job.wait(120)
    assert job.state == "failed" and job.stage == 3 and "disk on fire" in job.error
    assert job.text().startswith("preparation failed at 3/6 (scoring every customer)")
    assert prepare.overview(wh, "shop", compute=False) is not None  # what finished before stays
    wh.close()


def test_models_that_cannot_be_fitted_are_a_stored_reason_not_a_failure(tmp_path, monkeypatch):
    import analytics.scores as scores_mod

    wh = Warehouse(tmp_path / "d.duckdb")
    # every customer bought exactly once: nothing for BG/NBD / Gamma-Gamma to fit
    rows = pd.DataFrame({"customer_id": [f"c{i}" for i in range(30)],
                         "event_time": pd.date_range("2024-01-01", periods=30, freq="D"),
                         "event_type": "purchase", "order_id": [f"o{i}" for i in range(30)],
                         "revenue": 10.0, "category": None, "item_id": None})
    _load(wh, "once", rows)
    job = prepare.run(wh, "once")
    assert job.state == "done"
    assert any("BG/NBD" in w for w in job.warnings) and any("recommender" in w for w in job.warnings)
    calls = []
    monkeypatch.setattr(scores_mod, "fit_clv_models", lambda s: calls.append(1))
    with pytest.raises(ValueError, match="repeat"):
        prepare.clv_models(wh, "once", compute=True)
    assert calls == []  # the stored reason is read back, no refit
    frame = prepare.customer_frame(wh, "once", compute=False)
    assert (frame["expected_clv_source"] == "formula").all()
    np.testing.assert_allclose(frame["expected_clv"], frame["clv"].fillna(0.0))
    assert "formula CLV" in frame.attrs["value_source"]
    wh.close()


def test_prepare_cli_prints_its_summary(tmp_path, capsys):
    from analytics.cli import main

    db = str(tmp_path / "c.duckdb")
    src = tmp_path / "orders.csv"
    ev = make_events(50, seed=8)
    ev = ev[ev["event_type"] == "purchase"]
    pd.DataFrame({"customer_id": ev["customer_id"], "order_date": ev["event_time"].dt.strftime("%Y-%m-%d"),
                  "order_id": ev["order_id"], "amount": ev["revenue"]}).to_csv(src, index=False)
    assert main(["ingest", str(src), "--dataset", "shop", "--db", db, "--no-prepare"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "prepare" not in out and out["rows_loaded"] == len(ev)
    assert main(["prepare", "--dataset", "shop", "--db", db]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["state"] == "done" and set(summary["stages"]) == {s.name for s in prepare.STAGES}
    assert "preparing 4/6: fitting models…" in captured.err
    assert main(["prepare", "--dataset", "nope", "--db", db]) == 2
    assert "no dataset named 'nope'" in capsys.readouterr().err
