r"""The one place where float64 integration is configured and run.

One table of methods (:data:`FLOAT_METHODS`, ``solve_ivp``'s names, and
:data:`PRECISION_METHODS` for ``precision=N``), the default tolerances
(:data:`DEFAULT_RTOL` for smooth flows, :data:`KINKED_RTOL` for flows integrated segment by
segment through kinks, :func:`default_atol`), and :func:`integrate_float`, which every
float64 path — the generic lowering, the reduced equation, the two-layer network and the
CNN (inside :mod:`exactdyn.numeric.kinks`' segments too) — calls.
"""

from __future__ import annotations

import numpy as np

from .. import _mp
from ..trajectory import Trajectory
from . import stepping

#: ``solve_ivp``'s methods; DOP853 (the default) suits these smooth, non-stiff flows.
FLOAT_METHODS = ("DOP853", "RK45", "RK23", "Radau", "BDF", "LSODA")
#: Arbitrary-precision methods: exactdyn's Taylor integrator and heyoka.py's (optional).
PRECISION_METHODS = ("taylor", "heyoka")
#: Default relative tolerance of float64 integration of smooth flows.
DEFAULT_RTOL = 1e-12
#: Default relative tolerance of flows with kinks (ReLU-type activations): each segment
#: restarts the integrator, and the kink location's bracket dominates below this.
KINKED_RTOL = 1e-10


def default_atol(model, lowered, y0: np.ndarray, rtol: float) -> float:
    """Absolute tolerance scaled to the smallest nonzero typical entry of the state.

    A fixed absolute tolerance would swamp a small initialization (entries of 1e-4);
    the typical size of the state's nonzero parts sets the scale instead.
    """
    scales = []
    for part in lowered.unpack(y0).values():
        part = np.asarray(part, dtype=float)
        top = float(np.max(np.abs(part), initial=0.0))
        # The RMS scaled by the largest entry, so an init of 1e200 does not overflow.
        rms = top * float(np.sqrt(np.mean(np.square(part / top)))) if top > 0 else 0.0
        if rms > 0:
            scales.append(rms)
    target = getattr(model, "target_scale", None)
    if target is not None:
        ts = target()
        if ts > 0:
            scales.append(ts)
    return rtol * (min(scales) if scales else 1.0)



def integrate_float(rhs, jac, y0, times, method, rtol, atol, max_steps=None, progress=None):
    """States at the output ``times`` (rows) and stats, from t = 0: ``solve_ivp``'s loop
    with a step budget and finiteness checks (:func:`exactdyn.numeric.stepping.integrate`):
    :class:`~exactdyn.IntegrationError` with the time reached when the rhs or the state
    stops being finite, the step size collapses, or ``max_steps`` (default
    :data:`~exactdyn.numeric.stepping.DEFAULT_MAX_STEPS`) is exceeded. ``progress``: an
    :class:`exactdyn._progress.Progress` over the time span (see :func:`progress_bar`)."""
    return stepping.integrate(rhs, y0, times, method, rtol, atol, jac=jac,
                              max_steps=stepping.DEFAULT_MAX_STEPS if max_steps is None
                              else max_steps, progress=progress)


def progress_bar(progress, times, name: str):
    """The :class:`~exactdyn._progress.Progress` of an integration of ``name`` over
    ``times`` (in integration time reached out of the last time), or ``None`` when
    ``progress`` (see :func:`exactdyn._progress.check_progress`) shows nothing:
    ``None`` draws on a terminal only, after :data:`~exactdyn._progress.AUTO_DELAY`
    seconds. Close it when the integration ends."""
    from .._progress import AUTO_DELAY, Progress

    t_end = float(times[-1]) if len(times) else 0.0
    bar = Progress(t_end, progress, desc=f"solve {name}", unit="t", delay=AUTO_DELAY,
                   template="{desc}: t = {done}/{total}",
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| t = {n:.4g}/{total:.4g} "
                              "[{elapsed}<{remaining}{postfix}]")
    if not bar.enabled:
        bar.close()
        return None
    return bar


def lowered_trajectory(model, lowered, times, ys, precision, meta) -> Trajectory:
    """The :class:`~exactdyn.Trajectory` of a generic lowered flow from its packed states
    ``ys`` (time first): named state arrays, the lowered observables, and ``meta`` after
    the model's name and hyperparameters. ``precision``: states are mpmath numbers,
    evaluated at that many digits (thread-safe, :func:`exactdyn._mp.workdps`)."""
    if precision is not None:
        import mpmath  # the precision=N path only: a float64 run never imports it

        with _mp.workdps(precision):
            t_out = np.array([mpmath.mpf(float(x)) for x in times], dtype=object)
            state = {k: np.array(v) for k, v in lowered.unpack(ys).items()}
            obs = lowered.observables(state)
    else:
        t_out = np.asarray(times, float).copy()
        state = {k: np.array(v) for k, v in lowered.unpack(np.asarray(ys, float)).items()}
        with np.errstate(invalid="ignore", divide="ignore"):
            obs = lowered.observables(state)
    return Trajectory(t_out, state, obs, {"model": model.name, "params": model.params, **meta})
