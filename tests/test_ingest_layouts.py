"""Layouts recognized with no manual mapping, encodings and dialects with characters intact."""
from __future__ import annotations

import datetime as dt

import pytest

from analytics.ingest import IngestError, Mapping, ingest, inspect_source, rejects_frame


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    with open(p, "w", encoding=encoding, newline="") as f:
        f.write(text)
    return p


def q(wh, sql, params=()):
    return wh.cursor().execute(sql, list(params)).fetchall()


# ---------------------------------------------------------------- layouts
def test_canonical_events_layout(wh, tmp_path):
    text = ("customer_id,event_time,event_type,order_id,item_id,category,quantity,revenue,rating,text,country\n"
            "c1,2024-03-01 10:00:00,view,,i1,books,,,,,DE\n"
            "c1,2024-03-01 10:05:00,purchase,o1,i1,books,2,31.5,,,DE\n"
            "c1,2024-03-09 09:00:00,return,o1,i1,books,1,15.75,,,DE\n"
            "c2,2024-03-02 11:00:00,review,,i1,books,,,4,great read,FR\n")
    p = write(tmp_path, "ev.csv", text)
    pv = inspect_source(p)
    assert pv.layout == "events" and pv.date_formats == ["%Y-%m-%d %H:%M:%S"]
    assert pv.mapping.columns["event_type"] == "event_type" and pv.mapping.columns["text"] == "text"
    r = ingest(wh, p, "ev")
    assert (r.rows_read, r.rows_loaded, r.layout) == (4, 4, "events")
    rows = q(wh, "SELECT event_type, quantity, revenue, rating, text, country FROM events ORDER BY event_time")
    assert rows == [("view", None, None, None, None, "DE"), ("purchase", 2.0, 31.5, None, None, "DE"),
                    ("review", None, None, 4.0, "great read", "FR"), ("return", 1.0, 15.75, None, None, "DE")]


def test_plain_order_log_by_names_and_contents(wh, tmp_path):
    p = write(tmp_path, "orders.csv", "client,when,total,qty,order_no,product\n"
                                      "A1,2023-05-01,19.99,1,1001,p1\nA2,2023-05-02,-5.00,1,1002,p2\n"
                                      "A1,2023-06-11,7.50,3,1003,p3\n")
    pv = inspect_source(p)
    assert pv.layout == "orders"
    c = pv.mapping.columns
    assert (c["customer_id"], c["event_time"], c["revenue"], c["quantity"], c["order_id"], c["item_id"]) == \
           ("client", "when", "total", "qty", "order_no", "product")
    r = ingest(wh, p, "orders")
    assert r.rows_loaded == 3
    # a negative amount is a return (stored positive), not an error
    assert q(wh, "SELECT event_type, revenue FROM events WHERE customer_id = 'A2'") == [("return", 5.0)]


def test_order_log_with_unnamed_columns_found_by_contents(wh, tmp_path):
    p = write(tmp_path, "o2.csv", "customer,col_a,col_b\nx,2022-01-03 12:00:00,12.25\ny,2022-01-04 13:30:00,3.10\n")
    pv = inspect_source(p)
    assert pv.mapping.columns["event_time"] == "col_a" and pv.mapping.columns["revenue"] == "col_b"


def test_uci_online_retail(wh, tmp_path):
    text = ("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
            "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
            "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527,United Kingdom\n"
            "536414,22139,,56,12/1/2010 11:52,0,,United Kingdom\n"
            "536520,21123,SET/10 IVORY POLKADOT PARTY CANDLES,1,12/13/2010 12:43,1.25,14729,France\n")
    p = write(tmp_path, "Online Retail.csv", text)
    pv = inspect_source(p)
    assert pv.layout == "uci_online_retail"
    assert pv.mapping.revenue_is_unit_price and pv.mapping.return_prefix == "C"
    assert pv.date_formats == ["%m/%d/%Y %H:%M"]  # 12/13 disambiguates month-first
    r = ingest(wh, p, "uci")
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (5, 4, 1)
    assert rejects_frame(wh, r.ingestion_id).reason.tolist() == ["missing customer id"]
    rows = q(wh, "SELECT customer_id, event_type, quantity, round(revenue, 2), order_id, item_id, country, event_time "
                 "FROM events ORDER BY event_time, item_id")
    assert rows[0][:7] == ("17850", "purchase", 6.0, 20.34, "536365", "71053", "United Kingdom")
    assert rows[2][:7] == ("14527", "return", 1.0, 27.5, "C536379", "D", "United Kingdom")
    assert rows[3][7] == dt.datetime(2010, 12, 13, 12, 43)
    # the description is kept as an attribute, not as review text
    assert q(wh, "SELECT count(*) FROM events WHERE text IS NOT NULL") == [(0,)]
    assert "WHITE METAL LANTERN" in q(wh, "SELECT attributes FROM events WHERE item_id = '71053'")[0][0]


