r"""Gradient flows derived from a network's loss, with their proofs.

A :class:`SymbolicNetwork` (built by a model) names the per-neuron parameters, their
learning rates, the forward map and the loss. :func:`derive_gradient_flow` turns it into
a :class:`GradientFlow`:

.. math:: \dot\theta_{\ell,j} = -\eta_\ell\,\frac{\partial L}{\partial \theta_{\ell,j}},

differentiating through the width-generic reductions, then derives the conserved
quantities from the network's declared continuous symmetries (Noether's argument for
gradient flows) and proves each one: its time derivative along the flow simplifies to 0.
Every step is recorded as a :class:`DerivationStep` for reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .sums import NEURON_INDEX, SECOND_INDEX, collapse_deltas, is_zero, normalize, time_derivative


@dataclass(frozen=True)
class DerivationStep:
    """One step of a derivation: what was obtained and why.

    ``expr`` is a sympy object (usually an ``Eq``); ``justification`` says which rule or
    substitution produced it; ``proven`` is ``True`` when the step is an identity that
    the package checked symbolically (``None`` when the step is a definition).
    """

    title: str
    expr: sp.Basic
    justification: str = ""
    proven: bool | None = None

    @property
    def latex(self) -> str:
        from .latex import latex

        return latex(self.expr)


@dataclass(frozen=True)
class Symmetry:
    r"""An infinitesimal linear symmetry :math:`\theta \mapsto \theta + s\,A\theta` of the loss.

    ``action`` maps each parameter base to the first-order change of its entry at the
    free index ``j`` (an expression in the parameters). ``metric`` maps each base to the
    coefficient of the resulting conserved quantity; Noether's argument for the flow
    :math:`\dot\theta = -H\nabla L` gives :math:`Q = \theta^\top H^{-1} A\theta/2` when
    :math:`H^{-1}A` is symmetric.
    """

    name: str
    description: str
    action: dict
    conserved: sp.Expr


@dataclass(frozen=True)
class SymbolicNetwork:
    """What a model knows symbolically: parameters, rates, forward map and loss."""

    name: str
    params: tuple  # of sympy.IndexedBase, in state order
    rates: dict  # IndexedBase -> Symbol
    hyper: dict  # public name -> Symbol (output scale, data moments, ...)
    forward: sp.Expr  # f(x)
    loss: sp.Expr  # the loss after expectation over the data (constant dropped)
    loss_steps: tuple = ()  # DerivationSteps from the per-sample loss to ``loss``
    symmetries: tuple = ()  # Symmetry objects
    observables: dict = field(default_factory=dict)  # name -> sympy expression
    citation: str = ""
    #: Optional model-specific reduction: a callable GradientFlow -> reduced flow.
    reduce: object = None


@dataclass(frozen=True)
class ConservedQuantity:
    name: str
    expr: sp.Expr
    derivative: sp.Expr  # dQ/dt along the flow, after simplification
    proven: bool
    origin: str


class DerivationDisplay:
    """Notebook display of a derived flow (``network``, ``conserved``, ``steps``): the
    derivation, step by step."""

    def _repr_markdown_(self) -> str:
        from .latex import escape_markdown, steps_markdown

        conserved = ", ".join(f"{q.name} ({'proven' if q.proven else 'NOT proven'})"
                              for q in self.conserved)
        return (f"**Gradient flow of {escape_markdown(self.network.name)}**, derived from "
                f"its loss. Conserved: {escape_markdown(conserved) or 'none'}.\n\n"
                + steps_markdown(self.steps))

    def _repr_latex_(self) -> str:
        from .latex import steps_mathjax

        return steps_mathjax(self.steps)


@dataclass
class GradientFlow(DerivationDisplay):
    r"""The gradient flow of a :class:`SymbolicNetwork`, derived and proven."""

    network: SymbolicNetwork
    rhs: dict  # IndexedBase -> per-neuron right-hand side at index j
    conserved: list
    steps: list
    reduced: object = None

    @property
    def state(self) -> tuple:
        return self.network.params

    def equations(self) -> list:
        """The flow as equations :math:`\\dot x_j = \\ldots`."""
        t = sp.Symbol("t")
        return [sp.Eq(sp.Derivative(sp.Function(b.name)(t), t).subs(
            sp.Function(b.name)(t), b[NEURON_INDEX]), self.rhs[b], evaluate=False)
            for b in self.state]

    def jacobian_entries(self) -> dict:
        r"""Symbolic Jacobian blocks :math:`\partial \dot x_j / \partial y_k` keyed by (x, y)."""
        blocks = {}
        for x in self.state:
            for y in self.state:
                entry = sp.diff(self.rhs[x], y[SECOND_INDEX])
                blocks[(x, y)] = normalize(collapse_deltas(entry))
        return blocks

    def time_derivative(self, expr: sp.Expr) -> sp.Expr:
        """Derivative of ``expr`` along this flow (chain rule through reductions)."""
        return normalize(sp.expand(time_derivative(expr, self.rhs)))



def derive_gradient_flow(network: SymbolicNetwork) -> GradientFlow:
    """Differentiate the loss, collapse the reductions, derive and prove invariants."""
    steps = list(network.loss_steps)
    j = NEURON_INDEX
    rhs = {}
    for base in network.params:
        grad = normalize(collapse_deltas(sp.diff(network.loss, base[j])))
        grad = sp.factor_terms(grad)
        rhs[base] = -network.rates[base] * grad
        steps.append(DerivationStep(
            f"Gradient flow of {base.name}",
            sp.Eq(sp.Symbol(f"\\dot{{{base.name}}}_{{j}}"), rhs[base], evaluate=False),
            f"d{base.name}_j/dt = −η ∂L/∂{base.name}_j; the derivative of each reduction "
            "gives Kronecker deltas, and Σ_i δ_ij f_i = f_j."))
    flow = GradientFlow(network, rhs, [], steps)

    for sym in network.symmetries:
        # The loss's first-order change along the generator (chain rule, all neurons).
        change = sp.expand(time_derivative(network.loss, {
            b: act for b, act in sym.action.items()}))
        invariant = is_zero(change)
        shown = sp.S.Zero if invariant else sp.expand(normalize(collapse_deltas(change)))
        steps.append(DerivationStep(
            f"Symmetry: {sym.name}", sp.Eq(sp.Symbol("\\delta L"), shown),
            sym.description + " The loss's first-order change under it simplifies to 0.",
            proven=invariant))
        derivative = flow.time_derivative(sym.conserved)
        proven = invariant and is_zero(derivative)
        flow.conserved.append(ConservedQuantity(sym.name, sym.conserved, sp.simplify(derivative),
                                                proven, sym.description))
        steps.append(DerivationStep(
            f"Conserved: {sym.name}",
            sp.Eq(sp.Symbol(sym.name), sym.conserved),
            "Noether's argument for gradient flow; its time derivative along the flow "
            "simplifies to 0.", proven=proven))
    if network.reduce is not None:
        flow.reduced = network.reduce(flow)
        flow.steps.extend(flow.reduced.steps)
    return flow
