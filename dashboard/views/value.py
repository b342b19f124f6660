"""Value: RFM, behaviour and CLV scores for every customer, re-weighted live.

The customer summary, the ranked/normalized arrays (analytics.scores.Scorer) and the
BG/NBD fits at the last day come from the preparation step (analytics.prepare, read
through dashboard.cache); moving a slider only re-weights cached arrays. The expected
CLV is the one resolver's (analytics.valuation: published model, else BG/NBD, else the
formula). Charts receive binned / aggregated data only. One function per tab; the
customer lookup and the holdout check are fragments (only they rerun).
"""
from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import access, formatting, glossary, scores, valuation
from analytics.export import to_parquet, to_safe_csv
from analytics.predict import registry
from analytics.warehouse import WarehouseError
from dashboard import cache, widgets

UNITS = ("days", "weeks", "months")
RFM_LABELS = {"recency": "Recency", "frequency": "Frequency", "monetary": "Monetary"}
BEHAVIOUR_LABELS = {"views": "Views", "searches": "Searches", "carts": "Carts", "purchases": "Purchases", "reviews": "Reviews"}
SCORE_LABELS = {
    "clv_formula": "CLV by formula",
    "rfm_score": "RFM score (1-5)",
    "behaviour_score": "Behaviour score (0-100)",
    "clv_bgnbd": "CLV by purchase model + Gamma-Gamma",
    "predicted_value": "Predicted value (published model)",
}
RULES_KEY = "value_rules"
#: the page's tables: tooltips from the glossary
TABLE_HELP = {"segment": formatting.column_help("rfm_segment"), "rfm_score": "1-5. " + glossary.term("rfm"),
              "behaviour_score": glossary.term("behaviour_score"), "clv_formula": glossary.term("clv_formula"),
              "r_score": "Recency score, 1-5: " + formatting.column_help("r_score"),
              "f_score": "Frequency score, 1-5: " + formatting.column_help("f_score"),
              "m_score": "Money score, 1-5: " + formatting.column_help("m_score"),
              "predicted_value": formatting.column_help("predicted_value"),
              "churn_probability": formatting.column_help("churn_probability")}
PURCHASE_CHOICES = {"auto": "Best on this dataset's own history", "bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD"}


def _parameters(first_day, last_day) -> dict:
    """The as-of date, unit, model switch, weights and CLV parameters (validated; stops on an error)."""
    c1, c2, c3 = st.columns([2, 1, 2])
    as_of = c1.date_input(
        "As of", min_value=first_day, max_value=last_day, key=widgets.state_default("value_as_of", last_day),
        help="Scores use only events up to the end of this day. Default: the dataset's last event.",
    )
    unit = c2.selectbox("Time unit", UNITS, key="value_unit",
                        help="Unit of recency and T in the purchase model (scores do not depend on it).")
    use_bgnbd = c3.toggle("Probabilistic CLV", value=True, key="value_bgnbd",
                          help="Fit a purchase model (BG/NBD or Pareto/NBD) and the Gamma-Gamma spend model and show "
                          "their CLV next to the formula.")
    with st.expander("⚖️ Weights and CLV parameters", expanded=True):
        w1, w2, w3 = st.columns(3)
        with w1:
            st.markdown("**RFM weights**")
            rfm_w = {
                k: st.slider(RFM_LABELS[k], 0.0, 5.0, float(scores.DEFAULT_RFM_WEIGHTS[k]), 0.25, key=f"value_w_{k}")
                for k in scores.RFM_KEYS
            }
            st.caption("RFM score = weighted mean of the R, F and M quintile scores (1-5).")
        with w2:
            st.markdown("**Behaviour weights**")
            beh_w = {
                k: st.slider(BEHAVIOUR_LABELS[k], 0.0, 1.0, float(scores.DEFAULT_BEHAVIOUR_WEIGHTS[k]), 0.05,
                             key=f"value_b_{k}")
                for k in scores.BEHAVIOUR_KEYS
            }
            st.caption("Each event count is log1p-transformed and min-max scaled to 0-1; "
                       "score = weighted mean x 100. Defaults 0.1 / 0.1 / 0.2 / 0.4 / 0.2.")
        with w3:
            st.markdown("**CLV parameters**")
            margin = st.slider("Gross margin", 0.0, 1.0, 0.30, 0.01, key="value_margin", format="%.2f")
            horizon = st.slider("Horizon (months)", 1, 60, 12, 1, key="value_horizon")
            discount = st.slider("Annual discount rate", 0.0, 0.5, 0.10, 0.01, key="value_discount", format="%.2f")
            lifetime = st.slider("Expected lifetime (years)", 0.5, 10.0, 3.0, 0.5, key="value_lifetime")
            min_age = st.number_input(
                "Count new customers as at least this old (months)", 0.0, 24.0, scores.DEFAULT_MIN_AGE_MONTHS, 0.5,
                key="value_min_age", format="%.1f",  # half months: '9.0', not '9.00'
                help="Orders per year = orders ÷ the customer's age, but never less than this age: without it a "
                     "customer whose first and only order was two weeks ago would count as 26 orders a year and "
                     "top the CLV list. 9 months gave the most accurate next-quarter revenue on validation data.")
        st.markdown(
            "CLV by formula = average order value × orders per year × margin × A / 12, where "
            "A = Σₖ₌₁..M (1 + discount rate)^(−k/12) is the discounted number of months and "
            "M = min(horizon, 12 × expected lifetime). Orders per year = orders ÷ max(customer age, the minimum "
            "age set here), so a very new customer's first orders are not annualised into a big CLV."
        )
        if use_bgnbd:
            st.markdown("**Probabilistic CLV**")
            k1, k2 = st.columns(2)
            purchase_choice = k1.selectbox(
                "Purchase model", list(PURCHASE_CHOICES), format_func=PURCHASE_CHOICES.get,
                key="value_purchase_model",
                help="BG/NBD (Fader, Hardie & Lee 2005): customers may drop out right after a purchase. Pareto/NBD "
                     "(Schmittlein, Morrison & Colombo 1987): they may drop out at any time. 'Best' fits both on "
                     "the first half of this dataset's purchases and keeps the one that predicted the second half "
                     "better.")
            penalizer = k2.number_input(
                "Penalizer", 0.0, 10.0, 0.0, 0.001, format="%.3f", key="value_penalizer",
                help="A penalty on the purchase model's parameters. 0 = plain maximum likelihood. A small penalty "
                     "(0.001-0.1) keeps the parameters moderate when there are few repeat buyers or the fit runs "
                     "off; the app already retries with 0.001, 0.01 and 0.1 when a fit fails, and says so. Raise "
                     "it if the predictions look extreme.")
        else:
            purchase_choice, penalizer = "bgnbd", 0.0
    try:
        rfm_norm = scores.normalize_weights(rfm_w, scores.RFM_KEYS, "RFM weights")
        beh_norm = scores.normalize_weights(beh_w, scores.BEHAVIOUR_KEYS, "behaviour weights")
        clv = scores.CLVParams(margin=margin, horizon_months=horizon, discount_rate=discount,
                               expected_lifetime_years=lifetime, min_age_months=min_age).validated()
    except ValueError as exc:
        widgets.show_error(exc, "Check the weights")
        st.stop()
    return {"as_of": as_of, "unit": unit, "use_bgnbd": use_bgnbd, "rfm": rfm_norm, "behaviour": beh_norm,
            "clv": clv, "horizon": horizon, "discount": discount, "min_age": min_age,
            "purchase_choice": purchase_choice, "penalizer": float(penalizer)}


