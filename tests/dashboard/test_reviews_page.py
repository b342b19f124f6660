"""AppTest: the Reviews & new customers page on a small generated sample: the sentiment source and its
held-out figures, the most negative reviews of valuable customers (a planted script shown as plain text,
never as markup), churn band counts against the library, new customers and cold-start recommendations."""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.ingest import ingest
from sample_data.generator import SampleConfig, generate
from tests.dashboard.conftest import APP

PAGE = "views/reviews.py"
SCRIPT = "<script>alert('x')</script> terrible <b>broken</b>"


@pytest.fixture
def page(app_wh, tmp_path):
    ev = tmp_path / "events.csv.gz"
    generate(ev, None, SampleConfig(customers=700, seed=3))
    events = pd.read_csv(ev, dtype={"customer_id": str, "text": str})
    # the biggest spender writes a 1-star review with markup on the last day
    top = events[events["event_type"] == "purchase"].groupby("customer_id")["revenue"].sum().idxmax()
    extra = pd.DataFrame([{"customer_id": top, "event_time": "2025-12-31 12:00:00", "event_type": "review",
                           "item_id": "SKU10001", "category": "electronics", "rating": 1, "text": SCRIPT,
                           "country": "DE"}])
    extra_path = tmp_path / "extra.csv"
    extra.to_csv(extra_path, index=False)
    ingest(app_wh, ev, "gen")
    ingest(app_wh, extra_path, "gen")
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at, top


def test_reviews_page(page, app_wh):
    at, top = page
    text = " ".join(m.value for m in at.markdown)
    assert "Sentiment source" in text and "Learned from" in text and "rated reviews of this dataset" in text
    # the source is named once, and its held-out figures are in the table only (not again in a caption)
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert sum(t.count("Sentiment source") for t in shown) == 1, shown
    assert not any("ROC AUC" in t for t in shown), shown
    assert "<script" not in text and all("<script" not in c.value for c in at.caption)
    tables = [d.value for d in at.dataframe]
    heldout = next(t for t in tables if "ROC AUC" in t.columns)
    assert set(heldout["Reviews"]) == {"All", "English", "Chinese"} and (heldout["ROC AUC"] > 0.9).all()
    # percentages in one style on every table ("97.4 %", as formatting.percent), never Streamlit's "97.37%"
    import json

    from analytics.formatting import PERCENT_PRINTF
    from dashboard import cache

    formats = [c.get("type_config", {}).get("format") for d in at.dataframe
               for c in json.loads(d.proto.columns or "{}").values()]
    assert "percent" not in formats and PERCENT_PRINTF in formats, formats
    accuracy = cache.sentiment_info("gen")["heldout"]["all"]["accuracy"]
    assert heldout.loc[heldout["Reviews"] == "All", "Accuracy"].iloc[0] == pytest.approx(100 * accuracy)
    worst = next(t for t in tables if "text" in t.columns and "sentiment" in t.columns)
    assert (worst["sentiment"] < 0).all() and worst["sentiment"].is_monotonic_increasing
    row = worst[worst["text"] == SCRIPT]
    assert len(row) == 1 and row["customer_id"].iloc[0] == top  # the text as written, in a plain cell
    # churn bands: the metrics count the library's bands
    from analytics.lifecycle import churn_bands

    bands = next(t for t in tables if "Churn risk band" in t.columns)  # human titles, risk in %
    assert (bands["Churn risk band"].to_numpy() == churn_bands(bands["Churn risk"] / 100.0)).all()
    assert not bands.astype(str).isin(["None", "nan", "NaT"]).any().any()
    metrics = {m.label: int(m.value.replace(",", "")) for m in at.metric if "risk" in m.label}
    assert sum(metrics.values()) >= len(bands) > 0
    # the ready-made segment was saved for the dataset
    from analytics.segments import store

    assert "Unhappy valuable customers" in set(store.list_segments(app_wh, "gen")["name"])
    assert any("first-order model" in c.value for c in at.caption)
    recs = next(t for t in tables if "reason" in t.columns)
    assert recs["reason"].str.startswith("popular").all()


def test_a_dataset_without_reviews_says_what_to_load_and_offers_no_rescoring(app_wh):
    # an order log has no reviews: the tab says so in words and how to get sentiment, with no
    # "Score the reviews again" button that could only find nothing again
    from tests.dashboard.conftest import TIMEOUT, insert_events

    rows = [(f"c{i % 20}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=3 * i), "purchase", f"o{i}", 20.0 + i)
            for i in range(120)]
    insert_events(app_wh, "orders", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    said = [i.value for i in at.info if "no reviews" in i.value]
    assert len(said) == 1, [i.value for i in at.info]
    assert said[0].startswith("“orders” has no reviews"), said
    assert "Data page" in said[0] and "'review'" not in said[0], said
    assert not [b for b in at.button if b.key == "rv_rescore"]


def test_customers_without_a_purchase_and_no_items_are_not_called_buyers(app_wh):
    # an order log without product ids, with visitors who never bought: nothing to recommend, and the
    # page said "Every customer has bought something"
    from tests.dashboard.conftest import TIMEOUT, insert_events

    start = pd.Timestamp("2024-01-01")
    rows = [(f"c{i % 20}", start + pd.Timedelta(days=3 * i), "purchase", f"o{i}", 20.0 + i) for i in range(120)]
    rows += [(f"v{i}", start + pd.Timedelta(days=5 * i), "view", None, None) for i in range(7)]
    insert_events(app_wh, "orders", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    infos = [i.value for i in at.info]
    assert not any("Every customer has bought something" in v for v in infos), infos
    assert any(v.startswith("7 customers have not bought anything") and "nothing to recommend" in v
               for v in infos), infos


def test_too_few_first_time_buyers_is_said_in_a_sentence(app_wh):
    # 20 customers: too few earlier first-time buyers to learn from; the tab showed the library's bare
    # "only 20 earlier first-time buyers to learn from ..." in lower case
    from tests.dashboard.conftest import TIMEOUT, insert_events

    start = pd.Timestamp("2024-01-01")
    rows = [(f"c{i % 20}", start + pd.Timedelta(days=3 * i), "purchase", f"o{i}", 20.0 + i) for i in range(120)]
    insert_events(app_wh, "orders", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    said = [i.value for i in at.info if "earlier first" in i.value]
    assert len(said) == 1, [i.value for i in at.info]
    assert said[0].startswith("The new customers' value cannot be predicted on these data"), said
    assert "CLV by formula" in said[0] and "at least 50 are needed" in said[0], said
