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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import sympy as sp

from .flow import GradientFlow
from .indexed_flow import fresh_bound
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



@dataclass(frozen=True)
class ActivationNetwork:
    r"""A network whose loss holds an abstract activation :math:`\sigma` (the two-layer
    network, the CNN): one derivation serves every activation, and the right-hand sides,
    at free indices, are lowered by the family's registered numerics (kinks included).

    ``params``: the parameter bases in state order; ``free``: each base -> its entry at
    the free indices (``a[j]``, ``W[j, r]``); ``collapse``: how the Kronecker deltas of
    the reductions collapse (which reductions stay, e.g. the sample one); ``loss_note``,
    ``flow_note``: the derivation's justifications. Every rate is 1:
    :math:`\dot\theta = -\partial L/\partial\theta`. Its notation
    (:class:`~exactdyn.symbolic.flow.Notation`) is ``"activation"``.
    """

    name: str
    params: tuple
    free: dict
    loss: sp.Expr
    observables: dict
    collapse: Callable
    loss_note: str
    flow_note: str
    index_kinds: dict = field(default_factory=dict)
    citation: str = ""

    notation: ClassVar[str] = "activation"

    @property
    def rates(self) -> dict:
        """Every rate is 1."""
        return {b: sp.S.One for b in self.params}

    @property
    def hyper(self) -> dict:
        return {"alpha": ALPHA}

    @property
    def forward(self) -> sp.Expr:
        return self.observables["output"]

    def derive(self) -> GradientFlow:
        r""":math:`\dot\theta = -\partial L/\partial\theta` at the free indices, σ' named
        ``dsigma`` (:func:`gradient_steps`); conserved quantities hold for some activations
        only, so each model proves its own (``conservation_proven``)."""
        rhs, steps = gradient_steps(self.loss, [(b, self.free[b]) for b in self.params],
                                    self.collapse, self.loss_note, self.flow_note)
        return GradientFlow(self, rhs, [], steps)

    def rate_of(self, base: sp.IndexedBase) -> sp.Expr:
        r""":math:`\dot\theta`, the left-hand side of ``base``'s equation (as the reports
        print it)."""
        return sp.Symbol(f"\\dot{{{base.name}}}")

    def derivative_along(self, expr: sp.Expr, rhs: dict) -> sp.Expr:
        r"""Derivative of ``expr`` along the flow ``rhs``: each entry of a parameter moved
        by its right-hand side at that entry's indices, chain rule through the reductions
        and σ, σ' (named ``dsigma``, ``d2sigma``)."""
        eps = sp.Dummy("epsilon")
        moved = {}
        for x in sp.sympify(expr).atoms(sp.Indexed):
            if x.base in rhs:
                at = dict(zip(self.free[x.base].indices, x.indices))
                moved[x] = x + eps * fresh_bound(rhs[x.base]).xreplace(at)
        d = sp.diff(sp.sympify(expr).xreplace(moved), eps).subs(eps, 0)
        return name_second_derivative(d)


#: The two-layer network's flow is a :class:`~exactdyn.symbolic.flow.GradientFlow` of an
#: :class:`ActivationNetwork` (the old name, kept for code that imports it).
TwoLayerFlow = GradientFlow

_FLOW: list = []


def two_layer_network() -> ActivationNetwork:
    """The two-layer network with an abstract activation (module docstring)."""
    return ActivationNetwork(
        name="two_layer", params=(A, W), free={A: A[J], W: W[J, R]}, loss=loss(),
        observables={"output": output(I), "loss": loss()}, collapse=_collapse,
        loss_note="Mean squared error over the n samples, f = (1/α) Σ_k a_k σ(w_k·x).",
        flow_note="−∂L/∂θ; the derivative of the neuron and feature reductions gives "
        "Kronecker deltas, Σ_k δ_jk g_k = g_j; the sample reduction stays explicit.",
        index_kinds=INDEX_KINDS,
        citation="Luo, Xu, Ma, Zhang, Phase diagram for two-layer ReLU neural networks at "
        "infinite-width limit, JMLR 22 (2021) 71.")


