"""AppTest: the Campaigns page on the bundled sample — counts equal analytics.campaigns called
directly, the control share holds, downloads hold exactly the table's rows (formula cells
neutralized), saving stores the exact list, the read-out shows the library's uplift, and
each bad input is a message (never an exception element)."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics import campaigns as camp
from analytics import formatting
from analytics.campaigns.export import send_list
from analytics.currency import dataset_currency
from analytics.bootstrap import SAMPLE_DATASET, ensure_default_dataset
from analytics.explorer import build_frame
from analytics.segments import store
from tests.dashboard.conftest import APP, TIMEOUT

PAGE = "views/campaigns.py"
# a segment name that is both HTML and a spreadsheet formula: shown as text, exported neutralized
SEGMENT = "=HYPERLINK(\"x\") <b>big</b>"
THRESHOLD = 500


@pytest.fixture
def sample_wh(app_wh):
    ensure_default_dataset(app_wh)
    store.save_segment(app_wh, SEGMENT, {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">=", "value": THRESHOLD}]})
    return app_wh


@pytest.fixture
def downloads(monkeypatch):
    """The data callables the page hands to st.download_button, by widget key."""
    import streamlit as st
    from streamlit.delta_generator import DeltaGenerator

    captured: dict = {}
    real = DeltaGenerator.download_button

    def spy(self, label, data, *args, **kwargs):
        captured[kwargs.get("key")] = data
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    bound = st.download_button

    def spy_st(label, data, *args, **kwargs):
        captured[kwargs.get("key")] = data
        return bound(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", spy_st)
    return captured


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    _ok(at)
    return at


def _ok(at) -> None:
    assert not at.exception, at.exception


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _errors(at) -> list[str]:
    # messages may quote user text and are Markdown-escaped: compare without the escapes
    return [e.value.replace("\\", "") for e in at.error]


TABS = {"camp_table": 0, "camp_saved_table": 1, "camp_saved_targets": 1, "camp_readout_table": 2, "camp_full_table": 0}
# on screen the lists have human titles (the downloads for analysis keep the machine names)
COLUMN = {"camp_table": "Ranking score", "camp_saved_table": "On the list", "camp_saved_targets": "Ranking score",
          "camp_readout_table": "Conversion uplift (pp)", "camp_full_table": "precision_vs_popularity"}


def _table(at, key: str) -> pd.DataFrame:
    """A table of the page by its role: the tab it sits in and a column only it has."""
    tab = at.tabs[TABS[key]]
    found = [d.value for d in tab.dataframe if COLUMN[key] in d.value.columns]
    assert len(found) == 1, [list(d.value.columns)[:4] for d in tab.dataframe]
    return found[0]


LIST_NAMES = ("rank", "customer_id", "segment", "group", "rfm_segment", "expected_clv", "churn_risk", "rank_score",
              "recommended_items")


def _list(at, key: str = "camp_table") -> pd.DataFrame:
    """A target list as shown (human titles) with the machine names back, for comparing with the library."""
    return _table(at, key).rename(columns={formatting.column_title(c): c for c in LIST_NAMES})


def _plotly_values(v) -> np.ndarray:
    """A trace's data array from the figure JSON (plotly writes numpy arrays as typed base64)."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def _frame(wh) -> pd.DataFrame:
    last = wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = ?",
                               [SAMPLE_DATASET]).fetchone()[0]
    return camp.value_columns(wh, build_frame(wh, SAMPLE_DATASET, pd.Timestamp(last).date()))


def _spec(frame, **kw) -> camp.CampaignSpec:
    base = dict(name="direct", dataset=SAMPLE_DATASET, as_of=frame.attrs["as_of"], segments=[SEGMENT],
                max_contacts=300, control_share=0.2, seed=42)
    base.update(kw)
    return camp.CampaignSpec(**base)


def _build(at, *, max_contacts=300, control=20, recs=0) -> None:
    at.multiselect(key="camp_segments").set_value([SEGMENT])
    at.number_input(key="camp_max").set_value(max_contacts)
    at.slider(key="camp_control").set_value(control)
    at.number_input(key="camp_recs").set_value(recs)
    at.run()
    _ok(at)
    assert not _errors(at), _errors(at)


