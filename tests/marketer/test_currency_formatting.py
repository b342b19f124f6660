"""Dataset currency (ISO 4217 check, guesses, stored choice) and the formatting helpers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import currency, formatting as fmt
from analytics.ingest import delete_dataset, ingest, inspect_source


# ----------------------------------------------------------------- ISO 4217
@pytest.mark.parametrize("code,expected", [("eur", "EUR"), (" GBP ", "GBP"), ("JPY", "JPY"), ("KWD", "KWD")])
def test_check_code_accepts_iso_codes(code, expected):
    assert currency.check_code(code) == expected


@pytest.mark.parametrize("bad,words", [("EURO", "three letters"), ("XYZ", "not a circulating currency"),
                                       ("XAU", "not a circulating currency"), ("€", "sign, not a code"),
                                       ("", "three-letter"), (None, "three-letter"), (12, "three-letter")])
def test_check_code_refuses_the_rest_in_words(bad, words):
    with pytest.raises(currency.CurrencyError, match=words):
        currency.check_code(bad)


def test_minor_units_follow_iso_4217():
    # a few published minor units (ISO 4217 list one): yen 0, dinar 3, most 2
    assert {c: currency.CURRENCIES[c].minor_units for c in ("JPY", "KRW", "BHD", "KWD", "EUR", "USD", "CHF")} == \
        {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "EUR": 2, "USD": 2, "CHF": 2}
    assert all(len(c) == 3 and c.isupper() for c in currency.CURRENCIES)
    assert len(set(currency.choices())) == len(currency.CURRENCIES)


# ----------------------------------------------------------------- formatting
def test_money_formats():
    assert fmt.money(1670.2284694360917, "EUR") == "€1,670.23"
    assert fmt.money(-12.5, "GBP") == "-£12.50"
    assert fmt.money(-0.000000000000005, "EUR") == "€0.00"   # never "-0.00"
    assert fmt.money(-0.004, "USD") == "$0.00"
    assert fmt.money(1000, "CHF") == "CHF 1,000.00"
    assert fmt.money(12000.4, "JPY") == "¥12,000"
    assert fmt.money(1.2346, "KWD") == "KWD 1.235"
    assert fmt.money(2_345_678.9, "EUR", compact=True) == "€2.35 M"
    assert fmt.money(3.2e9, None, compact=True) == "3.20 bn"
    assert fmt.money(999.999, None) == "1,000.00"
    assert fmt.money(None, "EUR") == fmt.MISSING
    assert fmt.money(float("nan"), "EUR") == fmt.MISSING
    assert fmt.money_printf("GBP") == "£%,.2f"
    assert fmt.money_printf("JPY") == "¥%,.0f"
    assert fmt.money_printf(None) == "%,.2f"


def test_other_formats():
    assert fmt.percent(0.1234) == "12.3 %"
    assert fmt.percent(-0.00001) == "0.0 %"
    assert fmt.percent(None) == fmt.MISSING
    assert fmt.integer(1234567.0) == "1,234,567"
    assert fmt.number(-0.0000001) == "0.00"
    assert fmt.date(pd.Timestamp("2025-12-31 00:00:00")) == "31 Dec 2025"
    assert fmt.date("2025-01-05 13:14:00") == "5 Jan 2025"
    assert fmt.date_range("2025-01-01", "2025-03-31") == "1 Jan – 31 Mar 2025"
    assert fmt.date_range("2024-12-01", "2025-01-31") == "1 Dec 2024 – 31 Jan 2025"
    assert fmt.days(1) == "1 day" and fmt.days(12.4) == "12 days"


def test_round_money_rounds_to_minor_units_without_negative_zero():
    s = pd.Series([1670.2284694360917, -0.000000000000005, 2.675, np.nan])
    out = fmt.round_money(s, "EUR")
    assert out.iloc[0] == 1670.23
    assert out.iloc[1] == 0.0 and not np.signbit(out.iloc[1])
    assert np.isnan(out.iloc[3])
    assert list(fmt.round_money([1.6, 2.4], "JPY")) == [2.0, 2.0]
    assert fmt.round_money(1.23456, "BHD") == 1.235


def test_column_titles_are_human():
    for name, title in [("n_orders", "Orders"), ("clv_bgnbd", "CLV (BG/NBD model)"),
                        ("p_alive", "Probability still active"), ("net_revenue", "Net revenue"),
                        ("n_widgets", "Widgets"), ("days_to_ship", "Days to ship")]:
        assert fmt.column_title(name) == title
    assert "P(alive)" in fmt.column_help("p_alive")


def test_for_people_rounds_money_titles_and_drops_empty_columns():
    frame = pd.DataFrame({
        "customer_id": ["a", "b"], "net_revenue": [1670.2284694360917, -0.000000000000005],
        "p_alive": [0.12345, 0.5], "last_purchase": pd.to_datetime(["2025-01-02", "2025-02-03"]),
        "error": [None, None], "n_orders": [3, 1],
    })
    out = fmt.for_people(frame, "EUR")
    assert list(out.columns) == ["Customer", "Net revenue (EUR)", "Probability still active (%)", "Last purchase",
                                 "Orders"]
    assert list(out["Net revenue (EUR)"]) == [1670.23, 0.0]
    assert list(out["Probability still active (%)"]) == [12.3, 50.0]
    assert str(out["Last purchase"].iloc[0]) == "2025-01-02"
    spec = fmt.table_columns(frame, "GBP")
    assert spec["net_revenue"].printf == "£%,.2f" and spec["n_orders"].kind == "count"
    assert spec["last_purchase"].kind == "date" and spec["customer_id"].printf is None


# ----------------------------------------------------------------- guesses and the stored choice
def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_guess_from_preview_signs_column_layout_countries(tmp_path):
    signs = _write(tmp_path / "signs.csv", "customer,date,amount\n1,2025-01-02,£12.50\n2,2025-01-03,£3.00\n")
    assert currency.guess_from_preview(inspect_source(signs))[0] == "GBP"
    col = _write(tmp_path / "col.csv", "customer,date,amount,currency\n1,2025-01-02,12.5,SEK\n2,2025-01-03,3,SEK\n")
    code, reason = currency.guess_from_preview(inspect_source(col))
    assert code == "SEK" and "currency column" in reason
    uci = _write(tmp_path / "uci.csv",
                 "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
                 "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,France\n")
    code, reason = currency.guess_from_preview(inspect_source(uci))
    assert code == "GBP" and "UK" in reason   # the layout wins over one French customer
    ctry = _write(tmp_path / "ctry.csv", "customer,date,amount,country\n1,2025-01-02,12.5,DE\n2,2025-01-03,3,AT\n"
                  "3,2025-01-03,3,US\n")
    assert currency.guess_from_preview(inspect_source(ctry))[0] == "EUR"
    none = _write(tmp_path / "none.csv", "customer,date,amount\n1,2025-01-02,12.5\n")
    assert currency.guess_from_preview(inspect_source(none)) == (None, "")


def test_dataset_currency_guess_set_and_forget(wh, tmp_path):
    f = _write(tmp_path / "o.csv", "customer,date,amount,country\n1,2025-01-02,12.5,United Kingdom\n"
               "2,2025-01-03,3,United Kingdom\n3,2025-01-03,3,France\n")
    ingest(wh, f, "shop")
    info = currency.dataset_currency(wh, "shop")
    assert (info.code, info.source) == ("GBP", "guessed") and "67 %" in info.reason
    assert currency.set_dataset_currency(wh, "shop", "chf") == "CHF"
    assert currency.dataset_currency(wh, "shop").code == "CHF"
    assert currency.dataset_currency(wh, "shop").source == "set"
    with pytest.raises(currency.CurrencyError):
        currency.set_dataset_currency(wh, "shop", "Swiss francs")
    assert currency.dataset_currency(wh, "shop").code == "CHF"   # a refused code changes nothing
    currency.set_dataset_currency(wh, "shop", None)
    assert currency.dataset_currency(wh, "shop").source == "guessed"
    currency.set_dataset_currency(wh, "shop", "USD")
    delete_dataset(wh, "shop")
    assert wh.cursor().execute("SELECT count(*) FROM dataset_settings").fetchone()[0] == 0


def test_bundled_sample_is_guessed_in_euros(wh):
    from analytics.bootstrap import SAMPLE_FILE

    ingest(wh, SAMPLE_FILE, "sample")
    info = currency.dataset_currency(wh, "sample")
    # about 70 % of the sample's events come from euro-area countries (DE, FR, NL, IT, ES, AT, BE)
    share = wh.cursor().execute(
        "SELECT avg(CASE WHEN country IN ('DE', 'FR', 'NL', 'IT', 'ES', 'AT', 'BE') THEN 1.0 ELSE 0.0 END) "
        "FROM events WHERE dataset = 'sample' AND country IS NOT NULL").fetchone()[0]
    assert 0.6 < share < 0.8
    assert info.code == "EUR" and f"{fmt.percent(share, 0)} of the events" in info.reason  # "69 %"


def test_cli_currency_set_guess_and_bad_code(tmp_path, capsys, test_data):
    from analytics.cli import main

    db = str(tmp_path / "w.duckdb")
    assert main(["ingest", str(test_data / "CDNOW_sample.txt"), "--dataset", "cdnow", "--db", db]) == 0
    capsys.readouterr()
    assert main(["currency", "--dataset", "cdnow", "--db", db]) == 0
    assert "USD · US dollar ($) (guessed: CDNOW" in capsys.readouterr().out
    assert main(["currency", "--dataset", "cdnow", "--set", "dollars", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "'dollars' is not an ISO 4217 currency code" in err and "Traceback" not in err
    assert main(["currency", "--dataset", "cdnow", "--set", "eur", "--db", db]) == 0
    assert "EUR · Euro (€) (set for this dataset)" in capsys.readouterr().out
