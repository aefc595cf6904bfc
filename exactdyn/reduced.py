r"""Integration of a model's reduced equation, with the state reconstructed.

For :class:`~exactdyn.Linear1D` the derived reduction (see
:mod:`exactdyn.symbolic.linear1d`) is :math:`\dot p = \omega (p^* - p)\sqrt{p^2 + k'^2}`;
it is lowered from its sympy form, integrated, and the state follows from
:math:`u(t) = \tfrac12 e^{\phi}(u_0 - a w_0) + \tfrac12 e^{-\phi}(u_0 + a w_0)` (and the
same for :math:`w`) with :math:`e^{2\phi}` a function of :math:`p` (MATH.md §1).
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy as sp

from . import _mp
from .closed_form import linear1d_numeric as num
from .closed_form.linear1d import _observables
from .flows import gradient_flow
from .numeric.integrate import integrate_float, progress_bar
from .trajectory import Trajectory


def _phi_of_p(C, p, ops):
    """phi from p on the path (k' > 0): e^{2 s phi} = (M + q0)/Z_q, q = s p."""
    s = 1 if C.p0 >= C.pstar else -1
    m_q = C.m_plus if s == 1 else C.m_minus
    out = []
    for pv in np.atleast_1d(p):
        q = s * pv
        root = ops.sqrt(q * q + C.kp2)
        z_q = q + root if q >= 0 else C.kp2 / (root - q)
        out.append(s * ops.log(m_q / z_q) / 2)
    return np.array(out, dtype=object if ops is num.MpOps else float)


def solve_reduced(model, times, method, rtol, atol, precision, progress=None) -> Trajectory:
    flow = gradient_flow(model)
    red = flow.reduced
    if red is None:
        raise ValueError(f"reduced=True needs a model with a reduced equation; "
                         f"{type(model).__name__} has none")
    ps, om, kp = (sp.Symbol("p^*"), sp.Symbol("omega", positive=True),
                  sp.Symbol("k'", nonnegative=True))
    mp_ = precision is not None
    ops = num.MpOps if mp_ else num.FloatOps
    ctx = _mp.workdps(precision + 10) if mp_ else _Null()
    with ctx:
        C = num.constants(model, ops)
        values = {ps: C.pstar, om: C.omega, kp: ops.sqrt(C.kp2)}
        f = sp.lambdify((red.variable, ps, om, kp), red.rhs, modules="mpmath" if mp_ else "numpy")
        args = (values[ps], values[om], values[kp])
        if mp_:
            tol = mpmath.mpf(10) ** (-precision - 5)
            sol = mpmath.odefun(lambda t, p: f(p, *args), 0, C.p0, tol=tol)
            p = np.array([sol(mpmath.mpf(float(t))) for t in times], dtype=object)
            stats = {"nfev": None}
        else:
            scale = max(abs(C.p0), abs(C.pstar), float(values[kp]))
            bar = progress_bar(progress, times, f"{type(model).__name__} (reduced)")
            try:
                ys, stats = integrate_float(
                    lambda t, y: np.atleast_1d(f(y, *args)), None, np.array([C.p0]), times,
                    method, rtol, atol if atol is not None else rtol * (scale if scale > 0
                                                                       else 1.0),
                    progress=bar)
            finally:
                if bar is not None:
                    bar.close()
            p = ys[:, 0]
        if C.kp2 == 0:
            ratio = p / C.p0 if C.p0 != 0 else p * 0
            phi = num.DegenerateScale(np.array([ops.sqrt(r) for r in ratio],
                                               dtype=object if mp_ else float))
        else:
            phi = _phi_of_p(C, p, ops)
        u, w = num.state_at(C, p, phi, ops)
        rho = np.array([ops.sqrt(x * x + C.kp2) for x in p], dtype=object if mp_ else float)
    if mp_:
        with _mp.workdps(precision):
            rnd = np.frompyfunc(lambda x: +x, 1, 1)
            p, rho, u, w = rnd(p), rnd(rho), rnd(u), rnd(w)
            t_out = np.array([mpmath.mpf(float(x)) for x in times], dtype=object)
    else:
        t_out = times.copy()
    obs = _observables(model, C, p, rho, u, w, precision)
    meta = {"model": model.name, "params": model.params,
            "method": ("odefun" if mp_ else method) + " (reduced)", "rtol": rtol, "atol": atol,
            "precision": precision, **stats}
    return Trajectory(t_out, {"u": u, "w": w}, obs, meta)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
