"""Timing helper shared by the bench scripts (run as `python bench/NAME.py`, so this folder is on sys.path)."""
from __future__ import annotations

import statistics
import time


def timed(fn, repeats: int):
    """``(median wall seconds over repeats, last result)`` of calling ``fn()``."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out
