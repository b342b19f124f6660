"""RFM, segments, behaviour score, CLV formula and the re-scoring Scorer (synthetic summaries)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.scores import (
    BEHAVIOUR_KEYS,
    DEFAULT_SEGMENT_RULES,
    NO_PURCHASE,
    CLVParams,
    Scorer,
    ScoreError,
    behaviour_score,
    clv_formula,
    clv_inputs,
    compile_segment_rules,
    default_segment_rules,
    discounted_months,
    fm_score,
    normalize_weights,
    parse_weights,
    quintile_scores,
    rfm_scores,
    rfm_segments,
    validate_segment_rules,
    weighted_rfm_score,
)

AS_OF = pd.Timestamp("2024-01-01")


def make_summary(rows: list[dict], as_of=AS_OF) -> pd.DataFrame:
    """A summary with the columns customer_summary returns (only the ones scores use filled)."""
    base = {
        "first_purchase": pd.NaT, "last_purchase": pd.NaT, "n_orders": 0, "net_revenue": 0.0,
        "n_views": 0, "n_searches": 0, "n_carts": 0, "n_purchases": 0, "n_reviews": 0,
    }
    recs = []
    for i, r in enumerate(rows):
        rec = {**base, **r}
        rec.setdefault("customer_id", f"c{i:03d}")
        recs.append(rec)
    df = pd.DataFrame(recs).set_index("customer_id")
    for c in ("first_purchase", "last_purchase"):
        df[c] = pd.to_datetime(df[c])
    df.attrs.update(as_of=as_of, unit="days", dataset="t")
    return df


def buyer(days_ago_last, orders, revenue, days_ago_first=None, **kw):
    first = days_ago_first if days_ago_first is not None else days_ago_last + 30 * (orders - 1)
    return {
        "first_purchase": AS_OF - pd.Timedelta(days=first),
        "last_purchase": AS_OF - pd.Timedelta(days=days_ago_last),
        "n_orders": orders, "net_revenue": revenue, "n_purchases": orders, **kw,
    }


# -- quintiles --------------------------------------------------------------------------
def test_quintiles_distinct_values_fill_each_fifth():
    x = np.arange(10, dtype=float)
    assert quintile_scores(x).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_scores(x, higher_is_better=False).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_quintiles_equal_values_get_equal_scores_whatever_the_order():
    x = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5], dtype=float)
    s = quintile_scores(x)
    assert len(set(s[:6])) == 1
    assert s[:6][0] == 2  # tied block spans ranks 1-6: average rank 3.5 -> p=0.3 -> score 2
    assert s.tolist() == [2, 2, 2, 2, 2, 2, 4, 4, 5, 5]
    perm = np.random.default_rng(0).permutation(10)
    assert quintile_scores(x[perm]).tolist() == s[perm].tolist()
    # all equal -> the middle score
    assert quintile_scores(np.full(7, 3.0)).tolist() == [3] * 7
    # NaN = not scored
    assert quintile_scores(np.array([np.nan, 1.0, 2.0])).tolist()[0] == 0


def test_fm_score_rounds_half_up():
    assert fm_score(np.array([1, 1, 2, 4, 5, 0]), np.array([1, 2, 3, 5, 5, 0])).tolist() == [1, 2, 3, 5, 5, 0]


def test_rfm_scores_direction_and_non_buyers():
    rows = [buyer(d, o, m) for d, o, m in [(1, 9, 900.0), (10, 5, 500.0), (50, 3, 300.0), (100, 2, 200.0), (300, 1, 100.0)]]
    rows.append({"n_views": 5})  # never bought
    s = make_summary(rows)
    rfm = rfm_scores(s)
    assert rfm["r_score"].tolist() == [5, 4, 3, 2, 1, 0]
    assert rfm["f_score"].tolist() == [5, 4, 3, 2, 1, 0]
    assert rfm["m_score"].tolist() == [5, 4, 3, 2, 1, 0]
    assert rfm["days_since_last_purchase"].tolist()[:5] == [1.0, 10.0, 50.0, 100.0, 300.0]
    assert math.isnan(rfm["days_since_last_purchase"].iloc[5])
    # as_of is explicit: an earlier as-of gives fewer days since the last purchase
    assert rfm_scores(s, as_of="2023-12-31")["days_since_last_purchase"].iloc[0] == 0.0


def test_rfm_requires_as_of():
    s = make_summary([buyer(1, 1, 10.0)])
    s.attrs.pop("as_of")
    with pytest.raises(ScoreError, match="as-of"):
        rfm_scores(s)


def test_weighted_rfm_score_normalizes_weights():
    r, f, m = np.array([5, 1]), np.array([1, 5]), np.array([3, 3])
    assert weighted_rfm_score(r, f, m, {"recency": 1, "frequency": 1, "monetary": 1}).tolist() == pytest.approx([3.0, 3.0])
    assert weighted_rfm_score(r, f, m, {"recency": 2, "frequency": 0, "monetary": 0}).tolist() == pytest.approx([5.0, 1.0])
    assert weighted_rfm_score(r, f, m, [3, 1, 0]).tolist() == pytest.approx([4.0, 2.0])


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"recency": -1, "frequency": 1, "monetary": 1}, "negative"),
        ({"recency": 0, "frequency": 0, "monetary": 0}, "above 0"),
        ({"recency": float("nan")}, "finite"),
        ({"speed": 1}, "unknown"),
        ([1, 2], "expected 3"),
        (["a", 1, 1], "numbers"),
    ],
)
def test_bad_weights(weights, message):
    with pytest.raises(ScoreError, match=message):
        normalize_weights(weights, ("recency", "frequency", "monetary"), "RFM weights")


def test_parse_weights():
    keys = ("recency", "frequency", "monetary")
    assert parse_weights("1,2,3", keys) == {"recency": 1.0, "frequency": 2.0, "monetary": 3.0}
    assert parse_weights("monetary=2", keys) == {"recency": 0.0, "frequency": 0.0, "monetary": 2.0}
    for bad in ["1,2", "1,x,3", "speed=1", "0,0,0", "1,recency=2,3", ""]:
        with pytest.raises(ScoreError):
            parse_weights(bad, keys)


# -- segments ------------------------------------------------------------------------------------
def test_default_grid_covers_every_cell_with_the_eleven_named_segments():
    smap = compile_segment_rules()
    assert smap.uncovered == ()
    expected = {
        "Champions", "Loyal", "Potential loyalists", "New customers", "Promising", "Need attention",
        "About to sleep", "At risk", "Cannot lose them", "Hibernating", "Lost",
    }
    used = {smap.names[c] for c in smap.lut[:25]}
    assert used == expected


@pytest.mark.parametrize(
    "r, fm, segment",
    [
        (5, 5, "Champions"), (5, 4, "Champions"), (4, 5, "Loyal"), (3, 4, "Loyal"),
        (5, 2, "Potential loyalists"), (4, 3, "Potential loyalists"), (5, 1, "New customers"),
        (4, 1, "Promising"), (3, 3, "Need attention"), (3, 1, "About to sleep"), (3, 2, "About to sleep"),
        (1, 5, "Cannot lose them"), (2, 5, "Cannot lose them"), (2, 3, "At risk"), (1, 4, "At risk"),
        (1, 1, "Lost"), (2, 1, "Hibernating"), (1, 2, "Hibernating"), (0, 0, NO_PURCHASE),
    ],
)
def test_default_grid_cells(r, fm, segment):
    assert rfm_segments(np.array([r]), np.array([fm]))[0] == segment


def test_first_matching_rule_wins_and_fallback():
    rules = [
        {"segment": "Top", "r_min": 4, "r_max": 5, "fm_min": 4, "fm_max": 5},
        {"segment": "Recent", "r_min": 4, "r_max": 5, "fm_min": 1, "fm_max": 5},
    ]
    seg = rfm_segments(np.array([5, 4, 5, 2, 0]), np.array([5, 2, 1, 5, 0]), rules, fallback="Rest")
    assert seg.tolist() == ["Top", "Recent", "Recent", "Rest", NO_PURCHASE]
    # reversing the order: the broad rule now takes everything recent
    seg = rfm_segments(np.array([5]), np.array([5]), rules[::-1])
    assert seg.tolist() == ["Recent"]
    assert len(compile_segment_rules(rules).uncovered) == 15


def test_rule_table_from_data_editor_frame_with_blank_rows():
    df = default_segment_rules()
    df.loc[len(df)] = [None, None, None, None, None]  # the editor's empty new row
    assert validate_segment_rules(df) == DEFAULT_SEGMENT_RULES
    df2 = default_segment_rules()
    df2.loc[0, "r_min"] = 4.0  # floats from the editor are fine when whole
    assert validate_segment_rules(df2)[0]["r_min"] == 4


@pytest.mark.parametrize(
    "change, message",
    [
        ({"segment": ""}, "segment name is empty"),
        ({"r_min": 0}, "whole number 1-5"),
        ({"fm_max": 6}, "whole number 1-5"),
        ({"r_max": 2.5}, "whole number 1-5"),
        ({"r_min": "x"}, "whole number 1-5"),
        ({"fm_min": None}, "fm_min is empty"),
        ({"r_min": 5, "r_max": 1}, "r_min \\(5\\) is above r_max \\(1\\)"),
        ({"segment": NO_PURCHASE}, "reserved"),
    ],
)
def test_rule_validation_errors_name_the_row(change, message):
    rules = [dict(r) for r in DEFAULT_SEGMENT_RULES]
    rules[2].update(change)
    with pytest.raises(ScoreError, match=message) as err:
        validate_segment_rules(rules)
    assert "rule 3" in str(err.value)


def test_rule_validation_table_level_errors():
    with pytest.raises(ScoreError, match="lack column"):
        validate_segment_rules(pd.DataFrame({"segment": ["a"], "r_min": [1]}))
    with pytest.raises(ScoreError, match="empty"):
        validate_segment_rules(default_segment_rules().iloc[0:0])


# -- behaviour ------------------------------------------------------------------------------------
def test_behaviour_score_normalization_and_weights():
    s = make_summary([
        {"n_views": 0, "n_carts": 0},
        {"n_views": 99, "n_carts": 0},
        {"n_views": 9, "n_carts": 3},
    ])
    only_views = behaviour_score(s, {"views": 1})
    # log1p then min-max: 0 -> 0, 99 -> 1, 9 -> log(10)/log(100) = 0.5
    assert only_views.tolist() == pytest.approx([0.0, 100.0, 50.0], abs=1e-4)
    only_carts = behaviour_score(s, {"carts": 1})
    assert only_carts.tolist() == pytest.approx([0.0, 0.0, 100.0], abs=1e-4)
    both = behaviour_score(s, {"views": 1, "carts": 1})
    assert both.tolist() == pytest.approx([0.0, 50.0, 75.0], abs=1e-4)
    # columns with no variation contribute 0 (searches are all 0 here)
    assert behaviour_score(s, {"searches": 1}).tolist() == [0.0, 0.0, 0.0]


# -- CLV formula -------------------------------------------------------------------------------------
def test_discounted_months():
    assert discounted_months(12, 0.0, 3) == pytest.approx(12.0)
    assert discounted_months(36, 0.0, 2) == pytest.approx(24.0)  # lifetime caps the horizon
    assert discounted_months(12.5, 0.0, 3) == pytest.approx(12.5)
    v = 1.1 ** (-1 / 12)
    assert discounted_months(12, 0.1, 3) == pytest.approx(sum(v**k for k in range(1, 13)))
    assert discounted_months(2.5, 0.1, 3) == pytest.approx(v + v**2 + 0.5 * v**3)


def test_clv_formula_by_hand():
    # 4 orders, 400 net revenue, first purchase 2 years before as-of -> AOV 100, 2 orders/year
    s = make_summary([buyer(10, 4, 400.0, days_ago_first=2 * 365.25), {"n_views": 3}])
    inputs = clv_inputs(s)
    assert inputs["avg_order_value"].tolist() == pytest.approx([100.0, 0.0])
    assert inputs["orders_per_year"].tolist() == pytest.approx([2.0, 0.0])
    p = CLVParams(margin=0.25, horizon_months=24, discount_rate=0.0, expected_lifetime_years=5)
    assert clv_formula(s, p).tolist() == pytest.approx([100 * 2 * 0.25 * 2, 0.0])
    p = CLVParams(margin=0.25, horizon_months=12, discount_rate=0.12, expected_lifetime_years=5)
    v = 1.12 ** (-1 / 12)
    assert clv_formula(s, p).iloc[0] == pytest.approx(100 * 2 * 0.25 * sum(v**k for k in range(1, 13)) / 12)


def test_clv_formula_young_customer_uses_min_age_and_negative_net_is_clipped():
    s = make_summary([buyer(1, 1, 50.0, days_ago_first=1), buyer(5, 2, -30.0)])
    inputs = clv_inputs(s, min_age_months=1.0)
    assert inputs["orders_per_year"].iloc[0] == pytest.approx(12.0)
    assert inputs["avg_order_value"].iloc[1] == 0.0


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"margin": 1.5}, "margin"), ({"margin": -0.1}, "margin"), ({"horizon_months": 0}, "horizon_months"),
        ({"discount_rate": float("nan")}, "discount_rate"), ({"expected_lifetime_years": 0}, "expected_lifetime"),
        ({"margin": "x"}, "margin must be a number"),
    ],
)
def test_clv_params_validation(kw, message):
    with pytest.raises(ScoreError, match=message):
        CLVParams(**kw).validated()


# -- Scorer ------------------------------------------------------------------------------------------
def random_summary(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    orders = rng.poisson(2.0, n)
    last_days = rng.integers(0, 365, n)
    first_days = last_days + rng.integers(0, 400, n)
    df = pd.DataFrame(
        {
            "first_purchase": np.where(orders > 0, (AS_OF - pd.to_timedelta(first_days, unit="D")).values, np.datetime64("NaT")),
            "last_purchase": np.where(orders > 0, (AS_OF - pd.to_timedelta(last_days, unit="D")).values, np.datetime64("NaT")),
            "n_orders": orders,
            "net_revenue": np.round(orders * rng.gamma(2.0, 30.0, n), 2),
            "n_views": rng.poisson(20, n),
            "n_searches": rng.poisson(5, n),
            "n_carts": rng.poisson(3, n),
            "n_purchases": orders,
            "n_reviews": rng.poisson(0.5, n),
        },
        index=pd.Index([f"u{i}" for i in range(n)], name="customer_id"),
    )
    df.attrs.update(as_of=AS_OF, unit="days", dataset="rand")
    return df


def test_scorer_matches_the_pure_functions():
    s = random_summary(500)
    scorer = Scorer(s)
    w_rfm = {"recency": 2, "frequency": 1, "monetary": 0.5}
    w_beh = {"views": 0.3, "searches": 0, "carts": 0.5, "purchases": 1, "reviews": 0}
    p = CLVParams(margin=0.4, horizon_months=18, discount_rate=0.08, expected_lifetime_years=2)
    res = scorer.score(w_rfm, w_beh, p, top_n=10)
    rfm = rfm_scores(s)
    assert res.rfm_score == pytest.approx(weighted_rfm_score(rfm["r_score"], rfm["f_score"], rfm["m_score"], w_rfm))
    assert res.behaviour_score == pytest.approx(behaviour_score(s, w_beh), abs=1e-3)
    assert res.clv_formula == pytest.approx(clv_formula(s, p).to_numpy())
    seg = rfm_segments(rfm["r_score"], rfm["fm_score"])
    names = np.asarray(res.segment_names, dtype=object)[res.segment_codes]
    assert names.tolist() == seg.tolist()
    # segment table adds up
    table = res.segment_table
    assert table["customers"].sum() == 500
    assert table["revenue"].sum() == pytest.approx(s["net_revenue"].sum())
    assert table["revenue_share"].sum() == pytest.approx(1.0)
    clv_direct = clv_formula(s, p).to_numpy()
    rfm_direct = weighted_rfm_score(rfm["r_score"], rfm["f_score"], rfm["m_score"], w_rfm)
    for _, row in table.iterrows():
        members = seg == row["segment"]
        assert row["customers"] == int(members.sum())
        assert row["revenue"] == pytest.approx(s["net_revenue"].to_numpy()[members].sum())
        assert row["clv_formula"] == pytest.approx(clv_direct[members].sum())
        assert row["avg_rfm_score"] == pytest.approx(rfm_direct[members].mean(), rel=1e-5)
    # top customers: the 10 largest CLVs, descending
    top = res.top_customers
    expected = clv_formula(s, p).sort_values(ascending=False).head(10)
    assert top["clv_formula"].tolist() == pytest.approx(expected.tolist())
    assert top["clv_formula"].is_monotonic_decreasing
    # histogram counts every customer once
    assert res.histogram["customers"].sum() == 500


def test_scorer_moving_a_weight_moves_scores_in_the_expected_direction():
    s = random_summary(300, seed=1)
    scorer = Scorer(s)
    a = scorer.score({"recency": 1, "frequency": 1, "monetary": 1}, rank_by="rfm_score")
    b = scorer.score({"recency": 3, "frequency": 1, "monetary": 1}, rank_by="rfm_score")
    r = scorer.rfm["r_score"].to_numpy()
    f = scorer.rfm["f_score"].to_numpy()
    m = scorer.rfm["m_score"].to_numpy()
    more_recent = r > (f + m) / 2
    less_recent = r < (f + m) / 2
    assert np.all(b.rfm_score[more_recent] > a.rfm_score[more_recent])
    assert np.all(b.rfm_score[less_recent] < a.rfm_score[less_recent])
    c = scorer.score(clv=CLVParams(margin=0.6))
    d = scorer.score(clv=CLVParams(margin=0.3))
    assert c.clv_formula.sum() == pytest.approx(2 * d.clv_formula.sum())


def test_scorer_frame_has_every_customer_and_the_parameters():
    s = random_summary(50, seed=2)
    scorer = Scorer(s)
    res = scorer.score(clv=CLVParams(margin=0.2, horizon_months=6))
    df = scorer.frame(res)
    assert len(df) == 50
    assert df["customer_id"].tolist() == s.index.tolist()
    assert (df["param_margin"] == 0.2).all()
    assert (df["param_horizon_months"] == 6.0).all()
    assert (df["param_as_of"] == "2024-01-01").all()
    assert df["param_rfm_weight_recency"].iloc[0] == 1 / 3  # float64, not a float32 artifact
    assert df["n_orders"].dtype == np.int64
    assert set(df.columns) >= {"r_score", "f_score", "m_score", "rfm_segment", "behaviour_score", "clv_formula"}
    assert df.loc[df["n_orders"] == 0, "rfm_segment"].eq(NO_PURCHASE).all()


def test_scorer_errors():
    scorer = Scorer(random_summary(20))
    with pytest.raises(ScoreError, match="cannot rank by"):
        scorer.score(rank_by="clv_bgnbd")
    with pytest.raises(ScoreError, match="min_age_months"):
        scorer.score(clv=CLVParams(min_age_months=3))
    with pytest.raises(ScoreError, match="behaviour weights"):
        scorer.score(behaviour_weights={k: 0 for k in BEHAVIOUR_KEYS})


def test_scorer_customer_lookup_and_probabilistic_columns():
    s = random_summary(40, seed=3)
    scorer = Scorer(s)
    ids = s.index[:30]
    prob = pd.DataFrame(
        {"p_alive": 0.5, "expected_purchases": 2.0, "expected_spend": 10.0, "discounted_revenue": np.arange(30.0)},
        index=ids,
    )
    aligned = scorer.align(prob)
    assert np.isnan(aligned["discounted_revenue"][30:]).all()
    res = scorer.score(clv=CLVParams(margin=0.5), prob=aligned)
    assert res.clv_bgnbd[:30] == pytest.approx(np.arange(30.0) * 0.5)
    names = np.asarray(res.segment_names, dtype=object)[res.segment_codes]
    for _, row in res.segment_table.iterrows():
        assert row["clv_bgnbd"] == pytest.approx(np.nansum(res.clv_bgnbd[names == row["segment"]]))
    one = scorer.customer(res, "u7")
    assert one["clv_bgnbd"] == pytest.approx(3.5)
    assert one["p_alive"] == 0.5
    assert one["rfm_score"] == pytest.approx(float(res.rfm_score[7]))
    assert scorer.customer(res, "nobody") is None
    df = scorer.frame(res)
    assert df["clv_bgnbd"].iloc[:30].tolist() == pytest.approx((np.arange(30.0) * 0.5).tolist())
    top = scorer.score(clv=CLVParams(margin=0.5), prob=aligned, rank_by="clv_bgnbd", top_n=3).top_customers
    assert top["customer_id"].tolist() == ["u29", "u28", "u27"]
    with pytest.raises(ScoreError, match="lacks column"):
        scorer.align(prob.drop(columns="p_alive"))


# -- probabilistic CLV (BG/NBD + Gamma-Gamma) on the CDNOW sample ---------------------------------
@pytest.fixture(scope="module")
def cdnow_summary():
    from pathlib import Path

    from analytics.summary import summary_from_transactions

    path = Path(__file__).resolve().parent / "data" / "CDNOW_sample.txt"
    df = pd.read_csv(path, sep=r"\s+", header=None, names=["cust", "sample_id", "date", "n", "amount"],
                     dtype={"date": str})
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    s = summary_from_transactions(df, "sample_id", "date", "1997-09-30", "weeks", monetary_col="amount")
    # the behaviour columns the scores need (purchase-only data)
    return s


def test_probabilistic_clv_matches_the_models(cdnow_summary):
    from analytics import clv_models
    from analytics.scores import fit_clv_models, probabilistic_clv

    s = cdnow_summary
    models = fit_clv_models(s)
    bg, gg = models
    assert bg.params_["r"] == pytest.approx(0.243, abs=0.01)  # sanity: CDNOW calibration fit
    p = CLVParams(margin=0.2, horizon_months=6, discount_rate=0.12)
    table, _ = probabilistic_clv(s, p, models=models)
    assert len(table) == int((s["n_orders"] > 0).sum())
    buyers = s[s["n_orders"] > 0]
    f, r, t, m = (buyers[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    direct = clv_models.customer_lifetime_value(bg, gg, f, r, t, m, horizon_months=6,
                                                annual_discount_rate=0.12, margin=0.2)
    assert table["clv_bgnbd"].to_numpy() == pytest.approx(np.asarray(direct), rel=1e-12)
    assert table["discounted_revenue"].to_numpy() * 0.2 == pytest.approx(table["clv_bgnbd"].to_numpy())
    assert ((table["p_alive"] > 0) & (table["p_alive"] <= 1)).all()
    # more months, more expected purchases
    longer, _ = probabilistic_clv(s, CLVParams(horizon_months=12), models=models)
    assert (longer["expected_purchases"] >= table["expected_purchases"]).all()
    # the Scorer applies the margin at re-score time
    scorer = Scorer(s)
    aligned = scorer.align(table)
    res = scorer.score(clv=CLVParams(margin=0.5, horizon_months=6, discount_rate=0.12), prob=aligned)
    assert np.nansum(res.clv_bgnbd) == pytest.approx(0.5 * table["discounted_revenue"].sum())
    with pytest.raises(ScoreError, match="whole number of months"):
        probabilistic_clv(s, CLVParams(horizon_months=6.5), models=models)


def test_probabilistic_clv_degenerate_data_is_a_clear_error():
    from analytics.scores import fit_clv_models

    s = make_summary([buyer(1, 1, 10.0), buyer(5, 1, 20.0)])
    s["frequency"], s["recency"], s["T"], s["monetary_value"] = 0.0, 0.0, [1.0, 5.0], 0.0
    with pytest.raises(ValueError, match="repeat"):
        fit_clv_models(s)
    s2 = make_summary([{"n_views": 3}])
    s2["frequency"] = s2["recency"] = s2["T"] = s2["monetary_value"] = np.nan
    with pytest.raises(ScoreError, match="nothing to fit"):
        fit_clv_models(s2)


def test_top_customers_ties_are_broken_by_position_and_histograms_match_numpy():
    s = random_summary(400, seed=5)
    scorer = Scorer(s)
    res = scorer.score({"recency": 1, "frequency": 0, "monetary": 0}, rank_by="rfm_score", top_n=7)
    # rfm_score = R score: many customers tie at 5; the first 7 of them in summary order win
    expected = s.index[scorer.rfm["r_score"].to_numpy() == 5][:7].tolist()
    assert res.top_customers["customer_id"].tolist() == expected
    for rank_by in ("clv_formula", "behaviour_score"):
        res = scorer.score(clv=CLVParams(margin=0.45), rank_by=rank_by, top_n=25)
        values = {"clv_formula": res.clv_formula, "behaviour_score": res.behaviour_score}[rank_by]
        order = np.lexsort((np.arange(400), -np.asarray(values, dtype=np.float64)))[:25]
        assert res.top_customers["customer_id"].tolist() == s.index[order].tolist()
        h = res.histogram
        lo, hi = h["left"].iloc[0], h["right"].iloc[-1]
        counts, _ = np.histogram(np.clip(values, lo, hi), bins=len(h), range=(lo, hi))
        assert np.abs(h["customers"].to_numpy() - counts).sum() <= 2  # float rounding at bin edges only
        assert h["customers"].sum() == 400
    # the CLV range ends at the 99.5th percentile of the scaled values
    res = scorer.score(clv=CLVParams(margin=0.45), rank_by="clv_formula")
    assert res.histogram["right"].iloc[-1] == pytest.approx(np.quantile(res.clv_formula, 0.995))


def test_fallback_segment_validation():
    with pytest.raises(ScoreError, match="reserved"):
        compile_segment_rules(None, NO_PURCHASE)
    with pytest.raises(ScoreError, match="longer than 60"):
        compile_segment_rules(None, "x" * 61)
    assert compile_segment_rules(None, "  Rest  ").fallback == "Rest"


# -- the bundled sample data set: scores against its planted ground truth ---------------------------
@pytest.fixture(scope="module")
def sample_scored():
    from pathlib import Path

    from analytics.scores import score_dataset
    from analytics.warehouse import Warehouse

    root = Path(__file__).resolve().parent.parent / "sample_data"
    events, truth = root / "sample_events.csv.gz", root / "sample_truth.csv.gz"
    if not events.exists():
        pytest.skip("sample data not generated")
    wh = Warehouse(":memory:")
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES ('sample')")
        tx.execute(
            "INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, revenue) "
            "SELECT 'sample', customer_id, event_time, event_type, order_id, revenue FROM read_csv(?, header=true)",
            [str(events)],
        )
    run = score_dataset(wh, "sample", "2025-12-31", "days")
    wh.close()
    frame = run.frame.set_index("customer_id").join(pd.read_csv(truth).set_index("customer_id"))
    return run, frame


def test_sample_scores_follow_the_planted_personas(sample_scored):
    from scipy.stats import spearmanr

    run, df = sample_scored
    assert run.bgnbd_note is None  # both models fit on the sample
    means = df.groupby("persona")[["rfm_score", "behaviour_score"]].mean()
    assert means.loc["loyal_high_spender", "rfm_score"] > means.loc["at_risk_big_spender", "rfm_score"]
    assert means.loc["at_risk_big_spender", "rfm_score"] > means.loc["one_time_buyer", "rfm_score"]
    assert means.loc["one_time_buyer", "rfm_score"] > means.loc["window_shopper", "rfm_score"]
    assert means.loc["loyal_high_spender", "behaviour_score"] > 2 * means.loc["window_shopper", "behaviour_score"]
    # the RFM segments name the personas
    top_persona = df.groupby("rfm_segment")["persona"].agg(lambda s: s.value_counts().idxmax())
    assert top_persona["At risk"] == "at_risk_big_spender"
    assert top_persona["Champions"] == "loyal_high_spender"
    assert top_persona["No purchase yet"] == "window_shopper"
    # every score ranks buyers by their (unseen) future net revenue
    buyers = df[df["n_orders"] > 0]
    for col in ("rfm_score", "clv_formula", "clv_bgnbd"):
        rho = spearmanr(buyers[col], buyers["future_net_revenue"])[0]
        assert rho > 0.4, (col, rho)