def test_counts_table_and_exports_equal_the_library(sample_wh, downloads):
    frame = _frame(sample_wh)
    direct = camp.select_targets(sample_wh, frame, _spec(frame))
    n_t = int((direct["group"] == "treatment").sum())
    n_c = int((direct["group"] == "control").sum())
    eligible = int((frame["net_revenue"] >= THRESHOLD).sum())
    assert direct.attrs["eligible"] == eligible and n_t == 300

    at = _open()
    _build(at)
    m = _metrics(at)
    assert _int(m["Eligible customers"]) == eligible
    assert _int(m["Contacted"]) == n_t
    assert _int(m["Control (not contacted)"]) == n_c
    # control share 20 % of the list, within rounding
    assert abs(n_c / (n_t + n_c) - 0.20) <= 1.0 / (n_t + n_c)

    table = _list(at)
    assert table["customer_id"].tolist() == direct["customer_id"].tolist()
    assert table["group"].tolist() == direct["group"].tolist()
    assert table["rank"].tolist() == list(range(1, len(direct) + 1))
    assert set(table["segment"]) == {SEGMENT}
    assert not any("_" in c for c in _table(at, "camp_table").columns)  # human titles on screen

    # expected outcome at the data-derived defaults: the library's numbers
    rate, value = camp.default_response(frame.loc[direct["customer_id"]], _spec(frame), wh=sample_wh)
    exp = camp.expected_outcome(direct, round(100 * rate, 2) / 100, round(value, 2), 1.0)
    cur = dataset_currency(sample_wh, SAMPLE_DATASET).currency
    assert m["Expected revenue"] == formatting.money(exp["expected_revenue"], cur)
    assert m["Cost"] == formatting.money(exp["cost"], cur) == formatting.money(300.0, cur)
    assert m["Incremental return"] == formatting.money(exp["incremental_return"], cur)
    assert len(at.get("plotly_chart")) == 1

    # CSV: exactly the table's rows in its order, formula cells neutralized; BOM on request
    csv = downloads["camp_dl_csv"]()
    back = pd.read_csv(io.BytesIO(csv), dtype={"customer_id": str}, keep_default_na=False)
    assert back["customer_id"].tolist() == table["customer_id"].tolist()
    assert back["group"].tolist() == table["group"].tolist()
    assert set(back["segment"]) == {"'" + SEGMENT}
    assert not csv.startswith(b"\xef\xbb\xbf")
    at.checkbox(key="camp_dl_bom").check().run()
    _ok(at)
    csv_bom = downloads["camp_dl_csv"]()
    assert csv_bom.startswith(b"\xef\xbb\xbf")
    assert pd.read_csv(io.BytesIO(csv_bom), dtype={"customer_id": str}, encoding="utf-8-sig")[
        "customer_id"].tolist() == table["customer_id"].tolist()
    # Parquet: same rows, values as they are
    pq = pd.read_parquet(io.BytesIO(downloads["camp_dl_parquet"]()))
    assert pq["customer_id"].tolist() == table["customer_id"].tolist()
    assert set(pq["segment"]) == {SEGMENT}
    assert np.allclose(pq["expected_clv"].to_numpy(float), table["expected_clv"].to_numpy(float))

    # send-ready files: the treatment list to upload and the control list are the library's, money rounded
    kw = dict(dataset=SAMPLE_DATASET, as_of=direct.attrs.get("as_of") or frame.attrs["as_of"], currency=cur)
    for group in ("treatment", "control"):
        got = pd.read_csv(io.BytesIO(downloads[f"camp_dl_{group}"]()), dtype={"customer_id": str},
                          keep_default_na=False)
        want = send_list(sample_wh, direct, group=group, headers="tool", **kw)
        assert got["customer_id"].tolist() == want["customer_id"].tolist()
        assert len(got) == (n_t if group == "treatment" else n_c)
        assert "group" not in got.columns and "expected_value" in got.columns
        money = got["expected_value"].astype(float)
        assert np.allclose(money, money.round(formatting.minor_units(cur)))
        assert np.allclose(money, want["expected_value"].astype(float))
    at.radio(key="camp_dl_headers").set_value("people").run()
    _ok(at)
    people = pd.read_csv(io.BytesIO(downloads["camp_dl_treatment"]()), dtype=str, keep_default_na=False)
    want = send_list(sample_wh, direct, group="treatment", headers="people", **kw)
    assert list(people.columns) == list(want.columns) and "Customer" in people.columns
    # a customer attribute passed through (the sample keeps the country)
    at.multiselect(key="camp_dl_attrs").set_value(["country"]).run()
    _ok(at)
    with_country = pd.read_csv(io.BytesIO(downloads["camp_dl_treatment"]()), dtype=str, keep_default_na=False)
    want = send_list(sample_wh, direct, group="treatment", headers="people", attributes=["country"], **kw)
    assert list(with_country.columns) == list(want.columns) and "Country" in with_country.columns
    assert with_country["Country"].tolist() == want["Country"].fillna("").astype(str).tolist()


