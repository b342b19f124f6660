"""analytics.recommend beyond item-CF: recency popularity, implicit's ALS / BPR / item-item, the
sequence model, the validation choice of the default, items by name and bad input."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from analytics import recommend as R

T = dt.datetime
COLS = ["customer_id", "event_time", "event_type", "item_id", "category"]


def _insert(wh, dataset, rows, attributes=None):
    df = pd.DataFrame(rows, columns=COLS)
    df.insert(0, "dataset", dataset)
    df["attributes"] = attributes if attributes is not None else None
    with wh.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [dataset])
        tx.register("incoming", df)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, item_id, category, attributes) "
                   "SELECT dataset, customer_id, event_time, event_type, item_id, category, attributes FROM incoming")
        tx.unregister("incoming")


def _blocks(n_groups=3, per_group=40, items_per_group=20, months=8, seed=0):
    """Customers of group g buy only items of group g, one purchase a week, in random order.
    Group 0 is the biggest, so popularity favours its items for everybody."""
    rng = np.random.default_rng(seed)
    rows = []
    start = T(2024, 1, 1)
    for g in range(n_groups):
        items = [f"g{g}i{j:02d}" for j in range(items_per_group)]
        for c in range(per_group * (3 if g == 0 else 1)):
            cid = f"g{g}c{c:03d}"
            for w in rng.choice(months * 4, size=10, replace=False):
                rows.append((cid, start + dt.timedelta(days=7 * int(w), hours=int(rng.integers(0, 24))),
                             "purchase", items[int(rng.integers(0, items_per_group))], f"cat{g}"))
    return rows


@pytest.fixture
def blocks(wh):
    _insert(wh, "blocks", _blocks())
    return wh


def test_recent_popularity_counts_recent_buyers(wh):
    _insert(wh, "shop", [
        ("a", T(2024, 1, 1), "purchase", "OLD", "x"), ("b", T(2024, 1, 2), "purchase", "OLD", "x"),
        ("c", T(2024, 1, 3), "purchase", "OLD", "x"),
        ("a", T(2024, 3, 20), "purchase", "NEW", "x"), ("d", T(2024, 3, 25), "purchase", "NEW", "x"),
        ("e", T(2024, 3, 1), "purchase", "MID", "x"),
    ])
    X = R.load_interactions(wh, "shop", end="2024-04-01")
    # ages: last purchase of each pair before the end of the window
    assert X.purchase_age_days[X.customer_index.get_loc("d"), list(X.item_ids).index("NEW")] == \
        pytest.approx(7 + 1e-3)
    pop = R.PopularityRecommender().fit(X).recommend(["z"], n=3)
    assert list(pop["item_id"]) == ["OLD", "NEW", "MID"]
    recent = R.RecentPopularity(days=30).fit(X).recommend(["z"], n=3)
    # last 30 days: NEW 2 buyers, MID 1 (31 days ago is outside: MID is at 31 days -> 0); then all-time order
    assert list(recent["item_id"]) == ["NEW", "OLD", "MID"]
    assert list(recent["source"]) == ["recent_popularity"] * 3
    # half-life weighting: NEW 2 recent buyers beat OLD's 3 old ones; MID (31 days) beats OLD (~90 days)
    hl = R.RecentPopularity(half_life_days=14).fit(X).recommend(["z"], n=3)
    assert list(hl["item_id"]) == ["NEW", "MID", "OLD"]
    # a's NEW is excluded for a
    assert "NEW" not in set(R.RecentPopularity(days=30).fit(X).recommend(["a"], n=2)["item_id"])
    with pytest.raises(R.RecommendError, match="days must be"):
        R.RecentPopularity(days=0).fit(X)


@pytest.mark.parametrize("family", ["als", "bpr", "item_knn", "item_cf"])
def test_personal_models_learn_planted_groups(blocks, family):
    X = R.load_interactions(blocks, "blocks", end="2024-09-01")
    model = R.make_model(family, R.DEFAULT_GRID[family][0]).fit(X)
    who = [f"g1c{c:03d}" for c in range(40)] + [f"g2c{c:03d}" for c in range(40)]
    recs = model.recommend(who, n=5)
    own = recs["item_id"].str[:2] == recs["customer_id"].str[:2]
    assert own.mean() > 0.9, (family, own.mean())  # popularity would give group 0's items
    # what a customer bought is never recommended back
    bought = set(zip(*X.purchased.nonzero()))
    rows = X.customer_index.get_indexer(recs["customer_id"])
    cols = pd.Index(X.item_ids).get_indexer(recs["item_id"])
    assert not any((r, c) in bought for r, c in zip(rows, cols))
    # category restriction, an unknown customer (popularity fill-up, said in `source`), determinism
    cat = model.recommend(["g1c000", "nobody"], n=3, category="cat2")
    assert (cat["category"] == "cat2").all()
    assert set(cat.loc[cat["customer_id"] == "nobody", "source"]) == {"popularity"}
    again = R.make_model(family, R.DEFAULT_GRID[family][0]).fit(X).recommend(who, n=5)
    pd.testing.assert_frame_equal(recs, again)


def test_als_options_and_errors(blocks):
    X = R.load_interactions(blocks, "blocks", end="2024-09-01")
    bm25 = R.ALSRecommender(factors=8, half_life_days=30).fit(X)
    assert bm25.model_.item_factors.shape == (X.n_items, 8)
    # the decayed matrix has the same pattern, with older interactions weighted down
    plain = R.ALSRecommender(weighting="confidence").weighted_matrix(X)
    decayed = R.ALSRecommender(weighting="confidence", half_life_days=30).weighted_matrix(X)
    assert plain.nnz == decayed.nnz and (decayed.data <= plain.data + 1e-6).all()
    for bad, msg in [({"weighting": "tfidf"}, "weighting must be"), ({"factors": 0}, "factors must be"),
                     ({"half_life_days": -1}, "half_life_days must be")]:
        with pytest.raises(R.RecommendError, match=msg):
            R.ALSRecommender(**bad).fit(X)
    with pytest.raises(R.NotFittedError):
        R.ALSRecommender().recommend(["g0c000"])
    with pytest.raises(R.RecommendError, match="unknown model"):
        R.make_model("svd")


def test_validation_picks_a_personal_model_inside_the_training_period(blocks):
    grid = {"als": [{"factors": 8}, {"factors": 16, "half_life_days": 30.0}],
            "item_cf": [{"shrinkage": 5.0}, {"shrinkage": 50.0}], "recent_popularity": [{"days": 7}, {"days": 60}]}
    v = R.validate_models(blocks, "blocks", "2024-07-01", k=5, grid=grid,
                          families="popularity,recent_popularity,item_cf,als", fold_days=30, folds=2)
    assert v.winner in ("item_cf", "als")
    assert v.ratios[v.winner]["precision"] > 1.5 and v.ratios[v.winner]["recall"] > 1.5
    # windows are back to back and end at the split: nothing after it is looked at
    assert v.windows == [("2024-06-01", "2024-06-30"), ("2024-05-02", "2024-05-31")]
    # every family keeps exactly its best-scoring setting
    t = v.table
    for fam, params in v.best_params.items():
        rows = t[t["model"] == fam]
        best = rows.loc[rows["score"].idxmax(), "params"]
        assert json.loads(best) == params
    assert t["chosen"].sum() == len(v.best_params)
    # the holdout result carries the validation winner and refits on all events before the split
    res = R.evaluate_holdout(blocks, "blocks", "2024-07-01", "2024-09-01", k=5,
                             families="popularity,item_cf", fold_days=30)
    assert res.attrs["validation"]["winner"] == "item_cf"
    assert list(res.columns[:6]) == ["model", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k", "coverage"]
    choice = R.choose_default(blocks, "blocks", "2024-09-01", k=5, families="popularity,als", fold_days=30)
    assert choice["model"] == "als" and json.loads(json.dumps(choice)) == choice
    model = R.fit_default(blocks, "blocks", "2024-09-01", choice)
    assert isinstance(model, R.ALSRecommender)


def test_bad_input_messages(wh):
    _insert(wh, "noitems", [("a", T(2024, 1, 1), "purchase", None, None)])
    with pytest.raises(R.RecommendError, match="no item events"):
        R.load_interactions(wh, "noitems")
    one = [(c, T(2024, 1, d), "purchase", "ONLY", "x") for d, c in enumerate("abcdefgh", start=1)]
    _insert(wh, "one", one + [("a", T(2024, 3, 1), "purchase", "ONLY", "x")])
    with pytest.raises(R.RecommendError, match="only 1 item"):
        R.evaluate_holdout(wh, "one", "2024-02-01", "2024-04-01", families="popularity")
    _insert(wh, "few", [("a", T(2024, 1, 1), "purchase", "A", "x"), ("b", T(2024, 1, 2), "purchase", "B", "x"),
                        ("c", T(2024, 1, 3), "view", "C", "x"), ("a", T(2024, 3, 1), "purchase", "B", "x"),
                        ("b", T(2024, 3, 1), "purchase", "NEWONE", "x")])
    with pytest.raises(R.RecommendError, match=r"k = 5 is larger than the catalogue .*\(3 items\)"):
        R.evaluate_holdout(wh, "few", "2024-02-01", "2024-04-01", k=5, families="popularity")
    res = R.evaluate_holdout(wh, "few", "2024-02-01", "2024-04-01", k=2, families="popularity,sequence")
    notes = " | ".join(res.attrs["notes"])
    assert "1 item(s) bought in the holdout never appear before the split" in notes
    assert "3 customer(s) have a single interaction" in notes
    # the sequence model cannot learn from customers with one purchase each: it says so, the rest runs
    assert "sequence could not run: too few customers with two or more purchases" in notes
    assert list(res["model"]) == ["popularity"]
    # no usable validation window: popularity is the campaign default, and the choice says why
    choice = R.choose_default(wh, "few", "2024-04-01")
    assert choice["model"] == "popularity" and choice["note"].startswith("popularity is the default")


def test_item_labels_names_and_fallback(wh):
    _insert(wh, "named", [("a", T(2024, 1, 1), "purchase", "K1", "kitchen"),
                          ("a", T(2024, 1, 2), "purchase", "K2", "kitchen"),
                          ("b", T(2024, 1, 3), "purchase", "Z9", None)],
            attributes=['{"item_name": "Blue kettle"}', None, None])
    labels = R.item_labels(wh, "named")
    assert labels.to_dict() == {"K1": "Blue kettle", "K2": "K2 (kitchen)", "Z9": "Z9"}
    assert R.item_labels(wh, "named", ["Z9", "nope"]).to_dict() == {"Z9": "Z9", "nope": "nope"}
    recs = pd.DataFrame({"customer_id": ["b", "b"], "rank": [2, 1], "item_id": ["K2", "K1"]})
    assert R.recommendations_named(wh, "named", recs).to_dict() == {"b": "Blue kettle; K2 (kitchen)"}


def _chain_interactions(n_customers=160, n_items=30, seed=0):
    """Every customer walks item i -> i+1 -> i+2 ... (mod n_items), buying each, for 6-17 steps: the
    next item is the previous one plus one, which only a model of the order can know.
    Returns the interactions and each customer's expected next item."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    start = rng.integers(0, n_items, n_customers)
    length = rng.integers(6, 18, n_customers)
    items = np.concatenate([(s + np.arange(n)) % n_items for s, n in zip(start, length)])
    cust = np.repeat(np.arange(n_customers), length)
    m = sp.csr_matrix((np.ones(items.size, np.float32), (cust, items)), shape=(n_customers, n_items))
    X = R.Interactions(m, m > 0, np.array([f"c{i:03d}" for i in range(n_customers)], dtype=object),
                       np.array([f"i{i:02d}" for i in range(n_items)], dtype=object),
                       np.array(["x"] * n_items, dtype=object),
                       seq_indptr=np.concatenate([[0], np.cumsum(length)]), seq_items=items,
                       seq_purchase=np.ones(items.size, bool))
    return X, np.array([f"i{(s + n) % n_items:02d}" for s, n in zip(start, length)])


