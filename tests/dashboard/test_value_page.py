"""AppTest: the Value page re-scores on slider moves, in the expected direction, with values checked
against the library."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analytics.scores import CLVParams, behaviour_score, clv_formula, rfm_scores, weighted_rfm_score
from analytics.summary import customer_summary
from tests.dashboard.conftest import APP, TIMEOUT, insert_events, synthetic_rows

PAGE = "views/value.py"


def _rows() -> list[tuple]:
    rows = synthetic_rows(200, seed=11)
    last = max(r[1] for r in rows)
    # "fresh": one small purchase on the last day (R high, F and M low), many views
    rows.append(("fresh", last, "purchase", "f1", 5.0))
    rows += [("fresh", last - dt.timedelta(hours=h), "view", None, None) for h in range(1, 40)]
    # "veteran": many big purchases, the last one long ago (R low, F and M high)
    start = dt.datetime(2023, 1, 2)
    rows += [("veteran", start + dt.timedelta(days=7 * i), "purchase", f"v{i}", 500.0) for i in range(12)]
    return rows


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _num(text: str) -> float:
    """A metric's number (thousands separators, a currency sign or a % dropped)."""
    import re

    return float(re.sub(r"[^0-9.eE+-]", "", text.replace(",", "")).strip("+") or "nan")


