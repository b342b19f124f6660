"""EASE (closed-form item-item), its blend with recent popularity, overlapping validation
cut-offs, and the ranking metrics against an independent computation."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analytics import recommend as R
from analytics.recommend.evaluate import ranking_metrics
from tests.test_recommend_models import _blocks, _insert

T = dt.datetime


def _interactions(dense: np.ndarray) -> R.Interactions:
    rows, cols = np.nonzero(dense)
    frame = pd.DataFrame({"customer_id": [f"c{r:03d}" for r in rows], "item_id": [f"i{c:03d}" for c in cols],
                          "strength": dense[rows, cols].astype(np.float32)})
    return R.Interactions.from_frame(frame)


def test_ease_weights_are_the_constrained_ridge_regression():
    # B's column j = the ridge regression of item j's column on the other items (Steck 2019, eq. 4),
    # solved here one column at a time, independently of the closed form
    rng = np.random.default_rng(3)
    dense = (rng.random((60, 12)) < 0.3).astype(np.float64)
    dense[:, 0] = 1.0  # every customer bought i000 (so every id is present)
    X = _interactions(dense)
    l2 = 5.0
    model = R.EASERecommender(l2=l2).fit(X)
    Xd = (X.matrix.toarray() > 0).astype(np.float64)  # columns follow the sorted ids i000..i011
    B = np.zeros((12, 12))
    for j in range(12):
        others = [i for i in range(12) if i != j]
        A = Xd[:, others]
        B[others, j] = np.linalg.solve(A.T @ A + l2 * np.eye(11), A.T @ Xd[:, j])
    assert model.items_.tolist() == list(range(12))
    np.testing.assert_allclose(model.B_, B, atol=1e-5)
    # scores are x_u B; recommend ranks them, skipping what the customer bought
    scores = Xd @ B
    who = X.customer_ids[:5]
    recs = model.recommend(who, n=3)
    for c in who:
        u = X.customer_index.get_loc(c)
        s = np.where(Xd[u] > 0, -np.inf, scores[u])
        want = X.item_ids[np.argsort(-s, kind="stable")[:3]]
        got = recs.loc[recs["customer_id"] == c, "item_id"].tolist()
        assert got == list(want[np.isfinite(np.sort(-s)[:3])])


def test_ease_recovers_planted_blocks_and_keeps_the_rules(wh):
    _insert(wh, "blocks", _blocks())
    X = R.load_interactions(wh, "blocks", end="2024-09-01")
    model = R.EASERecommender(l2=10.0).fit(X)
    # the learned weights are (almost) all inside the blocks: item g?i.. -> same g
    grp = np.array([i[:2] for i in X.item_ids])
    same = grp[:, None] == grp[None, :]
    B = np.abs(model.B_)
    assert B[same].sum() / B.sum() > 0.9
    who = [f"g1c{c:03d}" for c in range(40)] + [f"g2c{c:03d}" for c in range(40)]
    recs = model.recommend(who, n=5)
    assert (recs["item_id"].str[:2] == recs["customer_id"].str[:2]).mean() > 0.95
    bought = set(zip(*X.purchased.nonzero()))
    rows = X.customer_index.get_indexer(recs["customer_id"])
    cols = pd.Index(X.item_ids).get_indexer(recs["item_id"])
    assert not any((r, c) in bought for r, c in zip(rows, cols))
    cat = model.recommend(["g1c000", "nobody"], n=3, category="cat2")
    assert (cat["category"] == "cat2").all()
    assert set(cat.loc[cat["customer_id"] == "nobody", "source"]) == {"popularity"}
    assert set(cat.loc[cat["customer_id"] == "g1c000", "source"]) == {"ease"}
    pd.testing.assert_frame_equal(recs, R.EASERecommender(l2=10.0).fit(X).recommend(who, n=5))
    # only the most bought items take part when the catalogue is capped; the rest is filled up
    small = R.EASERecommender(l2=10.0, max_items=20).fit(X)
    assert small.B_.shape == (20, 20)
    got = small.recommend(["g1c000"], n=25)
    assert len(got) == 25 and set(got["source"]) == {"ease", "popularity"}
    for bad, msg in [({"l2": 0}, "l2 must be"), ({"max_items": 0}, "max_items must be"),
                     ({"half_life_days": -3}, "half_life_days must be")]:
        with pytest.raises(R.RecommendError, match=msg):
            R.EASERecommender(**bad).fit(X)
    with pytest.raises(R.NotFittedError):
        R.EASERecommender().recommend(["g1c000"])


def test_ease_half_life_leans_to_the_last_purchase(wh):
    # c bought X long ago and Y last week; X's buyers then bought P, Y's buyers Q
    rows = [("c", T(2024, 1, 1), "purchase", "X", "x"), ("c", T(2024, 5, 25), "purchase", "Y", "x")]
    for i in range(6):
        rows += [(f"x{i}", T(2024, 2, 1), "purchase", "X", "x"), (f"x{i}", T(2024, 2, 2), "purchase", "P", "x"),
                 (f"y{i}", T(2024, 2, 1), "purchase", "Y", "x"), (f"y{i}", T(2024, 2, 2), "purchase", "Q", "x")]
    rows += [("x9", T(2024, 2, 3), "purchase", "P", "x")]  # P slightly more popular
    _insert(wh, "hl", rows)
    X = R.load_interactions(wh, "hl", end="2024-06-01")
    plain = R.EASERecommender(l2=1.0).fit(X).recommend(["c"], n=1)
    recent = R.EASERecommender(l2=1.0, half_life_days=7.0).fit(X).recommend(["c"], n=1)
    assert plain["item_id"].iloc[0] in ("P", "Q")
    assert recent["item_id"].iloc[0] == "Q"


def test_blend_on_ease_and_overlapping_validation_cutoffs(wh):
    _insert(wh, "blocks", _blocks())
    v = R.validate_models(wh, "blocks", "2024-07-01", k=5, families="popularity,ease,blend", fold_days=30, folds=3,
                          step_days=10, grid={"ease": [{"l2": 10.0}],
                                              "blend": [{"base": "ease", "base_params": {"l2": 10.0}, "days": 14,
                                                         "weight": 0.3}]})
    # three cut-offs 10 days apart, each followed by a 30-day window ending before the split
    assert v.windows == [("2024-06-01", "2024-06-30"), ("2024-05-22", "2024-06-20"), ("2024-05-12", "2024-06-10")]
    assert v.winner in ("ease", "blend") and v.ratios["ease"]["precision"] > 1.5
    assert set(v.table["folds"]) == {3}
    # evaluate_holdout's default: three windows as long as the holdout (31 days), cut off 10 days apart
    res = R.evaluate_holdout(wh, "blocks", "2024-07-01", "2024-08-01", k=5, families="popularity,ease")
    windows = res.attrs["validation"]["windows"]
    assert windows == [["2024-05-31", "2024-06-30"], ["2024-05-21", "2024-06-20"], ["2024-05-11", "2024-06-10"]]


def test_ranking_metrics_match_a_plain_loop():
    rng = np.random.default_rng(7)
    items = [f"i{j}" for j in range(30)]
    rel = pd.DataFrame([(f"c{c}", it) for c in range(25) for it in rng.choice(items, rng.integers(1, 8),
                                                                             replace=False)],
                       columns=["customer_id", "item_id"])
    recs = pd.DataFrame([(f"c{c}", r + 1, it) for c in range(25) for r, it in
                         enumerate(rng.choice(items, 10, replace=False))], columns=["customer_id", "rank", "item_id"])
    recs["source"] = "x"
    k = 7
    m = ranking_metrics(recs, rel, k, n_items=40)
    P, Rc, N = [], [], []
    for c, g in rel.groupby("customer_id"):
        truth = set(g["item_id"])
        top = recs[(recs["customer_id"] == c)].sort_values("rank")["item_id"].tolist()[:k]
        hits = [it in truth for it in top]
        P.append(sum(hits) / k)
        Rc.append(sum(hits) / len(truth))
        dcg = sum(1 / np.log2(i + 2) for i, h in enumerate(hits) if h)
        N.append(dcg / sum(1 / np.log2(i + 2) for i in range(min(len(truth), k))))
    assert m["precision_at_k"] == pytest.approx(np.mean(P))
    assert m["recall_at_k"] == pytest.approx(np.mean(Rc))
    assert m["ndcg_at_k"] == pytest.approx(np.mean(N))
    assert m["f1_at_k"] == pytest.approx(2 * np.mean(P) * np.mean(Rc) / (np.mean(P) + np.mean(Rc)))
    shown = recs[(recs["rank"] <= k) & recs["customer_id"].isin(rel["customer_id"])]["item_id"].nunique()
    assert m["coverage"] == pytest.approx(shown / 40)
