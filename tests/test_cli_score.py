"""`valuescope score`: headless scoring to CSV/Parquet, parameters recorded, one-line errors."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from analytics.cli import main
from analytics.export import read_parquet_metadata
from analytics.warehouse import Warehouse


def _load(wh: Warehouse, dataset: str, rows: list[tuple]) -> None:
    """rows: (customer_id, 'YYYY-MM-DD', event_type, revenue)."""
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES (?)", [dataset])
        tx.executemany(
            "INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) VALUES (?, ?, ?, ?, ?)",
            [(dataset, c, dt.datetime.fromisoformat(d), t, r) for c, d, t, r in rows],
        )


ROWS = [
    # alice: frequent, recent, big spender
    ("alice", "2024-01-05", "purchase", 100.0), ("alice", "2024-02-05", "purchase", 120.0),
    ("alice", "2024-03-01", "purchase", 90.0), ("alice", "2024-03-01", "view", None),
    ("alice", "2024-03-02", "review", None),
    # bob: one old purchase
    ("bob", "2024-01-10", "purchase", 20.0), ("bob", "2024-01-09", "view", None),
    # carol: only browsing
    ("carol", "2024-02-20", "view", None), ("carol", "2024-02-21", "cart", None),
    # =evil: a formula-looking id, two purchases and a return
    ("=evil()", "2024-02-01", "purchase", 50.0), ("=evil()", "2024-02-15", "purchase", 30.0),
    ("=evil()", "2024-02-16", "return", 30.0),
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "w.duckdb"
    wh = Warehouse(path)
    _load(wh, "shop", ROWS)
    wh.close()
    return str(path)


def test_score_to_csv_with_parameters(db, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    rc = main([
        "score", "--db", db, "--dataset", "shop", "--as-of", "2024-03-31", "--no-bgnbd",
        "--rfm-weights", "2,1,1", "--margin", "0.25", "--horizon-months", "6", "--discount-rate", "0",
        "--out", str(out),
    ])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "scored 4 customers" in printed
    df = pd.read_csv(out, dtype={"customer_id": str})
    assert sorted(df["customer_id"]) == sorted(["'=evil()", "alice", "bob", "carol"])
    by = df.set_index("customer_id")
    assert by.loc["carol", "rfm_segment"] == "No purchase yet"
    assert by.loc["carol", "n_orders"] == 0
    assert by.loc["alice", "n_orders"] == 3
    assert by.loc["alice", "r_score"] > by.loc["bob", "r_score"]
    assert by.loc["alice", "rfm_score"] > by.loc["bob", "rfm_score"]
    assert by.loc["'=evil()", "net_revenue"] == pytest.approx(50.0)
    assert (df["param_margin"] == 0.25).all()
    assert (df["param_horizon_months"] == 6).all()
    assert (df["param_as_of"] == "2024-03-31").all()
    assert df["param_rfm_weight_recency"].iloc[0] == pytest.approx(0.5)
    # CLV by formula, by hand for alice: AOV 310/3, 3 orders over (Mar 31 - Jan 5 = 86 days, younger than the
    # default minimum age of 9 months, so counted over 9 months), no discounting,
    # 6 months within a 3-year lifetime -> x 0.25 x 6/12
    expected = (310 / 3) * (3 / max(86 / 365.25, 9 / 12)) * 0.25 * 0.5
    assert by.loc["alice", "clv_formula"] == pytest.approx(expected)
    meta = json.loads((tmp_path / "scores.csv.json").read_text())
    assert meta["margin"] == 0.25 and meta["dataset"] == "shop" and meta["bgnbd"] == "skipped"
    assert meta["segment_rules"][0]["segment"] == "Champions"


def test_score_to_parquet_keeps_metadata(db, tmp_path):
    out = tmp_path / "scores.parquet"
    rc = main(["score", "--db", db, "--dataset", "shop", "--as-of", "2024-03-31", "--no-bgnbd",
               "--behaviour-weights", "views=1,carts=1", "--out", str(out)])
    assert rc == 0
    df = pd.read_parquet(out)
    assert "=evil()" in df["customer_id"].tolist()  # typed file: nothing to neutralize
    meta = read_parquet_metadata(out)
    assert meta["behaviour_weights"] == {"views": 0.5, "searches": 0.0, "carts": 0.5, "purchases": 0.0, "reviews": 0.0}
    by = df.set_index("customer_id")
    assert by.loc["carol", "behaviour_score"] > by.loc["bob", "behaviour_score"]


def test_as_of_limits_the_data(db, tmp_path):
    out = tmp_path / "early.csv"
    assert main(["score", "--db", db, "--dataset", "shop", "--as-of", "2024-01-31", "--no-bgnbd", "--out", str(out)]) == 0
    df = pd.read_csv(out).set_index("customer_id")
    assert df.loc["alice", "n_orders"] == 1
    assert "carol" not in df.index


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "nope", "--as-of", "2024-03-31"], "no dataset named 'nope'"),
        (["--dataset", "shop", "--as-of", "2020-01-01"], "before the first event"),
        (["--dataset", "shop", "--as-of", "not-a-date"], "not a date"),
        (["--dataset", "shop", "--as-of", "2024-03-31", "--rfm-weights", "1,-1,1"], "must not be negative"),
        (["--dataset", "shop", "--as-of", "2024-03-31", "--rfm-weights", "0,0,0"], "above 0"),
        (["--dataset", "shop", "--as-of", "2024-03-31", "--behaviour-weights", "likes=1"], "unknown behaviour weights"),
        (["--dataset", "shop", "--as-of", "2024-03-31", "--margin", "3"], "margin"),
        (["--dataset", "shop", "--as-of", "2024-03-31", "--unit", "fortnights"], "unknown time unit"),
    ],
)
def test_bad_input_is_one_line_exit_2(db, tmp_path, capsys, extra, message):
    out = tmp_path / "x.csv"
    rc = main(["score", "--db", db, "--no-bgnbd", "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_output_name(db, tmp_path, capsys):
    rc = main(["score", "--db", db, "--dataset", "shop", "--as-of", "2024-03-31", "--out", str(tmp_path / "x.xlsx")])
    assert rc == 2
    assert ".csv or .parquet" in capsys.readouterr().err


def test_score_with_bgnbd_on_cdnow(tmp_path, test_data, capsys):
    df = pd.read_csv(test_data / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["cust", "sample_id", "date", "n", "amount"], dtype={"date": str, "sample_id": str})
    events = pd.DataFrame({
        "dataset": "cdnow", "customer_id": df["sample_id"],
        "event_time": pd.to_datetime(df["date"], format="%Y%m%d"), "event_type": "purchase",
        "revenue": df["amount"].astype(float),
    })
    path = tmp_path / "c.duckdb"
    wh = Warehouse(path)
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES ('cdnow')")
        tx.register("incoming", events)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) "
                   "SELECT dataset, customer_id, event_time, event_type, revenue FROM incoming")
    wh.close()
    out = tmp_path / "cdnow.parquet"
    rc = main(["score", "--db", str(path), "--dataset", "cdnow", "--as-of", "1997-09-30", "--unit", "weeks",
               "--horizon-months", "12", "--margin", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "CLV by BG/NBD + Gamma-Gamma" in captured.out
    meta = json.loads((tmp_path / "cdnow.parquet.json").read_text())
    assert meta["bgnbd"] == "fitted"
    bg = meta["model_params"]["bgnbd"]
    # the published CDNOW calibration fit (Fader, Hardie & Lee 2005), in weeks
    assert (round(bg["r"], 3), round(bg["alpha"], 3), round(bg["a"], 3), round(bg["b"], 3)) == (0.243, 4.414, 0.793, 2.426)
    assert bg["unit"] == "weeks"
    # CDNOW's spend fit is sane: its mean (35.17) sits on the repeat buyers' average (35.08)
    check = meta["model_params"]["spend_check"]
    assert check["poor_fit"] is False and check["warning"] is None and check["ratio"] == pytest.approx(1.0, abs=0.01)
    assert "spend model" not in captured.err
    scored = pd.read_parquet(out)
    assert len(scored) == 2357
    assert scored["clv_bgnbd"].notna().all() and (scored["clv_bgnbd"] >= 0).all()
    assert scored["p_alive"].between(0, 1).all()
    assert read_parquet_metadata(out)["model_params"]["gamma_gamma"]["customers"] == meta["model_params"]["gamma_gamma"]["customers"]


def test_custom_segment_rules_file(db, tmp_path, capsys):
    rules = tmp_path / "rules.csv"
    rules.write_text("segment,r_min,r_max,fm_min,fm_max\nRecent,4,5,1,5\n")
    out = tmp_path / "s.csv"
    rc = main(["score", "--db", db, "--dataset", "shop", "--as-of", "2024-03-31", "--no-bgnbd",
               "--segment-rules", str(rules), "--fallback-segment", "Older", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()  # the first run's notes
    df = pd.read_csv(out).set_index("customer_id")
    by_r = df.groupby("r_score")["rfm_segment"].agg(set).to_dict()
    for r, segs in by_r.items():
        assert segs == ({"Recent"} if r >= 4 else {"Older"} if r >= 1 else {"No purchase yet"})
    meta = json.loads((tmp_path / "s.csv.json").read_text())
    assert meta["segment_rules"] == [{"segment": "Recent", "r_min": 4, "r_max": 5, "fm_min": 1, "fm_max": 5}]
    assert meta["fallback_segment"] == "Older"
    # a bad table is a one-line error before any work
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"segment": "X", "r_min": 6, "r_max": 5, "fm_min": 1, "fm_max": 5}]))
    rc = main(["score", "--db", db, "--dataset", "shop", "--as-of", "2024-03-31", "--no-bgnbd",
               "--segment-rules", str(bad), "--out", str(tmp_path / "b.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "whole number 1-5" in err and len(err.strip().splitlines()) == 1


def test_an_as_of_after_the_data_is_noted(db, tmp_path, capsys):
    # the data end on 2024-03-02; a mistyped year scores everyone as silent for years: say so
    out = tmp_path / "s.csv"
    assert main(["score", "--db", db, "--dataset", "shop", "--as-of", "2042-03-02", "--out", str(out),
                 "--no-bgnbd"]) == 0
    err = capsys.readouterr().err
    days = (dt.date(2042, 3, 2) - dt.date(2024, 3, 2)).days
    assert f"the as-of date 2042-03-02 is {days:,} days after the last event of 'shop' (2024-03-02)" in err
    assert main(["score", "--db", db, "--dataset", "shop", "--as-of", "2024-03-02", "--out", str(out),
                 "--no-bgnbd"]) == 0
    assert "after the last event" not in capsys.readouterr().err


def test_no_probabilistic_clv_says_what_is_wrong_not_to_raise_the_penalizer(tmp_path, capsys):
    db = str(tmp_path / "w.duckdb")
    wh = Warehouse(db)
    _load(wh, "views", [(f"u{i}", f"2024-0{1 + i % 5}-1{i % 9}", "view", None) for i in range(30)])
    _load(wh, "once", [(f"c{i}", f"2024-0{1 + i % 5}-1{i % 9}", "purchase", 10.0 + i) for i in range(30)])
    wh.close()
    out = tmp_path / "v.csv"
    assert main(["score", "--dataset", "views", "--as-of", "2024-06-30", "--out", str(out), "--db", db]) == 0
    err = capsys.readouterr().err
    warning = next(ln for ln in err.splitlines() if ln.startswith("warning: no probabilistic CLV"))
    assert "no customer has bought anything" in warning
    assert "cannot change that: the models learn from purchases" in warning
    assert "behaviour score still ranks the customers" in warning and "event types" in warning
    assert "--penalizer" not in warning
    assert main(["score", "--dataset", "once", "--as-of", "2024-06-30", "--out", str(out), "--db", db]) == 0
    err = capsys.readouterr().err
    warning = next(ln for ln in err.splitlines() if ln.startswith("warning: no probabilistic CLV"))
    assert "no customer made a repeat purchase" in warning and "Every buyer has bought on one day only" in warning
    assert "CLV by formula are complete" in warning and "--penalizer" not in warning


def test_a_spend_model_without_enough_spend_data_does_not_suggest_a_penalizer(tmp_path, capsys):
    # one customer came back (the rest bought once), or every repeat buyer's orders are worth 0:
    # neither a penalizer nor the other purchase model can fit a spend model on that
    db = str(tmp_path / "w.duckdb")
    wh = Warehouse(db)
    once = [(f"o{i}", str(dt.date(2023, 1, 1) + dt.timedelta(days=5 * i)), "purchase", 10.0 + i) for i in range(100)]
    _load(wh, "one", once + [("r1", "2023-01-05", "purchase", 40.0), ("r1", "2023-03-05", "purchase", 55.0),
                             ("r1", "2023-08-05", "purchase", 30.0)])
    _load(wh, "free", [(f"c{i}", f"2024-0{1 + (i + k) % 6}-1{i % 9}", "purchase", 0.0)
                       for i in range(40) for k in range(3)])
    wh.close()
    out = tmp_path / "v.csv"
    for dataset, what in [("one", "only one repeat buyer has a positive spend"),
                          ("free", "none of the 40 repeat buyers has a positive spend")]:
        assert main(["score", "--dataset", dataset, "--as-of", "2024-06-30", "--out", str(out), "--db", db]) == 0
        err = capsys.readouterr().err
        warning = next(ln for ln in err.splitlines() if ln.startswith("warning: no probabilistic CLV"))
        assert what in warning, warning
        assert "cannot change that" in warning and "CLV by formula are complete" in warning
        assert "--penalizer" not in warning and "the other --purchase-model" not in warning, warning
    assert "revenue when it was loaded (`valuescope ingest --show`)" in warning


def test_a_fit_that_runs_off_still_suggests_a_penalizer():
    from analytics.scores import clv_unavailable_advice

    reason = ("the BG/NBD fit did not converge even with penalizers up to 0.1; the data may not follow the model")
    assert "--penalizer 0.01" in clv_unavailable_advice(reason, cli=True)
    assert "a larger penalizer" in clv_unavailable_advice(reason)
    assert "--unit days" in clv_unavailable_advice("all repeat purchases fall on the first purchase day "
                                                   "(recency = 0): a longer period", cli=True)
