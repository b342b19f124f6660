"""Bad input through the command line, as a new user meets it: each case names what is wrong and
what still works, and one odd customer never removes every customer's numbers.

* a real order log (CDNOW) with $0 orders, one repeat buyer spending $0 on every order: scoring
  and the backtest still give every customer a BG/NBD x Gamma-Gamma value, and say who was left out;
* every repeat buyer with the same spend; a single repeat buyer;
* a calibration end before the first purchase; a holdout with no purchases (one line, exit 2).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.cli import main
from analytics.warehouse import Warehouse

from ._events import add_events

CDNOW = Path(__file__).resolve().parents[1] / "data" / "CDNOW_sample.txt"


def cdnow_with_zero_orders(n_zero: int = 80) -> tuple[pd.DataFrame, str]:
    df = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["cust", "customer_id", "date", "n", "revenue"],
                     dtype={"date": str, "customer_id": str})
    ev = pd.DataFrame({"customer_id": df["customer_id"], "event_time": pd.to_datetime(df["date"], format="%Y%m%d"),
                       "event_type": "purchase", "revenue": df["revenue"].astype(float)})
    cal = ev[ev["event_time"] <= "1997-09-30"]
    days = cal.groupby("customer_id")["event_time"].nunique()
    zero_buyer = str(days[days >= 3].index[0])  # a repeat buyer whose every order is $0
    zero = ev["customer_id"] == zero_buyer
    rng = np.random.default_rng(5)
    others = rng.choice(np.flatnonzero(~zero.to_numpy()), size=n_zero - int(zero.sum()), replace=False)
    zero.iloc[others] = True
    ev.loc[zero, "revenue"] = 0.0
    return ev, zero_buyer


@pytest.fixture(scope="module")
def zero_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("zero") / "z.duckdb"
    wh = Warehouse(path)
    ev, who = cdnow_with_zero_orders()
    add_events(wh, "orders", ev)
    add_events(wh, "flat", ev.drop_duplicates(["customer_id", "event_time"]).assign(revenue=25.0))  # every day $25
    wh.close()
    return path, who


def test_score_with_zero_spend_orders_keeps_every_customers_clv(zero_db, tmp_path, capsys):
    path, who = zero_db
    out = tmp_path / "scores.csv"
    rc = main(["score", "--db", str(path), "--dataset", "orders", "--as-of", "1997-09-30", "--unit", "weeks",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    scored = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    assert len(scored) == 2357 and scored["clv_bgnbd"].notna().all() and (scored["clv_bgnbd"] >= 0).all()
    assert scored["clv_bgnbd"].sum() > 0 and scored.loc[who, "clv_bgnbd"] > 0  # population mean spend
    assert "total 0.00" not in captured.out
    assert "zero or negative spend" in captured.err and "population mean" in captured.err


def test_backtest_with_zero_spend_orders_reports_the_bgnbd_row(zero_db, tmp_path, capsys):
    path, _ = zero_db
    out = tmp_path / "bt.json"
    rc = main(["backtest", "--db", str(path), "--dataset", "orders", "--calibration-end", "1997-09-30",
               "--holdout-end", "1998-06-30", "--models", "naive", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads(out.read_text())["metrics"]
    for name in ("bgnbd", "paretonbd"):
        assert metrics[name].get("error") is None, metrics[name]
        assert 0.5 < metrics[name]["total_ratio"] < 1.5


def _small(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "revenue"])


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "w.duckdb"
    wh = Warehouse(path)
    one = [(f"o{i}", f"2024-0{1 + i % 6}-1{i % 9}", "purchase", 10.0 + i) for i in range(40)]
    one += [("o1", "2024-09-01", "purchase", 30.0)]  # the only repeat buyer
    add_events(wh, "one", _small(one))
    late = [("v1", "2024-01-05", "view", None), ("v2", "2024-01-20", "view", None),
            ("v1", "2024-03-01", "purchase", 20.0), ("v2", "2024-03-10", "purchase", 15.0),
            ("v1", "2024-04-01", "purchase", 25.0), ("v1", "2024-06-30", "view", None)]
    add_events(wh, "late", _small(late))
    wh.close()
    return str(path)


def test_same_spend_everywhere_scores_with_a_note(zero_db, tmp_path, capsys):
    out = tmp_path / "s.csv"
    rc = main(["score", "--db", str(zero_db[0]), "--dataset", "flat", "--as-of", "1997-09-30", "--unit", "weeks",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    scored = pd.read_csv(out)
    assert scored["clv_bgnbd"].notna().all() and scored["clv_bgnbd"].sum() > 0
    assert "same average spend" in captured.err


def test_a_single_repeat_buyer_says_why_and_the_formula_clv_stays(db, tmp_path, capsys):
    out = tmp_path / "o.csv"
    rc = main(["score", "--db", db, "--dataset", "one", "--as-of", "2024-09-30", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    scored = pd.read_csv(out)
    assert scored["clv_formula"].notna().all() and scored["clv_formula"].sum() > 0
    text = captured.out + captured.err
    assert "repeat buyer" in text and "total 0.00" not in text


@pytest.mark.parametrize("cal, hold, message", [
    ("2024-02-01", "2024-03-20", "before the first purchase (1 Mar 2024)"),
    ("2024-04-15", "2024-06-30", "no purchases between 16 Apr 2024 and 30 Jun 2024"),
    # the last day is inside the data: what is wrong is that it leaves no holdout
    ("2024-06-30", "2024-06-30", "the calibration end 30 Jun 2024 is the last day of data: no day is left for "
                                 "the holdout; pick a date before 30 Jun 2024"),
])
def test_backtest_dates_without_purchases_are_one_line(db, capsys, cal, hold, message):
    rc = main(["backtest", "--db", db, "--dataset", "late", "--calibration-end", cal, "--holdout-end", hold])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_one_day_of_history_is_one_day(tmp_path, capsys):
    path = tmp_path / "w.duckdb"
    wh = Warehouse(path)
    rows = [(f"c{i}", "2024-01-01", "purchase", 10.0 + i) for i in range(6)]
    rows += [(f"c{i}", f"2024-0{2 + i % 4}-0{1 + i}", "purchase", 20.0 + i) for i in range(6)]
    add_events(wh, "day", _small(rows))
    wh.close()
    rc = main(["backtest", "--db", str(path), "--dataset", "day", "--calibration-end", "2024-01-01",
               "--holdout-end", "2024-05-04", "--models", "lightgbm"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "for the learned models: 1 day of data from 1 Jan 2024;" in err, err


def test_a_holdout_bought_in_only_by_later_customers_says_so(db, capsys):
    # the cut-off's three customers (o0, o18, o36: 2024-01-10) never come back; every later purchase
    # is by customers who arrived after it: 'no purchases between ...' would contradict the data
    rc = main(["backtest", "--db", db, "--dataset", "one", "--calibration-end", "2024-01-10",
               "--holdout-end", "2024-09-01"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "none of the 3 customers seen by 10 Jan 2024 bought between 11 Jan 2024 and 1 Sep 2024" in err, err
    assert "37 customers who arrived later" in err and "pick a later calibration end" in err
    assert "no purchases between" not in err
