r"""Numerical integration of a model's gradient flow: ``solve(model, t)``."""

from __future__ import annotations

import warnings

from . import _validation as check
from ._progress import check_progress
from .errors import (
    IntegrationError,  # noqa: F401  (re-exported for callers)
    PrecisionWarning,
)
from .flows import lower, numeric_family
from .numeric.integrate import (
    DEFAULT_RTOL,
    FLOAT_METHODS,
    PRECISION_METHODS,
    default_atol,
    integrate_float,
    lowered_trajectory,
    progress_bar,
)
from .numeric.resolution import unresolved_passage
from .trajectory import Trajectory

__all__ = ["FLOAT_METHODS", "PRECISION_METHODS", "default_atol", "integrate_float", "solve"]


def solve(model, t, method: str | None = None, rtol: float | None = None,
          atol: float | None = None,
          precision: int | None = None, reduced: bool = False,
          max_kinks: int | None = None, max_steps: int | None = None,
          lr: float | None = None, progress=None) -> Trajectory:
    r"""Integrate the gradient flow of ``model`` and return a :class:`Trajectory`.

    Parameters
    ----------
    model
        A model instance, e.g. :class:`~exactdyn.Linear1D`.
    t : float or array_like
        Output times (>= 0, non-decreasing); the flow starts at t = 0.
    method : str, optional
        float64: one of ``solve_ivp``'s methods (default ``"DOP853"``, which suits these
        smooth non-stiff flows). With ``precision``: ``"taylor"`` (default; exactdyn's
        arbitrary-precision Taylor integrator) or ``"heyoka"`` (optional extra).
    rtol, atol : float
        Relative and absolute tolerances (float64: ``rtol`` defaults to 1e-12, ``atol`` to
        ``rtol`` times the typical size of the smallest nonzero part of the state, see
        :func:`default_atol`). With ``precision``, ``rtol`` is the Taylor integrator's
        error target relative to the state's size (default ``10**-precision``) and
        ``atol`` is not used.
    precision : int, optional
        Significant decimal digits for arbitrary-precision integration (mpmath).
    reduced : bool
        Integrate the model's reduced equation (for :class:`~exactdyn.Linear1D`,
        :math:`\dot p = \omega (p^* - p)\sqrt{p^2 + k'^2}`) and reconstruct the state.
    max_kinks : int, optional
        Two-layer networks (:class:`~exactdyn.TwoLayer`, :class:`~exactdyn.TwoLayerCNN`)
        only: the most activation-pattern changes of a kinked activation (ReLU, leaky
        ReLU) — crossings, starts and ends of Filippov sliding — before
        :class:`IntegrationError` (default 100 000, CNN 20 000; see
        :mod:`exactdyn.numeric.kinks`); ignored for smooth activations.
        ``ValueError`` for any other model.
    max_steps : int, optional
        float64 only: the most integrator steps before :class:`IntegrationError` (default
        200 000; a flow at rest integrated to a very long horizon would otherwise step at
        its stability limit without end).
    lr : float, optional
        Integrate instead the modified flow that gradient descent with this step follows
        to second order, :math:`\dot\theta = -H\nabla\tilde L`,
        :math:`\tilde L = L + \tfrac{lr}{4}\nabla L^\top H\nabla L` (float64; see
        :mod:`exactdyn.descent` and :mod:`exactdyn.symbolic.modified`). A kinked
        activation (ReLU) has a smooth loss only on an activation region: the modified
        flow is that of the initial region, and reaching a kink before the last time
        raises ``ValueError`` naming ``t``.
    progress : bool or callable(str), optional
        float64 only: the integration time reached out of the last output time (and, with
        kinks, the activation-pattern changes met so far) on stderr. Default ``None``: a
        bar on a terminal only, drawn once the run has lasted a couple of seconds (short
        runs print nothing; a log or a pipe gets nothing). ``True``: always (plain lines,
        one per tenth of the time span, where stderr is not a terminal); ``False``: never
        (CLI: ``--no-progress``). A callable is given those plain lines instead. Progress
        only reads the time reached: the trajectory is the same bit for bit.

    Raises
    ------
    IntegrationError
        If the step size collapses, the right-hand side or the state stops being finite,
        or ``max_steps`` is exceeded.
    TypeError
        If ``progress`` is not ``None``, ``True``, ``False`` or a callable.

    Warns
    -----
    PrecisionWarning
        float64 (the full flow) only, at most once per call: when the run went through a
        saddle passage it did not resolve — a singular value of the end-to-end map (or the
        state's norm) grew by 1e3 or more, and integrating again at 10 × ``rtol`` moves the
        result by more than 1e4 × ``rtol`` of its scale, an escape time set by the
        integrator rather than the initial condition. The message names the fix,
        ``precision=30``. See :mod:`exactdyn.numeric.resolution`.
    """
    times = check.times("t", t)
    progress = check_progress(progress)
    if lr is not None:
        if precision is not None or reduced or max_kinks is not None:
            raise ValueError("lr (the modified flow) is float64 only: precision, reduced and "
                             "max_kinks do not apply with it")
        from .descent import solve_modified

        return solve_modified(model, times, lr, method, rtol, atol, progress=progress)
    if rtol is not None:
        rtol = check.positive("rtol", rtol)
    if atol is not None:
        atol = check.positive("atol", atol)
    precision = check.precision("precision", precision)
    reduced = check.boolean("reduced", reduced)
    family = numeric_family(model)
    if max_kinks is not None:
        if family is None:
            raise ValueError(f"max_kinks applies to two-layer networks with kinked activations "
                             f"(TwoLayer, TwoLayerCNN) only, got a {type(model).__name__}")
        max_kinks = check.nonnegative_int("max_kinks", max_kinks)
    if max_steps is not None:
        if precision is not None:
            raise ValueError("max_steps applies to float64 integration only (without "
                             "precision)")
        max_steps = check.positive_int("max_steps", max_steps)
    if family is not None:
        if precision is not None or reduced:
            raise ValueError(f"precision and reduced are not available for {family.label} "
                             "(float64 with kink location only)")
        bar = progress_bar(progress, times, type(model).__name__)
        try:
            return family.solve(model, times, method, rtol, atol,
                                family.max_kinks if max_kinks is None else max_kinks,
                                max_steps=max_steps, progress=bar)
        finally:
            if bar is not None:
                bar.close()
    if precision is None:
        method = "DOP853" if method is None else method
        check.choice("method", method, FLOAT_METHODS)
    else:
        method = "taylor" if method is None else method
        check.choice("method", method, PRECISION_METHODS)
    if reduced:
        from .reduced import solve_reduced

        return solve_reduced(model, times, method, DEFAULT_RTOL if rtol is None else rtol, atol,
                             precision, progress=progress)
    lowered = lower(model)
    y0 = lowered.pack(model.initial_state())
    if precision is not None:
        from .numeric.highprec import integrate_high_precision

        if atol is not None:
            raise ValueError("atol does not apply with precision: the Taylor integrator's "
                             "error target is relative to the state's size; give rtol")
        ys, stats = integrate_high_precision(lowered, y0, times, precision, method, rtol)
        return _trajectory(model, lowered, times, ys, method,
                           rtol if rtol is not None else 10.0**-precision, None, precision, stats)
    if rtol is None:
        rtol = DEFAULT_RTOL
    if atol is None:
        atol = default_atol(model, lowered, y0, rtol)
    bar = progress_bar(progress, times, type(model).__name__)
    try:
        ys, stats = integrate_float(lowered.rhs, lowered.jac, y0, times, method, rtol, atol,
                                    max_steps, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    traj = _trajectory(model, lowered, times, ys, method, rtol, atol, None, stats)

    def rerun(factor):
        ys2, stats2 = integrate_float(lowered.rhs, lowered.jac, y0, times, method,
                                      rtol * factor, atol * factor, max_steps)
        return _trajectory(model, lowered, times, ys2, method, rtol * factor, atol * factor,
                           None, stats2)

    message = unresolved_passage(traj, rerun, rtol)
    if message is not None:  # one warning per call at most
        warnings.warn(message, PrecisionWarning, stacklevel=2)
    return traj


def _trajectory(model, lowered, times, ys, method, rtol, atol, precision, stats):
    return lowered_trajectory(model, lowered, times, ys, precision,
                              {"method": method, "rtol": rtol, "atol": atol,
                               "precision": precision, **stats})
