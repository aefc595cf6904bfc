r"""Reduction of the 1-D linear network's flow to one equation for :math:`p = u\cdot w` [XZ].

Derived and proven from the per-neuron flow (MATH.md §1):

.. math::
    \dot p = (p^* - p)\,K,\qquad K = \kappa^2\Sigma_{xx}(\eta_u\lVert w\rVert^2 + \eta_w\lVert u\rVert^2)
    = \omega\sqrt{p^2 + k'^2},

with :math:`p^* = c/\kappa`, :math:`\omega = 2\kappa^2\Sigma_{xx}\sqrt{\eta_u\eta_w}`,
:math:`k'^2 = \eta_u\eta_w Q_1^2/4 + Q_2 = M^2 - p^2` conserved,
:math:`Q_2 = \lVert u\rVert^2\lVert w\rVert^2 - p^2 = \tfrac{\eta_u\eta_w}{2}(\operatorname{tr}C^2 - (\operatorname{tr}C)^2)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .flow import ConservedQuantity, DerivationStep, GradientFlow
from .sums import SUM_INDEX, is_zero, neuron_sum, normalize


@dataclass
class ReducedFlow:
    """One scalar equation ``variable' = rhs`` equivalent to the flow, with its constants."""

    variable: sp.Symbol
    rhs: sp.Expr
    constants: dict  # Symbol -> expression in the state's reductions
    steps: list

    @property
    def proven(self) -> bool:
        return all(s.proven is not False for s in self.steps)


def reduce_linear1d(flow: GradientFlow) -> ReducedFlow:
    net = flow.network
    u, w = net.params
    h = net.hyper
    kappa, eta_u, eta_w, c, sxx = h["kappa"], h["eta_u"], h["eta_w"], h["teacher"], h["x_var"]
    i = SUM_INDEX
    a_, b_ = sp.symbols("a b", integer=True)
    suu, sww, p = neuron_sum(u[i] ** 2), neuron_sum(w[i] ** 2), neuron_sum(u[i] * w[i])
    steps = []

    # Q2 from the invariants of C: (tr C)^2 and tr C^2 (a double sum over neurons).
    C_ab = u[a_] * u[b_] / eta_u - w[a_] * w[b_] / eta_w
    tr_C = neuron_sum(C_ab.xreplace({a_: i, b_: i}))
    tr_C2 = sp.Sum(neuron_sum((C_ab**2).xreplace({b_: i})), (a_, 0, sp.Symbol("d", integer=True,
                                                                              positive=True) - 1))
    Q2 = suu * sww - p**2
    identity = is_zero(eta_u * eta_w * (tr_C2 - tr_C**2) / 2 - Q2)
    steps.append(DerivationStep(
        "Q_2 from the invariants of C",
        sp.Eq(sp.Symbol("Q_2"), Q2), "Q_2 = (eta_u eta_w/2)(tr C^2 - (tr C)^2): expand the "
        "double sum over neurons.", proven=identity))
    dQ2 = flow.time_derivative(Q2)
    proven_q2 = identity and is_zero(dQ2)
    if not any(q.name == "Q_2" for q in flow.conserved):
        flow.conserved.append(ConservedQuantity("Q_2", Q2, sp.simplify(dQ2), proven_q2,
                                                "An invariant of the conserved matrix C."))
    steps.append(DerivationStep("Conserved: Q_2", sp.Eq(sp.Derivative(sp.Symbol("Q_2"),
                                                                      sp.Symbol("t")), 0),
                                "d/dt of Q_2 along the flow simplifies to 0.", proven=proven_q2))

    # The equation of p.
    pstar = c / kappa
    K = net.observables["ntk"]
    pdot = flow.time_derivative(p)
    ok = is_zero(pdot - (pstar - p) * K)
    steps.append(DerivationStep(
        "Equation of p = u.w", sp.Eq(sp.Symbol("\\dot p"), sp.Symbol("(p^* - p) K")),
        "dp/dt = Σ_i (du_i/dt w_i + u_i dw_i/dt) along the flow; K is the rate-weighted "
        "NTK E_x[Σ_ℓ η_ℓ |∂f/∂θ_ℓ|²] = κ²Σxx(η_u|w|² + η_w|u|²).", proven=ok))

    # The NTK through p and the conserved k'.
    Q1 = suu / eta_u - sww / eta_w
    kp2 = eta_u * eta_w * Q1**2 / 4 + Q2
    omega = 2 * kappa**2 * sxx * sp.sqrt(eta_u * eta_w)
    ok_k = is_zero(K**2 - omega**2 * (p**2 + kp2))
    steps.append(DerivationStep(
        "NTK through p", sp.Eq(sp.Symbol("K^2"), sp.Symbol("\\omega^2 (p^2 + k'^2)")),
        "K >= 0 (a sum of squares weighted by positive rates), so K = omega sqrt(p^2 + k'^2) "
        "with k'^2 = eta_u eta_w Q_1^2/4 + Q_2 conserved.", proven=ok_k))
    M = (sp.sqrt(eta_w / eta_u) * suu + sp.sqrt(eta_u / eta_w) * sww) / 2
    ok_m = is_zero(M**2 - p**2 - kp2)
    steps.append(DerivationStep(
        "k' through M", sp.Eq(sp.Symbol("k'^2"), sp.Symbol("M^2 - p^2")),
        "M = (sqrt(eta_w/eta_u)|u|^2 + sqrt(eta_u/eta_w)|w|^2)/2.", proven=ok_m))

    P, kp, om, ps = sp.Symbol("p"), sp.Symbol("k'", nonnegative=True), sp.Symbol(
        "omega", positive=True), sp.Symbol("p^*")
    rhs = om * (ps - P) * sp.sqrt(P**2 + kp**2)
    steps.append(DerivationStep("Reduced equation", sp.Eq(sp.Symbol("\\dot p"), rhs),
                                "Steps above.", proven=ok and ok_k and proven_q2))
    return ReducedFlow(P, rhs, {ps: pstar, om: omega, kp: sp.sqrt(normalize(sp.expand(kp2)))},
                       steps)
