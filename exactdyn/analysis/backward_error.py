r"""How far gradient descent is from the flow: fitted orders of the global error.

:func:`verify_gd` runs :func:`exactdyn.gd` at several steps ``h`` to one time ``t`` and
compares the state with the gradient flow (``solve(model, t)``) and with the modified flow
(``solve(model, t, lr=h)``). Backward error analysis predicts errors :math:`O(h)` and
:math:`O(h^2)`; the orders are the least-squares slopes of :math:`\log\lVert\text{error}\rVert`
against :math:`\log h`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..descent import gd
from ..solve import solve

__all__ = ["GDVerification", "fitted_order", "verify_gd"]


@dataclass
class GDVerification:
    """Errors of GD against the flow and the modified flow, and their fitted orders.

    ``passed``: order against the flow within ``1 ± 0.05`` and against the modified flow
    within ``2 ± 0.1``.
    """

    model: str
    t: float
    lrs: np.ndarray
    error_flow: np.ndarray
    error_modified: np.ndarray
    order_flow: float
    order_modified: float

    @property
    def passed(self) -> bool:
        return abs(self.order_flow - 1) <= 0.05 and abs(self.order_modified - 2) <= 0.1

    def table(self) -> str:
        """Markdown table: one row per step, then the fitted orders."""
        rows = ["| lr | ‖GD − flow‖ | ‖GD − modified flow‖ |", "|---|---|---|"]
        rows += [f"| {h:g} | {a:.3e} | {b:.3e} |"
                 for h, a, b in zip(self.lrs, self.error_flow, self.error_modified)]
        rows.append(f"| fitted order | {self.order_flow:.3f} | {self.order_modified:.3f} |")
        return "\n".join(rows)

    def _repr_markdown_(self) -> str:
        return (f"**GD against the flow, {self.model}, t = {self.t:g}** "
                f"({'passed' if self.passed else 'FAILED'})\n\n" + self.table())


def _state(traj) -> np.ndarray:
    return np.concatenate([np.asarray(v[-1], dtype=float).ravel() for v in traj.state.values()])


def fitted_order(hs, errors) -> float:
    """Least-squares slope of log(errors) against log(hs)."""
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


def verify_gd(model, lrs, t, rtol: float = 1e-13) -> GDVerification:
    r"""Fit the orders of GD's global error at time ``t`` over the steps ``lrs``.

    Parameters
    ----------
    model
        Any model. Kinked activations (ReLU): the loss is smooth only on an activation
        region, so the orders hold, and the modified flow is defined, only while no kink is
        met on ``[0, t]`` (the modified flow raises ``ValueError`` naming ``t`` otherwise).
    lrs : sequence of float
        At least two distinct positive steps, each dividing ``t`` (``ValueError`` naming
        ``lrs`` otherwise); four or more for a meaningful fit.
    t : float
        The comparison time (> 0).
    rtol : float
        Tolerance of the two flows' integrations (far below the :math:`h^2` errors).
    """
    hs = np.asarray(lrs, dtype=float).ravel()
    if hs.size < 2 or len(set(hs.tolist())) < 2 or not np.all(np.isfinite(hs)) \
            or np.any(hs <= 0):
        raise ValueError(f"lrs must hold at least two distinct positive finite steps, got {lrs!r}")
    t = float(t)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"t must be a positive finite time, got {t!r}")
    ref = _state(solve(model, [t], rtol=rtol))
    e_flow, e_mod = [], []
    for h in hs:
        g = _state(gd(model, h, [t]))
        m = _state(solve(model, [t], lr=h, rtol=rtol))
        e_flow.append(np.linalg.norm(g - ref))
        e_mod.append(np.linalg.norm(g - m))
    e_flow, e_mod = np.array(e_flow), np.array(e_mod)
    return GDVerification(getattr(model, "name", type(model).__name__), t, hs, e_flow, e_mod,
                          fitted_order(hs, e_flow), fitted_order(hs, e_mod))
