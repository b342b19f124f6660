"""Dense customer keys (analytics.customer_keys): the customer summary grouped on them gives exactly the
SQL statement's rows and an independent pandas summary for ids of any form; keys survive appends,
deletes and re-loads; a warehouse made before keys gets them backfilled when it is opened."""
from __future__ import annotations

import uuid

import duckdb
import numpy as np
import pandas as pd
import pytest

import analytics.warehouse as warehouse_mod
from analytics.customer_keys import assign_keys, has_keys
from analytics.ingest import delete_dataset, ingest
from analytics.migrations import MIGRATIONS
from analytics.summary import customer_summary
from analytics.warehouse import Warehouse
from tests.test_summary import add_events, assert_same_summary
from tests.test_summary_sorted import (assert_equals_pandas, pandas_summary, planted_events, spy_on,
                                      statement_summary)


@pytest.fixture
def keyed(monkeypatch):
    """Records, per summary from the events, whether it was grouped on the customer keys."""
    return spy_on(monkeypatch, "_keyed_summary_sql")


def uuids(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)]


def emails(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    names = ["o'brien", 'a"quote', "zoë", "j.doe+tag", "名前", "back\\slash", "semi;colon", "comma,name", "Émile"]
    return [f"{names[int(rng.integers(len(names)))]}{i}@exämple-{int(rng.integers(100))}.com" for i in range(n)]


def mixed(n: int, seed: int) -> list[str]:
    forms = [str(i) for i in range(n // 4)] + [f"C{i:07d}" for i in range(n // 4)]
    return forms + uuids(n // 4, seed) + emails(n - len(forms) - n // 4, seed)


def key_table(wh, dataset: str) -> pd.DataFrame:
    return wh.cursor().execute("SELECT customer_id, customer_key FROM customer_keys WHERE dataset = ? "
                               "ORDER BY customer_key", [dataset]).df()


def assert_keys_consistent(wh, dataset: str) -> None:
    """Every event has its customer's key, one key per id and one id per key."""
    keys = key_table(wh, dataset)
    assert keys["customer_id"].is_unique and keys["customer_key"].is_unique
    bad = wh.cursor().execute(
        "SELECT count(*) FROM events e LEFT JOIN customer_keys k ON k.dataset = e.dataset "
        "AND k.customer_id = e.customer_id WHERE e.dataset = ? AND e.customer_key IS DISTINCT FROM k.customer_key",
        [dataset]).fetchone()[0]
    assert bad == 0


@pytest.mark.parametrize("make_ids", [uuids, emails, mixed])
@pytest.mark.parametrize("seed", [1, 2])
def test_keyed_summary_equals_statement_and_pandas_for_ids_of_any_form(wh, keyed, make_ids, seed):
    ids = make_ids(300, seed)
    ev = planted_events(seed, ids)
    add_events(wh, "d", ev)
    with wh.transaction() as tx:
        assert assign_keys(tx, "d") == len(set(ids))
    assert_keys_consistent(wh, "d")
    keys = key_table(wh, "d")
    assert keys["customer_key"].tolist() == list(range(1, len(ids) + 1))
    for unit, days in (("days", 1.0), ("weeks", 7.0)):
        for as_of, start in (("2024-03-31", None), ("2023-09-15", None), ("2024-01-31", "2023-07-01")):
            got = customer_summary(wh, "d", as_of, unit, calibration_start=start, persist=False)
            assert keyed[-1] is True
            assert_same_summary(got, statement_summary(wh, "d", as_of, unit, calibration_start=start))
            assert_equals_pandas(got, pandas_summary(ev, as_of, days, start))
            assert_same_summary(customer_summary(wh, "d", as_of, unit, calibration_start=start), got)
    assert set(got.index) <= set(ids)


def test_integer_ids_with_keys_take_the_keys(wh, keyed):
    ids = [str(i) for i in np.random.default_rng(3).choice(np.arange(-50, 10**6), 200, replace=False)]
    ev = planted_events(3, ids)
    add_events(wh, "n", ev)
    with wh.transaction() as tx:
        assign_keys(tx, "n")
    got = customer_summary(wh, "n", "2024-03-31", persist=False)
    assert keyed == [True]
    assert_same_summary(got, statement_summary(wh, "n", "2024-03-31"))
    assert_equals_pandas(got, pandas_summary(ev, "2024-03-31", 1.0))


def test_rows_without_a_key_or_a_broken_dictionary_are_not_grouped_on_keys(wh, keyed):
    ids = emails(60, 4)
    ev = planted_events(4, ids)
    add_events(wh, "d", ev)
    with wh.transaction() as tx:
        assign_keys(tx, "d")
    exp = pandas_summary(ev, "2024-03-31", 1.0)
    # a row written without its key (by hand): the summary groups on the ids
    extra = pd.DataFrame([(ids[0], pd.Timestamp("2024-03-01 10:00"), "purchase", 3.5, None)],
                         columns=["customer_id", "event_time", "event_type", "revenue", "rating"])
    add_events(wh, "d", extra)
    both = pd.concat([ev, extra], ignore_index=True)
    got = customer_summary(wh, "d", "2024-03-31", persist=False)
    assert keyed == []
    assert_equals_pandas(got, pandas_summary(both, "2024-03-31", 1.0))
    with wh.transaction() as tx:  # the next load numbers the rows that have none
        assert assign_keys(tx, "d") == 0
    assert_keys_consistent(wh, "d")
    assert_equals_pandas(customer_summary(wh, "d", "2024-03-31", persist=False), pandas_summary(both, "2024-03-31", 1.0))
    assert keyed == [True]
    # a key missing from the dictionary, then two ids with one key: never merged or lost
    cur = wh.cursor()
    cur.execute("DELETE FROM customer_keys WHERE dataset = 'd' AND customer_key = 5")
    assert_equals_pandas(customer_summary(wh, "d", "2024-03-31", persist=False), pandas_summary(both, "2024-03-31", 1.0))
    cur.execute("INSERT INTO customer_keys VALUES ('d', 'nobody@example.com', 6)")
    assert_equals_pandas(customer_summary(wh, "d", "2024-03-31", persist=False), pandas_summary(both, "2024-03-31", 1.0))
    assert keyed == [True, False, False]
    del exp


def write_csv(path, rows) -> None:
    pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"]).to_csv(path, index=False)


def orders(ids, seed: int, n: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2023-01-01")
    return [(ids[int(rng.integers(len(ids)))], str(t0 + pd.Timedelta(seconds=int(rng.integers(0, 500 * 86400)))),
             round(float(rng.uniform(1, 300)), 2)) for _ in range(n)]


def loaded_events(wh, dataset: str) -> pd.DataFrame:
    return wh.cursor().execute("SELECT customer_id, event_time, event_type, revenue, rating FROM events "
                               "WHERE dataset = ?", [dataset]).df()


def test_keys_survive_append_delete_and_reload(wh, keyed, tmp_path):
    first, later = emails(80, 5), uuids(40, 6)
    p1, p2 = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(p1, orders(first, 1, 600))
    write_csv(p2, orders(first[:30] + later, 2, 400))
    ingest(wh, p1, "shop")
    assert has_keys(wh.cursor(), "shop")
    assert_keys_consistent(wh, "shop")
    k1 = key_table(wh, "shop")
    assert k1["customer_key"].tolist() == list(range(1, len(k1) + 1))
    assert k1["customer_id"].tolist() == sorted(k1["customer_id"])  # a load numbers its ids in id order
    ingest(wh, p2, "shop")  # an append: known ids keep their keys, new ones get the next numbers
    assert_keys_consistent(wh, "shop")
    k2 = key_table(wh, "shop")
    assert k2.iloc[:len(k1)].equals(k1)
    new = k2.iloc[len(k1):]
    assert sorted(new["customer_id"]) == sorted(set(later) & set(loaded_events(wh, "shop")["customer_id"]))
    assert new["customer_key"].tolist() == list(range(len(k1) + 1, len(k2) + 1))
    ev = loaded_events(wh, "shop")
    got = customer_summary(wh, "shop", "2024-06-30", "weeks")
    assert keyed[-1] is True
    assert_same_summary(got, statement_summary(wh, "shop", "2024-06-30", "weeks"))
    assert_equals_pandas(got, pandas_summary(ev, "2024-06-30", 7.0))
    ingest(wh, p2, "other")  # another dataset numbers its own customers
    assert key_table(wh, "other")["customer_key"].min() == 1
    delete_dataset(wh, "shop")
    assert key_table(wh, "shop").empty
    assert_keys_consistent(wh, "other")
    ingest(wh, p1, "shop")  # loaded again: the same keys as the first time
    assert key_table(wh, "shop").equals(k1)
    got = customer_summary(wh, "shop", "2024-06-30", persist=False)
    assert keyed[-1] is True
    assert_equals_pandas(got, pandas_summary(loaded_events(wh, "shop"), "2024-06-30", 1.0))


def test_numeric_ids_get_no_keys_until_a_load_brings_other_ids(wh, keyed, tmp_path):
    nums, odd = [f"C{i:07d}" for i in range(50)], emails(20, 7)
    p1, p2 = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(p1, orders(nums, 3, 300))
    write_csv(p2, orders(odd + nums[:5], 4, 200))
    ingest(wh, p1, "shop")
    ingest(wh, p1, "again")
    assert not has_keys(wh.cursor(), "shop")
    assert wh.cursor().execute("SELECT count(customer_key) FROM events").fetchone()[0] == 0
    customer_summary(wh, "shop", "2024-06-30", persist=False)
    assert keyed == []  # the ids' own numbers
    ingest(wh, p2, "shop")  # ids of another form: the whole dataset is numbered, earlier rows too
    assert has_keys(wh.cursor(), "shop") and not has_keys(wh.cursor(), "again")
    assert_keys_consistent(wh, "shop")
    assert len(key_table(wh, "shop")) == loaded_events(wh, "shop")["customer_id"].nunique()
    got = customer_summary(wh, "shop", "2024-06-30", persist=False)
    assert keyed == [True]
    assert_equals_pandas(got, pandas_summary(loaded_events(wh, "shop"), "2024-06-30", 1.0))
    ingest(wh, p1, "shop")  # every row is a duplicate: nothing to number
    write_csv(p1, orders(nums + [f"C{i:07d}" for i in range(50, 60)], 9, 300))
    ingest(wh, p1, "shop")  # a keyed dataset numbers every load, whatever its ids
    assert_keys_consistent(wh, "shop")


def test_a_load_of_another_numeric_form_gives_keys(wh, tmp_path):
    p1, p2 = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(p1, orders([f"C{i:07d}" for i in range(40)], 5, 200))
    write_csv(p2, orders([str(i) for i in range(40)], 6, 200))
    ingest(wh, p1, "shop")
    ingest(wh, p2, "shop")
    assert has_keys(wh.cursor(), "shop")
    assert_keys_consistent(wh, "shop")


def test_a_warehouse_made_before_keys_gets_them_when_opened(tmp_path, monkeypatch):
    """A warehouse file made with the schema before keys (every migration but the keys'), with
    events of ids of several forms in two datasets: opening it numbers every dataset's
    customers, and the summaries grouped on the keys equal the statement's and pandas'."""
    path = tmp_path / "old.duckdb"
    old = [m for m in MIGRATIONS if "customer_keys" not in m[2]]
    assert len(old) == len(MIGRATIONS) - 1
    monkeypatch.setattr(warehouse_mod, "MIGRATIONS", old)
    w = Warehouse(path, key=None)
    cols = {r[0] for r in w.cursor().execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'events'").fetchall()}
    assert "customer_key" not in cols
    evs = {"a": planted_events(8, mixed(120, 8)), "b": planted_events(9, uuids(90, 9))}
    for name, ev in evs.items():
        add_events(w, name, ev)
    w.close()
    monkeypatch.setattr(warehouse_mod, "MIGRATIONS", MIGRATIONS)
    w = Warehouse(path, key=None)
    try:
        assert w.schema_version() == max(v for v, _, _ in MIGRATIONS)
        for name, ev in evs.items():
            assert_keys_consistent(w, name)
            keys = key_table(w, name)
            assert keys["customer_key"].tolist() == list(range(1, ev["customer_id"].nunique() + 1))
            assert keys["customer_id"].tolist() == sorted(ev["customer_id"].unique())
            assert w.cursor().execute("SELECT count(*) FROM events WHERE dataset = ? AND customer_key IS NULL",
                                      [name]).fetchone()[0] == 0
            got = customer_summary(w, name, "2024-03-31", "weeks", persist=False)
            assert_same_summary(got, statement_summary(w, name, "2024-03-31", "weeks"))
            assert_equals_pandas(got, pandas_summary(ev, "2024-03-31", 7.0))
    finally:
        w.close()
    with duckdb.connect(str(path)) as con:  # the keys are in the file
        assert con.execute("SELECT count(*) FROM customer_keys").fetchone()[0] == sum(
            ev["customer_id"].nunique() for ev in evs.values())
