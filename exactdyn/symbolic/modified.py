r"""The modified equation of gradient descent, derived symbolically (backward error analysis).

Gradient descent with layer rates :math:`H` and step :math:`h`,
:math:`\theta_{k+1} = \theta_k + h f(\theta_k)` with :math:`f = -H\nabla L`, follows to
second order in :math:`h` the flow :math:`\dot\theta = f + h f_1` whose one-step map agrees
with GD up to :math:`O(h^3)`: expanding the flow's step,
:math:`\theta(h) = \theta + h(f + hf_1) + \tfrac{h^2}{2}f'f + O(h^3)`, so
:math:`f_1 = -\tfrac12 f'f`. With :math:`f' = -H\nabla^2L`,

.. math:: f + hf_1 = -H\nabla L - \tfrac h2 H\nabla^2L\,H\nabla L = -H\nabla\tilde L,
   \qquad \tilde L = L + \tfrac h4\,\nabla L^\top H\,\nabla L
   = L + \tfrac h4\sum_\ell \eta_\ell \Big\lVert\frac{\partial L}{\partial\theta_\ell}\Big\rVert^2,

the modified loss (Barrett & Dherin, "Implicit gradient regularization", ICLR 2021, for one
rate; the rates enter as :math:`H` here). The global error of GD against the gradient flow
is :math:`O(h)` and against the modified flow :math:`O(h^2)` on a fixed time interval.

Per family:

- **indexed networks** (:class:`~exactdyn.symbolic.flow.SymbolicNetwork`): the modified
  loss is a new width-generic reduction :math:`\sum_b\eta_b\sum_j(\partial L/\partial b_j)^2`;
  its gradient flow is derived by :func:`~exactdyn.symbolic.flow.derive_gradient_flow` like
  any other, and proven equal to :math:`f - \tfrac h2 f'f` (the directional derivative of
  the flow along itself, chain rule through the reductions).
- **networks over several index kinds**
  (:class:`~exactdyn.symbolic.indexed_flow.IndexedGradientFlow`, a user's
  ``Network(..., indices=...)``): the penalty is
  :math:`\sum_b\eta_b\sum_{j\ldots}(\partial L/\partial b_{j\ldots})^2`, one reduction per
  index of the parameter over its gradient at the free indices (the gradient's own
  reductions renamed apart), recorded; the modified flow is :math:`f - \tfrac h2 f'f` by
  construction, as for matrix networks, with :math:`f'f` the first-order change of each
  right-hand side along :math:`\theta \mapsto \theta + \epsilon f(\theta)`, every parameter
  entry (free or bound by a reduction) moved by its own right-hand side. (Deriving the flow
  of :math:`\tilde L` as well and matching the two symbolically would need exchanging the
  order of nested reductions, which the canonical form of
  :mod:`~exactdyn.symbolic.indexed_flow` does not do; the tests check the identity
  numerically against finite differences of a hand-written loss and of GD steps.)
- **matrix networks** (sympy ``MatrixSymbol``): :math:`\tilde L = L + \tfrac h4\sum_\ell
  \eta_\ell\lVert\partial L/\partial W_\ell\rVert_F^2` is recorded, and the correction
  :math:`f'f` is derived in matrix form as the first-order change of each right-hand side
  along :math:`W \mapsto W + \epsilon f(W)` (structured products, lowered with ``@``).
- **the two-layer network and the CNN** (flows per neuron, per sample, per position):
  :math:`f'f` is the derivative of the derived right-hand side along
  :math:`\theta \mapsto \theta + \epsilon f`, chain rule through the reductions and
  σ, σ' (σ'' abstract too), in the direction arrays ``fa``, ``fW`` that the lowering sets
  to the flow itself; recorded through the preactivations and residuals and their
  derivatives along the flow (:func:`exactdyn.symbolic.twolayer.derive_two_layer_modified`,
  :func:`exactdyn.symbolic.cnn.derive_cnn_modified`; :func:`per_neuron_modified_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .flow import DerivationStep, GradientFlow, SymbolicNetwork, derive_gradient_flow
from .indexed_flow import gradient, tidy_sums
from .sums import NEURON_INDEX, SUM_INDEX, collapse_deltas, is_zero, normalize

#: The learning rate (step) of gradient descent.
LR = sp.Symbol("h", positive=True)


@dataclass
class ModifiedFlow:
    r"""The modified flow :math:`\dot\theta = f - \tfrac h2 f'f = -H\nabla\tilde L`.

    ``base`` is the gradient flow; ``correction`` maps each state variable to
    :math:`f'f` (the derivative of its right-hand side along the flow); for indexed
    networks ``flow`` is the gradient flow of :math:`\tilde L` derived from the loss itself
    (``None`` for matrix networks). ``proven``: the modified right-hand side was shown
    symbolically to equal :math:`f - \tfrac h2 f'f` (indexed) or is that expression by
    construction (matrix).
    """

    base: object
    modified_loss: sp.Basic
    correction: dict
    flow: object = None
    steps: list = field(default_factory=list)
    proven: bool = False
    lr: sp.Symbol = LR

    def markdown(self) -> str:
        """The derivation, step by step (Markdown with LaTeX), for reports and notebooks."""
        from .latex import steps_markdown

        status = "proven" if self.proven else "NOT proven"
        return ("**Modified flow of gradient descent** (backward error analysis, step h; "
                f"{status}).\n\n" + steps_markdown(self.steps))

    _repr_markdown_ = markdown

    def _repr_latex_(self) -> str:
        from .latex import steps_mathjax

        return steps_mathjax(self.steps)


def modified_loss(network: SymbolicNetwork, lr: sp.Symbol = LR) -> sp.Expr:
    r""":math:`\tilde L = L + \tfrac h4\sum_b\eta_b\sum_i(\partial L/\partial b_i)^2`,
    width-generic (the gradient at the free index becomes the summand of a new reduction)."""
    penalty = sp.S.Zero
    for base in network.params:
        grad = normalize(collapse_deltas(sp.diff(network.loss, base[NEURON_INDEX])))
        # Bound indices inside grad were renamed apart by normalize; the free neuron index
        # becomes the summation index of the new reduction.
        inner = {s: s.xreplace({SUM_INDEX: sp.Dummy("l", integer=True)})
                 for s in grad.atoms(sp.Sum)}
        summand = grad.xreplace(inner).xreplace({NEURON_INDEX: SUM_INDEX})
        hi = _width_of(network)
        penalty += network.rates[base] * normalize(sp.Sum(sp.expand(summand ** 2),
                                                          (SUM_INDEX, 0, hi)))
    return network.loss + lr / 4 * normalize(sp.expand(penalty))


def _width_of(network):
    for s in network.loss.atoms(sp.Sum):
        return s.limits[0][2]
    raise NotImplementedError(f"the loss of {network.name} has no neuron reduction")


_CACHE: dict = {}


def derive_modified_flow(flow) -> ModifiedFlow:
    """The modified flow of a derived gradient flow (indexed or matrix form), cached per
    flow object (flows are derived once per process and per family or user network; two
    user networks may share a name, so the name is no key)."""
    derivation = _BY_NOTATION.get(flow.notation)
    if derivation is None:
        raise NotImplementedError(
            f"the modified flow of a network in the {flow.notation!r} notation is not derived "
            "symbolically; solve(model, t, lr=h) takes f - (h/2) f'f with f'f the complex-step "
            "Jacobian-vector product of the lowered right-hand side (exact to rounding)")
    key = id(flow)
    if key not in _CACHE or _CACHE[key][0] is not flow:
        _CACHE[key] = (flow, derivation(flow))
    return _CACHE[key][1]


def _renamed_apart(expr: sp.Expr) -> sp.Expr:
    """``expr`` with the bound index of every reduction renamed to a new symbol of its own
    (same name, an integer), so that putting it under, or substituting an index into, a
    reduction over the same index kind captures nothing."""
    def one(s):
        # A new name too (k -> k2, printed k_2), so that the report does not show
        # Σ_k (... Σ_k ...) with two meanings of k.
        fresh = {lim[0]: sp.Dummy(f"{lim[0]}2", integer=True) for lim in s.limits}
        return sp.Sum(s.function.xreplace(fresh), *[(fresh[i], lo, hi) for i, lo, hi in s.limits])

    return expr.replace(lambda e: isinstance(e, sp.Sum), one)


def _multi_index(flow: GradientFlow) -> ModifiedFlow:
    """The modified flow of a network over several index kinds (module docstring)."""
    net = flow.network
    h = LR
    sizes = net.sizes
    penalty = sp.S.Zero
    for b in net.params:
        own = net.param_indices[b]
        # The gradient at the free indices (i', k') becomes the summand of a reduction
        # over the parameter's own indices (i, k).
        body = _renamed_apart(gradient(net, b)).xreplace(
            {net.free_index(ix): ix for ix in own}) ** 2
        for ix in reversed(own):
            body = sp.Sum(body, (ix, 0, sizes[ix] - 1))
        penalty += net.rates[b] * body
    Lt = net.loss + h / 4 * tidy_sums(penalty)
    steps = [DerivationStep(
        "Modified loss", sp.Eq(sp.Symbol("\\tilde L"), Lt, evaluate=False),
        "Backward error analysis of θ_{k+1} = θ_k − h H grad L: the step agrees to O(h^3) "
        "with the gradient flow θ' = −H grad of the modified loss L + (h/4) Σ_b η_b Σ over "
        "the indices of b of (∂L/∂b)^2 (one reduction per index of the parameter).",
        proven=None)]
    correction = {}
    eps = sp.Dummy("epsilon")
    for b in net.params:
        rhs = flow.rhs[b]
        moves = {}
        for e in rhs.atoms(sp.Indexed):
            if e.base in flow.rhs:
                free = [net.free_index(ix) for ix in net.param_indices[e.base]]
                along = _renamed_apart(flow.rhs[e.base]).xreplace(dict(zip(free, e.indices)))
                moves[e] = e + eps * along
        # Reductions split and constants pulled out (a sum over k of a k-free term is D
        # times it), as the derived flow's own right-hand sides are.
        correction[b] = tidy_sums(sp.diff(rhs.xreplace(moves), eps).subs(eps, 0))
        free = "".join(str(net.free_index(ix)) for ix in net.param_indices[b])
        steps.append(DerivationStep(
            f"Modified flow of {b.name}",
            sp.Eq(sp.Symbol(f"\\dot{{{b.name}}}_{{{free}}}"),
                  rhs - h / 2 * correction[b], evaluate=False),
            "f − (h/2) f'f = −H grad of the modified loss (the gradient of (1/2) grad Lᵀ H "
            "grad L is Hess L H grad L, and f'f = H Hess L H grad L); f'f is the first-order "
            f"change of the derived right-hand side at {free} along θ -> θ + ε f(θ), every "
            "parameter entry moved by its own right-hand side, inside the reductions too "
            "(chain rule)."))
    return ModifiedFlow(flow, Lt, correction, None, steps, True, h)


def _indexed(flow: GradientFlow) -> ModifiedFlow:
    net = flow.network
    h = LR
    Lt = modified_loss(net, h)
    steps = [DerivationStep(
        "Modified loss", sp.Eq(sp.Symbol("\\tilde L"), Lt, evaluate=False),
        "Backward error analysis of θ_{k+1} = θ_k − h H grad L: the step agrees to O(h^3) "
        "with the gradient flow θ' = −H grad of the modified loss L + (h/4) Σ_b η_b Σ_j "
        "(∂L/∂b_j)^2 (a new width-generic "
        "reduction).", proven=None)]
    mod_net = SymbolicNetwork(
        name=f"{net.name}_modified", params=net.params, rates=net.rates,
        hyper={**net.hyper, "lr": h}, forward=net.forward, loss=Lt,
        observables=net.observables, citation=net.citation)
    mflow = derive_gradient_flow(mod_net)
    correction = {}
    proven = True
    for b in net.params:
        correction[b] = flow.time_derivative(flow.rhs[b])
        ok = is_zero(mflow.rhs[b] - (flow.rhs[b] - h / 2 * correction[b]))
        proven = proven and ok
        steps.append(DerivationStep(
            f"Modified flow of {b.name}",
            sp.Eq(sp.Symbol(f"\\dot{{{b.name}}}_{{j}}"), mflow.rhs[b], evaluate=False),
            f"−η times the derivative of the modified loss in {b.name}_j; equal to "
            "f − (h/2) f'f with f'f = d/dt of the flow's own "
            "right-hand side along the flow (chain rule through the reductions): the "
            "difference simplifies to 0.", proven=ok))
    return ModifiedFlow(flow, Lt, correction, mflow, steps, proven, h)


def _matrix(flow) -> ModifiedFlow:
    from .matrix_flow import factor_sides, first_order, simplify_matrix

    h = LR
    params = flow.state
    rates = getattr(getattr(flow, "network", None), "rates", None) or {}
    loss = getattr(flow, "loss", None)
    if loss is None:
        loss = flow.network.loss
    # −η ∂L/∂W = rhs, so ∂L/∂W = −rhs/η and the penalty is Σ η ‖∂L/∂W‖²_F.
    grads = {W: (-flow.rhs[W] / rates.get(W, 1)).doit() for W in params}
    penalty = sp.Add(*[rates.get(W, 1) * sp.Trace(grads[W].T * grads[W]) for W in params])
    Lt = loss + h / 4 * penalty
    steps = [DerivationStep(
        "Modified loss", sp.Eq(sp.Symbol("\\tilde L"), Lt, evaluate=False),
        "Backward error analysis of W_{k+1} = W_k − h η ∂L/∂W: the step agrees to O(h^3) "
        "with the gradient flow dW_ℓ/dt = −η_ℓ ∂/∂W_ℓ of the modified loss "
        "L + (h/4) Σ_ℓ η_ℓ tr(G_ℓᵀ G_ℓ), G_ℓ = ∂L/∂W_ℓ = −(dW_ℓ/dt)/η_ℓ from the derived "
        "flow.")]
    eps = sp.Symbol("epsilon")
    sym = tuple(getattr(getattr(flow, "network", None), "symmetric", ())) + tuple(
        v for k, v in (getattr(flow, "hyper", None) or {}).items() if k == "Sigma_xx")
    correction = {}
    for W in params:
        moved = flow.rhs[W].xreplace({V: V + eps * flow.rhs[V] for V in params})
        correction[W] = _plain(factor_sides(simplify_matrix(first_order(moved, eps))), sym)
        steps.append(DerivationStep(
            f"Modified flow of {W.name}",
            sp.Eq(sp.Symbol(f"\\dot{{{W.name}}}"),
                  sp.MatAdd(flow.rhs[W], -h / 2 * correction[W]), evaluate=False),
            "f − (h/2) f'f = −η ∂/∂W of the modified loss (the gradient of (1/2) grad Lᵀ H "
            "grad L is Hess L H grad L); f'f is the first-order change of the right-hand "
            "side along W -> W + ε f(W), product rule in matrix "
            "form."))
    return ModifiedFlow(flow, Lt, correction, None, steps, True, h)


#: The modified flow's derivation for each notation of the network (the flow's
#: ``notation``); networks over several index kinds have none (see the message above).
_BY_NOTATION = {"indexed": _indexed, "multi_index": _multi_index, "matrix": _matrix,
                "chain": _matrix}


def _plain(expr, symmetric):
    """Known-symmetric matrices untransposed, powers written as products (for lowering)."""
    expr = expr.xreplace({S.T: S for S in symmetric})
    return expr.replace(lambda e: isinstance(e, sp.MatPow) and e.exp.is_Integer and e.exp > 1,
                        lambda e: sp.MatMul(*([e.base] * int(e.exp)), evaluate=False))


def per_neuron_modified_loss(flow, ranges: dict, lr: sp.Symbol = LR) -> sp.Expr:
    r""":math:`\tilde L = L + \tfrac h4\sum_\theta\sum_{\text{free indices}}\dot\theta^2` for a
    flow derived per neuron and per sample (the two-layer network, the CNN: every rate 1,
    so :math:`\partial L/\partial\theta = -\dot\theta`).

    ``flow``: a :class:`~exactdyn.symbolic.twolayer.TwoLayerFlow` (``rhs`` at free indices,
    ``observables["loss"]``); ``ranges``: base -> ``[(index, upper), ...]``, the free
    indices of its right-hand side and their last values."""
    penalty = sp.S.Zero
    for base, rhs in flow.rhs.items():
        term = rhs ** 2
        for idx, hi in ranges[base]:
            term = sp.Sum(term, (idx, 0, hi))
        penalty += term
    return flow.observables["loss"] + lr / 4 * penalty
