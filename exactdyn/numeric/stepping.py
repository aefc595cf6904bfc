r"""Guarded float64 stepping: ``solve_ivp``'s loop with a step budget and finiteness checks.

``scipy.integrate.solve_ivp`` has no step budget and trusts its right-hand side: a flow
whose rhs is not finite at the initial state (an activation ``log(x)`` at a negative
pre-activation, an init of 1e200 whose products overflow) gives a NaN first step size and
``OdeSolver.step`` then rejects NaN steps forever; a flow at rest integrated to t = 1e300
takes explicit steps at its stability limit, without end. :func:`integrate` runs the same
loop as ``solve_ivp`` (the same solver classes — the explicit ones ported in
:mod:`exactdyn.numeric.runge_kutta`, so that a float64 solve does not import
``scipy.integrate``, the implicit ones scipy's — and the same dense-output evaluation at
the output times, so the numbers are bit-for-bit ``solve_ivp``'s), and raises
:class:`~exactdyn.IntegrationError` with the time reached when

- the rhs is not finite at the initial state, or the accepted state stops being finite;
- the step size collapses (the solver's own failure);
- more than ``max_steps`` steps are taken (or the rhs is evaluated more than
  :data:`EVALS_PER_STEP` times as often: a single step that cannot end).

**A flow at rest** (issue 16: a converged depth-4 linear network integrated to t = 1e6 had
not finished after four minutes). Near a stable equilibrium an explicit method's step is
held at its stability limit, not by accuracy: the state jitters at the tolerance's level
and the steps to the horizon grow with the horizon. That is detected as in Hairer's
DOP853 code (Hairer, Nørsett & Wanner, *Solving Ordinary Differential Equations I*,
2nd ed., 1993, §II.10, "stiffness detection"): with :math:`\lambda \approx
\lVert f(y_n) - f(y_{n-1})\rVert/\lVert y_n - y_{n-1}\rVert` from two accepted states,
:math:`h\lambda` beyond the method's stability boundary on the negative real axis
(:data:`STABILITY_BOUNDARY`: 6.1 for DOP853, 3.25 for RK45) for
:data:`STIFF_STEPS` accepted steps in a row. Once an explicit method (``DOP853``,
``RK45``, ``RK23``) has taken :data:`REST_MIN_STEPS` steps and the test holds, the
integration continues from the accepted state with :data:`REST_METHOD` (implicit,
L-stable: its steps grow as the solution settles), under the same tolerances, the same
step budget and the same output loop; its error control, not the test, decides the
accuracy. Then, once the implicit method's state is settled (:func:`settled`: its
linearization is stable and the displacement still to come, :math:`-J^+f`, is below the
tolerance), the state is held to the horizon: an asymptotic tail, since floating-point
time steps cannot reach t = 1e300 at all. The trajectory says so: ``stats`` (and so a
trajectory's ``meta``) gain ``switched_to`` (the method) and ``switched_at`` (the time),
and ``at_rest_from`` (the time from which the state is held) when the tail was taken. A
run that takes fewer than :data:`REST_MIN_STEPS` steps never switches, so its numbers are
unchanged; a run given ``max_steps`` below :data:`REST_MIN_STEPS` raises at its budget as
before.

:func:`check_rtol` rejects tolerances below what the methods honour (``solve_ivp`` clips
``rtol`` to 100·eps with a warning; here the caller is told instead).
"""

from __future__ import annotations

import numpy as np

from ..errors import IntegrationError
from .runge_kutta import DOP853_A, DOP853_N_STAGES, solver_class

#: Default most accepted steps of one float64 integration: runs of the test suite take at
#: most a few thousand; a DOP853 step of a small flow costs ~0.1-1 ms, so a flow that
#: cannot finish stops within minutes, not never.
DEFAULT_MAX_STEPS = 200_000
#: Right-hand-side evaluations allowed per step of the budget (DOP853 uses 12 per accepted
#: step; rejected steps add more).
EVALS_PER_STEP = 40
#: Accepted explicit steps before the rest test runs (the test suite's runs take at most a
#: few thousand, so they never switch; a run at rest switches within seconds).
REST_MIN_STEPS = 10_000
#: The method a flow found at rest continues with (L-stable, 5th order; ``solve_ivp``'s).
REST_METHOD = "Radau"
#: Where each explicit method's stability region meets the negative real axis, as Hairer's
#: DOP853 (6.1) and DOPRI5 (3.25) codes test it; RK23 (Bogacki-Shampine): 2.5.
STABILITY_BOUNDARY = {"DOP853": 6.1, "RK45": 3.25, "RK23": 2.5}
#: Accepted steps in a row beyond the stability boundary that make a flow stiff (Hairer's 15).
STIFF_STEPS = 15
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


