r"""Early-stage closed form of a two-layer network with a multiplicity-1 activation.

While :math:`f \approx 0` (small init, early times) the residual is :math:`e_i \approx
-y_i`, and with :math:`\sigma(h) \approx ch` (:math:`\sigma(0) = 0`, :math:`c = \sigma'(0)
\ne 0`: 1 for tanh, ½ for silu and gelu) the flow of MATH.md §4 linearizes to
:math:`\dot a_k = c\langle z, w_k\rangle/\alpha`, :math:`\dot w_k = c\,a_k z/\alpha` with
:math:`z = \frac1n\sum_i y_i x_i` (bias included).
With :math:`s = c\|z\|t/\alpha` and :math:`P_k = \langle\hat z, w_k\rangle`:

.. math::

    a_k(t) = a_k(0)\cosh s + P_k(0)\sinh s,\qquad
    P_k(t) = P_k(0)\cosh s + a_k(0)\sinh s,

and the part of :math:`w_k` orthogonal to :math:`\hat z` is frozen: all input weights
condense onto the line :math:`\mathbb{R}z` [ZX, CX]. This is the **linearized
early-stage solution**, not the full flow: its relative error is :math:`O(\beta^2)` in the
init scale β at fixed t (the neglected terms are :math:`f = O(m\beta_1\beta_2)` in the
residual and the cubic term of σ; a quadratic term, σ''(0) ≠ 0, makes it :math:`O(\beta)`:
:func:`asymptotic_order`, fitted by :func:`exactdyn.verify`), and it grows with t as the
weights leave the origin.
Zhou et al., NeurIPS 2022; Chen et al., "Phase diagram of initial condensation for
two-layer neural networks" (2023).
"""

from __future__ import annotations

import numpy as np


def applies(model) -> tuple:
    """``(ok, reason)``: the closed form needs σ(0) = 0, σ'(0) ≠ 0 and a smooth σ
    (multiplicity 1: tanh, silu, gelu, x + x², linear, ...)."""
    act = model.act
    if act.piecewise:
        return False, f"activation {act.name!r} is not smooth at 0"
    # values at 0 as floats (a named activation's from its table: a float64 exact() needs
    # no sympy)
    if act.value_at_zero(0) != 0 or act.value_at_zero(1) == 0:
        return False, (f"activation {act.name!r} does not have sigma(0) = 0 and "
                       "sigma'(0) != 0 (multiplicity 1)")
    return True, ""


def slope_at_zero(model) -> float:
    """c = σ'(0): the linearized flow runs at rate c‖z‖/α."""
    return model.act.value_at_zero(1)


def asymptotic_order(model) -> int:
    r"""Order p in the init scale β of this closed form's error against the full flow:
    relative error :math:`O(\beta^p)` at fixed t (:func:`exactdyn.verify` fits it).

    The neglected terms are the output :math:`f = O(m\beta^2)` in the residual and the
    Taylor remainder of σ beyond its linear part. With :math:`\sigma''(0) = 0` (tanh,
    odd activations) the remainder is cubic and both are relative :math:`O(\beta^2)`:
    p = 2. A quadratic term :math:`\tfrac12\sigma''(0)h^2` changes :math:`\sigma'(h)` by
    a relative :math:`O(\beta)`: p = 1. (Zhou et al., NeurIPS 2022.)"""
    return 2 if model.act.value_at_zero(2) == 0 else 1


def z_vector(model) -> np.ndarray:
    r""":math:`z = \frac1n\sum_i y_i x_i` (bias column included)."""
    return model.X.T @ model.y / model.n


def exact_two_layer(model, times):
    ok, why = applies(model)
    if not ok:
        raise ValueError(f"model must have a multiplicity-1 activation (sigma(0) = 0, "
                         f"sigma'(0) != 0) for the early-stage closed form; {why}")
    from ..numeric.twolayer import trajectory_from_states

    z = z_vector(model)
    nz = float(np.linalg.norm(z))
    if nz == 0:
        zhat = np.zeros_like(z)
    else:
        zhat = z / nz
    s = slope_at_zero(model) * nz * np.asarray(times, float) / model.alpha
    a0, W0 = model.a0, model.W0
    P0 = W0 @ zhat
    ch, sh = np.cosh(s)[:, None], np.sinh(s)[:, None]
    a = a0[None, :] * ch + P0[None, :] * sh
    P = P0[None, :] * ch + a0[None, :] * sh
    W = W0[None, :, :] + (P - P0[None, :])[:, :, None] * zhat[None, None, :]
    return trajectory_from_states(model, times, a, W,
                                  {"method": "closed-form (linearized early stage)",
                                   "precision": None, "z": z.tolist()})


def symbolic_residual() -> bool:
    """Prove that the cosh/sinh pair solves :math:`\\dot a = \\|z\\|P/\\alpha`,
    :math:`\\dot P = \\|z\\|a/\\alpha` (sympy)."""
    import sympy as sp

    t, nz, al, a0, p0 = sp.symbols("t z alpha a0 P0", positive=True)
    s = nz * t / al
    a = a0 * sp.cosh(s) + p0 * sp.sinh(s)
    P = p0 * sp.cosh(s) + a0 * sp.sinh(s)
    return (sp.simplify(sp.diff(a, t) - nz * P / al) == 0
            and sp.simplify(sp.diff(P, t) - nz * a / al) == 0)