def _score_key(p: dict, segment_map, rank_by: str) -> str:
    """Everything a re-score and its charts depend on besides the data version (a string key)."""
    return json.dumps({k: p[k] for k in ("as_of", "unit", "use_bgnbd", "horizon", "discount", "min_age",
                                         "purchase_choice", "penalizer", "model")}
                      | {"rfm": [float(x) for x in p["rfm"]], "behaviour": [float(x) for x in p["behaviour"]],
                         "clv": repr(p["clv"]), "segments": [list(segment_map.names), segment_map.lut.tolist(),
                                                             segment_map.fallback], "rank_by": rank_by},
                      sort_keys=True, default=str)


def _purchase_model(dataset: str, p: dict):
    """(model key, its name, the comparison behind an automatic choice or None)."""
    comparison = None
    model = p["purchase_choice"]
    if p["use_bgnbd"] and model == "auto":
        res = cache.purchase_model_comparison(dataset)
        if res is None:  # being prepared: BG/NBD until the comparison is ready
            model = "bgnbd"
        else:
            comparison, problem = res
            model = comparison.best if comparison is not None else "bgnbd"
            if comparison is None:
                st.caption(f"BG/NBD is used: the two purchase models could not be compared on this dataset "
                           f"({problem}).")
    return model, scores.PURCHASE_MODELS[model], comparison


def _models(dataset: str, p: dict, model_name: str):
    """(models, prob, spend failure) of the purchase model + Gamma-Gamma for these parameters, or
    (None, None, spend failure) with a warning when the data cannot support them. The spend failure
    is ``(purchase model, why)`` when only the spend model cannot be fitted (the purchase model,
    fitted on its own, still has its diagnostics), else None."""
    if not p["use_bgnbd"]:
        return None, None, None
    # "auto" when it is the prepared choice (the comparison's best), else the model the user picked
    choice = p["purchase_choice"] if p["purchase_choice"] == "auto" else p["model"]
    try:
        models = cache.value_models(dataset, p["as_of"], p["unit"], p["min_age"], purchase_model=choice,
                                    penalizer=p["penalizer"])
        prob = cache.value_prob(dataset, p["as_of"], p["unit"], p["min_age"], p["horizon"], p["discount"],
                                purchase_model=choice, penalizer=p["penalizer"])
    except ValueError as exc:
        st.warning(f"{model_name} + Gamma-Gamma CLV is not available for these data: {exc}. "
                   f"{scores.clv_unavailable_advice(str(exc))}", icon="⚠️")
        return None, None, _spend_failure(dataset, p, choice, str(exc))
    if models is None or prob is None:
        widgets.not_ready(dataset, f"the {model_name} + Gamma-Gamma fit", stop=False)
        return None, None, None
    notes = [n for n in (getattr(m, "fit_note_", None) for m in models) if n]
    if notes:
        st.info("Note: " + "; ".join(notes) + ".", icon="ℹ️")
    return models, prob, None


def _spend_failure(dataset: str, p: dict, choice: str, message: str):
    """``(purchase model, why)`` when ``message`` says only the spend model could not be fitted and
    the purchase model fits on its own; else None."""
    if not message.startswith(scores.SPEND_MODEL_FAILED):
        return None
    try:
        purchase = cache.value_purchase_model(dataset, p["as_of"], p["unit"], purchase_model=choice,
                                              penalizer=p["penalizer"])
    except ValueError:
        return None
    if purchase is None:
        return None
    return purchase, message[len(scores.SPEND_MODEL_FAILED):].lstrip(" :") or message


