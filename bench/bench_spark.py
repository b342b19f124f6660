"""Spark engine vs the warehouse (DuckDB) on generated events: scoring every customer.

    python bench/bench_spark.py --events 10000000 [--keep]

1. Generates ``--events`` events (the sample generator, ~57.7 events per customer) as
   Parquet part files in ``--dir`` (default /tmp/vs_bench_spark; deleted afterwards unless
   ``--keep``), in the layout ``valuescope export`` writes.
2. DuckDB: loads them into a warehouse file (timed, reported apart) and times
   ``score_dataset`` (summary, RFM / behaviour / formula CLV, BG/NBD + Gamma-Gamma fits and
   per-customer CLV, the frame) and the summary alone; writes the frame as Parquet.
3. Spark ``local[2]`` (driver memory 4g): times the JVM start, the summary alone (written as
   Parquet) and ``valuescope score --engine spark ... --out DIR`` (read, summary, scores, fits,
   per-customer CLV on the executors, Parquet part files).
4. Reads Spark's own stage metrics (its REST API on localhost) for the per-task cost of the
   summary's scan-and-aggregate stage, the basis of the scaling estimate.

Prints the figures, the ratio and the load average; every figure is one run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

EVENTS_PER_CUSTOMER = 57.7  # the generator's mean (README: 57.7M events for 1M customers)
AS_OF = "2025-12-31"


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


def generate(folder: Path, n_events: int) -> tuple[int, int]:
    from sample_data.generator import SampleConfig, iter_batches

    folder.mkdir(parents=True, exist_ok=True)
    customers = max(1000, int(round(n_events / EVENTS_PER_CUSTOMER)))
    total = 0
    for i, batch in enumerate(iter_batches(SampleConfig(customers=customers))):
        t = batch.events
        t = t.set_column(t.schema.get_field_index("revenue"), "revenue", t.column("revenue").cast(pa.float64()))
        t = t.select(["customer_id", "event_time", "event_type", "order_id", "item_id", "category", "quantity",
                      "revenue", "rating"])
        pq.write_table(t, folder / f"part-{i:05d}.parquet")
        total += t.num_rows
    return customers, total


def stage_metrics(spark) -> list[dict]:
    """Spark's completed stages from its own REST API (the UI server on localhost)."""
    url = spark.sparkContext.uiWebUrl
    if not url:
        return []
    base = "http://127.0.0.1:" + url.rsplit(":", 1)[1].strip("/")
    try:
        app = spark.sparkContext.applicationId
        with urllib.request.urlopen(f"{base}/api/v1/applications/{app}/stages?status=complete&details=false", timeout=120) as r:
            return json.load(r)
    except OSError as exc:
        print(f"  (no stage metrics: {exc})")
        return []


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--dir", default="/tmp/vs_bench_spark")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--skip-duckdb", action="store_true")
    args = ap.parse_args()
    base = Path(args.dir)
    ev_dir = base / f"events_{args.events}"
    out: dict = {"events_requested": args.events}
    print(f"[{load()}] generating {args.events:,} events in {ev_dir} ...", flush=True)
    t = time.perf_counter()
    if not ev_dir.exists():
        customers, total = generate(ev_dir, args.events)
    else:
        total = sum(pq.ParquetFile(p).metadata.num_rows for p in ev_dir.glob("*.parquet"))
        customers = None
    out.update(events=total, customers=customers, generate_s=round(time.perf_counter() - t, 1),
               parquet_mb=round(sum(p.stat().st_size for p in ev_dir.glob("*.parquet")) / 2**20, 1))
    print(f"  {total:,} events, {out['parquet_mb']} MB Parquet, {out['generate_s']} s", flush=True)

    if not args.skip_duckdb:
        from analytics import scores
        from analytics.export import to_parquet
        from analytics.summary import customer_summary
        from analytics.warehouse import Warehouse

        db = base / f"bench_{args.events}.duckdb"
        if db.exists():
            db.unlink()
        wh = Warehouse(db)
        wh.cursor().execute("SET memory_limit = '5GB'")
        t = time.perf_counter()
        with wh.transaction() as tx:
            tx.execute("INSERT INTO datasets (name) VALUES ('bench')")
            tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, order_id, item_id, category, "
                       "quantity, revenue, rating, row_hash) SELECT 'bench', customer_id, event_time, event_type, "
                       "order_id, item_id, category, quantity, revenue, rating, hash(customer_id, event_time) "
                       f"FROM read_parquet('{ev_dir}/*.parquet')")
        out["duckdb_load_s"] = round(time.perf_counter() - t, 1)
        print(f"[{load()}] DuckDB load {out['duckdb_load_s']} s", flush=True)
        t = time.perf_counter()
        s = customer_summary(wh, "bench", AS_OF, "days", persist=False)
        out["duckdb_summary_s"] = round(time.perf_counter() - t, 2)
        out["customers_scored"] = len(s)
        del s
        print(f"[{load()}] DuckDB summary {out['duckdb_summary_s']} s", flush=True)
        t = time.perf_counter()
        run = scores.score_dataset(wh, "bench", AS_OF, "days")
        to_parquet(run.frame, base / "duckdb_scores.parquet", metadata=run.metadata())
        out["duckdb_score_s"] = round(time.perf_counter() - t, 2)
        out["duckdb_bgnbd"] = run.metadata().get("model_params", {}).get("bgnbd")
        print(f"[{load()}] DuckDB score_dataset + Parquet {out['duckdb_score_s']} s", flush=True)
        wh.close()
        del run
        db.unlink()

    from analytics.cli import main as cli
    from analytics.spark import summary as ss
    from analytics.spark.events import read_events
    from analytics.spark.session import spark_session

    t = time.perf_counter()
    spark = spark_session("local[2]", conf={"spark.driver.memory": "4g", "spark.ui.enabled": "true",
                                            "spark.sql.shuffle.partitions": "8"})
    out["spark_start_s"] = round(time.perf_counter() - t, 1)
    print(f"[{load()}] Spark start {out['spark_start_s']} s", flush=True)
    t = time.perf_counter()
    ss.customer_summary(read_events(spark, str(ev_dir / "*.parquet")), AS_OF, "days") \
        .write.mode("overwrite").parquet(str(base / "spark_summary"))
    out["spark_summary_s"] = round(time.perf_counter() - t, 2)
    stages_summary = stage_metrics(spark)
    print(f"[{load()}] Spark summary -> Parquet {out['spark_summary_s']} s", flush=True)
    t = time.perf_counter()
    rc = cli(["score", "--engine", "spark", "--spark-master", "local[2]", "--events", str(ev_dir / "*.parquet"),
              "--as-of", AS_OF, "--out", str(base / "spark_scores")])
    out["spark_score_s"] = round(time.perf_counter() - t, 2)
    assert rc == 0
    meta = json.loads((base / "spark_scores.json").read_text())
    out["spark_bgnbd"] = meta.get("model_params", {}).get("bgnbd")
    print(f"[{load()}] Spark score --out DIR {out['spark_score_s']} s", flush=True)
    # the summary's first stage: scan the Parquet files and aggregate per customer and day
    scan = [s for s in stages_summary if s.get("inputBytes", 0) > 0 and s.get("status") == "COMPLETE"]
    if scan:
        s0 = max(scan, key=lambda s: s["inputBytes"])
        out["scan_stage"] = {"tasks": s0["numCompleteTasks"], "executor_run_s": round(s0["executorRunTime"] / 1000, 2),
                             "input_mb": round(s0["inputBytes"] / 2**20, 1), "input_records": s0["inputRecords"],
                             "per_task_s": round(s0["executorRunTime"] / 1000 / max(s0["numCompleteTasks"], 1), 3)}
    out["stages_summary"] = [{"id": s["stageId"], "tasks": s["numCompleteTasks"],
                              "run_s": round(s["executorRunTime"] / 1000, 2), "in_mb": round(s["inputBytes"] / 2**20, 1),
                              "shuffle_write_mb": round(s["shuffleWriteBytes"] / 2**20, 1)}
                             for s in stages_summary if s.get("status") == "COMPLETE"]
    stages_all = stage_metrics(spark)
    run_summary = sum(s["executorRunTime"] for s in stages_summary) / 1000
    ids = {s["stageId"] for s in stages_summary}
    later = [s for s in stages_all if s["stageId"] not in ids]
    out["summary_executor_run_s"] = round(run_summary, 1)
    out["score_executor_run_s"] = round(sum(s["executorRunTime"] for s in later) / 1000, 1)
    out["score_stages"], out["score_tasks"] = len(later), sum(s["numCompleteTasks"] for s in later)
    spark.stop()
    if "duckdb_score_s" in out:
        out["ratio_score_spark_over_duckdb"] = round(out["spark_score_s"] / out["duckdb_score_s"], 2)
        out["ratio_summary_spark_over_duckdb"] = round(out["spark_summary_s"] / out["duckdb_summary_s"], 2)
    out["load_after"] = load()
    print(json.dumps(out, indent=2, default=str))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