def test_save_stores_the_exact_list_then_readout_equals_library(sample_wh, downloads):
    at = _open()
    _build(at, max_contacts=400, control=25)
    table = _list(at)
    name = "<img src=x onerror=alert(1)> spring"
    at.text_input(key="camp_name").input(name)
    at.text_area(key="camp_desc").input("=1+1 <b>desc</b>")
    at.button(key="camp_save").click().run()
    _ok(at)
    assert not _errors(at), _errors(at)
    assert any("spring" in s.value and "\\<img" in s.value for s in at.success), [s.value for s in at.success]
    saved = camp.list_campaigns(sample_wh, SAMPLE_DATASET)
    assert saved["name"].tolist() == [name]
    cid = int(saved["id"].iloc[0])
    stored = camp.campaign_targets(sample_wh, cid)
    assert stored["customer_id"].tolist() == table["customer_id"].tolist()
    assert stored["group"].tolist() == table["group"].tolist()
    assert camp.get_campaign(sample_wh, cid)["spec"]["control_share"] == pytest.approx(0.25)
    # the saved list is shown as plain text and re-exported as stored
    assert _table(at, "camp_saved_table")["Name"].tolist() == [name]
    assert all(not md.proto.allow_html for md in at.markdown)
    assert not any(name in md.value for md in at.markdown)
    re_csv = pd.read_csv(io.BytesIO(downloads["camp_saved_dl_csv"]()), dtype={"customer_id": str})
    assert re_csv["customer_id"].tolist() == stored["customer_id"].tolist()

    # outcomes: treatment converts more often; two ids that are not in the campaign
    rng = np.random.default_rng(7)
    is_t = (stored["group"] == "treatment").to_numpy()
    conv = rng.random(len(stored)) < np.where(is_t, 0.30, 0.15)
    revenue = np.where(conv, rng.integers(20, 200, len(stored)), 0).astype(float)
    outcomes = pd.DataFrame({"customer_id": stored["customer_id"], "converted": conv.astype(int),
                             "revenue": revenue})
    outcomes = pd.concat([outcomes, pd.DataFrame({"customer_id": ["NOPE<1>", "NOPE2"], "converted": [1, 0],
                                                  "revenue": [5.0, 0.0]})], ignore_index=True)
    data = outcomes.to_csv(index=False).encode()
    expected = camp.readout(stored, camp.read_outcomes(io.BytesIO(data)))
    at.file_uploader(key="camp_outcomes").set_value(("outcomes.csv", data, "text/csv")).run()
    _ok(at)
    assert not _errors(at), _errors(at)
    m = _metrics(at)
    o = expected["overall"]
    cur = dataset_currency(sample_wh, SAMPLE_DATASET).currency
    assert m["Conversion uplift"] == f"{100 * o['uplift_conversion']:+.2f} pp"
    assert m["Conversion, contacted"] == f"{100 * o['conversion_t']:.1f} %"
    assert m["Conversion, control"] == f"{100 * o['conversion_c']:.1f} %"
    assert m["Revenue uplift per customer"] == ("+" if o["uplift_revenue"] > 0 else "") + formatting.money(
        o["uplift_revenue"], cur)
    assert m["Revenue per customer, contacted"] == formatting.money(o["revenue_per_customer_t"], cur)
    assert any(f"[{100 * o['ci95'][0]:+.2f}, {100 * o['ci95'][1]:+.2f}] pp" in c.value for c in at.caption)
    ro = _table(at, "camp_readout_table")
    assert ro["Segment"].tolist() == ["All"] + [r["segment"] for r in expected["per_segment"]]
    assert ro["Conversion uplift (pp)"].iloc[0] == pytest.approx(100 * o["uplift_conversion"])
    assert ro["p-value (conversion)"].iloc[0] == pytest.approx(o["p_value"])
    assert ro["95 % interval from (pp)"].iloc[0] == pytest.approx(100 * o["ci95"][0])
    unknown = [w.value for w in at.warning if "not in this campaign" in w.value]
    assert len(unknown) == 1 and unknown[0].startswith("2 customer id(s)") and "NOPE\\<1\\>" in unknown[0], unknown
    # keep them: the stored read-out is the same
    at.button(key="camp_outcomes_save").click().run()
    _ok(at)
    again = camp.campaign_readout(sample_wh, cid)
    assert again["overall"]["uplift_conversion"] == pytest.approx(o["uplift_conversion"])
    assert again["unknown_count"] == 2
    # the next campaign's default response comes from this measured uplift
    if o["uplift_conversion"] > 0 and not o["too_small"]:
        at.run()
        _ok(at)
        assert any("measured uplift of the earlier campaign" in c.value for c in at.caption)

    # delete with confirmation
    at.button(key="camp_delete").click().run()
    _ok(at)
    assert len(camp.list_campaigns(sample_wh)) == 1
    at.button(key="camp_delete_yes").click().run()
    _ok(at)
    assert camp.list_campaigns(sample_wh).empty