class StiffnessTest:
    r"""Hairer's stiffness detection on accepted steps (the module docstring): ``update``
    returns True once :math:`h\lambda` exceeded the method's stability boundary for
    :data:`STIFF_STEPS` accepted steps in a row.

    :math:`\lambda` is estimated as in Hairer's DOP853 code from the step's own last
    stages, :math:`\lVert f(y_{n+1}) - k_{12}\rVert / \lVert y_{n+1} - Y_{12}\rVert`
    (:math:`Y_{12}` the argument of the twelfth stage, at the same time as
    :math:`y_{n+1}`): two points a step's error apart, so the estimate sees the stiff
    direction even while the state moves along a slow one (a flow still converging
    slowly, whose accepted states differ only along it). Other methods, and DOP853 when
    the stages are not available, use two accepted states instead. No extra evaluation."""

    def __init__(self, method: str):
        self.method = method
        self.boundary = STABILITY_BOUNDARY[method]
        self.prev: tuple | None = None
        self.run = 0

    def _stage_estimate(self, solver, h: float):
        K = getattr(solver, "K", None)
        if self.method != "DOP853" or K is None or getattr(solver, "y_old", None) is None:
            return None
        s = DOP853_N_STAGES - 1  # the last stage, at t + h (C[11] = 1)
        arg = solver.y_old + h * (K[:s].T @ DOP853_A[s, :s])
        dy = np.linalg.norm(solver.y - arg)
        df = np.linalg.norm(K[DOP853_N_STAGES] - K[s])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return h * df / dy if dy > 0 else (np.inf if df > 0 else 0.0)

    def update(self, solver, h: float) -> bool:
        y, f = np.array(solver.y), np.array(solver.f)
        hl = self._stage_estimate(solver, h)
        if hl is None and self.prev is not None:
            dy = np.linalg.norm(y - self.prev[0])
            df = np.linalg.norm(f - self.prev[1])
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                hl = h * df / dy if dy > 0 else (np.inf if df > 0 else 0.0)
        if hl is not None:
            self.run = self.run + 1 if hl > self.boundary else 0
        self.prev = (y, f)
        return self.run >= STIFF_STEPS


def settled(solver, rtol: float, atol) -> bool:
    r"""True when the implicit solver's state is at rest for good: its linearization
    :math:`J` (the solver's own Jacobian) has no eigenvalue with real part beyond
    :math:`\sqrt\epsilon\,\lVert J\rVert` (the accuracy of a difference Jacobian), and the
    displacement still to come, :math:`-J^+ f` (exact for the linearized flow, whose
    solution decays onto the equilibrium along the stable directions), is below the
    tolerance in ``solve_ivp``'s error norm. The state is then held to the horizon.

    The flows here are gradient flows, :math:`J = -\eta H` with H the loss's Hessian: the
    eigenvalues are real, the neutral directions are those along a manifold of minima, and
    f lies in the range of J up to terms of second order in the displacement, so no drift
    along a neutral direction is left out beyond that order. A saddle is not taken for
    rest: an escaping mode gives a positive eigenvalue, and its displacement estimate is
    of the mode's own size, so only a mode already below ``atol`` (which the tolerance
    does not resolve anyway) could be held; give a smaller ``atol`` to follow one."""
    return rest_displacement(solver, rtol, atol) is not None


def rest_displacement(solver, rtol: float, atol):
    """The implicit solver's displacement still to come when its state is at rest for
    good (:func:`settled`; :func:`settled_displacement` on the solver's own Jacobian),
    else ``None``."""
    J = getattr(solver, "J", None)
    f = getattr(solver, "f", None)
    if J is None or f is None:  # pragma: no cover  (Radau keeps both)
        return None
    J = J.toarray() if hasattr(J, "toarray") else np.asarray(J, float)
    return settled_displacement(J, np.asarray(f), np.asarray(solver.y), rtol, atol)


