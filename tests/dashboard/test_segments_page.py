"""AppTest: the Segments page trains clusters, builds and saves rule segments, lists and deletes
them, and turns bad input into messages (values checked against the library / pandas)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.segments import rules, store
from analytics.summary import customer_summary
from tests.dashboard.conftest import APP, ROOT, TIMEOUT, insert_events, synthetic_rows

PAGE = "views/segments.py"
HTML_NAME = "<img src=x onerror=alert(1)>"


@pytest.fixture
def rows():
    return synthetic_rows(400, seed=5)


@pytest.fixture
def page(app_wh, rows):
    insert_events(app_wh, "shop", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _summary(app_wh, rows) -> pd.DataFrame:
    last_day = max(r[1] for r in rows).date()
    return customer_summary(app_wh, "shop", last_day)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _num(text: str) -> float:
    """A shown number without its thousands separators, currency sign or percent sign."""
    import re

    return float(re.sub(r"[^0-9.\-]", "", text))


def _table(at, column: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def _no_unsafe_html(at) -> None:
    assert all(not m.proto.allow_html for m in at.markdown)


def _set_rule(at, value: str, op: str = ">=") -> None:
    at.selectbox(key="seg_rule_field_0").set_value("net_revenue")
    at.selectbox(key="seg_rule_op_0_numeric").set_value(op)
    at.text_input(key="seg_rule_v_0").input(value).run()
    assert not at.exception, at.exception


def test_train_kmeans_k6_sizes_sum_to_customers(page, app_wh, rows):
    at = page
    # the features offered read as words, each its own (the list offered "Clv bgnbd")
    from analytics import formatting

    offered = at.multiselect(key="seg_features").options
    assert not [o for o in offered if "_" in o] and len(set(offered)) == len(offered), offered
    assert "Clv bgnbd" not in offered and formatting.column_title("clv_bgnbd") in offered, offered
    at.selectbox(key="seg_algorithm").set_value("kmeans")
    at.number_input(key="seg_k").set_value(6)
    at.button(key="seg_train").click().run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    table = _table(at, "revenue share")
    n_customers = len(_summary(app_wh, rows))
    assert n_customers == len({r[0] for r in rows})
    last = max(r[1] for r in rows).date()  # the as-of day in words, as every other page writes it
    assert any(c.value.startswith(f"{n_customers:,} customers of") and c.value.endswith(
        f"as of {last.day} {last:%b %Y}") for c in at.caption), [c.value for c in at.caption]
    assert len(table) == 6
    assert int(table["customers"].sum()) == n_customers
    assert table["share"].sum() == pytest.approx(100.0)  # shares shown as percentages
    # the run is saved on request and its assignment covers every customer
    at.button(key="seg_save_run").click().run()
    assert not at.exception, at.exception
    run = store.latest_clustering_run(app_wh, "shop")
    assert run is not None
    assert len(store.load_assignments(app_wh, run)) == n_customers


def test_rule_count_matches_pandas_then_save_list_delete_html_name(page, app_wh, rows):
    at = page
    _set_rule(at, "500")
    summary = _summary(app_wh, rows)
    expected = int((summary["net_revenue"] >= 500).sum())
    assert expected > 0
    m = _metrics(at)
    assert _num(m["Customers selected"]) == expected
    assert _num(m["Net revenue"].replace(" M", "")) == pytest.approx(
        summary.loc[summary["net_revenue"] >= 500, "net_revenue"].sum(), abs=0.01)
    # a stricter threshold selects fewer: the counter follows the conditions
    _set_rule(at, "5000")
    assert _num(_metrics(at)["Customers selected"]) == int((summary["net_revenue"] >= 5000).sum())
    _set_rule(at, "500")

    at.text_input(key="seg_rule_name").input(HTML_NAME)
    at.text_area(key="seg_rule_desc").input("big <b>spenders</b>")
    at.button(key="seg_rule_save").click().run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    saved = _table(at, "definition")
    assert saved["name"].tolist() == [HTML_NAME]          # literal text in the table
    assert saved["description"].tolist() == ["big <b>spenders</b>"]
    assert int(saved["customers"].iloc[0]) == expected
    assert store.get_segment(app_wh, HTML_NAME)["definition"]["conditions"][0]["value"] == 500
    # in markdown the name is escaped (renders as the literal text), never raw HTML
    md = [x.value for x in at.markdown]
    assert any("\\<img src\\=x onerror\\=alert\\(1\\)\\>" in v for v in md), md
    assert not any(HTML_NAME in v for v in md + [s.value for s in at.success] + [c.value for c in at.caption])
    _no_unsafe_html(at)
    assert "unsafe_allow_html" not in (Path(ROOT) / "dashboard" / "views" / "segments.py").read_text()

    # delete with confirmation
    at.selectbox(key="seg_delete_pick").set_value(HTML_NAME)
    at.button(key="seg_delete").click().run()
    assert not at.exception, at.exception
    assert len(store.list_segments(app_wh)) == 1         # not yet: waits for the confirmation
    at.button(key="seg_delete_yes").click().run()
    assert not at.exception, at.exception
    assert store.list_segments(app_wh).empty
    assert not [d for d in at.dataframe if "definition" in d.value.columns]


def test_wrong_type_value_and_empty_selection(page):
    at = page
    _set_rule(at, "lots")
    errs = _errors(at)
    assert len(errs) == 1 and "expected a number" in errs[0] and "lots" in errs[0], errs
    assert "Customers selected" not in _metrics(at)
    # a selection of nobody: a message, and saving is still allowed (re-evaluated on current data)
    _set_rule(at, "100000000")
    assert _num(_metrics(at)["Customers selected"]) == 0
    assert any("No customer matches" in w.value for w in at.warning)
    at.text_input(key="seg_rule_name").input("nobody yet")
    at.button(key="seg_rule_save").click().run()
    assert not at.exception, at.exception
    assert int(_table(at, "definition")["customers"].iloc[0]) == 0


def test_too_few_customers_for_k_is_an_error_not_a_traceback(app_wh):
    start = dt.datetime(2024, 1, 1)
    insert_events(app_wh, "tiny", [(f"c{i}", start + dt.timedelta(days=i), "purchase", f"o{i}", 10.0 + i)
                                   for i in range(5)])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    at.number_input(key="seg_k").set_value(6)
    at.button(key="seg_train").click().run()
    assert not at.exception, at.exception
    errs = _errors(at)
    assert len(errs) == 1 and errs[0].startswith("Clustering failed:"), errs
    assert "too few customers to cluster: 5 customers" in errs[0], errs
    # the reason is on the page, not inside the (folded) status box, where a browser hides it
    statuses = list(at.status)
    assert [s.state for s in statuses] == ["error"] and not statuses[0].error
    assert not [d for d in at.dataframe if "revenue share" in d.value.columns]


def test_features_chosen_for_another_dataset_start_from_this_ones_defaults(app_wh, rows):
    """Switching datasets: the features picked for one (avg_rating, which every customer there has)
    are not kept for one where nobody has a rating (the page said it left it out, yet kept it picked,
    and k guidance failed on it)."""
    insert_events(app_wh, "shop", rows)
    start = dt.datetime(2024, 1, 1)
    insert_events(app_wh, "rated", [(f"r{i:02d}", start + dt.timedelta(days=i), "purchase", f"r{i}", 10.0 + i)
                                    for i in range(30)])
    review = [(f"r{i:02d}", start + dt.timedelta(days=i, hours=1), "review", None, None) for i in range(30)]
    insert_events(app_wh, "rated", review)
    app_wh.cursor().execute("UPDATE events SET rating = 1 + (hash(customer_id) % 5) "
                            "WHERE dataset = 'rated' AND event_type = 'review'")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    at.selectbox(key="dataset").set_value("rated").run()
    assert not at.exception, at.exception
    assert "avg_rating" in at.multiselect(key="seg_features").value
    at.selectbox(key="dataset").set_value("shop").run()
    assert not at.exception, at.exception
    assert any("Left out of the default features" in c.value and "Avg rating" in c.value for c in at.caption)
    assert "avg_rating" not in at.multiselect(key="seg_features").value
    assert not [w for w in at.warning if "Session State" in w.value]
    at.button(key="seg_guide").click().run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    # another page and back: the defaults again, not an empty choice (Streamlit drops the state of a
    # widget that a run does not draw)
    chosen = at.multiselect(key="seg_features").value
    at.switch_page("views/overview.py").run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="seg_features").value == chosen and chosen


def test_guidance_warnings_rename_and_cluster_segment(page, app_wh, rows):
    at = page
    at.button(key="seg_guide").click().run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    info = [i.value for i in at.info if i.value.startswith("Suggested k = ")]
    assert len(info) == 1, [i.value for i in at.info]
    k_sug = int(info[0].split("=")[1].split(":")[0])
    assert 2 <= k_sug <= 12
    assert at.number_input(key="seg_k").value == k_sug   # the suggestion is put into the k field
    assert len(at.get("plotly_chart")) == 1
    # nobody searches in these data: that feature is dropped with a warning
    at.number_input(key="seg_k").set_value(3)
    at.button(key="seg_train").click().run()
    assert not at.exception, at.exception
    assert any("no variance" in w.value and "n_searches" in w.value for w in at.warning)
    table = _table(at, "revenue share")
    assert len(table) == 3
    # rename cluster 1 to HTML: stored as-is, shown as text in the table
    at.selectbox(key="seg_cluster_pick").set_value(1)
    at.text_input(key="seg_rename_text").input(HTML_NAME)
    at.button(key="seg_rename").click().run()
    assert not at.exception, at.exception
    table = _table(at, "revenue share")
    assert table["name"].tolist()[1] == HTML_NAME
    size1 = int(table["customers"].iloc[1])
    _no_unsafe_html(at)
    # save that cluster as a segment: the run is saved too; the segment has the cluster's size
    at.selectbox(key="seg_cluster_pick").set_value(1)
    at.text_input(key="seg_cluster_seg_name").input("cluster one")
    at.button(key="seg_cluster_save").click().run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    at.run()  # the next run evaluates against the saved run's assignment
    assert "Cluster" in at.selectbox(key="seg_rule_field_0").options  # the latest run's clusters as a field
    saved = _table(at, "definition")
    assert saved["name"].tolist() == ["cluster one"]
    assert int(saved["customers"].iloc[0]) == size1
    run = store.latest_clustering_run(app_wh, "shop")
    assert (store.load_assignments(app_wh, run)["cluster_name"] == HTML_NAME).sum() == size1


def test_all_missing_feature_is_an_error(page):
    at = page
    at.multiselect(key="seg_features").set_value(["avg_rating"])
    at.button(key="seg_train").click().run()
    assert not at.exception, at.exception
    errs = _errors(at)
    assert len(errs) == 1 and "missing for every customer" in errs[0], errs


def test_category_rule_uses_listed_values(page, app_wh, rows):
    at = page
    at.selectbox(key="seg_rule_field_0").set_value("rfm_segment").run()
    assert not at.exception, at.exception
    at.selectbox(key="seg_rule_op_0_category").set_value("in").run()
    ms = at.multiselect(key="seg_rule_cm_0_rfm_segment")
    assert len(ms.options) >= 2
    picked = list(ms.options[:2])
    ms.set_value(picked).run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    from analytics.scores import Scorer

    summary = _summary(app_wh, rows)
    scorer = Scorer(summary)
    seg = scorer.frame(scorer.score(), with_params=False)["rfm_segment"]
    assert _num(_metrics(at)["Customers selected"]) == int(seg.isin(picked).sum())


def test_edit_saved_segment_rename_description_and_definition(page, app_wh, rows):
    """Saved segments are editable: name and description (escaped, duplicate and empty names refused),
    and the definition, loaded into the rule builder and saved back with update_segment."""
    at = page
    store.save_segment(app_wh, "Big", {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">=", "value": 500},
        {"field": "n_orders", "operator": "between", "value": [1, 3]}]}, "first")
    store.save_segment(app_wh, "Other", {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": "<", "value": 10}]})
    big_id = store.get_segment(app_wh, "Big")["id"]
    at.run()
    assert not at.exception, at.exception
    at.selectbox(key="seg_edit_pick").set_value(big_id).run()
    stamp = lambda: f"{big_id}_{pd.Timestamp(store.get_segment(app_wh, big_id)['updated_at']).value}"  # noqa: E731
    assert at.text_input(key=f"seg_edit_name_{stamp()}").value == "Big"
    assert at.text_area(key=f"seg_edit_desc_{stamp()}").value == "first"

    # a duplicate name and an empty name are refused with a message; nothing changes
    at.text_input(key=f"seg_edit_name_{stamp()}").input("Other")
    at.button(key="seg_edit_save").click().run()
    assert not at.exception, at.exception
    assert any("already exists" in e for e in _errors(at)), _errors(at)
    at.text_input(key=f"seg_edit_name_{stamp()}").input("   ")
    at.button(key="seg_edit_save").click().run()
    assert any("needs a name" in e for e in _errors(at)), _errors(at)
    assert store.get_segment(app_wh, big_id)["name"] == "Big"

    # rename to HTML and change the description: stored as typed, shown as literal text
    at.text_input(key=f"seg_edit_name_{stamp()}").input(HTML_NAME)
    at.text_area(key=f"seg_edit_desc_{stamp()}").input("now <b>bold</b>?")
    at.button(key="seg_edit_save").click().run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    seg = store.get_segment(app_wh, big_id)
    assert (seg["name"], seg["description"]) == (HTML_NAME, "now <b>bold</b>?")
    listing = _table(at, "definition").set_index("name")
    assert listing.loc[HTML_NAME, "description"] == "now <b>bold</b>?"
    assert any("\\<img src\\=x onerror\\=alert\\(1\\)\\>" in s.value for s in at.success)
    assert not any(HTML_NAME in v for v in [m.value for m in at.markdown] + [s.value for s in at.success])
    _no_unsafe_html(at)

    # load the definition into the rule builder: its widgets show the saved conditions
    at.button(key="seg_edit_load").click().run()
    assert not at.exception, at.exception
    assert at.session_state["seg_tree"]["nodes"]["g"]["children"] == ["0", "1"]
    assert at.selectbox(key="seg_rule_field_0").value == "net_revenue"
    assert at.selectbox(key="seg_rule_op_0_numeric").value == ">="
    assert at.text_input(key="seg_rule_v_0").value == "500"
    assert at.selectbox(key="seg_rule_field_1").value == "n_orders"
    assert at.selectbox(key="seg_rule_op_1_numeric").value == "between"
    assert (at.text_input(key="seg_rule_v1_1").value, at.text_input(key="seg_rule_v2_1").value) == ("1", "3")
    assert at.text_input(key="seg_rule_name").value == HTML_NAME
    assert any("Editing the saved segment" in i.value for i in at.info)
    summary = _summary(app_wh, rows)
    sel = (summary["net_revenue"] >= 500) & summary["n_orders"].between(1, 3)
    assert _num(_metrics(at)["Customers selected"]) == int(sel.sum())

    # change the threshold and save the changes: the stored definition and the listed count follow
    at.text_input(key="seg_rule_v_0").input("300").run()
    at.button(key="seg_edit_def_save").click().run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    seg = store.get_segment(app_wh, big_id)
    assert seg["name"] == HTML_NAME
    assert seg["definition"]["conditions"][0] == {"field": "net_revenue", "operator": ">=", "value": 300.0}
    sel = (summary["net_revenue"] >= 300) & summary["n_orders"].between(1, 3)
    assert int(_table(at, "definition").set_index("name").loc[HTML_NAME, "customers"]) == int(sel.sum())
    assert len(store.list_segments(app_wh)) == 2   # changed in place, not saved as a new one


def test_edit_nested_definition_loads_into_the_builder(page, app_wh, rows):
    at = page
    store.save_segment(app_wh, "Nested", {"op": "or", "conditions": [
        {"op": "and", "conditions": [{"field": "net_revenue", "operator": ">=", "value": 100},
                                     {"field": "n_orders", "operator": ">=", "value": 2}]},
        {"field": "n_orders", "operator": "=", "value": 0}]}, dataset="shop")
    at.run()
    at.button(key="seg_edit_load").click().run()
    assert not at.exception, at.exception
    assert not at.warning, [w.value for w in at.warning]
    assert any("Editing the saved segment" in i.value for i in at.info)
    tree = at.session_state["seg_tree"]["nodes"]
    assert tree["g"]["children"] == ["0", "3"] and tree["0"]["children"] == ["1", "2"]
    assert at.radio(key="seg_rule_op").value == "or" and at.radio(key="seg_grp_op_0").value == "and"
    assert at.text_input(key="seg_rule_v_1").value == "100"
    summary = _summary(app_wh, rows)
    sel = ((summary["net_revenue"] >= 100) & (summary["n_orders"] >= 2)) | (summary["n_orders"] == 0)
    assert _num(_metrics(at)["Customers selected"]) == int(sel.sum())


# ---------------------------------------------------------------- the richer builder
CATEGORIES = ("books", "games", "garden")
COUNTRIES = ("DE", "FR", "GB")


def _rich_rows(n: int = 160, seed: int = 11) -> pd.DataFrame:
    """Events with items, categories and countries (what activity and attribute conditions read)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 1, 1)
    out = []
    for c in range(n):
        country = COUNTRIES[c % 3]
        for j in range(int(rng.integers(1, 7))):
            t = start + dt.timedelta(hours=int(rng.integers(0, 24 * 200)))
            kind = str(rng.choice(["view", "view", "purchase", "purchase", "cart"]))
            cat = CATEGORIES[int(rng.integers(0, 3))]
            out.append({"customer_id": f"k{c:04d}", "event_time": t, "event_type": kind,
                        "order_id": f"o{c}-{j}" if kind == "purchase" else None,
                        "item_id": f"{cat[:2]}{int(rng.integers(0, 4))}", "category": cat,
                        "revenue": float(rng.integers(5, 300)) if kind == "purchase" else None, "country": country})
    # the last event on a fixed day, so that "the last 30 days" is known
    out.append({"customer_id": "k0000", "event_time": dt.datetime(2024, 7, 19, 12), "event_type": "view",
                "order_id": None, "item_id": "bo0", "category": "books", "revenue": None, "country": "DE"})
    return pd.DataFrame(out)


