"""Benchmark: the first visit of every page after a load, and after a restart of the app.

    python bench/bench_first_visit.py [--customers 1000000] [--pages Overview,Value]

1. Generates ``bench/out/sample_<customers>_<seed>.csv`` with the sample generator (cached).
2. Starts ``valuescope serve`` on 127.0.0.1 over a new, empty warehouse (no bundled sample) and
   opens its Data page (the server opens the warehouse, and takes CLI commands, on its first session).
3. Loads the file with ``valuescope ingest`` while the app runs: the CLI hands the load to the
   server, which ingests and runs the preparation step (``ingest`` prepares unless
   ``--no-prepare``); its JSON summary gives the ingest and per-stage preparation times.
4. Opens each page in a fresh session (``bench/_st_client.py``: Streamlit's websocket protocol,
   the page's URL path and no widget state, as a browser's first request) and times the request
   until the page's script run ends (``script_finished``); one page after the other.
5. Stops the server, starts it again over the same warehouse, and opens each page again.

Goal: every page <= 5 s, after the restart too. A page that ended with an exception or
only said that its data are not prepared is flagged. Prints a table and writes
``bench/out/first_visit_<customers>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _st_client import PAGES, ROOT, load, start_server, visit  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
GOAL_S = 5.0
NOT_READY = ("being prepared", "not prepared", "preparing", "not ready")


def generate(path: Path, customers: int, seed: int) -> dict:
    from sample_data.generator import SampleConfig, generate as gen

    tmp = path.with_name(path.stem + ".tmp.csv")
    t0 = time.perf_counter()
    summary = gen(tmp, None, SampleConfig(customers=customers, seed=seed))
    tmp.rename(path)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def cli_env(db: Path) -> dict:
    return dict(os.environ, VALUESCOPE_DB=str(db), PYTHONPATH=str(ROOT), VALUESCOPE_SKIP_SAMPLE="1")


def ingest_through_server(db: Path, csv: Path, dataset: str, timeout: float) -> dict:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "analytics.cli", "ingest", str(csv), "--dataset", dataset],
                         cwd=ROOT, env=cli_env(db), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"valuescope ingest exited {res.returncode}:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout)
    out["wall_s"] = wall
    return out


def visit_all(url: str, pages: list[str], timeout: float) -> list[dict]:
    rows = []
    for page in pages:
        v = visit(url, page, timeout=timeout)
        not_ready = [a for a in v.alerts if any(w in a.lower() for w in NOT_READY)]
        rows.append({"page": page, "seconds": round(v.seconds, 3), "status": v.status,
                     "exceptions": v.exceptions, "alerts": v.alerts, "not_ready": bool(not_ready),
                     "load": load()})
        flag = "" if v.ok and not not_ready else "  <- " + (
            "; ".join(v.exceptions) or ("not ready: " + not_ready[0] if not_ready else v.status))
        print(f"  {page:10} {v.seconds:7.2f} s  ({load()}){flag}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--pages", default=",".join(PAGES), help="comma-separated page names (default: all)")
    ap.add_argument("--page-timeout", type=float, default=600.0)
    ap.add_argument("--ingest-timeout", type=float, default=7200.0)
    ap.add_argument("--workdir", default=None, help="folder for the warehouse (default bench/out/first_visit_N)")
    ap.add_argument("--keep", action="store_true", help="keep the warehouse afterwards")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the warehouse a --keep run left: no load; `valuescope prepare` through the server "
                         "computes only what is not stored yet (e.g. after a new prepared result was added)")
    args = ap.parse_args()
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown = [p for p in pages if p not in PAGES]
    if unknown:
        raise SystemExit(f"unknown pages {unknown}; choose from {', '.join(PAGES)}")

    OUT.mkdir(parents=True, exist_ok=True)
    csv = OUT / f"sample_{args.customers}_{args.seed}.csv"
    result: dict = {"customers": args.customers, "seed": args.seed, "cpus": os.cpu_count(), "start_load": load()}
    if not csv.exists():
        g = generate(csv, args.customers, args.seed)
        result["generate"] = {"seconds": round(g["seconds"], 1), "events": g["events"], "load": load()}
        print(f"generated {g['events']:,} events for {args.customers:,} customers in {g['seconds']:.1f} s "
              f"({load()})", flush=True)
    print(f"file {csv.name}: {csv.stat().st_size / 1e6:,.0f} MB", flush=True)

    work = Path(args.workdir) if args.workdir else OUT / f"first_visit_{args.customers}"
    work.mkdir(parents=True, exist_ok=True)
    db = work / "warehouse.duckdb"
    reuse = args.reuse and db.exists()
    if not reuse:
        for p in work.glob("warehouse.*"):
            p.unlink()
    ok = True
    try:
        with start_server(db) as (url, _proc, healthy):
            # a browser has the app open (the server opens the warehouse, and listens for CLI
            # commands, on its first session): the load below is then handed to the server
            v = visit(url, "Data", timeout=args.page_timeout)
            print(f"server up in {healthy:.1f} s at {url}; Data page (empty warehouse) {v.seconds:.2f} s; "
                  f"loading through it ({load()})", flush=True)
            if reuse:
                t0 = time.perf_counter()
                res = subprocess.run([sys.executable, "-m", "analytics.cli", "prepare", "--dataset", "bench"],
                                     cwd=ROOT, env=cli_env(db), capture_output=True, text=True,
                                     timeout=args.ingest_timeout)
                if res.returncode != 0:
                    raise SystemExit(f"valuescope prepare exited {res.returncode}:\n{res.stderr[-3000:]}")
                ing = {"wall_s": time.perf_counter() - t0, "rows_loaded": 0, "duration_s": 0.0,
                       "prepare": json.loads(res.stdout), "reused": True}
                result["reused_warehouse"] = True
            else:
                ing = ingest_through_server(db, csv, "bench", args.ingest_timeout)
            prep = ing.get("prepare") or {}
            result["ingest"] = {"wall_s": round(ing["wall_s"], 1), "rows_loaded": ing.get("rows_loaded"),
                                "ingest_s": ing.get("duration_s"),
                                "prepare_state": prep.get("state"), "prepare_total_s": prep.get("total_s"),
                                "prepare_stages": prep.get("stages"), "load": load()}
            print(f"ingest + preparation {ing['wall_s']:.1f} s: {ing.get('rows_loaded'):,} rows loaded in "
                  f"{ing.get('duration_s')} s; preparation "
                  f"{prep.get('state')} in {prep.get('total_s')} s {prep.get('stages')} ({load()})", flush=True)
            if prep.get("state") != "done":
                print(f"preparation did not finish: {prep}", flush=True)
                ok = False
            print("first visits (server that ran the load):", flush=True)
            result["first"] = visit_all(url, pages, args.page_timeout)
        with start_server(db) as (url, _proc, healthy):
            print(f"restarted: server up in {healthy:.1f} s ({load()})", flush=True)
            result["restart_healthy_s"] = round(healthy, 2)
            print("first visits after the restart:", flush=True)
            result["restart"] = visit_all(url, pages, args.page_timeout)
    finally:
        if not args.keep:
            for p in work.glob("warehouse.*"):
                p.unlink()
    worst = {k: max((r["seconds"] for r in result.get(k, [])), default=float("nan")) for k in ("first", "restart")}
    bad = [f"{k}:{r['page']}" for k in ("first", "restart") for r in result.get(k, [])
           if r["status"] != "FINISHED_SUCCESSFULLY" or r["exceptions"] or r["not_ready"]]
    result["worst"] = worst
    result["flagged"] = bad
    result["end_load"] = load()
    (OUT / f"first_visit_{args.customers}.json").write_text(json.dumps(result, indent=2))
    print(f"slowest page: {worst['first']:.2f} s first, {worst['restart']:.2f} s after restart "
          f"(goal <= {GOAL_S:.0f} s); flagged: {bad or 'none'} ({load()})")
    return 0 if ok and not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