def _tab_rules():
    """The RFM segment rule table (drawn first: the scores use it); (segment map, rules used)."""
    st.markdown(
        "Segments come from the R score and the FM score (mean of F and M, rounded half up) through this "
        "table: **the first matching rule wins**; customers no rule covers get the fallback segment. "
        "The default is the widely used R-versus-F(M) grid (Putler's RFM chart)."
    )
    # a fresh editor key after a reset, so the editor forgets its edits
    editor_version = st.session_state.setdefault("value_rules_version", 0)
    if st.button("Reset the rules to the default grid", key="value_rules_reset"):
        st.session_state.pop(f"{RULES_KEY}_{editor_version}", None)
        editor_version += 1
        st.session_state["value_rules_version"] = editor_version
    edited = st.data_editor(
        scores.default_segment_rules(),
        num_rows="dynamic",
        key=f"{RULES_KEY}_{editor_version}",
        hide_index=True,
        column_config={
            "segment": st.column_config.TextColumn("Segment", required=True, max_chars=60),
            "r_min": st.column_config.NumberColumn("R from", min_value=1, max_value=5, step=1, required=True),
            "r_max": st.column_config.NumberColumn("R to", min_value=1, max_value=5, step=1, required=True),
            "fm_min": st.column_config.NumberColumn("FM from", min_value=1, max_value=5, step=1, required=True),
            "fm_max": st.column_config.NumberColumn("FM to", min_value=1, max_value=5, step=1, required=True),
        },
    )
    fallback = st.text_input("Fallback segment", scores.DEFAULT_FALLBACK, max_chars=60, key="value_fallback")
    try:
        segment_map = scores.compile_segment_rules(edited, fallback)
        rules_used = scores.validate_segment_rules(edited)
    except ValueError as exc:
        widgets.show_error(exc, "The rule table has a problem (the default grid is used until it is fixed)")
        segment_map = scores.compile_segment_rules(None, scores.DEFAULT_FALLBACK)
        rules_used = scores.validate_segment_rules(scores.DEFAULT_SEGMENT_RULES)
    if segment_map.uncovered:
        cells = ", ".join(f"R{r}/FM{f}" for r, f in segment_map.uncovered)
        st.caption(f"{len(segment_map.uncovered)} grid cells fall to “{widgets.md_escape(segment_map.fallback)}”: {cells}")
    return segment_map, rules_used


def _predictions(dataset: str):
    """The published predictions (empty frame if none) and their description (None if none)."""
    try:
        predictions = cache.published_predictions(dataset)
    except WarehouseError as exc:
        widgets.show_error(exc, "The published predictions could not be read")
        predictions = pd.DataFrame()
    prediction = registry.prediction_info(predictions)
    note = (
        f"Predicted value = expected revenue over the next {prediction['horizon_days']} days from the published "
        f"model “{widgets.md_escape(prediction.get('title') or prediction['model'])}” (run {prediction['run_id']}, "
        f"scored as of {formatting.date(prediction['as_of'])}; {prediction['customers']:,} customers). Publish another model on the Predict page."
        if prediction else None
    )
    return predictions, prediction, note


def _expected(scorer, result, predictions, prob) -> valuation.ExpectedCLV:
    """The expected CLV of every scored customer by the one resolver (published model, else BG/NBD +
    Gamma-Gamma at these parameters, else the formula at these parameters)."""
    predicted = None
    if predictions is not None and not predictions.empty:
        pv = predictions["expected_value"]
        pv.index = pv.index.astype(str)
        predicted = pv.reindex(scorer.summary.index.astype(str)).to_numpy(dtype=float)
    model_clv = None if prob is None or result.clv_bgnbd is None else np.asarray(result.clv_bgnbd, dtype=float)
    values, codes = valuation.resolve(predicted, model_clv, result.clv_formula, n=scorer.n)
    return valuation.ExpectedCLV(index=scorer.summary.index, values=values, codes=codes,
                                 p_alive=np.full(scorer.n, np.nan),
                                 base=valuation.FORMULA if model_clv is None else valuation.PROBABILISTIC)


def _titles(model_name: str) -> dict:
    """Table titles of the page's score columns (the purchase model's name in its CLV's title)."""
    return {"segment": "RFM segment", "clv_formula": "CLV (formula)", "clv_bgnbd": f"CLV ({model_name})",
            "avg_rfm_score": "Mean RFM score", "revenue": "Net revenue", "customer_share": "Share of customers",
            "r_score": "R", "f_score": "F", "m_score": "M", "rfm_score": "RFM score", "behaviour_score": "Behaviour",
            "predicted_value": "Predicted value", "churn_probability": "Churn risk"}


