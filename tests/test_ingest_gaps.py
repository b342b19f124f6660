"""Values a real export holds that loaded without a word or could not be loaded at all:
purchases with an empty amount, Excel serial day numbers as dates, integer ids written
with a trailing '.0'."""
from __future__ import annotations

import datetime as dt
import random

from analytics.ingest import inspect_source, ingest

from tests.test_ingest_direct import attempts, line_by_line, write  # noqa: F401 (fixture)


def _order_rows(n, empty_at, seed=3):
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        amount = "" if i in empty_at else f"{rng.uniform(1, 300):.2f}"
        lines.append(f"c{rng.randint(1, 40)},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{amount}\n")
    return lines


def test_purchases_without_amount_are_kept_counted_and_named(wh, tmp_path, attempts):
    empty_at = {4, 17, 150, 2100, 2201}  # three in the previewed rows, two after them
    p = write(tmp_path, "customer_id,order_date,amount\n" + "".join(_order_rows(2300, empty_at)))
    pv = inspect_source(p)
    assert "3 of the first 2,000 rows are purchases with no amount: they will load as orders with no revenue" \
        " (fill in the amounts to count their revenue)" in pv.warnings
    r = ingest(wh, p, "d")
    assert attempts == [True]  # the direct read kept the load
    assert r.rows_loaded == 2300 and r.rows_rejected == 0
    assert r.purchases_without_amount == 5
    assert "5 purchases have no amount; they count as orders with no revenue" in r.warnings
    assert not [w for w in r.warnings if "first 2,000" in w]  # the preview's partial count is not repeated
    n = wh.cursor().execute("SELECT count(*) FROM events WHERE dataset = 'd' AND event_type = 'purchase' "
                            "AND revenue IS NULL").fetchone()[0]
    assert n == 5
    assert r.to_dict()["purchases_without_amount"] == 5
    # the line-by-line path says the same
    _, r2, err = line_by_line(p)
    assert err is None and r2.purchases_without_amount == 5 and r2.warnings == r.warnings


def test_one_purchase_without_amount_and_views_without_amount(wh, tmp_path):
    p = write(tmp_path, "user_id,timestamp,event,amount\n"
                        "u1,2024-01-02 10:00:00,view,\n"
                        "u1,2024-01-02 10:05:00,purchase,\n"
                        "u2,2024-01-03 11:00:00,view,\n"
                        "u2,2024-01-03 11:02:00,purchase,12.50\n")
    r = ingest(wh, p, "d")
    assert r.rows_loaded == 4
    assert r.purchases_without_amount == 1  # views never have an amount: not counted
    assert "1 purchase has no amount; it counts as an order with no revenue" in r.warnings


def test_amounts_all_present_say_nothing(wh, tmp_path):
    p = write(tmp_path, "customer_id,order_date,amount\n" + "".join(_order_rows(50, set())))
    r = ingest(wh, p, "d")
    assert r.purchases_without_amount == 0
    assert not [w for w in r.warnings + inspect_source(p).warnings if "no amount" in w]


def _excel_serial(when: dt.datetime) -> float:
    """Excel's serial day of ``when``, computed the way Excel counts (1900-01-01 is day 1, and the
    fictitious 1900-02-29 is day 60), not from the loader's 1899-12-30 origin."""
    days = (when - dt.datetime(1900, 1, 1)).total_seconds() / 86400 + 1
    return days + (1 if when >= dt.datetime(1900, 3, 1) else 0)


def test_excel_serial_days_are_detected_and_loaded(wh, tmp_path, attempts):
    assert _excel_serial(dt.datetime(1997, 1, 1)) == 35431  # the published example
    rng = random.Random(11)
    truth, lines = [], []
    for i in range(300):
        when = dt.datetime(1997, 1, 1) + dt.timedelta(days=rng.randint(0, 540))
        if i % 3:  # a time of day on two rows in three, to the minute as spreadsheets keep it
            when += dt.timedelta(minutes=rng.randint(0, 24 * 60 - 1))
            cell = repr(_excel_serial(when))
        else:
            cell = f"{_excel_serial(when):.0f}"
        truth.append(when)
        lines.append(f"c{i % 37},{cell},{rng.uniform(5, 90):.2f}\n")
    p = write(tmp_path, "customer_id,order_date,amount\n" + "".join(lines))
    pv = inspect_source(p)
    assert pv.date_formats == ["excel"] and pv.mapping.date_format == "excel"
    assert not [w for w in pv.warnings if "date" in w]
    r = ingest(wh, p, "d")
    assert r.rows_loaded == 300 and r.rows_rejected == 0 and attempts == [True]
    got = sorted(x[0] for x in wh.cursor().execute("SELECT event_time FROM events WHERE dataset = 'd'").fetchall())
    assert got == sorted(truth)
    _, r2, err = line_by_line(p)
    assert err is None and r2.rows_loaded == 300


