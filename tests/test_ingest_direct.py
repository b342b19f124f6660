"""The direct read of clean files (DuckDB's CSV reader straight into ``events``) and its way back
to the line-by-line path: whichever path a file takes, the result, the reject report and the
messages are the ones the line-by-line path gives, and what the reader skips is never lost."""
from __future__ import annotations

import random

import pytest

from analytics.ingest import IngestError, ingest, loader, rejects_frame
from analytics.warehouse import Warehouse

HEADER = "customer_id,order_date,amount\n"
EVENT_COLS = ("customer_id, event_time, event_type, order_id, item_id, category, quantity, revenue, rating, text,"
              " country, attributes, row_hash")


@pytest.fixture
def attempts(monkeypatch):
    """Records, for each load, whether the direct read was tried and whether it was kept."""
    seen: list[bool] = []
    real = loader._load_direct

    def spy(*a, **k):
        result, iid = real(*a, **k)
        seen.append(result is not None)
        return result, iid

    monkeypatch.setattr(loader, "_load_direct", spy)
    return seen


def line_by_line(path, dataset="d", **kw):
    """The same file through the line-by-line path only, in a warehouse of its own."""
    wh = Warehouse(":memory:")
    real = loader._direct_read_possible
    loader._direct_read_possible = lambda *a: False
    try:
        try:
            r = ingest(wh, path, dataset, **kw)
        except IngestError as exc:
            return wh, None, str(exc)
        return wh, r, None
    finally:
        loader._direct_read_possible = real


def events(wh, dataset="d"):
    return wh.cursor().execute(f"SELECT {EVENT_COLS} FROM events WHERE dataset = ? ORDER BY ALL", [dataset]).fetchall()


def rejects(wh, r):
    return [tuple(x) for x in rejects_frame(wh, r.ingestion_id).itertuples(index=False)]


