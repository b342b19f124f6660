"""Predict: backtest value/churn predictors (LightGBM, LSTM) against BG/NBD, Pareto/NBD and naive baselines.

The page only lays out widgets and calls analytics.predict; the finished
backtest is kept in this browser session's state (not a cache: it belongs to
the session that trained it). Each browser session runs its script in its own
thread and torch / LightGBM release the GIL while they compute, so a training
run here does not freeze other sessions. Before Run the page shows an estimate
of the run time (analytics.predict.backtest.estimate_seconds); while it runs, a
Stop button, a progress bar and a line of figures, all removed when it ends.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics import formatting, glossary
from analytics.currency import dataset_currency
from analytics.predict import metrics as M
from analytics.predict.backtest import (BASELINES, DEFAULT_LSTM_PARAMS, LEARNED, MODEL_NAMES, MODEL_TITLES,
                                       estimate_seconds, run_backtest)
from analytics.predict.features import MAX_PERIODS, PERIOD_DAYS, data_span, feature_label, plan_shape
from analytics.predict.registry import ensemble_weights
from dashboard import cache, widgets

RESULT_KEY = "predict_result"
MODEL_LABELS = dict(MODEL_TITLES)
#: the comparison table: what fits on one screen (more in the expander below it); (metric, title, glossary term)
MAIN_COLUMNS = [("rmse", "RMSE", "rmse"), ("normalized_gini", "Normalized Gini", "normalized_gini"),
                ("top_decile_capture", "Top-decile capture", "top_decile_capture"),
                ("total_ratio", "Predicted / actual", "total_ratio"), ("roc_auc", "Churn ROC AUC", "churn_auc"),
                ("fit_seconds", "Fit (s)", "fit_seconds")]
MORE_COLUMNS = [("mae", "MAE", "mae"), ("spearman", "Spearman", "spearman"), ("pr_auc", "Churn PR AUC", "pr_auc"),
                ("brier", "Churn Brier", "brier"), ("total_predicted", "Total predicted", None),
                ("total_actual", "Total actual", None), ("validation_gini", "Validation Gini", "validation_gini")]
#: fewer buyers in the holdout than this: the comparison is shown with a warning that it says little
FEW_BUYERS = 30
FORMATS = {"rmse": "%.2f", "fit_seconds": "%.1f", "total_ratio": "%.2f x"}


def _form(first_day, last_day) -> dict:
    """The backtest settings (plain widgets, not a form: the run-time estimate follows every change)."""
    span_days = (last_day - first_day).days
    default_holdout = max(1, min(90, span_days // 3))
    default_cal = last_day - dt.timedelta(days=default_holdout)
    c1, c2, c3 = st.columns(3)
    cal_end = c1.date_input("Calibration end (cut-off)", min_value=first_day,
                            max_value=last_day, key=widgets.state_default("predict_cal_end", default_cal),
                            help="Models see only events up to the end of this day.")
    hold_end = c2.date_input("Holdout end", min_value=first_day, max_value=last_day,
                             key=widgets.state_default("predict_hold_end", last_day),
                             help="Predictions are judged on the days after the cut-off up to this one.")
    models = c3.multiselect("Models", ["lightgbm", "lstm"], default=["lightgbm", "lstm"],
                            format_func=MODEL_LABELS.get, key="predict_models",
                            help="The zero, naive, BG/NBD and Pareto/NBD baselines always run.")
    with st.expander("⚙️ LSTM settings"):
        a1, a2, a3, a4 = st.columns(4)
        period = a1.selectbox("Sequence period", ["weeks", "months"], key="predict_period")
        epochs = a2.slider("Max epochs", 1, 60, int(DEFAULT_LSTM_PARAMS["epochs"]), key="predict_epochs",
                           help="Training stops earlier when the validation loss stops improving.")
        hidden = a3.select_slider("Hidden units", [8, 16, 32, 64], value=int(DEFAULT_LSTM_PARAMS["hidden_size"]),
                                  key="predict_hidden", help="More units can learn more and take longer (about the "
                                  "square of the units).")
        device = a4.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key="predict_device",
                              help="auto picks CUDA, then Apple MPS, then the CPU.")
    return {"cal_end": cal_end, "hold_end": hold_end, "period": period, "models": models, "device": device,
            "lstm_params": {"epochs": int(epochs), "hidden_size": int(hidden)}}


def _estimate(dataset: str, first_day, f: dict) -> None:
    """The expected run time of these settings, before Run."""
    if f["hold_end"] <= f["cal_end"]:
        return
    shape = plan_shape(first_day, f["cal_end"], f["hold_end"])
    _, _, n_customers = data_span(cache.warehouse(), dataset)
    days = (f["cal_end"] - first_day).days + 1
    n_periods = int(min(MAX_PERIODS[f["period"]], max(1, math.ceil(days / PERIOD_DAYS[f["period"]]))))
    est = estimate_seconds(n_customers, n_periods, f["models"], n_windows=max(1, len(shape["cutoffs"])),
                           lstm_params=f["lstm_params"], device=f["device"])
    parts = ", ".join(f"{MODEL_LABELS.get(k, k)} ~{v:.0f} s" for k, v in est.items() if k in ("lightgbm", "lstm"))
    st.caption(f"⏱️ Estimated run time: about {est['total']:.0f} s on a 2-core CPU for "
               f"{formatting.integer(n_customers)} customers" + (f" ({parts})" if parts else "")
               + "; a busy machine takes longer.")


def _train(live, dataset: str, version: str, f: dict) -> None:
    """Run the backtest with live progress in the placeholder ``live``; keeps the result in this
    browser session."""
    # A click on Stop starts a new run of this script, which Streamlit stops the current one for at
    # its next progress update (between LSTM batches); the last finished backtest stays shown.
    with live.container():
        st.button("⏹️ Stop training", key="predict_stop")
        bar = st.progress(0.0, text="Preparing features…")
        line = st.empty()
    stages = ["features"] + [m for m in MODEL_NAMES if m in set(f["models"]) | set(BASELINES)]

    def on_progress(row: dict) -> None:
        done = stages.index(row["stage"]) if row["stage"] in stages else 0
        frac = done / len(stages)
        if row.get("status") == "epoch":
            phase = row.get("phase", "validation")
            half = 0.0 if phase == "validation" else 0.5
            frac += (half + 0.5 * row["epoch"] / max(row["epochs"], 1)) / len(stages)
            bar.progress(min(frac, 1.0), text=f"LSTM ({phase} fit) epoch {row['epoch']}/{row['epochs']}")
            val = row.get("val_loss")
            vtext = "" if val is None or pd.isna(val) else f" · validation loss {val:.4f}"
            line.caption(f"train loss {row['train_loss']:.4f}{vtext} · at most {row['eta_s']:.0f} s left "
                         "in this fit")
        elif row.get("status") == "start":
            what = "Preparing features and the statistical models" if row["stage"] == "features" \
                else f"Training {MODEL_LABELS[row['stage']]}"
            bar.progress(min(frac, 1.0), text=f"{what}…")

    try:
        result = run_backtest(cache.warehouse(), dataset, f["cal_end"], f["hold_end"], f["models"],
                              period=f["period"], device=f["device"], lstm_params=f["lstm_params"],
                              progress=on_progress)
    except ValueError as exc:  # the message says what is wrong; the last finished backtest stays below
        # the message takes the placeholder's place whole (a new container in it would leave the
        # bar and the figures line of this run on the page under the message)
        live.error(f"The backtest could not run: {exc}", icon="🚫")
    else:
        live.empty()  # the Stop button, the bar and the figures line go when the work ends
        st.session_state[RESULT_KEY] = {"dataset": dataset, "version": version, "result": result}


def _cell(v, key: str, money) -> str:
    """One figure of the comparison as text (for a column where some model has none)."""
    if v is None or not math.isfinite(float(v)):
        return "not available"
    if key == "rmse":
        return money(v)
    if key == "fit_seconds":
        return f"{v:,.1f}"
    if key == "total_ratio":
        return f"{v:.2f} x"
    if key == "top_decile_capture":
        return formatting.percent(v)
    return formatting.number(v, 3)


def _comparison(res, info, money, currency) -> None:
    """The main figures of every model on the holdout, in plain words too."""
    st.subheader("Comparison on the holdout")
    st.caption(
        f"Calibration to {formatting.date(info['calibration_end'])}, holdout to "
        f"{formatting.date(info['holdout_end'])} ({info['holdout_days']} days); "
        f"{formatting.integer(info['n_customers'])} customers, {formatting.integer(info['holdout_purchasers'])} "
        "bought in the holdout.")
    if info["holdout_purchasers"] < FEW_BUYERS:
        st.warning(f"Judged on {formatting.integer(info['n_customers'])} customers, "
                   f"{formatting.integer(info['holdout_purchasers'])} of whom bought in the holdout: with so few, "
                   "one customer moves every figure below, so they say little about which model is better.",
                   icon="🔬")
    if info.get("learned_error"):
        st.warning(widgets.md_escape(info["learned_error"][:1].upper() + info["learned_error"][1:]) + ".",
                   icon="⚠️")
    metrics = res.metrics
    table = pd.DataFrame(index=[MODEL_LABELS.get(m, m) for m in metrics.index])
    config = {}
    formats = {**FORMATS, "rmse": formatting.money_printf(currency)}
    for key, title, term in MAIN_COLUMNS:
        values = metrics[key].to_numpy(dtype=float) if key in metrics else np.full(len(metrics), np.nan)
        if np.isnan(values).any():  # a figure a model cannot have (a constant prediction has no ranking)
            table[title] = [_cell(v, key, money) for v in values]
            config[title] = st.column_config.TextColumn(title, help=glossary.term(term))
        elif key == "top_decile_capture":  # a share of revenue: in percent
            table[title] = values * 100.0
            config[title] = st.column_config.NumberColumn(title, help=glossary.term(term), format="%.1f %%")
        else:
            # a figure shown with three decimals that rounds to zero is 0 (no "-0.000")
            table[title] = values if key in formats else np.where(np.abs(values) < 5e-4, 0.0, values)
            config[title] = st.column_config.NumberColumn(title, help=glossary.term(term),
                                                          format=formats.get(key, "%.3f"))
    st.dataframe(table, width="stretch", key="predict_table", column_config=config)
    # why a model has no figures, in full under the table (a column of it sat beyond the table's
    # right edge at 1280 pixels, cut to a few letters)
    failed = metrics["error"].dropna() if "error" in metrics else pd.Series(dtype=object)
    if len(failed):
        st.markdown("\n".join(f"- **{widgets.md_escape(MODEL_LABELS.get(m, m))}** could not run: "
                              f"{widgets.md_escape(str(why))}" for m, why in failed.items() if str(why)))
    if info.get("ensemble"):
        st.caption(widgets.md_escape(info["ensemble"][:1].upper() + info["ensemble"][1:]) + ".")

    ok = metrics[metrics["error"].isna()] if "error" in metrics else metrics
    best = _best_model(metrics)
    if best is not None:
        st.success(f"Best ranking of holdout value: {MODEL_LABELS[best]} (normalized Gini "
                   f"{ok.loc[best, 'normalized_gini']:.3f}).", icon="🏆")
        st.markdown("\n".join(f"- {widgets.md_escape(s)}" for s in
                              M.explain_metrics(ok.loc[best].to_dict(), MODEL_LABELS[best], info["holdout_days"],
                                                money)))
    with st.expander("What the figures mean, and more of them"):
        st.markdown("\n".join(f"- {widgets.md_escape(glossary.term(term))}"
                              for _, _, term in MAIN_COLUMNS + MORE_COLUMNS if term))
        more = pd.DataFrame(index=table.index)
        more_config = {}
        for key, title, _ in MORE_COLUMNS:
            if key not in metrics:
                continue
            values = metrics[key].to_numpy(dtype=float)
            is_money = key.startswith("total") or key == "mae"
            if np.isnan(values).any():
                more[title] = [_cell(v, "rmse" if is_money else key, money) for v in values]
                more_config[title] = st.column_config.TextColumn(title)
            else:
                more[title] = values
                more_config[title] = st.column_config.NumberColumn(
                    title, format=formatting.money_printf(currency) if is_money else "%.3f")
        st.dataframe(more, width="stretch", key="predict_more", column_config=more_config)
        how = [info.get("horizon")]
        if (info.get("levels") or {}).get("note"):
            how.append(f"level of the holdout period: {info['levels']['note']}")
        if info.get("training_cutoffs"):
            how.append(f"learned models trained on {len(info['training_cutoffs'])} cut-offs from "
                       f"{formatting.date(info['training_cutoffs'][-1])} to "
                       f"{formatting.date(info['training_cutoffs'][0])}, each with the next {info['target_days']} "
                       f"days as target; checked on the period after {formatting.date(info['validation_cutoff'])}")
        if info.get("ensemble"):
            how.append(info["ensemble"])
        st.caption(widgets.md_escape("How the predictions were made: " + "; ".join(h for h in how if h) + "."))


def _best_model(metrics: pd.DataFrame) -> str | None:
    """The model that ranked holdout value best (highest normalized Gini among those that ran), or None."""
    ok = metrics[metrics["error"].isna()] if "error" in metrics else metrics
    if not len(ok) or not ok["normalized_gini"].notna().any():
        return None
    return ok["normalized_gini"].idxmax()


def _tab_deciles(res, currency=None) -> None:
    """Predicted vs actual mean per predicted decile."""
    names = list(res.deciles)
    best = _best_model(res.metrics)
    # the model the sentences above the tabs speak of, so that the chart and the words agree
    choice = st.selectbox("Model", names, format_func=MODEL_LABELS.get, key="predict_decile_model",
                          index=names.index(best) if best in names else len(names) - 1)
    d = res.deciles[choice]
    fig = go.Figure([
        go.Bar(name="Predicted mean", x=d["decile"], y=d["predicted_mean"]),
        go.Bar(name="Actual mean", x=d["decile"], y=d["actual_mean"]),
    ])
    fig.update_layout(barmode="group", xaxis_title="Predicted decile (1 = highest)",
                      yaxis_title="Mean holdout value per customer", height=360, margin=dict(t=20, b=40))
    fig.update_yaxes(**formatting.money_axis(currency))
    if len(d):
        first = d.sort_values("decile").iloc[0]
        st.caption(f"The 10 % of customers {MODEL_LABELS.get(choice, choice)} ranks highest were expected to spend "
                   f"{formatting.money(first['predicted_mean'], currency)} each in the holdout and spent "
                   f"{formatting.money(first['actual_mean'], currency)}.")
    st.plotly_chart(fig, key="predict_decile_chart")


def _tab_curves(res) -> None:
    """The LSTM's training and validation loss per epoch."""
    lstm = res.models.get("lstm")
    if lstm is None:
        st.info("Run the LSTM to see its learning curves.", icon="📉")
    else:
        hist = pd.DataFrame(lstm.history_)
        fig = go.Figure([go.Scatter(x=hist["epoch"], y=hist["train_loss"], name="training loss"),
                         go.Scatter(x=hist["epoch"], y=hist["val_loss"], name="validation loss")])
        fig.update_layout(xaxis_title="Epoch", yaxis_title="ZILN loss", height=320, margin=dict(t=20, b=40))
        st.plotly_chart(fig, key="predict_curves")
        st.caption(f"Best epoch {lstm.best_epoch_} of {len(hist)} (validation fit; the final fit on every window "
                   f"ran that many epochs); device {lstm.device_}.")


