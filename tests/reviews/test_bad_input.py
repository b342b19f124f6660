"""Reviews a user's data can hold: no text, only emoji, 100 kB texts, HTML and script, no reviews
at all, every rating 5. Clear messages, nothing breaks, the text is kept as written."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.cli import main as cli_main
from analytics.ingest import ingest
from analytics.reviews.features import customer_sentiment
from analytics.reviews.sentiment import LEXICON_NAME, score_dataset_reviews, sentiment_run, stored_reviews

HEADER = "customer_id,event_time,event_type,order_id,item_id,category,quantity,revenue,rating,text\n"
SCRIPT = "<script>alert('x')</script><b>bold</b> great product"


def _csv(path, rows):
    path.write_text(HEADER + "".join(",".join("" if v is None else str(v) for v in r) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _purchases(n):
    return [(f"C{i}", f"2025-01-{1 + i % 28:02d} 10:00:00", "purchase", f"O{i}", "SKU1", "home", 1, 10.0, None, None)
            for i in range(n)]


def test_odd_texts_are_scored_or_explained_and_kept_verbatim(wh, tmp_path):
    good = ["great quality love it", "excellent fast delivery", "perfect gift very happy"]
    bad = ["broke after two days terrible", "awful waste of money", "very disappointed poor quality"]
    rows = _purchases(80)
    for i in range(80):
        text, rating = (good[i % 3], 5) if i % 2 else (bad[i % 3], 1)
        rows.append((f"C{i}", f"2025-02-{1 + i % 28:02d} 10:00:00", "review", None, "SKU1", "home", None, None,
                     rating, text))
    long_text = ("good " * 20_000).strip()  # 100 kB
    rows += [("C1", "2025-03-01 10:00:00", "review", None, "SKU1", "home", None, None, 2, ""),
             ("C2", "2025-03-01 10:00:00", "review", None, "SKU1", "home", None, None, None, "😍😍👍"),
             ("C3", "2025-03-01 10:00:00", "review", None, "SKU1", "home", None, None, 4, long_text),
             ("C4", "2025-03-01 10:00:00", "review", None, "SKU1", "home", None, None, None, SCRIPT),
             ("C5", "2025-03-01 10:00:00", "review", None, "SKU1", "home", None, None, None, None)]
    ingest(wh, _csv(tmp_path / "odd.csv", rows), "odd")
    run = score_dataset_reviews(wh, "odd")
    stored = stored_reviews(wh, "odd").set_index(["customer_id", "event_time"])
    at = pd.Timestamp("2025-03-01 10:00:00")
    no_text = stored.loc[("C1", at)]
    assert no_text["sentiment_source"] == "rating" and no_text["sentiment"] == pytest.approx(-0.5)
    assert not np.isnan(stored.loc[("C2", at), "sentiment"])  # emoji only: still scored
    long_row = stored.loc[("C3", at)]
    assert len(long_row["text"]) == len(long_text) and long_row["sentiment"] > 0  # kept whole, scored on its start
    assert stored.loc[("C4", at), "text"] == SCRIPT  # stored as written; pages escape it
    neither = stored.loc[("C5", at)]
    assert np.isnan(neither["sentiment"]) and pd.isna(neither["sentiment_source"])
    assert run.info["n_unscored"] == 1 and "1 of" in run.message


def test_a_dataset_without_reviews_says_so(wh, tmp_path):
    ingest(wh, _csv(tmp_path / "plain.csv", _purchases(20)), "plain")
    run = score_dataset_reviews(wh, "plain")
    assert "has no reviews" in run.message and run.fit is None
    assert sentiment_run(wh, "plain")["n_reviews"] == 0
    assert customer_sentiment(wh, "plain", "2025-12-31").empty


def test_every_rating_five_falls_back_to_the_lexicon_and_says_why(wh, tmp_path):
    rows = _purchases(60) + [(f"C{i}", "2025-02-02 10:00:00", "review", None, "SKU1", "home", None, None, 5,
                              t) for i, t in enumerate(["love it", "terrible and broken", "great"] * 20)]
    ingest(wh, _csv(tmp_path / "fives.csv", rows), "fives")
    run = score_dataset_reviews(wh, "fives")
    assert run.fit.source == "lexicon" and LEXICON_NAME in run.message
    assert "none of the 60 rated reviews is negative" in run.message
    assert run.info["heldout"]["all"]["roc_auc"] is None  # one kind of rating: no AUC, and the page says n/a
    assert "n/a" in run.message
    s = stored_reviews(wh, "fives")
    assert s.loc[s["text"] == "terrible and broken", "sentiment"].lt(0).all()
    assert s.loc[s["text"] == "love it", "sentiment"].gt(0).all()


def test_the_lexicon_reads_english_only_and_says_how_many_it_left(wh, tmp_path):
    rows = _purchases(10) + [("C1", "2025-02-02 10:00:00", "review", None, "SKU1", "home", None, None, None, "质量很好"),
                             ("C2", "2025-02-02 10:00:00", "review", None, "SKU1", "home", None, None, None, "awful")]
    ingest(wh, _csv(tmp_path / "few.csv", rows), "few")
    run = score_dataset_reviews(wh, "few")
    assert run.fit.source == "lexicon" and "no rated reviews" in run.message
    s = stored_reviews(wh, "few").set_index("text")
    assert np.isnan(s.loc["质量很好", "sentiment"]) and s.loc["awful", "sentiment"] < 0
    assert "language the lexicon does not read" in run.message


def test_cli_writes_one_row_per_review(generated, tmp_path, capsys, monkeypatch):
    wh, events, _, _ = generated
    import analytics.commands.reviews as cmd

    monkeypatch.setattr(cmd, "open_warehouse", lambda args: wh)
    out = tmp_path / "s.csv"
    assert cli_main(["sentiment", "--dataset", "g", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == "learned" and info["heldout"]["zh"]["roc_auc"] > 0.9
    df = pd.read_csv(out, dtype={"customer_id": str})
    assert list(df.columns) == ["customer_id", "event_time", "item_id", "text", "rating", "sentiment"]
    assert len(df) == (events["event_type"] == "review").sum()
    # the same reviews as the events file (customer, item, rating)
    r = events[events["event_type"] == "review"]
    key = lambda d: sorted(zip(d["customer_id"], d["item_id"], d["rating"].fillna(-1)))  # noqa: E731
    assert key(df) == key(r)
    assert cli_main(["sentiment", "--dataset", "nope"]) == 2
    assert "no dataset named 'nope'" in capsys.readouterr().err
    assert cli_main(["sentiment", "--dataset", "g", "--out", str(tmp_path / "x.txt")]) == 2


def test_score_export_has_sentiment_band_and_next_order_columns(generated, tmp_path, monkeypatch, capsys):
    from analytics.lifecycle import churn_bands
    import analytics.commands.score as cmd

    wh, _, _, _ = generated
    monkeypatch.setattr(cmd, "open_warehouse", lambda args: wh)
    out = tmp_path / "scores.csv"
    assert cli_main(["score", "--dataset", "g", "--as-of", "2025-12-31", "--out", str(out)]) == 0
    df = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    from analytics.reviews.features import customer_sentiment

    s = customer_sentiment(wh, "g", "2025-12-31")
    np.testing.assert_allclose(df.loc[s.index, "sentiment_mean"], s["sentiment_mean"], atol=1e-9)
    repeat = df["n_orders"] >= 2
    assert df.loc[repeat, "churn_band"].notna().all() and df.loc[~repeat, "churn_band"].isna().all()
    assert (df.loc[repeat, "churn_band"].to_numpy() == churn_bands(1 - df.loc[repeat, "p_alive"])).all()
    assert (pd.to_datetime(df.loc[repeat, "next_order_date"]) > pd.Timestamp("2025-12-31")).all()
    assert df["first_order_value"].notna().sum() > 20
