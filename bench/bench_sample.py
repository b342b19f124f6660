"""Benchmark: stream generated sample data to disk.

    .venv/bin/python bench/bench_sample.py --customers 1000000 [--out /tmp/bench_sample.csv] [--gzip]

Prints customers, events, seconds, events/s, output size and peak RSS of this
process (the generator works per batch of 20k customers, so memory stays flat
however many customers are asked for).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sample_data.generator import SampleConfig, generate  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None, help="events file (default: a temporary file, removed afterwards)")
    ap.add_argument("--gzip", action="store_true", help="write .csv.gz instead of plain CSV")
    ap.add_argument("--keep", action="store_true", help="keep the output file")
    args = ap.parse_args()

    suffix = ".csv.gz" if args.gzip else ".csv"
    out = Path(args.out) if args.out else Path(tempfile.gettempdir()) / f"valuescope_bench_sample{suffix}"
    truth = out.with_name(out.name.replace(".csv", "_truth.csv"))
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    summary = generate(out, truth, SampleConfig(customers=args.customers, seed=args.seed))
    secs = time.perf_counter() - t0
    size = out.stat().st_size
    print(f"customers        {summary['customers']:>14,}")
    print(f"events           {summary['events']:>14,}  ({summary['events'] / summary['customers']:.1f} per customer)")
    print(f"seconds          {secs:>14.1f}")
    print(f"events/s         {summary['events'] / secs:>14,.0f}")
    print(f"customers/s      {summary['customers'] / secs:>14,.0f}")
    print(f"output           {size / 1e6:>14,.1f} MB ({out.name}; truth {truth.stat().st_size / 1e6:,.1f} MB)")
    print(f"peak RSS         {peak_rss_mb():>14,.0f} MB (at start {rss0:,.0f} MB)")
    print(f"cpu cores        {os.cpu_count():>14}")
    if not args.keep and not args.out:
        out.unlink(missing_ok=True)
        truth.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