def stationary_directions(model):
    r"""Stationary input-weight directions of the initial stage for 1-D input plus bias
    (multiplicity rule, Zhou et al. NeurIPS 2022; MATH.md §4).

    With the leading part :math:`\tilde\sigma(h) = c\,h^p` of σ (:math:`p` the
    multiplicity, :math:`c = \sigma^{(p)}(0)/p!`) and
    :math:`\Phi(u) = \frac1n\sum_i y_i\tilde\sigma(u\cdot x_i)`, directions are stationary
    on the circle where the tangential derivative
    :math:`G(u) = u_2\partial_1\Phi - u_1\partial_2\Phi` vanishes. G is homogeneous of
    degree p, so with :math:`u = (t, 1)` the stationary lines are the real roots of the
    polynomial :math:`G(t, 1)` of degree :math:`\le p`, plus the line :math:`u_2 = 0` when
    the degree drops: at most p lines (2p directions).

    Returns
    -------
    list of ndarray
        Unit vectors u (one per line, u and −u both stationary), in the input-weight
        coordinates (x, bias).
    """
    import sympy as sp

    act = model.act
    if act.piecewise:
        raise ValueError(f"activation must be smooth at 0 for the multiplicity rule; got "
                         f"{act.name!r}")
    if model.d_in != 2 or not model.bias:
        raise ValueError("the multiplicity rule is implemented for 1-D input plus bias "
                         f"(d_in = 2 with bias=True); got d_in = {model.d_in}")
    p = act.multiplicity
    if p == 0:
        raise ValueError(f"activation {act.name!r} has sigma(0) != 0 (multiplicity 0)")
    c = act.derivative_at_zero(p) / sp.factorial(p)
    u1, u2, t = sp.symbols("u1 u2 t", real=True)
    # Exact rationals of the float data (not nsimplify, whose guesses leave rounding-level
    # leading coefficients on symmetric data and make the root finder fail): a coefficient
    # that cancels in the data cancels exactly here, and the real roots are isolated exactly.
    xs = [sp.Rational(float(v)) for v in model.X[:, 0]]
    ys = [sp.Rational(float(v)) for v in model.y]
    phi = c * sum(yi * (u1 * xi + u2) ** p for xi, yi in zip(xs, ys)) / len(ys)
    G = sp.expand(u2 * sp.diff(phi, u1) - u1 * sp.diff(phi, u2))
    poly = sp.Poly(G.subs({u1: t, u2: 1}), t)
    lines = []
    if poly.is_zero:
        raise ValueError("every direction is stationary (Phi is constant on the circle)")
    for root in sp.Poly(poly.sqf_part(), t).real_roots():
        v = np.array([float(sp.N(root, 30)), 1.0])
        lines.append(v / np.linalg.norm(v))
    if poly.degree() < p:
        lines.append(np.array([1.0, 0.0]))
    return lines


class TwoLayerClosedForm:
    r"""The linearized early-stage closed form as sympy equations, with its proofs.

    With :math:`s = \|z\|t/\alpha` and :math:`P = \langle\hat z, w_k\rangle`:
    :math:`a(t) = a_0\cosh s + P_0\sinh s`, :math:`P(t) = P_0\cosh s + a_0\sinh s` solve
    the linearized system :math:`\dot a = \|z\|P/\alpha`, :math:`\dot P = \|z\|a/\alpha`
    (Zhou et al., NeurIPS 2022; Chen et al. 2023). It solves the *linearized* flow only:
    against the full flow it agrees to :math:`O(\beta^2)` at fixed t.
    """

    def __init__(self):
        import sympy as sp

        self.t, self.nz, self.alpha = sp.symbols("t \\|z\\| alpha", positive=True)
        self.a0, self.p0 = sp.symbols("a_0 P_0", real=True)
        self.a_f, self.p_f = sp.Function("a"), sp.Function("P")
        s = self.nz * self.t / self.alpha
        self.a_expr = self.a0 * sp.cosh(s) + self.p0 * sp.sinh(s)
        self.p_expr = self.p0 * sp.cosh(s) + self.a0 * sp.sinh(s)

    def equations(self) -> list:
        """Linearized system (2 equations), then its solution (2 equations)."""
        import sympy as sp

        t, nz, al = self.t, self.nz, self.alpha
        a, P = self.a_f(t), self.p_f(t)
        return [sp.Eq(sp.Derivative(a, t), nz * P / al, evaluate=False),
                sp.Eq(sp.Derivative(P, t), nz * a / al, evaluate=False),
                sp.Eq(a, self.a_expr, evaluate=False),
                sp.Eq(P, self.p_expr, evaluate=False)]

    @property
    def proofs(self) -> list:
        """Residuals of the solution in the linearized system and at t = 0 (sympy)."""
        import sympy as sp

        from ..symbolic.flow import DerivationStep

        t, nz, al = self.t, self.nz, self.alpha
        res = {
            "Residual of a(t) in the linearized equation of a":
                sp.simplify(sp.diff(self.a_expr, t) - nz * self.p_expr / al),
            "Residual of P(t) in the linearized equation of P":
                sp.simplify(sp.diff(self.p_expr, t) - nz * self.a_expr / al),
            "Initial condition a(0) - a_0": sp.simplify(self.a_expr.subs(t, 0) - self.a0),
            "Initial condition P(0) - P_0": sp.simplify(self.p_expr.subs(t, 0) - self.p0),
        }
        return [DerivationStep(k, sp.Eq(sp.Symbol("residual"), v), proven=v == 0)
                for k, v in res.items()]


def _register():
    from ..models.twolayer import TwoLayer
    from . import early_alignment as relu
    from . import register_closed_form

    def exact(model, times, precision):
        # ReLU, leaky ReLU: region-by-region early alignment; smooth σ: linearized form.
        return relu.early_alignment(model, times) if relu.applies(model)[0] \
            else exact_two_layer(model, times)

    def order(model):
        return (relu.asymptotic_order if relu.applies(model)[0] else asymptotic_order)(model)

    register_closed_form(TwoLayer, exact, lambda model: TwoLayerClosedForm(), order,
                         precision=False)


_register()