def _tab_scores(scorer, result, expected, rank_by, ranked_by_model, prediction_note, as_of, currency,
                dataset: str, key: str) -> None:
    money = widgets.money_text(currency)
    t = cache.shared(dataset, "value_totals", lambda: _totals(scorer, result, expected), key)
    buyers = t["buyers"]
    # two rows: money totals need the width of a third of the page to show their cents
    m1, m2 = st.columns(2)
    m3, m4, m5 = st.columns(3)
    m1.metric("Customers", widgets.fmt_int(scorer.n), border=True,
              help=f"{buyers:,} with at least one order; the others have RFM scores 0 and the segment "
              f"“{scores.NO_PURCHASE}”.")
    m2.metric("Mean RFM score (buyers)", f"{t['mean_rfm']:.2f}" if buyers else "–", border=True)
    m3.metric("CLV by formula, total", money(t["clv_formula"]), border=True, help=glossary.term("clv_formula"))
    m4.metric(SCORE_LABELS["clv_bgnbd"].split(" + ")[0] + ", total",
              money(t["clv_bgnbd"]) if t["clv_bgnbd"] is not None else "–",
              border=True, help=glossary.term("bgnbd") + " " + glossary.term("gamma_gamma"))
    m5.metric("Expected CLV, total", money(t["expected"]), border=True,
              help=f"Per customer, the first available of: published model, BG/NBD + Gamma-Gamma, formula "
              f"(here: {expected.source}). Campaigns and reports use the same rule.")
    if buyers:
        st.caption(f"{buyers:,} of {scorer.n:,} customers have bought; on average each buyer is expected to bring "
                   f"{money(t['mean_clv_formula'])} over the horizon by the formula" + (
                       f" and {money(t['mean_clv_bgnbd'])} by the purchase model"
                       if t["mean_clv_bgnbd"] is not None else "") + ".")
    fig = cache.shared(dataset, "value_hist", lambda: _hist_figure(result, rank_by, ranked_by_model, currency),
                       key, currency)
    st.plotly_chart(fig, key="value_hist", config={"displaylogo": False})
    if rank_by.startswith("clv"):
        st.caption("The last bar also holds the top 0.5 % (the long right tail is folded into it).")
    if prediction_note:
        st.caption(prediction_note)
    _lookup(dataset, scorer, result, expected, as_of, currency)


def _totals(scorer, result, expected) -> dict:
    """The Scores tab's totals and means over every customer (and over the buyers)."""
    bought = scorer.n_orders > 0
    buyers = int(bought.sum())
    bg = None if result.clv_bgnbd is None else pd.Series(result.clv_bgnbd)
    return {"buyers": buyers, "mean_rfm": float(result.rfm_score[bought].mean()) if buyers else None,
            "clv_formula": float(result.clv_formula.sum()), "clv_bgnbd": None if bg is None else float(bg.sum()),
            "expected": float(expected.values.sum()),
            "mean_clv_formula": float(result.clv_formula[bought].mean()) if buyers else None,
            "mean_clv_bgnbd": None if bg is None or not buyers else float(bg[bought].mean())}


def _hist_figure(result, rank_by, ranked_by_model, currency) -> go.Figure:
    hist = result.histogram
    if ranked_by_model is not None:
        values = ranked_by_model["predicted_value"].dropna().to_numpy(dtype=float)
        counts, edges = np.histogram(values, bins=40) if len(values) else (np.zeros(0, dtype=int), np.zeros(1))
        hist = pd.DataFrame({"left": edges[:-1], "right": edges[1:], "customers": counts})
    # graph_objects, not plotly.express: ~15x less server time per rerun (this runs on every slider move)
    is_money = rank_by.startswith("clv") or rank_by == "predicted_value"
    prefix = (currency.prefix if currency else "") if is_money else ""
    fig = go.Figure(go.Bar(
        x=((hist["left"] + hist["right"]) / 2).to_numpy(), y=hist["customers"].to_numpy(),
        width=(hist["right"] - hist["left"]).to_numpy(), marker_color="#2f6fdf",
        customdata=hist[["left", "right"]].to_numpy(),
        hovertemplate=f"{prefix}%{{customdata[0]:,.2f}} – {prefix}%{{customdata[1]:,.2f}}: %{{y:,}} customers"
                      "<extra></extra>",
    ))
    fig.update_layout(margin=dict(l=10, r=10, t=30, b=10), height=320, bargap=0.02,
                      title=f"Distribution of {SCORE_LABELS[rank_by]}",
                      xaxis_title=SCORE_LABELS[rank_by], yaxis_title="Customers")
    if is_money:
        fig.update_xaxes(**formatting.money_axis(currency))
    return fig


@st.fragment
def _lookup(dataset, scorer, result, expected, as_of, currency=None) -> None:
    """Look up one customer (a fragment: typing an id reruns only this box) by the id the person sees
    in the tables: a pseudonym for a person without raw ids, resolved by the library."""
    st.markdown("**Look up a customer**")
    who = st.text_input("Customer id", key="value_lookup", placeholder="e.g. an id from the top customers")
    if not who:
        return
    try:
        stored = access.resolve_customer(cache.warehouse(), dataset, who)
    except WarehouseError as exc:
        widgets.show_error(exc, "The customer could not be looked up")
        return
    one = None if stored is None else scorer.customer(result, stored)
    if one is None:
        st.info(f"No customer “{widgets.md_escape(who)}” up to {formatting.date(as_of)}.")
        return
    l1, l2, l3, l4 = st.columns(4)
    money = widgets.money_text(currency)
    l1.metric("RFM score", f"{one['rfm_score']:.2f}",
              help=f"R {one['r_score']}, F {one['f_score']}, M {one['m_score']}. " + glossary.term("rfm"))
    l2.metric("Segment", widgets.md_escape(one["segment"]))
    l3.metric("Behaviour score", f"{one['behaviour_score']:.1f}", help=glossary.term("behaviour_score"))
    l4.metric("CLV by formula", money(one["clv_formula"]), help=glossary.term("clv_formula"))
    pos = scorer.position(stored)
    if pos is not None:
        st.caption(f"Expected CLV: {money(expected.values[pos])} (from the {expected.sources()[pos]})")
    if "clv_bgnbd" in one:
        name = SCORE_LABELS["clv_bgnbd"].split(" + ")[0]
        alive = one.get("p_alive")
        words = (formatting.NOT_ENOUGH_HISTORY if alive is None or pd.isna(alive) else
                 f"{formatting.percent(alive)} chance that this customer is still buying (probability still "
                 "active)")
        st.caption(f"{name}: {money(one['clv_bgnbd'])}; {words}.", help=glossary.term("p_alive"))


