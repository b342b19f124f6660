"""The Spark engine equals the warehouse on the bundled sample and on CDNOW: every customer's
summary, RFM scores and segment, behaviour score, formula CLV, BG/NBD + Gamma-Gamma CLV and
probability alive (floats to 1e-6 relative, the rest exactly), and the fitted parameters."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics import scores
from analytics.cli import main
from analytics.summary import customer_summary
from analytics.warehouse import get_warehouse
from tests.spark._compare import assert_frames_equal, assert_scores_equal

pytestmark = pytest.mark.spark


def _spark_summary(spark, path, as_of, unit, name):
    from analytics.spark import summary as ss
    from analytics.spark.events import read_events

    return ss.customer_summary(read_events(spark, str(path)), as_of, unit), ss


@pytest.mark.parametrize("name,as_of,unit", [("sample", "2025-06-30", "weeks"), ("cdnow", "1997-09-30", "weeks")])
def test_summary_scores_and_models_equal_the_warehouse(spark, data, name, as_of, unit):
    from analytics.spark.scoring import score_summary

    db, paths = data
    wh = get_warehouse(db)  # the process-wide connection: the CLI tests open the same file
    want_summary = customer_summary(wh, name, as_of, unit, persist=False)
    # what score_dataset computes (without persisting a summary)
    scorer = scores.Scorer(want_summary)
    table, models = scores.probabilistic_clv(want_summary)
    want = scorer.frame(scorer.score(prob=scorer.align(table), top_n=0))
    sdf, ss = _spark_summary(spark, paths[name], as_of, unit, name)
    got_summary = ss.to_pandas_summary(sdf, unit, as_of, name)
    assert got_summary.index.equals(want_summary.index)
    assert_frames_equal(got_summary.reset_index(), want_summary.reset_index(), rtol=1e-9)

    run = score_summary(sdf, as_of, unit, dataset=name)
    got = ss.collect(run.frame.orderBy("customer_id"))
    worst = assert_frames_equal(got, want)
    assert worst["p_alive"] <= 1e-6 and worst["clv_bgnbd"] <= 1e-6
    # the library's estimators fitted on Spark's distinct rows: the warehouse's parameters
    got_params = run.metadata["model_params"]
    want_params = scores.model_params(models)
    for model in ("bgnbd", "gamma_gamma"):
        for k, v in want_params[model].items():
            if isinstance(v, float):
                assert got_params[model][k] == pytest.approx(v, rel=1e-6), (model, k)
            else:
                assert got_params[model][k] == v, (model, k)
    if name == "cdnow":  # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426
        bg = got_params["bgnbd"]
        assert (round(bg["r"], 3), round(bg["alpha"], 3), round(bg["a"], 3), round(bg["b"], 3)) == (
            0.243, 4.414, 0.793, 2.426)
    # segments: every RFM segment the warehouse gives, with the same customers
    assert (got["rfm_segment"].value_counts().sort_index() == want["rfm_segment"].value_counts().sort_index()).all()


def test_cli_spark_writes_the_warehouse_csv_and_a_parquet_folder(spark, data, tmp_path, capsys):
    db, paths = data
    args = ["--as-of", "2025-12-31", "--rfm-weights", "2,1,1", "--margin", "0.25", "--horizon-months", "6"]
    want_csv, got_csv, got_dir = tmp_path / "want.csv", tmp_path / "got.csv", tmp_path / "scores"
    assert main(["score", "--db", str(db), "--dataset", "sample", *args, "--out", str(want_csv)]) == 0
    capsys.readouterr()
    assert main(["score", "--engine", "spark", "--events", str(paths["sample"]), *args,
                 "--out", str(got_csv)]) == 0
    printed = capsys.readouterr().out
    assert "scored 4,000 customers" in printed and "on Spark" in printed
    want = pd.read_csv(want_csv, dtype={"customer_id": str})
    got = pd.read_csv(got_csv, dtype={"customer_id": str})
    assert_scores_equal(got, want)
    assert got["churn_band"].notna().sum() > 1000 and got["next_order_date"].notna().sum() > 1000
    meta_w = json.loads((tmp_path / "want.csv.json").read_text())
    meta_g = json.loads((tmp_path / "got.csv.json").read_text())
    assert meta_g["engine"] == "spark" and meta_g["customers"] == meta_w["customers"] == 4000
    for k in ("rfm_weights", "behaviour_weights", "margin", "horizon_months", "segment_rules", "bgnbd"):
        assert meta_g[k] == meta_w[k], k
    for k, v in meta_w["model_params"]["bgnbd"].items():
        assert meta_g["model_params"]["bgnbd"][k] == (pytest.approx(v, rel=1e-6) if isinstance(v, float) else v)

    # a folder: Parquet part files written by the executors, same rows
    assert main(["score", "--engine", "spark", "--events", str(paths["sample"]), *args,
                 "--summary-out", str(tmp_path / "summary"), "--out", str(got_dir)]) == 0
    parts = sorted(got_dir.glob("part-*.parquet"))
    assert parts
    back = pd.concat([pd.read_parquet(p) for p in parts]).sort_values("customer_id").reset_index(drop=True)
    assert len(back) == 4000
    np.testing.assert_allclose(back["clv_bgnbd"].to_numpy(), want["clv_bgnbd"].to_numpy(), rtol=1e-6)
    assert (back["rfm_segment"].to_numpy() == want["rfm_segment"].to_numpy()).all()
    assert (tmp_path / "scores.json").exists()
    summary = pd.concat(pd.read_parquet(p) for p in (tmp_path / "summary").glob("part-*.parquet"))
    assert len(summary) == 4000 and {"frequency", "recency", "T", "monetary_value"} <= set(summary.columns)

    # the Spark summary attached as a dataset: the warehouse scores it as it scores the events
    att_db, att_csv = tmp_path / "attached.duckdb", tmp_path / "attached.csv"
    assert main(["attach-summary", str(tmp_path / "summary"), "--dataset", "big", "--db", str(att_db)]) == 0
    assert main(["score", "--db", str(att_db), "--dataset", "big", *args, "--out", str(att_csv)]) == 0
    capsys.readouterr()
    # an attached summary has no events: no review texts to score and no first orders to model
    assert_scores_equal(pd.read_csv(att_csv, dtype={"customer_id": str}), want)


def test_pareto_nbd_equals_the_warehouse(spark, data):
    """Pareto/NBD + Gamma-Gamma (where the library has Pareto/NBD) fitted on Spark's distinct rows:
    the warehouse's parameters and every customer's P(alive), expected purchases and CLV."""
    if "paretonbd" not in getattr(scores, "PURCHASE_MODELS", {}):
        pytest.skip("this version of analytics.scores has no Pareto/NBD purchase model")
    from analytics.spark.scoring import score_summary

    db, paths = data
    summary = customer_summary(get_warehouse(db), "cdnow", "1997-09-30", "weeks", persist=False)
    scorer = scores.Scorer(summary)
    table, models = scores.probabilistic_clv(summary, purchase_model="paretonbd")
    want = scorer.frame(scorer.score(prob=scorer.align(table), top_n=0))
    sdf, ss = _spark_summary(spark, paths["cdnow"], "1997-09-30", "weeks", "cdnow")
    run = score_summary(sdf, "1997-09-30", "weeks", dataset="cdnow", purchase_model="paretonbd")
    got = ss.collect(run.frame.orderBy("customer_id"))
    assert_frames_equal(got, want)
    assert run.metadata["model_params"]["purchase_model"] == "paretonbd"
    for k, v in scores.model_params(models)["paretonbd"].items():
        if isinstance(v, float):
            assert run.metadata["model_params"]["paretonbd"][k] == pytest.approx(v, rel=1e-6), k
