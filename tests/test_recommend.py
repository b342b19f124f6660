"""analytics.recommend: interactions from SQL, item-kNN against a dense NumPy reference,
exclusion / category / fallback rules, bad input, and the holdout on the bundled sample."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from analytics.recommend import (
    Interactions, ItemCF, NotFittedError, PopularityRecommender, RecommendError, evaluate_holdout,
    load_interactions, recommendations_text,
)

T = dt.datetime
COLS = ["customer_id", "event_time", "event_type", "item_id", "category"]


def _insert(wh, dataset, rows):
    df = pd.DataFrame(rows, columns=COLS)
    df.insert(0, "dataset", dataset)
    with wh.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [dataset])
        tx.register("incoming", df)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, item_id, category) "
                   "SELECT dataset, customer_id, event_time, event_type, item_id, category FROM incoming")
        tx.unregister("incoming")


ROWS = [
    # a: bought A twice and B, viewed C
    ("a", T(2024, 1, 2), "purchase", "A", "toys"),
    ("a", T(2024, 1, 9), "purchase", "A", "toys"),
    ("a", T(2024, 1, 3), "purchase", "B", "toys"),
    ("a", T(2024, 1, 4), "view", "C", "books"),
    # b: bought A and C, carted D
    ("b", T(2024, 1, 5), "purchase", "A", "toys"),
    ("b", T(2024, 1, 5), "purchase", "C", "books"),
    ("b", T(2024, 1, 6), "cart", "D", "books"),
    ("b", T(2024, 1, 6), "view", "D", "books"),
    # c: bought B, C, D
    ("c", T(2024, 1, 7), "purchase", "B", "toys"),
    ("c", T(2024, 1, 7), "purchase", "C", "books"),
    ("c", T(2024, 1, 8), "purchase", "D", "books"),
    # d: viewed A only; searched (no item)
    ("d", T(2024, 1, 8), "view", "A", "toys"),
    ("d", T(2024, 1, 8), "search", None, "toys"),
    # e: bought E (after the window used below)
    ("e", T(2024, 3, 1), "purchase", "E", "garden"),
]


@pytest.fixture
def shop(wh):
    _insert(wh, "shop", ROWS)
    _insert(wh, "other", [("z", T(2024, 1, 1), "purchase", "A", "toys")])
    _insert(wh, "browse", [("v", T(2024, 1, 1), "view", "A", "toys")])
    return wh


def _dense(inter):
    return inter.matrix.toarray().astype(np.float64)


def test_load_interactions_weights_window_and_codes(shop):
    X = load_interactions(shop, "shop", end="2024-02-01")
    assert list(X.customer_ids) == ["a", "b", "c", "d"]
    assert list(X.item_ids) == ["A", "B", "C", "D"]
    assert list(X.item_category) == ["toys", "toys", "books", "books"]
    M = _dense(X)
    exp = np.array([
        [2.0, 1.0, 0.1, 0.0],
        [1.0, 0.0, 1.0, 0.4],
        [0.0, 1.0, 1.0, 1.0],
        [0.1, 0.0, 0.0, 0.0],
    ])
    np.testing.assert_allclose(M, exp, rtol=1e-6)
    P = X.purchased.toarray()
    np.testing.assert_array_equal(P, exp >= 1.0)
    # the whole dataset adds customer e and item E; other datasets never leak in
    full = load_interactions(shop, "shop")
    assert list(full.item_ids) == ["A", "B", "C", "D", "E"] and "z" not in set(full.customer_ids)
    # custom weights: views only count, carts dropped
    Y = load_interactions(shop, "shop", end="2024-02-01", weights={"purchase": 2.0, "view": 1.0})
    assert _dense(Y)[1, 3] == pytest.approx(1.0) and _dense(Y)[0, 0] == pytest.approx(4.0)
    # start bound
    Z = load_interactions(shop, "shop", start="2024-01-06", end="2024-02-01")
    assert list(Z.customer_ids) == ["a", "b", "c", "d"] and _dense(Z)[0, 0] == pytest.approx(1.0)


def _reference_similarity(R, shrink, k):
    """Dense shrunk cosine with top-k per row (ties: smaller column), zero diagonal."""
    norms = np.sqrt((R ** 2).sum(axis=0))
    S = (R.T @ R) / (np.outer(norms, norms) + shrink)
    np.fill_diagonal(S, 0)
    out = np.zeros_like(S)
    for i in range(S.shape[0]):
        order = sorted(range(S.shape[1]), key=lambda j: (-S[i, j], j))
        for j in order[:k]:
            if S[i, j] > 0:
                out[i, j] = S[i, j]
    return out


def _random_interactions(seed=0, n_c=300, n_i=60):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n_c)
    rows, cols, vals, bought = [], [], [], []
    for u in range(n_c):
        m = rng.integers(1, 9)
        pref = np.arange(n_i) % 3 == group[u]
        p = np.where(pref, 4.0, 1.0) / np.where(pref, 4.0, 1.0).sum()
        items = rng.choice(n_i, size=m, replace=False, p=p)
        for it in items:
            rows.append(f"u{u:04d}")
            cols.append(f"i{it:03d}")
            b = rng.random() < 0.6
            vals.append(float(rng.integers(1, 4)) if b else 0.3)
            bought.append(b)
    frame = pd.DataFrame({"customer_id": rows, "item_id": cols, "strength": vals, "purchased": bought})
    cats = {f"i{i:03d}": f"cat{i % 3}" for i in range(n_i)}
    return Interactions.from_frame(frame, item_category=cats)


@pytest.mark.parametrize("transform", ["log1p", "binary", "none"])
def test_similarity_matches_dense_reference_and_blocks_do_not_matter(transform):
    X = _random_interactions()
    R = X.matrix.toarray().astype(np.float64)
    R = {"log1p": np.log1p(R), "binary": (R > 0).astype(float), "none": R}[transform]
    ref = _reference_similarity(R, shrink=5.0, k=7)
    big = ItemCF(n_neighbors=7, shrinkage=5.0, transform=transform).fit(X)
    tiny = ItemCF(n_neighbors=7, shrinkage=5.0, transform=transform, block_budget=1).fit(X)
    np.testing.assert_allclose(big.similarity_.toarray(), ref, rtol=1e-5, atol=1e-7)
    assert (tiny.similarity_ != big.similarity_).nnz == 0
    assert np.diff(big.similarity_.indptr).max() <= 7


def test_recommend_scores_exclusion_and_ranks_match_dense_reference():
    X = _random_interactions(seed=3)
    model = ItemCF(n_neighbors=10, shrinkage=2.0).fit(X)
    R = np.log1p(X.matrix.toarray().astype(np.float64))
    S = _reference_similarity(R, 2.0, 10)
    P = X.purchased.toarray()
    customers = list(X.customer_ids[:40]) + ["nobody"]
    recs = model.recommend(customers, n=5)
    assert list(recs["customer_id"].drop_duplicates()) == customers
    for cid, grp in recs.groupby("customer_id", sort=False):
        assert list(grp["rank"]) == list(range(1, 6))
        if cid == "nobody":
            assert set(grp["source"]) == {"popularity"}
            continue
        u = int(np.flatnonzero(X.customer_ids == cid)[0])
        scores = R[u] @ S
        scores[P[u]] = 0
        cf = grp[grp["source"] == "item_cf"]
        order = sorted([j for j in range(len(scores)) if scores[j] > 0], key=lambda j: (-scores[j], j))
        assert list(cf["item_id"]) == [X.item_ids[j] for j in order[:5]]
        np.testing.assert_allclose(cf["score"], [scores[j] for j in order[:5]], rtol=1e-4)
        bought = set(X.item_ids[P[u]])
        assert not bought & set(grp["item_id"])
    # keeping purchases allowed: now bought items may come back, scores never lower
    keep = model.recommend(customers[:40], n=5, exclude_purchased=False)
    assert keep.groupby("customer_id")["score"].max().ge(
        recs[recs.customer_id != "nobody"].groupby("customer_id")["score"].max() - 1e-6).all()


def test_category_restriction_and_popularity_fallback(shop):
    X = load_interactions(shop, "shop", end="2024-02-01")
    cf = ItemCF(n_neighbors=5, shrinkage=0.0).fit(X)
    books = cf.recommend(["a", "b", "c", "d", "stranger"], n=2, category="books")
    assert set(books["category"]) == {"books"}
    # a bought A, B: books C (view + co-bought) and D
    a = books[books.customer_id == "a"]
    assert list(a["item_id"]) == ["C", "D"] and set(a["source"]) == {"item_cf"}
    # c bought every book: nothing left
    assert "c" not in set(books["customer_id"])
    # a stranger gets the most bought books: C (2 buyers) then D (1 buyer)
    assert list(books[books.customer_id == "stranger"]["item_id"]) == ["C", "D"]
    pop = PopularityRecommender().fit(X)
    top = pop.recommend(["d", "a"], n=3)
    # buyers: A 2, B 2, C 2, D 1; ties broken by strength: A 3.1, C 2.1, B 2.0
    assert list(top[top.customer_id == "d"]["item_id"]) == ["A", "C", "B"]
    assert list(top[top.customer_id == "a"]["item_id"]) == ["C", "D"]
    np.testing.assert_allclose(top[top.customer_id == "d"]["score"], [2, 2, 2])
    text = recommendations_text(top)
    assert text["d"] == "A; C; B" and text["a"] == "C; D"


def test_recommendations_are_deterministic():
    X = _random_interactions(seed=5)
    ids = list(X.customer_ids)
    a = ItemCF().fit(X).recommend(ids, n=10)
    b = ItemCF().fit(X).recommend(list(reversed(ids)), n=10)
    key = ["customer_id", "rank"]
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                  b.sort_values(key).reset_index(drop=True))


def test_bad_input_raises_clear_errors(shop):
    with pytest.raises(RecommendError, match="no purchases"):
        ItemCF().fit(load_interactions(shop, "browse"))
    with pytest.raises(RecommendError, match="no purchases"):
        PopularityRecommender().fit(load_interactions(shop, "browse"))
    with pytest.raises(RecommendError, match="no dataset named"):
        load_interactions(shop, "nope")
    with pytest.raises(RecommendError, match="no item events"):
        load_interactions(shop, "shop", end="2023-01-01")
    with pytest.raises(RecommendError, match="purchase weight"):
        load_interactions(shop, "shop", weights={"view": 1.0})
    with pytest.raises(RecommendError, match="unknown event type"):
        load_interactions(shop, "shop", weights={"purchase": 1, "click": 1})
    X = load_interactions(shop, "shop")
    model = ItemCF().fit(X)
    with pytest.raises(RecommendError, match="unknown category 'shoes'"):
        model.recommend(["a"], category="shoes")
    for bad in (0, -3, 2.5, "ten"):
        with pytest.raises(RecommendError, match=">= 1"):
            model.recommend(["a"], n=bad)
    with pytest.raises(NotFittedError, match="not fitted"):
        ItemCF().recommend(["a"])
    with pytest.raises(RecommendError, match="n_neighbors"):
        ItemCF(n_neighbors=0).fit(X)
    with pytest.raises(RecommendError, match="outside the data"):
        evaluate_holdout(shop, "shop", "2023-06-01", "2024-02-01")
    with pytest.raises(RecommendError, match="outside the data"):
        evaluate_holdout(shop, "shop", "2025-06-01", "2025-09-01")
    with pytest.raises(RecommendError, match="must be after"):
        evaluate_holdout(shop, "shop", "2024-01-06", "2024-01-06")
    with pytest.raises(RecommendError, match=">= 1"):
        evaluate_holdout(shop, "shop", "2024-01-06", "2024-04-01", k=0)
    with pytest.raises(RecommendError, match="not a date"):
        evaluate_holdout(shop, "shop", "soon", "2024-04-01")


def test_evaluate_holdout_counts_by_hand(shop):
    # training = events before Jan 6: a bought A (twice), B and viewed C; b bought A, C. Items known
    # to the models: A, B, C. Before the extra rows, nobody with history buys a new item afterwards.
    with pytest.raises(RecommendError, match="nothing to evaluate"):
        evaluate_holdout(shop, "shop", "2024-01-06", "2024-03-02", k=2)
    _insert(shop, "shop", [("a", T(2024, 1, 20), "purchase", "C", "books"),
                           ("a", T(2024, 1, 21), "purchase", "A", "toys"),     # bought before: not relevant
                           ("b", T(2024, 1, 22), "purchase", "B", "toys"),
                           ("b", T(2024, 1, 22), "purchase", "E", "garden")])  # unseen in training
    res = evaluate_holdout(shop, "shop", "2024-01-06", "2024-03-02", k=2, families="popularity,item_cf")
    notes = res.attrs["notes"]
    res = res.set_index("model")
    assert set(res.index) == {"item_cf", "popularity"} and (res["customers"] == 2).all()
    # popularity: A 2 buyers, then C and B 1 buyer each (C is stronger: 1 + 0.1 view).
    # a (bought A, B) gets only C: hit -> precision 1/2, recall 1/1; b (bought A, C) gets only B: hit
    # -> precision 1/2, recall 1/2 (E is not in training, so it can never be hit)
    assert res.loc["popularity", "precision_at_k"] == pytest.approx(0.5)
    assert res.loc["popularity", "recall_at_k"] == pytest.approx(0.75)
    assert res.loc["popularity", "f1_at_k"] == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    # both hits at rank 1; a's ideal DCG is 1 (one relevant item), b's 1 + 1/log2(3) (two)
    assert res.loc["popularity", "ndcg_at_k"] == pytest.approx((1 + 1 / (1 + 1 / np.log2(3))) / 2)
    assert res.loc["popularity", "coverage"] == pytest.approx(2 / 3)  # B and C of the 3 known items
    # E was never seen before the split; the window is too short to validate on: both are said
    assert any("never appear before the split" in n for n in notes)
    assert any("no validation window" in n for n in notes)
    # with re-purchases counted, a's A (bought before) becomes relevant and may be recommended
    rep = evaluate_holdout(shop, "shop", "2024-01-06", "2024-03-02", k=2, families="popularity",
                           exclude_purchased=False).set_index("model")
    # a gets A, C (both hits: relevant C, A); b gets A, C (no hit: relevant B, E)
    assert rep.loc["popularity", "precision_at_k"] == pytest.approx(0.5)
    assert rep.loc["popularity", "recall_at_k"] == pytest.approx(0.5)


def test_learned_models_beat_popularity_on_the_bundled_sample(wh):
    # the sample's item choices follow series, drifting styles and launches: learnable structure
    from analytics.bootstrap import ensure_default_dataset

    assert ensure_default_dataset(wh) is not None
    res = evaluate_holdout(wh, "sample", "2025-07-01", "2026-01-01", k=10, validate=False,
                           families="popularity,recent_popularity,item_cf,als").set_index("model")
    pop = res.loc["popularity"]
    assert (res["customers"] == pop["customers"]).all() and pop["customers"] > 1000
    for name in ("item_cf", "als"):
        m = res.loc[name]
        assert m["precision_at_k"] > pop["precision_at_k"] * 1.5, name
        assert m["recall_at_k"] > pop["recall_at_k"] * 1.5, name
        assert m["ndcg_at_k"] > pop["ndcg_at_k"] and m["coverage"] > pop["coverage"]
    assert 0 < pop["precision_at_k"] < 1


def test_holdout_window_edges_and_odd_customer_lists(shop):
    from analytics.recommend import holdout_window

    split, end = holdout_window(shop, "shop", days=30)
    assert end == pd.Timestamp("2024-03-02") and split == pd.Timestamp("2024-02-01")  # 2024 is a leap year
    with pytest.raises(RecommendError, match="no history"):
        holdout_window(shop, "shop", days=60)
    with pytest.raises(RecommendError, match="no dataset"):
        holdout_window(shop, "nope")
    model = ItemCF().fit(load_interactions(shop, "shop"))
    empty = model.recommend([], n=3)
    assert list(empty.columns) == ["customer_id", "rank", "item_id", "category", "score", "source"]
    assert empty.empty and recommendations_text(empty).empty
    # duplicates collapse to one list per customer, in first-seen order; a bare string is one customer
    twice = model.recommend(["b", "a", "b"], n=2)
    assert list(twice["customer_id"].drop_duplicates()) == ["b", "a"] and len(twice) == 4
    one = model.recommend("a", n=2)
    pd.testing.assert_frame_equal(one.reset_index(drop=True),
                                  twice[twice.customer_id == "a"].reset_index(drop=True))


@pytest.fixture
def shop_db(tmp_path):
    from analytics.warehouse import Warehouse

    path = tmp_path / "w.duckdb"
    w = Warehouse(path)
    _insert(w, "shop", ROWS + [("=evil()", T(2024, 1, 9), "purchase", "B", "toys")])
    w.close()
    return str(path)


def test_cli_items_evaluate_and_errors(shop_db, tmp_path, capsys):
    from analytics.cli import main
    from analytics.warehouse import get_warehouse

    rc = main(["recommend", "items", "--db", shop_db, "--dataset", "shop", "--customer", "d", "--model", "item_cf",
               "--customer", "=evil()", "--n", "2", "--as-of", "2024-01-31", "--json"])
    assert rc == 0, capsys.readouterr().err
    got = pd.DataFrame(json.loads(capsys.readouterr().out))
    X = load_interactions(get_warehouse(shop_db), "shop", end="2024-02-01")
    exp = ItemCF().fit(X).recommend(["d", "=evil()"], n=2)
    assert list(got["item_id"]) == list(exp["item_id"]) and len(got) == 4
    out = tmp_path / "recs.csv"
    rc = main(["recommend", "items", "--db", shop_db, "--dataset", "shop", "--customer", "=evil()",
               "--n", "2", "--out", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "as of 2024-03-01" in err  # default: the last event day
    # the default model is the validation winner; two months of tiny data give no usable validation window,
    # and the fallback says so
    assert "model: Popularity (baseline) (popularity is the default: " in err
    csv = pd.read_csv(out)
    assert list(csv["customer_id"]) == ["'=evil()", "'=evil()"]  # formula neutralized
    rc = main(["recommend", "evaluate", "--db", shop_db, "--dataset", "shop", "--split", "2024-01-06",
               "--end", "2024-01-31", "--k", "2", "--json"])
    # a and b have history; nobody bought a new item in the holdout -> one-line error, status 2
    assert rc == 2 and "nothing to evaluate" in capsys.readouterr().err
    for argv, msg in [
        (["items", "--dataset", "shop"], "at least one --customer"),
        (["items", "--dataset", "shop", "--customer", "a", "--category", "<b>x</b>"], "unknown category"),
        (["items", "--dataset", "nope", "--customer", "a"], "no dataset named"),
        (["items", "--dataset", "shop", "--customer", "a", "--as-of", "someday"], "not a date"),
        (["evaluate", "--dataset", "shop", "--split", "2024-01-06"], "both --split and --end"),
        (["evaluate", "--dataset", "shop", "--days", "400"], "no history"),
        (["similar", "--dataset", "shop", "--item", "ZZZ"], "unknown item"),
    ]:
        assert main(["recommend", *argv[:1], "--db", shop_db, *argv[1:]]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err
        assert [line for line in err.splitlines() if "error" in line] == [err.splitlines()[-1]]


def test_popularity_skips_many_purchases_in_input_order():
    # item k has k + 1 buyers (b_m bought items m..39), plus "heavy" who bought the 30 most
    # popular items 10..39 (more than the first candidate pool holds)
    rows = [(f"b{m:02d}", f"i{k:02d}") for m in range(40) for k in range(m, 40)]
    rows += [("heavy", f"i{k:02d}") for k in range(10, 40)]
    frame = pd.DataFrame(rows, columns=["customer_id", "item_id"]).assign(strength=1.0, purchased=True)
    X = Interactions.from_frame(frame)
    recs = PopularityRecommender().fit(X).recommend(["stranger", "heavy", "b39"], n=2)
    assert list(recs["customer_id"]) == ["stranger", "stranger", "heavy", "heavy", "b39", "b39"]
    assert list(recs["item_id"]) == ["i39", "i38", "i09", "i08", "i38", "i37"]
    assert list(recs["rank"]) == [1, 2] * 3
    # the CF model falls back to the same order for someone it knows nothing about
    cf = ItemCF().fit(X).recommend(["stranger"], n=2)
    assert list(cf["item_id"]) == ["i39", "i38"] and set(cf["source"]) == {"popularity"}