def test_uci_newer_header_names(wh, tmp_path):
    p = write(tmp_path, "online_retail_II.csv",
              "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
              "489434,85048,LED BULB,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n")
    pv = inspect_source(p)
    assert pv.layout == "uci_online_retail" and pv.mapping.columns["customer_id"] == "Customer ID"
    ingest(wh, p, "uci2")
    assert q(wh, "SELECT round(revenue, 2) FROM events") == [(83.4,)]


TAOBAO_ROWS = "1,2268318,2520377,pv,1511544070\n1,2333346,2520771,fav,1511561733\n" \
              "1,2576651,149192,cart,1511572885\n2,3830808,4181361,buy,1511593493\n1,2576651,149192,pv,99\n"


@pytest.mark.parametrize("header", ["", "user_id,item_id,category_id,behavior_type,timestamp\n"])
def test_taobao_with_and_without_header(wh, tmp_path, header):
    p = write(tmp_path, "UserBehavior.csv", header + TAOBAO_ROWS)
    pv = inspect_source(p)
    assert pv.layout == "taobao" and pv.dialect.has_header == bool(header)
    r = ingest(wh, p, "tb")
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (5, 4, 1)
    line = 6 if header else 5
    assert rejects_frame(wh, r.ingestion_id).line_number.tolist() == [line]  # 1970 timestamp: before 1990
    rows = q(wh, "SELECT customer_id, item_id, category, event_type, event_time FROM events ORDER BY event_time")
    assert [r[3] for r in rows] == ["view", "cart", "cart", "purchase"]  # fav -> cart (documented)
    assert rows[0][:3] == ("1", "2268318", "2520377")
    assert rows[0][4] == dt.datetime(2017, 11, 24, 17, 21, 10)  # Unix seconds, UTC


def test_cdnow_sample(wh, test_data):
    p = test_data / "CDNOW_sample.txt"
    pv = inspect_source(p)
    assert pv.layout == "cdnow" and pv.dialect.delimiter == "whitespace" and not pv.dialect.has_header
    r = ingest(wh, p, "cdnow")
    assert (r.rows_read, r.rows_loaded, r.rows_rejected, r.rows_duplicate) == (6919, 6919, 0, 0)
    n, lo, hi, first, last = q(wh, "SELECT count(DISTINCT customer_id), min(customer_id::INT), max(customer_id::INT),"
                                   " min(event_time), max(event_time) FROM events")[0]
    assert (n, lo, hi) == (2357, 1, 2357)  # the sample ids of the published summary
    assert first == dt.datetime(1997, 1, 1) and last == dt.datetime(1998, 6, 30)
    assert q(wh, "SELECT quantity, revenue FROM events WHERE customer_id = '1' ORDER BY event_time LIMIT 1") == \
        [(2.0, 29.33)]
    # the published per-customer frequency (repeat purchase days in the 39-week calibration period)
    import pandas as pd

    summ = pd.read_csv(test_data / "cdnow_customers_summary.csv")
    freq = dict(q(wh, "SELECT customer_id::INT, count(DISTINCT event_time::DATE) - 1 FROM events "
                      "WHERE event_time < DATE '1997-10-01' GROUP BY 1"))
    assert all(freq[i] == f for i, f in zip(summ.ID, summ.frequency))
    # re-ingesting the same file adds nothing
    r2 = ingest(wh, p, "cdnow")
    assert (r2.rows_loaded, r2.rows_duplicate) == (0, 6919)


# ---------------------------------------------------------------- encodings and dialects
ROWS = [("Müller", "13.01.2024", "12,50"), ("Zoë", "14.01.2024", "3,99"), ("Ørsted", "15.02.2024", "1.234,00")]


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16", "utf-8-sig"])
def test_encodings_keep_characters(wh, tmp_path, encoding):
    euro = "€" if encoding in ("cp1252", "utf-16", "utf-8-sig") else "EUR"
    text = "Kunde;Datum;Betrag;Notiz\r\n" + "".join(f"{c};{d};{a};Preis in {euro}\r\n" for c, d, a in ROWS)
    p = write(tmp_path, f"de_{encoding}.csv", text, encoding=encoding)
    pv = inspect_source(p)
    assert pv.dialect.delimiter == ";" and pv.dialect.has_header
    assert pv.date_formats == ["%d.%m.%Y"] and pv.mapping.decimal_comma
    m = pv.mapping
    m.attributes = ["Notiz"]
    r = ingest(wh, p, "de", mapping=m)
    assert r.rows_loaded == 3, rejects_frame(wh, r.ingestion_id)
    rows = q(wh, "SELECT customer_id, event_time, revenue, attributes FROM events ORDER BY event_time")
    assert [x[0] for x in rows] == ["Müller", "Zoë", "Ørsted"]
    assert rows[0][1] == dt.datetime(2024, 1, 13) and [x[2] for x in rows] == [12.5, 3.99, 1234.0]
    assert euro in rows[0][3]


