"""build_report on the bundled sample, checked against pandas computations on the raw events."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.reports import ReportError, build_report
from tests.reports.conftest import AS_OF, HTML_DESCRIPTION, HTML_NAME


@pytest.fixture(scope="module")
def snap(sample_wh):
    return build_report(sample_wh, "sample", AS_OF, segment=HTML_NAME, now="2026-01-02 03:04:05")


@pytest.fixture(scope="module")
def truth(sample_events):
    """Members (net revenue >= 500 up to the end of AS_OF) and per-customer figures, from the events."""
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    ev = sample_events[sample_events["event_time"] < end].copy()
    signed = np.where(ev["event_type"] == "purchase", ev["revenue"],
                      np.where(ev["event_type"] == "return", -ev["revenue"], 0.0))
    ev["net"] = np.nan_to_num(signed.astype(float))
    net = ev.groupby("customer_id")["net"].sum()
    buys = ev[ev["event_type"] == "purchase"]
    days = buys.assign(day=buys["event_time"].dt.normalize()).groupby("customer_id")["day"].nunique()
    days = days.reindex(net.index, fill_value=0)
    members = net.index[net >= 500]
    return {"ev": ev, "net": net, "days": days, "members": set(members), "end": end}


def test_snapshot_is_json_and_describes_the_segment(snap):
    assert json.loads(json.dumps(snap, allow_nan=False)) == snap
    assert snap["kind"] == "segment" and snap["dataset"] == "sample" and snap["as_of"] == AS_OF
    assert snap["created_at"] == "2026-01-02T03:04:05"
    # the file and the in-app report say when in words, not in ISO with a "T"
    from analytics.reports import render_html

    head = render_html(snap).split("</header>")[0]
    assert "report made 2 Jan 2026, 03:04 UTC" in head and "T03:04" not in head, head[-300:]
    assert f"data as of {pd.Timestamp(AS_OF).day} {pd.Timestamp(AS_OF):%b %Y}" in head
    assert snap["subject"]["name"] == HTML_NAME
    assert snap["subject"]["description"] == HTML_DESCRIPTION
    assert snap["subject"]["definition_text"] == "Net revenue >= 500"
    assert snap["title"] == "Segment report: " + HTML_NAME


def test_size_and_value_match_pandas(snap, truth):
    net, members, days = truth["net"], truth["members"], truth["days"]
    m = net.index.isin(list(members))
    assert snap["size"]["customers"] == len(members) > 0
    assert snap["size"]["all_customers"] == len(net)
    assert snap["size"]["share"] == pytest.approx(len(members) / len(net))
    seg, all_ = snap["value"]["segment"], snap["value"]["all"]
    assert seg["net_revenue"] == pytest.approx(net[m].sum())
    assert all_["net_revenue"] == pytest.approx(net.sum())
    assert seg["revenue_share"] == pytest.approx(net[m].sum() / net.sum())
    assert seg["avg_net_revenue"] == pytest.approx(net[m].mean())
    assert seg["purchase_frequency"] == pytest.approx(days[m].mean())
    assert all_["purchase_frequency"] == pytest.approx(days.mean())
    assert seg["repeat_rate"] == pytest.approx((days[m] >= 2).mean())
    ev = truth["ev"]
    gross = ev[(ev["event_type"] == "purchase") & ev["customer_id"].isin(members)]["revenue"].sum()
    assert seg["avg_order_value"] == pytest.approx(gross / days[m].sum())
    # the segment is the high-value end: its averages sit above everyone's
    assert seg["avg_clv"] > all_["avg_clv"] and seg["avg_expected_clv"] > all_["avg_expected_clv"]
    assert snap["value"]["expected_clv_source"].startswith("BG/NBD")


def test_trend_matches_pandas(snap, truth):
    ev = truth["ev"]
    tr = snap["trend"]
    assert 1 <= len(tr["months"]) <= 24 and tr["months"][-1] == AS_OF[:7]
    assert tr["partial_last_month"] is False  # 30 September is the month's last day
    ev = ev.assign(month=ev["event_time"].dt.strftime("%Y-%m"))
    mem = ev[ev["customer_id"].isin(truth["members"])]
    active = mem.groupby("month")["customer_id"].nunique()
    buyers = mem[mem["event_type"] == "purchase"].groupby("month")["customer_id"].nunique()
    revenue = mem.groupby("month")["net"].sum()
    all_active = ev.groupby("month")["customer_id"].nunique()
    for i, month in enumerate(tr["months"]):
        assert tr["active_customers"][i] == active.get(month, 0), month
        assert tr["buyers"][i] == buyers.get(month, 0), month
        assert tr["revenue"][i] == pytest.approx(revenue.get(month, 0.0), abs=0.01), month
        assert tr["all_active_customers"][i] == all_active.get(month, 0), month
    # the sample starts in January 2024: the window starts there, not 24 months back
    assert tr["months"][0] == max(ev["month"].min(), "2023-10")


def test_top_categories_items_and_concentration_match_pandas(snap, truth):
    ev = truth["ev"]
    mem = ev[ev["customer_id"].isin(truth["members"]) & ev["event_type"].isin(["purchase", "return"])]
    by_cat = mem.groupby("category")["net"].sum().sort_values(ascending=False)
    got = snap["top_categories"]
    assert [r["category"] for r in got] == list(by_cat.index[:10])
    assert [r["revenue"] for r in got] == pytest.approx(list(by_cat.iloc[:10]))
    assert sum(r["share"] for r in got) == pytest.approx(by_cat.iloc[:10].sum() / mem["net"].sum())
    by_item = mem.groupby("item_id")["net"].sum().sort_values(ascending=False)
    assert [r["revenue"] for r in snap["top_items"]] == pytest.approx(list(by_item.iloc[:10]))
    values = np.sort(truth["net"][truth["net"].index.isin(list(truth["members"]))].clip(lower=0).to_numpy())[::-1]
    k10 = int(np.ceil(0.1 * len(values)))
    assert snap["concentration"]["top10_share"] == pytest.approx(values[:k10].sum() / values.sum())
    lorenz = snap["concentration"]["lorenz"]
    assert len(lorenz["customer_share"]) <= 200
    assert lorenz["customer_share"][0] == 0 and lorenz["value_share"][-1] == pytest.approx(1.0)


def test_profile_is_relative_to_all_customers(snap, truth):
    prof = {p["feature"]: p for p in snap["profile"]}
    net = truth["net"]
    m = net.index.isin(list(truth["members"]))
    assert prof["net_revenue"]["segment"] == pytest.approx(net[m].mean())
    assert prof["net_revenue"]["all"] == pytest.approx(net.mean())
    assert prof["net_revenue"]["ratio"] == pytest.approx(net[m].mean() / net.mean())
    assert sum(r["segment_share"] for r in snap["rfm_mix"]) == pytest.approx(1.0)
    assert snap["predictor"] is None and snap["campaigns"] == [] or isinstance(snap["campaigns"], list)


def test_bad_requests_are_clear_errors(sample_wh):
    with pytest.raises(ReportError, match=rf"segment nobody has no customers as of {AS_OF}"):
        build_report(sample_wh, "sample", AS_OF, segment="nobody")
    with pytest.raises(ReportError, match="no saved segment 'ghost'"):
        build_report(sample_wh, "sample", AS_OF, segment="ghost")
    with pytest.raises(ReportError, match="no dataset named 'nope'"):
        build_report(sample_wh, "nope", AS_OF, segment=HTML_NAME)
    with pytest.raises(ReportError, match="not a date"):
        build_report(sample_wh, "sample", "yesterday-ish", segment=HTML_NAME)
    with pytest.raises(ReportError, match="either a saved segment or a saved campaign"):
        build_report(sample_wh, "sample", AS_OF)
    with pytest.raises(ReportError, match="no customers as of 2020-01-01"):
        build_report(sample_wh, "sample", "2020-01-01", segment=HTML_NAME)


def test_published_model_metrics_are_reported(sample_wh, truth):
    """A published model (rows written as the registry does) brings its run's metrics and
    the segment's mean predictions; the expected CLV then comes from the model."""
    cur = sample_wh.cursor()
    cur.execute("INSERT INTO predictor_runs VALUES (901, 'sample', DATE '2025-06-30', DATE '2025-09-30', 'month', "
                "'{}', NULL, TIMESTAMP '2025-10-01')")
    cur.execute("INSERT INTO predictor_models VALUES (901, 'sample', 'lightgbm', '{}', "
                "'{\"mae\": 12.5, \"auc\": 0.81}', 'cpu', 1.0, NULL, NULL)")
    cur.execute("INSERT INTO predictor_models VALUES (901, 'sample', 'bgnbd', '{}', "
                "'{\"mae\": 15.0, \"auc\": 0.7}', 'cpu', 0.1, NULL, NULL)")
    ids = [r[0] for r in cur.execute("SELECT DISTINCT customer_id FROM events WHERE dataset = 'sample' "
                                     "ORDER BY 1").fetchall()]
    rows = [("sample", c, float(i % 7), (i % 10) / 10, 901, "lightgbm", "2025-09-30", 90, "2025-10-01")
            for i, c in enumerate(ids)]
    cur.executemany("INSERT INTO customer_predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    try:
        s = build_report(sample_wh, "sample", AS_OF, segment=HTML_NAME)
        p = s["predictor"]
        assert p["model"] == "lightgbm" and p["run_id"] == 901 and p["horizon_days"] == 90
        models = {m["model"]: m for m in p["models"]}
        assert models["lightgbm"]["published"] and not models["bgnbd"]["published"]
        assert models["lightgbm"]["metrics"] == {"mae": 12.5, "auc": 0.81}
        pv = pd.Series([float(i % 7) for i in range(len(ids))], index=ids)
        pv = pv[pv.index.isin(truth["net"].index)]  # the customers known at the as-of date
        assert p["all_predicted_value"] == pytest.approx(pv.mean())
        assert s["value"]["expected_clv_source"].startswith("published model")
        assert s["value"]["all"]["avg_expected_clv"] == pytest.approx(pv.mean())
    finally:
        cur.execute("DELETE FROM customer_predictions WHERE run_id = 901")
        cur.execute("DELETE FROM predictor_models WHERE run_id = 901")
        cur.execute("DELETE FROM predictor_runs WHERE id = 901")


def test_expected_clv_given_by_the_caller(sample_wh):
    from analytics.explorer import build_frame

    frame = build_frame(sample_wh, "sample", AS_OF)
    values = np.arange(len(frame), dtype=float)
    s = build_report(sample_wh, "sample", AS_OF, segment=HTML_NAME, frame=frame, expected=(values, "given", None))
    mask = (frame["net_revenue"] >= 500).to_numpy()
    assert s["value"]["expected_clv_source"] == "given"
    assert s["value"]["segment"]["avg_expected_clv"] == pytest.approx(values[mask].mean())
    shuffled = pd.Series(values, index=frame.index)[::-1]  # a Series aligns by customer id
    s2 = build_report(sample_wh, "sample", AS_OF, segment=HTML_NAME, frame=frame, expected=(shuffled, "given", None))
    assert s2["value"]["segment"]["avg_expected_clv"] == pytest.approx(values[mask].mean())
    s3 = build_report(sample_wh, "sample", AS_OF, segment=HTML_NAME, frame=frame,
                      expected=(None, None, "expected CLV (BG/NBD) not available: test"))
    assert s3["value"]["segment"]["avg_expected_clv"] is None and s3["notes"] == [
        "expected CLV (BG/NBD) not available: test"]
    with pytest.raises(ReportError, match="do not match the customer frame"):
        build_report(sample_wh, "sample", AS_OF, segment=HTML_NAME, frame=frame, expected=(values[:-1], "x", None))
