"""Safe CSV export (formula cells neutralized) and Parquet export."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from analytics.export import (
    ExportError,
    neutralize_frame,
    neutralize_text,
    read_parquet_metadata,
    to_parquet,
    to_safe_csv,
)

MALICIOUS = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1", "-cmd", "\tX", "\rY", "  =1+1"]


def _read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("cell", MALICIOUS)
def test_malicious_text_cells_are_prefixed_with_a_quote(cell):
    df = pd.DataFrame({"customer_id": [cell], "value": [1.5]})
    rows = _read_back(to_safe_csv(df))
    assert rows[0] == ["customer_id", "value"]
    assert rows[1][0] == "'" + cell
    assert len(rows) == 2  # a bare CR inside a cell is quoted, not a line break
    assert rows[1][1] == "1.5"


def test_negative_numbers_stay_numbers_and_harmless_text_is_unchanged():
    df = pd.DataFrame(
        {
            "customer_id": ["alice", "bob", "c-3", "x=y"],
            "net_revenue": [-12.5, 3.0, 0.0, -1.0],
            "n": [-1, 2, 3, 4],
        }
    )
    rows = _read_back(to_safe_csv(df))
    assert rows[1:] == [
        ["alice", "-12.5", "-1"],
        ["bob", "3.0", "2"],
        ["c-3", "0.0", "3"],
        ["x=y", "-1.0", "4"],
    ]


def test_quoting_of_commas_quotes_and_newlines_round_trips():
    tricky = ['a,b', 'say "hi"', "line1\nline2", "=1,2"]
    df = pd.DataFrame({"text": tricky})
    text = to_safe_csv(df)
    back = pd.read_csv(io.StringIO(text), dtype=str)["text"].tolist()
    assert back == ['a,b', 'say "hi"', "line1\nline2", "'=1,2"]


def test_object_column_with_mixed_types_only_touches_strings():
    df = pd.DataFrame({"mixed": pd.Series(["-x", -5, None, "@y", 2.5], dtype=object)})
    out = neutralize_frame(df)["mixed"].tolist()
    assert out[0] == "'-x"
    assert out[1] == -5
    assert out[2] is None
    assert out[3] == "'@y"
    assert out[4] == 2.5
    # the input frame is not modified
    assert df["mixed"].tolist()[0] == "-x"


def test_categorical_and_string_dtype_and_column_names():
    df = pd.DataFrame(
        {
            "=cmd": pd.Series(["+a", "b"], dtype="category"),
            "s": pd.Series(["@x", None], dtype="string"),
        }
    )
    rows = _read_back(to_safe_csv(df))
    assert rows[0] == ["'=cmd", "s"]
    assert rows[1] == ["'+a", "'@x"]
    assert rows[2] == ["b", ""]


def test_neutralize_text_scalars():
    assert neutralize_text("=1") == "'=1"
    assert neutralize_text("") == ""
    assert neutralize_text("   ") == "   "
    assert neutralize_text(-3) == -3
    assert neutralize_text("hello -1") == "hello -1"


def test_bom_and_files(tmp_path):
    df = pd.DataFrame({"name": ["Zoë", "=evil"]})
    data = to_safe_csv(df, bom=True)
    assert isinstance(data, bytes) and data.startswith(b"\xef\xbb\xbf")
    path = tmp_path / "out.csv"
    to_safe_csv(df, path, bom=True)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert pd.read_csv(path, encoding="utf-8-sig")["name"].tolist() == ["Zoë", "'=evil"]
    buf = io.BytesIO()
    to_safe_csv(df, buf)
    assert buf.getvalue().decode() == "name\r\nZoë\r\n'=evil\r\n"
    with pytest.raises(ExportError, match="cannot write"):
        to_safe_csv(df, tmp_path / "missing-dir" / "x.csv")


def test_parquet_keeps_types_and_metadata(tmp_path):
    df = pd.DataFrame({"customer_id": ["=a", "b"], "clv": [-1.25, 10.0], "n": [1, 2]})
    path = tmp_path / "out.parquet"
    to_parquet(df, path, metadata={"margin": 0.3, "horizon_months": 12})
    back = pd.read_parquet(path)
    assert back["customer_id"].tolist() == ["=a", "b"]  # parquet is typed: no neutralizing
    assert back["clv"].tolist() == [-1.25, 10.0]
    assert read_parquet_metadata(path) == {"margin": 0.3, "horizon_months": 12}
    data = to_parquet(df)
    assert isinstance(data, bytes) and data[:4] == b"PAR1"
    assert read_parquet_metadata(data) == {}