def test_excel_serial_days_given_by_hand_reject_what_is_not_one(wh, tmp_path):
    p = write(tmp_path, "customer_id,order_date,amount\nc1,35431,10\nc2,35431.75,11\nc3,1997-01-02,12\n"
                        "c4,12,13\n")
    r = ingest(wh, p, "d", mapping={"columns": {"customer_id": "customer_id", "event_time": "order_date",
                                                "revenue": "amount"}, "date_format": "excel"})
    assert r.rows_loaded == 2 and r.rows_rejected == 2
    got = [x[0] for x in wh.cursor().execute("SELECT event_time FROM events ORDER BY 1").fetchall()]
    assert got == [dt.datetime(1997, 1, 1), dt.datetime(1997, 1, 1, 18)]
    reasons = [x[0] for x in wh.cursor().execute("SELECT reason FROM rejects ORDER BY line_number").fetchall()]
    assert reasons == ["date '1997-01-02' does not match the format Excel serial day", "date before 1990: 1900-01-12 00:00:00"]


def test_numbers_that_are_no_serial_days_are_not_taken_for_dates():
    from analytics.ingest.mapping import candidate_date_formats

    assert candidate_date_formats(["35431", "17850"]) == []  # 17850: below the range (a UCI customer id)
    assert candidate_date_formats(["35431", "99999"]) == []
    assert candidate_date_formats(["35431", "35431.5"]) == ["excel"]
    assert candidate_date_formats(["35431"], excel=False) == []


def test_a_code_column_of_five_digits_is_not_guessed_to_be_the_date(tmp_path):
    # no column is named as a date: the 5-digit store codes must not be taken for Excel days
    p = write(tmp_path, "customer_id,store,when_bought\nc1,40001,2024-01-02\nc2,40117,2024-01-03\n")
    pv = inspect_source(p)
    assert pv.mapping.columns["event_time"] == "when_bought"
    p = write(tmp_path, "customer_id,store,amount\nc1,40001,3.5\nc2,40117,4.5\n", name="g.csv")
    pv = inspect_source(p)
    assert pv.mapping.columns["event_time"] is None


UCI_AS_FLOATS = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047.0,United Kingdom
C536379,D,Discount,-1,12/13/2010 9:41,27.50,14527.0,United Kingdom
536370,22728,ALARM CLOCK BAKELIKE PINK,24,12/14/2010 8:45,3.75,12583.0,France
"""


def test_integer_ids_written_as_floats_lose_the_point_zero(wh, tmp_path, attempts):
    p = write(tmp_path, UCI_AS_FLOATS)
    pv = inspect_source(p)
    assert pv.layout == "uci_online_retail" and pv.mapping.strip_point_zero == ["customer_id"]
    assert "the customer ids in 'CustomerID' are whole numbers written as decimals ('17850.0'): they are " \
        "loaded without the '.0' ('17850')" in pv.warnings
    r = ingest(wh, p, "d")
    assert r.rows_loaded == 5 and attempts == [True]
    ids = [x[0] for x in wh.cursor().execute("SELECT DISTINCT customer_id FROM events ORDER BY 1").fetchall()]
    assert ids == ["12583", "13047", "14527", "17850"]
    orders = {x[0] for x in wh.cursor().execute("SELECT order_id FROM events").fetchall()}
    assert orders == {"536365", "536367", "C536379", "536370"}
    # the line-by-line path gives the same ids
    wh2, r2, err = line_by_line(p)
    assert err is None
    assert sorted(x[0] for x in wh2.cursor().execute("SELECT DISTINCT customer_id FROM events").fetchall()) == ids


def test_ids_with_real_decimals_or_mixed_are_left_as_written(wh, tmp_path):
    p = write(tmp_path, "customer_id,order_id,order_date,amount\n17850.0,1.5,2024-01-02,3\n13047,2.0,2024-01-03,4\n")
    pv = inspect_source(p)
    assert pv.mapping.strip_point_zero == []
    assert not [w for w in pv.warnings if "decimals" in w]
    ingest(wh, p, "d")
    ids = sorted(x[0] for x in wh.cursor().execute("SELECT customer_id FROM events").fetchall())
    assert ids == ["13047", "17850.0"]


def test_point_zero_is_for_id_fields_only():
    import pytest

    from analytics.ingest import IngestError, Mapping

    m = Mapping(columns={"customer_id": "a", "event_time": "b"}, strip_point_zero=["revenue"])
    with pytest.raises(IngestError, match="'strip_point_zero' takes id fields only"):
        m.validate(["a", "b"])
