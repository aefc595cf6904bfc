r"""Whether a float64 integration resolved the saddle passages it ran through.

Near a saddle a mode grows from a tiny value; where it leaves the saddle (its escape time)
is set by the size it had there. When the integrator's local errors and round-off are not
small against that size, or are amplified on the way (deep linear chains
:math:`\dot u = L u^{2-2/L}(s - u)` shift the escape by :math:`\delta\,t_{esc}` for a
relative error :math:`\delta` on the plateau), the escape time is set by the integrator
rather than by the initial condition, and the float64 result is off by far more than
``rtol`` after the passage (issue 14's depth-3 saddle-to-saddle run: 3e-7 at rtol 1e-12).

:func:`unresolved_passage` tells such a run in two steps:

1. *A passage*: a quantity that must grow from a tiny value did — a singular value of the
   end-to-end map (``singular_values``), else the norm of ``end_to_end``, else the norm of
   the state — rising by at least :data:`GROWTH` over its smallest value at an earlier
   output time.
2. *Not resolved*: the global error is estimated by tolerance variation (the standard a
   posteriori estimate: DOP853's global error is proportional to its tolerance, so
   integrating again at ``rtol`` and ``atol`` × :data:`FACTOR` moves the result by about
   ``FACTOR - 1`` times its error). The run is unresolved when that estimate, relative to
   the quantity's scale over the trajectory (max over times and entries), exceeds
   :data:`LOST` × ``rtol``: more than four of the digits asked for are lost. Ordinary runs
   (kernel regime, depth 2 from small inits, one passage resolved) stay within about
   1e3 × ``rtol`` (measured: 600 × at most, Linear1D() over 114 relaxation times); the
   issue's runs reach 1e5 × ``rtol``.

The second integration runs only when step 1 finds a passage. The fix is ``precision=N``:
the Taylor integrator carries enough digits that neither tolerance nor round-off reaches
the passage.
"""

from __future__ import annotations

import numpy as np

#: Growth of a quantity over its earlier smallest value that marks a saddle passage.
GROWTH = 1e3
#: Tolerance factor of the second integration (the error estimate's divisor is FACTOR - 1).
FACTOR = 10.0
#: An estimated relative error above LOST x rtol is a passage float64 did not resolve.
LOST = 1e4


def passage_quantity(traj):
    """``(name, series)``: the quantity watched for a passage, as an array with time first
    and one column per value (singular values; else one norm per time)."""
    obs = traj.observables
    if "singular_values" in obs:
        sv = np.abs(np.asarray(obs["singular_values"], dtype=float))
        return "singular_values", sv.reshape(sv.shape[0], -1)
    if "end_to_end" in obs:
        a = np.asarray(obs["end_to_end"], dtype=float)
        return "end_to_end", np.linalg.norm(a.reshape(a.shape[0], -1), axis=1)[:, None]
    parts = [np.asarray(v, dtype=float).reshape(len(traj.t), -1) for v in traj.state.values()]
    return "state", np.linalg.norm(np.concatenate(parts, axis=1), axis=1)[:, None]


def growth(series) -> float:
    """The largest factor by which a column rose over its smallest earlier value (inf from
    an exact zero, 1 when nothing grew)."""
    x = np.asarray(series, dtype=float)
    if x.shape[0] < 2 or not np.all(np.isfinite(x)):
        return 1.0
    low = np.minimum.accumulate(x, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(x > 0, x / low, 1.0)
    return float(np.max(ratio, initial=1.0))


def unresolved_passage(traj, rerun, rtol: float):
    """The warning's text when ``traj`` (a float64 run at ``rtol``) went through a saddle
    passage it did not resolve, else ``None``.

    ``rerun(factor)`` integrates the same flow again at ``rtol`` and ``atol`` times
    ``factor`` and returns its :class:`~exactdyn.Trajectory` (it may raise
    :class:`~exactdyn.IntegrationError`: then nothing is said).
    """
    from ..errors import IntegrationError

    name, x = passage_quantity(traj)
    g = growth(x)
    if g < GROWTH:
        return None
    try:
        other = rerun(FACTOR)
    except IntegrationError:
        return None
    _, y = passage_quantity(other)
    scale = float(np.abs(x).max(initial=0.0))
    if scale == 0 or y.shape != x.shape:
        return None
    est = float(np.abs(x - y).max()) / scale / (FACTOR - 1)
    if not est > LOST * rtol:
        return None
    grew = "from an exact zero" if not np.isfinite(g) else f"by a factor {g:.1e}"
    return (f"float64 integration did not resolve a saddle passage: {name} grew {grew} "
            f"over its smallest value, and the result moved by {est * (FACTOR - 1):.1e} of its "
            f"scale when rtol went from {rtol:g} to {rtol * FACTOR:g} (estimated relative "
            f"error {est:.1e}, more than {LOST:g} x rtol): the escape time is set by the "
            f"integrator's tolerance and round-off, not by the initial condition. Pass "
            f"precision=30 (solve(model, t, precision=30); CLI --precision 30) for the "
            f"resolved trajectory")
