"""Rule-based segment definitions: validation, pandas evaluation, SQL compilation, injection."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from analytics.segments import rules
from analytics.segments.rules import CUSTOMER_FIELDS, Field, RuleError, evaluate, to_sql, validate
from analytics.warehouse import WarehouseError


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "net_revenue": [10.0, np.nan, 500.0, 50.0, 1200.0, 0.0],
        "n_orders": [1, 0, 5, 2, 12, 0],
        "country": ["DE", "FR", None, "de", "AT", "O'Neil; DROP TABLE x"],
        "rfm_segment": ["Champions", "Lost", "Champions", "At risk", "Champions", None],
        "last_purchase": pd.to_datetime(["2025-01-01", None, "2025-06-01 10:00", "2024-12-31", "2025-12-30", None], format="ISO8601"),
        "probability_alive": [0.2, np.nan, 0.9, 0.5, 0.95, 0.01],
    }).set_index("customer_id")


def sql_select(df: pd.DataFrame, definition, fields=None) -> list[str]:
    where, params = to_sql(definition, fields)
    con = duckdb.connect()
    con.register("t", df.reset_index())
    rows = con.execute(f"SELECT customer_id FROM t WHERE {where} ORDER BY customer_id", params).fetchall()
    con.close()
    return [r[0] for r in rows]


def pandas_select(df, definition, fields=None) -> list[str]:
    return sorted(df.index[evaluate(definition, df, fields)].tolist())


CASES = [
    ({"op": "and", "conditions": [{"field": "net_revenue", "operator": ">=", "value": 50}]}, ["c", "d", "e"]),
    ({"op": "and", "conditions": [{"field": "net_revenue", "operator": "!=", "value": 10}]}, ["c", "d", "e", "f"]),
    ({"op": "and", "conditions": [{"field": "net_revenue", "operator": "between", "value": [0, 50]}]}, ["a", "d", "f"]),
    ({"op": "and", "conditions": [{"field": "n_orders", "operator": "in", "value": [0, "5"]}]}, ["b", "c", "f"]),
    ({"op": "and", "conditions": [{"field": "country", "operator": "contains", "value": "De"}]}, ["a", "d"]),
    ({"op": "and", "conditions": [{"field": "country", "operator": "not_in", "value": ["DE", "FR"]}]}, ["d", "e", "f"]),
    ({"op": "and", "conditions": [{"field": "country", "operator": "=", "value": "O'Neil; DROP TABLE x"}]}, ["f"]),
    ({"op": "and", "conditions": [{"field": "rfm_segment", "operator": "is_null", "value": True}]}, ["f"]),
    ({"op": "and", "conditions": [{"field": "probability_alive", "operator": "is_null", "value": False},
                                  {"field": "probability_alive", "operator": "<", "value": "0.5"}]}, ["a", "f"]),
    ({"op": "and", "conditions": [{"field": "last_purchase", "operator": ">=", "value": "2025-01-01"}]}, ["a", "c", "e"]),
    ({"op": "and", "conditions": [{"field": "last_purchase", "operator": "between",
                                   "value": ["2024-12-31", "2025-06-01"]}]}, ["a", "d"]),
    ({"op": "or", "conditions": [
        {"field": "rfm_segment", "operator": "=", "value": "Lost"},
        {"op": "and", "conditions": [{"field": "rfm_segment", "operator": "=", "value": "Champions"},
                                     {"field": "net_revenue", "operator": ">", "value": 400}]}]}, ["b", "c", "e"]),
    ({"op": "and", "conditions": []}, ["a", "b", "c", "d", "e", "f"]),
    ({"op": "or", "conditions": []}, []),
]


@pytest.mark.parametrize("definition, expected", CASES)
def test_pandas_and_sql_agree(customers, definition, expected):
    assert pandas_select(customers, definition) == expected
    assert sql_select(customers, definition) == expected


def test_validate_coerces_and_is_json(customers):
    d = validate({"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">", "value": "1,000.5"},
        {"field": "last_purchase", "operator": "<", "value": "2025-03-01"},
        {"field": "country", "operator": "in", "value": ["DE", "DE", 7]},
    ]})
    assert [c["value"] for c in d["conditions"]] == [1000.5, "2025-03-01", ["DE", "7"]]
    assert validate(json.dumps(d)) == d  # JSON text round trip
    assert rules.used_fields(d) == ["net_revenue", "last_purchase", "country"]
    assert rules.describe(d) == "Net revenue > 1000.5 and Last purchase < 2025-03-01 and Country in DE, 7"


@pytest.mark.parametrize("condition, msg", [
    ({"field": "net_revenue", "operator": ">", "value": "lots"}, r"condition 1 \(Net revenue >\): expected a number, got 'lots'"),
    ({"field": "net_revenue", "operator": ">", "value": True}, "expected a number"),
    ({"field": "net_revenue", "operator": ">", "value": None}, "a value is required"),
    ({"field": "net_revenue", "operator": ">", "value": "nan"}, "finite number"),
    ({"field": "last_purchase", "operator": "<", "value": "yesterday-ish"}, "expected a date like 2025-01-31"),
    ({"field": "last_purchase", "operator": "<", "value": 20250101}, "expected a date"),
    ({"field": "country", "operator": "=", "value": {"$ne": 1}}, "expected text"),
    ({"field": "net_revenue", "operator": "between", "value": [10]}, "list of two values"),
    ({"field": "net_revenue", "operator": "between", "value": [10, 5]}, "low end 10 is above the high end 5"),
    ({"field": "country", "operator": "in", "value": "DE"}, "needs a list"),
    ({"field": "country", "operator": "in", "value": []}, "at least one value"),
    ({"field": "country", "operator": "<", "value": "DE"}, "operator '<' does not apply to category field 'country'"),
    ({"field": "net_revenue", "operator": "contains", "value": "1"}, "does not apply to numeric"),
    ({"field": "net_revenue", "operator": "LIKE", "value": "1"}, "unknown operator 'LIKE'"),
    ({"field": "rfm_segment", "operator": "is_null", "value": "yes"}, "true .* or false"),
    ({"field": "net_revenue", "operator": ">", "value": 1, "sql": "1=1"}, "unexpected key"),
])
def test_bad_conditions(condition, msg):
    with pytest.raises(RuleError, match=msg):
        validate({"op": "and", "conditions": [condition]})


def test_bad_groups():
    with pytest.raises(RuleError, match="group op must be 'and' or 'or'"):
        validate({"op": "and; DROP TABLE events", "conditions": []})
    with pytest.raises(RuleError, match="not valid JSON"):
        validate("{not json")
    with pytest.raises(RuleError, match="condition 2: expected a condition or a group"):
        validate({"op": "and", "conditions": [{"field": "n_orders", "operator": "=", "value": 1}, 5]})
    deep = {"op": "and", "conditions": []}
    for _ in range(12):
        deep = {"op": "or", "conditions": [deep]}
    with pytest.raises(RuleError, match="nest at most"):
        validate(deep)
    many = {"op": "or", "conditions": [{"field": "n_orders", "operator": "=", "value": i} for i in range(201)]}
    with pytest.raises(RuleError, match="at most 200 conditions"):
        validate(many)
    # errors name the nested position
    with pytest.raises(RuleError, match=r"condition 2 › condition 1 \(Orders =\)"):
        validate({"op": "and", "conditions": [
            {"field": "n_orders", "operator": "=", "value": 1},
            {"op": "or", "conditions": [{"field": "n_orders", "operator": "=", "value": "x"}]}]})


INJECTION_FIELDS = [
    'net_revenue"; DROP TABLE events; --',
    "net_revenue) OR (1=1",
    "1=1",
    "net_revenue --",
    "",
    None,
    "customer_id\" = customer_id OR \"x",
]


@pytest.mark.parametrize("field", INJECTION_FIELDS)
def test_injection_in_field_names_refused(customers, field):
    d = {"op": "and", "conditions": [{"field": field, "operator": "=", "value": 1}]}
    with pytest.raises(RuleError, match="unknown field"):
        to_sql(d)
    with pytest.raises(RuleError, match="unknown field"):
        evaluate(d, customers)


def test_injection_in_whitelist_itself_refused():
    with pytest.raises(ValueError, match="not a plain column name"):
        Field('x"; DROP TABLE events; --', "numeric")
    # a column_map cannot smuggle SQL in either
    with pytest.raises(WarehouseError):
        to_sql({"op": "and", "conditions": [{"field": "n_orders", "operator": "=", "value": 1}]},
               column_map={"n_orders": "n_orders OR 1=1"})


@pytest.mark.parametrize("value", [
    "'; DROP TABLE events; --",
    "DE' OR '1'='1",
    "\" OR \"\"=\"",
    "%' OR 1=1 --",
    "\\'; SELECT 1; --",
])
def test_injection_in_values_is_bound(value):
    wh = duckdb.connect()
    wh.execute("CREATE TABLE events (customer_id VARCHAR, country VARCHAR)")
    wh.execute("INSERT INTO events VALUES ('a', 'DE'), ('b', ?)", [value])
    for op, v in (("=", value), ("contains", value), ("in", [value, "x"]), ("!=", value)):
        where, params = to_sql({"op": "and", "conditions": [{"field": "country", "operator": op, "value": v}]})
        assert value not in where and "DROP" not in where
        assert all("?" in where for _ in params)
        got = [r[0] for r in wh.execute(f"SELECT customer_id FROM events WHERE {where} ORDER BY 1", params).fetchall()]
        assert got == (["a"] if op == "!=" else ["b"]), (op, got)
    assert wh.execute("SELECT count(*) FROM events").fetchone()[0] == 2  # table still there


def test_param_count_matches_placeholders():
    d = {"op": "or", "conditions": [
        {"field": "country", "operator": "in", "value": ["DE", "FR", "AT"]},
        {"field": "net_revenue", "operator": "between", "value": [1, 2]},
        {"field": "rfm_segment", "operator": "is_null", "value": True}]}
    where, params = to_sql(d)
    assert where.count("?") == len(params) == 5


def test_fields_from_frame(customers):
    df = customers.assign(**{"weird name": 1, "custom_score": 2.5, "segment_label": "x"})
    fields = rules.fields_from_frame(df)
    assert "weird name" not in fields
    assert fields["custom_score"].type == "numeric" and fields["segment_label"].type == "category"
    assert fields["last_purchase"].type == "date" and fields["customer_id"].type == "text"
    assert pandas_select(df, {"op": "and", "conditions": [
        {"field": "custom_score", "operator": ">", "value": 2}]}, fields) == list("abcdef")


def test_missing_column_in_data(customers):
    with pytest.raises(RuleError, match="no column 'clv'"):
        evaluate({"op": "and", "conditions": [{"field": "clv", "operator": ">", "value": 1}]}, customers)


def test_selection_stats(customers):
    mask = evaluate({"op": "and", "conditions": [{"field": "rfm_segment", "operator": "=", "value": "Champions"}]},
                    customers)
    st = rules.selection_stats(customers, mask)
    assert st["customers"] == 3 and st["share"] == pytest.approx(0.5)
    assert st["value"] == pytest.approx(1710.0)
    assert st["value_share"] == pytest.approx(1710.0 / 1760.0)
    empty = rules.selection_stats(customers, np.zeros(len(customers), bool))
    assert empty["customers"] == 0 and empty["value"] == 0.0


def test_default_whitelist_is_plain_identifiers():
    for name, f in CUSTOMER_FIELDS.items():
        assert name == f.name and f.type in rules.FIELD_TYPES


def test_customer_frame_and_cluster_definition(planted):
    from analytics.segments.clustering import CustomerClustering

    frame, truth = planted
    m = CustomerClustering(n_clusters=4).fit(frame)
    scores = pd.DataFrame({"clv": frame["net_revenue"] * 2, "net_revenue": 0.0}, index=frame.index)
    cf = rules.customer_frame(frame, scores, m.assignments())
    assert {"time_since_purchase", "avg_order_value", "clv", "cluster", "cluster_name"} <= set(cf.columns)
    assert cf["net_revenue"].equals(frame["net_revenue"])  # earlier frame wins
    name = m.names_[0]
    mask = evaluate(rules.cluster_definition(name), cf)
    assert mask.sum() == (m.labels_ == 0).sum() > 0
    both = rules.all_of(rules.cluster_definition(name), rules.condition("clv", ">", 0))
    assert sql_select(cf, both) == sorted(cf.index[evaluate(both, cf)].tolist())
