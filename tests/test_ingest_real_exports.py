"""What real exports carry: the odd broken date (the format is still found, the broken rows are
rejected with their line numbers and every other row is loaded; a column that is not one format is
still refused with a request for the format) and spreadsheet-formatted amounts ("1,234.50")."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analytics.ingest import IngestError, ingest, rejects_frame
from analytics.ingest.mapping import candidate_date_formats

HEADER = "customer_id,order_date,amount\n"


def order_lines(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    day0 = dt.date(1997, 1, 1)
    return [f"c{int(rng.integers(0, 80)):03d},{day0 + dt.timedelta(days=int(rng.integers(0, 540)))},"
            f"{rng.integers(100, 9000) / 100:.2f}" for _ in range(n)]


def write(tmp_path, lines):
    p = tmp_path / "orders.csv"
    p.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_broken_dates_are_rejected_and_the_rest_loaded(wh, tmp_path):
    lines = order_lines(300)
    broken = {40: "not a date", 200: "1997-02-30"}  # index into lines; the file's line is index + 2
    for i, text in broken.items():
        c, _, amount = lines[i].split(",")
        lines[i] = f"{c},{text},{amount}"
    r = ingest(wh, write(tmp_path, lines), "orders")
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (300, 298, 2)
    rejects = rejects_frame(wh, r.ingestion_id)
    assert sorted(rejects.line_number.tolist()) == [i + 2 for i in broken]
    good = [ln.split(",") for i, ln in enumerate(lines) if i not in broken]
    cur = wh.cursor()
    got = cur.execute("SELECT count(*), sum(revenue), min(event_time)::DATE, max(event_time)::DATE "
                      "FROM events WHERE dataset = 'orders'").fetchone()
    assert got[0] == len(good)
    assert got[1] == pytest.approx(sum(float(g[2]) for g in good), rel=1e-12)
    assert (str(got[2]), str(got[3])) == (min(g[1] for g in good), max(g[1] for g in good))


def test_too_many_broken_dates_still_ask_for_the_format(wh, tmp_path):
    lines = order_lines(300, seed=1)
    for i in range(0, 300, 50):  # 6 of 300 (2 %): not an odd broken date any more
        c, _, amount = lines[i].split(",")
        lines[i] = f"{c},unknown,{amount}"
    with pytest.raises(IngestError, match="do not match a known format"):
        ingest(wh, write(tmp_path, lines), "orders")


def test_small_files_must_parse_whole(wh, tmp_path):
    lines = order_lines(30, seed=2)
    c, _, amount = lines[5].split(",")
    lines[5] = f"{c},not a date,{amount}"
    with pytest.raises(IngestError, match="do not match a known format"):
        ingest(wh, write(tmp_path, lines), "orders")


def test_candidates_with_broken_values():
    iso = [f"1997-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    assert candidate_date_formats(iso) == ["%Y-%m-%d"]
    assert candidate_date_formats(iso + ["not a date", "1997-02-30"]) == ["%Y-%m-%d"]
    # day-first dates with days above 12 and one broken value: still only day first
    dmy = [f"{d:02d}/{m:02d}/1997" for m in range(1, 13) for d in range(1, 29)]
    assert candidate_date_formats(dmy + ["31/02/1997"]) == ["%d/%m/%Y"]
    # half ISO, half day-first: no format, whatever the tolerance
    assert candidate_date_formats(iso[::2] + dmy[::2]) == []
    # numbers are not dates
    assert candidate_date_formats([f"{x:.2f}" for x in np.linspace(1, 99, 300)]) == []


def test_the_preview_says_how_many_dates_will_be_rejected(tmp_path):
    from analytics.ingest import inspect_source

    lines = order_lines(300, seed=3)
    for i in (10, 20, 30):
        c, _, amount = lines[i].split(",")
        lines[i] = f"{c},31/31/1997,{amount}"
    pv = inspect_source(write(tmp_path, lines))
    assert pv.mapping.date_format == "%Y-%m-%d"
    assert [w for w in pv.warnings if "rejected" in w] == [
        "3 of the first 300 values in 'order_date' are not dates in %Y-%m-%d: those rows will be rejected"]
    clean = inspect_source(write(tmp_path, order_lines(300, seed=3)))
    assert not [w for w in clean.warnings if "rejected" in w]


def test_amounts_with_thousands_separators(wh, tmp_path):
    p = tmp_path / "formatted.csv"
    p.write_text(HEADER + 'a,2024-01-05,"1,234.50"\nb,2024-01-06,"$2,000"\nc,2024-01-07,"-1,000,000.25"\n'
                 'd,2024-01-08,"1,5"\ne,2024-01-09,"12,34,567"\nf,2024-01-10,12.5\n', encoding="utf-8")
    r = ingest(wh, p, "formatted")
    rows = wh.cursor().execute("SELECT customer_id, revenue, event_type FROM events WHERE dataset = 'formatted'")
    got = {c: (-v if t == "return" else v) for c, v, t in rows.fetchall()}  # a negative amount is a return
    assert got == {"a": 1234.5, "b": 2000.0, "c": -1000000.25, "f": 12.5}
    # not grouped in threes: a decimal comma or another grouping, never guessed
    reasons = dict(zip(*[rejects_frame(wh, r.ingestion_id)[c].tolist() for c in ("line_number", "reason")]))
    assert reasons == {5: "non-numeric amount '1,5'", 6: "non-numeric amount '12,34,567'"}


def test_blank_rows_of_a_spreadsheet_export_are_named_as_such(wh, tmp_path):
    p = tmp_path / "export.csv"
    p.write_text("customer_id;order_date;amount\na;2024-01-05;10\nb;2024-01-06;20\n;2024-01-07;5\n;;\n;;\n",
                 encoding="utf-8")
    r = ingest(wh, p, "export")
    assert (r.rows_loaded, r.rows_rejected) == (2, 3)
    reasons = dict(zip(*[rejects_frame(wh, r.ingestion_id)[c].tolist() for c in ("line_number", "reason")]))
    assert reasons == {4: "missing customer id", 5: "empty row (no customer, date or amount)",
                       6: "empty row (no customer, date or amount)"}


def test_line_endings_the_reader_cannot_split_are_named(wh, tmp_path):
    p = tmp_path / "twice.csv"
    p.write_bytes(b"customer_id,order_date,amount\r\r\n" + b"".join(
        f"c{i},2024-01-{i % 28 + 1:02d},{i}.5\r\r\n".encode() for i in range(300)))
    with pytest.raises(IngestError, match="line endings are mixed up.*nothing was written") as info:
        ingest(wh, p, "twice")
    assert "state machine" not in str(info.value)
    assert wh.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == 0


@pytest.mark.parametrize("layout", ["shopify", "iso"])
def test_times_with_a_utc_offset_are_found_and_kept_as_the_instant_in_utc(wh, tmp_path, layout):
    # Shopify's orders export writes '2025-01-17 15:04:00 +0100', ISO 8601 APIs '...T15:04:00+01:00':
    # the format is found without asking, and each order is the instant it names, in UTC (the days the
    # Spark engine uses too), whatever the machine's time zone
    rng = np.random.default_rng(3)
    written = []
    lines = []
    for i in range(120):
        t = dt.datetime(2025, 1, 1) + dt.timedelta(minutes=int(rng.integers(0, 300 * 24 * 60)))
        if i == 0:
            t = dt.datetime(2025, 3, 1, 0, 30)  # just after midnight at +01:00: 28 February in UTC
        offset = ["+0100", "+0200", "-0500", "+0530"][i % 4]
        hours, minutes = int(offset[:3]), int(offset[0] + offset[3:])
        if layout == "iso":
            text = t.strftime("%Y-%m-%dT%H:%M:%S") + offset[:3] + ":" + offset[3:]
        else:
            text = t.strftime("%Y-%m-%d %H:%M:%S") + " " + offset
        written.append(t - dt.timedelta(hours=hours, minutes=minutes))
        lines.append(f"c{i % 40:03d},{text},{10 + i}.50")
    fmt = "%Y-%m-%d %H:%M:%S %z" if layout == "shopify" else "%Y-%m-%dT%H:%M:%S%z"
    assert candidate_date_formats([ln.split(",")[1] for ln in lines]) == [fmt]
    r = ingest(wh, write(tmp_path, lines), "orders")
    assert (r.rows_loaded, r.rows_rejected) == (120, 0)
    got = wh.cursor().execute("SELECT event_time FROM events WHERE dataset = 'orders' "
                              "ORDER BY event_time").fetchall()
    assert [g[0] for g in got] == sorted(written)
    assert dt.datetime(2025, 2, 28, 23, 30) in [g[0] for g in got]


SHOPIFY_HEADER = ("Name,Email,Financial Status,Paid at,Currency,Subtotal,Shipping,Taxes,Total,Created at,"
                  "Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Billing Name,Billing Country\n")


def test_a_shopify_orders_export_is_recognised_and_loaded_by_its_line_items(wh, tmp_path):
    # one row per line item; the order's totals (shipping and taxes included) on its first line only;
    # the buyer only as an e-mail address; 'Name' is the order number, 'Lineitem name' the product
    rng = np.random.default_rng(5)
    lines, expected, orders = [], {}, 0
    for k in range(60):
        email = f"buyer.{k % 25}@example.com"
        t = dt.datetime(2025, 1, 1) + dt.timedelta(hours=int(rng.integers(0, 24 * 300)))
        items = [(int(rng.integers(1, 4)), float(rng.integers(500, 9000)) / 100) for _ in range(int(rng.integers(1, 4)))]
        subtotal = sum(q * p for q, p in items)
        orders += 1
        for j, (q, p) in enumerate(items):
            head = (f"#{1001 + k},{email},paid,{t:%Y-%m-%d %H:%M:%S} +0100,EUR,{subtotal:.2f},4.90,"
                    f"{subtotal * 0.19:.2f},{subtotal * 1.19 + 4.9:.2f}") if j == 0 else f"#{1001 + k},{email},,,,,,,"
            lines.append(f"{head},{t:%Y-%m-%d %H:%M:%S} +0100,{q},Wool Scarf {j},{p:.2f},SKU-{j},"
                         f"{('Ines Example', 'Luis Garcia', 'Mia Stone')[k % 3] if j == 0 else ''},{'DE' if j == 0 else ''}")
            expected[email] = expected.get(email, 0.0) + q * p
    path = tmp_path / "orders_export_1.csv"
    path.write_text(SHOPIFY_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    from analytics.ingest.loader import inspect_source

    preview = inspect_source(path)
    assert preview.layout == "shopify"
    cols = preview.mapping.columns
    assert (cols["customer_id"], cols["order_id"], cols["revenue"], cols["quantity"], cols["item_id"]) == (
        "Email", "Name", "Lineitem price", "Lineitem quantity", "Lineitem sku")
    assert preview.mapping.revenue_is_unit_price
    assert not any("no amount" in w for w in preview.warnings), preview.warnings
    personal = next(w for w in preview.warnings if w.startswith("personal data"))
    assert "Billing Name" in personal and "'Name'" not in personal and "Lineitem name" not in personal
    assert any("customer ids in 'Email' are personal data" in w for w in preview.warnings), preview.warnings
    r = ingest(wh, path, "shop")
    assert (r.rows_loaded, r.rows_rejected) == (len(lines), 0)
    got = dict(wh.cursor().execute("SELECT customer_id, sum(revenue) FROM events WHERE dataset = 'shop' "
                                   "GROUP BY 1").fetchall())
    assert got.keys() == expected.keys()
    assert all(got[e] == pytest.approx(v, rel=1e-12) for e, v in expected.items())
    n_orders = wh.cursor().execute("SELECT count(DISTINCT order_id) FROM events WHERE dataset = 'shop'").fetchone()[0]
    assert n_orders == orders


def test_a_date_column_of_words_says_it_holds_no_dates_not_to_enter_a_format(wh, tmp_path):
    words = ["soon", "yesterday", "n/a", "next week"]
    lines = [f"c{i:03d},{words[i % 4]},{10 + i}.00" for i in range(40)]
    path = write(tmp_path, lines)
    from analytics.ingest.loader import inspect_source

    warnings = inspect_source(path).warnings
    assert any(w.startswith("the values in 'order_date' are not dates (e.g. 'soon', 'yesterday', 'n/a')")
               for w in warnings), warnings
    with pytest.raises(IngestError, match=r"the values in column 'order_date' are not dates \(e\.g\. 'soon'"):
        ingest(wh, path, "orders")
    # a date column in an unknown format still asks for the format
    odd = [f"c{i:03d},{1 + i % 28} of March 2024,{10 + i}.00" for i in range(40)]
    with pytest.raises(IngestError, match="do not match a known format"):
        ingest(wh, write(tmp_path, odd), "orders")