def _tab_importance(res) -> None:
    """LightGBM's share of total gain per feature."""
    gbm = res.models.get("lightgbm")
    if gbm is None:
        st.info("Run LightGBM to see feature importance.", icon="🌲")
    else:
        target = st.radio("Target", ["value", "churn"], horizontal=True, key="predict_imp_target")
        imp = gbm.feature_importance(target).head(15)
        period = res.info.get("period", "weeks")
        labels = [feature_label(f, period) for f in imp["feature"]]
        fig = go.Figure(go.Bar(x=imp["gain_share"][::-1], y=labels[::-1], orientation="h"))
        fig.update_layout(xaxis_title="Share of total gain", height=420, margin=dict(t=20, b=40))
        st.plotly_chart(fig, key="predict_importance")


def _tab_explain(res, money) -> None:
    """One customer's LightGBM prediction and its drivers."""
    gbm = res.models.get("lightgbm")
    if gbm is None or res.features is None or "lightgbm_value" not in res.predictions:
        st.info("Run LightGBM to explain individual predictions.", icon="🔍")
    else:
        top = res.predictions.sort_values("lightgbm_value", ascending=False).head(500)
        who = st.selectbox("Customer (500 highest predicted)", list(top.index), key="predict_customer")
        drivers = gbm.top_drivers(res.features.loc[[who]], k=5)
        period = res.info.get("period", "weeks")
        drivers = drivers.assign(feature=[feature_label(f, period) for f in drivers["feature"]])
        st.metric("Predicted holdout value", money(float(top.loc[who, "lightgbm_value"])))
        st.dataframe(drivers[["rank", "feature", "feature_value", "contribution"]].rename(columns={
            "rank": "Rank", "feature": "Feature", "feature_value": "Customer's value", "contribution": "Effect"}),
            hide_index=True, key="predict_drivers", width="stretch",
            column_config={"Customer's value": st.column_config.NumberColumn(format="%,.2f"),
                           "Effect": st.column_config.NumberColumn(format="%+.3f")})
        st.caption("Contributions are LightGBM's own (pred_contrib), in log-value units: positive raises "
                   "the prediction.")


