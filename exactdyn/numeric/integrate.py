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
from scipy.integrate import solve_ivp

from ..errors import IntegrationError

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
        rms = float(np.sqrt(np.mean(np.square(part, dtype=float))))
        if rms > 0:
            scales.append(rms)
    target = getattr(model, "target_scale", None)
    if target is not None:
        ts = target()
        if ts > 0:
            scales.append(ts)
    return rtol * (min(scales) if scales else 1.0)



def integrate_float(rhs, jac, y0, times, method, rtol, atol):
    """``solve_ivp`` from t = 0 to the output ``times``; returns states (time first), stats."""
    t_end = float(times[-1])
    if t_end == 0.0:
        return np.repeat(y0[None, :], len(times), axis=0), {"nfev": 0, "njev": 0, "nlu": 0}
    kwargs = {}
    if method in ("Radau", "BDF", "LSODA"):
        kwargs["jac"] = jac
    # solve_ivp wants strictly increasing output times; repeated times share one value.
    unique_times, where = np.unique(times, return_inverse=True)
    # An overflow inside a trial stage that the step controller then rejects is harmless,
    # so floating-point warnings are silenced here and the accepted result checked below.
    with np.errstate(over="ignore", invalid="ignore"):
        sol = solve_ivp(rhs, (0.0, t_end), y0, method=method, t_eval=unique_times,
                        rtol=rtol, atol=atol, **kwargs)
    if sol.status != 0:
        reached = float(sol.t[-1]) if sol.t.size else 0.0
        raise IntegrationError(f"{method} failed: {sol.message}", t_reached=reached)
    ys = sol.y.T[where]
    if not np.all(np.isfinite(ys)):
        bad = int(np.argmax(~np.all(np.isfinite(ys), axis=1)))
        raise IntegrationError("the state stopped being finite", t_reached=float(times[bad]))
    return ys, {"nfev": int(sol.nfev), "njev": int(sol.njev), "nlu": int(sol.nlu)}
