"""AppTest: the Data page — path and upload sources, mapping proposal and edit, ambiguous
dates, load with the validation report, bad files, export and delete."""
from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, TIMEOUT, insert_events

DATA_PAGE = "views/data.py"
PATH_SOURCE = "File on the server (path)"

UCI_CSV = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047,United Kingdom
536368,22960,JAM MAKING SET WITH JARS,6,12/13/2010 8:34,4.25,13047,United Kingdom
C536379,D,Discount,-1,12/13/2010 9:41,27.50,14527,United Kingdom
536370,22728,ALARM CLOCK BAKELIKE PINK,24,12/14/2010 8:45,3.75,12583,France
536371,22086,PAPER CHAIN KIT 50'S CHRISTMAS,80,12/14/2010 9:00,2.55,,United Kingdom
536372,22632,HAND WARMER RED POLKA DOT,6,12/15/2010 9:01,1.85,17850,United Kingdom
"""


def _page(app_wh) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(DATA_PAGE).run()
    assert not at.exception, at.exception
    return at


def _use_path(at: AppTest, path) -> AppTest:
    at.radio(key="source").set_value(PATH_SOURCE).run()
    at.text_input(key=f"server_path_{_gen(at)}").input(str(path)).run()
    assert not at.exception, at.exception
    return at


def _gen(at: AppTest) -> int:
    return at.session_state["_source_gen"]


def _mapping(at: AppTest) -> dict[str, str]:
    """Field -> chosen column, from the mapping boxes (keyed ``map_<file token>_<field>``)."""
    return {sb.key.split("_", 2)[2]: sb.value for sb in at.selectbox if sb.key and sb.key.startswith("map_")}


def _field_box(at: AppTest, field: str):
    return next(sb for sb in at.selectbox if sb.key and sb.key.startswith("map_") and sb.key.split("_", 2)[2] == field)


def _by_label(widgets, prefix: str):
    found = [w for w in widgets if w.label.startswith(prefix)]
    assert found, f"no widget labelled {prefix!r}"
    return found[0]


def _load_button(at: AppTest):
    return next(b for b in at.button if b.key and b.key.startswith("load_"))


def _frame_with(at: AppTest, column: str) -> pd.DataFrame:
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert frames, f"no table with a {column!r} column"
    return frames[0]


def _metric_values(at: AppTest) -> dict[str, int]:
    return {m.label: int(m.value.replace(",", "")) for m in at.metric}


def test_bad_paths_give_clear_errors(app_wh, tmp_path):
    at = _use_path(_page(app_wh), tmp_path / "nope.csv")
    assert any("no such file on the server" in e.value for e in at.error)
    at.text_input(key=f"server_path_{_gen(at)}").input(str(tmp_path)).run()
    assert any("is a folder, not a file" in e.value for e in at.error)
    assert app_wh.datasets() == []


def test_uci_file_by_path_proposal_and_load(app_wh, tmp_path):
    src = tmp_path / "online_retail.csv"
    src.write_text(UCI_CSV, encoding="utf-8")
    at = _use_path(_page(app_wh), src)
    assert not at.error, [e.value for e in at.error]
    # the layout and the fields in words, not as the machine names (uci_online_retail, customer_id)
    assert any("layout: **UCI Online Retail invoices**" in m.value.replace("\\", "") for m in at.markdown)
    assert not any("uci_online_retail" in m.value.replace("\\", "") for m in at.markdown)
    labels = {sb.key.split("_", 2)[2]: sb.label for sb in at.selectbox if sb.key and sb.key.startswith("map_")}
    assert labels["customer_id"] == "Customer id *" and labels["event_time"] == "Date and time *"
    assert labels["revenue"] == "Amount" and labels["item_id"] == "Product id"
    assert not any("_" in label for label in labels.values()), labels
    m = _mapping(at)
    assert m["customer_id"] == "CustomerID"
    assert m["event_time"] == "InvoiceDate"
    assert m["order_id"] == "InvoiceNo"
    assert m["quantity"] == "Quantity"
    assert m["revenue"] == "UnitPrice"
    assert m["item_id"] == "StockCode"
    assert m["country"] == "Country"
    # unambiguous (12/13/2010 settles month-first): a plain format field, no question
    assert not [r for r in at.radio if r.key and r.key.startswith("datefmt_")]
    fmt_box = _by_label(at.selectbox, "How the dates are written")
    assert fmt_box.value == "%m/%d/%Y %H:%M"
    # in plain words with an example, no strptime codes on screen
    assert fmt_box.format_func(fmt_box.value) == "01/31/2024 13:45  (month/day/year hour:minute)"
    assert not any("strptime" in (w.label or "") for w in at.text_input)
    # the file's layout says pounds sterling: the currency field holds the guess
    assert _by_label(at.text_input, "Currency of the amounts").value == "GBP"
    _by_label(at.text_input, "Dataset name").input("retail").run()
    _load_button(at).click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    n = app_wh.cursor().execute("SELECT count(*) FROM events WHERE dataset = 'retail'").fetchone()[0]
    vals = _metric_values(at)
    assert vals["Rows read"] == 9
    assert vals["Rows loaded"] == n == 8
    assert vals["Rows rejected"] == 1
    assert vals["Duplicates skipped"] == 0
    assert any("Rows read = loaded + rejected + duplicates" in md.value and "9 = 8 + 1 + 0" in md.value
               for md in at.markdown)
    rejects = _frame_with(at, "raw_line")
    assert list(rejects["line_number"]) == [9]
    assert "customer" in rejects["reason"].iloc[0].lower()
    assert "PAPER CHAIN KIT" in rejects["raw_line"].iloc[0]
    assert at.get("download_button")
    # revenue = quantity x unit price, the 'C' invoice is a return; the new dataset is picked
    rev = app_wh.cursor().execute(
        "SELECT round(sum(revenue), 2) FROM events WHERE dataset='retail' AND event_type='purchase'"
    ).fetchone()[0]
    assert rev == pytest.approx(6 * 2.55 + 6 * 3.39 + 6 * 1.85 + 32 * 1.69 + 6 * 4.25 + 24 * 3.75 + 6 * 1.85)
    assert app_wh.cursor().execute(
        "SELECT count(*) FROM events WHERE dataset='retail' AND event_type='return'").fetchone()[0] == 1
    assert at.sidebar.selectbox(key="dataset").value == "retail"
    history = _frame_with(at, "rows_duplicate")
    assert list(history["dataset"]) == ["retail"]

    # after a load the source is emptied; loading the same file again appends nothing
    assert at.text_input(key=f"server_path_{_gen(at)}").value == ""
    assert not [b for b in at.button if b.key and b.key.startswith("load_")]
    at.text_input(key=f"server_path_{_gen(at)}").input(str(src)).run()
    _by_label(at.text_input, "Dataset name").input("retail").run()
    assert any("will be appended" in i.value for i in at.info)
    _load_button(at).click().run()
    vals = _metric_values(at)
    assert vals["Rows loaded"] == 0 and vals["Duplicates skipped"] == 8 and vals["Rows rejected"] == 1
    assert app_wh.cursor().execute("SELECT count(*) FROM events WHERE dataset='retail'").fetchone()[0] == 8


def test_mapping_edit_is_used(app_wh, tmp_path):
    src = tmp_path / "orders.csv"
    src.write_text(
        "client,day,amount,shop\n"
        "a,2024-01-05,10.5,s1\n"
        "b,2024-01-06,20,s2\n"
        "a,2024-02-07,5,s1\n",
        encoding="utf-8",
    )
    at = _use_path(_page(app_wh), src)
    assert _mapping(at)["customer_id"] == "client"
    # the user decides the shop is the customer
    _field_box(at, "customer_id").set_value("shop").run()
    _by_label(at.text_input, "Dataset name").input("by_shop").run()
    _load_button(at).click().run()
    assert not at.error, [e.value for e in at.error]
    ids = [r[0] for r in app_wh.cursor().execute(
        "SELECT DISTINCT customer_id FROM events WHERE dataset='by_shop' ORDER BY 1").fetchall()]
    assert ids == ["s1", "s2"]


def test_ambiguous_dates_are_asked(app_wh, tmp_path):
    src = tmp_path / "ambiguous.csv"
    src.write_text(
        "customer,date,amount\nx,02/01/2024,10\ny,03/04/2024,20\nx,05/06/2024,30\n", encoding="utf-8"
    )
    at = _use_path(_page(app_wh), src)
    radio = next(r for r in at.radio if r.key and r.key.startswith("datefmt_"))
    assert radio.value is None  # no guess
    assert len(radio.options) >= 2
    assert _load_button(at).disabled
    assert "02/01/2024 13:45 means 2 January 2024  (day/month/year hour:minute)" in [
        radio.format_func(o) for o in ["%d/%m/%Y %H:%M"]]
    assert any(o.startswith("02/01/2024 means 2 January 2024") and "day/month/year" in o for o in radio.options)
    assert any(o.startswith("01/02/2024 means 2 January 2024") and "month/day/year" in o for o in radio.options)
    radio.set_value("%d/%m/%Y").run()
    assert not _load_button(at).disabled
    _by_label(at.text_input, "Dataset name").input("amb").run()
    _load_button(at).click().run()
    assert not at.error, [e.value for e in at.error]
    first = app_wh.cursor().execute(
        "SELECT min(event_time) FROM events WHERE dataset='amb'").fetchone()[0]
    assert first == dt.datetime(2024, 1, 2)


def test_bad_upload_is_an_error_and_changes_nothing(app_wh):
    insert_events(app_wh, "keep", [("a", dt.datetime(2024, 1, 1), "purchase", "o1", 10.0)])
    at = _page(app_wh)
    at.file_uploader(key=f"upload_{_gen(at)}").set_value(("data.csv", b"\x00\x01\x02\xff\xfe" * 400, "text/csv")).run()
    assert not at.exception, at.exception
    assert at.error, "a binary file must give an error"
    assert app_wh.datasets() == ["keep"]
    at.file_uploader(key=f"upload_{_gen(at)}").set_value(("empty.csv", b"", "text/csv")).run()
    assert at.error
    assert app_wh.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_upload_loads_and_overview_counts(app_wh):
    rows = ["customer_id,event_time,event_type,order_id,revenue"]
    for i in range(40):
        rows.append(f"u{i % 17},2024-03-{1 + i % 28:02d} 10:00:00,purchase,o{i},{i + 1}.5")
    at = _page(app_wh)
    at.file_uploader(key=f"upload_{_gen(at)}").set_value(("shop events.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert not at.error, [e.value for e in at.error]
    name = _by_label(at.text_input, "Dataset name")
    assert name.value == "shop_events"
    tmp_copy = at.session_state["_upload_tmp"]["path"]
    assert open(tmp_copy, "rb").read().startswith(b"customer_id,event_time")
    _load_button(at).click().run()
    assert _metric_values(at)["Rows loaded"] == 40
    assert not os.path.exists(tmp_copy)  # the upload's temporary copy is removed after the load
    at.switch_page("views/overview.py").run()
    assert at.sidebar.selectbox(key="dataset").value == "shop_events"
    customers = next(m.value for m in at.metric if m.label == "Customers")
    assert int(customers) == 17


def test_export_to_server_path_and_delete(app_wh, tmp_path):
    insert_events(app_wh, "one", [
        ("a", dt.datetime(2024, 1, 1), "purchase", "o1", 10.0),
        ("b", dt.datetime(2024, 1, 2), "view", None, None),
    ])
    insert_events(app_wh, "two", [("z", dt.datetime(2024, 1, 1), "purchase", "o9", 1.0)])
    at = _page(app_wh)
    at.selectbox(key="export_dataset").set_value("one").run()
    at.radio(key="export_where").set_value("Write to a file on the server").run()
    out = tmp_path / "one.csv"
    at.text_input(key="export_path").input(str(out)).run()
    at.button(key="export_button").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any("Wrote 2 events" in s.value for s in at.success)
    back = pd.read_csv(out)
    assert sorted(back["customer_id"]) == ["a", "b"]

    # delete needs the typed name
    at.selectbox(key="delete_dataset").set_value("one").run()
    assert at.button(key="delete_button").disabled
    at.text_input(key="delete_confirm").input("on").run()
    assert at.button(key="delete_button").disabled
    at.text_input(key="delete_confirm").input("one").run()
    assert not at.button(key="delete_button").disabled
    at.button(key="delete_button").click().run()
    assert not at.exception, at.exception
    assert app_wh.datasets() == ["two"]
    assert app_wh.cursor().execute("SELECT count(*) FROM events WHERE dataset='one'").fetchone()[0] == 0
    assert any("Deleted the dataset" in s.value for s in at.success)
    assert at.sidebar.selectbox(key="dataset").options == ["two"]


def test_personal_data_flagged_dropped_by_default_and_pseudonymized(app_wh, tmp_path):
    src = tmp_path / "people.csv"
    src.write_text(
        "customer_id,email,order_date,amount\n"
        "c1,ann@example.com,2024-01-05,10\n"
        "c2,bob@example.org,2024-01-06,20\n"
        "c1,ann@example.com,2024-02-07,5\n",
        encoding="utf-8",
    )
    at = _use_path(_page(app_wh), src)
    keep = [c for c in at.checkbox if c.key and c.key.startswith("pii_")]
    assert [c.label for c in keep] == ["Keep email (email)"]
    assert keep[0].value is False
    pseudo = next(c for c in at.checkbox if c.key and c.key.startswith("pseudo_"))
    pseudo.check().run()
    _by_label(at.text_input, "Dataset name").input("people").run()
    _load_button(at).click().run()
    assert not at.error, [e.value for e in at.error]
    rows = app_wh.cursor().execute(
        "SELECT customer_id, coalesce(attributes, '') FROM events WHERE dataset='people'").fetchall()
    assert len(rows) == 3
    assert not any("@" in attrs for _, attrs in rows)  # the email column was dropped
    ids = {r[0] for r in rows}
    assert len(ids) == 2 and not ids & {"c1", "c2"}  # keyed pseudonyms, not the raw ids
    assert app_wh.cursor().execute(
        "SELECT pseudonymized FROM datasets WHERE name='people'").fetchone()[0] is True


def test_load_error_is_shown_and_nothing_changes(app_wh, tmp_path):
    insert_events(app_wh, "keep", [("a", dt.datetime(2024, 1, 1), "purchase", "o1", 10.0)])
    src = tmp_path / "orders.csv"
    src.write_text("client,day,amount\na,2024-01-05,10.5\nb,2024-01-06,20\n", encoding="utf-8")
    at = _use_path(_page(app_wh), src)
    # a name the warehouse refuses: the load itself fails
    _by_label(at.text_input, "Dataset name").input("broken/name").run()
    _load_button(at).click().run()
    assert not at.exception, at.exception
    assert any(e.value.startswith("Nothing was loaded:") and "dataset name" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert app_wh.datasets() == ["keep"]
    assert app_wh.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == 1
    assert app_wh.cursor().execute("SELECT count(*) FROM ingestions WHERE dataset LIKE 'broken%'").fetchone()[0] == 0


def test_load_is_disabled_until_the_mapping_has_what_a_load_needs(app_wh, tmp_path):
    src = tmp_path / "no_dates.csv"
    src.write_text("client,amount,product,n\nA1,12.50,sku1,1\nA2,7.00,sku2,2\nA1,3.25,sku3,1\n", encoding="utf-8")
    at = _use_path(_page(app_wh), src)
    assert _mapping(at)["event_time"] == "(none)"  # nothing in the file reads as a date
    assert _load_button(at).disabled
    needs = [w.value for w in at.warning if w.value.startswith("Load needs")]
    assert len(needs) == 1 and "Date and time" in needs[0] and "Customer id" not in needs[0], needs
    assert "Date and time" in (_load_button(at).help or "")
    # without a customer either, both are named
    _field_box(at, "customer_id").set_value("(none)").run()
    needs = [w.value for w in at.warning if w.value.startswith("Load needs")]
    assert "Customer id" in needs[0] and "Date and time" in needs[0] and _load_button(at).disabled
    _field_box(at, "customer_id").set_value("client").run()
    # a unit price needs a quantity column
    _field_box(at, "event_time").set_value("n").run()
    _field_box(at, "quantity").set_value("(none)").run()
    _by_label(at.checkbox, "The amount is a unit price").check().run()
    needs = [w.value for w in at.warning if w.value.startswith("Load needs")]
    assert len(needs) == 1 and "Quantity" in needs[0] and "Date and time" not in needs[0], needs
    assert _load_button(at).disabled
    _by_label(at.checkbox, "The amount is a unit price").uncheck().run()
    assert not [w for w in at.warning if w.value.startswith("Load needs")]
    assert not _load_button(at).disabled


def test_downloads_export_and_rejects(app_wh, tmp_path, monkeypatch):
    import io

    from streamlit.delta_generator import DeltaGenerator

    captured = {}
    real = DeltaGenerator.download_button

    def spy(self, label, data, *args, **kwargs):
        captured[kwargs.get("key")] = data
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    import streamlit as st

    bound = st.download_button  # st.download_button is bound to the main area at import time

    def spy_st(label, data, *args, **kwargs):
        captured[kwargs.get("key")] = data
        return bound(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", spy_st)
    src = tmp_path / "online_retail.csv"
    src.write_text(UCI_CSV.replace("536372,22632", "=1+1,22632"), encoding="utf-8")
    at = _use_path(_page(app_wh), src)
    _by_label(at.text_input, "Dataset name").input("retail").run()
    _load_button(at).click().run()
    assert not at.error, [e.value for e in at.error]
    assert "rejects_download" in captured, (list(captured), _metric_values(at), [w.value for w in at.warning])
    rejects = pd.read_csv(io.BytesIO(captured["rejects_download"]()), encoding="utf-8-sig")
    assert list(rejects["line_number"]) == [9]
    assert rejects["raw_line"].iloc[0].startswith("536371,22086")

    at.selectbox(key="export_dataset").set_value("retail").run()
    at.radio(key="export_fmt").set_value("parquet").run()
    parquet = captured["export_download"]()
    back = pd.read_parquet(io.BytesIO(parquet))
    n = app_wh.cursor().execute("SELECT count(*) FROM events WHERE dataset='retail'").fetchone()[0]
    assert len(back) == n == 8
    assert "=1+1" in set(back["order_id"])  # Parquet keeps text as it is
    at.radio(key="export_fmt").set_value("csv").run()
    csv = pd.read_csv(io.BytesIO(captured["export_download"]()), dtype=str, encoding="utf-8-sig")
    assert len(csv) == 8
    assert "'=1+1" in set(csv["order_id"])  # CSV neutralizes a formula-looking cell


def test_gzip_upload(app_wh):
    import gzip

    text = "customer_id,event_time,event_type,order_id,revenue\n" + "\n".join(
        f"g{i % 5},2024-05-{1 + i:02d} 09:00:00,purchase,o{i},{10 + i}" for i in range(12)
    )
    at = _page(app_wh)
    at.file_uploader(key=f"upload_{_gen(at)}").set_value(
        ("orders.csv.gz", gzip.compress(text.encode()), "application/gzip")).run()
    assert not at.error, [e.value for e in at.error]
    assert _by_label(at.text_input, "Dataset name").value == "orders"
    _load_button(at).click().run()
    assert _metric_values(at)["Rows loaded"] == 12
    assert app_wh.cursor().execute(
        "SELECT count(DISTINCT customer_id), sum(revenue) FROM events WHERE dataset='orders'"
    ).fetchone() == (5, float(sum(10 + i for i in range(12))))


def test_failed_load_clears_the_previous_report(app_wh, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("client,day,amount\na,2024-01-05,10.5\nb,2024-01-06,20\n", encoding="utf-8")
    at = _use_path(_page(app_wh), good)
    _load_button(at).click().run()
    assert any(h.value == "Validation report" for h in at.subheader)
    bad = tmp_path / "bad.csv"
    bad.write_text("client,day,amount\nc,2024-02-05,1\n", encoding="utf-8")
    at = _use_path(at, bad)
    _by_label(at.text_input, "Dataset name").input("bad/name").run()
    _load_button(at).click().run()
    assert any(e.value.startswith("Nothing was loaded:") for e in at.error)
    assert not any(h.value == "Validation report" for h in at.subheader)
    assert not any("Loaded “good”" in s.value for s in at.success)


def test_currency_code_is_checked_at_load(app_wh, tmp_path):
    src = tmp_path / "orders.csv"
    src.write_text("client,day,amount\na,2024-01-05,10.5\nb,2024-01-06,20\n", encoding="utf-8")
    at = _use_path(_page(app_wh), src)
    box = _by_label(at.text_input, "Currency of the amounts")
    assert box.value == ""  # nothing in the file says which
    box.input("EURO").run()
    assert any("'EURO' is not an ISO 4217 currency code" in e.value.replace("\\", "") for e in at.error), [e.value for e in at.error]
    assert _load_button(at).disabled
    _by_label(at.text_input, "Currency of the amounts").input("chf").run()
    assert not at.error and not _load_button(at).disabled
    _load_button(at).click().run()
    from analytics.currency import dataset_currency

    assert dataset_currency(app_wh, "orders").code == "CHF"
    assert dataset_currency(app_wh, "orders").source == "set"


def test_set_dataset_currency_with_a_clear_message_for_a_bad_code(app_wh):
    from analytics.currency import dataset_currency

    insert_events(app_wh, "shop", [("a", dt.datetime(2024, 1, 1), "purchase", "o1", 1234.5)])
    at = _page(app_wh)
    assert _frame_with(at, "currency")["currency"].tolist() == ["not set"]
    at.text_input(key="currency_code_shop").input("XAU").run()
    at.button(key="currency_set").click().run()
    assert any(e.value.startswith("The currency was not changed:") and "not a circulating currency" in e.value
               for e in at.error), [e.value for e in at.error]
    assert dataset_currency(app_wh, "shop").code is None
    at.text_input(key="currency_code_shop").input("£").run()
    at.button(key="currency_set").click().run()
    assert any("is a sign, not a code" in e.value.replace("\\", "") and "GBP" in e.value for e in at.error)
    at.text_input(key="currency_code_shop").input("gbp").run()
    at.button(key="currency_set").click().run()
    assert not at.exception and not at.error
    assert any("now shown in GBP" in s.value for s in at.success)
    assert dataset_currency(app_wh, "shop").code == "GBP"
    assert _frame_with(at, "currency")["currency"].tolist() == ["GBP"]
    at.switch_page("views/overview.py").run()
    assert next(m.value for m in at.metric if m.label == "Revenue (net)") == "£1,235"  # a card: whole pounds
    at.switch_page(DATA_PAGE).run()
    at.button(key="currency_forget").click().run()
    assert dataset_currency(app_wh, "shop").code is None


@pytest.fixture
def keyed_env(monkeypatch):
    """An encrypted warehouse for the app (set before app_wh opens it)."""
    from analytics import warehouse as warehouse_mod

    if not warehouse_mod.memory_files():
        pytest.skip("memory files need Linux (memfd)")
    monkeypatch.setenv("VALUESCOPE_KEY", "correct horse battery staple")
    monkeypatch.setenv("VALUESCOPE_ENCRYPTION_FALLBACK", "mbedtls")
    monkeypatch.delenv("VALUESCOPE_TMP", raising=False)


def test_an_encrypted_warehouses_upload_is_held_in_memory(keyed_env, app_wh):
    """A gzip upload into an encrypted warehouse: kept in memory, loaded, and no customer id is in any
    file under the data folder after the upload or after the load."""
    import gzip
    from pathlib import Path

    assert app_wh.encrypted
    ids = [f"CUSTQ7{i:04d}" for i in range(17)]
    rows = ["customer_id,event_time,event_type,order_id,revenue"]
    rows += [f"{ids[i % 17]},2024-03-{1 + i % 28:02d} 10:00:00,purchase,o{i},{i + 1}.5" for i in range(40)]
    data_dir = Path(app_wh.path).parent

    def leaked() -> list[str]:
        blobs = [f.read_bytes() for f in data_dir.rglob("*") if f.is_file()]
        return [i for i in ids if any(i.encode() in b for b in blobs)]

    at = _page(app_wh)
    at.file_uploader(key=f"upload_{_gen(at)}").set_value(
        ("shop.csv.gz", gzip.compress("\n".join(rows).encode()), "application/gzip")).run()
    assert not at.error, [e.value for e in at.error]
    held = at.session_state["_upload_tmp"]
    assert held["path"].startswith("/proc/self/fd/") and held["memory"].size > 0
    assert not leaked()
    _load_button(at).click().run()
    assert not at.exception, at.exception
    assert _metric_values(at)["Rows loaded"] == 40
    assert held["memory"].fd is None  # freed after the load
    app_wh.cursor().execute("CHECKPOINT")
    assert not leaked()
    assert app_wh.cursor().execute("SELECT count(DISTINCT customer_id) FROM events").fetchone()[0] == 17


def test_header_only_upload_stops_before_the_mapping(app_wh):
    # a header without rows has nothing to map: one error, no Load button, no date-format warning
    insert_events(app_wh, "keep", [("a", dt.datetime(2024, 1, 1), "purchase", "o1", 10.0)])
    at = _page(app_wh)
    at.file_uploader(key=f"upload_{_gen(at)}").set_value(
        ("orders.csv", b"customer_id,order_date,amount\n", "text/csv")).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["This file cannot be loaded: it has a header but no data rows. Nothing "
                                           "was changed; the datasets below are as they were."]
    assert not [w.value for w in at.warning if "date" in w.value]
    assert not [b for b in at.button if b.label == "Load"]
    assert app_wh.datasets() == ["keep"]


def test_purchases_without_amount_are_named_in_the_preview_and_the_report(app_wh, tmp_path):
    src = tmp_path / "orders.csv"
    src.write_text("customer_id,order_date,amount\nc1,2024-01-02,10.50\nc1,2024-02-03,\nc2,2024-01-05,7.25\n"
                   "c3,2024-01-09,\nc3,2024-03-01,4.00\n", encoding="utf-8")
    at = _use_path(_page(app_wh), src)
    assert any("2 of the first 5 rows are purchases with no amount" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    _by_label(at.text_input, "Dataset name").input("orders").run()
    _load_button(at).click().run()
    assert not at.exception, at.exception
    assert _metric_values(at)["Rows loaded"] == 5
    assert any("2 purchases have no amount" in w.value and "orders with no revenue" in w.value
               for w in at.warning), [w.value for w in at.warning]


def test_excel_serial_dates_are_offered_in_words_and_load(app_wh, tmp_path):
    src = tmp_path / "sheet.csv"
    src.write_text("customer_id,order_date,amount\nc1,35431,10.50\nc1,35462.5,8.00\nc2,35490.25,7.25\n",
                   encoding="utf-8")
    at = _use_path(_page(app_wh), src)
    fmt_box = _by_label(at.selectbox, "How the dates are written")
    assert fmt_box.value == "excel"
    assert fmt_box.format_func(fmt_box.value).startswith("days since 30 December 1899 (an Excel serial date)")
    _by_label(at.text_input, "Dataset name").input("sheet").run()
    _load_button(at).click().run()
    assert not at.exception, at.exception
    got = [r[0] for r in app_wh.cursor().execute(
        "SELECT event_time FROM events WHERE dataset = 'sheet' ORDER BY 1").fetchall()]
    assert got == [dt.datetime(1997, 1, 1), dt.datetime(1997, 2, 1, 12), dt.datetime(1997, 3, 1, 6)]


def test_load_progress_reads_like_the_rest_of_the_product():
    """The load's progress text: the step in words, then the percentage as formatting.percent writes it
    ("70 %", not Python's or d3's "70%"); no step: the percentage alone; out-of-range fractions clamped."""
    from analytics.formatting import percent
    from dashboard.widgets import progress_text

    assert progress_text(0.7, "writing rows") == f"Writing rows… {percent(0.7, 0)}" == "Writing rows… 70 %"
    assert progress_text(0.25) == "25 %"
    assert progress_text(1.7, "done") == "Done… 100 %" and progress_text(-1, "") == "0 %"
    assert progress_text(0.5, "*bold*").startswith("\\*bold")  # escaped: the step is shown as written


def test_after_a_load_the_currency_and_export_pickers_show_the_new_dataset(app_wh, tmp_path):
    # a file whose currency nobody could guess: right after its load the Currency tab must offer the new
    # dataset, not the one the tab showed before (a currency typed there went to the other dataset)
    from tests.dashboard.conftest import insert_events

    insert_events(app_wh, "earlier", [("x", pd.Timestamp("2024-01-01"), "purchase", "o1", 5.0)])
    src = tmp_path / "orders.csv"
    src.write_text("client,day,amount\na,2024-01-05,10.5\nb,2024-01-06,20\n", encoding="utf-8")
    at = _page(app_wh)
    assert at.selectbox(key="currency_dataset").value == "earlier"
    at = _use_path(at, src)
    _by_label(at.text_input, "Dataset name").input("fresh").run()
    _load_button(at).click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="dataset").value == "fresh"
    assert at.selectbox(key="currency_dataset").value == "fresh"
    assert at.selectbox(key="export_dataset").value == "fresh"