def _insert_rich(wh, dataset: str, df: pd.DataFrame) -> None:
    full = df.assign(dataset=dataset)
    with wh.transaction() as tx:
        tx.execute("INSERT OR IGNORE INTO datasets (name) VALUES (?)", [dataset])
        tx.register("incoming", full)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, category, "
                   "revenue, country) SELECT dataset, customer_id, event_time, event_type, order_id, item_id, "
                   "category, revenue, country FROM incoming")
        tx.execute("INSERT INTO ingestions (id, dataset, file_name, rows_read, rows_loaded, rows_rejected, "
                   "rows_duplicate) VALUES (nextval('ingestion_id_seq'), ?, 'test', ?, ?, 0, 0)",
                   [dataset, len(full), len(full)])


@pytest.fixture
def rich(app_wh):
    df = _rich_rows()
    _insert_rich(app_wh, "shop", df)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at, df


def test_builder_offers_the_marketer_fields(rich):
    at, _ = rich
    options = at.selectbox(key="seg_rule_field_0").options
    for title in ("RFM segment", "Country", "Bought from category", "Bought product", "Number of events",
                  "Predicted value", "Churn risk (0-1)", "Probability alive (0-1)"):
        assert title in options, options


def test_nested_groups_with_activity_conditions_match_pandas(rich, app_wh):
    at, df = rich
    # net revenue >= 100 AND (bought from books in the last 30 days OR 2+ views in the last 30 days)
    _set_rule(at, "100")
    at.button(key="seg_add_g_g").click().run()
    tree = at.session_state["seg_tree"]["nodes"]
    gid = tree["g"]["children"][-1]
    c1 = tree[gid]["children"][0]
    at.radio(key=f"seg_grp_op_{gid}").set_value("or").run()
    at.selectbox(key=f"seg_rule_field_{c1}").set_value("bought_category").run()
    at.selectbox(key=f"seg_rule_op_{c1}_bought_category").set_value("in").run()
    at.multiselect(key=f"seg_rule_cm_{c1}_bought_category").set_value(["books"]).run()
    at.selectbox(key=f"seg_rule_when_{c1}").set_value("last").run()
    at.number_input(key=f"seg_rule_days_{c1}").set_value(30).run()
    at.button(key=f"seg_add_c_{gid}").click().run()
    c2 = at.session_state["seg_tree"]["nodes"][gid]["children"][-1]
    at.selectbox(key=f"seg_rule_field_{c2}").set_value("event_count").run()
    at.selectbox(key=f"seg_rule_ev_{c2}").set_value("view")
    at.selectbox(key=f"seg_rule_op_{c2}_event_count").set_value(">=")
    at.selectbox(key=f"seg_rule_when_{c2}").set_value("last").run()
    at.number_input(key=f"seg_rule_days_{c2}").set_value(30)
    at.text_input(key=f"seg_rule_v_{c2}").input("2").run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)

    # independent: pandas over the raw events
    end = dt.datetime(2024, 7, 20)
    since = end - dt.timedelta(days=30)
    recent = df[(df.event_time >= since) & (df.event_time < end)]
    net = df[df.event_type == "purchase"].groupby("customer_id").revenue.sum()
    books = set(recent[(recent.event_type == "purchase") & (recent.category == "books")].customer_id)
    views = recent[recent.event_type == "view"].groupby("customer_id").size()
    many_views = set(views[views >= 2].index)
    expected = {c for c in net[net >= 100].index if c in books or c in many_views}
    assert expected, "the example must select someone"
    assert _num(_metrics(at)["Customers selected"]) == len(expected)
    assert _num(_metrics(at)["Net revenue"]) == pytest.approx(net[list(expected)].sum(), abs=0.01)
    caption = next(c.value for c in at.caption if c.value.startswith("Selection: "))
    assert "bought from category books in the last 30 days" in caption.replace("\\", "")

    # saved for this dataset by default; the stored definition keeps the nesting
    at.text_input(key="seg_rule_name").input("Recent books or browsing")
    at.button(key="seg_rule_save").click().run()
    assert not _errors(at), _errors(at)
    seg = store.get_segment(app_wh, "Recent books or browsing")
    assert seg["dataset"] == "shop"
    inner = seg["definition"]["conditions"][1]
    assert inner["op"] == "or" and inner["conditions"][0] == {
        "field": "bought_category", "operator": "in", "value": ["books"], "days": 30}
    listing = _table(at, "definition").set_index("name")
    assert int(listing.loc["Recent books or browsing", "customers"]) == len(expected)
    assert listing.loc["Recent books or browsing", "scope"] == "This dataset"

    # removing the group: back to the one condition
    at.button(key=f"seg_del_{gid}").click().run()
    assert at.session_state["seg_tree"]["nodes"]["g"]["children"] == ["0"]
    assert _num(_metrics(at)["Customers selected"]) == int((net >= 100).sum())


