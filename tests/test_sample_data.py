"""The sample data generator: layout, validity, planted structure, determinism, CLI."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.cli import main as cli_main
from sample_data import SAMPLE_EVENTS, SAMPLE_TRUTH
from sample_data.check import customer_features, persona_ari, read_events
from sample_data.generator import (
    HEADER, PERSONAS, TRUTH_HEADER, SampleConfig, SampleError, generate, iter_batches,
)

EVENT_TYPES = {"view", "search", "cart", "purchase", "return", "review"}
N = 2000


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    ev, tr = d / "events.csv.gz", d / "truth.csv"
    summary = generate(ev, tr, SampleConfig(customers=N, seed=11))
    return summary, ev, tr, read_events(ev), pd.read_csv(tr, dtype={"customer_id": str})


def test_header_is_exactly_the_canonical_layout(sample):
    _, ev, tr, _, _ = sample
    with gzip.open(ev, "rt") as fh:
        assert fh.readline().rstrip("\n") == (
            "customer_id,event_time,event_type,order_id,item_id,category,quantity,revenue,rating,text,country")
    assert tr.read_text().splitlines()[0] == ",".join(TRUTH_HEADER)
    assert len(HEADER) == 11


def test_types_and_values(sample):
    summary, ev, _, e, _ = sample
    assert len(e) == summary["events"] > 20 * N  # summary counts what was written
    assert summary["events"] == sum(summary["events_by_type"].values())
    assert set(e["event_type"]) == EVENT_TYPES
    assert pd.api.types.is_datetime64_any_dtype(e["event_time"])
    with gzip.open(ev, "rt") as fh:
        fh.readline()
        times = [fh.readline().split(",")[1] for _ in range(200)]
    assert all(len(t) == 19 and t[10] == " " and t[4] == "-" and t[13] == ":" for t in times)
    for col in ("quantity", "revenue", "rating"):
        assert pd.api.types.is_numeric_dtype(e[col])
    # all times inside the history window and in the past
    assert e["event_time"].min() >= pd.Timestamp("2024-01-01")
    assert e["event_time"].max() < pd.Timestamp("2026-01-01")
    assert e["customer_id"].str.fullmatch(r"C\d{7}").all()
    assert e["country"].notna().all() and e["country"].str.fullmatch(r"[A-Z]{2}").all()


def test_revenue_orders_ratings_by_type(sample):
    e = sample[3]
    pur, ret, rev = (e[e.event_type == t] for t in ("purchase", "return", "review"))
    other = e[e.event_type.isin(["view", "search", "cart"])]
    assert (pur.revenue > 0).all() and (ret.revenue > 0).all()  # returns: positive refund
    assert other.revenue.isna().all() and rev.revenue.isna().all()
    assert pur.order_id.notna().all() and ret.order_id.notna().all()
    assert other.order_id.isna().all()
    assert (pur.quantity >= 1).all() and pur.item_id.notna().all()
    assert rev.rating.between(1, 5).all() and rev.text.str.len().gt(0).all()
    assert e.loc[e.event_type == "search", "text"].notna().all()
    # several item lines may share an order
    lines = pur.groupby("order_id").size()
    assert (lines > 1).mean() > 0.1 and lines.min() == 1
    # revenue is quantity x a price: two decimals at most
    assert np.allclose(np.round(pur.revenue * 100), pur.revenue * 100)


def test_returns_reference_bought_items_earlier(sample):
    e = sample[3]
    pur = e[e.event_type == "purchase"][["customer_id", "order_id", "item_id", "event_time", "revenue", "quantity"]]
    ret = e[e.event_type == "return"][["customer_id", "order_id", "item_id", "event_time", "revenue", "quantity"]]
    assert len(ret) > 20
    m = ret.merge(pur, on=["customer_id", "order_id", "item_id"], suffixes=("_r", "_p"), how="left")
    assert m["event_time_p"].notna().all()
    m = m[m.revenue_r == m.revenue_p]  # the matching line (an order may hold an item twice)
    assert m.groupby(["customer_id", "order_id", "item_id", "event_time_r"]).ngroups == len(ret)
    assert (m.event_time_r > m.event_time_p).all()
    assert (m.revenue_r <= m.revenue_p).all()


def test_truth_rows_are_the_customers_and_personas_all_present(sample):
    summary, _, _, e, t = sample
    assert summary["customers"] == N == len(t) == e.customer_id.nunique()
    assert set(t.customer_id) == set(e.customer_id)
    assert set(t.persona) == set(PERSONAS)
    share = t.persona.value_counts(normalize=True)
    assert share.min() > 0.08
    assert (t.future_revenue >= 0).all() and (t.future_purchases >= 0).all()
    assert ((t.future_purchases == 0) == (t.churned == 1)).all()
    # truth history figures agree with the events file
    pur = e[e.event_type == "purchase"]
    hist = pur.groupby("customer_id").revenue.sum().reindex(t.customer_id).fillna(0).to_numpy()
    assert np.allclose(hist, t.history_revenue.to_numpy(), atol=0.02)
    orders = pur.groupby("customer_id").order_id.nunique().reindex(t.customer_id).fillna(0).to_numpy()
    assert (orders == t.history_purchases.to_numpy()).all()


def test_personas_behave_as_planted(sample):
    _, _, _, e, t = sample
    f = customer_features(e, "2026-01-01").join(t.set_index("customer_id"))
    g = f.groupby("persona")
    assert (t[t.persona == "one_time_buyer"].history_purchases == 1).all()
    assert g.n_view.mean()["window_shopper"] > 5 * g.n_purchase.mean()["window_shopper"]
    assert g.frequency.mean()["window_shopper"] < 0.5
    assert g.monetary.mean()["loyal_high_spender"] > 4 * g.monetary.mean()["bargain_hunter"]
    assert g.n_search.mean()["bargain_hunter"] > 2 * g.n_search.mean()["loyal_high_spender"]
    assert g.recency_days.median()["at_risk_big_spender"] > 3 * g.recency_days.median()["loyal_high_spender"]
    assert g.tenure_days.max()["promising_newcomer"] < 200
    # newcomers ramp up and keep buying; at-risk customers fade
    fut = g.future_revenue.mean()
    assert fut["promising_newcomer"] > 3 * fut["at_risk_big_spender"]
    assert fut["loyal_high_spender"] > 3 * fut["bargain_hunter"] > 3 * fut["window_shopper"]
    assert g.alive_at_history_end.mean()["one_time_buyer"] == 0


def test_funnel_views_outnumber_carts_outnumber_purchases(sample):
    c = sample[3].event_type.value_counts()
    assert c["view"] > c["cart"] > c["purchase"] > c["return"]
    assert c["search"] > c["review"]


def test_seasonality_november_december_and_weekend(sample):
    e = sample[3]
    pur = e[e.event_type == "purchase"].drop_duplicates("order_id")
    late = pur[pur.event_time >= "2025-01-01"]  # a full year with a stable customer base
    by_month = late.event_time.dt.month.value_counts(normalize=True)
    assert by_month[[11, 12]].mean() > 1.25 * by_month.mean()
    wd = pur.event_time.dt.dayofweek.value_counts(normalize=True)
    assert wd[[5, 6]].mean() > 1.1 * wd[[0, 1, 2, 3]].mean()


def test_planted_personas_are_recoverable_by_kmeans(sample):
    _, _, _, e, t = sample
    assert persona_ari(e, t, "2026-01-01", seed=0) >= 0.7


def test_views_lead_purchases(sample):
    """Recent browsing predicts future purchases beyond the purchase history (a signal for issue 5)."""
    _, _, _, e, t = sample
    last = e[(e.event_time >= "2025-11-01") & (e.event_type == "view")].groupby("customer_id").size()
    t = t.set_index("customer_id")
    t["recent_views"] = last.reindex(t.index).fillna(0)
    alive = t[(t.persona == "loyal_high_spender")]
    hi = alive.recent_views > alive.recent_views.median()
    assert alive[hi].future_purchases.mean() > 1.2 * alive[~hi].future_purchases.mean()


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path):
    cfg = SampleConfig(customers=300, seed=5)
    a, b, c = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"
    generate(a, tmp_path / "ta.csv", cfg)
    generate(b, tmp_path / "tb.csv", cfg)
    generate(c, None, SampleConfig(customers=300, seed=6))
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "ta.csv").read_bytes() == (tmp_path / "tb.csv").read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_batches_stream_with_bounded_size():
    cfg = SampleConfig(customers=450, seed=2, batch_size=200)
    sizes = [(b.truth.num_rows, b.events.num_rows) for b in iter_batches(cfg)]
    assert [s[0] for s in sizes] == [200, 200, 50]
    assert all(s[1] > 0 for s in sizes)


def test_custom_window_and_plain_csv(tmp_path):
    out = tmp_path / "e.csv"
    s = generate(out, None, SampleConfig(customers=200, seed=1, start=dt.date(2022, 3, 1),
                                         end=dt.date(2022, 12, 31), future_days=30))
    e = read_events(out)
    assert out.read_bytes()[:11] == b"customer_id"
    assert e.event_time.min() >= pd.Timestamp("2022-03-01")
    assert e.event_time.max() < pd.Timestamp("2023-01-01")
    assert s["customers"] == 200 == e.customer_id.nunique()


@pytest.mark.parametrize("kwargs, words", [
    ({"customers": 0}, "--customers"),
    ({"start": dt.date(1985, 1, 1)}, "1990"),
    ({"start": dt.date(2025, 1, 1), "end": dt.date(2025, 1, 20)}, "8 weeks"),
    ({"future_days": 0}, "--future-days"),
])
def test_bad_arguments_raise_user_errors(kwargs, words, tmp_path):
    with pytest.raises(SampleError, match=words):
        generate(tmp_path / "x.csv", None, SampleConfig(**kwargs))
    assert issubclass(SampleError, ValueError)


def test_cli_writes_files_and_reports_json(tmp_path, capsys):
    out, truth = tmp_path / "ev.csv.gz", tmp_path / "truth.csv.gz"
    rc = cli_main(["sample", "--customers", "150", "--seed", "3", "--out", str(out), "--truth", str(truth),
                   "--db", str(tmp_path / "unused.duckdb")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert '"customers": 150' in printed
    assert len(pd.read_csv(truth)) == 150
    assert not (tmp_path / "unused.duckdb").exists()


@pytest.mark.parametrize("argv, words", [
    (["--customers", "-5"], "--customers"),
    (["--end", "2999-01-01"], "not in the past"),
    (["--start", "1980-01-01"], "1990"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, words, tmp_path, capsys):
    rc = cli_main(["sample", "--out", str(tmp_path / "x.csv"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_missing_folder(tmp_path, capsys):
    rc = cli_main(["sample", "--customers", "10", "--out", str(tmp_path / "nope" / "x.csv")])
    assert rc == 2 and "folder does not exist" in capsys.readouterr().err


def test_committed_default_sample_matches_documented_command(tmp_path):
    """sample_data/README.md's command regenerates the committed files byte for byte."""
    readme = (SAMPLE_EVENTS.parent / "README.md").read_text()
    assert "--customers 4000 --seed 42" in readme
    out, truth = tmp_path / "e.csv.gz", tmp_path / "t.csv.gz"
    rc = cli_main(["sample", "--customers", "4000", "--seed", "42", "--out", str(out), "--truth", str(truth),
                   "--quiet"])
    assert rc == 0
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(SAMPLE_EVENTS.read_bytes()).digest()
    assert truth.read_bytes() == SAMPLE_TRUTH.read_bytes()
    assert SAMPLE_EVENTS.stat().st_size < 5_000_000


