"""Append with de-duplication, atomicity, personal data, pseudonymization, history, export, delete, bootstrap."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from analytics.bootstrap import ensure_default_dataset
from analytics.ingest import (
    IngestError, delete_dataset, export_dataset, ingest, ingestion_history, inspect_source, pseudonymize_value,
    rejects_frame,
)
from analytics.ingest.pii import PSEUDONYM_KEY_SETTING

TABLES = ["datasets", "events", "ingestions", "rejects", "settings"]


def counts(wh):
    cur = wh.cursor()
    return {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


ORDERS = "customer_id,order_date,amount\nc1,2024-01-05,10\nc2,2024-01-06,20\nc1,2024-01-05,10\n"


def test_reingest_adds_nothing_and_append_adds_only_new(wh, tmp_path):
    p = write(tmp_path, "o.csv", ORDERS)
    r1 = ingest(wh, p, "ds")
    # identical lines within one file are kept (genuine repeat purchases), invariant holds
    assert (r1.rows_read, r1.rows_loaded, r1.rows_rejected, r1.rows_duplicate) == (3, 3, 0, 0)
    r2 = ingest(wh, p, "ds")
    assert (r2.rows_read, r2.rows_loaded, r2.rows_duplicate) == (3, 0, 3)
    p2 = write(tmp_path, "o2.csv", ORDERS + "c3,2024-01-07,5\nc1,2024-01-05,10\n")
    r3 = ingest(wh, p2, "ds")
    # the third copy of the c1 line is new; the first two were loaded already
    assert (r3.rows_read, r3.rows_loaded, r3.rows_duplicate) == (5, 2, 3)
    assert wh.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == 5
    # the same file into another dataset is independent
    assert ingest(wh, p, "other").rows_loaded == 3
    for r in (r1, r2, r3):
        assert r.rows_read == r.rows_loaded + r.rows_rejected + r.rows_duplicate


def test_failed_ingest_mid_write_leaves_everything_unchanged(wh, tmp_path, monkeypatch):
    ingest(wh, write(tmp_path, "a.csv", ORDERS), "ds")
    before = counts(wh)
    from analytics.ingest.mapping import Mapping

    def boom(self):  # fails while writing the ingestion log: after the dataset, rejects and events
        raise RuntimeError("disk full")

    monkeypatch.setattr(Mapping, "to_json", boom)
    p = write(tmp_path, "b.csv", "customer_id,order_date,amount\nz1,2024-02-05,1\nz2,2024-02-06,x\n")
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(wh, p, "new")
    assert counts(wh) == before
    assert not wh.has_dataset("new")


def test_failed_ingest_before_commit_rolls_back(wh, tmp_path, monkeypatch):
    ingest(wh, write(tmp_path, "a.csv", ORDERS), "ds")
    before = counts(wh)
    from analytics.ingest import loader

    orig = loader._Tx.commit

    def failing_commit(self):
        raise RuntimeError("crash before commit")

    monkeypatch.setattr(loader._Tx, "commit", failing_commit)
    with pytest.raises(RuntimeError):
        ingest(wh, write(tmp_path, "b.csv", "customer_id,order_date,amount\nq,2024-02-05,1\nr,2024-02-06,x\n"), "ds")
    monkeypatch.setattr(loader._Tx, "commit", orig)
    assert counts(wh) == before


PII = ("customer_id,email,phone,full_name,street,order_date,amount\n"
       "c1,anna@example.com,+49 30 1234567,Anna Schmidt,12 Baker Street,2024-01-05,10\n"
       "c2,bob@example.org,+1 555 123 4567,Bob Jones,5 Main St,2024-01-06,20\n")


def test_pii_flagged_and_dropped_unless_kept(wh, tmp_path):
    p = write(tmp_path, "pii.csv", PII)
    pv = inspect_source(p)
    assert pv.pii_columns == {"email": "email", "phone": "phone", "full_name": "name", "street": "address"}
    ingest(wh, p, "dropped")
    attrs = wh.cursor().execute("SELECT attributes FROM events WHERE dataset = 'dropped'").fetchall()
    assert attrs == [(None,), (None,)]
    assert "example.com" not in json.dumps(wh.cursor().execute("SELECT * FROM events").fetchall(), default=str)
    ingest(wh, p, "kept", keep_pii=["email"])
    got = wh.cursor().execute("SELECT attributes FROM events WHERE dataset = 'kept' ORDER BY customer_id").fetchall()
    assert [json.loads(a[0]) for a in got] == [{"email": "anna@example.com"}, {"email": "bob@example.org"}]
    with pytest.raises(IngestError, match="not a column"):
        ingest(wh, p, "x", keep_pii=["nope"])


def test_pseudonymize_with_keyed_hmac(wh, tmp_path):
    p = write(tmp_path, "o.csv", ORDERS)
    ingest(wh, p, "ps", pseudonymize=True)
    key = bytes.fromhex(wh.setting(PSEUDONYM_KEY_SETTING))
    assert len(key) == 32
    ids = {r[0] for r in wh.cursor().execute("SELECT customer_id FROM events").fetchall()}
    assert ids == {pseudonymize_value(key, "c1"), pseudonymize_value(key, "c2")}
    assert all(i.startswith("p_") and len(i) == 26 for i in ids) and not ids & {"c1", "c2"}
    assert wh.cursor().execute("SELECT pseudonymized FROM datasets WHERE name = 'ps'").fetchone() == (True,)
    # same key next time: re-ingest is a no-op, and mixing raw ids into it is refused
    assert ingest(wh, p, "ps", pseudonymize=True).rows_loaded == 0
    with pytest.raises(IngestError, match="pseudonymized"):
        ingest(wh, p, "ps")


def test_history_rejects_export_delete(wh, tmp_path):
    p = write(tmp_path, "o.csv", ORDERS + "=HYPERLINK(1),2024-01-08,3\nc9,2024-01-09,zz\n")
    r = ingest(wh, p, "ds")
    h = ingestion_history(wh)
    assert h.loc[0, "rows_read"] == 5 and h.loc[0, "rows_rejected"] == 1 and h.loc[0, "file_name"] == "o.csv"
    assert ingestion_history(wh, "nope").empty
    rej = rejects_frame(wh, r.ingestion_id, limit=10)
    assert list(rej.columns) == ["line_number", "raw_line", "reason"] and rej.line_number.tolist() == [6]
    out = export_dataset(wh, "ds", tmp_path / "out.csv")
    df = pd.read_csv(out, dtype=str)
    assert len(df) == 4 and "'=HYPERLINK(1)" in df.customer_id.tolist()
    export_dataset(wh, "ds", tmp_path / "out.parquet", fmt="parquet")
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 4
    # the exported CSV loads back as the 'events' layout with nothing new
    assert inspect_source(out).layout == "events"
    with pytest.raises(IngestError, match="no dataset"):
        export_dataset(wh, "nope", tmp_path / "x.csv")
    delete_dataset(wh, "ds")
    assert counts(wh)["events"] == 0 and counts(wh)["rejects"] == 0 and not wh.has_dataset("ds")
    with pytest.raises(IngestError, match="no dataset"):
        delete_dataset(wh, "ds")


def test_progress_is_reported(wh, tmp_path):
    seen = []
    ingest(wh, write(tmp_path, "o.csv", ORDERS), "ds", progress=lambda f, m: seen.append((f, m)))
    fr = [f for f, _ in seen]
    assert fr[0] == 0.0 and fr[-1] == 1.0 and fr == sorted(fr)


def test_bootstrap_loads_sample_once(wh, tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("customer_id,event_time,event_type,order_id,item_id,category,quantity,revenue,rating,text,country\n"
                 "c1,2024-01-01 10:00:00,purchase,o1,i1,books,1,9.5,,,DE\n", encoding="utf-8")
    assert ensure_default_dataset(wh, tmp_path / "absent.csv.gz") is None
    r = ensure_default_dataset(wh, p)
    assert r.dataset == "sample" and r.rows_loaded == 1
    assert ensure_default_dataset(wh, p) is None
    assert wh.datasets() == ["sample"]


def test_bootstrap_with_committed_sample_file(wh):
    from analytics.bootstrap import SAMPLE_FILE

    if not SAMPLE_FILE.exists():
        pytest.skip("sample file not generated yet")
    r = ensure_default_dataset(wh)
    assert r.layout == "events" and r.rows_rejected == 0 and r.rows_loaded > 10000


def test_two_loads_at_once_from_threads(wh, tmp_path):
    import threading

    files = []
    for k in range(2):
        rows = "".join(f"k{k}c{i},2024-01-{1 + i % 28:02d},{i}.5\n" for i in range(2000))
        files.append(write(tmp_path, f"t{k}.csv", "customer_id,order_date,amount\n" + rows))
    results, errors = {}, []

    def run(k):
        try:
            results[k] = ingest(wh, files[k], f"ds{k}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [results[k].rows_loaded for k in range(2)] == [2000, 2000]
    assert wh.cursor().execute("SELECT dataset, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall() == \
        [("ds0", 2000), ("ds1", 2000)]