@pytest.mark.parametrize("sep", ["\t", "|", ";", ","])
def test_delimiters_and_crlf(wh, tmp_path, sep):
    text = sep.join(["customer_id", "date", "amount"]) + "\r\n"
    text += "".join(sep.join([c, d, a]) + "\r\n" for c, d, a in
                    [("a", "2024-02-01", "1.5"), ("b", "2024-02-02", "2"), ("c", "2024-02-03", "x")])
    p = write(tmp_path, "d.tsv" if sep == "\t" else "d.txt", text)
    assert inspect_source(p).dialect.delimiter == sep
    r = ingest(wh, p, "d")
    assert (r.rows_loaded, r.rows_rejected) == (2, 1)
    assert rejects_frame(wh, r.ingestion_id).line_number.tolist() == [4]
    assert q(wh, "SELECT customer_id, revenue FROM events ORDER BY 1") == [("a", 1.5), ("b", 2.0)]


def test_quoted_fields_with_delimiters_quotes_and_newlines(wh, tmp_path):
    text = ('customer_id,event_time,event_type,text\n'
            'c1,2024-01-01 10:00:00,review,"good, really ""good"""\n'
            'c2,2024-01-02 10:00:00,review,"two\nlines"\n'
            'c3,2024-01-03 10:00:00,review,plain\n'
            'c4,2024-01-04 10:00:00,revew,typo\n')
    p = write(tmp_path, "q.csv", text)
    r = ingest(wh, p, "q")
    assert q(wh, "SELECT text FROM events ORDER BY event_time") == [('good, really "good"',), ("two\nlines",),
                                                                    ("plain",)]
    assert rejects_frame(wh, r.ingestion_id)[["line_number", "reason"]].values.tolist() == \
        [[6, "unknown event type 'revew'"]]


def test_ambiguous_day_month_must_be_chosen(wh, tmp_path):
    p = write(tmp_path, "amb.csv", "customer_id,date,amount\na,02/01/2024,1\nb,03/04/2024,2\n")
    pv = inspect_source(p)
    assert set(pv.date_formats) == {"%d/%m/%Y", "%m/%d/%Y"} and pv.mapping.date_format is None
    with pytest.raises(IngestError, match="ambiguous.*%d/%m/%Y.*--date-format"):
        ingest(wh, p, "amb")
    assert not wh.has_dataset("amb")
    m = pv.mapping
    m.date_format = "%d/%m/%Y"
    ingest(wh, p, "amb", mapping=m)
    assert q(wh, "SELECT min(event_time) FROM events") == [(dt.datetime(2024, 1, 2),)]


def test_mapping_round_trip_and_errors(tmp_path):
    m = Mapping(columns={"customer_id": "a", "event_time": "b"}, date_format="%Y-%m-%d")
    assert Mapping.from_dict(m.to_dict()) == m
    with pytest.raises(IngestError, match="unknown field"):
        Mapping(columns={"nope": "a"})
    with pytest.raises(IngestError, match="no such column"):
        m.validate(["a", "c"])


def test_customer_attributes_go_to_attributes_json(wh, tmp_path):
    import json

    p = write(tmp_path, "attr.csv", "customer_id,order_date,amount,country,segment,City,internal_flag\n"
                                    "c1,2024-01-05,10,DE,gold,Berlin,x\n")
    pv = inspect_source(p)
    assert pv.mapping.columns["country"] == "country" and pv.mapping.attributes == ["segment", "City"]
    ingest(wh, p, "attr")
    country, attrs = q(wh, "SELECT country, attributes FROM events")[0]
    assert country == "DE" and json.loads(attrs) == {"segment": "gold", "City": "Berlin"}


@pytest.mark.parametrize("sep", ["\t", "|", ";"])
def test_quoted_field_containing_the_delimiter(wh, tmp_path, sep):
    head = sep.join(["customer_id", "event_time", "event_type", "text"])
    text = (f'{head}\nc1{sep}2024-01-01 10:00:00{sep}review{sep}"a{sep}b ""q"""\n'
            f"c2{sep}2024-01-02 10:00:00{sep}review{sep}plain\n")
    ingest(wh, write(tmp_path, "qd.txt", text), "qd")
    assert q(wh, "SELECT text FROM events ORDER BY event_time") == [(f'a{sep}b "q"',), ("plain",)]
