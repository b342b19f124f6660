"""`valuescope campaign`: create (with recommendations and export), list, export, readout, delete; one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.cli import main
from analytics.export import read_parquet_metadata

from .conftest import AS_OF, load, make_events


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from analytics.segments import store
    from analytics.warehouse import Warehouse

    path = tmp_path_factory.mktemp("cli") / "w.duckdb"
    wh = Warehouse(path)
    load(wh, "shop", make_events(300, seed=11))
    store.save_segment(wh, "Buyers", {"op": "and", "conditions": [
        {"field": "n_orders", "operator": ">=", "value": 1}]})
    wh.close()
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_export_readout_delete(db, capsys, tmp_path):
    out_csv = tmp_path / "list.csv"
    code, out, err = run(capsys, "campaign", "create", "--db", db, "--dataset", "shop", "--as-of", AS_OF,
                         "--name", "=Spring", "--segment", "Buyers", "--budget", "401", "--cost", "2",
                         "--control", "0.2", "--recommend", "3", "--out", str(out_csv), "--bom")
    assert code == 0, err
    assert "200 to contact (limited by budget / cost per contact)" in out
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    listed = pd.read_csv(out_csv, dtype={"customer_id": str}, encoding="utf-8-sig")
    assert len(listed) == 250 and (listed["group"] == "treatment").sum() == 200  # ceil(200 / 0.8) = 250
    assert list(listed.columns[:4]) == ["customer_id", "group", "rank", "segment"]
    assert listed["recommended_items"].str.count(";").max() == 2  # 3 items each
    assert (listed["segment"] == "Buyers").all()

    code, out, err = run(capsys, "campaign", "list", "--db", db, "--json")
    camp = json.loads(out)[0]
    assert camp["name"] == "=Spring" and camp["n_treatment"] == 200 and camp["n_control"] == 50

    code, out, err = run(capsys, "campaign", "show", "=Spring", "--db", db)
    assert code == 0, err
    assert "200 contacted, 50 control (20%, seed 42)" in out and "segments: Buyers" in out
    assert "expected: revenue" in out and "outcomes: 0 rows" in out
    code, out, err = run(capsys, "campaign", "show", str(camp["id"]), "--db", db, "--json")
    assert json.loads(out)["spec"]["budget"] == 401.0

    pq = tmp_path / "list.parquet"
    code, out, err = run(capsys, "campaign", "export", str(camp["id"]), "--db", db, "--out", str(pq))
    assert code == 0, err
    back = pd.read_parquet(pq)
    pd.testing.assert_frame_equal(back[["customer_id", "group", "rank"]], listed[["customer_id", "group", "rank"]],
                                  check_dtype=False)
    assert read_parquet_metadata(pq)["name"] == "=Spring"

    rng = np.random.default_rng(0)
    conv = rng.random(len(listed)) < np.where(listed["group"] == "treatment", 0.5, 0.25)
    outcomes = pd.DataFrame({"customer_id": listed["customer_id"], "converted": np.where(conv, "yes", "no"),
                             "revenue": np.where(conv, 30.0, 0.0)})
    outcomes = pd.concat([outcomes, pd.DataFrame({"customer_id": ["nobody"], "converted": ["no"], "revenue": [0]})])
    oc = tmp_path / "outcomes.csv"
    outcomes.to_csv(oc, index=False)
    code, out, err = run(capsys, "campaign", "readout", "=Spring", "--db", db, "--outcomes", str(oc), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["unknown_count"] == 1 and r["unknown_ids"] == ["nobody"]
    assert r["overall"]["conversions_t"] == int(conv[listed["group"] == "treatment"].sum())
    assert not r["overall"]["too_small"] and r["overall"]["uplift_conversion"] > 0
    # stored: a read-out without --outcomes gives the same numbers
    code, out2, err = run(capsys, "campaign", "readout", str(camp["id"]), "--db", db, "--json")
    assert json.loads(out2)["overall"] == r["overall"]
    code, out, err = run(capsys, "campaign", "readout", str(camp["id"]), "--db", db)
    assert "conversion uplift" in out and "1 outcome ids are not in the campaign" in out

    # a second campaign's defaults come from the first one's measured uplift
    code, out, err = run(capsys, "campaign", "create", "--db", db, "--dataset", "shop", "--as-of", AS_OF,
                         "--name", "second", "--max-contacts", "20", "--json")
    assert code == 0, err
    second = json.loads(out)
    assert second["default_response_rate"] == pytest.approx(r["overall"]["uplift_conversion"])
    assert "earlier campaign '=Spring'" in second["default_source"]

    code, out, err = run(capsys, "campaign", "delete", "second", "--db", db)
    assert code == 0 and "deleted campaign" in out


@pytest.mark.parametrize("argv, msg", [
    (["--name", "x", "--budget", "0"], "budget of 0 contacts nobody"),
    (["--name", "x", "--control", "0"], "strictly between 0 % and 100 %"),
    (["--name", "x", "--control", "1"], "strictly between 0 % and 100 %"),
    (["--name", "x", "--cost", "-1"], "cannot be negative"),
    (["--name", "x", "--segment", "Ghost"], "unknown segment 'Ghost'"),
    (["--name", "x", "--rank", "score", "--score-column", "nope"], "unknown score column 'nope'"),
    (["--name", "x", "--rules", '{"op": "and", "conditions": [{"field": "n_orders", "operator": ">", '
      '"value": 100000}]}'], "the selection is empty"),
    (["--name", "x", "--out", "x.xlsx"], "--out must end in .csv or .parquet"),
])
def test_create_errors_are_one_line(db, capsys, argv, msg):
    code, out, err = run(capsys, "campaign", "create", "--db", db, "--dataset", "shop", "--as-of", AS_OF, *argv)
    assert code == 2
    assert msg in err and "Traceback" not in err and err.count("\n") == 1


def test_readout_errors_are_one_line(db, capsys, tmp_path):
    run(capsys, "campaign", "create", "--db", db, "--dataset", "shop", "--as-of", AS_OF, "--name", "errs",
        "--max-contacts", "10")
    dup = tmp_path / "dup.csv"
    dup.write_text("customer_id,converted,revenue\nc0001,1,2\nc0002,0,0\nc0001,0,0\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,converted,revenue\nc0001,perhaps,2\n")
    for f, msg in ((dup, "more than once: 'c0001'"), (bad, "converted must be 0/1"),
                   (tmp_path / "none.csv", "no such file")):
        code, out, err = run(capsys, "campaign", "readout", "errs", "--db", db, "--outcomes", str(f))
        assert code == 2 and msg in err and err.count("\n") == 1
    code, out, err = run(capsys, "campaign", "readout", "errs", "--db", db)
    assert code == 2 and "no outcomes yet" in err
    code, out, err = run(capsys, "campaign", "create", "--db", db, "--dataset", "shop", "--as-of", AS_OF,
                         "--name", "errs")
    assert code == 2 and "already exists" in err
    code, out, err = run(capsys, "campaign", "delete", "404", "--db", db)
    assert code == 2 and "no campaign '404'" in err


def test_recommend_on_a_log_without_items_makes_the_campaign_without_them(tmp_path, capsys):
    from analytics.warehouse import Warehouse

    path = str(tmp_path / "w.duckdb")
    wh = Warehouse(path)
    events = make_events(120, seed=3)
    events["item_id"] = None  # a plain order log: no item column was loaded
    load(wh, "orders", events)
    wh.close()
    code, out, err = run(capsys, "campaign", "create", "--db", path, "--dataset", "orders", "--as-of", AS_OF,
                         "--name", "No items", "--max-contacts", "20", "--recommend", "5",
                         "--out", str(tmp_path / "l.csv"))
    assert code == 0, err
    assert "note: no recommendations: dataset 'orders' has no item ids on its purchases, carts or views up to " \
        f"{AS_OF} (load a file with an item, product or SKU column to recommend items); the campaign is made " \
        "without them" in out
    listed = pd.read_csv(tmp_path / "l.csv")
    assert (listed["group"] == "treatment").sum() == 20 and "recommended_items" not in listed.columns
    code, out, err = run(capsys, "campaign", "show", "No items", "--db", path, "--json")
    assert json.loads(out)["spec"]["recommendations"] == 0  # stored as it was made
    code, out, err = run(capsys, "campaign", "create", "--db", path, "--dataset", "orders", "--as-of", AS_OF,
                         "--name", "No items 2", "--max-contacts", "20", "--recommend", "5", "--json")
    assert code == 0, err
    assert json.loads(out)["recommendations_note"].startswith("no recommendations: dataset 'orders'")