def derive_two_layer_flow() -> GradientFlow:
    """Differentiate :func:`loss` (derived once per process)."""
    if _FLOW:
        return _FLOW[0]
    flow = two_layer_network().derive()
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


# ---- the modified flow of gradient descent ------------------------------------------------

#: :math:`\sigma''` (the derivative of ``dsigma``), abstract like σ and σ'.
D2SIGMA = sp.Function("d2sigma")
#: The direction of the directional derivative :math:`f'f`: the gradient flow's right-hand
#: sides as arrays (``fa[k]``, ``fW[k, l]``), and the derivatives of the preactivations and
#: residuals along it (``dh[k, i]``, ``de[i]``), named so that they lower to arrays.
FA = sp.IndexedBase("fa")
FW = sp.IndexedBase("fW")
DH = sp.IndexedBase("\\delta h")
DE = sp.IndexedBase("\\delta e")
#: The preactivations and residuals, named in the report's modified equations.
H = sp.IndexedBase("h")
E = sp.IndexedBase("e")
#: How the report prints the direction.
DISPLAY = {FA: sp.IndexedBase("f^{a}"), FW: sp.IndexedBase("f^{W}")}


def name_second_derivative(expr: sp.Expr) -> sp.Expr:
    """``Subs(Derivative(dsigma(_x), _x), _x, h)`` -> ``d2sigma(h)`` (and σ' as
    :func:`name_derivative`)."""
    expr = expr.replace(lambda e: isinstance(e, sp.Subs) and e.expr.has(DSIGMA),
                        lambda s: D2SIGMA(s.point[0]))
    return name_derivative(expr)


def split_sums(expr: sp.Expr) -> sp.Expr:
    r"""Every reduction whose summand is a sum of product-rule terms (those holding ``fa``
    or ``fW``) split into one reduction per term, with the factors free of the summation
    index pulled out: :math:`\sum_i (u_i + v_i)c = c\sum_i u_i + c\sum_i v_i`, so that each
    lowers to one matrix product (the residual :math:`e_i`, an addition without the
    direction, stays one factor, computed once)."""
    if isinstance(expr, sp.Sum):
        bound = {lim[0] for lim in expr.limits}
        out = sp.S.Zero
        for term in _product_rule_terms(split_sums(expr.function)):
            inside = [f for f in sp.Mul.make_args(term) if bound & f.free_symbols]
            outside = [f for f in sp.Mul.make_args(term) if not bound & f.free_symbols]
            out += sp.Mul(*outside) * sp.Sum(sp.Mul(*inside), *expr.limits)
        return out
    if expr.args and not isinstance(expr, (sp.Indexed, sp.Subs)):
        return expr.func(*[split_sums(a) for a in expr.args])
    return expr


def _product_rule_terms(expr: sp.Expr) -> list:
    def directional(e):
        return any(x.base in (FA, FW) for x in e.atoms(sp.Indexed))

    if isinstance(expr, sp.Add):
        return [t for a in expr.args for t in _product_rule_terms(a)]
    if isinstance(expr, sp.Mul):
        for n, f in enumerate(expr.args):
            if isinstance(f, sp.Add) and directional(f):
                rest = expr.args[:n] + expr.args[n + 1:]
                return [t for a in f.args for t in _product_rule_terms(sp.Mul(a, *rest))]
    return [expr]


def directional_derivative(expr: sp.Expr) -> sp.Expr:
    r"""The derivative of ``expr`` (in :math:`a_k`, :math:`W_{kl}`) along the direction
    :math:`(f^a, f^W)`: :math:`\frac{d}{d\epsilon}\big|_0` of ``expr`` at
    :math:`a + \epsilon f^a`, :math:`W + \epsilon f^W`, chain rule through the reductions
    and σ, σ' (named ``dsigma``, ``d2sigma``), reductions split over the product rule."""
    eps = sp.Dummy("epsilon")
    moved = {}
    for x in expr.atoms(sp.Indexed):
        if x.base == A:
            moved[x] = x + eps * FA[x.indices]
        elif x.base == W:
            moved[x] = x + eps * FW[x.indices]
    d = sp.diff(expr.xreplace(moved), eps).subs(eps, 0)
    return split_sums(name_second_derivative(d))


