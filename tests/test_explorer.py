"""analytics.explorer against independent pandas computations on small hand-built data."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analytics import explorer


def _insert(wh, dataset, rows):
    """rows: (customer_id, event_time, event_type, order_id, revenue)."""
    df = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "order_id", "revenue"])
    df.insert(0, "dataset", dataset)
    with wh.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [dataset])
        tx.register("incoming", df)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, revenue) "
                   "SELECT dataset, customer_id, event_time, event_type, order_id, revenue FROM incoming")
    return df


T = dt.datetime

# three customers: a buys Jan, Feb, Apr; b buys Jan only; c buys Feb and Mar (and views in May)
ROWS = [
    ("a", T(2024, 1, 5, 10), "purchase", "a1", 100.0),
    ("a", T(2024, 2, 7, 10), "purchase", "a2", 50.0),
    ("a", T(2024, 4, 1, 10), "purchase", "a3", 30.0),
    ("b", T(2024, 1, 20, 9), "purchase", "b1", 10.0),
    ("b", T(2024, 1, 21, 9), "view", None, None),
    ("c", T(2024, 2, 10, 12), "purchase", "c1", 20.0),
    ("c", T(2024, 3, 15, 12), "purchase", "c2", 20.0),
    ("c", T(2024, 5, 1, 12), "view", None, None),
    ("x", T(2024, 1, 1, 12), "purchase", "x1", 999.0),  # other dataset
]


@pytest.fixture
def data(wh):
    _insert(wh, "shop", ROWS[:-1])
    _insert(wh, "other", ROWS[-1:])
    return wh


@pytest.fixture(params=["sql", "history"])
def how(request):
    """Cohorts computed in DuckDB over the events, or from the summary history (same results)."""
    return request.param


def _cohorts(wh, dataset, as_of, how, max_months=24):
    from analytics.summary import summary_history

    hist = summary_history(wh, dataset) if how == "history" and wh.has_dataset(dataset) else None
    return explorer.cohort_retention(wh, dataset, as_of, max_months, history=hist)


def test_cohort_retention_matches_pandas(data, how):
    got = _cohorts(data, "shop", "2024-12-31", how)
    ev = pd.DataFrame(ROWS[:-1], columns=["customer_id", "t", "type", "order", "rev"])
    p = ev[ev["type"] == "purchase"].copy()
    p["m"] = p["t"].dt.to_period("M")
    first = p.groupby("customer_id")["m"].min().rename("cohort")
    p = p.join(first, on="customer_id")
    p["since"] = (p["m"] - p["cohort"]).apply(lambda d: d.n)
    exp = p.drop_duplicates(["customer_id", "since"]).groupby(["cohort", "since"]).size()
    sizes = first.value_counts()
    assert len(got) == len(exp)
    for row in got.itertuples():
        coh = pd.Period(row.cohort, "M")
        assert row.customers == exp[(coh, row.months_since)]
        assert row.cohort_size == sizes[coh]
        assert row.retention == pytest.approx(exp[(coh, row.months_since)] / sizes[coh])
    # January cohort {a, b}: month 0 -> 2/2, month 1 (Feb: a) -> 1/2, month 3 (Apr: a) -> 1/2
    jan = got[got["cohort"] == pd.Timestamp("2024-01-01")].set_index("months_since")["retention"]
    assert jan.to_dict() == {0: 1.0, 1: 0.5, 3: 0.5}
    m = explorer.cohort_matrix(got)
    assert list(m.index) == ["2024-01", "2024-02"]
    assert m.loc["2024-02", 1] == 1.0


def test_cohort_retention_respects_as_of_and_dataset(data, how):
    got = _cohorts(data, "shop", "2024-02-07", how)
    # up to Feb 7 (inclusive): a (Jan, Feb), b (Jan); c's Feb 10 purchase not yet
    assert got[["months_since", "customers"]].values.tolist() == [[0, 2], [1, 1]]
    assert _cohorts(data, "shop", "2024-12-31", how, max_months=1)["months_since"].max() == 1
    assert _cohorts(data, "shop", "2023-12-31", how).empty
    assert explorer.cohort_retention(data, "none", "2024-12-31").empty
    with pytest.raises(explorer.ExplorerError):
        explorer.cohort_retention(data, "shop", "not a date")


def test_timeline_bound_parameter_and_order(data):
    tl = explorer.customer_timeline(data, "shop", "c")
    assert list(tl["event_type"]) == ["view", "purchase", "purchase"]
    assert tl["event_time"].is_monotonic_decreasing
    assert explorer.customer_event_count(data, "shop", "c") == 3
    assert explorer.customer_event_count(data, "shop", "c", as_of="2024-03-15") == 2
    assert len(explorer.customer_timeline(data, "shop", "a", limit=2)) == 2
    # user text is a value, never SQL
    assert explorer.customer_timeline(data, "shop", "a' OR '1'='1").empty
    assert explorer.customer_event_count(data, "shop", "x") == 0


def test_lorenz_and_top_share_against_pandas():
    rng = np.random.default_rng(3)
    v = rng.pareto(1.5, 5000) * 10
    s = pd.Series(v).sort_values(ascending=False)
    for frac in (0.1, 0.2):
        k = int(np.ceil(frac * len(v)))
        assert explorer.top_share(v, frac) == pytest.approx(s.head(k).sum() / s.sum())
    curve = explorer.lorenz_curve(v, max_points=200)
    assert len(curve) <= 200
    assert curve.iloc[0].tolist() == [0.0, 0.0]
    assert curve.iloc[-1].tolist() == pytest.approx([1.0, 1.0])
    assert curve["value_share"].is_monotonic_increasing
    # a point on the curve: bottom 90% hold 1 - top 10%
    full = explorer.lorenz_curve(v, max_points=10_000)
    at90 = full.loc[np.isclose(full["customer_share"], 0.9), "value_share"].iloc[0]
    assert at90 == pytest.approx(1 - explorer.top_share(v, 0.1))


def test_top_share_small_example_and_edges():
    # 10 customers, the top one holds 50 of 100
    v = [50, 10, 10, 5, 5, 5, 5, 5, 5, 0]
    assert explorer.top_share(v, 0.1) == pytest.approx(0.5)
    assert explorer.top_share(v, 0.2) == pytest.approx(0.6)
    assert explorer.top_share([-5, 10, 10], 0.3) == pytest.approx(0.5)  # refunds count as 0
    assert np.isnan(explorer.top_share([], 0.1))
    assert np.isnan(explorer.top_share([0, 0], 0.1))
    with pytest.raises(explorer.ExplorerError):
        explorer.top_share(v, 0)
    assert explorer.gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert explorer.gini([0, 0, 0, 4]) == pytest.approx(0.75)


def _frame():
    as_of = pd.Timestamp("2024-06-30")
    f = pd.DataFrame({
        "net_revenue": [100.0, 50.0, 0.0, 30.0, 20.0],
        "clv": [200.0, 80.0, np.nan, 40.0, 10.0],
        "n_orders": [5, 2, 0, 1, 1],
        "probability_alive": [0.9, 0.5, np.nan, 0.2, 0.4],
        "last_purchase": pd.to_datetime(["2024-06-01", "2024-04-02", None, "2024-01-01", "2024-04-01"]),
        "rfm_segment": ["Champions", "Loyal", None, "Lost", "Loyal"],
    }, index=pd.Index(list("abcde"), name="customer_id"))
    f.attrs["as_of"] = as_of
    return f


def test_segment_comparison_against_pandas():
    f = _frame()
    groups = explorer.category_groups(f, "rfm_segment")
    groups["everyone"] = pd.Series(True, index=f.index)
    groups["nobody"] = pd.Series(False, index=f.index)
    t = explorer.segment_comparison(f, groups).set_index("segment")
    age = (pd.Timestamp("2024-06-30") - f["last_purchase"]).dt.days
    for name, mask in groups.items():
        g = f[mask.to_numpy()]
        row = t.loc[name]
        assert row["customers"] == len(g)
        if len(g) == 0:
            assert row["revenue"] == 0 and row["revenue_share"] == 0
            assert np.isnan(row["retention"]) and np.isnan(row["avg_clv"])
            continue
        assert row["share"] == pytest.approx(len(g) / len(f))
        assert row["revenue_share"] == pytest.approx(g["net_revenue"].sum() / f["net_revenue"].sum())
        assert row["avg_clv"] == pytest.approx(g["clv"].mean())
        assert row["orders_per_customer"] == pytest.approx(g["n_orders"].mean())
        assert row["avg_probability_alive"] == pytest.approx(g["probability_alive"].mean())
        assert row["retention"] == pytest.approx((age[g.index] < 90).mean())
    # 2024-04-02 is 89 days before June 30 (retained), 2024-04-01 is 90 (not)
    assert t.loc["Loyal", "retention"] == pytest.approx(0.5)
    assert t.loc[["Champions", "Loyal", "Lost"], "customers"].sum() == 4  # c has no segment
    with pytest.raises(explorer.ExplorerError):
        explorer.segment_comparison(f, {"bad": [True, False]})


def test_segment_comparison_without_optional_columns():
    f = _frame().drop(columns=["probability_alive", "clv"])
    t = explorer.segment_comparison(f, {"all": np.ones(5, bool)}, as_of="2024-06-30")
    assert "avg_probability_alive" not in t.columns
    assert np.isnan(t["avg_clv"].iloc[0])
    assert t["retention"].iloc[0] == pytest.approx(2 / 5)


def test_segment_migration_flows():
    a = pd.DataFrame({"rfm_segment": ["Loyal", "Loyal", "Lost", "New"]}, index=list("abcd"))
    b = pd.DataFrame({"rfm_segment": ["Champions", "Loyal", "Lost", "Loyal", "New"]}, index=list("abcef"))
    flows = explorer.segment_migration(a, b, "rfm_segment")
    ids = set(a.index) | set(b.index)
    assert flows["customers"].sum() == len(ids)
    exp = pd.concat([a["rfm_segment"].rename("from"), b["rfm_segment"].rename("to")], axis=1)
    exp = exp.fillna(explorer.NOT_A_CUSTOMER).value_counts()
    got = flows.set_index(["from", "to"])["customers"]
    assert got.sort_index().to_dict() == exp.sort_index().to_dict()
    assert got[("New", explorer.NOT_A_CUSTOMER)] == 1
    assert got[(explorer.NOT_A_CUSTOMER, "Loyal")] == 1
    sk = explorer.sankey_data(flows)
    assert len(sk["source"]) == len(sk["target"]) == len(sk["value"]) == len(flows)
    assert sum(sk["value"]) == len(ids)
    with pytest.raises(explorer.ExplorerError):
        explorer.segment_migration(a, b, "cluster_name")


def test_search_customers_substring_not_pattern():
    f = pd.DataFrame({"v": range(5)}, index=pd.Index(["cust01", "CUST02", "a.b", "x", "cust10"], name="customer_id"))
    hits, n = explorer.search_customers(f, "cust")
    assert n == 3 and list(hits.index) == ["cust01", "CUST02", "cust10"]
    hits, n = explorer.search_customers(f, ".")
    assert n == 1 and list(hits.index) == ["a.b"]
    hits, n = explorer.search_customers(f, "", limit=2)
    assert n == 5 and len(hits) == 2


def test_build_frame_on_events(data):
    f = explorer.build_frame(data, "shop", "2024-06-30")
    assert sorted(f.index) == ["a", "b", "c"]
    assert f.loc["a", "net_revenue"] == pytest.approx(180.0)
    assert {"rfm_segment", "clv", "n_orders", "last_purchase"} <= set(f.columns)
    t = explorer.segment_comparison(f, explorer.category_groups(f, "rfm_segment"))
    assert t["customers"].sum() == 3
    assert t["revenue"].sum() == pytest.approx(230.0)
    # migration between two dates covers every customer of either date
    f0 = explorer.build_frame(data, "shop", "2024-01-31")
    flows = explorer.segment_migration(f0, f, "rfm_segment")
    assert flows["customers"].sum() == 3
    assert flows.loc[flows["from"] == explorer.NOT_A_CUSTOMER, "customers"].sum() == 1  # c


def test_history_gives_the_same_frame_and_cohorts_on_the_sample(wh):
    """build_frame / cohort_retention from a SummaryHistory equal the SQL path (bundled sample)."""
    from analytics.bootstrap import ensure_default_dataset
    from analytics.summary import summary_history

    ensure_default_dataset(wh)
    hist = summary_history(wh, "sample")
    with pytest.raises(explorer.ExplorerError):
        explorer.build_frame(wh, "other", "2025-06-30", history=hist)
    for day in ("2025-12-31", "2024-09-15"):
        a = explorer.build_frame(wh, "sample", day)
        b = explorer.build_frame(wh, "sample", day, history=hist)
        assert list(a.columns) == list(b.columns) and a.index.equals(b.index)
        for col in a.columns:
            if pd.api.types.is_float_dtype(a[col]):
                np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=1e-9, atol=1e-9,
                                           err_msg=col)
            else:
                pd.testing.assert_series_equal(b[col], a[col], check_exact=True, obj=col)
        pd.testing.assert_frame_equal(explorer.cohort_retention(wh, "sample", day, 24, history=hist),
                                      explorer.cohort_retention(wh, "sample", day, 24), check_exact=True)
    for day in ("2025-12-31", "2024-03-01", "2023-01-01"):
        light = explorer.rfm_segment_frame(wh, "sample", day, history=hist)
        full = explorer.build_frame(wh, "sample", day)
        assert light.index.equals(full.index) and light.attrs["as_of"] == full.attrs["as_of"]
        assert (light["rfm_segment"].to_numpy() == full["rfm_segment"].to_numpy()).all()
        assert light.equals(explorer.rfm_segment_frame(wh, "sample", day))
    # migration matched by history position = matched by id
    early = explorer.build_frame(wh, "sample", "2024-03-01", history=hist)
    late = explorer.build_frame(wh, "sample", "2025-12-31", history=hist)
    assert len(early) < len(late)
    for col in ("rfm_segment", "r_score"):
        fast = explorer.segment_migration(early, late, col, history=hist)
        pd.testing.assert_frame_equal(fast, explorer.segment_migration(early, late, col))
        assert fast["customers"].sum() == len(late)
    # a missing value counts as the missing label, on either side
    holes = late.copy()
    holes.loc[holes.index[:7], "rfm_segment"] = None
    pd.testing.assert_frame_equal(explorer.segment_migration(early, holes, history=hist),
                                  explorer.segment_migration(early, holes))
    # frames that are not the history's fall back to matching ids
    other = late.iloc[::2]
    pd.testing.assert_frame_equal(explorer.segment_migration(early, other, history=hist),
                                  explorer.segment_migration(early, other))


def test_concentration_equals_the_separate_functions():
    rng = np.random.default_rng(3)
    for v in (rng.lognormal(3, 1.5, 5001) - 5, np.array([]), np.zeros(4), np.array([-1.0, 2.0])):
        c = explorer.concentration(v, (0.1, 0.2, 1.0), max_points=300)
        pd.testing.assert_frame_equal(c["curve"], explorer.lorenz_curve(v, max_points=300))
        for f in (0.1, 0.2, 1.0):
            assert c["top"][f] == pytest.approx(explorer.top_share(v, f), rel=1e-12, nan_ok=True)
        assert c["gini"] == pytest.approx(explorer.gini(v), rel=1e-12, nan_ok=True)
    with pytest.raises(explorer.ExplorerError):
        explorer.concentration([1, 2], (0.0,))


def test_category_groups_largest_first_without_missing():
    f = pd.DataFrame({"s": ["b", "a", None, "b", "c", "a", "b"]}, index=list("1234567"))
    g = explorer.category_groups(f, "s")
    assert list(g) == ["b", "a", "c"]
    assert g["b"].tolist() == [True, False, False, True, False, False, True]
    assert g["b"].index.equals(f.index)
    assert sum(int(m.sum()) for m in g.values()) == 6
    assert explorer.category_groups(f, "nope") == {}


def test_cluster_migration_uses_one_run_at_both_dates(wh):
    from analytics.bootstrap import ensure_default_dataset
    from analytics.segments import store
    from analytics.segments.clustering import CustomerClustering
    from analytics.summary import summary_history

    ensure_default_dataset(wh)
    hist = summary_history(wh, "sample")
    early = explorer.build_frame(wh, "sample", "2025-03-31", history=hist)
    late = explorer.build_frame(wh, "sample", "2025-12-31", history=hist)
    model = CustomerClustering(n_clusters=4, random_state=0).fit(late)
    run = store.save_clustering_run(wh, model, "sample", "2025-12-31")
    flows = explorer.cluster_migration(wh, run, early, late, history=hist)
    # independently: nearest centre of the run at each date, outer-joined on the customer id
    a = store.assign_with_run(wh, run, early)["cluster_name"].rename("from")
    b = store.assign_with_run(wh, run, late)["cluster_name"].rename("to")
    exp = pd.concat([a, b], axis=1).astype(object).fillna(explorer.NOT_A_CUSTOMER).value_counts()
    got = flows.set_index(["from", "to"])["customers"]
    assert got.sort_index().to_dict() == {k: int(v) for k, v in exp.sort_index().items()}
    assert flows["customers"].sum() == len(late)
    assert set(flows["to"]) <= set(model.names_)
    # k-means: at the training date the run's own labels come back
    own = model.labels_.map(dict(enumerate(model.names_))).reindex(b.index)
    assert (own == b).mean() > 0.99, (own == b).mean()
    pd.testing.assert_frame_equal(flows, explorer.cluster_migration(wh, run, early, late))