def _tab_segments(dataset: str, key: str, result, currency=None, model_name: str = "BG/NBD") -> None:
    fig = cache.shared(dataset, "value_treemap", lambda: _treemap_figure(result, currency), key, currency)
    st.plotly_chart(fig, key="value_treemap", config={"displaylogo": False})
    widgets.show_table(result.segment_table, currency, titles=_titles(model_name), helps=TABLE_HELP,
                       kinds={"customer_share": "percent", "revenue": "money", "avg_rfm_score": "number"},
                       key="value_segment_table", once_per=(dataset, "value_segments", key, model_name))


def _treemap_figure(result, currency) -> go.Figure:
    table = result.segment_table
    prefix = currency.prefix if currency else ""
    fig = go.Figure(go.Treemap(
        labels=[widgets.escape(x) for x in table["segment"]], parents=[""] * len(table),
        values=table["customers"].to_numpy(), root_color="rgba(0,0,0,0)",
        marker=dict(colors=table["revenue_share"].to_numpy(), colorscale="Blues", showscale=True,
                    colorbar=dict(title="Share of revenue", **formatting.percent_axis(table["revenue_share"].max()))),
        # shares x 100 written "12.3 %", as formatting.percent (d3's ".1%" writes "12.3%")
        customdata=np.column_stack([100 * table["customer_share"].to_numpy(dtype=float),
                                    100 * table["revenue_share"].to_numpy(dtype=float),
                                    table["revenue"].to_numpy(dtype=float), table["clv_formula"].to_numpy(dtype=float)]),
        texttemplate="%{label}<br>%{value:,} customers<br>%{customdata[1]:.1f} % of revenue",
        hovertemplate=f"%{{label}}<br>%{{value:,}} customers (%{{customdata[0]:.1f}} %)<br>net revenue "
        f"{prefix}%{{customdata[2]:,.2f}} (%{{customdata[1]:.1f}} %)<br>CLV by formula {prefix}%{{customdata[3]:,.2f}}"
        "<extra></extra>",
    ))
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), height=420)
    return fig


def _tab_top(dataset: str, key: str, result, rank_by, ranked_by_model, prediction_note, currency=None,
             model_name: str = "BG/NBD") -> None:
    st.caption(f"The 100 customers with the highest {SCORE_LABELS[rank_by]} (pick the score on the Scores tab).")
    top = result.top_customers
    if ranked_by_model is not None:
        shown = ["customer_id", "predicted_value", "churn_probability", "rfm_segment", "rfm_score",
                 "behaviour_score", "net_revenue", "clv_formula"] + (["clv_bgnbd"] if "clv_bgnbd" in ranked_by_model else [])
        top = (ranked_by_model.dropna(subset=["predicted_value"])
               .sort_values("predicted_value", ascending=False, kind="stable").head(100)[shown])
        st.caption(prediction_note)
    widgets.show_table(top, currency, titles=_titles(model_name), helps=TABLE_HELP, key="value_top_table",
                       missing={"predicted_value": "not scored by the model",
                                "churn_probability": "not scored by the model"},
                       once_per=(dataset, "value_top", key, model_name))


def _model_words(bg, gg, model: str, unit: str, currency) -> list[str]:
    """Plain-words sentences for the fitted parameters, from the fitted values."""
    out = []
    r, alpha = bg.params_.get("r"), bg.params_.get("alpha")
    one = unit[:-1] if unit.endswith("s") else unit
    if r is not None and alpha:
        rate = r / alpha
        out.append(f"r and alpha: while still a customer, a typical customer buys about {rate:.3g} times a {one} "
                   f"(r / alpha), that is about one purchase every {1 / rate:,.0f} {unit}." if rate > 0 else
                   "r and alpha: the purchase rate is about 0.")
    if model == "bgnbd":
        a, b = bg.params_.get("a"), bg.params_.get("b")
        if a is not None and b is not None and a + b > 0:
            out.append(f"a and b: after each purchase a typical customer has a {formatting.percent(a / (a + b))} "
                       "chance of stopping for good (a / (a + b)).")
    else:
        s_, beta = bg.params_.get("s"), bg.params_.get("beta")
        if s_ is not None and beta:
            out.append(f"s and beta: a typical customer stops for good at a rate of about {s_ / beta:.3g} per {one} "
                       "(s / beta)." if s_ > 0 else "s and beta: customers practically never stop.")
    out.append("Log-likelihood: how well the model explains the purchase days seen; higher is better, and it is "
               "only comparable between models fitted on the same customers.")
    if gg is not None and gg.constant_spend_ is None:
        out.append(f"Gamma-Gamma: p, q and gamma set how much customers differ in what they spend per order and how "
                   "strongly a customer with few orders is pulled towards the model's mean order of "
                   f"{formatting.money(gg.mean_spend_, currency)} (p × gamma / (q − 1), the expected order value of "
                   "a customer with no repeat purchase yet).")
    return out


#: what the fitted purchase model's log-likelihood card means (its full value comes first)
LOG_LIKELIHOOD_HELP = ("How well the model explains the purchase days seen: higher is better, and it is only "
                       "comparable between models fitted on the same customers.")
#: the spend model's metrics: its population mean order, and what its data show
SPEND_MODEL_LABEL = "Model's mean order"
SPEND_DATA_LABEL = "Avg repeat order"