def test_country_condition_and_shared_scope(rich, app_wh):
    at, df = rich
    at.selectbox(key="seg_rule_field_0").set_value("country").run()
    at.selectbox(key="seg_rule_op_0_category").set_value("in").run()
    ms = at.multiselect(key="seg_rule_cm_0_country")
    assert sorted(ms.options) == list(COUNTRIES)
    ms.set_value(["FR"]).run()
    assert _num(_metrics(at)["Customers selected"]) == df[df.country == "FR"].customer_id.nunique()
    at.text_input(key="seg_rule_name").input("French")
    at.radio(key="seg_rule_scope").set_value("all")
    at.button(key="seg_rule_save").click().run()
    assert not _errors(at), _errors(at)
    assert store.get_segment(app_wh, "French")["dataset"] is None
    assert any("for all datasets" in s.value for s in at.success)
    assert _table(at, "definition").set_index("name").loc["French", "scope"] == store.ALL_DATASETS


def test_condition_on_data_the_dataset_lacks_says_so(page, app_wh):
    at = page  # plain events: no categories, items or countries
    store.save_segment(app_wh, "Book buyers", {"op": "and", "conditions": [
        {"field": "bought_category", "operator": "in", "value": ["books"]}]},
        fields=rules.KNOWN_FIELDS)  # shared by all datasets
    at.run()
    assert not at.exception, at.exception
    listing = _table(at, "definition").set_index("name")
    assert listing.loc["Book buyers", "note"].startswith("cannot be counted on these data:")
    assert "this dataset has no data for “Bought from category”" in listing.loc["Book buyers", "note"]
    assert listing.loc["Book buyers", "customers"] == "not counted"   # no "None" cell
    assert any("not counted" in m.value and "no data for" in m.value for m in at.markdown)
    assert "bought_category" not in at.selectbox(key="seg_rule_field_0").options
    at.button(key="seg_edit_load").click().run()
    assert any("cannot be edited on the current data" in w.value and "no data for" in w.value for w in at.warning)