@dataclass
class TwoLayerModified:
    r"""The modified flow of the two-layer network,
    :math:`\dot\theta = f - \tfrac h2 f'f` per neuron (module docstring of
    :mod:`exactdyn.symbolic.modified`).

    ``correction``: base -> :math:`f'f` at the free indices, in the state and the direction
    arrays :data:`FA`, :data:`FW` (which the lowering sets to the flow's right-hand side),
    reductions split so that each is one matrix product; ``named``: the same through
    :math:`h_{ji}, e_i` and their derivatives :math:`\delta h_{ji}, \delta e_i` along the
    flow (``definitions``); ``proven``: substituting the definitions into ``named`` gives
    ``correction`` exactly; ``steps``: the report's derivation."""

    flow: GradientFlow
    correction: dict
    named: dict
    definitions: dict
    steps: list = field(default_factory=list)
    proven: bool = False


_MODIFIED: list = []


def derive_two_layer_modified() -> TwoLayerModified:
    r"""Derive :math:`f'f` for the two-layer network (once per process).

    With :math:`f^a_j = -\frac1{\alpha n}\sum_i e_i\sigma(h_{ji})` and
    :math:`f^W_{jr} = -\frac{a_j}{\alpha n}\sum_i e_i\sigma'(h_{ji})X_{ir}` (the derived
    flow), the derivative along :math:`f` follows from those of the preactivations and
    residuals, :math:`\delta h_{ki} = \sum_l f^W_{kl}X_{il}` and
    :math:`\delta e_i = \frac1\alpha\sum_k\big(f^a_k\sigma(h_{ki}) + a_k\sigma'(h_{ki})\,
    \delta h_{ki}\big)`:

    .. math::

        (f'f)^a_j = -\frac1{\alpha n}\sum_i\big(\delta e_i\,\sigma(h_{ji})
                    + e_i\,\sigma'(h_{ji})\,\delta h_{ji}\big),\\
        (f'f)^W_{jr} = -\frac1{\alpha n}\sum_i\big(f^a_j e_i\sigma'(h_{ji})
                    + a_j\,\delta e_i\,\sigma'(h_{ji}) + a_j e_i\,\sigma''(h_{ji})\,
                    \delta h_{ji}\big)X_{ir},

    and :math:`\dot\theta = f - \tfrac h2 f'f` is the modified equation of gradient
    descent (Barrett & Dherin, "Implicit gradient regularization", ICLR 2021; Hairer,
    Lubich, Wanner, *Geometric Numerical Integration*, 2006, §IX.1). The lowered form
    (``correction``) differentiates the flow's own right-hand side, reductions and all;
    the named form differentiates it through :math:`e, h` (chain rule), and the two are
    checked equal by substitution.
    """
    if _MODIFIED:
        return _MODIFIED[0]
    from .flow import DerivationStep
    from .modified import LR, per_neuron_modified_loss

    flow = derive_two_layer_flow()
    correction = {b: directional_derivative(flow.rhs[b]) for b in (A, W)}
    residual = output(I) - YS[I]
    pre = {k: preactivation(k, I) for k in (J, K)}
    defs = {H[J, I]: pre[J], E[I]: residual}
    dh = {k: sp.Sum(FW[k, L_] * XS[I, L_], (L_, 0, D - 1)) for k in (J, K)}
    de = sp.Sum(FA[K] * SIGMA(pre[K]) + A[K] * DSIGMA(pre[K]) * DH[K, I],
                (K, 0, M - 1)) / ALPHA
    # the flow through e and h, differentiated by the chain rule
    eps = sp.Dummy("epsilon")
    named = {}
    for b in (A, W):
        abstract = flow.rhs[b].xreplace({residual: E[I]}).xreplace({pre[J]: H[J, I]})
        moved = abstract.xreplace({E[I]: E[I] + eps * DE[I], H[J, I]: H[J, I] + eps * DH[J, I],
                                   A[J]: A[J] + eps * FA[J]})
        named[b] = sp.factor_terms(name_second_derivative(
            sp.diff(moved, eps).subs(eps, 0)))
    definitions = {**defs, DH[J, I]: dh[J], DE[I]: de}

    def back(e):
        e = e.xreplace({DE[I]: de}).xreplace({DH[k, I]: dh[k] for k in (J, K)})
        return e.xreplace({E[I]: residual, H[J, I]: pre[J]})

    proven = all(sp.expand(split_sums(back(named[b])) - correction[b]) == 0
                 for b in (A, W))
    h = LR
    Lt = per_neuron_modified_loss(flow, {A: [(J, M - 1)], W: [(R, D - 1), (J, M - 1)]}, h)
    steps = [DerivationStep(
        "Modified loss", sp.Eq(sp.Symbol("\\tilde L"), Lt, evaluate=False),
        "Backward error analysis of θ_{k+1} = θ_k − h grad L (every rate 1): the step "
        "agrees to O(h^3) with the gradient flow of the modified loss "
        "L + (h/4) Σ_θ (∂L/∂θ)², with ∂L/∂θ = −θ' from the derived flow above.",
        proven=None)]
    shown = {**definitions, E[I]: residual.xreplace({pre[K]: H[K, I]}),
             DE[I]: de.xreplace({pre[K]: H[K, I]})}
    for lhs, title, note in (
            (H[J, I], "h", "The preactivation of neuron j on sample i."),
            (E[I], "e", "The residual f(x_i) − y_i."),
            (DH[J, I], "δh", "The derivative of h_ji along the gradient flow, W -> W + ε f^W, "
                             "with f^a_j, f^W_jr the right-hand sides of da_j/dt and "
                             "dW_jr/dt above."),
            (DE[I], "δe", "The derivative of e_i along the gradient flow, a -> a + ε f^a and "
                          "W -> W + ε f^W (chain rule; σ' is dsigma, abstract like σ).")):
        steps.append(DerivationStep(
            f"Definition of {title}",
            sp.Eq(lhs, shown[lhs].xreplace(DISPLAY), evaluate=False), note, proven=None))
    for b, name, idx in ((A, "a", "j"), (W, "W", "jr")):
        rhs = flow.rhs[b].xreplace({residual: E[I]}).xreplace({pre[J]: H[J, I]})
        steps.append(DerivationStep(
            f"Modified flow of {name}",
            sp.Eq(sp.Symbol(f"\\dot{{{name}}}_{{{idx}}}"),
                  (rhs - h / 2 * named[b]).xreplace(DISPLAY), evaluate=False),
            modified_flow_note("matrix products", proven), proven=proven))
    out = TwoLayerModified(flow, correction, named, definitions, steps, proven)
    _MODIFIED.append(out)
    return out


def modified_flow_note(lowered_to: str, proven: bool) -> str:
    """The report's note on a two-layer or CNN modified equation (``lowered_to``: what the
    reductions are lowered to)."""
    if not proven:
        return "f − (h/2) f'f (the named form was NOT checked)."
    return ("f − (h/2) f'f = −grad of the modified loss (Hess L grad L = −f'f, every rate 1), "
            "f'f the derivative of the gradient flow's right-hand side along itself, by the "
            "chain rule through e and h (d2sigma = σ'', 0 on each activation region of "
            "ReLU). Checked: substituting the definitions above gives exactly (sympy) the "
            "derivative of the flow's own right-hand side, reductions and all, which exactdyn "
            f"lowers to {lowered_to} for solve(model, t, lr=h).")