def _tab_save(res, info, dataset, last_day) -> None:
    """Save the run and its models; publish a model's predictions."""
    label = st.text_input("Label", key="predict_label", max_chars=80)
    saved_id = st.session_state.get("predict_saved_run")
    if st.button("💾 Save run and models", key="predict_save"):
        from analytics.predict.registry import save_backtest

        try:
            saved_id = save_backtest(cache.warehouse(), res, label=label or None)
        except ValueError as exc:
            widgets.show_error(exc, "The run could not be saved")
        else:
            st.session_state["predict_saved_run"] = saved_id
            st.success(f"Saved as run {saved_id}.", icon="✅")
    learned = [m for m in LEARNED if m in res.models]
    members = ensemble_weights(info)
    if members and all(m in res.models for m in members if m in LEARNED):
        learned.append("ensemble")  # scored by its members: the saved learned models and Pareto/NBD fitted again
    if saved_id is not None and learned:
        st.markdown("**Publish predictions** — score every customer as of the dataset's last day with a saved "
                    "model; segments and targeting then use these expected values and churn risks.")
        pick = st.selectbox("Model to publish", learned, format_func=MODEL_LABELS.get, key="predict_publish_model")
        if pick == "ensemble":
            st.caption("The Ensemble scores every customer with its members as of the last day (the saved learned "
                       "models, and Pareto/NBD fitted again on the data up to that day) and blends them with the "
                       "weights chosen on the validation window: "
                       + " + ".join(f"{w:.2f} × {MODEL_LABELS.get(m, m)}" for m, w in members.items()) + ".")
        if st.button("📣 Publish to customer scores", key="predict_publish"):
            from analytics.predict.registry import publish_predictions

            try:
                n = publish_predictions(cache.warehouse(), int(saved_id), pick, last_day, dataset=dataset)
            except ValueError as exc:
                widgets.show_error(exc, "The predictions could not be published")
            else:
                cache.changed(dataset)  # the published values are part of the prepared data: prepare again
                st.success(f"Published {MODEL_LABELS[pick]} predictions for {formatting.integer(n)} customers "
                           f"(as of {formatting.date(last_day)}, next {info['holdout_days']} days).", icon="📣")


