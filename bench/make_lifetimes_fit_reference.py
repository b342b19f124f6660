"""Generate the stored lifetimes fits that the slow Pareto/NBD property test compares against.

lifetimes' ``ParetoNBDFitter`` evaluates the hypergeometric function on every row for every
Nelder-Mead step, so fitting it live on 300 random data sets took most of an hour. This script
fits it once on exactly the data sets ``tests/test_clv_property.py`` draws (``draw_case``, seeded)
and writes lifetimes' parameters (or that its fitter did not converge) with a fingerprint of
each data set, so the test can compare our fit against lifetimes' optimum without refitting
lifetimes, and notices when the drawn data are no longer the ones the reference was made on.

    .venv/bin/python bench/make_lifetimes_fit_reference.py [--kind paretonbd] [--seeds 300]
        [--part 0 --parts 1]            # run part i of k (e.g. two processes) ...
    .venv/bin/python bench/make_lifetimes_fit_reference.py --merge PART.json ...  # ... then merge

Writes tests/data/lifetimes_fits_<kind>.json (a part writes <that>.part<i>). lifetimes must
import (setuptools < 81 for pkg_resources).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_clv_property import data_fingerprint, draw_case, lifetimes_fit  # noqa: E402


def out_path(kind: str) -> Path:
    return ROOT / "tests" / "data" / f"lifetimes_fits_{kind}.json"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="paretonbd", choices=["bgnbd", "paretonbd", "gamma_gamma"])
    ap.add_argument("--seeds", type=int, default=300)
    ap.add_argument("--part", type=int, default=0)
    ap.add_argument("--parts", type=int, default=1)
    ap.add_argument("--seed-list", default=None, help="comma-separated seeds instead of a part")
    ap.add_argument("--out", default=None, help="where to write (default: by kind and part)")
    ap.add_argument("--merge", nargs="*", default=None, help="part files to merge into the reference")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import lifetimes
    import scipy

    target = out_path(args.kind)
    if args.merge:
        cases, meta = {}, None
        for p in args.merge:
            doc = json.loads(Path(p).read_text())
            meta = {k: v for k, v in doc.items() if k != "cases"}
            cases.update(doc["cases"])
        meta["seeds"] = len(cases)
        doc = {**meta, "cases": {k: cases[k] for k in sorted(cases, key=int)}}
        target.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {target.relative_to(ROOT)}: {len(cases)} cases")
        return 0
    seeds = ([int(v) for v in args.seed_list.split(",")] if args.seed_list
             else range(args.part, args.seeds, args.parts))
    path = Path(args.out) if args.out else (
        target if args.parts == 1 else target.with_name(target.name + f".part{args.part}"))
    meta = {"kind": args.kind, "lifetimes": lifetimes.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "python": sys.version.split()[0],
            "generated_by": "bench/make_lifetimes_fit_reference.py"}
    cases = {}
    for seed in seeds:
        n, data = draw_case(args.kind, seed)
        t0 = time.perf_counter()
        ref = lifetimes_fit(args.kind, data)
        dt = time.perf_counter() - t0
        cases[str(seed)] = {"n": n, "data": data_fingerprint(data),
                            "params": None if ref is None else [float(v) for v in ref], "seconds": round(dt, 2)}
        print(f"seed {seed} n={n} {dt:.1f}s {cases[str(seed)]['params']}", flush=True)
        path.write_text(json.dumps({**meta, "cases": cases}, indent=1) + "\n")  # after every case
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
