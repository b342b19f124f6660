"""Ingestion benchmark: a plain order log by path, with all validation on.

    .venv/bin/python bench/bench_ingest.py [--rows 10000000] [--skip-pandas] [--hashed-ids]

Generates ``bench/out/orders_<rows>.csv`` once (cached; bench/out is git-ignored),
then, each in a fresh subprocess (so each peak RSS is its own):

* ``valuescope``: ``analytics.ingest.ingest`` into a new DuckDB file (dialect/layout
  detection, encoding check, content hash, line-numbered validation, reject capture,
  de-duplication, one transaction);
* ``duckdb bare``: ``CREATE TABLE t AS SELECT * FROM read_csv('file')`` into a new file;
* ``pandas``: ``pandas.read_csv`` then insert the DataFrame into a new DuckDB file.

Prints rows/s, the ratios (goal: valuescope >= 0.7 of DuckDB bare speed), each path's process
CPU time (a busy shared machine distorts it less than the wall time), its peak memory (RSS
high-water mark from getrusage; goal < 4 GB) and the machine's load average beside each figure.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


GOAL = 0.7


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def generate(path: Path, rows: int, hashed: bool = False) -> None:
    import duckdb

    tmp = path.with_suffix(".tmp")
    con = duckdb.connect()
    ident = "'C' || lpad(((hash(i) % 1000000) + 1)::VARCHAR, 7, '0')"
    if hashed:  # 16 hex digits of an MD5: ids with no number, which a load numbers (customer keys)
        ident = f"substr(md5({ident}), 1, 16)"
    con.execute(f"""
        COPY (
          SELECT {ident} AS customer_id,
                 strftime(TIMESTAMP '2021-01-01' + INTERVAL (i * 3) SECOND, '%Y-%m-%d %H:%M:%S') AS order_date,
                 round(((hash(i * 7) % 20000)::BIGINT - 500) / 100.0, 2) AS amount,
                 1 + hash(i * 3) % 4 AS quantity,
                 'O' || i AS order_id,
                 'I' || (hash(i * 5) % 50000) AS item_id,
                 'cat' || (hash(i * 11) % 40) AS category
          FROM range({int(rows)}) t(i)
        ) TO '{tmp}' (HEADER, DELIMITER ',')""")
    con.close()
    tmp.rename(path)


def child(mode: str, src: str, db: str) -> None:
    if db.endswith(":memory:"):
        db = ":memory:"
    t0 = time.perf_counter()
    out: dict = {}
    if mode == "valuescope":
        from analytics.ingest import ingest
        from analytics.warehouse import Warehouse

        wh = Warehouse(db)
        r = ingest(wh, src, "bench")
        out = r.to_dict()
        wh.close()
    elif mode == "bare":
        import duckdb

        con = duckdb.connect(db)
        con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [src])
        out["rows"] = con.execute("SELECT count(*) FROM t").fetchone()[0]
        con.close()
    elif mode == "pandas":
        import duckdb
        import pandas as pd

        df = pd.read_csv(src)
        con = duckdb.connect(db)
        con.register("df", df)
        con.execute("CREATE TABLE t AS SELECT * FROM df")
        out["rows"] = len(df)
        con.close()
    out["seconds"] = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = ru.ru_utime + ru.ru_stime
    out["peak_rss_mb"] = ru.ru_maxrss / 1024
    out["load"] = load()
    print(json.dumps(out))


def run(mode: str, src: Path, target: str = "file") -> dict:
    with tempfile.TemporaryDirectory(dir=OUT) as d:
        db = ":memory:" if target == "memory" else str(Path(d) / f"{mode}.duckdb")
        res = subprocess.run([sys.executable, __file__, "--child", mode, str(src), db], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent.parent)
        if res.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{res.stderr[-3000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--target", choices=["file", "memory"], default="file",
                    help="write into a new DuckDB file (default) or an in-memory database (CPU-bound comparison)")
    ap.add_argument("--hashed-ids", action="store_true",
                    help="customer ids of 16 hex digits instead of 'C0000001': ids of no numeric form, which the "
                         "load gives dense customer keys (analytics.customer_keys)")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "SRC", "DB"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    src = OUT / f"orders_{'hashed_' if a.hashed_ids else ''}{a.rows}.csv"
    if not src.exists():
        t = time.perf_counter()
        generate(src, a.rows, a.hashed_ids)
        print(f"generated {src} ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    size_mb = src.stat().st_size / 1e6
    print(f"file: {src.name}, {a.rows:,} rows, {size_mb:.0f} MB; machine: {os.cpu_count()} CPUs")
    print(f"target: {a.target} database")
    res = {"duckdb bare": run("bare", src, a.target), "valuescope": run("valuescope", src, a.target)}
    if not a.skip_pandas:
        res["pandas read_csv + insert"] = run("pandas", src, a.target)
    vs = res["valuescope"]
    assert vs["rows_read"] == a.rows and vs["rows_loaded"] + vs["rows_duplicate"] + vs["rows_rejected"] == a.rows
    print(f"{'path':28} {'seconds':>8} {'CPU s':>8} {'rows/s':>12} {'peak RSS':>10}  load at its end")
    for name, r in res.items():
        print(f"{name:28} {r['seconds']:8.1f} {r['cpu_s']:8.1f} {a.rows / r['seconds']:12,.0f} "
              f"{r['peak_rss_mb']:8.0f} MB  {r['load']}")
    bare, v = res["duckdb bare"]["seconds"], vs["seconds"]
    print(f"valuescope / duckdb bare speed: {bare / v:.2f} wall (goal >= {GOAL}), "
          f"{res['duckdb bare']['cpu_s'] / vs['cpu_s']:.2f} CPU")
    if "pandas read_csv + insert" in res:
        print(f"valuescope / pandas speed:      {res['pandas read_csv + insert']['seconds'] / v:.2f}")
    print(f"valuescope peak memory: {vs['peak_rss_mb'] / 1024:.2f} GB (goal < 4 GB); "
          f"loaded {vs['rows_loaded']:,}, rejected {vs['rows_rejected']:,}, duplicates {vs['rows_duplicate']:,}")


if __name__ == "__main__":
    main()