def test_recommendations_equal_the_library(sample_wh):
    from analytics.recommend import campaign_recommender

    frame = _frame(sample_wh)
    # what select_targets fits when given no recommender: the validation winner before the as-of day
    model = campaign_recommender(sample_wh, SAMPLE_DATASET, pd.Timestamp(frame.attrs["as_of"]) + pd.Timedelta(days=1))
    direct = camp.select_targets(sample_wh, frame, _spec(frame, max_contacts=50, recommendations=3),
                                 recommender=model)
    at = _open()
    _build(at, max_contacts=50, recs=3)
    table = _list(at)
    assert table["customer_id"].tolist() == direct["customer_id"].tolist()
    assert table["recommended_items"].tolist() == direct["recommended_items"].tolist()
    assert all(len(s.split("; ")) == 3 for s in table["recommended_items"])
    # the page says which recommender campaigns use (the validation winner) and its margin over popularity
    said = [c.value for c in at.caption if "Recommended items from" in c.value]
    # the label is markdown-escaped in the caption (it holds parentheses and hyphens)
    from dashboard.widgets import md_escape

    assert len(said) == 1 and md_escape(model.choice_["label"]) in said[0]
    r = model.choice_["ratios_vs_popularity"][model.choice_["model"]]
    assert f"x{r['precision']:.2f}" in said[0] and f"x{r['recall']:.2f}" in said[0]
    # ranking by a score the user picks: the column picker appears, the list follows the library
    at.selectbox(key="camp_ranking").set_value("score").run()
    _ok(at)
    at.selectbox(key="camp_score_col").set_value("behaviour_score").run()
    _ok(at)
    by_score = camp.select_targets(sample_wh, frame, _spec(frame, max_contacts=50, ranking="score",
                                                           score_column="behaviour_score"))
    table = _list(at)
    assert table["customer_id"].tolist() == by_score["customer_id"].tolist()
    assert table["customer_id"].tolist() != direct["customer_id"].tolist()
    assert table["rank_score"].tolist() == pytest.approx(by_score["rank_score"].tolist())
    # the holdout test shows evaluate_holdout's figures (item-CF against popularity)
    from analytics.recommend import evaluate_holdout

    as_of = pd.Timestamp(frame.attrs["as_of"])
    from dashboard.cache import PAGE_RECOMMENDERS

    ev = evaluate_holdout(sample_wh, SAMPLE_DATASET, as_of - pd.Timedelta(days=89), as_of + pd.Timedelta(days=1),
                          families=PAGE_RECOMMENDERS)
    at.toggle(key="camp_holdout_run").set_value(True).run()
    _ok(at)
    assert not _errors(at), _errors(at)
    shown = [d for d in at.tabs[0].dataframe if "precision_at_k" in d.value.columns]
    assert len(shown) == 1
    # its columns in words for a marketer, the shares with what they mean
    titles = {k: c.get("label") for k, c in json.loads(shown[0].proto.columns).items() if c}
    assert titles["label"] == "Recommender" and titles["coverage"] == "Catalogue coverage", titles
    assert all(t is None or t[:1].isupper() for t in titles.values()), titles
    shown = [shown[0].value]
    # shares as percentages (x 100, "1.8 %"), as every percentage of the project
    assert shown[0]["precision_at_k"].tolist() == pytest.approx((100 * ev["precision_at_k"]).tolist())
    assert shown[0]["recall_at_k"].tolist() == pytest.approx((100 * ev["recall_at_k"]).tolist())
    assert any("Item-based CF beats the popularity baseline" in c.value for c in at.caption)