def test_failed_run_leaves_no_partial_file(tmp_path, monkeypatch):
    import sample_data.generator as g

    def boom(*a, **k):
        raise RuntimeError("disk full")

    out = tmp_path / "e.csv"
    monkeypatch.setattr(g, "_write_table", boom)
    with pytest.raises(RuntimeError):
        generate(out, tmp_path / "t.csv", SampleConfig(customers=50, seed=1))
    assert list(tmp_path.iterdir()) == []


def test_out_must_not_be_a_folder_or_the_truth_file(tmp_path):
    with pytest.raises(SampleError, match="folder"):
        generate(tmp_path, None, SampleConfig(customers=10))
    with pytest.raises(SampleError, match="different file"):
        generate(tmp_path / "a.csv", tmp_path / "a.csv", SampleConfig(customers=10))


def test_behaviour_features_beat_bgnbd_on_holdout_value():
    """The planted signals (leading views, trends, persona spend) are learnable beyond BG/NBD (issue 5)."""
    from sample_data.check import value_predictability

    r = value_predictability(read_events(SAMPLE_EVENTS), "2025-07-01", "2026-01-01")
    assert r["lightgbm"]["rmse"] < r["bgnbd_gg"]["rmse"] < r["zero"]["rmse"]
    assert r["lightgbm"]["normalized_gini"] > r["bgnbd_gg"]["normalized_gini"] + 0.03
