r"""Symbolic proofs of the two-layer linear network's closed forms (MATH.md §2).

What is proven symbolically (each residual simplifies to 0):

1. **Rescaling and Riccati reduction.** From the flow *derived from the loss*
   (:mod:`exactdyn.symbolic.matrix_flow`, whitened inputs), with
   :math:`B_1 = (\eta_2/\eta_1)^{1/4}W_1`, :math:`B_2 = (\eta_1/\eta_2)^{1/4}W_2`,
   :math:`\tau = \sqrt{\eta_1\eta_2}\,t`, the blocks of :math:`Q = [B_1^\top; B_2]` obey
   :math:`\dot Q = F_\lambda Q - \tfrac12 QQ^\top Q` up to terms that are multiples of the
   λ-balance matrix :math:`B_2^\top B_2 - B_1B_1^\top - \lambda I` (zero on λ-balanced
   inits): the residual equals :math:`-\tfrac12 B_1^\top(\ldots)` and
   :math:`\tfrac12 B_2(\ldots)` exactly (matrix symbols, sizes symbolic).
2. **P = QQᵀ** solves :math:`\dot P = FP + PF - P^2` when :math:`\dot Q = FQ - \tfrac12QQ^\top Q`
   and :math:`F = F^\top` (noncommutative algebra).
3. **The Riccati solution** :math:`P = EQ_0X^{-1}Q_0^\top E` with :math:`\dot E = FE = EF`,
   :math:`\dot X = Q_0^\top E^2Q_0` (i.e. :math:`X = I + Q_0^\top G Q_0`) solves it
   (noncommutative algebra, the commutation :math:`EF = FE` used as a rewrite rule).
4. **Hidden width 1**: :math:`Q = EQ_0x^{-1/2}` (:math:`x` scalar) solves the Q equation.
5. **Decoupling** [SMG]: :math:`W_1 = RBV^\top`, :math:`W_2 = UAR^\top`,
   :math:`\Sigma_{yx} = USV^\top` with orthonormal frames and diagonal :math:`A, B, S`
   solve the derived flow when :math:`\dot A = \eta_2(S - AB)B`,
   :math:`\dot B = \eta_1A(S - AB)` — the width-1 flow of each mode, whose closed form is
   proven in :mod:`exactdyn.closed_form.linear1d_symbolic`.
6. **Kunin's ν** solves :math:`\dot\nu = s^2 - \delta\nu - \nu^2`, and its Möbius form
   equals the tanh form (:math:`|c_0| < D`) and the coth form (:math:`|c_0| > D`).

Checked numerically only (not proven here): the stable semigroup evaluation (it is the
same formula applied step by step), the implicit-bias endpoint for low-rank data (derived
by hand in :func:`exactdyn.closed_form.linear.implicit_bias`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from ..models.linear import symbolic_network
from ..symbolic.flow import DerivationStep
from ..symbolic.matrix_flow import derive_matrix_flow, is_zero_matrix
from .checks import ProvenSteps


def _nc(names):
    return [sp.Symbol(n, commutative=False) for n in names.split()]


def _derive(expr, rules):
    """Product rule on a noncommutative polynomial: d(a1...an) = sum a1..d(ai)..an."""
    out = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(expr)):
        c, f = term.args_cnc()
        coeff = sp.Mul(*c)
        for sym, dsym in rules.items():
            if not isinstance(sym, sp.Symbol) or sym.is_commutative:
                # commutative functions of t in the coefficient
                if coeff.has(sym):
                    out += sp.diff(coeff, sym) * dsym * sp.Mul(*f)
        for k, a in enumerate(f):
            if a in rules:
                out += coeff * sp.Mul(*f[:k]) * rules[a] * sp.Mul(*f[k + 1:])
    return sp.expand(out)


def _rewrite(expr, rules, rounds=50):
    """Apply noncommutative rewrite rules (pairs) until nothing changes."""
    expr = sp.expand(expr)
    for _ in range(rounds):
        new = expr
        for a, b in rules:
            new = sp.expand(new.subs(a, b))
        if new == expr:
            break
        expr = new
    return expr


def _coeff_simplify(expr):
    """Simplify the scalar coefficient of every term of an expanded matrix expression."""
    e = sp.expand(sp.sympify(expr).doit())
    terms = e.args if isinstance(e, sp.MatAdd) else (e,)
    groups: dict = {}
    for t in terms:
        coeff, mats = t.as_coeff_mmul()
        groups[mats] = groups.get(mats, 0) + coeff
    out = [sp.simplify(c) * m for m, c in groups.items() if sp.simplify(c) != 0]
    if not out:
        return sp.ZeroMatrix(*e.shape)
    return sp.MatAdd(*out).doit()


@dataclass
class LinearNetClosedForm(ProvenSteps):
    """The closed forms of :class:`~exactdyn.LinearNet` / :class:`~exactdyn.SingleNeuron`,
    with proofs; ``residual()`` maps each proof to its simplified residual."""

    @cached_property
    def proofs(self) -> list:
        return (self._reduction() + [self._p_equation(), self._riccati(), self._width_one(),
                                     self._decoupled()] + self._kunin())

    # 1 ---------------------------------------------------------------------------------
    def _reduction(self) -> list:
        net = symbolic_network()
        flow = derive_matrix_flow(net)
        W1, W2 = net.params
        h = net.hyper
        e1, e2 = h["eta1"], h["eta2"]
        n_in, n_h, n_out = h["n_in"], h["n_h"], h["n_out"]
        B1 = sp.MatrixSymbol("B1", n_h, n_in)
        B2 = sp.MatrixSymbol("B2", n_out, n_h)
        lam = sp.Symbol("lambda", real=True)
        S = h["sigma_yx"]
        c1, c2 = (e1 / e2) ** sp.Rational(1, 4), (e2 / e1) ** sp.Rational(1, 4)
        sub = {W1: c1 * B1, W2: c2 * B2, h["sigma_xx"]: sp.Identity(n_in)}
        rate = sp.sqrt(e1 * e2)
        dB1 = (flow.rhs[W1].xreplace(sub) / (c1 * rate)).doit()
        dB2 = (flow.rhs[W2].xreplace(sub) / (c2 * rate)).doit()
        QtQ = B1 * B1.T + B2.T * B2
        top = -lam / 2 * B1.T + S.T * B2 - B1.T * QtQ / 2
        bottom = S * B1.T + lam / 2 * B2 - B2 * QtQ / 2
        Cl = B2.T * B2 - B1 * B1.T - lam * sp.Identity(n_h)
        r_top = _coeff_simplify(dB1.T - top + B1.T * Cl / 2)
        r_bot = _coeff_simplify(dB2 - bottom - B2 * Cl / 2)
        out = []
        for name, r in (("B1^T", r_top), ("B2", r_bot)):
            ok = is_zero_matrix(r)
            out.append(DerivationStep(
                f"Riccati reduction: block {name}",
                sp.Eq(sp.Symbol(f"\\dot {{{name}}} - [F_\\lambda Q - QQ^TQ/2]"), sp.S.Zero
                      if ok else sp.Symbol(sp.sstr(r))),
                "Derived flow with W1 = (eta1/eta2)^{1/4} B1, W2 = (eta2/eta1)^{1/4} B2, "
                "tau = sqrt(eta1 eta2) t, Sigma_xx = I; the difference is a multiple of the "
                "lambda-balance matrix B2^T B2 - B1 B1^T - lambda I.", proven=ok))
        return out

    # 2 ---------------------------------------------------------------------------------
    def _p_equation(self) -> DerivationStep:
        F, Q, Qt = _nc("F Q Qt")
        rules = {Q: F * Q - Q * Qt * Q / 2, Qt: Qt * F - Qt * Q * Qt / 2}
        P = Q * Qt
        r = sp.expand(_derive(P, rules) - (F * P + P * F - P * P))
        return DerivationStep("P = QQ^T obeys the Riccati equation",
                              sp.Eq(sp.Symbol("\\dot P - (FP + PF - P^2)"), r),
                              "dQ = FQ - QQ^TQ/2, F symmetric.", proven=r == 0)

    # 3 ---------------------------------------------------------------------------------
    def _riccati(self) -> DerivationStep:
        E, F, Q0, Q0t, Xi = _nc("E F Q0 Q0t Xi")
        rules = {E: F * E, Xi: -Xi * Q0t * E * E * Q0 * Xi}
        P = self._riccati_P()
        r = _derive(P, rules) - (F * P + P * F - P * P)
        r = _rewrite(r, [(E * F, F * E)])
        return DerivationStep(
            "Riccati solution P = e^{Ft} Q0 [I + Q0^T G Q0]^{-1} Q0^T e^{Ft}",
            sp.Eq(sp.Symbol("\\dot P - (FP + PF - P^2)"), r),
            "E = e^{Ft}: dE = FE = EF; X = I + Q0^T G(t) Q0, dG = E^2, so "
            "d(X^{-1}) = -X^{-1} Q0^T E^2 Q0 X^{-1}.", proven=r == 0)

    # 4 ---------------------------------------------------------------------------------
    def _width_one(self) -> DerivationStep:
        E, F, Q0, Q0t = _nc("E F Q0 Q0t")
        x = sp.Symbol("x", positive=True)
        Q = self._width_one_Q()
        Qt = x ** sp.Rational(-1, 2) * Q0t * E
        rules = {E: F * E, x: Q0t * E * E * Q0}
        # dx is the 1x1 matrix Q0^T E^2 Q0: a scalar, so it may stand at the right end.
        dQ = sp.expand(F * E * Q0 * x ** sp.Rational(-1, 2)
                       - E * Q0 * rules[x] * x ** sp.Rational(-3, 2) / 2)
        r = sp.expand(dQ - (F * Q - Q * Qt * Q / 2))
        return DerivationStep(
            "Hidden width 1: the state Q(t) = e^{Ft} Q0 / sqrt(1 + Q0^T G Q0)",
            sp.Eq(sp.Symbol("\\dot Q - (FQ - QQ^TQ/2)"), r),
            "x = 1 + Q0^T G Q0 is a scalar with dx = Q0^T E^2 Q0.", proven=r == 0)

    # 5 ---------------------------------------------------------------------------------
    def _decoupled(self) -> DerivationStep:
        U, Ut, R, Rt, Vt, A, B, S = _nc("U Ut R Rt Vt A B S")
        e1, e2 = sp.symbols("eta1 eta2", positive=True)
        (W1, W2, Sig), rules = self._decoupled_solution()
        W2t = R * A * Ut  # A diagonal
        W1t = sp.Symbol("V", commutative=False) * B * Rt
        rw = [(Rt * R, 1), (Ut * U, 1), (Vt * sp.Symbol("V", commutative=False), 1),
              (B * A, A * B), (S * A, A * S), (S * B, B * S)]
        r1 = _rewrite(_derive(W1, rules) - e1 * W2t * (Sig - W2 * W1), rw)
        r2 = _rewrite(_derive(W2, rules) - e2 * (Sig - W2 * W1) * W1t, rw)
        ok = r1 == 0 and r2 == 0
        return DerivationStep(
            "Decoupled init stays decoupled (per-mode width-1 flows)",
            sp.Eq(sp.Symbol("residual"), sp.S.Zero if ok else sp.Symbol(sp.sstr((r1, r2)))),
            "W1 = R B V^T, W2 = U A R^T, Sigma_yx = U S V^T; R^T R = U^T U = V^T V = I, "
            "A, B, S diagonal (commute).", proven=ok)

    # 6 ---------------------------------------------------------------------------------
    def _kunin(self) -> list:
        tau, delta, s, c0, D, nu = self._kunin_nu()
        r = sp.simplify(sp.diff(nu, tau) - (s**2 - delta * nu - nu**2))
        if r != 0:
            r = sp.simplify(r.rewrite(sp.exp))
        nu0 = sp.simplify(nu.subs(tau, 0) - (c0 - delta) / 2)
        A, b = sp.symbols("A b", real=True)
        Ta = sp.tanh(A)
        br_tanh = sp.simplify(sp.expand_trig(sp.tanh(A + b)) - (Ta + sp.tanh(b))
                              / (1 + sp.tanh(b) * Ta))
        br_coth = sp.simplify(sp.expand_trig(sp.coth(A + b)) - (Ta + sp.coth(b))
                              / (1 + sp.coth(b) * Ta))
        return [
            DerivationStep("Kunin's nu solves its Riccati equation",
                           sp.Eq(sp.Symbol("\\dot\\nu - (s^2 - \\delta\\nu - \\nu^2)"), r),
                           "nu = (-delta + (D T + c0)/(1 + c0 T/D))/2, T = tanh(D tau/2), "
                           "D^2 = delta^2 + 4 s^2.", proven=r == 0),
            DerivationStep("Kunin's nu: initial value", sp.Eq(sp.Symbol("\\nu(0) - \\nu_0"), nu0),
                           "c0 = delta + 2 nu0.", proven=nu0 == 0),
            DerivationStep("tanh branch (|c0| < D)", sp.Eq(sp.Symbol("tanh-form - Möbius"),
                                                           br_tanh),
                           "c0 = D tanh(b): addition theorem of tanh.", proven=br_tanh == 0),
            DerivationStep("coth branch (|c0| > D)", sp.Eq(sp.Symbol("coth-form - Möbius"),
                                                           br_coth),
                           "c0 = D coth(b): addition theorem of coth.", proven=br_coth == 0),
        ]

    # the closed forms themselves (shared by the proofs above and equations()) ----------
    @staticmethod
    def _riccati_P():
        E, Q0, Q0t, Xi = _nc("E Q0 Q0t Xi")
        return E * Q0 * Xi * Q0t * E

    @staticmethod
    def _width_one_Q():
        E, Q0 = _nc("E Q0")
        return E * Q0 * sp.Symbol("x", positive=True) ** sp.Rational(-1, 2)

    @staticmethod
    def _decoupled_solution():
        U, Rt, R, Vt, A, B, S = _nc("U Rt R Vt A B S")
        e1, e2 = sp.symbols("eta1 eta2", positive=True)
        return (R * B * Vt, U * A * Rt, U * S * Vt), {A: e2 * (S - A * B) * B,
                                                       B: e1 * A * (S - A * B)}

    @staticmethod
    def _kunin_nu():
        tau, delta, s = sp.Symbol("tau", nonnegative=True), sp.Symbol("delta", real=True), \
            sp.Symbol("s", positive=True)
        D = sp.sqrt(delta**2 + 4 * s**2)
        c0 = sp.Symbol("c_0", real=True)
        T = sp.tanh(D * tau / 2)
        return tau, delta, s, c0, D, (-delta + (D * T + c0) / (1 + c0 * T / D)) / 2

    def equations(self) -> list:
        r"""The closed forms as sympy ``Eq`` s (the expressions the proofs substitute).

        Riccati solution :math:`P = EQ_0X^{-1}Q_0^\top E` (:math:`E = e^{F\tau}`,
        :math:`X = I + Q_0^\top GQ_0`, :math:`\dot G = E^2`); width one
        :math:`Q = EQ_0x^{-1/2}`; the decoupled factors and their per-mode flows [SMG];
        Kunin's :math:`\nu(\tau)` [K].
        """
        E, F, Q0, Q0t, Xi, X, G = _nc("E F Q0 Q0t Xi X G")
        tau = sp.Symbol("tau", nonnegative=True)
        (W1, W2, Sig), rules = self._decoupled_solution()
        A, B = list(rules)
        _, _, _, _, _, nu = self._kunin_nu()
        x = sp.Symbol("x", positive=True)
        d = sp.Symbol
        return [
            sp.Eq(E, sp.exp(F * tau), evaluate=False),
            sp.Eq(Xi, X ** -1, evaluate=False),
            sp.Eq(X, 1 + Q0t * G * Q0, evaluate=False),
            sp.Eq(d("P"), self._riccati_P(), evaluate=False),
            sp.Eq(x, 1 + Q0t * G * Q0, evaluate=False),
            sp.Eq(d("Q"), self._width_one_Q(), evaluate=False),
            sp.Eq(d("W_1"), W1, evaluate=False),
            sp.Eq(d("W_2"), W2, evaluate=False),
            sp.Eq(d("\\Sigma_{yx}"), Sig, evaluate=False),
            sp.Eq(d("\\dot A"), rules[A], evaluate=False),
            sp.Eq(d("\\dot B"), rules[B], evaluate=False),
            sp.Eq(sp.Function("nu")(tau), nu, evaluate=False),
        ]