def test_bad_inputs_are_messages(sample_wh):
    at = _open()
    _build(at)
    for share in (0, 100):
        at.slider(key="camp_control").set_value(share).run()
        _ok(at)
        errs = _errors(at)
        assert len(errs) == 1 and "strictly between 0 % and 100 %" in errs[0], errs
        assert "Contacted" not in _metrics(at)
    at.slider(key="camp_control").set_value(20)
    at.checkbox(key="camp_budget_on").check().run()   # the budget box is enabled by the tick
    at.number_input(key="camp_budget").set_value(0.0).run()
    _ok(at)
    errs = _errors(at)
    assert len(errs) == 1 and "budget of 0" in errs[0], errs
    # budget / cost caps the contacts
    at.number_input(key="camp_budget").set_value(120.0)
    at.number_input(key="camp_cost").set_value(2.0).run()
    _ok(at)
    assert _int(_metrics(at)["Contacted"]) == 60
    # the money fields and the contact cap have a ceiling: a typo such as 1e308 for the cost per contact
    # is refused by the field, not turned into a 300-digit break-even sentence and an empty chart
    for key in ("camp_cost", "camp_budget", "camp_max"):
        assert at.number_input(key=key).max is not None and at.number_input(key=key).max < 1e15, key
    vpr = next(n for n in at.number_input if str(n.key).startswith("camp_vpr_"))
    assert vpr.max is not None and vpr.max < 1e15
    # an empty selection; the count's label is short (it sits in a quarter-page column beside the
    # segment picker) and its help says that all conditions must hold
    box = at.number_input(key="camp_rule_n")
    assert box.label == "Extra conditions" and "all of them must hold" in box.help
    at.number_input(key="camp_rule_n").set_value(1).run()
    at.selectbox(key="camp_rule_field_0").set_value("net_revenue")
    at.selectbox(key="camp_rule_op_0_numeric").set_value(">=")
    at.text_input(key="camp_rule_v_0").input("100000000").run()
    _ok(at)
    errs = _errors(at)
    assert len(errs) == 1 and "the selection is empty" in errs[0] and SEGMENT in errs[0], errs
    assert not [d for d in at.dataframe if "rank_score" in d.value.columns]


def test_bad_outcome_files_are_messages(sample_wh):
    frame = _frame(sample_wh)
    targets = camp.select_targets(sample_wh, frame, _spec(frame))
    camp.save_campaign(sample_wh, _spec(frame, name="spring"), targets)
    at = _open()
    first = targets["customer_id"].iloc[0]
    cases = [
        ("dup.csv", f"customer_id,converted,revenue\n{first},1,10\n{first},0,0\n".encode(), "more than once"),
        ("cols.csv", b"id;bought\nC1;1\n", "lacks the column"),
        ("bin.csv", bytes(range(256)) * 20, "not a CSV text file"),
        ("bad.csv", f"customer_id,converted,revenue\n{first},maybe,10\n".encode(), "converted"),
    ]
    for name, data, message in cases:
        at.file_uploader(key="camp_outcomes").set_value((name, data, "text/csv")).run()
        _ok(at)
        errs = _errors(at)
        assert len(errs) == 1 and errs[0].startswith("The outcomes file cannot be used") and message in errs[0], \
            (name, errs)
        assert not [d for d in at.dataframe if "uplift (pp)" in d.value.columns]
    assert camp.campaign_readout(sample_wh, "spring") is None
    # a valid file where the control group has only 2 conversions: read, but too small to tell
    ctrl = targets.loc[targets["group"] == "control", "customer_id"].tolist()
    treat = targets.loc[targets["group"] == "treatment", "customer_id"].tolist()
    lines = ["customer_id,converted,revenue"] + [f"{c},1,30" for c in ctrl[:2]] + [f"{c},1,30" for c in treat[:60]]
    at.file_uploader(key="camp_outcomes").set_value(("few.csv", "\n".join(lines).encode(), "text/csv")).run()
    _ok(at)
    assert not _errors(at), _errors(at)
    small = [w.value for w in at.warning if "too small to tell" in w.value]
    assert small and small[0].startswith("Overall: too small to tell"), [w.value for w in at.warning]
    assert any("have no row in the file" in i.value for i in at.info)
    assert _table(at, "camp_readout_table")["Too small to tell"].iloc[0]


