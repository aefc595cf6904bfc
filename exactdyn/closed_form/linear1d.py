r"""Closed-form trajectory of the 1-D linear network [XZ], MATH.md §1.

Numeric evaluation lives in :mod:`.linear1d_numeric` (stable, float64 or mpmath); the
symbolic form and its proof that it solves the flow in :mod:`.linear1d_symbolic`.
"""

from __future__ import annotations

import mpmath
import numpy as np

from .. import _mp
from ..trajectory import LazyState, Trajectory
from . import linear1d_numeric as num
from .checks import require_finite

#: Below this k'^2 (or when M^2 overflows) float64 cannot represent the products the
#: stable formulas need, so the float64 path evaluates in mpmath and rounds.
_UNDERFLOW = 1e-290
#: When the smaller of M +- p0 = |u0 +- a w0|^2/(2a) is below this fraction of the larger,
#: u0 +- a w0 cancels in float64 (relative error up to eps * sqrt(1/_CANCEL) ~ 2e-13 at the
#: threshold, growing below it) and k' with it: a (near-)balanced init whose path crosses
#: the saddle is timed by ln k', so its float64 evaluation is wrong by O(1) after the
#: passage (an anti-balanced init u0 = -a w0 with a = sqrt(eta_u/eta_w) irrational: k' is
#: at rounding level and the flow escapes near t = ln(1/k')/K_inf). Such inits are
#: evaluated in mpmath and rounded, unless they are exactly degenerate (k' = 0 at 40 digits
#: too, as float64 found), where the float64 branch of k' = 0 is exact.
_CANCEL = 1e-6
#: Digits of that evaluation (10 guard digits are added inside).
_DIGITS = 30


def exact_linear1d(model, times: np.ndarray, precision: int | None = None) -> Trajectory:
    """The closed-form trajectory of a :class:`~exactdyn.Linear1D` at ``times``."""
    if precision is None:
        with np.errstate(over="ignore", under="ignore"):
            C = num.constants(model, num.FloatOps)
        representable = all(np.isfinite(v) for v in (C.kp2, C.m_plus, C.m_minus, C.p0, C.omega))
        if not representable or (C.kp2 < _UNDERFLOW and C.m_plus > 0 and C.m_minus > 0) \
                or _cancels(model, C):
            traj = exact_linear1d(model, times, precision=_DIGITS).as_float()
            traj.meta.update(precision=None, evaluated_digits=_DIGITS)
            return require_finite(traj)
        with np.errstate(over="ignore", under="ignore"):
            p, rho, phi = num.evaluate_p(C, np.asarray(times, dtype=float), num.FloatOps)
            p = np.broadcast_to(p, times.shape).astype(float)
            rho = np.broadcast_to(rho, times.shape).astype(float)
            if isinstance(phi, num.DegenerateScale):
                phi = num.DegenerateScale(np.broadcast_to(phi.sqrt_ratio, times.shape))
            else:
                phi = np.broadcast_to(phi, times.shape).astype(float)
            norm_u, norm_w = num.state_norms(C, p, phi)
        state = LazyState(("u", "w"), lambda: _state(C, p, phi))
        t_out = np.asarray(times, dtype=float).copy()
    else:
        with _mp.workdps(precision + 10):
            C = num.constants(model, num.MpOps)
            ps, rhos, phis = [], [], []
            for tv in times:
                p, rho, phi = num.evaluate_p(C, mpmath.mpf(float(tv)), num.MpOps)
                ps.append(p)
                rhos.append(rho)
                phis.append(phi)
            p = np.array(ps, dtype=object)
            rho = np.array(rhos, dtype=object)
            if isinstance(phis[0], num.DegenerateScale):
                phi = num.DegenerateScale(np.array([f.sqrt_ratio for f in phis], dtype=object))
            else:
                phi = np.array(phis, dtype=object)
            u, w = num.state_at(C, p, phi, num.MpOps)
            # Observables from the guarded values (the loss of p near p* keeps its digits).
            obs = _observables(model, C, p, rho, u, w, precision + 10)
        with _mp.workdps(precision):
            rnd = np.frompyfunc(lambda x: +x, 1, 1)
            state = {"u": rnd(u), "w": rnd(w)}
            obs = {k: rnd(v) for k, v in obs.items()}
            t_out = np.array([mpmath.mpf(float(x)) for x in times], dtype=object)
    if precision is None:
        obs = _float_observables(model, C, p, rho, norm_u, norm_w)
        if isinstance(phi, num.DegenerateScale):
            # k' = 0: the state is sqrt(p/p0) times the init, so its alignment is the
            # init's wherever the state is not zero (p = p0 sqrt(p/p0)^2 underflows first).
            with np.errstate(invalid="ignore", divide="ignore"):
                init_alignment = C.p0 / (np.linalg.norm(C.u0) * np.linalg.norm(C.w0))
            obs["alignment"] = np.where(np.asarray(phi.sqrt_ratio) != 0, init_alignment,
                                        np.nan)
    meta = {"model": model.name, "params": model.params, "method": "closed_form",
            "rtol": None, "atol": None, "precision": precision,
            "k_prime": float(C.kp2) ** 0.5, "p_star": float(C.pstar),
            "K_inf": float(C.omega * (C.pstar**2 + C.kp2) ** 0.5)}
    traj = Trajectory(t_out, state, obs, meta)
    # The state is bounded by its norms (observables, checked here), so it is finite too.
    return require_finite(traj) if precision is None else traj


