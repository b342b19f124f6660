"""AppTest: the Value page on a log whose repeat buyers' orders are all worth 0 (no spend model can
be fitted) still shows the purchase model's diagnostics, with a note saying why the spend model is
missing, and their numbers are those of a direct BG/NBD fit."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analytics import diagnostics
from analytics.clv import DAYS_PER_MONTH, fit_purchase_model_summary_robust
from analytics.summary import customer_summary

from tests.dashboard.conftest import APP
from tests.test_spend_model_failure import _free_orders


def _z(chart) -> np.ndarray:
    """The heatmap's cells (plotly writes them as a list or as a binary array)."""
    z = json.loads(chart.proto.spec)["data"][0]["z"]
    if isinstance(z, dict):
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(
            [int(n) for n in str(z["shape"]).split(",")])
    return np.asarray(z, dtype=float)


def test_value_page_shows_the_purchase_model_without_a_spend_model(app_wh):
    _free_orders(app_wh)
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("views/value.py").run()
    assert not at.exception, at.exception
    at.selectbox(key="value_purchase_model").set_value("bgnbd").run()
    assert not at.exception, at.exception

    infos = [i.value for i in at.info]
    note = [i for i in infos if "spend model could not be fitted" in i]
    assert note and "none of the 40 repeat buyers has a positive spend" in note[0], infos
    assert not any("The models could not be fitted on these data" in i for i in infos), infos

    last = app_wh.cursor().execute("SELECT CAST(max(event_time) AS DATE) FROM events").fetchone()[0]
    s = customer_summary(app_wh, "free", last, "days", persist=False)
    s = s[s["n_orders"] > 0]
    bg = fit_purchase_model_summary_robust(s, "bgnbd", random_state=0)
    metrics = {m.label: m.value for m in at.metric}
    for name in ("r", "alpha", "a", "b"):
        assert float(metrics[name]) == pytest.approx(bg.params_[name], rel=1e-3), (name, metrics)
    assert float(metrics["log-likelihood"].replace(",", "")) == pytest.approx(bg.log_likelihood_, abs=0.5)
    assert "Gamma-Gamma p" not in metrics

    charts = {c.key: c for c in at.get("plotly_chart")}
    assert {"value_pa_matrix", "value_ep_matrix"} <= set(charts), list(charts)
    max_t = float(s["T"].max())
    max_f = int(min(max(int(np.nanquantile(s["frequency"], 0.99)), 1), 40))
    want = diagnostics.probability_alive_matrix(bg, max_f, max_t).to_numpy(dtype=float)
    got = _z(charts["value_pa_matrix"])
    assert got.shape == want.shape and np.nanstd(want) > 0  # not a constant: the test can fail
    np.testing.assert_allclose(got, want, rtol=1e-6)
    want = diagnostics.expected_purchases_matrix(bg, max_f, max_t, t=12 * DAYS_PER_MONTH).to_numpy(dtype=float)
    np.testing.assert_allclose(_z(charts["value_ep_matrix"]), want, rtol=1e-6)