@pytest.mark.slow
def test_sequence_model_learns_the_next_item():
    X, expected = _chain_interactions()
    rows = []
    model = R.SequenceRecommender(embedding_dim=16, hidden_size=32, epochs=40, patience=40, batch_size=32,
                                  learning_rate=0.02, device="cpu", num_threads=1, random_state=3)
    model.fit(X, progress=rows.append)
    assert model.device_ == "cpu" and rows and rows[-1]["epoch"] == len(model.history_)
    assert model.best_val_recall_ > 0.9 and model.best_val_mrr_ > 0.9
    recs = model.recommend(list(X.customer_ids), n=1)
    assert (recs["item_id"].to_numpy() == expected).mean() > 0.9
    assert set(recs["source"]) == {"sequence"}


def test_sequence_model_is_seeded_reports_progress_and_stops():
    X, _ = _chain_interactions(n_customers=60)
    rows = []
    # same seed, same weights and lists
    twin = R.SequenceRecommender(embedding_dim=16, hidden_size=32, epochs=3, patience=25, batch_size=32,
                                 learning_rate=0.01, device="cpu", num_threads=1, random_state=3).fit(
                                     X, progress=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and twin.device_ == "cpu"
    assert {"train_loss", "val_recall", "val_mrr", "eta_s", "tokens_per_s"} <= set(rows[0])
    twin2 = R.SequenceRecommender(**twin.get_params()).fit(X)
    pd.testing.assert_frame_equal(twin.recommend(X.customer_ids, n=3), twin2.recommend(X.customer_ids, n=3))
    # a stop request ends training after the first batch; the weights of that epoch are kept
    calls = []
    stopped = R.SequenceRecommender(epochs=50, batch_size=32, device="cpu", num_threads=1).fit(
        X, should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert stopped.cancelled_ and len(stopped.history_) == 1
    with pytest.raises(R.RecommendError, match="sequences=True"):
        R.SequenceRecommender().fit(R.Interactions(X.matrix, X.purchased, X.customer_ids, X.item_ids,
                                                   X.item_category))


@pytest.mark.gpu
def test_sequence_model_on_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, expected = _chain_interactions()
    model = R.SequenceRecommender(embedding_dim=16, hidden_size=32, epochs=40, patience=40, batch_size=32,
                                  learning_rate=0.02, device="cuda", random_state=3).fit(X)
    assert model.device_ == "cuda" and model.best_val_recall_ > 0.9
    recs = model.recommend(list(X.customer_ids), n=1)
    assert (recs["item_id"].to_numpy() == expected).mean() > 0.9


def test_recency_blend_fuses_the_two_rankings(wh):
    _insert(wh, "shop", [
        ("a", T(2024, 1, 1), "purchase", "P", "x"), ("b", T(2024, 1, 1), "purchase", "P", "x"),
        ("b", T(2024, 1, 2), "purchase", "Q", "x"), ("c", T(2024, 3, 25), "purchase", "HOT", "x"),
        ("d", T(2024, 3, 26), "purchase", "HOT", "x"), ("d", T(2024, 3, 27), "purchase", "R", "x"),
    ])
    X = R.load_interactions(wh, "shop", end="2024-04-01")
    base = R.ImplicitItemKNN(K=10).fit(X).recommend(["a"], n=3)
    recent = R.RecentPopularity(days=30).fit(X).recommend(["a"], n=3)
    for w in (0.0, 1.0):
        got = R.RecencyBlend(base="item_knn", base_params={"K": 10}, days=30, weight=w).fit(X).recommend(["a"], n=1)
        ref = recent if w == 1.0 else base[base["source"] != "popularity"]
        assert got["item_id"].iloc[0] == ref["item_id"].iloc[0]
    # by hand: a's neighbours give Q only (rank 1); recent popularity gives HOT (1), R (2), then the
    # all-time order fills its list: Q (3). Blend at w = 0.5: Q 0.5 + 0.5 / log2(4), HOT 0.5, R 0.5 / log2(3)
    mid = R.RecencyBlend(base="item_knn", base_params={"K": 10}, days=30, weight=0.5).fit(X).recommend(["a"], n=3)
    assert list(mid["item_id"]) == ["Q", "HOT", "R"]
    assert mid["score"].tolist() == pytest.approx([0.75, 0.5, 0.5 / np.log2(3)])
    with pytest.raises(R.RecommendError, match="weight must be"):
        R.RecencyBlend(weight=2).fit(X)


def test_cli_evaluate_json_has_one_entry_per_model(tmp_path, capsys):
    from analytics.cli import main
    from analytics.warehouse import Warehouse

    path = tmp_path / "w.duckdb"
    w = Warehouse(path)
    _insert(w, "blocks", _blocks())
    ref = R.evaluate_holdout(w, "blocks", "2024-07-01", "2024-09-01", k=5, families="popularity,item_cf",
                             fold_days=30)
    w.close()
    rc = main(["recommend", "evaluate", "--db", str(path), "--dataset", "blocks", "--split", "2024-07-01",
               "--end", "2024-08-31", "--k", "5", "--models", "item_cf", "--validation-days", "30", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    got = {r["model"]: r for r in doc["results"]}
    assert set(got) == {"popularity", "item_cf"}  # popularity always runs: the ratios refer to it
    for r in ref.itertuples():
        for key in ("precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k", "coverage"):
            assert got[r.model][key] == pytest.approx(getattr(r, key))
    assert got["item_cf"]["vs_popularity"]["precision"] == pytest.approx(
        got["item_cf"]["precision_at_k"] / got["popularity"]["precision_at_k"])
    assert doc["default_model"] == doc["validation"]["winner"] == "item_cf"


def test_validation_on_a_sample_of_customers_still_picks_the_planted_best(wh):
    """The window's evaluated customers capped at a seeded sample: the same sample for every
    candidate, the same choice when run again, and the planted group structure still wins over
    popularity (the models learn from everyone's events)."""
    _insert(wh, "blocks", _blocks(per_group=60))
    kw = dict(k=5, families="popularity,recent_popularity,item_cf", fold_days=30,
              grid={"item_cf": [{"shrinkage": 5.0}], "recent_popularity": [{"days": 30}]})
    full = R.validate_models(wh, "blocks", "2024-07-01", **kw)
    n_full = int(full.table["customers"].iloc[0])
    assert n_full > 150
    v = R.validate_models(wh, "blocks", "2024-07-01", max_customers=60, **kw)
    again = R.validate_models(wh, "blocks", "2024-07-01", max_customers=60, **kw)
    other = R.validate_models(wh, "blocks", "2024-07-01", max_customers=60, random_state=1, **kw)
    assert (v.table["customers"] == 60).all()
    assert v.winner == full.winner == "item_cf"
    assert v.ratios["item_cf"]["precision"] > 1.5 and v.ratios["item_cf"]["recall"] > 1.5
    pd.testing.assert_frame_equal(v.table.drop(columns="fit_seconds"), again.table.drop(columns="fit_seconds"))
    assert not np.allclose(v.table["precision_at_k"], other.table["precision_at_k"])
    # a cap above the window's customers changes nothing
    big = R.validate_models(wh, "blocks", "2024-07-01", max_customers=10 * n_full, **kw)
    pd.testing.assert_frame_equal(big.table.drop(columns="fit_seconds"), full.table.drop(columns="fit_seconds"))


def test_validation_can_learn_from_a_sample_of_customers(wh):
    """The candidates learn from the judged customers and a seeded sample of the others: the
    restricted interactions are the original rows of exactly those customers, every item stays,
    and the planted structure still wins."""
    from analytics.recommend.evaluate import _with_customers

    _insert(wh, "blocks", _blocks(per_group=60))
    X = R.load_interactions(wh, "blocks", end="2024-07-01")
    keep = ["g1c000", "g2c005", "nobody"]
    sub = _with_customers(X, keep, 50, np.random.default_rng(0))
    again = _with_customers(X, keep, 50, np.random.default_rng(0))
    assert sub.n_customers == 50 and sub.n_items == X.n_items
    assert {"g1c000", "g2c005"} <= set(sub.customer_ids) and "nobody" not in set(sub.customer_ids)
    assert list(sub.customer_ids) == sorted(sub.customer_ids)
    np.testing.assert_array_equal(sub.customer_ids, again.customer_ids)
    rows = X.customer_index.get_indexer(sub.customer_ids)
    assert (sub.matrix != X.matrix[rows]).nnz == 0 and (sub.purchased != X.purchased[rows]).nnz == 0
    assert (sub.purchase_age_days != X.purchase_age_days[rows]).nnz == 0
    v = R.validate_models(wh, "blocks", "2024-07-01", k=5, families="popularity,item_cf", fold_days=30,
                          grid={"item_cf": [{"shrinkage": 5.0}]}, max_customers=40, max_train_customers=120)
    assert v.winner == "item_cf" and v.ratios["item_cf"]["precision"] > 1.5


def test_validation_lends_fitted_bases_to_the_blends(wh, monkeypatch):
    """A blend whose base is also a candidate reuses that fit (one fit of the base, not two): its
    validation metrics are those of the same blend fitted on its own."""
    from analytics.recommend.models import ImplicitItemKNN

    _insert(wh, "blocks", _blocks())
    blend = {"base": "item_knn", "base_params": {"K": 50}, "days": 14, "weight": 0.5}
    kw = dict(k=5, fold_days=30, grid={"item_knn": [{"K": 50}], "blend": [blend]})
    fits = []
    real_fit = ImplicitItemKNN.fit
    monkeypatch.setattr(ImplicitItemKNN, "fit", lambda self, X: (fits.append(1), real_fit(self, X))[1])
    both = R.validate_models(wh, "blocks", "2024-07-01", families="popularity,item_knn,blend", **kw)
    assert len(fits) == 1
    alone = R.validate_models(wh, "blocks", "2024-07-01", families="popularity,blend", **kw)
    cols = ["precision_at_k", "recall_at_k", "ndcg_at_k", "coverage", "customers"]
    a = both.table[both.table["model"] == "blend"][cols].reset_index(drop=True)
    b = alone.table[alone.table["model"] == "blend"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert a["precision_at_k"].iloc[0] > 0
