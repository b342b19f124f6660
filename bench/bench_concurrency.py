"""Benchmark: many sessions at once, each cycling Overview, Value and Explorer.

    python bench/bench_concurrency.py --db bench/out/first_visit_100000/warehouse.duckdb \
        [--levels 1,4,8,16] [--seconds 60]

Starts ``valuescope serve`` on 127.0.0.1 over a prepared warehouse (default: the one
``bench/bench_first_visit.py --keep`` leaves), opens every page of the cycle once (warm-up, not
counted), then for each level N runs N concurrent clients for ``--seconds``: each client opens
Overview, Value, Explorer, Overview, ... every visit in a fresh session (``bench/_st_client.py``,
Streamlit's websocket protocol), timing the request until the page's script run ends. A visit
that is still running when the time is up is finished and counted. Reports per level the visits,
median and p95 seconds (all pages and per page), the server process's CPU use (cores), its CPU
seconds per visit (what a page view costs the server, whatever else the machine runs) and the
machine's load average. Goal: median <= 2 s at 16 sessions.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _st_client import load, start_server, visit_async  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
CYCLE = ("Overview", "Value", "Explorer")
GOAL_MEDIAN_S = 2.0


def pctl(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


async def client(url: str, offset: int, until: float, out: list, timeout: float) -> None:
    i = offset
    while time.perf_counter() < until:
        page = CYCLE[i % len(CYCLE)]
        v = await visit_async(url, page, timeout=timeout)
        out.append({"page": page, "seconds": v.seconds, "ok": v.ok})
        i += 1


async def level(url: str, n: int, seconds: float, timeout: float) -> list[dict]:
    out: list[dict] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(client(url, k, until, out, timeout) for k in range(n)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=str(OUT / "first_visit_100000" / "warehouse.duckdb"),
                    help="a warehouse with one prepared dataset")
    ap.add_argument("--levels", default="1,4,8,16")
    ap.add_argument("--seconds", type=float, default=60.0, help="time per level (the visits running then finish)")
    ap.add_argument("--timeout", type=float, default=300.0, help="one visit's limit")
    ap.add_argument("--json", default=None, help="write the results here (default bench/out/concurrency.json)")
    args = ap.parse_args()
    db = Path(args.db)
    if not db.exists():
        raise SystemExit(f"no warehouse at {db}: run bench/bench_first_visit.py --keep first, or pass --db")
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {"db": str(db), "cpus": os.cpu_count(), "seconds_per_level": args.seconds, "levels": {}}
    with start_server(db, log=OUT / "concurrency.server.log") as (url, proc, healthy):
        print(f"server up in {healthy:.1f} s at {url} ({load()})", flush=True)
        for page in CYCLE:  # warm-up: the first visit reads the prepared results into the process
            v = asyncio.run(visit_async(url, page, timeout=args.timeout))
            print(f"  warm-up {page:9} {v.seconds:6.2f} s{'' if v.ok else '  <- ' + v.status}", flush=True)
        print(f"{'sessions':>8} {'visits':>6} {'median s':>9} {'p95 s':>7} {'max s':>7} {'per page median s':>40}"
              f" {'server cores':>12} {'CPU s/visit':>11}  load", flush=True)
        for n in levels:
            c0, t0 = proc_cpu_s(proc.pid), time.perf_counter()
            rows = asyncio.run(level(url, n, args.seconds, args.timeout))
            wall = time.perf_counter() - t0
            cpu = proc_cpu_s(proc.pid) - c0
            cores = cpu / wall
            secs = [r["seconds"] for r in rows]
            per_page = {p: statistics.median([r["seconds"] for r in rows if r["page"] == p] or [float("nan")])
                        for p in CYCLE}
            failed = sum(not r["ok"] for r in rows)
            entry = {"visits": len(rows), "failed": failed, "median_s": statistics.median(secs),
                     "p95_s": pctl(secs, 0.95), "max_s": max(secs), "per_page_median_s": per_page,
                     "wall_s": wall, "server_cores": cores, "server_cpu_s_per_visit": cpu / max(1, len(rows)),
                     "visits_per_s": len(rows) / wall, "load": load()}
            results["levels"][n] = entry
            pp = ", ".join(f"{p} {s:.2f}" for p, s in per_page.items())
            print(f"{n:8} {len(rows):6} {entry['median_s']:9.2f} {entry['p95_s']:7.2f} {entry['max_s']:7.2f} "
                  f"{pp:>40} {cores:12.2f} {entry['server_cpu_s_per_visit']:11.3f}  {load()}{'  failed ' + str(failed) if failed else ''}", flush=True)
    out = Path(args.json) if args.json else OUT / "concurrency.json"
    out.write_text(json.dumps(results, indent=2))
    top = results["levels"].get(max(levels))
    if top:
        print(f"median at {max(levels)} sessions: {top['median_s']:.2f} s (goal <= {GOAL_MEDIAN_S:.0f} s at 16)")
    return 0 if all(e["failed"] == 0 for e in results["levels"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
