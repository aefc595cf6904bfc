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
from typing import Any, ClassVar, Protocol, runtime_checkable

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

    # The notation (:class:`Notation`): one neuron index j, reductions over the neurons.
    notation: ClassVar[str] = "indexed"

    def derive(self) -> GradientFlow:
        """This network's gradient flow (:func:`derive_gradient_flow`)."""
        return derive_gradient_flow(self)

    def rate_of(self, base: sp.IndexedBase) -> sp.Expr:
        r""":math:`\dot x_j`, the left-hand side of ``base``'s equation at the neuron j."""
        t = sp.Symbol("t")
        return sp.Derivative(sp.Function(base.name)(t), t).subs(
            sp.Function(base.name)(t), base[NEURON_INDEX])

    def derivative_along(self, expr: sp.Expr, rhs: dict) -> sp.Expr:
        """Derivative of ``expr`` along the flow ``rhs`` (chain rule through reductions)."""
        return normalize(sp.expand(time_derivative(expr, rhs)))

    def jacobian_blocks(self, rhs: dict) -> dict:
        r"""Jacobian blocks :math:`\partial \dot x_j / \partial y_k` of the flow ``rhs``,
        keyed by (x, y): the derivative of each reduction gives Kronecker deltas."""
        blocks = {}
        for x in self.params:
            for y in self.params:
                entry = sp.diff(rhs[x], y[SECOND_INDEX])
                blocks[(x, y)] = normalize(collapse_deltas(entry))
        return blocks


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


@runtime_checkable
class Notation(Protocol):
    r"""What a derived flow asks of the network it was derived from: the notation's share.

    :class:`GradientFlow` is one type for every network; the few things that depend on how
    the network writes its parameters (one neuron index, several index kinds, whole
    matrices) are methods of the network: :class:`SymbolicNetwork`,
    :class:`~exactdyn.symbolic.indexed_flow.IndexedNetwork` and
    :class:`~exactdyn.symbolic.matrix_flow.MatrixNetwork` each implement them.

    ``notation``
        The notation's name, which also names its lowering (``"indexed"``,
        ``"multi_index"``, ``"matrix"``, ``"chain"``).
    ``derive()``
        The derivation for this notation: :math:`\dot\theta_b = -\eta_b\,\partial
        L/\partial\theta_b`, with the declared symmetries' conserved quantities proven.
    ``rate_of(base)``
        The left-hand side :math:`\dot\theta_b` of the flow's equation for ``base``.
    ``derivative_along(expr, rhs)``
        :math:`\frac{d}{dt}` of ``expr`` along the flow :math:`\dot\theta = ` ``rhs``
        (chain rule through reductions, or first-order expansion of matrix products).
    """

    name: str
    params: tuple
    notation: str

    def derive(self) -> GradientFlow: ...

    def rate_of(self, base) -> sp.Expr: ...

    def derivative_along(self, expr, rhs: dict): ...


