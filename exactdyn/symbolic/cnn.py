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

from .twolayer import DSIGMA, SIGMA, TwoLayerFlow, gradient_steps

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


@dataclass
class CNNFlow(TwoLayerFlow):
    """The derived flow: right-hand sides at free indices (a: q, beta; W: r, beta),
    observables, and the derivation steps."""

    @property
    def state(self) -> tuple:
        return ("W", "a")


_FLOW: list = []


def derive_cnn_flow() -> CNNFlow:
    """Differentiate :func:`loss` (derived once per process)."""
    if _FLOW:
        return _FLOW[0]
    Ls = loss()
    rhs, steps = gradient_steps(
        Ls, ((A, A[Q, B]), (W, W[R, B])), collapse,
        "Mean squared error over the n images; f sums the readout a_{kβ} times σ of kernel "
        "β applied to the patch at position k.",
        "−∂L/∂θ; the reductions over kernels, positions and patch entries give Kronecker "
        "deltas that collapse; for the kernel the reduction over positions stays (weight "
        "sharing).")
    obs = {"output": output(I), "loss": Ls}
    flow = CNNFlow(rhs, obs, steps)
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
