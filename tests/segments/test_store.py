"""Saved segments and clustering runs in the warehouse."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from analytics.segments import store
from analytics.segments.clustering import CustomerClustering
from analytics.segments.rules import RuleError
from analytics.segments.store import SegmentStoreError

DEF = {"op": "and", "conditions": [{"field": "net_revenue", "operator": ">=", "value": "1000"}]}
XSS = '<script>alert("x")</script> & <b>VIPs</b>'


def test_save_get_list_update_delete(wh):
    t0 = dt.datetime(2025, 1, 2, 3, 4, 5)
    sid = store.save_segment(wh, f"  {XSS}  ", DEF, description=XSS, now=t0)
    seg = store.get_segment(wh, sid)
    assert seg["name"] == XSS and seg["description"] == XSS  # stored as-is (trimmed)
    assert seg["definition"]["conditions"][0]["value"] == 1000  # validated and coerced
    assert seg["created_at"] == t0 and seg["updated_at"] == t0
    assert store.get_segment(wh, XSS)["id"] == sid
    sid2 = store.save_segment(wh, "Alpha", {"op": "or", "conditions": []}, now=t0)
    assert store.list_segments(wh)["name"].tolist() == [XSS, "Alpha"]  # by lower(name): '<' < 'a'
    assert sorted(store.list_segments(wh)["id"].tolist()) == sorted([sid, sid2])
    t1 = t0 + dt.timedelta(days=1)
    upd = store.update_segment(wh, sid, name="Big spenders", description="d",
                               definition={"op": "and", "conditions": [
                                   {"field": "n_orders", "operator": ">", "value": 3}]}, now=t1)
    assert upd["name"] == "Big spenders" and upd["created_at"] == t0 and upd["updated_at"] == t1
    assert upd["definition"]["conditions"][0]["field"] == "n_orders"
    with pytest.raises(SegmentStoreError, match="already exists"):
        store.update_segment(wh, sid, name="Alpha")
    store.delete_segment(wh, "Alpha")
    with pytest.raises(SegmentStoreError, match="no saved segment 'Alpha'"):
        store.get_segment(wh, "Alpha")
    with pytest.raises(SegmentStoreError, match="no saved segment"):
        store.delete_segment(wh, "Alpha")
    assert store.list_segments(wh)["name"].tolist() == ["Big spenders"]


def test_bad_segments_leave_nothing(wh):
    store.save_segment(wh, "A", DEF)
    with pytest.raises(SegmentStoreError, match="already exists"):
        store.save_segment(wh, " A ", DEF)
    with pytest.raises(SegmentStoreError, match="needs a name"):
        store.save_segment(wh, "   ", DEF)
    with pytest.raises(SegmentStoreError, match="at most 200"):
        store.save_segment(wh, "x" * 201, DEF)
    with pytest.raises(RuleError, match="expected a number"):
        store.save_segment(wh, "B", {"op": "and", "conditions": [
            {"field": "net_revenue", "operator": ">", "value": "'; DROP TABLE segments; --"}]})
    assert store.list_segments(wh)["name"].tolist() == ["A"]


def test_saved_segment_reevaluates_on_current_data(wh):
    store.save_segment(wh, "big", DEF)
    df = pd.DataFrame({"net_revenue": [10.0, 2000.0]}, index=pd.Index(["a", "b"], name="customer_id"))
    assert store.evaluate_segment(wh, "big", df).tolist() == [False, True]
    df.loc["a", "net_revenue"] = 5000.0
    assert store.evaluate_segment(wh, "big", df).tolist() == [True, True]


def test_segments_survive_reopen(tmp_path):
    from analytics.warehouse import Warehouse

    path = tmp_path / "w.duckdb"
    w = Warehouse(path)
    store.save_segment(w, "keep", DEF, description="kept")
    w.close()
    w = Warehouse(path)
    assert store.get_segment(w, "keep")["description"] == "kept"
    w.close()


def test_clustering_run_round_trip(wh, planted):
    frame, _ = planted
    m = CustomerClustering(n_clusters=4).fit(frame)
    run = store.save_clustering_run(wh, m, "shop", "2025-12-31", label="first")
    info = store.get_clustering_run(wh, run)
    assert info["dataset"] == "shop" and info["as_of"] == dt.date(2025, 12, 31)
    assert info["features"] == m.features_ and info["names"] == m.names_
    assert info["parameters"]["n_clusters"] == 4 and info["n_customers"] == len(frame)
    assert len(info["profiles"]["profiles"]) == 4
    a = store.load_assignments(wh, run)
    assert a.index.is_unique and len(a) == len(frame)
    assert a["cluster"].reindex(frame.index).tolist() == m.labels_.tolist()
    assert a["cluster_name"].reindex(frame.index).tolist() == m.assignments()["cluster_name"].tolist()
    run2 = store.save_clustering_run(wh, CustomerClustering(n_clusters=3).fit(frame), "shop", "2025-06-30")
    assert store.latest_clustering_run(wh, "shop") == run2
    assert store.latest_clustering_run(wh, "shop", as_of="2025-12-31") == run
    assert store.latest_clustering_run(wh, "other") is None
    runs = store.list_clustering_runs(wh, "shop")
    assert set(runs["id"]) == {run, run2}

    # the saved run assigns (new) customers like the fitted model
    again = store.assign_with_run(wh, run, frame)
    assert (again["cluster"] == m.labels_).mean() > 0.99
    assert again["cluster_name"].tolist() == [m.names_[c] for c in again["cluster"]]

    store.rename_cluster(wh, run, 2, XSS)
    assert store.get_clustering_run(wh, run)["names"][2] == XSS
    a = store.load_assignments(wh, run)
    assert (a["cluster_name"] == XSS).sum() == (a["cluster"] == 2).sum() > 0
    with pytest.raises(SegmentStoreError, match="already named"):
        store.rename_cluster(wh, run, 1, XSS)
    with pytest.raises(SegmentStoreError, match="no cluster 9"):
        store.rename_cluster(wh, run, 9, "x")

    store.delete_clustering_run(wh, run)
    with pytest.raises(SegmentStoreError, match=f"no clustering run {run}"):
        store.load_assignments(wh, run)
    n = wh.cursor().execute("SELECT count(*) FROM cluster_assignments WHERE run_id = ?", [run]).fetchone()[0]
    assert n == 0


def test_renaming_a_cluster_keeps_the_segments_saved_from_it(wh, planted):
    """A segment saved from a cluster selects it by name: renaming the cluster must not leave the
    segment selecting nobody (the Segments page's Rename after "Save cluster as segment")."""
    from analytics.segments import rules

    frame, _ = planted
    wh.cursor().execute("INSERT INTO datasets (name) VALUES ('shop'), ('other')")
    m = CustomerClustering(n_clusters=4, random_state=0).fit(frame)
    run = store.save_clustering_run(wh, m, "shop", "2025-12-31")
    old = m.names_[1]
    store.save_segment(wh, "from cluster", rules.cluster_definition(old), dataset="shop")
    nested = {"op": "or", "conditions": [{"field": "n_orders", "operator": ">", "value": 1000},
                                         {"op": "and", "conditions": [
                                             {"field": "cluster_name", "operator": "in", "value": [old, m.names_[2]]}]}]}
    store.save_segment(wh, "nested", nested, dataset="shop")
    store.save_segment(wh, "elsewhere", rules.cluster_definition(old), dataset="other")
    members = int((m.labels_ == 1).sum())
    framed = frame.assign(**store.load_assignments(wh, run).reindex(frame.index))
    assert int(store.evaluate_segment(wh, "from cluster", framed, dataset="shop").sum()) == members > 0

    assert store.rename_cluster(wh, run, 1, "VIPs") == 2
    framed = frame.assign(**store.load_assignments(wh, run).reindex(frame.index))
    assert int(store.evaluate_segment(wh, "from cluster", framed, dataset="shop").sum()) == members
    want = members + int((m.labels_ == 2).sum())
    assert int(store.evaluate_segment(wh, "nested", framed, dataset="shop").sum()) == want
    # another dataset's segment names another dataset's clusters: untouched
    assert store.get_segment(wh, "elsewhere", "other")["definition"] == rules.cluster_definition(old)

    # an older run is not what segments are evaluated on: renaming in it changes no segment
    store.save_clustering_run(wh, CustomerClustering(n_clusters=3, random_state=0).fit(frame), "shop", "2025-12-31")
    assert store.rename_cluster(wh, run, 1, "Old VIPs") == 0
    assert store.get_segment(wh, "from cluster", "shop")["definition"] == rules.cluster_definition("VIPs")


def test_failed_run_write_leaves_nothing(wh, planted):
    frame, _ = planted
    m = CustomerClustering(n_clusters=3).fit(frame)
    good = store.save_clustering_run(wh, m, "shop", "2025-12-31")
    dup = CustomerClustering(n_clusters=3).fit(frame)
    dup.labels_.index = pd.Index(["same"] * len(dup.labels_), name="customer_id")
    with pytest.raises(SegmentStoreError, match="unique"):
        store.save_clustering_run(wh, dup, "shop", "2025-12-31")
    with pytest.raises(SegmentStoreError, match="not a date"):
        store.save_clustering_run(wh, m, "shop", "not a date")
    # a failure inside the transaction (NULL cluster name violates NOT NULL on the
    # assignments) rolls back the run row written just before it
    broken = CustomerClustering(n_clusters=3).fit(frame)
    broken.names_ = [None, None, None]
    with pytest.raises(Exception):
        store.save_clustering_run(wh, broken, "shop", "2025-12-31")
    cur = wh.cursor()
    assert cur.execute("SELECT list(id) FROM clustering_runs").fetchone()[0] == [good]
    assert cur.execute("SELECT count(DISTINCT run_id) FROM cluster_assignments").fetchone()[0] == 1
    json.dumps(store.get_clustering_run(wh, good)["profiles"])


def test_deleting_the_dataset_removes_runs_and_assignments(wh, planted):
    from analytics.ingest.loader import delete_dataset

    frame, _ = planted
    wh.cursor().execute("INSERT INTO datasets (name) VALUES ('shop'), ('other')")
    m = CustomerClustering(n_clusters=3).fit(frame)
    store.save_clustering_run(wh, m, "shop", "2025-12-31")
    keep = store.save_clustering_run(wh, m, "other", "2025-12-31")
    delete_dataset(wh, "shop")
    cur = wh.cursor()
    assert cur.execute("SELECT list(DISTINCT run_id) FROM cluster_assignments").fetchone()[0] == [keep]
    assert cur.execute("SELECT list(id) FROM clustering_runs").fetchone()[0] == [keep]


def test_migration_21_backfills_dataset(tmp_path):
    """A warehouse created at schema 20 (runs saved before migration 21) gets the dataset filled in."""
    import duckdb

    from analytics import migrations
    from analytics.warehouse import Warehouse

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR, "
                "applied_at TIMESTAMP DEFAULT current_timestamp)")
    for version, name, sql in sorted(migrations.MIGRATIONS):
        if version > 20:
            continue
        for stmt in [x.strip() for x in sql.split(";\n") if x.strip()]:
            con.execute(stmt)
        con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name])
    con.execute("INSERT INTO clustering_runs VALUES (7, 'shop', DATE '2025-01-01', '[]', '{}', '[\"a\"]', NULL, 2, "
                "NULL, TIMESTAMP '2025-01-02 00:00:00')")
    con.execute("INSERT INTO cluster_assignments VALUES (7, 'c1', 0, 'a'), (7, 'c2', 0, 'a'), (99, 'orphan', 0, 'a')")
    con.close()
    w = Warehouse(path)
    rows = w.cursor().execute("SELECT run_id, customer_id, dataset FROM cluster_assignments ORDER BY 2").fetchall()
    assert rows == [(7, "c1", "shop"), (7, "c2", "shop")]
    w.close()