def settled_displacement(J, f, y, rtol: float, atol):
    r"""The displacement still to come, :math:`-J^+f`, when the state ``y`` with
    right-hand side ``f`` and Jacobian ``J`` is at rest for good (see :func:`settled`),
    else ``None``."""
    if not np.all(np.isfinite(J)):
        return None
    norm = float(np.linalg.norm(J, 2)) if J.size else 0.0
    if norm == 0:
        return None
    scale = atol + rtol * np.abs(y)
    d = -(np.linalg.pinv(J) @ f)
    with np.errstate(over="ignore", invalid="ignore"):
        r = d / scale
        if not (np.all(np.isfinite(r)) and np.sqrt(np.mean(r * r)) <= 1.0):
            return None
    if np.max(np.linalg.eigvals(J).real) > np.sqrt(np.finfo(float).eps) * norm:
        return None
    return d


def integrate(fun, y0, times, method: str, rtol: float, atol, jac=None,
              max_steps: int = DEFAULT_MAX_STEPS, progress=None,
              rest_min_steps: int | None = None):
    """States at ``times`` (sorted, >= 0; rows) and ``{"nfev", "njev", "nlu"}``
    of the flow ``fun`` from ``y0`` at t = 0, through ``solve_ivp``'s ``method`` class
    (:func:`exactdyn.numeric.runge_kutta.solver_class`).
    ``progress``: an :class:`exactdyn._progress.Progress` over the time span, moved to
    the time reached after each accepted step (it only reads ``solver.t``).

    An explicit method that has taken ``rest_min_steps`` (default :data:`REST_MIN_STEPS`)
    steps continues with :data:`REST_METHOD` once its steps are held by stability
    (:class:`StiffnessTest`); the stats then hold ``switched_to`` and ``switched_at``
    (the module docstring)."""
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
    rest_after = REST_MIN_STEPS if rest_min_steps is None else rest_min_steps
    stiff_test = StiffnessTest(method) if method in STABILITY_BOUNDARY else None
    switched: dict = {}
    current = method
    counts = {"nfev": 0, "njev": 0, "nlu": 0}
    # solve_ivp wants strictly increasing output times; repeated times share one value.
    unique_times, where = np.unique(times, return_inverse=True)
    out = np.empty((unique_times.size, y0.size))
    done, steps, t_reached = 0, 0, 0.0
    # An overflow inside a trial stage that the step controller then rejects is harmless,
    # so floating-point warnings are silenced here and the accepted states checked.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            solver = solver_class(method)(f, 0.0, y0, t_end, rtol=rtol, atol=atol, **kwargs)
            while solver.status == "running":
                message = solver.step()
                if solver.status == "failed":
                    raise IntegrationError(f"{current} failed: {message}", t_reached=t_reached)
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
                if switched and solver.status == "running" and settled(solver, rtol, atol):
                    # At rest: the remaining displacement is below the tolerance.
                    out[done:] = solver.y
                    done = unique_times.size
                    switched["at_rest_from"] = t_reached
                    break
                if steps >= max_steps and solver.status == "running":
                    raise budget_error(max_steps, t_reached, t_end)
                if (stiff_test is not None and steps + STIFF_STEPS >= rest_after
                        and solver.status == "running"
                        and stiff_test.update(solver, t_reached - float(solver.t_old))
                        and steps >= rest_after):
                    # Steps held by stability: continue implicitly from the accepted state.
                    for k in counts:
                        counts[k] += int(getattr(solver, k))
                    h = t_reached - float(solver.t_old)
                    stiff = {"jac": jac} if jac is not None else {}
                    solver = solver_class(REST_METHOD)(f, t_reached, np.array(solver.y), t_end,
                                                  rtol=rtol, atol=atol, first_step=h,
                                                  **stiff)
                    switched = {"switched_to": REST_METHOD, "switched_at": t_reached}
                    stiff_test, current = None, REST_METHOD
        except _Exhausted:
            raise budget_error(max_steps, t_reached, t_end) from None
    ys = out[where]
    if not np.all(np.isfinite(ys)):
        bad = int(np.argmax(~np.all(np.isfinite(ys), axis=1)))
        raise IntegrationError(nonfinite_state(), t_reached=float(times[bad]))
    for k in counts:
        counts[k] += int(getattr(solver, k))
    return ys, {**counts, **switched}
