"""The segment builder: activity and attribute conditions, nested groups, SQL equal to evaluation,
per-dataset scope and clear messages for data a dataset lacks."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.ingest import delete_dataset, ingest
from analytics.segments import rules, store
from analytics.segments.activity import EventSource, attribute_field_name, is_personal
from analytics.warehouse import Warehouse

AS_OF = "2025-06-30"


def _events(seed: int = 3, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    cats = ["books", "toys", "garden"]
    for i in range(n):
        cid = f"c{i:03d}"
        country = ["DE", "FR", "GB"][i % 3]
        tier = ["gold", "silver", ""][i % 3]
        for _ in range(rng.integers(1, 8)):
            day = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 200)))
            kind = rng.choice(["view", "cart", "purchase"], p=[0.5, 0.2, 0.3])
            cat = cats[int(rng.integers(0, 3))]
            item = f"{cat[:2].upper()}{int(rng.integers(1, 5))}"
            amount = round(float(rng.uniform(5, 80)), 2) if kind == "purchase" else ""
            order = f"o{len(rows)}" if kind == "purchase" else ""
            rows.append((cid, f"{day:%Y-%m-%d} 10:00:00", kind, order, item, cat, amount, country, tier,
                         f"{cid}@example.com"))
    return pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "order_id", "item_id", "category",
                                       "revenue", "country", "tier", "email"])


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ev = _events()
    path = tmp_path_factory.mktemp("seg") / "events.csv"
    ev.to_csv(path, index=False)
    wh = Warehouse(":memory:")
    from analytics.ingest import Mapping, inspect_source

    m = inspect_source(path).mapping
    m = Mapping.from_dict({**m.to_dict(), "attributes": ["tier"]})
    ingest(wh, path, "shop", mapping=m, keep_pii=["email"])
    ev["event_time"] = pd.to_datetime(ev["event_time"])
    yield wh, ev
    wh.close()


def _frame(ev) -> pd.DataFrame:
    ids = sorted(ev["customer_id"].unique())
    f = pd.DataFrame({"net_revenue": ev.assign(r=pd.to_numeric(ev.revenue, errors="coerce")).groupby("customer_id")
                      ["r"].sum().reindex(ids).fillna(0.0)}, index=pd.Index(ids, name="customer_id"))
    f.attrs = {"dataset": "shop", "as_of": AS_OF}
    return f


def test_attribute_fields_leave_out_personal_data(shop):
    wh, ev = shop
    src = EventSource(wh, "shop", AS_OF)
    fields = src.fields()
    assert {"bought_product", "bought_category", "event_count", "country", "attr_tier"} <= set(fields)
    assert not any("email" in f for f in fields) and is_personal("E-mail") and is_personal("phone_number")
    assert attribute_field_name("Loyalty Tier!") == "attr_loyalty_tier"
    attrs = src.attributes()
    # the latest non-empty value up to the as-of day, as pandas computes it
    up_to = ev[ev.event_time < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)]
    want = up_to.sort_values("event_time").groupby("customer_id")["country"].last()
    assert attrs["country"].reindex(want.index).tolist() == want.tolist()
    assert set(attrs["attr_tier"].dropna()) == {"gold", "silver"}


def _expected(ev, frame):
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    up = ev[ev.event_time < end]
    last30 = up[up.event_time >= end - pd.Timedelta(days=30)]
    books30 = set(last30[(last30.event_type == "purchase") & (last30.category == "books")].customer_id)
    views = up[up.event_type == "view"].groupby("customer_id").size()
    toys_ever = set(up[(up.event_type == "purchase") & (up.category == "toys")].customer_id)
    country = up.sort_values("event_time").groupby("customer_id")["country"].last()
    ids = frame.index
    a = ids.isin(list(books30))
    b = views.reindex(ids).fillna(0).to_numpy() >= 2
    c = ~ids.isin(list(toys_ever))
    d = country.reindex(ids).isin(["DE", "FR"]).to_numpy()
    return a | (b & c & d)


NESTED = {"op": "or", "conditions": [
    {"field": "bought_category", "operator": "in", "value": ["books"], "days": 30},
    {"op": "and", "conditions": [
        {"field": "event_count", "event": "view", "operator": ">=", "value": 2},
        {"field": "bought_category", "operator": "not_in", "value": ["toys"]},
        {"field": "country", "operator": "in", "value": ["DE", "FR"]}]}]}


def test_nested_activity_definition_against_pandas_and_sql(shop):
    wh, ev = shop
    frame = _frame(ev)
    src = EventSource(wh, "shop", AS_OF)
    fields = rules.fields_for(frame, src)
    got = rules.evaluate(NESTED, frame, fields, source=src).to_numpy()
    want = _expected(ev, frame)
    assert got.sum() > 3 and (~got).sum() > 3   # the test can fail both ways
    assert (got == want).all()
    # the SQL compiled from the same definition selects the same customers (country from a table here)
    table = frame.join(src.attributes()[["country"]]).reset_index()
    cur = wh.cursor()
    cur.register("customers_t", table)
    where, params = rules.to_sql(NESTED, fields, events=src.sql_context())
    assert "books" not in where and "DE" not in where   # values are parameters
    sel = {r[0] for r in cur.execute(f"SELECT customer_id FROM customers_t WHERE {where}", params).fetchall()}
    assert sel == set(frame.index[want])
    for op, value in (("<", 2), ("=", 0), ("between", [0, 1]), ("!=", 1), (">", 0)):   # 0 passes, or not
        d = {"conditions": [{"field": "event_count", "event": "view", "operator": op, "value": value, "days": 90}]}
        where, params = rules.to_sql(d, fields, events=src.sql_context())
        sel = {r[0] for r in cur.execute(f"SELECT customer_id FROM customers_t WHERE {where}", params).fetchall()}
        assert sel == set(frame.index[rules.evaluate(d, frame, fields, source=src).to_numpy()]), op
    words = rules.describe(NESTED, fields)
    assert "bought from category books in the last 30 days" in words and "never bought from category toys" in words


def test_bad_activity_and_missing_fields_say_why(shop, test_data):
    wh, ev = shop
    frame = _frame(ev)
    fields = rules.fields_for(frame, EventSource(wh, "shop", AS_OF))
    with pytest.raises(rules.RuleError, match="number of days must be a whole number from 1"):
        rules.validate({"conditions": [{"field": "bought_category", "operator": "in", "value": ["x"], "days": 0}]},
                       fields)
    with pytest.raises(rules.RuleError, match="choose the event type"):
        rules.validate({"conditions": [{"field": "event_count", "operator": ">", "value": 1, "event": "click"}]},
                       fields)
    with pytest.raises(rules.RuleError, match="unexpected key"):
        rules.validate({"conditions": [{"field": "net_revenue", "operator": ">", "value": 1, "days": 3}]}, fields)
    # CDNOW has no countries, categories or attributes: a condition on them says so in words
    cd = Warehouse(":memory:")
    ingest(cd, test_data / "CDNOW_sample.txt", "cdnow")
    src = EventSource(cd, "cdnow", "1997-09-30")
    cd_fields = rules.fields_for(frame.iloc[:0], src)
    for cond in ({"field": "country", "operator": "in", "value": ["US"]},
                 {"field": "bought_category", "operator": "in", "value": ["rock"]},
                 {"field": "attr_tier", "operator": "=", "value": "gold"}):
        with pytest.raises(rules.RuleError, match="this dataset has no data for"):
            rules.validate({"conditions": [cond]}, cd_fields)


def test_segments_per_dataset_or_shared(wh, tmp_path):
    for name in ("a", "b"):
        f = tmp_path / f"{name}.csv"
        f.write_text("customer,date,amount\n1,2025-01-02,12.5\n2,2025-01-03,3\n")
        ingest(wh, f, name)
    big = {"conditions": [{"field": "net_revenue", "operator": ">=", "value": 10}]}
    ia = store.save_segment(wh, "Big spenders", big, dataset="a")
    ib = store.save_segment(wh, "Big spenders", big, dataset="b")   # the same name on another dataset
    assert ia != ib
    with pytest.raises(store.SegmentStoreError, match="of dataset 'a'"):
        store.save_segment(wh, "Big spenders", big, dataset="a")
    with pytest.raises(store.SegmentStoreError, match="already exists"):
        store.save_segment(wh, "Big spenders", big)        # a shared one would clash with both
    store.save_segment(wh, "Everyone", {"conditions": []})
    with pytest.raises(store.SegmentStoreError, match="shared by all datasets"):
        store.save_segment(wh, "Everyone", big, dataset="b")
    assert store.list_segments(wh, "a")["name"].tolist() == ["Big spenders", "Everyone"]
    assert store.get_segment(wh, "Big spenders", "b")["id"] == ib
    with pytest.raises(store.SegmentStoreError, match="say which dataset"):
        store.get_segment(wh, "Big spenders")
    with pytest.raises(store.SegmentStoreError, match="no saved segment"):
        store.get_segment(wh, ia, "b")
    moved = store.update_segment(wh, ia, dataset=None, name="Big spenders (all)")
    assert moved["dataset"] is None and store.list_segments(wh, "b")["name"].tolist() == [
        "Big spenders", "Big spenders (all)", "Everyone"]
    delete_dataset(wh, "b")   # its own segment goes with it, shared ones stay
    assert store.list_segments(wh)["name"].tolist() == ["Big spenders (all)", "Everyone"]
    with pytest.raises(store.SegmentStoreError, match="no dataset named"):
        store.save_segment(wh, "x", big, dataset="nope")


def test_migration_91_keeps_segments_saved_before_as_shared(tmp_path):
    import duckdb

    from analytics import migrations

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    for version, name, sql in sorted(migrations.MIGRATIONS):
        if version >= 91:
            continue
        for stmt in [s for s in sql.split(";\n") if s.strip()]:
            con.execute(stmt)
        con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name])
    for _ in range(6):
        con.execute("SELECT nextval('segment_id_seq')")
    con.execute("INSERT INTO segments VALUES (nextval('segment_id_seq'), 'Old', '', ?, now(), now())",
                [json.dumps({"op": "and", "conditions": []})])
    con.close()
    wh = Warehouse(path)
    seg = store.get_segment(wh, "Old")
    assert seg["id"] == 7 and seg["dataset"] is None
    assert store.save_segment(wh, "New", {"conditions": []}) > 7   # the id sequence carries on
    wh.close()