def test_churn_risk_as_a_percentage_and_scope_change_on_edit(rich, app_wh):
    at, _ = rich
    from analytics import prepare

    at.selectbox(key="seg_rule_field_0").set_value("churn_risk").run()
    at.selectbox(key="seg_rule_op_0_numeric").set_value(">=")
    at.text_input(key="seg_rule_v_0").input("70 %").run()
    assert not _errors(at), _errors(at)
    frame = prepare.customer_frame(app_wh, "shop", clusters=False)
    assert _num(_metrics(at)["Customers selected"]) == int((frame["churn_risk"] >= 0.7).sum())
    caption = next(c.value for c in at.caption if c.value.startswith("Selection: "))
    assert "0.7" in caption.replace("\\", "")
    at.text_input(key="seg_rule_name").input("Slipping")
    at.button(key="seg_rule_save").click().run()
    seg = store.get_segment(app_wh, "Slipping")
    assert seg["dataset"] == "shop" and seg["definition"]["conditions"][0]["value"] == 0.7
    # loaded into the builder, shared with all datasets and saved back
    at.button(key="seg_edit_load").click().run()
    assert at.radio(key="seg_rule_scope").value == "dataset"
    at.radio(key="seg_rule_scope").set_value("all").run()
    at.button(key="seg_edit_def_save").click().run()
    assert not _errors(at), _errors(at)
    assert store.get_segment(app_wh, "Slipping")["dataset"] is None


