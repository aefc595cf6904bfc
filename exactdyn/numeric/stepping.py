r"""Guarded float64 stepping: ``solve_ivp``'s loop with a step budget and finiteness checks.

``scipy.integrate.solve_ivp`` has no step budget and trusts its right-hand side: a flow
whose rhs is not finite at the initial state (an activation ``log(x)`` at a negative
pre-activation, an init of 1e200 whose products overflow) gives a NaN first step size and
``OdeSolver.step`` then rejects NaN steps forever; a flow at rest integrated to t = 1e300
takes explicit steps at its stability limit, without end. :func:`integrate` runs the same
loop as ``solve_ivp`` (same solver classes, same dense-output evaluation at the output
times, so the numbers are bit-for-bit ``solve_ivp``'s), and raises
:class:`~exactdyn.IntegrationError` with the time reached when

- the rhs is not finite at the initial state, or the accepted state stops being finite;
- the step size collapses (the solver's own failure);
- more than ``max_steps`` steps are taken (or the rhs is evaluated more than
  :data:`EVALS_PER_STEP` times as often: a single step that cannot end).

:func:`check_rtol` rejects tolerances below what the methods honour (``solve_ivp`` clips
``rtol`` to 100·eps with a warning; here the caller is told instead).
"""

from __future__ import annotations

import numpy as np

from ..errors import IntegrationError

#: Default most accepted steps of one float64 integration: runs of the test suite take at
#: most a few thousand; a DOP853 step of a small flow costs ~0.1-1 ms, so a flow that
#: cannot finish stops within minutes, not never.
DEFAULT_MAX_STEPS = 200_000
#: Right-hand-side evaluations allowed per step of the budget (DOP853 uses 12 per accepted
#: step; rejected steps add more).
EVALS_PER_STEP = 40
#: Smallest ``rtol`` scipy's explicit and implicit methods honour (they clip below it).
MIN_RTOL = 100 * np.finfo(float).eps


def check_rtol(rtol: float, method: str) -> float:
    """``rtol`` if float64 integration honours it, else ``ValueError``."""
    if rtol < MIN_RTOL:
        raise ValueError(f"rtol={rtol!r} is below what float64 integration ({method}) honours "
                         f"(100 * machine epsilon = {MIN_RTOL:.3g}; scipy would clip it "
                         f"silently); use rtol >= {MIN_RTOL:.3g}, or precision=N for more "
                         f"digits")
    return rtol


def check_max_steps(max_steps) -> int:
    from .. import _validation as check

    return check.positive_int("max_steps", max_steps)


class _Exhausted(Exception):
    pass


class Guarded:
    """The rhs ``fun(t, y)`` with an evaluation budget (raises :class:`_Exhausted`)."""

    def __init__(self, fun, max_evals: int):
        self.fun, self.max_evals, self.n = fun, max_evals, 0

    def __call__(self, t, y):
        self.n += 1
        if self.n > self.max_evals:
            raise _Exhausted
        return self.fun(t, y)


def budget_error(max_steps: int, t_reached: float, t_end: float) -> IntegrationError:
    return IntegrationError(
        f"more than max_steps={max_steps} integration steps before t = {t_end!r} (a flow at "
        f"rest is stiff for an explicit method at long horizons); give a shorter horizon, a "
        f"larger max_steps, or method='Radau'", t_reached=t_reached)


def nonfinite_initial(t: float) -> IntegrationError:
    return IntegrationError("the right-hand side is not finite at the initial state (the "
                            "flow overflows or leaves the activation's domain there)",
                            t_reached=t)


def nonfinite_state() -> str:
    return "the state stopped being finite"


def integrate(fun, y0, times, method: str, rtol: float, atol, jac=None,
              max_steps: int = DEFAULT_MAX_STEPS, progress=None):
    """States at ``times`` (sorted, >= 0; rows) and ``{"nfev", "njev", "nlu"}``
    of the flow ``fun`` from ``y0`` at t = 0, through ``solve_ivp``'s ``method`` class.
    ``progress``: an :class:`exactdyn._progress.Progress` over the time span, moved to
    the time reached after each accepted step (it only reads ``solver.t``)."""
    from scipy.integrate._ivp.ivp import METHODS

    check_rtol(rtol, method)
    max_steps = check_max_steps(max_steps)
    times = np.asarray(times, dtype=float)
    t_end = float(times[-1])
    y0 = np.asarray(y0, dtype=float)
    if t_end == 0.0:
        return (np.repeat(y0[None, :], len(times), axis=0),
                {"nfev": 0, "njev": 0, "nlu": 0})
    f = Guarded(fun, EVALS_PER_STEP * max_steps)
    with np.errstate(over="ignore", invalid="ignore"):
        f0 = np.asarray(fun(0.0, y0))
    if not np.all(np.isfinite(f0)):
        raise nonfinite_initial(0.0)
    kwargs = {"jac": jac} if method in ("Radau", "BDF", "LSODA") and jac is not None else {}
    # solve_ivp wants strictly increasing output times; repeated times share one value.
    unique_times, where = np.unique(times, return_inverse=True)
    out = np.empty((unique_times.size, y0.size))
    done, steps, t_reached = 0, 0, 0.0
    # An overflow inside a trial stage that the step controller then rejects is harmless,
    # so floating-point warnings are silenced here and the accepted states checked.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            solver = METHODS[method](f, 0.0, y0, t_end, rtol=rtol, atol=atol, **kwargs)
            while solver.status == "running":
                message = solver.step()
                if solver.status == "failed":
                    raise IntegrationError(f"{method} failed: {message}", t_reached=t_reached)
                if not np.all(np.isfinite(solver.y)):
                    raise IntegrationError(nonfinite_state(), t_reached=t_reached)
                steps += 1
                t_reached = float(solver.t)
                if progress is not None:
                    progress.to(t_reached)
                upto = int(np.searchsorted(unique_times, solver.t, side="right"))
                if upto > done:
                    out[done:upto] = solver.dense_output()(unique_times[done:upto]).T
                    done = upto
                if steps >= max_steps and solver.status == "running":
                    raise budget_error(max_steps, t_reached, t_end)
        except _Exhausted:
            raise budget_error(max_steps, t_reached, t_end) from None
    ys = out[where]
    if not np.all(np.isfinite(ys)):
        bad = int(np.argmax(~np.all(np.isfinite(ys), axis=1)))
        raise IntegrationError(nonfinite_state(), t_reached=float(times[bad]))
    return ys, {"nfev": int(solver.nfev), "njev": int(solver.njev), "nlu": int(solver.nlu)}