def _spend_model_help(gg, spend: dict, currency) -> str:
    """What the Gamma-Gamma model's mean order is, and why it differs from the averages on other pages."""
    if gg.constant_spend_ is not None:
        return (f"Every repeat buyer has the same average order, {formatting.money(spend['model_mean'], currency)}: "
                "the spend model gives everyone that amount.")
    return (f"The Gamma-Gamma spend model's mean spend per order over all customers, p × gamma / (q − 1), fitted "
            f"to the {spend['repeat_buyers']:,} repeat buyers' average order values after their first. It is not an "
            "average of orders: when q is close to 1 (here "
            f"{gg.q_:.3g}) the fitted spread of customers has a long tail of possible very big spenders, which lifts "
            "this mean above what a typical customer spends. It is the expected order value of a customer with no "
            "repeat purchase yet; a repeat buyer's expected order value lies between it and their own average "
            f"({formatting.money(spend['expected_mean'], currency)} on average). The Overview's average order value "
            "is something else: net revenue ÷ orders in its date range, first orders included.")


def _tab_models(dataset, scorer, models, prob, p, first_day, last_day, model_name, comparison, currency=None,
                spend_failure=None) -> None:
    """The fitted models' parameters, matrices and holdout check; with ``spend_failure`` =
    ``(purchase model, why)`` (only the spend model could not be fitted) the purchase model's part,
    with a note saying why the spend model's is missing."""
    if not p["use_bgnbd"]:
        st.info("Switch on “Probabilistic CLV” above to fit the models.", icon="🔮")
        return
    if (models is None or prob is None) and spend_failure is None:
        st.info("The models could not be fitted on these data (see the message above).", icon="🔮")
        return
    if models is not None and prob is not None:
        bg, gg = models
    else:
        (bg, why), gg = spend_failure, None
        st.info(f"The Gamma-Gamma spend model could not be fitted: {widgets.md_escape(why)}. The {model_name} "
                "purchase model below needs no spend model: its parameters, the probability that a customer is "
                "still active and the expected purchases come from it alone; the CLV by the models is not "
                "available.", icon="ℹ️")
    horizon = p["horizon"]
    paper = ("Fader, Hardie & Lee (2005), *Counting your customers the easy way*" if p["model"] == "bgnbd"
             else "Schmittlein, Morrison & Colombo (1987), *Counting your customers*")
    fitted = (f"Fitted by maximum likelihood on the {bg.n_customers_:,} customers with an order up to "
              f"{formatting.date(p['as_of'])} (time unit: {bg.unit_}, penalizer {bg.penalizer_:g}). "
              f"{model_name}: {paper}")
    if gg is None:
        st.markdown(fitted + ".")
    else:
        excluded = f" ({gg.n_excluded_:,} left out for zero, negative or missing spend)" if gg.n_excluded_ else ""
        st.markdown(
            f"{fitted}; Gamma-Gamma: Fader, Hardie & Lee (2005), *RFM and CLV*. Spend is fitted on the "
            f"{gg.n_customers_:,} repeat buyers{excluded}."
        )
    if comparison is not None:
        st.caption(f"Purchase model chosen on this dataset: {comparison.reason}.")
    term = glossary.term("bgnbd") if p["model"] == "bgnbd" else (
        "Pareto/NBD: a model of how often each customer buys and when they stop, learnt from everyone's purchase "
        "days (Schmittlein, Morrison & Colombo 1987).")
    cols = st.columns(5)
    for col, (name, value) in zip(cols, list(bg.params_.items()) + [("log-likelihood", bg.log_likelihood_)]):
        col.metric(name, f"{value:,.0f}" if name == "log-likelihood" else f"{value:.4g}",
                   help=(f"{value:,.1f}. " + LOG_LIKELIHOOD_HELP) if name == "log-likelihood" else term)
    if gg is not None:
        _spend_metrics(scorer, gg, currency)
    st.markdown("\n".join(f"- {widgets.md_escape(w)}" for w in _model_words(bg, gg, p["model"], bg.unit_, currency)))
    _matrices(dataset, scorer, bg, p, horizon)
    _holdout(dataset, p["unit"], first_day, last_day, p["model"], p["penalizer"], model_name)


def _spend_metrics(scorer, gg, currency) -> None:
    """The fitted spend model's parameters and its mean order against the repeat buyers'."""
    from analytics import diagnostics

    g1, g2, g3, g4, _g5 = st.columns(5)
    if gg.constant_spend_ is not None:
        g1.metric("Gamma-Gamma", "constant spend", help=gg.fit_note_)
    else:
        g1.metric("Gamma-Gamma p", f"{gg.p_:.4g}", help=glossary.term("gamma_gamma"))
        g2.metric("q", f"{gg.q_:.4g}", help=glossary.term("gamma_gamma"))
        g3.metric("gamma", f"{gg.v_:.4g}", help=glossary.term("gamma_gamma"))
    spend = diagnostics.spend_model_comparison(gg, scorer.summary["frequency"], scorer.summary["monetary_value"])
    # the check stored with the fit: the model's mean for a customer with no repeat order against the
    # average of the repeat-order values it was fitted on (analytics.clv.spend_check)
    poor_fit = diagnostics.spend_check_warning(getattr(gg, "spend_check_", None), currency)
    if poor_fit:
        st.warning(widgets.md_escape(poor_fit), icon="⚠️")
    g4.metric(SPEND_MODEL_LABEL, formatting.money(spend["model_mean"], currency),
              help=_spend_model_help(gg, spend, currency))
    if spend["repeat_buyers"]:
        _g5.metric(SPEND_DATA_LABEL, formatting.money(spend["observed_mean"], currency),
                   help=f"What the {spend['repeat_buyers']:,} repeat buyers the spend model is fitted on spent per "
                   f"order after their first, on average over customers (median "
                   f"{formatting.money(spend['observed_median'], currency)}). Not the Overview's average order "
                   "value, which is net revenue ÷ orders in its date range, first orders included.")
        if gg.constant_spend_ is None and spend["ratio"] > 1.5:
            st.caption(
                f"The model's mean order ({formatting.money(spend['model_mean'], currency)}) is "
                f"{spend['ratio']:.1f} × the repeat buyers' average ({formatting.money(spend['observed_mean'], currency)}): "
                f"q = {gg.q_:.3g} is close to 1, so the spread the model fits has a long tail of possible very big "
                "spenders that lifts its mean. Customers without a repeat purchase get this mean as their expected "
                "order value, so their CLV by the model may read high; repeat buyers get an order value between it "
                f"and their own average ({formatting.money(spend['expected_mean'], currency)} on average).")


