r"""The gradient flow of a two-layer convolutional network, derived per kernel and per patch.

With the patches of image :math:`i` flattened, :math:`X_{ikl} = x_{i,\,u+p,\,v+q,\,c}`
for position :math:`k = (u, v)` and patch coordinate :math:`l = (p, q, c)` (stride 1),
and one kernel :math:`W_{\cdot\beta}` per output channel :math:`\beta`:

.. math::

    h_{ik\beta} = \sum_{l=0}^{D-1} W_{l\beta}X_{ikl},\qquad
    f(x_i) = \frac1\alpha\sum_{k=0}^{P-1}\sum_{\beta=0}^{M-1} a_{k\beta}\,\sigma(h_{ik\beta}),
    \qquad L = \frac1{2n}\sum_{i=0}^{n-1}\big(f(x_i) - y_i\big)^2,

(:math:`D = s^2C` entries per patch, :math:`P = H'W'` positions; MATH.md §5 with
:math:`\alpha = 1`). :math:`\sigma` is an undefined function, so one derivation serves
every activation. The derivatives of the reductions over kernels, positions and patch
entries give Kronecker deltas that collapse; the weight sharing of the convolution
leaves the reduction over positions explicit in the kernel's flow:

.. math::

    \dot a_{k\beta} = -\frac1{\alpha n}\sum_i e_i\,\sigma(h_{ik\beta}),\qquad
    \dot W_{l\beta} = -\frac1{\alpha n}\sum_i\sum_k e_i\,a_{k\beta}\,
        \sigma'(h_{ik\beta})X_{ikl},\qquad e_i = f(x_i) - y_i.

For positively 1-homogeneous :math:`\sigma` (:math:`h\sigma'(h) = \sigma(h)`), the
per-channel balance :math:`\sum_k a_{k\beta}^2 - \|W_{\cdot\beta}\|^2` is conserved even
with weight sharing; :func:`prove_channel_balance` proves it from the derived right-hand
sides. Zhou, Zhou, Li, Xu, "Understanding the initial condensation of convolutional
neural networks" (arXiv:2305.09947).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .flow import GradientFlow
from .twolayer import DSIGMA, SIGMA, ActivationNetwork

#: Index symbols: samples (i), positions (k summed, q free), patch entries (l summed,
#: r free), output channels (gamma summed, beta free).
I = sp.Symbol("i", integer=True)
K, Q = sp.symbols("k q", integer=True)
L_, R = sp.symbols("l r", integer=True)
G, B = sp.symbols("gamma beta", integer=True)
N, P, D, M = sp.symbols("n P D M", integer=True, positive=True)
ALPHA = sp.Symbol("alpha", positive=True)
A = sp.IndexedBase("a")
W = sp.IndexedBase("W")
XS = sp.IndexedBase("X")
YS = sp.IndexedBase("y")
INDEX_KINDS = {I: "sample", K: "position", Q: "position", L_: "patch", R: "patch",
               G: "channel", B: "channel"}
#: Canonical axis order of every lowered array.
KIND_ORDER = ("sample", "position", "patch", "channel")


def preactivation(i=I, k=K, beta=G) -> sp.Expr:
    r""":math:`h_{ik\beta} = \sum_l W_{l\beta}X_{ikl}` (one kernel on one patch)."""
    return sp.Sum(W[L_, beta] * XS[i, k, L_], (L_, 0, D - 1))


def output(i=I) -> sp.Expr:
    r""":math:`f(x_i) = \frac1\alpha\sum_{k,\beta} a_{k\beta}\sigma(h_{ik\beta})`."""
    return sp.Sum(A[K, G] * SIGMA(preactivation(i, K, G)), (G, 0, M - 1), (K, 0, P - 1)) / ALPHA


def loss() -> sp.Expr:
    return sp.Sum((output(I) - YS[I]) ** 2, (I, 0, N - 1)) / (2 * N)


def _collapse_one(s: sp.Sum) -> sp.Expr:
    r""":math:`\sum_j \delta_{jq} g_j = g_q` for every limit of ``s`` whose index has a
    Kronecker delta in the (single-term) summand; the other limits stay."""
    body = sp.expand(s.function)
    if not isinstance(body, sp.Mul) and not isinstance(body, sp.KroneckerDelta):
        return s
    limits = list(s.limits)
    changed = True
    while changed:
        changed = False
        for lim in limits:
            idx = lim[0]
            deltas = [f for f in sp.Mul.make_args(body)
                      if isinstance(f, sp.KroneckerDelta) and idx in f.free_symbols]
            if deltas:
                d = deltas[0]
                other = d.args[1] if d.args[0] == idx else d.args[0]
                body = (body / d).xreplace({idx: other})
                limits.remove(lim)
                changed = True
                break
    if len(limits) == len(s.limits):
        return s
    return sp.Sum(body, *limits) if limits else body


def collapse(expr: sp.Expr) -> sp.Expr:
    """Collapse the Kronecker deltas of every reduction in ``expr`` (innermost first)."""
    return expr.replace(lambda e: isinstance(e, sp.Sum), _collapse_one)


def merge_sums(expr: sp.Expr) -> sp.Expr:
    r""":math:`\sum_i c_i \sum_k g_{ik} = \sum_{i,k} c_i g_{ik}` (finite sums; ``c`` free
    of ``k``), so a reduction over samples and positions becomes one contraction."""

    def one(s: sp.Sum) -> sp.Expr:
        factors = sp.Mul.make_args(s.function)
        inner = [f for f in factors if isinstance(f, sp.Sum)]
        if len(inner) != 1:
            return s
        (sub,) = inner
        rest = sp.Mul(*[f for f in factors if f is not sub])
        if {lim[0] for lim in sub.limits} & rest.free_symbols:
            return s
        return sp.Sum(rest * sub.function, *sub.limits, *s.limits)

    return expr.replace(lambda e: isinstance(e, sp.Sum), one)


#: The CNN's flow is a :class:`~exactdyn.symbolic.flow.GradientFlow` of an
#: :class:`~exactdyn.symbolic.twolayer.ActivationNetwork` (the old name, kept for code that
#: imports it).
CNNFlow = GradientFlow

_FLOW: list = []


def cnn_network() -> ActivationNetwork:
    """The two-layer CNN with an abstract activation (module docstring)."""
    return ActivationNetwork(
        name="cnn", params=(A, W), free={A: A[Q, B], W: W[R, B]}, loss=loss(),
        observables={"output": output(I), "loss": loss()}, collapse=collapse,
        loss_note="Mean squared error over the n images; f sums the readout a_{kβ} times σ "
        "of kernel β applied to the patch at position k.",
        flow_note="−∂L/∂θ; the reductions over kernels, positions and patch entries give "
        "Kronecker deltas that collapse; for the kernel the reduction over positions stays "
        "(weight sharing).",
        index_kinds=INDEX_KINDS,
        citation="Zhou, Zhou, Li, Xu, Understanding the initial condensation of "
        "convolutional neural networks, arXiv:2305.09947.")


def derive_cnn_flow() -> GradientFlow:
    """Differentiate :func:`loss` (derived once per process)."""
    if _FLOW:
        return _FLOW[0]
    flow = cnn_network().derive()
    _FLOW.append(flow)
    return flow


def prove_channel_balance(act_expr: sp.Expr, x: sp.Symbol) -> bool:
    r"""Prove :math:`\frac{d}{dt}\big(\sum_q a_{q\beta}^2 - \sum_r W_{r\beta}^2\big) = 0`
    along the derived flow for the activation ``act_expr`` (an expression in ``x``).

    From the derived right-hand sides, :math:`\dot a_{q\beta} = c_a\sum_i g_{iq\beta}` and
    :math:`\dot W_{r\beta} = c_w\sum_{i,k} G_{ik\beta}X_{ikr}` with :math:`G` free of
    :math:`r`, so (exchanging finite sums)
    :math:`\sum_r W_{r\beta}\dot W_{r\beta} = c_w\sum_{i,k}G_{ik\beta}h_{ik\beta}` and
    :math:`\dot Q_\beta = 2\sum_{i,k}\big(c_a a_{k\beta}g_{ik\beta} -
    c_w G_{ik\beta}h_{ik\beta}\big)`. The summand, with :math:`\sigma` replaced by the
    activation, vanishes identically iff :math:`h\sigma'(h) = \sigma(h)`. Weight sharing
    does not break the law: the position sum of the kernel's flow pairs term by term with
    the readouts of those positions.
    """
    flow = derive_cnn_flow()
    h = sp.Symbol("h", real=True)
    ra, rw = merge_sums(flow.rhs[A]), merge_sums(flow.rhs[W])
    (sa,) = [s for s in sp.Mul.make_args(ra) if isinstance(s, sp.Sum)]
    (sw,) = [s for s in sp.Mul.make_args(rw) if isinstance(s, sp.Sum)]
    if {lim[0] for lim in sa.limits} != {I} or {lim[0] for lim in sw.limits} != {I, K}:
        return False
    ca, cw = ra / sa, rw / sw
    factors = sp.Mul.make_args(sw.function)
    rest = [f for f in factors if f != XS[I, K, R]]
    if len(rest) != len(factors) - 1 or any(R in f.free_symbols for f in rest):
        return False
    # Σ_q a_qβ ȧ_qβ: rename the free position q to the summed k of the kernel's flow.
    g_a = sa.function.xreplace({Q: K})
    summand = 2 * A[K, B] * ca * g_a - 2 * cw * sp.Mul(*rest) * preactivation(I, K, B)
    summand = summand.xreplace({preactivation(I, K, B): h})
    summand = summand.replace(lambda e: isinstance(e, sp.Function) and e.func == DSIGMA,
                              lambda e: sp.diff(act_expr, x).subs(x, e.args[0]))
    summand = summand.replace(lambda e: isinstance(e, sp.Function) and e.func == SIGMA,
                              lambda e: act_expr.subs(x, e.args[0]))
    return bool(sp.simplify(sp.piecewise_fold(sp.expand(summand))) == 0)


# ---- the modified flow of gradient descent ------------------------------------------------

@dataclass
class CNNModified:
    r"""The modified flow :math:`\dot\theta = f - \tfrac h2 f'f` of the CNN, as
    :class:`~exactdyn.symbolic.twolayer.TwoLayerModified`: ``correction`` (lowered),
    ``named`` (through :math:`h_{ik\beta}, e_i, \delta h_{ik\beta}, \delta e_i`),
    ``definitions``, ``steps``, ``proven``."""

    flow: GradientFlow
    correction: dict
    named: dict
    definitions: dict
    steps: list
    proven: bool


_MODIFIED: list = []


def derive_cnn_modified() -> CNNModified:
    r"""Derive :math:`f'f` for the CNN (once per process), as for the two-layer network
    (:func:`~exactdyn.symbolic.twolayer.derive_two_layer_modified`): with
    :math:`\delta h_{ik\gamma} = \sum_l f^W_{l\gamma}X_{ikl}` and
    :math:`\delta e_i = \frac1\alpha\sum_{k,\gamma}\big(f^a_{k\gamma}\sigma(h_{ik\gamma})
    + a_{k\gamma}\sigma'(h_{ik\gamma})\,\delta h_{ik\gamma}\big)`,

    .. math::

        (f'f)^a_{q\beta} = -\frac1{\alpha n}\sum_i\big(\delta e_i\,\sigma(h_{iq\beta})
            + e_i\,\sigma'(h_{iq\beta})\,\delta h_{iq\beta}\big),\\
        (f'f)^W_{r\beta} = -\frac1{\alpha n}\sum_{i,k}\big(\delta e_i\,a_{k\beta}
            \sigma'(h_{ik\beta}) + e_i f^a_{k\beta}\sigma'(h_{ik\beta})
            + e_i a_{k\beta}\sigma''(h_{ik\beta})\,\delta h_{ik\beta}\big)X_{ikr},

    the modified equation :math:`f - \tfrac h2 f'f` of gradient descent (Barrett &
    Dherin, "Implicit gradient regularization", ICLR 2021; Zhou et al., arXiv:2305.09947
    for the network). The lowered form differentiates the flow's right-hand side with
    its reductions over samples and positions merged (:func:`merge_sums`), and is not
    merged again: the derivative of :math:`e_i` is a reduction over kernels and positions
    of its own (same kinds as the free indices), one array over samples."""
    if _MODIFIED:
        return _MODIFIED[0]
    from .flow import DerivationStep
    from .modified import LR, per_neuron_modified_loss
    from .twolayer import (
        DE,
        DH,
        DISPLAY,
        FA,
        FW,
        E,
        H,
        directional_derivative,
        modified_flow_note,
        name_second_derivative,
        split_sums,
    )

    flow = derive_cnn_flow()
    merged = {b: merge_sums(flow.rhs[b]) for b in (A, W)}
    correction = {b: directional_derivative(merged[b]) for b in (A, W)}
    residual = output(I) - YS[I]
    pre = {(k, g): preactivation(I, k, g) for k in (K, Q) for g in (G, B)}
    dh = {(k, g): sp.Sum(FW[L_, g] * XS[I, k, L_], (L_, 0, D - 1)) for k in (K, Q)
          for g in (G, B)}
    de = sp.Sum(FA[K, G] * SIGMA(pre[K, G]) + A[K, G] * DSIGMA(pre[K, G]) * DH[I, K, G],
                (G, 0, M - 1), (K, 0, P - 1)) / ALPHA
    eps = sp.Dummy("epsilon")
    named = {}
    for b in (A, W):
        abstract = merged[b].xreplace({residual: E[I]}).xreplace(
            {pre[k, B]: H[I, k, B] for k in (K, Q)})
        moved = abstract.xreplace({E[I]: E[I] + eps * DE[I],
                                   **{H[I, k, B]: H[I, k, B] + eps * DH[I, k, B]
                                      for k in (K, Q)},
                                   A[K, B]: A[K, B] + eps * FA[K, B]})
        named[b] = sp.factor_terms(name_second_derivative(sp.diff(moved, eps).subs(eps, 0)))

    def back(e):
        e = e.xreplace({DE[I]: de}).xreplace({DH[I, k, g]: dh[k, g] for k, g in dh})
        return e.xreplace({E[I]: residual}).xreplace({H[I, k, g]: pre[k, g] for k, g in pre})

    proven = all(sp.expand(split_sums(back(named[b])) - correction[b]) == 0
                 for b in (A, W))
    definitions = {H[I, K, G]: pre[K, G], E[I]: residual, DH[I, K, G]: dh[K, G], DE[I]: de}
    shown = {**definitions, E[I]: residual.xreplace({pre[K, G]: H[I, K, G]}),
             DE[I]: de.xreplace({pre[K, G]: H[I, K, G]})}
    h = LR
    Lt = per_neuron_modified_loss(flow, {A: [(Q, P - 1), (B, M - 1)],
                                         W: [(R, D - 1), (B, M - 1)]}, h)
    steps = [DerivationStep(
        "Modified loss", sp.Eq(sp.Symbol("\\tilde L"), Lt, evaluate=False),
        "Backward error analysis of θ_{k+1} = θ_k − h grad L (every rate 1): the step "
        "agrees to O(h^3) with the gradient flow of the modified loss "
        "L + (h/4) Σ_θ (∂L/∂θ)², with ∂L/∂θ = −θ' from the derived flow above.",
        proven=None)]
    for lhs, title, note in (
            (H[I, K, G], "h", "The preactivation of kernel γ on the patch at position k of "
                              "image i."),
            (E[I], "e", "The residual f(x_i) − y_i."),
            (DH[I, K, G], "δh", "The derivative of h_ikγ along the gradient flow, "
                                "W -> W + ε f^W, with f^a_qβ, f^W_rβ the right-hand sides of "
                                "da_qβ/dt and dW_rβ/dt above."),
            (DE[I], "δe", "The derivative of e_i along the gradient flow, a -> a + ε f^a "
                          "and W -> W + ε f^W (chain rule; σ' is dsigma, abstract like σ).")):
        steps.append(DerivationStep(
            f"Definition of {title}",
            sp.Eq(lhs, shown[lhs].xreplace(DISPLAY), evaluate=False), note, proven=None))
    for b, name, idx in ((A, "a", "q\\beta"), (W, "W", "r\\beta")):
        rhs = merged[b].xreplace({residual: E[I]}).xreplace(
            {pre[k, B]: H[I, k, B] for k in (K, Q)})
        steps.append(DerivationStep(
            f"Modified flow of {name}",
            sp.Eq(sp.Symbol(f"\\dot{{{name}}}_{{{idx}}}"),
                  (rhs - h / 2 * named[b]).xreplace(DISPLAY), evaluate=False),
            modified_flow_note("tensor contractions", proven), proven=proven))
    out = CNNModified(flow, correction, named, definitions, steps, proven)
    _MODIFIED.append(out)
    return out
