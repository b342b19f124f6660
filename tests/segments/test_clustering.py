"""CustomerClustering, names, k guidance and figures."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from analytics.segments.clustering import (
    DEFAULT_FEATURES, ClusteringError, ClusteringWarning, CustomerClustering, add_derived_features,
    cluster_names, k_guidance, k_guidance_figure, profile_figure, projection_figure, silhouettes,
    _inertia, _stratified_sample,
)
from tests.segments.conftest import planted_frame


def dominant(labels: pd.Series, truth: pd.Series) -> pd.Series:
    """For each cluster, the planted persona most of its members have."""
    return pd.crosstab(labels, truth).idxmax(axis=1)


# ------------------------------------------------------------------ estimator
def test_init_stores_params_only():
    m = CustomerClustering(n_clusters=99, algorithm="nope")  # validated in fit, not here
    assert m.get_params()["n_clusters"] == 99
    assert not hasattr(m, "labels_")


def test_recovers_planted_frame_and_names(planted):
    frame, truth = planted
    m = CustomerClustering(n_clusters=4, random_state=0).fit(frame)
    assert m is not None and m.n_clusters_ == 4
    assert adjusted_rand_score(truth, m.labels_) > 0.9
    dom = dominant(m.labels_, truth)
    names = dict(zip(range(4), m.names_))
    loyal = dom[dom == "loyal"].index[0]
    window = dom[dom == "window"].index[0]
    assert names[loyal].startswith("High value") and "frequent" in names[loyal]
    assert names[window].startswith("Low value") and "non-buyers" in names[window]
    assert "new" in names[dom[dom == "newcomer"].index[0]]
    assert "one-time" in names[dom[dom == "one_time"].index[0]]
    assert len(set(m.names_)) == 4
    # clusters are numbered by mean net revenue, highest first
    mean_rev = frame["net_revenue"].groupby(m.labels_).mean()
    assert list(mean_rev.index) == [0, 1, 2, 3]
    assert mean_rev.is_monotonic_decreasing


def test_profiles_sizes_and_shares(planted):
    frame, _ = planted
    m = CustomerClustering(n_clusters=4).fit(frame)
    prof = m.cluster_profiles_
    assert prof["size"].sum() == len(frame)
    assert prof["size_share"].sum() == pytest.approx(1.0)
    assert prof["revenue_share"].sum() == pytest.approx(1.0)
    for c in range(4):
        members = frame[m.labels_ == c]
        assert prof.loc[c, "size"] == len(members)
        assert prof.loc[c, "revenue_share"] == pytest.approx(members["net_revenue"].sum() / frame["net_revenue"].sum())
        assert prof.loc[c, "n_views"] == pytest.approx(members["n_views"].mean())
        assert m.relative_profiles_.loc[c, "n_views"] == pytest.approx(
            members["n_views"].mean() / frame["n_views"].mean())
        assert prof.loc[c, "n_views_vs_all"] == m.relative_profiles_.loc[c, "n_views"]
    # scaled centres are mean 0 overall (weighted by size)
    w = prof["size"].to_numpy() / len(frame)
    assert np.allclose(w @ m.scaled_profiles_.to_numpy(), 0, atol=1e-4)
    json.dumps(m.summary())  # JSON-able


def test_reproducible_and_seed_matters(planted):
    frame, _ = planted
    a = CustomerClustering(n_clusters=5, random_state=3).fit(frame).labels_
    b = CustomerClustering(n_clusters=5, random_state=3).fit(frame).labels_
    assert a.equals(b)


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch_kmeans", "gmm"])
@pytest.mark.parametrize("scaling", ["log1p_standard", "standard", "robust"])
def test_algorithms_and_scalings(planted, algorithm, scaling):
    frame, truth = planted
    m = CustomerClustering(n_clusters=4, algorithm=algorithm, scaling=scaling, n_init=2).fit(frame)
    assert m.labels_.index.equals(frame.index)
    assert set(m.labels_.unique()) <= set(range(4))
    assert adjusted_rand_score(truth, m.labels_) > 0.5
    # predict on the same rows reproduces the labels
    assert (m.predict(frame) == m.labels_).mean() > 0.99


def test_predict_new_customers_and_not_fitted(planted):
    frame, truth = planted
    with pytest.raises(NotFittedError):
        CustomerClustering().predict(frame)
    m = CustomerClustering(n_clusters=4).fit(frame)
    other, other_truth = planted_frame(n_per=40, seed=7)
    pred = m.predict(other)
    dom = dominant(m.labels_, truth)
    # new customers land in the cluster dominated by their persona
    assert (dom.loc[pred.to_numpy()].to_numpy() == other_truth.to_numpy()).mean() > 0.9


def test_fit_on_sample_assigns_everyone(planted):
    frame, truth = planted
    m = CustomerClustering(n_clusters=4, fit_sample_size=200).fit(frame)
    assert len(m.labels_) == len(frame)
    assert adjusted_rand_score(truth, m.labels_) > 0.85


def test_derived_features():
    df = pd.DataFrame({"T": [100.0, np.nan], "recency": [30.0, np.nan], "tenure": [120.0, 50.0],
                       "total_revenue": [300.0, 0.0], "n_orders": [3, 0], "return_revenue": [30.0, 0.0],
                       "n_views": [10, 7]})
    out = add_derived_features(df)
    assert out["time_since_purchase"].tolist() == [70.0, 50.0]
    assert out["avg_order_value"].iloc[0] == 100.0 and np.isnan(out["avg_order_value"].iloc[1])
    assert out["return_rate"].tolist() == [0.1, 0.0]
    assert out["views_per_order"].tolist() == [10 / 3, 7.0]
    assert "time_since_purchase" not in df  # input untouched


def test_derived_features_in_place_same_columns():
    df = pd.DataFrame({"T": [100.0, np.nan, 40.0], "recency": [30.0, np.nan, 40.0], "tenure": [120.0, 50.0, 60.0],
                       "total_revenue": [300.0, 0.0, 20.0], "n_orders": [3, 0, 1], "return_revenue": [30.0, 0.0, 5.0],
                       "n_views": [10, 7, 0], "avg_order_value": [1.0, 2.0, 3.0]})
    copied = add_derived_features(df)
    own = df.copy()
    same = add_derived_features(own, copy=False)
    assert same is own  # columns added to the caller's frame, no copy
    pd.testing.assert_frame_equal(same, copied, check_exact=True)
    assert same["avg_order_value"].tolist() == [1.0, 2.0, 3.0]  # present columns left as they are
    assert same["return_rate"].tolist() == [0.1, 0.0, 0.25]
    assert "return_rate" not in df


# ------------------------------------------------------------------ bad input
def test_unknown_feature(planted):
    frame, _ = planted
    with pytest.raises(ClusteringError, match="unknown feature: nope"):
        CustomerClustering(features=["net_revenue", "nope"]).fit(frame)


def test_non_numeric_feature(planted):
    frame, _ = planted
    with pytest.raises(ClusteringError, match="not numeric: country"):
        CustomerClustering(features=["net_revenue", "country"]).fit(frame)


def test_too_few_customers(planted):
    frame, _ = planted
    with pytest.raises(ClusteringError, match="too few customers for 6 clusters: 10 customers") as err:
        CustomerClustering(n_clusters=6).fit(frame.iloc[:10])
    assert "choose k = 3 or less" in str(err.value)  # 10 customers, 3 per cluster
    CustomerClustering(n_clusters=3).fit(frame.iloc[:10])  # ... which fits
    # fewer than the smallest k needs: no smaller k to suggest (k guidance starts at 2)
    for fit in (lambda f: CustomerClustering(n_clusters=2).fit(f), lambda f: k_guidance(f, k_values=range(2, 13))):
        with pytest.raises(ClusteringError, match="too few customers to cluster: 5 customers, need at least 6") as err:
            fit(frame.iloc[:5])
        assert "smaller k" not in str(err.value)
    with pytest.raises(ClusteringError, match="no customers"):
        CustomerClustering().fit(frame.iloc[:0])


def test_too_few_distinct_customers(planted):
    frame, _ = planted
    same = pd.concat([frame.iloc[[0, 1]]] * 20)
    same.index = [f"x{i}" for i in range(len(same))]
    with pytest.raises(ClusteringError, match="too few different customers for 4 clusters: only 2"):
        CustomerClustering(n_clusters=4, features=["net_revenue", "n_views"]).fit(same)


def test_constant_feature_dropped_with_warning(planted):
    frame, _ = planted
    frame = frame.assign(const=5.0)
    with pytest.warns(ClusteringWarning, match="no variance: const"):
        m = CustomerClustering(features=["net_revenue", "n_views", "const"], n_clusters=3).fit(frame)
    assert m.features_ == ["net_revenue", "n_views"] and m.dropped_features_ == ["const"]
    assert m.predict(frame).equals(m.labels_)
    with pytest.raises(ClusteringError, match="no chosen feature varies"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            CustomerClustering(features=["const"], n_clusters=2).fit(frame)


def test_all_missing_feature_and_partial_missing(planted):
    frame, _ = planted
    with pytest.raises(ClusteringError, match="missing for every customer: empty"):
        CustomerClustering(features=["net_revenue", "empty"]).fit(frame.assign(empty=np.nan))
    holes = frame.copy()
    holes.loc[holes.index[::7], "n_views"] = np.nan
    holes.loc[holes.index[3], "net_revenue"] = np.inf
    m = CustomerClustering(features=["net_revenue", "n_views"], n_clusters=3).fit(holes)
    assert m.fill_values_["n_views"] == pytest.approx(np.nanmedian(holes["n_views"]))
    assert m.labels_.notna().all()


@pytest.mark.parametrize("kwargs, msg", [
    ({"n_clusters": 1}, "between 2 and 50"),
    ({"n_clusters": 2.5}, "whole number"),
    ({"algorithm": "dbscan"}, "unknown algorithm 'dbscan'"),
    ({"scaling": "minmax"}, "unknown scaling 'minmax'"),
])
def test_bad_parameters(planted, kwargs, msg):
    frame, _ = planted
    with pytest.raises(ClusteringError, match=msg):
        CustomerClustering(**kwargs).fit(frame)


def test_rename(planted):
    frame, _ = planted
    m = CustomerClustering(n_clusters=3).fit(frame)
    m.rename(1, "  <b>VIP</b>  ")
    assert m.names_[1] == "<b>VIP</b>" and m.cluster_profiles_.loc[1, "name"] == "<b>VIP</b>"
    with pytest.raises(ClusteringError, match="already named"):
        m.rename(0, "<b>VIP</b>")
    with pytest.raises(ClusteringError, match="no cluster 7"):
        m.rename(7, "x")
    assert m.assignments()["cluster_name"].eq("<b>VIP</b>").sum() == (m.labels_ == 1).sum()


# ------------------------------------------------------------------ names
def test_cluster_names_unique_and_ordered():
    centres = pd.DataFrame({"net_revenue": [1.2, 1.1, -1.5], "n_orders": [1.0, 1.0, -1.4],
                            "time_since_purchase": [-0.9, -0.9, 1.0], "n_views": [0.0, 0.0, 0.9]})
    raw = pd.DataFrame({"n_orders": [10.0, 9.0, 0.1]})
    names = cluster_names(centres, raw)
    # alike but for value: each name says what sets it apart
    assert names[0] == "High value · frequent · recent · more valuable"
    assert names[1] == "High value · frequent · recent · less valuable"
    assert names[2] == "Low value · non-buyers · browsers"  # no "lapsed" for people who never bought
    assert cluster_names(pd.DataFrame({"n_views": [0.1, -0.1]})) == ["Average · more browsing", "Average · less browsing"]
    # only clusters that hardly differ at all get numbers
    assert cluster_names(pd.DataFrame({"n_views": [0.01, -0.01]})) == ["Average #1", "Average #2"]
    assert cluster_names(pd.DataFrame({"n_views": [2.0, -2.0], "zz_score": [0.0, 1.0]})) == \
        ["Browsers", "Few visits · high zz score"]


# ------------------------------------------------------------------ k guidance
def test_silhouettes_and_inertia_match_reference():
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(c, 1.0, size=(300, 4)) for c in (0, 4, 9)]) * 2 + 3
    labelings = [np.repeat([0, 1, 2], 300), rng.integers(0, 5, 900), np.r_[np.zeros(899, int), 1]]
    ours = silhouettes(x, labelings, chunk=128)
    ref = [silhouette_score(x, lab) for lab in labelings]
    assert ours == pytest.approx(ref, abs=1e-5)
    assert ours[0] > 0.5 > ours[1]
    lab = labelings[1]
    expected = sum(((x[lab == c] - x[lab == c].mean(axis=0)) ** 2).sum() for c in range(5))
    assert _inertia(x, lab, 5) == pytest.approx(expected, rel=1e-9)


def test_k_guidance_finds_planted_k(planted):
    frame, _ = planted
    calls = []
    g = k_guidance(frame, k_values=range(2, 9), progress=lambda d, t: calls.append((d, t)))
    assert list(g.table.index) == list(range(2, 9))
    assert g.table["inertia"].is_monotonic_decreasing
    assert g.table["silhouette"].between(-1, 1).all()
    assert g.table["bic"].isna().all()
    assert g.suggested_k == 4, g.reason
    assert g.reason.startswith("k=4")
    assert calls[-1] == (7, 7)
    fig = k_guidance_figure(g)
    assert [t.name.split(" ")[0] for t in fig.data] == ["Inertia", "Silhouette"]


def test_k_guidance_gmm_bic(planted):
    frame, _ = planted
    g = k_guidance(frame, algorithm="gmm", k_values=[2, 3, 4, 5, 6], n_init=1)
    assert g.table["bic"].notna().all()
    assert g.suggested_k in (4, 5), g.reason
    fig = k_guidance_figure(g)
    assert len(fig.data) == 3
    # the two right axes have ticks of their own (not the inertia grid's odd values) and do not
    # overlap: the BIC axis stands right of the silhouette axis, leaving room for its labels and title
    lay = fig.layout
    assert lay.yaxis2.tickmode == "auto" and lay.yaxis3.tickmode == "auto"
    assert lay.yaxis2.anchor == "x" and lay.yaxis3.anchor == "free"
    assert lay.yaxis3.position - lay.xaxis.domain[1] >= 0.08


def test_k_guidance_skips_k_larger_than_data(planted):
    frame, _ = planted
    g = k_guidance(frame.iloc[::40], k_values=range(2, 13))  # 15 customers: k <= 5
    assert g.table.index.max() == 5
    with pytest.raises(ClusteringError, match="at least two values"):
        k_guidance(frame, k_values=[3])


# ------------------------------------------------------------------ figures
def test_profile_and_projection_figures(planted):
    frame, _ = planted
    m = CustomerClustering(n_clusters=4).fit(frame)
    heat = profile_figure(m)
    assert np.asarray(heat.data[0].z).shape == (4, len(m.features_))
    assert len(profile_figure(m, kind="snake").data) == 4
    with pytest.raises(ClusteringError):
        profile_figure(m, kind="pie")
    proj = projection_figure(m, frame, max_points=100)
    assert sum(len(t.x) for t in proj.data) == 100
    assert len(proj.data) == 4  # every cluster still shown
    full = projection_figure(m, frame)
    assert sum(len(t.x) for t in full.data) == len(frame)


def test_stratified_sample_keeps_small_clusters():
    labels = np.array([0] * 100_000 + [1] * 30)
    idx = _stratified_sample(labels, 1000, 0)
    assert len(idx) == 1000 and (labels[idx] == 1).sum() == 30
    assert len(np.unique(idx)) == len(idx)


# ------------------------------------------------------------------ planted truth of the sample data
def test_recovers_sample_personas(sample_summary):
    """Default features on the generated sample: ARI >= 0.6 and names match personas."""
    summary, personas = sample_summary
    m = CustomerClustering(n_clusters=6, random_state=0).fit(summary)
    assert list(DEFAULT_FEATURES) == m.features_
    ari = adjusted_rand_score(personas, m.labels_)
    assert ari >= 0.6, ari
    dom = dominant(m.labels_, personas)
    names = pd.Series(m.names_)
    assert dom.nunique() >= 5  # nearly every persona gets its own cluster
    for c in dom[dom == "loyal_high_spender"].index:
        assert names[c].startswith("High value · frequent"), names[c]
    for c in dom[dom == "window_shopper"].index:
        assert names[c].startswith("Low value") or "browsers" in names[c], names[c]
    for c in dom[dom == "promising_newcomer"].index:
        assert "new" in names[c].split(" · ") or "recent" in names[c], names[c]
    for c in dom[dom == "one_time_buyer"].index:
        assert "one-time" in names[c], names[c]
    for c in dom[dom == "at_risk_big_spender"].index:
        assert names[c].startswith("High value") and ("unhappy" in names[c] or "lapsed" in names[c]), names[c]


def test_k_guidance_on_sample_suggests_planted_k(sample_summary):
    summary, personas = sample_summary
    g = k_guidance(summary)
    assert personas.nunique() == 6
    assert g.suggested_k in (5, 6, 7), (g.suggested_k, g.reason)
    assert g.table["silhouette"].idxmax() in (5, 6, 7)


@pytest.mark.slow
def test_recovers_personas_on_a_larger_generated_sample(tmp_path):
    """20,000 generated customers (a fresh seed): the same ARI bar with the defaults."""
    sd = pytest.importorskip("sample_data")
    from analytics.ingest import ingest
    from analytics.summary import customer_summary
    from analytics.warehouse import Warehouse

    events, truth = tmp_path / "ev.csv.gz", tmp_path / "truth.csv.gz"
    sd.generate(events, truth, sd.SampleConfig(customers=20_000, seed=7))
    wh = Warehouse(":memory:")
    ingest(wh, events, "big")
    summary = customer_summary(wh, "big", "2025-12-31", persist=False)
    wh.close()
    personas = pd.read_csv(truth, dtype={"customer_id": str}).set_index("customer_id")["persona"]
    m = CustomerClustering(n_clusters=6).fit(summary)
    assert adjusted_rand_score(personas.reindex(summary.index), m.labels_) >= 0.6