def _matrices(dataset, scorer, bg, p, horizon) -> None:
    """The purchase model's expected purchases and probability alive by frequency x recency."""
    from analytics import diagnostics
    from analytics.clv import DAYS_PER_MONTH
    from analytics.summary import TIME_UNITS

    max_t, q99 = scorer.model_grid_bounds()
    max_f = int(min(max(q99, 1), 40))
    horizon_t = horizon * DAYS_PER_MONTH / TIME_UNITS[bg.unit_]
    if max_t > 0:
        h1, h2 = st.columns(2)
        def expected_figure():
            mat = diagnostics.expected_purchases_matrix(bg, max_f, max_t, t=horizon_t)
            return diagnostics.figure_matrix(mat, title=f"Expected purchases in the next {horizon} months").update_layout(
                height=380)

        def alive_figure():
            return diagnostics.figure_matrix(diagnostics.probability_alive_matrix(bg, max_f, max_t)).update_layout(
                height=380)

        with h1:  # the fitted model's matrices: once per fit and grid
            fig = cache.shared(dataset, "value_ep_matrix", expected_figure, p["key"], max_f, max_t, horizon_t)
            st.plotly_chart(fig, key="value_ep_matrix", config={"displaylogo": False})
        with h2:
            fig = cache.shared(dataset, "value_pa_matrix", alive_figure, p["key"], max_f, max_t)
            st.caption(glossary.term("p_alive"))
            st.plotly_chart(fig, key="value_pa_matrix", config={"displaylogo": False})
        st.caption(f"For a customer whose first purchase was {max_t:g} {bg.unit_} before the as-of date.")


@st.fragment
def _holdout(dataset, unit, first_day, last_day, purchase_model, penalizer, model_name) -> None:
    """The calibration / holdout check (a fragment: its controls rerun only this part)."""
    from analytics import diagnostics

    st.subheader("Calibration / holdout check")
    st.caption("Fit the model on purchases up to a cut-off date, then compare its predictions with what "
               "the same customers actually bought after it (up to the dataset's last purchase).")
    span_days = (last_day - first_day).days
    default_cut = first_day + dt.timedelta(days=max(1, int(span_days * 2 / 3)))
    if span_days < 2:
        st.info("The data cover less than two days: not enough for a holdout check.")
        return
    cutoff = st.date_input("Cut-off date", min_value=first_day + dt.timedelta(days=1),
                           max_value=last_day - dt.timedelta(days=1),
                           key=widgets.state_default("value_cutoff", default_cut))
    if not st.toggle("Run the holdout check", value=False, key="value_run_holdout"):
        return
    try:
        check = cache.value_holdout(dataset, str(cutoff), unit, purchase_model=purchase_model, penalizer=penalizer)
    except ValueError as exc:
        widgets.show_error(exc, "The holdout check could not be run")
        return
    t = check.totals
    k1, k2, k3 = st.columns(3)
    k1.metric("Actual holdout purchases", f"{t['actual_holdout_purchases']:,.0f}")
    k2.metric(f"Predicted by {model_name}", f"{t['predicted_holdout_purchases']:,.1f}")
    k3.metric("Relative error", widgets.fmt_pct(t["relative_error"]))
    rel = t.get("relative_error")
    if rel is not None and not pd.isna(rel):
        st.caption(f"Fitted on the purchases up to {formatting.date(cutoff)}, the model expected "
                   f"{t['predicted_holdout_purchases']:,.0f} purchases after it; the customers made "
                   f"{t['actual_holdout_purchases']:,.0f}: {formatting.percent(abs(rel))} "
                   f"{'too many' if rel > 0 else 'too few'}" + (" (close enough to trust its ranking)."
                                                                 if abs(rel) < 0.1 else "."))
    c1_, c2_ = st.columns(2)
    with c1_:
        st.plotly_chart(diagnostics.figure_holdout_by_frequency(check), key="value_holdout_freq",
                        config={"displaylogo": False})
    with c2_:
        st.plotly_chart(diagnostics.figure_cumulative(check), key="value_holdout_cum",
                        config={"displaylogo": False})


