"""`valuescope segments`: guide-k, cluster --save, runs, save/list/select/delete, one-line errors."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from analytics.cli import main


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    sd = pytest.importorskip("sample_data")
    from analytics.ingest import ingest
    from analytics.warehouse import Warehouse

    path = tmp_path_factory.mktemp("cli") / "w.duckdb"
    wh = Warehouse(path)
    ingest(wh, sd.SAMPLE_EVENTS, "shop")
    wh.close()
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_guide_cluster_save_select(db, capsys, tmp_path):
    code, out, err = run(capsys, "segments", "guide-k", "--db", db, "--dataset", "shop", "--as-of", "2025-12-31",
                         "--k-max", "8", "--json")
    assert code == 0, err
    g = json.loads(out)
    assert [r["k"] for r in g["table"]] == list(range(2, 9)) and g["suggested_k"] == 6

    csv = tmp_path / "clusters.csv"
    code, out, err = run(capsys, "segments", "cluster", "--db", db, "--dataset", "shop", "--as-of", "2025-12-31",
                         "--k", "6", "--save", "--out", str(csv))
    assert code == 0, err
    assert "saved as clustering run 1" in out and "High value · frequent" in out
    assigned = pd.read_csv(csv, dtype={"customer_id": str})
    assert len(assigned) == 4000 and assigned["cluster"].nunique() == 6

    code, out, _ = run(capsys, "segments", "runs", "--db", db)
    assert out.startswith("run 1: shop as of 2025-12-31, 4,000 customers, k=6, kmeans")

    loyal = assigned.loc[assigned["cluster"] == 0, "cluster_name"].iloc[0]
    definition = json.dumps({"op": "and", "conditions": [
        {"field": "cluster_name", "operator": "=", "value": loyal},
        {"field": "net_revenue", "operator": ">=", "value": 500}]})
    code, out, err = run(capsys, "segments", "save", "--db", db, "<b>Top</b>", "--definition", definition,
                         "--description", "loyal & big")
    assert code == 0, err
    code, out, _ = run(capsys, "segments", "list", "--db", db)
    # one dataset in the warehouse: the segment belongs to it
    assert out.startswith("<b>Top</b> [dataset shop]: Cluster = ") and "Net revenue >= 500" in out

    sel = tmp_path / "top.csv"
    code, out, err = run(capsys, "segments", "select", "--db", db, "--dataset", "shop", "--as-of", "2025-12-31",
                         "--segment", "<b>Top</b>", "--out", str(sel))
    assert code == 0, err
    top = pd.read_csv(sel, dtype={"customer_id": str})
    expected = assigned[(assigned["cluster"] == 0)]["customer_id"]
    assert set(top["customer_id"]) <= set(expected) and len(top) > 0
    assert (top["net_revenue"] >= 500).all()
    assert out.startswith(f"{len(top):,} of 4,000 customers")

    code, out, _ = run(capsys, "segments", "delete", "--db", db, "<b>Top</b>")
    assert code == 0
    code, out, _ = run(capsys, "segments", "list", "--db", db)
    assert out.startswith("no saved segments")


@pytest.mark.parametrize("argv, msg", [
    (["cluster", "--dataset", "shop", "--as-of", "2025-12-31", "--k", "1"], "between 2 and 50"),
    (["cluster", "--dataset", "shop", "--as-of", "2025-12-31", "--features", "net_revenue,nope"],
     "unknown feature: nope"),
    (["cluster", "--dataset", "nope", "--as-of", "2025-12-31"], "no dataset named 'nope'"),
    (["select", "--dataset", "shop", "--as-of", "2025-12-31", "--definition", "{bad"], "not valid JSON"),
    (["select", "--dataset", "shop", "--as-of", "2025-12-31", "--definition",
      '{"op": "and", "conditions": [{"field": "x; DROP TABLE events", "operator": "=", "value": 1}]}'],
     "unknown field"),
    (["select", "--dataset", "shop", "--as-of", "2025-12-31", "--segment", "missing"], "no saved segment"),
    (["delete", "missing"], "no saved segment 'missing'"),
    (["guide-k", "--dataset", "shop", "--as-of", "2025-12-31", "--k-min", "5", "--k-max", "3"], "k-min"),
])
def test_errors_are_one_line(db, capsys, argv, msg):
    code, out, err = run(capsys, "segments", *argv[:1], "--db", db, *argv[1:])
    assert code == 2
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_order_log_without_ratings_clusters_on_the_other_default_features(tmp_path, capsys):
    # a plain order log has no ratings: the default features leave avg_rating out (with a note)
    # instead of refusing the whole run, as the Segments page does
    import numpy as np

    rng = np.random.default_rng(11)
    rows = ["customer_id,order_date,amount"]
    for c in range(120):
        for _ in range(1 + rng.poisson(2 if c % 2 else 0.3)):
            day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 360)))
            rows.append(f"K{c:04d},{day.date()},{rng.lognormal(3 + (c % 2), 0.3):.2f}")
    f = tmp_path / "orders.csv"
    f.write_text("\n".join(rows) + "\n")
    db = str(tmp_path / "w.duckdb")
    code, _, err = run(capsys, "ingest", str(f), "--dataset", "orders", "--db", db, "--no-prepare")
    assert code == 0, err
    for cmd in (["guide-k", "--k-max", "4"], ["cluster", "--k", "2"]):
        code, out, err = run(capsys, "segments", *cmd, "--db", db, "--dataset", "orders", "--as-of", "2024-12-31")
        assert code == 0, err
        assert "left out of the default features (missing for every customer): avg_rating" in err
        assert "avg_rating" not in out
    assert "120 customers in 2 clusters" in out
