r"""Symbolic closed form of the 1-D linear network [XZ] and its proof (MATH.md §1).

With :math:`z_\pm` the roots of :math:`z^2 - (2p^*/k')z - 1` (so :math:`z_+ z_- = -1`),

.. math::
    z(t) = \frac{z_+ - R(t) z_-}{1 - R(t)},\quad R(t) = R_0 e^{-K_\infty t},\quad
    p(t) = \frac{k'}{2}\Big(z(t) - \frac1{z(t)}\Big),\quad
    K_\infty = \frac{\omega k'}{2}(z_+ - z_-),

    u_j(t) = \tfrac12 e^{\phi}(u_{0j} - a w_{0j}) + \tfrac12 e^{-\phi}(u_{0j} + a w_{0j}),\quad
    w_j(t) = \tfrac12 e^{\phi}(w_{0j} - u_{0j}/a) + \tfrac12 e^{-\phi}(w_{0j} + u_{0j}/a),

with :math:`a = \sqrt{\eta_u/\eta_w}` and :math:`e^{2\phi} = (M + p_0)/(k' z(t))`.
:meth:`Linear1DClosedForm.residual` substitutes these into the reduced equation and into
the full per-neuron flow derived in :mod:`exactdyn.symbolic` and simplifies each residual
to 0. Reference: Xu & Ziyin, arXiv:2401.07085.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from ..models.linear1d import symbolic_network
from ..symbolic.flow import DerivationStep
from ..symbolic.sums import NEURON_INDEX, SUM_INDEX, neuron_sum, normalize
from .checks import ProvenSteps


@dataclass
class Linear1DClosedForm(ProvenSteps):
    """Closed form as sympy expressions, with proofs that it solves the gradient flow."""

    t: sp.Symbol = field(default_factory=lambda: sp.Symbol("t", nonnegative=True))
    kp: sp.Symbol = field(default_factory=lambda: sp.Symbol("k'", positive=True))
    omega: sp.Symbol = field(default_factory=lambda: sp.Symbol("omega", positive=True))
    z_plus: sp.Symbol = field(default_factory=lambda: sp.Symbol("z_+", positive=True))
    R0: sp.Symbol = field(default_factory=lambda: sp.Symbol("R_0", real=True))

    @property
    def z_minus(self) -> sp.Expr:
        return -1 / self.z_plus

    @property
    def p_star(self) -> sp.Expr:
        """:math:`p^* = (k'/2)(z_+ + z_-)` (sum of the roots is :math:`2p^*/k'`)."""
        return self.kp / 2 * (self.z_plus + self.z_minus)

    @property
    def K_inf(self) -> sp.Expr:
        return self.omega * self.kp / 2 * (self.z_plus - self.z_minus)

    @property
    def R(self) -> sp.Expr:
        return self.R0 * sp.exp(-self.K_inf * self.t)

    @property
    def z(self) -> sp.Expr:
        return (self.z_plus - self.R * self.z_minus) / (1 - self.R)

    @property
    def p(self) -> sp.Expr:
        return self.kp / 2 * (self.z - 1 / self.z)

    def equations(self) -> list:
        """The closed form as a list of equations (for reports)."""
        S = sp.Symbol
        return [
            sp.Eq(S("z_\\pm"), (S("p^*") + sp.sqrt(S("p^*") ** 2 + self.kp**2) * S("\\pm1"))
                  / self.kp, evaluate=False),
            sp.Eq(S("R(t)"), S("R_0") * sp.exp(-S("K_\\infty") * self.t), evaluate=False),
            sp.Eq(S("z(t)"), (S("z_+") - S("R(t)") * S("z_-")) / (1 - S("R(t)")), evaluate=False),
            sp.Eq(S("p(t)"), self.kp / 2 * (S("z(t)") - 1 / S("z(t)")), evaluate=False),
        ]

    @cached_property
    def proofs(self) -> list:
        """Each proof as a :class:`DerivationStep` whose ``expr`` is ``Eq(residual, 0)``."""
        t, kp, om = self.t, self.kp, self.omega
        z, p = self.z, self.p
        steps = []
        # 1. z(t) solves the constant-coefficient Riccati equation.
        riccati = sp.diff(z, t) + om * kp / 2 * (z - self.z_plus) * (z - self.z_minus)
        res = sp.simplify(riccati)
        steps.append(DerivationStep(
            "Möbius solution of the Riccati equation",
            sp.Eq(sp.Symbol("\\dot z + \\frac{\\omega k'}{2}(z - z_+)(z - z_-)"), res),
            "Substitute z(t) = (z₊ − R z₋)/(1 − R), R = R₀ exp(−K∞ t); simplify.",
            proven=res == 0))
        # 2. The square root of the reduced equation on the path (z > 0).
        zs = sp.Symbol("z", positive=True)
        p_of_z = kp / 2 * (zs - 1 / zs)
        root = sp.simplify(sp.sqrt(sp.factor(sp.together(p_of_z**2 + kp**2)))
                           - kp / 2 * (zs + 1 / zs))
        steps.append(DerivationStep(
            "Square root on the path",
            sp.Eq(sp.Symbol("\\sqrt{p^2 + k'^2} - \\frac{k'}{2}(z + 1/z)"), root),
            "p = (k'/2)(z - 1/z) gives p^2 + k'^2 = ((k'/2)(z + 1/z))^2 and z > 0.",
            proven=root == 0))
        # 3. The Riccati right-hand side in terms of p, used by the state proofs.
        riccati_p = sp.simplify(-om * kp / 2 * (zs - self.z_plus) * (zs - self.z_minus)
                                - om * zs * (self.p_star - p_of_z))
        steps.append(DerivationStep(
            "Riccati equation through p",
            sp.Eq(sp.Symbol("-\\frac{\\omega k'}{2}(z - z_+)(z - z_-) - \\omega z (p^* - p)"),
                  riccati_p),
            "z_+ z_- = -1 and z_+ + z_- = 2p^*/k' (Vieta).", proven=riccati_p == 0))
        # 4. p(t) solves the reduced equation.
        reduced = sp.diff(p, t) - om * (self.p_star - p) * kp / 2 * (z + 1 / z)
        res = sp.simplify(sp.factor(sp.together(reduced)))
        steps.append(DerivationStep(
            "Closed form solves the reduced equation",
            sp.Eq(sp.Symbol("\\dot p - \\omega (p^* - p)\\sqrt{p^2 + k'^2}"), res),
            "Substitute p(t) = (k'/2)(z(t) - 1/z(t)) and the square root of step 2.",
            proven=res == 0))
        steps.extend(self._state_proofs())
        return steps

    def _state_proofs(self) -> list:
        """u(t), w(t) solve the full per-neuron flow derived from the loss."""
        net = symbolic_network()
        u, w = net.params
        h = net.hyper
        kappa, eta_u, eta_w, c, sxx = h["kappa"], h["eta_u"], h["eta_w"], h["teacher"], h["x_var"]
        from ..symbolic.flow import derive_gradient_flow

        flow = derive_gradient_flow(net)
        t, kp = self.t, self.kp
        j, i = NEURON_INDEX, SUM_INDEX
        u0, w0 = sp.IndexedBase("u0"), sp.IndexedBase("w0")
        a = sp.sqrt(eta_u / eta_w)
        M, p0 = sp.Symbol("M", positive=True), sp.Symbol("p_0", real=True)
        zt = sp.Function("z", positive=True)(t)
        ephi = sp.sqrt((M + p0) / (kp * zt))

        def u_t(k):
            return ephi / 2 * (u0[k] - a * w0[k]) + (u0[k] + a * w0[k]) / (2 * ephi)

        def w_t(k):
            return ephi / 2 * (w0[k] - u0[k] / a) + (w0[k] + u0[k] / a) / (2 * ephi)

        steps = []
        # (a) The reductions of the closed-form state: sum_i u_i(t) w_i(t) = p(z(t)).
        p_sum = normalize(sp.expand(neuron_sum(u_t(i) * w_t(i))))
        suu, sww, suw = (neuron_sum(u0[i] ** 2), neuron_sum(w0[i] ** 2),
                         neuron_sum(u0[i] * w0[i]))
        # Definitions M = (|u0|^2/a + a|w0|^2)/2, p0 = u0.w0, and k'^2 = M^2 - p0^2.
        definitions = {suu: a * (2 * M - a * sww), suw: p0}
        p_target = kp / 2 * (zt - 1 / zt)
        gap = sp.expand(p_sum.xreplace(definitions) - p_target)
        gap = sp.simplify(gap.subs(kp, sp.sqrt(M**2 - p0**2)))
        steps.append(DerivationStep(
            "The state's reduction reproduces p(t)",
            sp.Eq(sp.Symbol("\\sum_i u_i(t) w_i(t) - p(t)"), gap),
            "Expand the sum over neurons; substitute M = (|u_0|^2/a + a|w_0|^2)/2, "
            "p₀ = u₀·w₀, exp(2φ) = (M + p₀)/(k' z) and k'² = M² − p₀².",
            proven=gap == 0))
        # (b) Per-neuron residuals of the derived flow, with z obeying its Riccati
        # equation, written through p: z' = omega z (p* - p) (step 1 and the map p(z)).
        omega = 2 * kappa**2 * sxx * sp.sqrt(eta_u * eta_w)
        pstar = c / kappa
        zdot = omega * zt * (pstar - p_target)
        p_sym = sp.Symbol("p")
        for base, state_t in ((u, u_t), (w, w_t)):
            rhs = flow.rhs[base].xreplace({neuron_sum(u[i] * w[i]): p_sym})
            rhs = rhs.xreplace({u[j]: u_t(j), w[j]: w_t(j)}).subs(p_sym, p_target)
            lhs = sp.diff(state_t(j), t).subs(sp.Derivative(zt, t), zdot)
            res = sp.simplify(sp.expand(lhs - rhs))
            steps.append(DerivationStep(
                f"Closed form solves the flow of {base.name}",
                sp.Eq(sp.Symbol(f"\\dot {base.name}_j(t) - \\mathrm{{rhs}}_{{{base.name}}}"), res),
                "Substitute u(t), w(t) into the derived per-neuron flow, with "
                "dz/dt = ω z (p* − p) and ω = 2κ²Σxx √(η_u η_w).", proven=res == 0))
        return steps