def test_no_saved_segments_means_every_customer(app_wh):
    ensure_default_dataset(app_wh)
    at = _open()
    m = _metrics(at)
    n = app_wh.cursor().execute("SELECT count(DISTINCT customer_id) FROM events").fetchone()[0]
    assert _int(m["Eligible customers"]) == n
    assert _int(m["Contacted"]) == 500            # the default cap
    assert math.isclose(_int(m["Control (not contacted)"]) / (500 + _int(m["Control (not contacted)"])), 0.10,
                        abs_tol=1 / 500)
    assert any("No saved segments yet" in c.value for c in at.caption)
    # "any category" is a real option (a None option reads "Choose an option" in the browser after a rerun)
    cat = at.selectbox(key="camp_rec_cat")
    assert cat.value is not None and cat.format_func(cat.value) == "any category"
    # the assumed response in the project's percentage style ("2.0 %"), not "2%" or "2.00 %"
    import re

    from analytics.campaigns.targeting import ASSUMED_INCREMENTAL_RESPONSE
    from analytics.formatting import percent

    said = next(c.value for c in at.caption if c.value.startswith("Defaults ("))
    assert f"Defaults ({percent(ASSUMED_INCREMENTAL_RESPONSE)}," in said, said
    assert not re.search(r"\d%", said) and not re.search(r"\d\.\d\d %", said), said
    # a longer list: the return curve ships at most 500 points, the library's curve
    at.number_input(key="camp_max").set_value(2000).run()
    _ok(at)
    assert _int(_metrics(at)["Contacted"]) == 2000
    charts = at.tabs[0].get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    line = spec["data"][0]
    xs, ys = _plotly_values(line["x"]), _plotly_values(line["y"])
    assert 400 < len(xs) <= 500
    frame = _frame(app_wh)
    targets = camp.select_targets(app_wh, frame, _spec(frame, segments=[], max_contacts=2000, control_share=0.1))
    rate, value = camp.default_response(frame.loc[targets["customer_id"]], _spec(frame), wh=app_wh)
    curve = camp.return_curve(targets, round(100 * rate, 2) / 100, round(value, 2), 1.0, max_points=500)
    assert xs.tolist() == curve["n_contacted"].tolist()
    assert ys.tolist() == pytest.approx(curve["incremental_return"].tolist())
    if curve.attrs["break_even"] is not None:
        assert _plotly_values(spec["data"][1]["x"]).tolist() == [curve.attrs["break_even"]]


def test_recommendations_without_item_data_make_the_list_without_them(app_wh):
    from tests.dashboard.conftest import insert_events, synthetic_rows

    insert_events(app_wh, "shop", synthetic_rows(300, seed=3))   # orders without item ids
    at = _open()
    assert _int(_metrics(at)["Eligible customers"]) == 300
    contacted = _metrics(at)["Contacted"]
    at.number_input(key="camp_recs").set_value(3).run()
    _ok(at)
    assert not _errors(at), _errors(at)
    infos = [i.value.replace("\\", "") for i in at.info]  # (shown markdown-escaped)
    assert any(i.startswith("No recommendations: dataset 'shop' has no item ids") and "made without them" in i
               for i in infos), infos
    assert _metrics(at)["Contacted"] == contacted  # the same list, without items
    assert not any("Recommended items from" in c.value for c in at.caption)
    at.toggle(key="camp_holdout_run").set_value(True).run()
    _ok(at)
    assert any(e.startswith("The recommenders cannot be evaluated") for e in _errors(at)), _errors(at)


def test_full_recommender_comparison_runs_with_progress(sample_wh):
    # the full comparison (here two cheap recommenders) shows evaluate_holdout's figures and the winner
    from analytics.recommend import evaluate_holdout

    at = _open()
    _build(at)
    at.multiselect(key="camp_full_models").set_value(["popularity", "recent_popularity"]).run()
    at.button(key="camp_full_run").click().run()
    _ok(at)
    table = _table(at, "camp_full_table")
    as_of = pd.Timestamp(at.date_input(key="camp_as_of").value)
    split = as_of - pd.Timedelta(days=89)
    ev = evaluate_holdout(sample_wh, SAMPLE_DATASET, split, as_of + pd.Timedelta(days=1),
                          families=["popularity", "recent_popularity"])
    assert table["precision_at_k"].tolist() == pytest.approx((100 * ev["precision_at_k"]).tolist())  # in %
    assert table["recall_vs_popularity"].iloc[0] == pytest.approx(1.0)
    assert any("Validation winner" in c.value for c in at.caption)