def _state(C, p, phi) -> dict:
    """The time × width state ``{"u", "w"}`` (float64), computed when first asked for."""
    with np.errstate(over="ignore", under="ignore"):
        u, w = num.state_at(C, p, phi, num.FloatOps)
    return {"u": u, "w": w}


def _cancels(model, C) -> bool:
    """Whether float64 loses k' to the cancellation in u0 +- a w0 (see :data:`_CANCEL`)."""
    lo, hi = sorted((C.m_minus, C.m_plus))
    if not hi > 0 or lo > _CANCEL * hi:
        return False
    with _mp.workdps(_DIGITS + 10):
        exactly_degenerate = num.constants(model, num.MpOps).kp2 == 0
    return not (exactly_degenerate and C.kp2 == 0)


def _observables(model, C, p, rho, u, w, precision):
    kappa, sxx, c = model.kappa, model.x_var, model.teacher
    if precision is not None:
        with _mp.workdps(precision):
            kappa, sxx, c = mpmath.mpf(kappa), mpmath.mpf(sxx), mpmath.mpf(c)
            norm_u = np.array([mpmath.sqrt(mpmath.fdot(r, r)) for r in u], dtype=object)
            norm_w = np.array([mpmath.sqrt(mpmath.fdot(r, r)) for r in w], dtype=object)
            align = np.array([pp / (a * b) if a * b != 0 else mpmath.nan
                              for pp, a, b in zip(p, norm_u, norm_w)], dtype=object)
            return {"end_to_end": kappa * p, "loss": sxx * (kappa * p - c) ** 2 / 2,
                    "ntk": C.omega * rho, "norm_u": norm_u, "norm_w": norm_w,
                    "alignment": align}
    return _float_observables(model, C, p, rho, np.linalg.norm(u, axis=1),
                              np.linalg.norm(w, axis=1))


def _float_observables(model, C, p, rho, norm_u, norm_w):
    r"""The float64 observables from :math:`p`, :math:`\rho` and the norms of the state."""
    kappa, sxx, c = model.kappa, model.x_var, model.teacher
    with np.errstate(invalid="ignore", divide="ignore"):
        align = p / (norm_u * norm_w)
    return {"end_to_end": kappa * p, "loss": sxx * (kappa * p - c) ** 2 / 2,
            "ntk": C.omega * rho, "norm_u": norm_u, "norm_w": norm_w, "alignment": align}


def _symbolic(model):
    # sympy is imported only for the symbolic form: a float64 exact() never needs it
    from .linear1d_symbolic import Linear1DClosedForm

    return Linear1DClosedForm()


def _register():
    from ..models.linear1d import Linear1D
    from . import register_closed_form

    register_closed_form(Linear1D, exact_linear1d, _symbolic)


_register()
