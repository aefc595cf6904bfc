"""Working precision for mpmath without races: :func:`workdps`.

mpmath keeps its precision in one process-wide context (``mpmath.mp``), and
``mpmath.workdps`` sets it for a block and restores it afterwards. Two threads in such
blocks at once would compute at each other's precision (issue 16: ``exact(...,
precision=30)`` from twenty threads returned float64 accuracy once in twenty). Every
high-precision block of exactdyn goes through :func:`workdps` here, which holds one
re-entrant process-wide lock for the block: blocks run one at a time (a thread may nest
them), each at its own precision, and ``mpmath.mp`` is left as it was found.

mpmath is imported on first use, not with this module: a float64 run never needs it
(about 50 ms of a new process's start-up, issue 15 item 4), and :func:`is_mpf` answers
without importing it (no ``mpf`` can exist before mpmath is imported).
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

#: Held while any exactdyn code computes at a chosen mpmath precision.
LOCK = threading.RLock()


@contextmanager
def workdps(digits: int):
    """``mpmath.workdps(digits)`` under :data:`LOCK`."""
    import mpmath

    with LOCK, mpmath.workdps(digits):
        yield


def is_mpf(x) -> bool:
    """Whether ``x`` is an ``mpmath.mpf``, without importing mpmath (if it is not imported,
    nothing is an ``mpf``)."""
    mpmath = sys.modules.get("mpmath")
    return mpmath is not None and isinstance(x, mpmath.mpf)