@pytest.fixture
def viewer_shop(app_wh):
    from analytics import access
    from tests.dashboard import test_admin_page as adm
    from tests.oidc_provider import Provider

    insert_events(app_wh, "shop", synthetic_rows(60, seed=4))
    with Provider().running() as p:
        adm.AUTH["server_metadata_url"] = p.discovery_url
        with access.acting_as(access.SYSTEM):
            access.set_person(app_wh, "vic@example.com", "viewer")
            access.grant(app_wh, "vic@example.com", "shop")
        store.save_segment(app_wh, "big", {"op": "and", "conditions": [
            {"field": "net_revenue", "operator": ">=", "value": 1}]}, dataset="shop")
        yield app_wh
    access.set_default(access.LOCAL)  # the app set "nobody" as this process's default


def test_a_viewer_can_cluster_but_is_offered_no_saving(viewer_shop, monkeypatch):
    """A viewer may look (train a clustering in the page, count a rule's customers) but not change
    segments: the controls that write are not offered (Save cluster as segment was, and its refusal
    read 'The warehouse could not be read'); a refusal that still reaches the app says it is one."""
    from tests.dashboard.test_admin_page import VIC, _app

    at = _app(VIC, page=PAGE)
    assert not at.exception, at.exception
    at.number_input(key="seg_k").set_value(3)
    at.button(key="seg_train").click().run()
    assert not at.exception, at.exception
    assert len(_table(at, "revenue share")) == 3  # the clustering itself is shown
    _set_rule(at, "1")
    keys = {b.key for b in at.button}
    assert not keys & {"seg_cluster_save", "seg_save_run", "seg_rename", "seg_rule_save", "seg_edit_save",
                       "seg_delete"}, keys
    assert sum("needs the analyst role" in c.value for c in at.caption) == 3  # one per tab that writes
    assert "Customers selected" in _metrics(at)  # the rule builder still counts
    assert not _errors(at), _errors(at)

    # a page that forgot to hide a control: the library refuses, and the app says "Not allowed"
    from dashboard import widgets

    monkeypatch.setattr(widgets, "may", lambda action, dataset=None: True)
    at = _app(VIC, page=PAGE)
    at.number_input(key="seg_k").set_value(3)
    at.button(key="seg_train").click().run()
    at.text_input(key="seg_cluster_seg_name").input("viewer's")
    at.button(key="seg_cluster_save").click().run()
    assert not at.exception, at.exception
    errs = [e.replace("\\", "") for e in _errors(at)]
    assert any(e.startswith("Not allowed to") and "Vic is a viewer" in e for e in errs), errs
    assert not any("could not be read" in e for e in errs), errs
    assert store.list_segments(viewer_shop, "shop")["name"].tolist() == ["big"]


