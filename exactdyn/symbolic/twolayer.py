r"""The gradient flow of a two-layer network, derived per neuron and per sample.

.. math::

    f(x_i) = \frac1\alpha\sum_{k=0}^{m-1} a_k\,\sigma\Big(\sum_{l=0}^{d-1} W_{kl}X_{il}\Big),
    \qquad L = \frac1{2n}\sum_{i=0}^{n-1}\big(f(x_i) - y_i\big)^2,

with :math:`\sigma` an undefined function, so one derivation serves every activation.
Differentiating :math:`L` with respect to :math:`a_j` and :math:`W_{jr}` gives sums of
Kronecker deltas over neurons and features, which collapse; the reduction over samples
stays explicit:

.. math::

    \dot a_j = -\frac1{\alpha n}\sum_i e_i\,\sigma(h_{ji}),\qquad
    \dot W_{jr} = -\frac{a_j}{\alpha n}\sum_i e_i\,\sigma'(h_{ji})X_{ir},\qquad
    e_i = f(x_i) - y_i,\ h_{ji} = \textstyle\sum_l W_{jl}X_{il}

(MATH.md §4; Luo, Xu, Ma, Zhang, JMLR 22 (2021) 71). For positively 1-homogeneous
:math:`\sigma` (:math:`h\sigma'(h) = \sigma(h)`), :math:`a_j^2 - \|w_j\|^2` is conserved;
:func:`prove_balance` proves it from the derived right-hand sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .sums import collapse_deltas

#: Index symbols and their kinds: neurons (j free, k summed), samples (i), features
#: (r free, l summed).
J, K = sp.symbols("j k", integer=True)
I = sp.Symbol("i", integer=True)
R, L_ = sp.symbols("r l", integer=True)
M, N, D = sp.symbols("m n d", integer=True, positive=True)
ALPHA = sp.Symbol("alpha", positive=True)
A = sp.IndexedBase("a")
W = sp.IndexedBase("W")
XS = sp.IndexedBase("X")
YS = sp.IndexedBase("y")
SIGMA = sp.Function("sigma")
DSIGMA = sp.Function("dsigma")
INDEX_KINDS = {J: "neuron", K: "neuron", I: "sample", R: "feature", L_: "feature"}


def preactivation(k=K, i=I) -> sp.Expr:
    return sp.Sum(W[k, L_] * XS[i, L_], (L_, 0, D - 1))


def output(i=I) -> sp.Expr:
    r""":math:`f(x_i) = \frac1\alpha\sum_k a_k\sigma(h_{ki})`."""
    return sp.Sum(A[K] * SIGMA(preactivation(K, i)), (K, 0, M - 1)) / ALPHA


def loss() -> sp.Expr:
    return sp.Sum((output(I) - YS[I]) ** 2, (I, 0, N - 1)) / (2 * N)


def _collapse(expr: sp.Expr) -> sp.Expr:
    """Collapse only the reductions that carry a Kronecker delta of their own index
    (the sample reduction keeps its factored form e_i * ...)."""

    def one(s: sp.Sum) -> sp.Expr:
        (idx, _lo, _hi), = s.limits
        if any(idx in q.free_symbols for q in s.function.atoms(sp.KroneckerDelta)):
            return collapse_deltas(s)
        return s

    return expr.replace(lambda e: isinstance(e, sp.Sum), one)


def name_derivative(expr: sp.Expr) -> sp.Expr:
    """``Subs(Derivative(sigma(_x), _x), _x, h)`` -> ``dsigma(h)``."""
    return expr.replace(lambda e: isinstance(e, sp.Subs) and e.expr.has(SIGMA),
                        lambda s: DSIGMA(s.point[0]))


def gradient_steps(Ls: sp.Expr, params, collapse, loss_note: str, flow_note: str):
    r"""``(rhs, steps)``: :math:`\dot\theta = -\partial L/\partial\theta` for each
    ``(base, indexed element)`` of ``params``, with the Kronecker deltas of the reductions
    collapsed by ``collapse`` and σ' named ``dsigma``; the steps are the loss and one
    gradient-flow step per parameter (shared by the two-layer network and the CNN)."""
    from .flow import DerivationStep

    steps = [DerivationStep("Loss", sp.Eq(sp.Symbol("L"), Ls), loss_note)]
    rhs = {}
    for base, at in params:
        rhs[base] = -sp.factor_terms(name_derivative(collapse(sp.diff(Ls, at))))
        steps.append(DerivationStep(
            f"Gradient flow of {base.name}",
            sp.Eq(sp.Symbol(f"\\dot{{{base.name}}}"), rhs[base], evaluate=False), flow_note))
    return rhs, steps



@dataclass
class TwoLayerFlow:
    """The derived flow: right-hand sides at free indices (a: j; W: j, r) and observables."""

    rhs: dict
    observables: dict
    steps: list = field(default_factory=list)

    @property
    def conserved(self) -> list:
        """Conserved quantities hold for some activations only; each model proves its own
        (``conservation_proven``)."""
        return []

    def equations(self) -> list:
        """The flow as equations :math:`\\dot\\theta = \\ldots` at the free indices."""
        return [sp.Eq(sp.Symbol(f"\\dot{{{base.name}}}"), rhs, evaluate=False)
                for base, rhs in self.rhs.items()]


_FLOW: list = []


def derive_two_layer_flow() -> TwoLayerFlow:
    """Differentiate :func:`loss` (derived once per process)."""
    if _FLOW:
        return _FLOW[0]
    Ls = loss()
    rhs, steps = gradient_steps(
        Ls, ((A, A[J]), (W, W[J, R])), _collapse,
        "Mean squared error over the n samples, f = (1/α) Σ_k a_k σ(w_k·x).",
        "−∂L/∂θ; the derivative of the neuron and feature reductions gives Kronecker "
        "deltas, Σ_k δ_jk g_k = g_j; the sample reduction stays explicit.")
    obs = {"output": output(I), "loss": Ls}
    flow = TwoLayerFlow(rhs, obs, steps)
    _FLOW.append(flow)
    return flow


def prove_balance(act_expr: sp.Expr, x: sp.Symbol) -> bool:
    r"""Prove :math:`\frac{d}{dt}(a_j^2 - \sum_r W_{jr}^2) = 0` along the derived flow for
    the activation ``act_expr`` (an expression in ``x``).

    From the derived right-hand sides: :math:`\dot W_{jr} = c_j\sum_i g_{ji} X_{ir}` with
    :math:`g` free of :math:`r`, so :math:`\sum_r W_{jr}\dot W_{jr} = c_j\sum_i g_{ji}h_{ji}`
    (exchange of the finite sums). The per-sample summand of :math:`\dot Q_j` is then
    simplified with :math:`\sigma` replaced by the activation; it vanishes identically iff
    :math:`h\sigma'(h) = \sigma(h)`.
    """
    flow = derive_two_layer_flow()
    h = sp.Symbol("h", real=True)
    pre = preactivation(J, I)
    ra, rw = flow.rhs[A], flow.rhs[W]
    (sa,) = [s for s in sp.Mul.make_args(ra) if isinstance(s, sp.Sum)]
    (sw,) = [s for s in sp.Mul.make_args(rw) if isinstance(s, sp.Sum)]
    ca, cw = ra / sa, rw / sw
    body_w = sw.function
    factors = sp.Mul.make_args(body_w)
    rest = [f for f in factors if f != XS[I, R]]
    if len(rest) != len(factors) - 1 or any(R in f.free_symbols for f in rest):
        return False
    # body_w = g_ji * X_ir with g free of r, so Σ_r W_jr body_w = g_ji h_ji.
    summand = 2 * A[J] * ca * sa.function - 2 * cw * (body_w / XS[I, R]) * pre
    summand = summand.xreplace({pre: h})
    summand = summand.replace(lambda e: isinstance(e, sp.Function) and e.func == DSIGMA,
                              lambda e: sp.diff(act_expr, x).subs(x, e.args[0]))
    summand = summand.replace(lambda e: isinstance(e, sp.Function) and e.func == SIGMA,
                              lambda e: act_expr.subs(x, e.args[0]))
    return bool(sp.simplify(sp.piecewise_fold(sp.expand(summand))) == 0)
