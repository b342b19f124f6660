"""AppTest: on the Predict page the Ensemble, compared beside LightGBM, can be published like it; the
Value page then names it as the published model, and the expected CLV comes from its predictions."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analytics import prepare
from analytics.predict import registry
from tests.dashboard.conftest import APP, insert_events
from tests.predict.test_backtest import cdnow_events
from tests.predict.test_ensemble import CAL, HOLD


def test_the_ensemble_is_published_from_the_page_and_used(app_wh):
    ev = cdnow_events()
    insert_events(app_wh, "cdnow", [(c, t.to_pydatetime(), "purchase", None, float(r)) for c, t, r in
                                    zip(ev["customer_id"], ev["event_time"], ev["revenue"])])
    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page("views/predict.py").run()
    assert not at.exception, at.exception
    at.date_input(key="predict_cal_end").set_value(dt.date.fromisoformat(CAL))
    at.date_input(key="predict_hold_end").set_value(dt.date.fromisoformat(HOLD))
    at.multiselect(key="predict_models").set_value(["lightgbm"])
    at.button(key="predict_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    at.button(key="predict_save").click().run()
    assert not at.exception, at.exception
    publish = at.selectbox(key="predict_publish_model")
    assert publish.options == ["LightGBM", "Ensemble"], publish.options
    publish.set_value("ensemble").run()
    assert any("blends them with the weights chosen on the validation window" in c.value for c in at.caption)
    at.button(key="predict_publish").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("Published Ensemble predictions for ") for s in at.success), \
        [s.value for s in at.success]

    pub = registry.published_predictions(app_wh, "cdnow")
    assert len(pub) > 0 and (pub["model"] == "ensemble").all()
    run_id = int(pub["run_id"].iloc[0])
    scored = registry.score_customers(app_wh, run_id, "ensemble", HOLD)  # the same as of the last day
    np.testing.assert_allclose(pub.loc[scored.index.astype(str), "expected_value"].to_numpy(),
                               scored["expected_value"].to_numpy(), rtol=1e-9)

    at.switch_page("views/value.py").run()
    assert not at.exception, at.exception
    notes = [c.value for c in at.caption if "published model" in c.value]
    assert any("“Ensemble”" in n and f"run {run_id}" in n for n in notes), notes
    metrics = {m.label: m for m in at.metric}
    total = metrics["Expected CLV, total"]
    assert "(here: published model predictions" in total.help, total.help
    vals = prepare.values(app_wh, "cdnow")
    assert (vals.set_axis(vals.index.astype(str)).loc[pub.index, "expected_clv_source"] == "published model").all()
    shown = float(total.value.replace(",", "").lstrip("$€£").split()[0].replace("$", ""))
    assert shown == pytest.approx(float(vals["expected_clv"].sum()), rel=1e-3)
