"""Predict: backtest value/churn predictors (LightGBM, LSTM) against BG/NBD and naive baselines.

The page only lays out widgets and calls analytics.predict; the finished
backtest is kept in this browser session's state (not a cache: it belongs to
the session that trained it). Each browser session runs its script in its own
thread and torch / LightGBM release the GIL while they compute, so a training
run here does not freeze other sessions.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics.predict.backtest import MODEL_NAMES, run_backtest
from dashboard import cache, widgets

RESULT_KEY = "predict_result"
MODEL_LABELS = {"zero": "Zero", "naive": "Naive rate x AOV", "bgnbd": "BG/NBD x Gamma-Gamma",
                "lightgbm": "LightGBM", "lstm": "LSTM (ZILN)"}
METRIC_LABELS = {
    "rmse": "RMSE", "mae": "MAE", "spearman": "Spearman", "normalized_gini": "Normalized Gini",
    "top_decile_capture": "Top-decile capture", "total_predicted": "Total predicted", "total_actual": "Total actual",
    "total_ratio": "Predicted / actual", "roc_auc": "Churn ROC AUC", "pr_auc": "Churn PR AUC",
    "brier": "Churn Brier", "fit_seconds": "Fit (s)", "error": "Error",
}



def _form(first_day, last_day) -> dict:
    """The backtest form; its values and whether it was submitted."""
    span_days = (last_day - first_day).days
    default_holdout = max(1, min(90, span_days // 3))
    default_cal = last_day - dt.timedelta(days=default_holdout)

    with st.form("predict_form"):
        c1, c2, c3 = st.columns(3)
        cal_end = c1.date_input("Calibration end (cut-off)", value=default_cal, min_value=first_day,
                                max_value=last_day, key="predict_cal_end",
                                help="Models see only events up to the end of this day.")
        hold_end = c2.date_input("Holdout end", value=last_day, min_value=first_day, max_value=last_day,
                                 key="predict_hold_end", help="Predictions are judged on the days after the cut-off up to this one.")
        period = c3.selectbox("Sequence period (LSTM)", ["weeks", "months"], key="predict_period")
        models = st.multiselect("Models", ["lightgbm", "lstm"], default=["lightgbm", "lstm"],
                                format_func=MODEL_LABELS.get, key="predict_models",
                                help="The zero, naive and BG/NBD baselines always run.")
        c4, c5, c6 = st.columns(3)
        epochs = c4.slider("LSTM max epochs", 1, 100, 30, key="predict_epochs",
                           help="Training stops earlier when the validation loss stops improving.")
        hidden = c5.select_slider("LSTM hidden units", [8, 16, 32, 64], value=32, key="predict_hidden")
        device = c6.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key="predict_device",
                              help="auto picks CUDA, then Apple MPS, then the CPU.")
        submitted = st.form_submit_button("▶️ Run backtest", type="primary")
    return {"submitted": submitted, "cal_end": cal_end, "hold_end": hold_end, "period": period, "models": models,
            "epochs": epochs, "hidden": hidden, "device": device}


def _train(dataset: str, version: str, f: dict) -> None:
    """Run the backtest with live progress; keeps the result in this browser session."""
    cal_end, hold_end, period, models = f["cal_end"], f["hold_end"], f["period"], f["models"]
    epochs, hidden, device = f["epochs"], f["hidden"], f["device"]
    # Any click starts a new run of this script, which Streamlit stops the current
    # one for at its next progress update (between LSTM epochs); the last finished
    # backtest stays shown.
    st.button("⏹️ Stop training", key="predict_stop")
    bar = st.progress(0.0, text="Preparing features…")
    line = st.empty()
    stages = [m for m in MODEL_NAMES if m in set(models) | {"zero", "naive", "bgnbd"}]

    def on_progress(row: dict) -> None:
        done = stages.index(row["stage"]) if row["stage"] in stages else 0
        frac = done / len(stages)
        if row.get("status") == "epoch":
            frac += (row["epoch"] / max(row["epochs"], 1)) / len(stages)
            bar.progress(min(frac, 1.0), text=f"LSTM epoch {row['epoch']}/{row['epochs']}")
            line.caption(f"train loss {row['train_loss']:.4f} · validation loss {row['val_loss']:.4f} · "
                         f"validation Gini {row['val_metric']:.3f} · at most {row['eta_s']:.0f} s left")
        elif row.get("status") == "start":
            bar.progress(min(frac, 1.0), text=f"Training {MODEL_LABELS[row['stage']]}…")

    try:
        result = run_backtest(cache.warehouse(), dataset, cal_end, hold_end, models, period=period, device=device,
                              lstm_params={"epochs": int(epochs), "hidden_size": int(hidden)},
                              progress=on_progress)
    except ValueError as exc:
        bar.empty()
        widgets.show_error(exc, "The backtest could not run")
        st.stop()
    bar.progress(1.0, text="Done")
    st.session_state[RESULT_KEY] = {"dataset": dataset, "version": version, "result": result}


def _comparison(res, info) -> None:
    """The metrics of every model on the holdout."""
    st.subheader("Comparison on the holdout")
    st.caption(
        f"Calibration to {info['calibration_end']}, holdout to {info['holdout_end']} ({info['holdout_days']} days); "
        f"{widgets.fmt_int(info['n_customers'])} customers, {widgets.fmt_int(info['holdout_purchasers'])} bought in "
        f"the holdout. Models trained on targets up to {info['calibration_end']} (training cut-off "
        f"{info['training_cutoff']}); early stopping on {widgets.fmt_int(info['n_validation'])} validation customers."
    )
    table = res.metrics.rename(index=MODEL_LABELS).rename(columns=METRIC_LABELS)
    st.dataframe(table, width="stretch", key="predict_table")
    ok = res.metrics[res.metrics["error"].isna()] if "error" in res.metrics else res.metrics
    if len(ok) and ok["normalized_gini"].notna().any():
        best = ok["normalized_gini"].idxmax()
        st.success(f"Best ranking of holdout value (normalized Gini): {MODEL_LABELS[best]} "
                   f"({ok.loc[best, 'normalized_gini']:.3f}).", icon="🏆")


def _tab_deciles(res) -> None:
    """Predicted vs actual mean per predicted decile."""
    choice = st.selectbox("Model", list(res.deciles), format_func=MODEL_LABELS.get, key="predict_decile_model",
                          index=len(res.deciles) - 1)
    d = res.deciles[choice]
    fig = go.Figure([
        go.Bar(name="Predicted mean", x=d["decile"], y=d["predicted_mean"]),
        go.Bar(name="Actual mean", x=d["decile"], y=d["actual_mean"]),
    ])
    fig.update_layout(barmode="group", xaxis_title="Predicted decile (1 = highest)", yaxis_title="Holdout value",
                      height=360, margin=dict(t=20, b=40))
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
        st.caption(f"Best epoch {lstm.best_epoch_} of {len(hist)}; device {lstm.device_}; "
                   f"{lstm.fit_seconds_:.1f} s.")


def _tab_importance(res) -> None:
    """LightGBM's share of total gain per feature."""
    gbm = res.models.get("lightgbm")
    if gbm is None:
        st.info("Run LightGBM to see feature importance.", icon="🌲")
    else:
        target = st.radio("Target", ["value", "churn"], horizontal=True, key="predict_imp_target")
        imp = gbm.feature_importance(target).head(15)
        fig = go.Figure(go.Bar(x=imp["gain_share"][::-1], y=imp["feature"][::-1], orientation="h"))
        fig.update_layout(xaxis_title="Share of total gain", height=420, margin=dict(t=20, b=40))
        st.plotly_chart(fig, key="predict_importance")