def write(tmp_path, text, name="f.csv"):
    p = tmp_path / name
    with open(p, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return p


def assert_same_as_line_by_line(wh, r, path):
    wh2, r2, err = line_by_line(path)
    assert err is None
    assert (r.rows_read, r.rows_loaded, r.rows_rejected, r.rows_duplicate) == \
        (r2.rows_read, r2.rows_loaded, r2.rows_rejected, r2.rows_duplicate)
    assert events(wh) == events(wh2)
    assert rejects(wh, r) == rejects(wh2, r2)
    assert r.warnings == r2.warnings


def test_clean_file_is_read_directly_with_bad_values_reported(wh, tmp_path, attempts):
    rng = random.Random(5)
    lines, bad = [], {}
    for i in range(2300):  # the bad values after the 2,000 rows the format is guessed from
        ln = i + 2  # the header is line 1
        day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        amount = f"{rng.uniform(1, 500):.2f}"
        if i in (2017, 2140):
            day = "2024-13-45"
            bad[ln] = "date '2024-13-45' does not match the format %Y-%m-%d"
        elif i == 2201:
            amount = "12.5x"
            bad[ln] = "non-numeric amount '12.5x'"
        lines.append(f"C{i % 37},{day},{amount}")
    p = write(tmp_path, HEADER + "\n".join(lines) + "\n")
    r = ingest(wh, p, "d")
    assert attempts == [True]  # kept: no staging table, no line-by-line split
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (2300, 2297, 3)
    got = rejects(wh, r)
    assert [(x[0], x[2]) for x in got] == sorted(bad.items())
    assert got[0][1] == lines[2017]  # the raw line, as in the file
    assert_same_as_line_by_line(wh, r, p)


def test_rows_with_a_wrong_number_of_fields_are_counted_by_the_direct_read(wh, tmp_path, attempts):
    rows = [f"C{i},2024-02-{i % 28 + 1:02d},{10 + i}.5" for i in range(2200)]  # format guessed from the start
    want = {}
    for i, (line, found) in enumerate([("C5,2024-02-06", 2), ("C6", 1), (",,", 3), ("C9,2024-02-10,1,,x", 5),
                                        ("C11,2024-02-12,2,a,b,c", 6), ("C12,2024-02-13,3,", 4)]):
        rows[2100 + 4 * i] = line
        want[2100 + 4 * i + 2] = (line, f"expected 3 fields, found {found}" if found != 3 else "empty row (no customer, date or amount)")
    p = write(tmp_path, HEADER + "\n".join(rows) + "\n")
    r = ingest(wh, p, "d")
    assert attempts == [True]
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (2200, 2194, 6)
    assert rejects(wh, r) == [(ln, line, why) for ln, (line, why) in sorted(want.items())]
    assert_same_as_line_by_line(wh, r, p)


@pytest.mark.parametrize("case", ["blank line", "blank first line", "line of spaces", "many fields"])
def test_direct_read_gives_way_to_the_line_by_line_path(wh, tmp_path, attempts, case):
    rows = [f"C{i},2024-02-{i + 1:02d},{10 + i}.5" for i in range(20)]
    if case == "blank line":  # DuckDB's reader skips it silently: the line count must notice
        text = HEADER + "\n".join(rows[:8]) + "\n\n" + "\n".join(rows[8:]) + "\n"
    elif case == "line of spaces":  # a blank line to the line-by-line path, a row to the reader
        text = HEADER + "\n".join(rows[:8]) + "\n  \t \n" + "\n".join(rows[8:]) + "\n"
    elif case == "many fields":  # more fields than the direct read has columns: it cannot count them
        rows[9] = rows[9] + ",a,b,c,d"
        text = HEADER + "\n".join(rows) + "\n"
    else:
        text = "\n" + HEADER + "\n".join(rows) + "\n"
    p = write(tmp_path, text)
    r = ingest(wh, p, "d")
    assert attempts in ([False], [])  # tried and given up, or not tried at all
    if case != "many fields":
        assert (r.rows_read, r.rows_rejected) == (20, 0)
    else:
        assert (r.rows_read, r.rows_rejected) == (20, 1)
        assert rejects(wh, r) == [(11, rows[9], "expected 3 fields, found 7")]
    assert_same_as_line_by_line(wh, r, p)
    # the given-up read left nothing behind: the dataset holds exactly this one load
    cur = wh.cursor()
    assert cur.execute("SELECT count(*) FROM ingestions").fetchone()[0] == 1
    assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == r.rows_loaded


def test_repeated_rows_get_the_row_hashes_of_the_line_by_line_path(wh, tmp_path, attempts):
    """The k-th copy of a row gets hash(h, k) whichever way the file is read, so a second load of
    the file adds nothing and a file with one more copy adds just that one."""
    rng = random.Random(23)
    rows = [f"C{rng.randint(1, 4)},2024-04-{rng.randint(1, 4):02d},{rng.randint(1, 3)}.5" for _ in range(400)]
    rows[50] = "C1,2024-04-01,zz"
    rows[60] = rows[61] = rows[62] = "C2,2024-04-02,7.5"
    p = write(tmp_path, HEADER + "\n".join(rows) + "\n")
    r = ingest(wh, p, "d")
    assert attempts == [True]
    n_dist = len(set(rows))
    assert n_dist < 60  # many rows repeat
    assert_same_as_line_by_line(wh, r, p)
    hashes = wh.cursor().execute("SELECT count(DISTINCT row_hash), count(*) FROM events").fetchone()
    assert hashes == (399, 399)
    again = ingest(wh, p, "d")
    assert (again.rows_loaded, again.rows_duplicate, again.rows_rejected) == (0, 399, 1)
    p2 = write(tmp_path, HEADER + "\n".join(rows + ["C2,2024-04-02,7.5"]) + "\n", "more.csv")
    more = ingest(wh, p2, "d")
    assert (more.rows_loaded, more.rows_duplicate) == (1, 399)


def test_no_valid_row_gives_the_same_message(wh, tmp_path, attempts):
    p = write(tmp_path, HEADER + "a,2099-01-05,1\nb,2099-01-02,2\n")
    with pytest.raises(IngestError) as exc:
        ingest(wh, p, "d")
    assert attempts == [False]
    _, _, err = line_by_line(p)
    assert str(exc.value) == err
    assert err == "no row of the file is valid (all 2 rejected; e.g. line 2: date in the future: 2099-01-05 00:00:00)"
    assert wh.cursor().execute("SELECT count(*) FROM datasets").fetchone()[0] == 0


def test_append_to_an_existing_dataset_takes_the_line_by_line_path(wh, tmp_path, attempts):
    p1 = write(tmp_path, HEADER + "a,2024-01-05,10\nb,2024-01-06,20\n", "one.csv")
    p2 = write(tmp_path, HEADER + "b,2024-01-06,20\nc,2024-01-07,30\n", "two.csv")
    ingest(wh, p1, "d")
    r = ingest(wh, p2, "d")
    assert attempts == [True, False]
    assert (r.rows_read, r.rows_loaded, r.rows_duplicate) == (2, 1, 1)


def test_empty_lines_at_the_end_keep_the_direct_read(wh, tmp_path, attempts):
    rows = [f"C{i},2024-03-{i + 1:02d},{5 + i}.25" for i in range(12)]
    rows[4] = "C4,2024-03-05,abc"
    p = write(tmp_path, HEADER.replace("\n", "\r\n") + "\r\n".join(rows) + "\r\n\r\n\r\n")
    r = ingest(wh, p, "d")
    assert attempts == [True]
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (12, 11, 1)
    assert rejects(wh, r) == [(6, "C4,2024-03-05,abc", "non-numeric amount 'abc'")]
    assert_same_as_line_by_line(wh, r, p)


def test_a_lone_carriage_return_is_left_to_the_line_by_line_path(wh, tmp_path, attempts):
    rows = [f"C{i},2024-03-{i + 1:02d},{5 + i}.25" for i in range(12)]
    rows[6] = "C6,2024-03-07,1.0\rC60,2024-03-08,2.0"  # one line to us, two records to a CSV reader
    p = write(tmp_path, HEADER + "\n".join(rows) + "\n")
    try:
        r = ingest(wh, p, "d")
    except IngestError as exc:
        r, err = None, str(exc)
    else:
        err = None
    assert attempts == []
    _, r2, err2 = line_by_line(p)
    assert err == err2
    if r is not None:
        assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (r2.rows_read, r2.rows_loaded, r2.rows_rejected)


@pytest.mark.parametrize("long_line", [False, True])
def test_line_numbers_of_a_file_read_in_many_pieces(wh, tmp_path, attempts, monkeypatch, long_line):
    """Small reader buffers split the file into many pieces read by several threads: the
    reported line numbers and raw lines are still exactly the planted ones, whether the direct
    read keeps the load or a line over the line limit makes it fail and give way to the
    line-by-line path (which
    numbers lines by their order in the table it reads them into: the failed direct insert
    must have put DuckDB's insertion-order setting back)."""
    monkeypatch.setattr(loader, "MAX_LINE_BYTES", 4096)  # buffers of 8 KB
    rng = random.Random(17)
    n = 40_000
    lines = [f"C{rng.randint(1, 5000)},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
             f"{rng.uniform(1, 900):.2f}" for _ in range(n)]
    bad = sorted(rng.sample(range(2100, n), 9))
    for i in bad:
        lines[i] = lines[i].rsplit(",", 1)[0] + ",12..5"
    reasons = {i: "non-numeric amount '12..5'" for i in bad}
    if long_line:
        i = next(i for i in range(20_000, n) if i not in reasons)
        lines[i] = lines[i] + "9" * 5000
        reasons[i] = f"line longer than {loader.MAX_LINE_BYTES // 2**20} MB"
        bad = sorted(reasons)
    p = write(tmp_path, HEADER + "\n".join(lines) + "\n")
    assert p.stat().st_size > 100 * 8192
    r = ingest(wh, p, "d")
    assert attempts == [not long_line]
    nb = len(bad)
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (n, n - nb, nb)
    got = rejects(wh, r)
    assert [(x[0], x[2]) for x in got] == [(i + 2, reasons[i]) for i in bad]
    assert [x[1] for x in got if "longer" not in x[2]] == [lines[i] for i in bad if "longer" not in reasons[i]]
    cur = wh.cursor()
    assert cur.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0] is True
    assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == n - nb
    want = round(sum(float(x.rsplit(",", 1)[1]) for i, x in enumerate(lines) if i not in reasons), 2)
    assert round(cur.execute("SELECT sum(revenue) FROM events").fetchone()[0], 2) == want


def test_the_insertion_order_setting_is_put_back(wh, tmp_path):
    cur = wh.cursor()
    p = write(tmp_path, HEADER + "a,2024-01-05,10\nb,2024-01-06,20\n")
    ingest(wh, p, "d")
    assert cur.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0] is True
    p2 = write(tmp_path, HEADER + "c,2024-01-07,10\n", "two.csv")
    ingest(wh, p2, "d")  # an append: the line-by-line path
    assert cur.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0] is True


@pytest.mark.parametrize("text, lines, blank, lone", [
    (b"a,b\r\nc,d\r\n", 2, 0, False),
    (b"a,b\nc,d", 2, 0, False),
    (b"a,b\nc,d\n\n\r\n", 4, 2, False),
    (b"a,b\rc,d\n", 1, 0, True),
    (b"a,b\nc,d\r", 2, 0, True),
])
def test_line_tally_in_any_pieces(text, lines, blank, lone):
    from analytics.ingest.dialect import _LineTally

    for cut in range(len(text) + 1):  # every split into two pieces, the \r\n pair included
        t = _LineTally()
        t.feed(text[:cut])
        t.feed(text[cut:])
        assert t.finish() == (lines, blank, lone), cut