@pytest.fixture
def page(app_wh):
    insert_events(app_wh, "shop", _rows())
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _table(at, column: str):
    """The st.dataframe whose table has ``column`` (dataframes without selection keep no key)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _lookup(at, customer: str) -> dict[str, str]:
    at.text_input(key="value_lookup").input(customer).run()
    assert not at.exception, at.exception
    return _metrics(at)


def _summary(app_wh):
    last = app_wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset='shop'").fetchone()[0]
    return customer_summary(app_wh, "shop", last.date(), "days")


def test_recency_weight_moves_rfm_scores_the_expected_way(page, app_wh):
    at = page
    summary = _summary(app_wh)
    rfm = rfm_scores(summary).loc[["fresh", "veteran"]]
    assert rfm.loc["fresh", "r_score"] == 5 and rfm.loc["veteran", "r_score"] == 1
    assert rfm.loc["veteran", "f_score"] == 5

    fresh_before = _num(_lookup(at, "fresh")["RFM score"])
    veteran_before = _num(_lookup(at, "veteran")["RFM score"])
    r, f, m = (rfm[c].to_numpy() for c in ("r_score", "f_score", "m_score"))
    expected = weighted_rfm_score(r, f, m, [1, 1, 1])
    assert [fresh_before, veteran_before] == pytest.approx(expected.tolist(), abs=0.005)

    at.slider(key="value_w_recency").set_value(5.0).run()
    fresh_after = _num(_lookup(at, "fresh")["RFM score"])
    veteran_after = _num(_lookup(at, "veteran")["RFM score"])
    assert fresh_after > fresh_before
    assert veteran_after < veteran_before
    expected = weighted_rfm_score(r, f, m, [5, 1, 1])
    assert [fresh_after, veteran_after] == pytest.approx(expected.tolist(), abs=0.005)
    # the headline metric follows: mean weighted RFM score over the buyers
    all_rfm = rfm_scores(summary)
    all_rfm = all_rfm[all_rfm["r_score"] > 0]
    mean = weighted_rfm_score(all_rfm["r_score"], all_rfm["f_score"], all_rfm["m_score"], [5, 1, 1]).mean()
    assert _num(_metrics(at)["Mean RFM score (buyers)"]) == pytest.approx(float(mean), abs=0.005)


def test_behaviour_and_margin_sliders(page, app_wh):
    at = page
    summary = _summary(app_wh)
    before = _num(_lookup(at, "fresh")["Behaviour score"])
    at.slider(key="value_b_views").set_value(1.0).run()
    after = _num(_lookup(at, "fresh")["Behaviour score"])
    assert after > before  # "fresh" is the heaviest viewer
    weights = {"views": 1.0, "searches": 0.1, "carts": 0.2, "purchases": 0.4, "reviews": 0.2}
    expected = behaviour_score(summary, weights)[summary.index.get_loc("fresh")]
    assert after == pytest.approx(float(expected), abs=0.05)

    total = _num(_metrics(at)["CLV by formula, total"])
    assert total == pytest.approx(clv_formula(summary, CLVParams()).sum(), rel=1e-4)
    at.slider(key="value_margin").set_value(0.6).run()
    assert _num(_metrics(at)["CLV by formula, total"]) == pytest.approx(2 * total, rel=1e-4)


def test_charts_tables_and_exports_are_there(page):
    at = page
    keys = {c.key for c in at.get("plotly_chart")}
    assert {"value_hist", "value_treemap"} <= keys
    # tables with human titles; rates shown as percentages
    top = _table(at, "Customer")
    assert top["CLV (formula)"].is_monotonic_decreasing
    assert "RFM segment" in top.columns and not any("_" in c for c in top.columns)
    seg = _table(at, "Share of revenue")
    assert seg["Customers"].sum() == 202
    assert seg["Share of revenue"].sum() == pytest.approx(100.0)
    # the treemap writes its shares as the table does ("12.3 %"), not d3's "12.3%"
    import json

    chart = next(c for c in at.get("plotly_chart") if c.key == "value_treemap")
    trace = json.loads(chart.proto.spec)["data"][0]
    assert "%{customdata[1]:.1f} % of revenue" in trace["texttemplate"] and ":.1%" not in trace["hovertemplate"]
    import base64

    data = trace["customdata"]  # plotly's binary array: dtype, base64 bytes, shape
    data = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).reshape(
        [int(n) for n in str(data["shape"]).split(",")]) if isinstance(data, dict) else np.asarray(data, dtype=float)
    assert data[:, 1].sum() == pytest.approx(100.0)  # revenue shares in percent
    buttons = at.get("download_button")
    assert len(buttons) == 3  # CSV, Parquet, parameters JSON
    # rank by the RFM score instead
    at.selectbox(key="value_rank_by").set_value("rfm_score").run()
    top = _table(at, "Customer")
    assert top["RFM score"].is_monotonic_decreasing
    assert np.isclose(top["RFM score"].iloc[0], 5.0)


def test_all_zero_weights_show_an_error_not_a_traceback(page):
    at = page
    for k in ("recency", "frequency", "monetary"):
        at.slider(key=f"value_w_{k}").set_value(0.0)
    at.run()
    assert not at.exception
    assert any("at least one weight must be above 0" in e.value for e in at.error)


def test_the_minimum_age_field_writes_half_months(page):
    # a field in steps of half a month shows '9.0', not '9.00'
    box = page.number_input(key="value_min_age")
    assert box.proto.format == "%.1f" and box.step == 0.5


def test_unknown_customer_lookup(page):
    at = page
    at.text_input(key="value_lookup").input("=nobody").run()
    assert not at.exception
    assert any("No customer" in i.value for i in at.info)
    # the as-of day as the page writes days ('30 Jan 2024'), not ISO
    import re

    said = next(i.value for i in at.info if "No customer" in i.value)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", said), said
    assert re.search(r"up to \d{1,2} [A-Z][a-z]{2} \d{4}\.$", said), said


def test_empty_warehouse(app_wh):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception
    assert any("no data yet" in i.value for i in at.info)


def test_bgnbd_tab_on_cdnow(app_wh, test_data):
    import pandas as pd

    from analytics.scores import fit_clv_models, probabilistic_clv

    df = pd.read_csv(test_data / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["cust", "sample_id", "date", "n", "amount"], dtype={"date": str, "sample_id": str})
    rows = [(c, dt.datetime.strptime(d, "%Y%m%d"), "purchase", None, float(a))
            for c, d, a in zip(df["sample_id"], df["date"], df["amount"])]
    insert_events(app_wh, "cdnow", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    at.date_input(key="value_as_of").set_value(dt.date(1997, 9, 30))
    at.selectbox(key="value_unit").set_value("weeks")
    at.run()
    assert not at.exception, at.exception
    assert not at.warning, [w.value for w in at.warning]
    m = _metrics(at)
    # the published calibration-period fit (Fader, Hardie & Lee 2005)
    got = tuple(round(float(m[k]), 3) for k in ("r", "alpha", "a", "b"))
    assert got == (0.243, 4.414, 0.793, 2.426)
    summary = customer_summary(app_wh, "cdnow", "1997-09-30", "weeks")
    table, _ = probabilistic_clv(summary, CLVParams(), models=fit_clv_models(summary))
    assert _num(m["CLV by BG/NBD, total"]) == pytest.approx(table["clv_bgnbd"].sum(), abs=0.01)
    # rank by the BG/NBD CLV
    at.selectbox(key="value_rank_by").set_value("clv_bgnbd").run()
    top = _table(at, "Customer")
    assert top["CLV (BG/NBD)"].is_monotonic_decreasing
    assert top["CLV (BG/NBD)"].iloc[0] == pytest.approx(table["clv_bgnbd"].max(), rel=1e-6)
    # the fitted parameters in plain words, from the fitted values
    said = " ".join(md.value for md in at.markdown)
    bg = fit_clv_models(summary)[0]
    assert f"buys about {bg.r_ / bg.alpha_:.3g} times a week" in said.replace("\\", "")
    assert "chance of stopping for good" in said
    # the log-likelihood card in whole units (a decimal made it too wide for its card at 1280 px), in full in its help
    ll = next(x for x in at.metric if x.label == "log-likelihood")
    assert ll.value == f"{bg.log_likelihood_:,.0f}" and ll.help.startswith(f"{bg.log_likelihood_:,.1f}.")
    # heatmaps, then the holdout check
    n_charts = len(at.get("plotly_chart"))
    at.toggle(key="value_run_holdout").set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == n_charts + 2
    assert _num(_metrics(at)["Actual holdout purchases"]) > 0
    # the default ("best on this dataset") kept BG/NBD, and the page says why
    assert any("Purchase model chosen on this dataset" in c.value and "BG/NBD" in c.value for c in at.caption)

    # Pareto/NBD chosen by hand: its published parameters and its CLV
    at.selectbox(key="value_purchase_model").set_value("paretonbd").run()
    assert not at.exception, at.exception
    m = _metrics(at)
    assert tuple(round(float(m[k]), 2) for k in ("r", "alpha", "s", "beta")) == (0.55, 10.58, 0.61, 11.67)
    table, _ = probabilistic_clv(summary, CLVParams(), models=fit_clv_models(summary, purchase_model="paretonbd"))
    assert _num(m["CLV by Pareto/NBD, total"]) == pytest.approx(table["clv_bgnbd"].sum(), abs=0.01)

    # the penalizer control refits with that penalty (it shrinks the parameters)
    at.selectbox(key="value_purchase_model").set_value("bgnbd")
    at.number_input(key="value_penalizer").set_value(0.1).run()
    assert not at.exception, at.exception
    m = _metrics(at)
    pen = fit_clv_models(summary, penalizer=0.1)[0]
    assert float(m["a"]) == pytest.approx(pen.a_, rel=1e-3) and pen.a_ < 0.793
    assert "penalizer 0.1" in " ".join(md.value for md in at.markdown)


def test_degenerate_data_warns_once_and_the_failed_fit_is_not_retried(app_wh, monkeypatch):
    import analytics.scores as scores_mod

    calls = []
    real = scores_mod.fit_clv_models

    def counting(summary, **kwargs):
        calls.append(len(summary))
        return real(summary, **kwargs)

    monkeypatch.setattr(scores_mod, "fit_clv_models", counting)
    # every customer bought exactly once: no repeat buyers for BG/NBD / Gamma-Gamma
    rows = [(f"c{i}", dt.datetime(2024, 1, 1) + dt.timedelta(days=i % 50), "purchase", f"o{i}", 10.0 + i)
            for i in range(60)]
    insert_events(app_wh, "once", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("not available for these data" in w.value and "repeat" in w.value for w in at.warning)
    # what is wrong (nobody came back), not a penalizer that cannot help
    warning = next(w.value for w in at.warning if "not available for these data" in w.value)
    assert "Every buyer has bought on one day only" in warning and "larger penalizer" not in warning
    at.slider(key="value_w_recency").set_value(2.0).run()
    at.slider(key="value_margin").set_value(0.5).run()
    assert not at.exception
    assert len(calls) == 1
    # the formula CLV and the RFM scores still work
    assert _num(_metrics(at)["CLV by formula, total"]) > 0


def test_downloads_are_neutralized_csv_parquet_and_json(app_wh, monkeypatch):
    import io
    import json

    import pandas as pd
    from streamlit.delta_generator import DeltaGenerator

    from analytics.export import read_parquet_metadata

    captured = {}
    real = DeltaGenerator.download_button

    def spy(self, label, data, *args, **kwargs):
        captured[kwargs.get("key")] = data
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    rows = synthetic_rows(40, seed=2) + [
        ("=HYPERLINK(\"http://x\",\"y\")", dt.datetime(2023, 6, 1), "purchase", "h1", 20.0),
        ("-cmd", dt.datetime(2023, 7, 1), "purchase", "h2", 30.0),
    ]
    insert_events(app_wh, "shop", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    at.slider(key="value_margin").set_value(0.4).run()
    assert not at.exception, at.exception
    assert set(captured) == {"value_dl_csv", "value_dl_parquet", "value_dl_json"}
    csv_bytes = captured["value_dl_csv"]()
    df = pd.read_csv(io.BytesIO(csv_bytes), dtype={"customer_id": str})
    assert len(df) == 42
    ids = set(df["customer_id"])
    assert "'=HYPERLINK(\"http://x\",\"y\")" in ids and "'-cmd" in ids
    assert (df["param_margin"] == 0.4).all()
    parquet = captured["value_dl_parquet"]()
    back = pd.read_parquet(io.BytesIO(parquet))
    assert "-cmd" in set(back["customer_id"])
    assert back["clv_formula"].sum() == pytest.approx(df["clv_formula"].sum())
    meta = read_parquet_metadata(parquet)
    assert meta["margin"] == 0.4 and meta["segment_rules"][0]["segment"] == "Champions"
    params = json.loads(captured["value_dl_json"]())
    assert params["margin"] == 0.4 and params["dataset"] == "shop"


def test_bad_rule_input_shows_an_error_and_keeps_the_default_grid(page):
    at = page
    at.text_input(key="value_fallback").input("No purchase yet").run()
    assert not at.exception, at.exception
    assert any("rule table has a problem" in e.value and "reserved" in e.value for e in at.error)
    seg = _table(at, "Share of revenue")
    assert "Champions" in set(seg["RFM segment"])
    assert seg["Customers"].sum() == 202


def test_money_in_the_dataset_currency(page, app_wh):
    from analytics import formatting
    from analytics.currency import set_dataset_currency

    set_dataset_currency(app_wh, "shop", "EUR")
    at = page
    at.run()
    assert not at.exception, at.exception
    total = clv_formula(_summary(app_wh), CLVParams()).sum()
    assert _metrics(at)["CLV by formula, total"] == formatting.money(total, "EUR")
    seg = at.dataframe[[i for i, d in enumerate(at.dataframe) if "Share of revenue" in d.value.columns][0]]
    import json

    config = json.loads(seg.proto.columns)  # the column configuration sent with the table
    assert config["Net revenue"]["type_config"]["format"] == formatting.money_printf("EUR") == "€%,.2f"
    assert config["Share of revenue"]["type_config"]["format"] == "%.1f %%"


def test_spend_model_mean_is_explained_beside_the_repeat_buyers_average(app_wh):
    """The Gamma-Gamma mean p × gamma / (q − 1) is labelled as the model's, explained, and set beside
    the repeat buyers' own average; both checked against lifetimes' fit and NumPy on the summary."""
    import lifetimes

    from analytics.bootstrap import ensure_default_dataset

    ensure_default_dataset(app_wh)
    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    last = app_wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset='sample'").fetchone()[0]
    summary = customer_summary(app_wh, "sample", last.date(), "days")
    rep = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    gg = lifetimes.GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
    p, q, v = (gg.params_[k] for k in ("p", "q", "v"))
    model_mean, observed = p * v / (q - 1), rep["monetary_value"].mean()
    assert q < 1.2 and model_mean > 3 * observed  # the bundled sample: a long-tailed spend fit

    cards = {m.label: m for m in at.metric}
    assert "Mean order (model)" not in cards
    model_card, data_card = cards["Model's mean order"], cards["Avg repeat order"]
    assert _num(model_card.value) == pytest.approx(model_mean, abs=0.01)
    assert _num(data_card.value) == pytest.approx(observed, abs=0.006)
    assert "not an average of orders" in model_card.help and "Overview" in model_card.help
    assert f"{len(rep):,} repeat buyers" in model_card.help
    expected = gg.conditional_expected_average_profit(rep["frequency"], rep["monetary_value"]).mean()
    assert f"€{expected:,.2f} on average" in model_card.help
    assert "Overview" in data_card.help
    said = [c.value for c in at.caption if "model's mean order" in c.value]
    assert len(said) == 1 and f"{model_mean / observed:.1f} ×" in said[0], said
    # the check stored with the fit says so in plain words
    warned = [w.value for w in at.warning if "fits this data poorly" in w.value]
    assert len(warned) == 1, [w.value for w in at.warning]
    assert (f"€{model_mean:,.2f} per order from a customer with no repeat order, {model_mean / observed:.1f}x the "
            f"€{observed:,.2f} repeat buyers average").replace(".", "\\.") in warned[0]