def _tab_export(dataset, scorer, result, expected, models, prob, predictions, prediction, segment_map,
                rules_used, as_of) -> None:
    if not widgets.may("export", dataset):
        st.info("Customer-level exports need the analyst role.", icon="🔒")
        return
    st.markdown(
        f"Every customer ({scorer.n:,}) with all scores; the parameters are included as `param_*` columns "
        "(CSV) and as file metadata (Parquet). CSV cells that a spreadsheet would run as formulas "
        "(starting with = + - @) are neutralized with a leading '."
    )
    if prediction:
        st.caption("The published model's predictions are included as `predicted_value` and `churn_probability` "
                   "(empty for customers it did not score) with its model, run and as-of date as `prediction_*` "
                   "columns.")
    bom = st.checkbox("UTF-8 byte order mark (for Excel)", value=False, key="value_bom")
    stem = f"valuescope-{dataset}-{as_of}".replace("/", "_").replace("\\", "_")

    meta = {"dataset": dataset, **result.params, "segment_rules": rules_used,
            "fallback_segment": segment_map.fallback, "expected_clv_source": expected.source}
    if models is not None and prob is not None:
        meta["clv_model"] = scores.model_label(models)
        meta["model_params"] = scores.model_params(models)
    if prediction:
        meta["published_predictions"] = prediction

    # Deferred downloads: built only when clicked (never on a slider move); everything they
    # need is bound here, since they run outside this script run.
    def _frame(scorer=scorer, result=result, predictions=predictions, expected=expected, with_params=True):
        out = registry.join_predictions(scorer.frame(result, with_params=with_params), predictions)
        out["expected_clv"] = expected.values
        out["expected_clv_source"] = expected.sources()
        return out

    def _csv(bom=bom) -> bytes:
        data = to_safe_csv(_frame(), bom=bom)
        return data if isinstance(data, bytes) else data.encode("utf-8")

    def _parquet(meta=meta) -> bytes:
        return to_parquet(_frame(), metadata=meta)

    def _params_json(meta=meta) -> str:
        return json.dumps(meta, indent=2, default=str)

    _csv, _parquet = widgets.deferred(_csv), widgets.deferred(_parquet)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Download CSV", data=_csv, file_name=f"{stem}.csv", mime="text/csv",
                       on_click="ignore", icon="⬇️", key="value_dl_csv")
    d2.download_button("Download Parquet", data=_parquet, file_name=f"{stem}.parquet",
                       mime="application/vnd.apache.parquet", on_click="ignore", icon="⬇️", key="value_dl_parquet")
    d3.download_button("Parameters and rules (JSON)", data=_params_json, file_name=f"{stem}.json",
                       mime="application/json", on_click="ignore", icon="⬇️", key="value_dl_json")
    st.caption("The segment rule table and the fitted model parameters are in the Parquet metadata and the JSON file.")


def main() -> None:
    started = time.perf_counter()
    st.title("💎 Value")
    dataset, _version, first_day, last_day = widgets.dataset_span_or_stop()
    currency = widgets.dataset_currency(dataset)
    p = _parameters(first_day, last_day)
    try:
        scorer = cache.value_scorer(dataset, str(p["as_of"]), p["unit"], float(p["min_age"]))
    except (ValueError, WarehouseError) as exc:
        widgets.show_error(exc, "The customers could not be summarised")
        st.stop()
    if scorer is None:
        widgets.not_ready(dataset, "the table of customer scores")
    if scorer.n == 0:
        st.info(f"No customer has events up to {formatting.date(p['as_of'])}.", icon="📭")
        st.stop()
    p["model"], model_name, comparison = _purchase_model(dataset, p)
    SCORE_LABELS["clv_bgnbd"] = f"CLV by {model_name} + Gamma-Gamma"
    models, prob, spend_failure = _models(dataset, p, model_name)

    tab_scores, tab_segments, tab_top, tab_models, tab_export = st.tabs(
        ["📊 Scores", "🧭 RFM segments", "🏅 Top customers", "🔮 Purchase model", "⬇️ Export"]
    )
    with tab_segments:
        segment_map, rules_used = _tab_rules()
    predictions, prediction, prediction_note = _predictions(dataset)

    # re-score (vector arithmetic over the cached arrays)
    rank_choices = (["clv_formula", "rfm_score", "behaviour_score"] + (["clv_bgnbd"] if prob is not None else [])
                    + (["predicted_value"] if prediction else []))
    with tab_scores:
        rank_by = st.selectbox("Score", rank_choices, format_func=SCORE_LABELS.get, key="value_rank_by",
                               help="Shown in the distribution and used to rank the top customers.")
    if rank_by not in rank_choices:
        rank_by = "clv_formula"
    p["key"] = _score_key(p, segment_map, rank_by)
    try:  # the same parameters give every session the same scores: computed once per data version
        result = cache.shared(dataset, "value_scores", lambda: scorer.score(
            p["rfm"], p["behaviour"], p["clv"], segment_map=segment_map,
            rank_by="clv_formula" if rank_by == "predicted_value" else rank_by, top_n=100, prob=prob), p["key"])
    except ValueError as exc:
        widgets.show_error(exc, "The scores could not be computed")
        st.stop()
    # ranking by the published model: its predictions joined to every customer's scores
    ranked_by_model = None
    if rank_by == "predicted_value":
        ranked_by_model = registry.join_predictions(scorer.frame(result, with_params=False), predictions)
    expected = cache.shared(dataset, "value_expected", lambda: _expected(scorer, result, predictions, prob), p["key"])

    with tab_scores:
        _tab_scores(scorer, result, expected, rank_by, ranked_by_model, prediction_note, p["as_of"], currency,
                    dataset, p["key"])
    with tab_segments:
        _tab_segments(dataset, p["key"], result, currency, model_name)
    with tab_top:
        _tab_top(dataset, p["key"], result, rank_by, ranked_by_model, prediction_note, currency, model_name)
    with tab_models:
        _tab_models(dataset, scorer, models, prob, p, first_day, last_day, model_name, comparison, currency,
                    spend_failure)
    with tab_export:
        _tab_export(dataset, scorer, result, expected, models, prob, predictions, prediction, segment_map,
                    rules_used, p["as_of"])
    # server time of this run (what a slider move costs once the summary and the fits are cached), kept for
    # the benchmark, not shown: it speaks to engineers
    st.session_state["value_last_run_ms"] = 1000.0 * (time.perf_counter() - started)


main()
