"""Selection, ranking, cap arithmetic and the stratified, seeded control group."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics import campaigns as c
from analytics.segments import store

from .conftest import AS_OF


@pytest.fixture(scope="module")
def seg_shop(shop):
    w, frame = shop
    if "Big" not in set(store.list_segments(w)["name"]):
        store.save_segment(w, "Big", {"op": "and", "conditions": [
            {"field": "net_revenue", "operator": ">=", "value": 300}]})
        store.save_segment(w, "Recent", {"op": "and", "conditions": [
            {"field": "time_since_purchase", "operator": "<=", "value": 60}]})
    return w, frame


def spec(**kw):
    base = dict(name="test", dataset="shop", as_of=AS_OF)
    base.update(kw)
    return c.CampaignSpec(**base)


def test_value_columns_sources(shop):
    w, frame = shop
    v = c.value_columns(w, frame)
    assert v.attrs["value_source"] == "BG/NBD + Gamma-Gamma CLV"
    buyers = frame["n_orders"] > 0
    # non-buyers: expected CLV 0, no churn risk, churn value 0
    assert (v.loc[~buyers, "expected_clv"] == 0).all()
    assert v.loc[~buyers, "churn_risk"].isna().all()
    assert (v.loc[~buyers, "churn_value"] == 0).all()
    # buyers: CLV equals probabilistic_clv's clv_bgnbd; churn risk = 1 - p_alive
    from analytics.scores import probabilistic_clv

    prob, _ = probabilistic_clv(frame)
    np.testing.assert_allclose(v.loc[buyers, "expected_clv"], prob["clv_bgnbd"].reindex(v.index[buyers]))
    np.testing.assert_allclose(v.loc[buyers, "churn_risk"], 1 - prob["p_alive"].reindex(v.index[buyers]))
    np.testing.assert_allclose(v["churn_value"], (v["churn_risk"] * v["expected_clv"]).fillna(0.0))


def test_published_predictions_take_precedence(shop):
    w, frame = shop
    f = frame.copy()
    f["predicted_value"] = np.nan
    f["churn_probability"] = np.nan
    first = f.index[:10]
    f.loc[first, "predicted_value"] = 1e7 + np.arange(10)
    f.loc[first, "churn_probability"] = 0.5
    v = c.value_columns(w, f)
    assert list(v.loc[first, "expected_clv"]) == list(1e7 + np.arange(10))
    assert (v.loc[first, "churn_risk"] == 0.5).all()
    assert "published model" in v.attrs["value_source"]
    t = c.select_targets(w, f, spec(max_contacts=9))
    assert set(t["customer_id"]) == set(first.astype(str))
    assert list(t["customer_id"]) == list(first.astype(str)[::-1])  # 1009 first


def test_ranking_and_ties_deterministic(shop):
    w, frame = shop
    f = c.value_columns(w, frame)
    t = c.select_targets(w, f, spec(ranking="expected_clv"))
    assert list(t["rank"]) == list(range(1, len(t) + 1))
    s = t["rank_score"].to_numpy()
    assert (np.diff(s) <= 0).all()
    # a constant score: ties broken by ascending customer id
    f2 = f.assign(const=1.0)
    t2 = c.select_targets(w, f2, spec(ranking="score", score_column="const", max_contacts=20))
    assert list(t2["customer_id"]) == sorted(f.index.astype(str))[:len(t2)]
    # churn_value ranking uses churn_risk x expected_clv
    t3 = c.select_targets(w, f, spec(ranking="churn_value", max_contacts=30))
    top = (f["churn_value"].sort_values(ascending=False, kind="stable"))
    assert t3["rank_score"].iloc[0] == pytest.approx(top.iloc[0])


def test_cap_arithmetic(seg_shop):
    w, frame = seg_shop
    f = c.value_columns(w, frame)
    n_all = len(f)
    # budget: floor(101 / 2) = 50 contacted; total ceil(50 / 0.9) = 56; control 6
    t = c.select_targets(w, f, spec(budget=101, cost_per_contact=2))
    assert (t["group"] == "treatment").sum() == 50
    assert len(t) == math.ceil(50 / 0.9) == 56
    assert t.attrs["cap_reason"] == "budget / cost per contact"
    # max contacts tighter than budget
    t = c.select_targets(w, f, spec(budget=1000, cost_per_contact=1, max_contacts=40, control_share=0.2))
    assert (t["group"] == "treatment").sum() == 40 and len(t) == 50
    # no cap: eligible x (1 - share) contacted, everyone else of the eligible held out
    t = c.select_targets(w, f, spec(control_share=0.25))
    assert (t["group"] == "treatment").sum() == math.floor(n_all * 0.75)
    assert len(t) == n_all
    # cost 0: the budget does not limit
    t = c.select_targets(w, f, spec(budget=10, cost_per_contact=0, max_contacts=30))
    assert (t["group"] == "treatment").sum() == 30


def test_segments_or_combined_and_extra_rules_anded(seg_shop):
    w, frame = seg_shop
    f = c.value_columns(w, frame)
    big = store.evaluate_segment(w, "Big", f)
    recent = store.evaluate_segment(w, "Recent", f)
    extra = {"op": "and", "conditions": [{"field": "n_orders", "operator": ">=", "value": 3}]}
    want = (big | recent) & (f["n_orders"] >= 3)
    t = c.select_targets(w, f, spec(segments=["Big", "Recent"], extra_rules=extra, control_share=0.5))
    assert t.attrs["eligible"] == int(want.sum())
    assert set(t["customer_id"]) <= set(f.index[want].astype(str))
    # the segment label is the first matching segment in the order given
    lab = t.set_index("customer_id")["segment"]
    for cid, s in lab.items():
        assert s == ("Big" if big[cid] else "Recent")


def test_stratified_control_share_per_segment(seg_shop):
    w, frame = seg_shop
    f = c.value_columns(w, frame)
    t = c.select_targets(w, f, spec(segments=["Big", "Recent"], control_share=0.3))
    n_control = (t["group"] == "control").sum()
    for seg, g in t.groupby("segment"):
        got = (g["group"] == "control").sum()
        assert abs(got - len(g) * n_control / len(t)) < 1.0, seg
    # same seed -> same assignment; another seed -> another one
    t2 = c.select_targets(w, f, spec(segments=["Big", "Recent"], control_share=0.3))
    assert list(t2["group"]) == list(t["group"])
    t3 = c.select_targets(w, f, spec(segments=["Big", "Recent"], control_share=0.3, seed=7))
    assert list(t3["group"]) != list(t["group"])
    assert (t3["group"] == "control").sum() == n_control


def test_assign_control_public():
    df = pd.DataFrame({"customer_id": [f"x{i}" for i in range(1000)], "rank": np.arange(1, 1001),
                       "segment": np.repeat(["a", "b", "c"], [500, 300, 200])})
    out = c.assign_control(df, 0.2, seed=3)
    per = out[out["group"] == "control"].groupby("segment").size()
    assert dict(per) == {"a": 100, "b": 60, "c": 40}
    # row order does not change who is held out
    shuffled = c.assign_control(df.sample(frac=1, random_state=1), 0.2, seed=3)
    a = out.set_index("customer_id")["group"]
    b = shuffled.set_index("customer_id")["group"].reindex(a.index)
    assert (a == b).all()
    # over many seeds each customer is held out ~20% of the time (random, not rank-biased)
    hits = np.zeros(1000)
    for s in range(200):
        hits += (c.assign_control(df, 0.2, seed=s)["group"] == "control").to_numpy()
    assert abs(hits[:100].mean() / 200 - 0.2) < 0.03 and abs(hits[-100:].mean() / 200 - 0.2) < 0.03
    with pytest.raises(c.CampaignError, match="strictly between"):
        c.assign_control(df, 1.0)


def test_bad_input_messages(seg_shop):
    w, frame = seg_shop
    f = c.value_columns(w, frame)
    cases = [
        (dict(budget=0), "budget of 0"),
        (dict(control_share=0), "strictly between 0 % and 100 %"),
        (dict(control_share=1), "strictly between 0 % and 100 %"),
        (dict(cost_per_contact=-1), "cannot be negative"),
        (dict(segments=["Nope"]), "unknown segment 'Nope'"),
        (dict(ranking="score", score_column="nope"), "unknown score column 'nope'"),
        (dict(ranking="score", score_column="rfm_segment"), "not numeric"),
        (dict(ranking="magic"), "unknown ranking"),
        (dict(name="  "), "needs a name"),
        (dict(name="x" * 201), "at most 200"),
        (dict(budget=1, cost_per_contact=5), "does not cover one contact"),
        (dict(as_of="yesterday-ish"), "not a date"),
        (dict(extra_rules={"op": "and", "conditions": [{"field": "n_orders", "operator": ">", "value": 1e9}]}),
         "the selection is empty"),
    ]
    for kw, msg in cases:
        with pytest.raises(c.CampaignError, match=msg):
            c.select_targets(w, f, spec(**kw))
    with pytest.raises(c.CampaignError, match="as of 2024-12-31, the campaign as of 2024-11-30"):
        c.select_targets(w, f, spec(as_of="2024-11-30"))
    with pytest.raises(c.CampaignError, match="of dataset 'shop'"):
        c.select_targets(w, f, spec(dataset="other"))
    one = f.iloc[:1]
    with pytest.raises(c.CampaignError, match="too few"):
        c.select_targets(w, one, spec())


def test_default_response(shop):
    w, frame = shop
    rate, value = c.default_response(frame, as_of=AS_OF)
    last = pd.to_datetime(frame["last_purchase"])
    recent = ((pd.Timestamp(AS_OF) - last).dt.days < 30).mean()
    assert c.response_defaults(frame, as_of=AS_OF)["natural_rate"] == pytest.approx(recent)
    # no campaign history: the assumed incremental response, never above the natural rate
    assert rate == pytest.approx(min(c.targeting.ASSUMED_INCREMENTAL_RESPONSE, recent))
    buyers = frame["n_orders"] > 0
    assert value == pytest.approx(float((frame.loc[buyers, "total_revenue"] / frame.loc[buyers, "n_orders"]).median()))


def test_spec_round_trip():
    s = spec(segments=["A", "A", " B "], budget=100, extra_rules={"op": "and", "conditions": []}).validated()
    assert s.segments == ["A", "B"] and s.extra_rules is None
    assert c.CampaignSpec.from_dict(s.to_dict()) == s
    with pytest.raises(c.CampaignError, match="unknown campaign field"):
        c.CampaignSpec.from_dict({**s.to_dict(), "evil": 1})


def test_formula_clv_fallback_when_models_cannot_fit(shop):
    w, frame = shop
    f = frame.copy()
    # nobody repeats: BG/NBD / Gamma-Gamma have nothing to fit on
    f["frequency"] = np.where(f["n_orders"] > 0, 0.0, np.nan)
    f["monetary_value"] = np.where(f["n_orders"] > 0, 0.0, np.nan)
    v = c.value_columns(w, f)
    assert v.attrs["value_source"] == "formula CLV"
    assert "could not be fitted" in v.attrs["value_note"]
    np.testing.assert_allclose(v["expected_clv"], f["clv"].fillna(0.0))
    assert v["churn_risk"].isna().all() and (v["churn_value"] == 0).all()


def test_recommended_items_exclude_purchases(shop):
    from analytics import recommend

    w, frame = shop
    f = c.value_columns(w, frame)
    t = c.select_targets(w, f, spec(max_contacts=30, recommendations=4))
    bought = w.cursor().execute(
        "SELECT customer_id, list(DISTINCT item_id) FROM events WHERE event_type = 'purchase' "
        "GROUP BY customer_id").fetchall()
    bought = {cid: set(items) for cid, items in bought}
    for cid, text in zip(t["customer_id"], t["recommended_items"]):
        items = text.split("; ")
        assert 1 <= len(items) <= 4 and len(set(items)) == len(items)
        assert not set(items) & bought.get(cid, set())
    # a fitted recommender passed in gives the same list
    model = recommend.campaign_recommender(w, "shop", "2025-01-01")
    t2 = c.select_targets(w, f, spec(max_contacts=30, recommendations=4), recommender=model)
    assert list(t2["recommended_items"]) == list(t["recommended_items"])
    hats = c.select_targets(w, f, spec(max_contacts=30, recommendations=2, recommendation_category="hats"))
    assert all(i.startswith("hats-") for s in hats["recommended_items"] if s for i in s.split("; "))


def test_order_partial_equals_full_sort_prefix():
    from analytics.campaigns.targeting import _order

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 200))
        sc = rng.integers(0, 5, n).astype(float)  # many ties
        sc[rng.random(n) < 0.2] = np.nan
        ids = pd.Index(rng.permutation([f"x{i}" for i in range(n)]), dtype="str")
        full = _order(sc, ids)
        want = sorted(range(n), key=lambda i: (np.inf if np.isnan(sc[i]) else -sc[i], ids[i]))
        assert list(full) == want
        top = int(rng.integers(1, n + 1))
        assert list(_order(sc, ids, top)) == want[:top]


def test_default_response_falls_back_to_repeat_rate(shop):
    w, frame = shop
    later = "2026-06-30"  # nobody bought in the 30 days before: the repeat-purchase rate instead
    d = c.response_defaults(frame, as_of=later)
    buyers = frame["n_orders"] > 0
    repeat = float((frame.loc[buyers, "n_orders"] >= 2).mean())
    assert d["natural_rate"] == pytest.approx(repeat)
    assert d["response_rate"] == pytest.approx(min(c.targeting.ASSUMED_INCREMENTAL_RESPONSE, repeat))
    assert "repeat-purchase rate" in d["source"]
    assert c.default_response(frame, as_of=later) == (d["response_rate"], d["value_per_response"])
    # no earlier campaign with outcomes: the data-derived numbers even when a warehouse is given
    assert c.response_defaults(frame, as_of=later, wh=w)["response_rate"] == d["response_rate"]


def test_rank_eligible_is_the_uncapped_ranking(seg_shop):
    w, frame = seg_shop
    f = c.value_columns(w, frame)
    sp = spec(segments=["Big", "Recent"], max_contacts=20)
    ranked = c.rank_eligible(w, f, sp)
    t = c.select_targets(w, f, sp)
    assert len(ranked) == t.attrs["eligible"]
    # the capped list is the top of the full ranking, same order and segments
    head = ranked.iloc[:len(t)]
    assert list(head["customer_id"]) == list(t["customer_id"])
    assert list(head["segment"]) == list(t["segment"])
    curve = c.return_curve(ranked, 0.2, 30.0, 2.0)
    assert curve["n_contacted"].iloc[-1] == len(ranked)
