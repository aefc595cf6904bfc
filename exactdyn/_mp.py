"""Working precision for mpmath without races: :func:`workdps`.

mpmath keeps its precision in one process-wide context (``mpmath.mp``), and
``mpmath.workdps`` sets it for a block and restores it afterwards. Two threads in such
blocks at once would compute at each other's precision (issue 16: ``exact(...,
precision=30)`` from twenty threads returned float64 accuracy once in twenty). Every
high-precision block of exactdyn goes through :func:`workdps` here, which holds one
re-entrant process-wide lock for the block: blocks run one at a time (a thread may nest
them), each at its own precision, and ``mpmath.mp`` is left as it was found.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import mpmath

#: Held while any exactdyn code computes at a chosen mpmath precision.
LOCK = threading.RLock()


@contextmanager
def workdps(digits: int):
    """``mpmath.workdps(digits)`` under :data:`LOCK`."""
    with LOCK, mpmath.workdps(digits):
        yield
