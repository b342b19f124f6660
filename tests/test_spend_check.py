"""The spend model's check: its mean for a customer with no repeat order against the repeat buyers'
average, stored with the fit, in plain words on a poor fit and in ``valuescope score``'s sidecar."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics import diagnostics, scores
from analytics.cli import main
from analytics.clv import SPEND_CHECK_FACTOR, spend_check
from analytics.clv_models import GammaGammaModel
from analytics.warehouse import Warehouse


def _gamma_gamma_draws(p, q, v, n, seed):
    """Repeat buyers drawn from the Gamma-Gamma model: (frequency, per-order values incl. the first)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 6, n)
    nu = rng.gamma(q, 1.0 / v, n)
    orders = [rng.gamma(p, 1.0 / nu[i], x[i] + 1) for i in range(n)]
    return x, orders


def _repeat_means(orders):
    return np.array([o[1:].mean() for o in orders])


def test_a_sane_fit_passes_the_check():
    # CDNOW's published parameters: the model's mean and the repeat buyers' average agree
    x, orders = _gamma_gamma_draws(6.25, 3.74, 15.44, 1500, seed=0)
    m = _repeat_means(orders)
    gg = GammaGammaModel().fit(x, m)
    check = gg.spend_check_
    assert check["poor_fit"] is False
    assert check["model_mean"] == pytest.approx(gg.p_ * gg.v_ / (gg.q_ - 1.0), rel=1e-12)
    assert check["observed_mean"] == pytest.approx(m.mean(), rel=1e-12)
    assert check["observed_median"] == pytest.approx(np.median(m), rel=0.01)
    assert abs(check["ratio"] - 1.0) < 0.05 and check["q"] == gg.q_
    assert diagnostics.spend_check_warning(check, "EUR") is None
    assert scores.spend_check(gg)["warning"] is None


def test_a_long_tailed_fit_is_called_poor_in_plain_words():
    # q = 1.1: the mean p * gamma / (q - 1) hangs on a tail of big spenders the data barely show
    x, orders = _gamma_gamma_draws(2.0, 1.1, 10.0, 1500, seed=0)
    m = _repeat_means(orders)
    gg = GammaGammaModel().fit(x, m)
    import lifetimes

    ref = lifetimes.GammaGammaFitter(penalizer_coef=0.0).fit(pd.Series(x), pd.Series(m))
    rp, rq, rv = (ref.params_[k] for k in ("p", "q", "v"))
    model_mean, observed = rp * rv / (rq - 1.0), float(np.mean(m))
    check = gg.spend_check_
    assert check["model_mean"] == pytest.approx(model_mean, rel=1e-4)
    assert check["observed_mean"] == pytest.approx(observed, rel=1e-12)
    assert check["ratio"] == pytest.approx(model_mean / observed, rel=1e-4)
    assert check["ratio"] > SPEND_CHECK_FACTOR and check["poor_fit"] is True
    said = diagnostics.spend_check_warning(check, "EUR")
    assert said.startswith(f"The spend model expects €{model_mean:,.2f} per order from a customer with no "
                           f"repeat order, {model_mean / observed:.1f}x the €{observed:,.2f} repeat buyers average")
    assert "fits this data poorly" in said and f"q = {rq:.3g}" in said
    # stored with the fit: a saved and loaded model keeps it
    again = GammaGammaModel.from_dict(json.loads(json.dumps(gg.to_dict())))
    assert again.spend_check_ == check


def test_the_rule_both_ways_and_weights():
    m = np.array([10.0, 20.0, 30.0])
    assert spend_check(20.0 * SPEND_CHECK_FACTOR, 1.5, m)["poor_fit"] is False  # exactly the factor
    assert spend_check(20.0 * SPEND_CHECK_FACTOR * 1.01, 1.5, m)["poor_fit"] is True
    low = spend_check(20.0 / SPEND_CHECK_FACTOR / 1.01, 3.0, m)
    assert low["poor_fit"] is True and "below the 20.00 repeat buyers average" in diagnostics.spend_check_warning(low)
    weighted = spend_check(20.0, 3.0, m, weights=[1, 1, 2])
    assert weighted["observed_mean"] == pytest.approx((10 + 20 + 60) / 4) and weighted["repeat_buyers"] == 4
    assert weighted["observed_median"] == 20.0 or weighted["observed_median"] == 30.0
    assert spend_check(5.0, None, [])["poor_fit"] is False  # no repeat buyers: nothing to compare


def test_score_sidecar_says_the_spend_model_fits_poorly(tmp_path, capsys):
    x, orders = _gamma_gamma_draws(2.0, 1.1, 10.0, 600, seed=5)
    rng = np.random.default_rng(1)
    rows = []
    for i, values in enumerate(orders):
        days = np.sort(rng.choice(300, size=len(values), replace=False))
        rows += [(f"c{i}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(d)), float(v))
                 for d, v in zip(days, values)]
    for i in range(200):  # one-time buyers
        rows.append((f"o{i}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(300))),
                     float(rng.gamma(2.0, 10.0))))
    events = pd.DataFrame(rows, columns=["customer_id", "event_time", "revenue"])
    events["dataset"], events["event_type"] = "shop", "purchase"
    path = tmp_path / "w.duckdb"
    wh = Warehouse(path)
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES ('shop')")
        tx.register("incoming", events)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) "
                   "SELECT dataset, customer_id, event_time, event_type, revenue FROM incoming")
    wh.close()
    out = tmp_path / "scores.csv"
    rc = main(["score", "--db", str(path), "--dataset", "shop", "--as-of", "2024-12-31", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    check = json.loads((tmp_path / "scores.csv.json").read_text())["model_params"]["spend_check"]
    # independent figures: each repeat buyer's average order after the first, and lifetimes' fit on them
    import lifetimes

    m = pd.Series(_repeat_means(orders))
    ref = lifetimes.GammaGammaFitter(penalizer_coef=0.0).fit(pd.Series(x), m)
    model_mean = ref.params_["p"] * ref.params_["v"] / (ref.params_["q"] - 1.0)
    assert check["observed_mean"] == pytest.approx(m.mean(), rel=1e-9)
    assert check["model_mean"] == pytest.approx(model_mean, rel=1e-4)
    assert check["poor_fit"] is True and check["ratio"] > SPEND_CHECK_FACTOR
    assert "it fits this data poorly" in check["warning"] and f"{model_mean / m.mean():.1f}x" in check["warning"]
    assert f"warning: {check['warning']}" in captured.err