@dataclass
class GradientFlow(DerivationDisplay):
    r"""The gradient flow of a network, derived from its loss and proven; one type whatever
    the notation the network is written in.

    .. math:: \dot\theta_b = -\eta_b\,\frac{\partial L}{\partial \theta_b}

    ``network`` is the network it was derived from (a :class:`Notation`): a
    :class:`SymbolicNetwork` (one neuron index), an
    :class:`~exactdyn.symbolic.indexed_flow.IndexedNetwork` (several index kinds) or a
    :class:`~exactdyn.symbolic.matrix_flow.MatrixNetwork` (matrix notation). ``rhs`` maps
    each parameter (an ``IndexedBase`` or a ``MatrixSymbol``) to its right-hand side (at
    the free indices for indexed notations); ``conserved`` holds the
    :class:`ConservedQuantity` s of the network's declared symmetries, each proven by
    Noether's argument (E. Noether 1918; for gradient flows, Kunin et al., "Neural
    mechanics", ICLR 2021); ``steps`` the derivation for reports; ``reduced`` an optional
    model-specific reduction. Everything that depends on the notation (the equations'
    left-hand sides, the chain rule, Jacobian blocks, directional derivatives) is asked of
    ``network``, so no caller needs to know which notation it is.
    """

    network: Any
    rhs: dict  # parameter -> its right-hand side (at the free indices, for indexed ones)
    conserved: list
    steps: list
    reduced: object = None

    @property
    def state(self) -> tuple:
        """The parameters, in state order."""
        return self.network.params

    @property
    def notation(self) -> str:
        """The network's notation, which names its lowering (:class:`Notation`)."""
        return self.network.notation

    # The network's description, read through the flow (matrix flows were read this way).
    @property
    def name(self) -> str:
        return self.network.name

    @property
    def params(self) -> tuple:
        return self.network.params

    @property
    def hyper(self) -> dict:
        return self.network.hyper

    @property
    def loss(self) -> sp.Expr:
        return self.network.loss

    @property
    def observables(self) -> dict:
        return self.network.observables

    @property
    def citation(self) -> str:
        return self.network.citation

    @property
    def matrix_form(self) -> bool:
        """Whether the flow is lowered as products of a chain of matrices (deep linear)."""
        return self.notation == "chain"

    @property
    def proven(self) -> bool:
        """Every checked step of the derivation and every conserved quantity proven."""
        return all(s.proven is not False for s in self.steps) and all(
            q.proven for q in self.conserved)

    def equations(self) -> list:
        """The flow as equations :math:`\\dot\\theta_b = -\\eta_b\\,\\partial L/\\partial
        \\theta_b`, left-hand sides in the network's notation (:math:`\\dot x_j`,
        :math:`\\dot W_{i'k'}`, :math:`\\dot W`)."""
        return [sp.Eq(self.network.rate_of(b), self.rhs[b], evaluate=False)
                for b in self.state]

    def time_derivative(self, expr):
        """Derivative of ``expr`` along this flow: the chain rule through the reductions
        (indexed notations) or the first-order change of the matrix products (matrix
        notation)."""
        return self.network.derivative_along(expr, self.rhs)

    def jacobian_entries(self) -> dict:
        r"""Symbolic Jacobian blocks :math:`\partial \dot x_j / \partial y_k` keyed by
        (x, y), for networks over one neuron index (:class:`SymbolicNetwork`)."""
        blocks = getattr(self.network, "jacobian_blocks", None)
        if blocks is None:
            raise NotImplementedError(
                f"Jacobian blocks are derived for networks over one neuron index; "
                f"{self.name} is in {self.notation} notation")
        return blocks(self.rhs)

    def directional_derivative(self, directions: dict) -> dict:
        """Jacobian-vector products: the derivative of each right-hand side along the state
        direction ``directions`` (parameter -> direction), in matrix notation."""
        along = getattr(self.network, "directional_derivative", None)
        if along is None:
            raise NotImplementedError(
                f"directional derivatives of the right-hand sides are derived in matrix "
                f"notation; {self.name} is in {self.notation} notation")
        return along(self.rhs, directions)


def derive_flow(network: Notation) -> GradientFlow:
    r"""The gradient flow of any network, :math:`\dot\theta_b = -\eta_b\,\partial
    L/\partial\theta_b`, with its declared symmetries' conserved quantities proven by
    Noether's argument: the derivation of the network's notation (``network.derive()``:
    :func:`derive_gradient_flow`, :func:`~exactdyn.symbolic.indexed_flow.derive_indexed_flow`
    or :func:`~exactdyn.symbolic.matrix_flow.derive_matrix_flow`)."""
    derive = getattr(network, "derive", None)
    if not callable(derive):
        raise TypeError(f"network must be a symbolic network (SymbolicNetwork, IndexedNetwork "
                        f"or MatrixNetwork), got {type(network).__name__}")
    return derive()


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