def main() -> None:
    st.title("🔮 Predict")
    st.caption("Train value and churn predictors on data up to a cut-off and judge them on the holdout that "
               "follows, against the BG/NBD and Pareto/NBD models and naive baselines.")
    dataset, _version, first_day, last_day = widgets.dataset_span_or_stop(needs_events=True)
    if last_day <= first_day:  # no cut-off lies before the last day
        st.info(f"A backtest needs events on at least two days: every event of “{widgets.md_escape(dataset)}” "
                f"is on {formatting.date(last_day)}. The Overview, Value and Segments pages work on it.",
                icon="📅")
        st.stop()
    if not widgets.may("model", dataset):  # training reads every customer's history: analysts and admins
        st.info("Training and judging predictors needs the analyst role.", icon="🔒")
        st.stop()
    version = cache.version(dataset).events  # a publish changes the data version, not the events
    currency = dataset_currency(cache.warehouse(), dataset).code

    def money(x) -> str:
        return formatting.money(x, currency)

    f = _form(first_day, last_day)
    _estimate(dataset, first_day, f)
    run = st.button("▶️ Run backtest", type="primary", key="predict_run")
    # one placeholder in every run, filled only while training: the elements below keep their place
    # in the page, so the browser keeps the tab a reader chose (Save) when the next click reruns
    live = st.empty()
    if run:
        _train(live, dataset, version, f)
    held = st.session_state.get(RESULT_KEY)
    if not held or held["dataset"] != dataset:
        st.info("Pick a cut-off and a holdout, then run the backtest.", icon="🔮")
        st.stop()
    res = held["result"]
    info = res.info
    if held["version"] != version:
        st.warning("The dataset changed since this backtest ran; run it again for current figures.", icon="⚠️")
    _comparison(res, info, money, currency)
    tabs = st.tabs(["📊 Deciles", "📉 Learning curves", "🌲 Feature importance", "🔍 Explain a customer", "💾 Save"])
    with tabs[0]:
        _tab_deciles(res, currency)
    with tabs[1]:
        _tab_curves(res)
    with tabs[2]:
        _tab_importance(res)
    with tabs[3]:
        _tab_explain(res, money)
    with tabs[4]:
        _tab_save(res, info, dataset, last_day)


main()