def test_a_segment_on_a_cluster_the_counted_run_lacks_says_so(page, app_wh):
    """A segment saved from a cluster of an earlier run counts 0 once a newer run (with other names) is
    saved: the Saved segments tab says why instead of a bare '0 customers'."""
    at = page
    at.number_input(key="seg_k").set_value(3)
    at.button(key="seg_train").click().run()
    at.button(key="seg_save_run").click().run()
    assert not at.exception, at.exception
    run = store.latest_clustering_run(app_wh, "shop")
    names = store.get_clustering_run(app_wh, run)["names"]
    store.save_segment(app_wh, "old cluster", rules.cluster_definition("Gone cluster"), dataset="shop")
    store.save_segment(app_wh, "live cluster", rules.cluster_definition(names[0]), dataset="shop")
    at.run()
    assert not at.exception, at.exception
    lines = [m.value.replace("\\", "") for m in at.markdown if m.value.startswith("**")]
    old = next(x for x in lines if x.startswith("**old cluster**"))
    assert "0 customers" in old and f"clustering run {run}" in old and "“Gone cluster”" in old, old
    live = next(x for x in lines if x.startswith("**live cluster**"))
    assert "has no cluster" not in live and " 0 customers" not in live, live
    assert rules.cluster_names_in({"op": "or", "conditions": [
        {"field": "cluster_name", "operator": "in", "value": ["a", "b"]},
        {"op": "and", "conditions": [{"field": "cluster_name", "operator": "=", "value": "a"},
                                     {"field": "n_orders", "operator": ">", "value": 1}]}]}) == ["a", "b"]