def _tab_explain(res) -> None:
    """One customer's LightGBM prediction and its drivers."""
    gbm = res.models.get("lightgbm")
    if gbm is None or res.features is None:
        st.info("Run LightGBM to explain individual predictions.", icon="🔍")
    else:
        top = res.predictions.sort_values("lightgbm_value", ascending=False).head(500)
        who = st.selectbox("Customer (500 highest predicted)", list(top.index), key="predict_customer")
        drivers = gbm.top_drivers(res.features.loc[[who]], k=5)
        st.metric("Predicted holdout value", widgets.fmt_money(float(top.loc[who, "lightgbm_value"])))
        st.dataframe(drivers[["rank", "feature", "feature_value", "contribution"]], hide_index=True,
                     key="predict_drivers")
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
    learned = [m for m in ("lightgbm", "lstm") if m in res.models]
    if saved_id is not None and learned:
        st.markdown("**Publish predictions** — score every customer as of the dataset's last day with a saved "
                    "model; segments and targeting then use these expected values and churn risks.")
        pick = st.selectbox("Model to publish", learned, format_func=MODEL_LABELS.get, key="predict_publish_model")
        if st.button("📣 Publish to customer scores", key="predict_publish"):
            from analytics.predict.registry import publish_predictions

            try:
                n = publish_predictions(cache.warehouse(), int(saved_id), pick, last_day, dataset=dataset)
            except ValueError as exc:
                widgets.show_error(exc, "The predictions could not be published")
            else:
                cache.changed(dataset)  # the published values are part of the prepared data: prepare again
                st.success(f"Published {MODEL_LABELS[pick]} predictions for {widgets.fmt_int(n)} customers "
                           f"(as of {last_day}, next {info['holdout_days']} days).", icon="📣")


def main() -> None:
    st.title("🔮 Predict")
    st.caption("Train value and churn predictors on data up to a cut-off and judge them on the holdout that "
               "follows, against the BG/NBD model and naive baselines.")
    dataset, _version, first_day, last_day = widgets.dataset_span_or_stop(needs_events=True)
    version = cache.version(dataset).events  # a publish changes the data version, not the events
    f = _form(first_day, last_day)
    if f["submitted"]:
        _train(dataset, version, f)
    held = st.session_state.get(RESULT_KEY)
    if not held or held["dataset"] != dataset:
        st.info("Pick a cut-off and a holdout, then run the backtest.", icon="🔮")
        st.stop()
    res = held["result"]
    info = res.info
    if held["version"] != version:
        st.warning("The dataset changed since this backtest ran; run it again for current figures.", icon="⚠️")
    _comparison(res, info)
    tabs = st.tabs(["📊 Deciles", "📉 Learning curves", "🌲 Feature importance", "🔍 Explain a customer", "💾 Save"])
    with tabs[0]:
        _tab_deciles(res)
    with tabs[1]:
        _tab_curves(res)
    with tabs[2]:
        _tab_importance(res)
    with tabs[3]:
        _tab_explain(res)
    with tabs[4]:
        _tab_save(res, info, dataset, last_day)


main()
