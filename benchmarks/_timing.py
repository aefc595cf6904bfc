"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/NAME.py``,
so this folder is on ``sys.path``)."""

from __future__ import annotations

import time


def best_of(f, repeat: int = 3):
    """``(best wall time, last result)`` of ``repeat`` calls of ``f()``."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out