def test_mixture_guidance_explains_the_bic_it_suggests_by(page):
    """With a Gaussian mixture the suggestion can name 'the elbow of the BIC curve' and the chart draws a
    BIC line: the caption under it explains BIC too (it explained inertia and silhouette only)."""
    from analytics.glossary import term

    at = page
    at.selectbox(key="seg_algorithm").set_value("gmm").run()
    at.button(key="seg_guide").click().run()
    assert not at.exception, at.exception
    assert any(term("bic").split(":")[0] in c.value and "Silhouette" in c.value for c in at.caption), \
        [c.value for c in at.caption]
    at.selectbox(key="seg_algorithm").set_value("kmeans").run()
    at.button(key="seg_guide").click().run()
    assert not any("BIC" in c.value for c in at.caption)  # k-means: no BIC drawn, none explained


def test_new_customer_groups_on_too_few_buyers_say_why_in_a_sentence(app_wh):
    # 20 customers: too few earlier first-time buyers for the first-order model; the tab showed the
    # library's bare lower-case reason
    start = pd.Timestamp("2024-01-01")
    rows = [(f"c{i % 20}", start + pd.Timedelta(days=3 * i), "purchase", f"o{i}", 20.0 + i) for i in range(120)]
    insert_events(app_wh, "orders", rows)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("views/segments.py").run()
    at.toggle(key="segments_new_show").set_value(True).run()
    assert not at.exception, at.exception
    said = [i.value for i in at.info if "earlier first" in i.value]
    assert len(said) == 1, [i.value for i in at.info]
    assert said[0].startswith("The new customers cannot be grouped on these data"), said
    assert "at least 50 are needed" in said[0], said
