"""Bad input: files that cannot be loaded fail cleanly and leave the warehouse unchanged;
files with some bad rows load the good ones and report each bad one with line and reason."""
from __future__ import annotations

import gzip
import os

import pytest

from analytics.ingest import IngestError, ingest, inspect_source, rejects_frame

TABLES = ["datasets", "events", "ingestions", "rejects", "settings"]
HEADER = "customer_id,order_date,amount\n"


def counts(wh):
    cur = wh.cursor()
    return {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def write(tmp_path, name, content, mode="w", encoding="utf-8", newline=""):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(content)
    else:
        with open(p, "w", encoding=encoding, newline=newline) as f:
            f.write(content)
    return p


@pytest.fixture
def loaded(wh, tmp_path):
    """A warehouse with one dataset already in it, so 'unchanged' is a real check."""
    p = write(tmp_path, "base.csv", HEADER + "a,2024-01-05,10\nb,2024-01-06,20\n")
    ingest(wh, p, "base")
    return wh


def assert_fails_cleanly(wh, path, match, **kw):
    before = counts(wh)
    with pytest.raises(IngestError, match=match):
        ingest(wh, path, "bad", **kw)
    assert counts(wh) == before
    assert not wh.has_dataset("bad")


def test_empty_file(loaded, tmp_path):
    assert_fails_cleanly(loaded, write(tmp_path, "e.csv", ""), "empty")


def test_header_only(loaded, tmp_path):
    assert_fails_cleanly(loaded, write(tmp_path, "h.csv", HEADER), "no data rows")


def test_binary_file_renamed_csv(loaded, tmp_path):
    data = bytes(range(256)) * 400 + os.urandom(10000)
    assert_fails_cleanly(loaded, write(tmp_path, "bin.csv", data, mode="wb"), "binary")


def test_zip_renamed_csv(loaded, tmp_path):
    import zipfile

    z = tmp_path / "data.csv"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.csv", os.urandom(5000))
    assert_fails_cleanly(loaded, z, "binary|text")


def test_missing_required_column(loaded, tmp_path):
    p = write(tmp_path, "m.csv", "order_date,amount\n2024-01-05,10\n2024-01-06,11\n")
    assert_fails_cleanly(loaded, p, "required column missing.*customer_id")


def test_load_blockers_say_before_a_load_what_validate_refuses(tmp_path):
    """What the Data page lists before a load (``load_blockers``) is what ``Mapping.validate`` refuses."""
    from analytics.ingest import IngestError, Mapping, load_blockers

    cols = ["client", "day", "price", "n"]
    cases = [({"customer_id": "client", "event_time": "day"}, False, []),
             ({"event_time": "day"}, False, ["Customer id"]),
             ({}, False, ["Customer id", "Date and time"]),
             ({"customer_id": "client", "event_time": "day", "revenue": "price"}, True, ["Quantity"]),
             ({"customer_id": "client", "event_time": "day", "quantity": "n"}, True, [])]
    for columns, unit_price, named in cases:
        blockers = load_blockers(columns, revenue_is_unit_price=unit_price)
        assert len(blockers) == len(named) and all(n in b for n, b in zip(named, blockers)), (columns, blockers)
        mapping = Mapping(columns=columns, revenue_is_unit_price=unit_price)
        if named:
            with pytest.raises(IngestError):
                mapping.validate(cols)
        else:
            mapping.validate(cols)


def test_header_with_sql_injection_as_required_column(loaded, tmp_path):
    evil = 'x"); DROP TABLE events; --'
    p = write(tmp_path, "inj.csv", f'"{evil.replace(chr(34), chr(34) * 2)}",order_date,amount\nc1,2024-01-05,10\n')
    assert inspect_source(p).source_columns[0] == evil
    assert_fails_cleanly(loaded, p, "required column missing")
    assert loaded.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == 2


def test_header_with_sql_injection_is_inert_when_mapped(loaded, tmp_path):
    evil = "x'); DROP TABLE events; --"
    p = write(tmp_path, "inj2.csv", f"{evil},customer_id,order_date,amount\nzz,c1,2024-01-05,10\n")
    r = ingest(loaded, p, "inj", mapping=None, keep_pii=())
    assert r.rows_loaded == 1
    # mapped explicitly as the customer column, the name is just data
    from analytics.ingest import Mapping

    m = Mapping(columns={"customer_id": evil, "event_time": "order_date", "revenue": "amount"})
    r = ingest(loaded, p, "inj3", mapping=m)
    assert loaded.cursor().execute("SELECT customer_id FROM events WHERE dataset = 'inj3'").fetchall() == [("zz",)]
    assert loaded.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == 4


def test_duplicate_column_names(loaded, tmp_path):
    p = write(tmp_path, "d.csv", "customer_id,amount,amount\nc1,1,2\n")
    assert_fails_cleanly(loaded, p, "duplicate column names.*'amount'")


def test_over_the_size_limit(loaded, tmp_path):
    p = write(tmp_path, "big.csv", HEADER + "c1,2024-01-05,10\n" * 1000)
    assert_fails_cleanly(loaded, p, "over the limit", max_bytes=1000)


def test_gzip_bomb_stops_at_the_cap(loaded, tmp_path):
    p = tmp_path / "bomb.csv.gz"
    line = b"c1,2024-01-05,10\n" * 60000  # ~1 MB of highly compressible text
    with gzip.open(p, "wb", compresslevel=9) as f:
        f.write(HEADER.encode())
        for _ in range(64):  # 64 MB decompressed, a few hundred KB on disk
            f.write(line)
    assert p.stat().st_size < 2_000_000
    import resource

    assert_fails_cleanly(loaded, p, "decompresses to more than", max_decompressed_bytes=8 * 1024 * 1024)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2_000_000  # KB: bounded memory


def test_gzip_within_cap_loads(wh, tmp_path):
    p = tmp_path / "ok.csv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(HEADER + "c1,2024-01-05,10\nc2,2024-01-06,12.5\n")
    r = ingest(wh, p, "gz")
    assert (r.rows_read, r.rows_loaded) == (2, 2)


def test_no_valid_row(loaded, tmp_path):
    p = write(tmp_path, "nv.csv", HEADER + "c1,2024-01-05,ten\nc2,2024-01-06,eleven\n")
    assert_fails_cleanly(loaded, p, "no row of the file is valid.*line 2: non-numeric amount")


def _reasons(wh, r):
    df = rejects_frame(wh, r.ingestion_id)
    return dict(zip(df.line_number.tolist(), df.reason.tolist())), df


def test_non_numeric_amounts(wh, tmp_path):
    p = write(tmp_path, "nn.csv", HEADER + "c1,2024-01-05,10\nc2,2024-01-05,ten\nc3,2024-01-05,7.5\n")
    r = ingest(wh, p, "ds")
    assert (r.rows_read, r.rows_loaded, r.rows_rejected, r.rows_duplicate) == (3, 2, 1, 0)
    reasons, df = _reasons(wh, r)
    assert list(reasons) == [3] and "non-numeric amount 'ten'" in reasons[3]
    assert df.raw_line.tolist() == ["c2,2024-01-05,ten"]
    assert "1 row rejected: see the reject report" in r.warnings


def test_unparseable_and_mixed_date_formats(wh, tmp_path):
    p = write(tmp_path, "dates.csv", HEADER + "c1,2024-01-05,10\nc2,05/01/2024,10\nc3,yesterday,3\nc4,2024-01-07,4\n")
    r = ingest(wh, p, "ds", mapping={"columns": {"customer_id": "customer_id", "event_time": "order_date",
                                                  "revenue": "amount"}, "date_format": "%Y-%m-%d"})
    reasons, _ = _reasons(wh, r)
    assert sorted(reasons) == [3, 4]
    assert "does not match the format %Y-%m-%d" in reasons[3]
    assert r.rows_loaded == 2 and r.rows_read == r.rows_loaded + r.rows_rejected + r.rows_duplicate


def test_nul_bytes(wh, tmp_path):
    p = write(tmp_path, "nul.csv", (HEADER + "c1,2024-01-05,10\nc\x002,2024-01-05,10\nc3,2024-01-05,3\n").encode(),
              mode="wb")
    r = ingest(wh, p, "ds")
    reasons, _ = _reasons(wh, r)
    assert reasons == {3: "contains NUL bytes"}
    assert r.rows_loaded == 2


def test_single_5mb_line(wh, tmp_path):
    long = "c9," + "2024-01-05," + "9" * (5 * 1024 * 1024)
    p = write(tmp_path, "long.csv", HEADER + "c1,2024-01-05,10\n" + long + ",extra\nc3,2024-01-06,3\n")
    r = ingest(wh, p, "ds")
    reasons, df = _reasons(wh, r)
    assert list(reasons) == [3] and "expected 3 fields, found 4" in reasons[3]
    assert len(df.raw_line[0]) == 2000  # raw line is stored cut
    assert r.rows_loaded == 2


def test_file_cut_off_inside_quoted_field(wh, tmp_path):
    p = write(tmp_path, "cut.csv", 'customer_id,order_date,amount,note\nc1,2024-01-05,10,"fine"\n'
                                    'c2,2024-01-06,11,"multi\nline note"\nc3,2024-01-07,12,"cut off he')
    r = ingest(wh, p, "ds")
    reasons, _ = _reasons(wh, r)
    assert reasons == {5: "unterminated quoted field (is the file cut off?)"}
    assert (r.rows_read, r.rows_loaded) == (3, 2)
    # the multi-line record loaded whole; its attribute is not in the canonical table, but it counted once
    assert wh.cursor().execute("SELECT list_sort(list(customer_id)) FROM events").fetchone()[0] == ["c1", "c2"]


def test_dates_in_future_and_before_1990(wh, tmp_path):
    p = write(tmp_path, "fut.csv", HEADER + "c1,2024-01-05,10\nc2,2099-01-01,1\nc3,1989-12-31,2\nc4,1990-01-01,3\n")
    r = ingest(wh, p, "ds")
    reasons, _ = _reasons(wh, r)
    assert set(reasons) == {3, 4}
    assert reasons[3].startswith("date in the future") and reasons[4].startswith("date before 1990")
    assert r.rows_loaded == 2


def test_invalid_utf8_line_in_utf8_file(wh, tmp_path):
    body = (HEADER + "Müller,2024-01-05,10\n").encode() + b"bad\xff\xfe,2024-01-05,3\n" + "c3,2024-01-06,4\n".encode()
    p = write(tmp_path, "mixed.csv", body, mode="wb")
    r = ingest(wh, p, "ds")
    reasons, _ = _reasons(wh, r)
    assert list(reasons) == [3] and "UTF-8" in reasons[3]
    rows = wh.cursor().execute("SELECT customer_id FROM events ORDER BY event_time").fetchall()
    assert rows == [("Müller",), ("c3",)]
    # line numbers of the other rows are unaffected: a bad amount after the dropped line
    body2 = body + b"c4,2024-01-06,x\n"
    p2 = write(tmp_path, "mixed2.csv", body2, mode="wb")
    r2 = ingest(wh, p2, "ds2")
    reasons2, _ = _reasons(wh, r2)
    assert sorted(reasons2) == [3, 5]


def test_blank_lines_are_not_rows_and_line_numbers_stay_physical(wh, tmp_path):
    p = write(tmp_path, "blank.csv", HEADER + "c1,2024-01-05,10\n\n   \nc2,2024-01-05,zz\n")
    r = ingest(wh, p, "ds")
    reasons, _ = _reasons(wh, r)
    assert list(reasons) == [5]
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (2, 1, 1)


def test_wrong_number_of_fields(wh, tmp_path):
    p = write(tmp_path, "nf.csv", HEADER + "c1,2024-01-05,10\nc2,2024-01-05\nc3,2024-01-05,1,2\n")
    r = ingest(wh, p, "ds")
    reasons, _ = _reasons(wh, r)
    assert reasons == {3: "expected 3 fields, found 2", 4: "expected 3 fields, found 4"}


def test_missing_file_and_bad_dataset_name(wh, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        ingest(wh, tmp_path / "nope.csv", "ds")
    p = write(tmp_path, "ok.csv", HEADER + "c1,2024-01-05,10\n")
    with pytest.raises(IngestError, match="dataset name"):
        ingest(wh, p, "bad;name'--")


def test_line_over_the_line_limit_is_rejected_with_its_number(wh, tmp_path):
    from analytics.ingest.loader import MAX_LINE_BYTES

    huge = "c9,2024-01-05," + "9" * (MAX_LINE_BYTES + 10)
    p = write(tmp_path, "huge.csv", HEADER + "c1,2024-01-05,10\n" + huge + "\nc3,2024-01-06,3\nc4,2024-01-06,x\n")
    r = ingest(wh, p, "ds")
    reasons, _ = _reasons(wh, r)
    assert sorted(reasons) == [3, 5] and reasons[3].startswith("line longer than")
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (4, 2, 2)
    assert "2 rows rejected: see the reject report" in r.warnings
