r"""Gradient flows of networks whose parameters run over several index kinds.

A user's :class:`~exactdyn.Network` declared with ``indices={i: d, k: D, s: n}`` has
parameters such as :math:`a_i` and :math:`W_{ik}` (neuron :math:`i`, feature :math:`k`),
data arrays :math:`X_{sk}`, :math:`Y_s` over a sample index :math:`s`, and a loss built
from explicit reductions ``Sum(..., (k, 0, D - 1))``. :func:`derive_indexed_flow` derives

.. math:: \dot\theta_{b,\,j_1\ldots j_r} = -\eta_b\,
          \frac{\partial L}{\partial \theta_{b,\,j_1\ldots j_r}}

at free indices :math:`j_1 \ldots j_r` (one per index of the parameter, named ``i'``,
``k'``, ...): sympy differentiates through the reductions, which gives Kronecker deltas,
and :math:`\sum_i \delta_{ij} g_i = g_j` collapses them. Nothing is unrolled over the
sizes: the right-hand sides hold reductions, which the indexed printer
(:mod:`exactdyn.numeric.indexed`) lowers to matrix products and ``einsum``.

Declared symmetries :math:`\theta \mapsto \theta + s\,A\theta` give Noether's conserved
quantity :math:`Q = \tfrac12\sum_b \eta_b^{-1}\langle\theta_b, (A\theta)_b\rangle`; along the
flow :math:`\dot Q = \sum_b \eta_b^{-1}\langle (A\theta)_b, \dot\theta_b\rangle
= -\delta L` whenever :math:`H^{-1}A` is symmetric (:math:`H` the diagonal of rates).
Both premises are checked symbolically: the loss's first-order change :math:`\delta L`
simplifies to 0 (reductions split over sums, constants pulled out, bound indices renamed
canonically), and :math:`H^{-1}A` is symmetric entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import sympy as sp

from .flow import ConservedQuantity, DerivationStep, GradientFlow


@dataclass(frozen=True)
class IndexedNetwork:
    """What a network over several index kinds knows symbolically.

    ``indices``: ``(index symbol, size symbol)`` pairs in canonical axis order (an array's
    indices are always in this order); ``param_indices`` / ``data_indices``: each array base
    -> its index symbols; ``hyper``: scalar name -> Symbol (hyperparameters, scalar data);
    ``data``: array name -> IndexedBase."""

    name: str
    params: tuple
    param_indices: dict
    indices: tuple
    rates: dict
    hyper: dict
    data: dict
    data_indices: dict
    loss: sp.Expr
    loss_steps: tuple = ()
    symmetries: tuple = ()
    observables: dict = field(default_factory=dict)
    citation: str = ""
    reduce: object = None

    @property
    def forward(self) -> sp.Expr:
        return self.loss

    @property
    def sizes(self) -> dict:
        """Index symbol -> size symbol."""
        return dict(self.indices)

    def free_index(self, index: sp.Symbol) -> sp.Symbol:
        """The free index of ``index``'s kind in right-hand sides (``i`` -> ``i'``)."""
        return sp.Symbol(f"{index.name}'", integer=True)

    def free_entry(self, base: sp.IndexedBase) -> sp.Indexed:
        """``base`` at its free indices, e.g. ``W[i', k']``."""
        return base[tuple(self.free_index(ix) for ix in self.param_indices[base])]

    @property
    def kinds(self) -> dict:
        """Index symbol (bound or free) -> its kind (the declared index's name)."""
        out = {}
        for ix, _size in self.indices:
            out[ix] = out[self.free_index(ix)] = ix.name
        return out

    # The notation (:class:`~exactdyn.symbolic.flow.Notation`): several index kinds, each
    # parameter's equation at its free indices.
    notation: ClassVar[str] = "multi_index"

    def derive(self) -> GradientFlow:
        """This network's gradient flow (:func:`derive_indexed_flow`)."""
        return derive_indexed_flow(self)

    def rate_of(self, base: sp.IndexedBase) -> sp.Expr:
        r""":math:`\dot\theta_{b,\,j_1\ldots j_r}`, the left-hand side of ``base``'s
        equation at its free indices."""
        t = sp.Symbol("t")
        return sp.Derivative(sp.Function(base.name)(t), t).subs(sp.Function(base.name)(t),
                                                                 self.free_entry(base))

    def derivative_along(self, expr: sp.Expr, rhs: dict) -> sp.Expr:
        r"""Derivative of ``expr`` along the flow ``rhs`` (right-hand sides at the free
        indices): :math:`\frac{d}{dt}E = \sum_{\theta\text{ in }E}\partial E/\partial
        \theta\;\dot\theta`, each entry of a parameter in ``expr`` moved by its right-hand
        side at that entry's indices (chain rule through the reductions), Kronecker deltas
        collapsed."""
        eps = sp.Dummy("s")
        moves = {}
        for atom in sp.sympify(expr).atoms(sp.Indexed):
            if atom.base in rhs:
                own = [self.free_index(ix) for ix in self.param_indices[atom.base]]
                # Bound indices of the right-hand side renamed apart, so that an entry
                # inside a reduction over one of them is not captured.
                moved = fresh_bound(rhs[atom.base]).xreplace(dict(zip(own, atom.indices)))
                moves[atom] = atom + eps * moved
        change = sp.diff(sp.sympify(expr).xreplace(moves), eps).subs(eps, 0)
        return _collapse(tidy_sums(change))


def _collapse(expr: sp.Expr) -> sp.Expr:
    r""":math:`\sum_x \delta_{xy} g_x = g_y` in every reduction whose summand holds a
    Kronecker delta of one of its indices (bottom-up, so inner deltas collapse first; a
    reduction over several indices, which sympy makes of directly nested ones, drops each
    index that a delta fixes); other reductions keep their factored form."""

    def one(s: sp.Sum) -> sp.Expr:
        bound = {lim[0] for lim in s.limits}
        if not any(bound & q.free_symbols for q in s.function.atoms(sp.KroneckerDelta)):
            return s
        out = sp.S.Zero
        for term in sp.Add.make_args(sp.expand(s.function, deep=False)):
            limits = list(s.limits)
            for lim in s.limits:
                idx = lim[0]
                deltas = [f for f in sp.Mul.make_args(term)
                          if isinstance(f, sp.KroneckerDelta) and idx in f.free_symbols]
                if deltas:
                    delta = deltas[0]
                    other = delta.args[1] if delta.args[0] == idx else delta.args[0]
                    term = (term / delta).xreplace({idx: other})
                    limits.remove(lim)
            out += sp.Sum(term, *limits) if limits else term
        return out

    return expr.replace(lambda e: isinstance(e, sp.Sum), one)


def _split_one(expr: sp.Expr, limit, rename=None) -> sp.Expr:
    """``Sum(expr, limit)`` split over the terms of ``expr``, factors free of the index
    pulled out; ``rename(summand)`` gives a new name for the bound index (or None)."""
    idx, lo, hi = limit
    out = sp.S.Zero
    for term in sp.Add.make_args(expr):
        inside = [f for f in sp.Mul.make_args(term) if idx in f.free_symbols]
        outside = [f for f in sp.Mul.make_args(term) if idx not in f.free_symbols]
        if not inside:
            out += sp.Mul(*outside) * (hi - lo + 1)
            continue
        summand = sp.Mul(*inside)
        name = rename(summand) if rename is not None else None
        if name is not None:
            summand, idx_used = summand.xreplace({idx: name}), name
        else:
            idx_used = idx
        out += sp.Mul(*outside) * sp.Sum(summand, (idx_used, lo, hi))
    return out


def tidy_sums(expr: sp.Expr) -> sp.Expr:
    r"""Reductions split over additions of their summand and factors free of the summation
    index pulled out, :math:`\sum_x c\,(f_x + g_x) = c\sum_x f_x + c\sum_x g_x`, so that
    each lowers to one product and none has a free index of its own kind inside (the
    indices of a multiple reduction one at a time, innermost first)."""
    if isinstance(expr, sp.Sum):
        out = tidy_sums(expr.function)
        for lim in expr.limits:
            out = _split_one(out, lim)
        return out
    if expr.args and not isinstance(expr, sp.Indexed):
        return expr.func(*[tidy_sums(a) for a in expr.args])
    return expr


def canonical(expr: sp.Expr) -> sp.Expr:
    r"""A canonical form of an expression with reductions, for deciding identities:
    summands expanded, reductions split over additions with constants pulled out (as
    :func:`tidy_sums`), and each bound index renamed by the height of its reduction (the
    number of summation indices at or below it), so that equal reductions compare equal and
    no renamed index can capture another."""
    if isinstance(expr, sp.Sum):
        out = sp.expand(canonical(expr.function))
        for lim in expr.limits:
            out = sp.expand(_split_one(out, lim, lambda summand: sp.Symbol(
                f"_c{_height(summand)}", integer=True)))
        return out
    if expr.args and not isinstance(expr, sp.Indexed):
        return sp.expand(expr.func(*[canonical(a) for a in expr.args]))
    return expr


def _height(expr) -> int:
    return max((len(s.limits) + _height(s.function) for s in expr.atoms(sp.Sum)), default=0)


def fresh_bound(expr: sp.Expr) -> sp.Expr:
    """``expr`` with the index of every reduction renamed to a fresh integer symbol (so
    that substituting into it captures nothing)."""

    def fresh(s: sp.Sum) -> sp.Expr:
        renamed = {lim[0]: sp.Dummy(lim[0].name, integer=True) for lim in s.limits}
        return sp.Sum(s.function.xreplace(renamed),
                      *[(renamed[lim[0]], lim[1], lim[2]) for lim in s.limits])

    return expr.replace(lambda e: isinstance(e, sp.Sum), fresh)


#: The flow of an :class:`IndexedNetwork` is a :class:`~exactdyn.symbolic.flow.GradientFlow`
#: (the old name, kept for code that imports it).
IndexedGradientFlow = GradientFlow


def gradient(network: IndexedNetwork, base: sp.IndexedBase) -> sp.Expr:
    r""":math:`\partial L/\partial\theta_{b,j\ldots}` at the free indices, deltas collapsed."""
    return tidy_sums(sp.factor_terms(_collapse(sp.diff(network.loss,
                                                       network.free_entry(base)))))


def loss_change(network: IndexedNetwork, action: dict) -> sp.Expr:
    r"""The loss's first-order change :math:`\delta L = \frac{d}{ds}L(\theta + sA\theta)|_0`
    along an action given at each parameter's own (declared) indices."""
    eps = sp.Dummy("s")
    moves = {}
    for atom in network.loss.atoms(sp.Indexed):
        if atom.base in action:
            own = network.param_indices[atom.base]
            moves[atom] = atom + eps * action[atom.base].xreplace(dict(zip(own, atom.indices)))
    change = sp.diff(network.loss.xreplace(moves), eps).subs(eps, 0)
    # An action on one neuron j carries KroneckerDelta(i, j): pulled out of the inner
    # reductions and collapsed, so that δL is written at j.
    return _collapse(tidy_sums(change))


def _metric_symmetric(network: IndexedNetwork, action: dict) -> bool:
    r"""Is :math:`H^{-1}A` symmetric? True when each :math:`(A\theta)_b` is a linear
    combination of entries of parameters at the same indices, with coefficients
    :math:`c_{bc}` free of the state such that :math:`c_{bc}/\eta_b = c_{cb}/\eta_c`."""
    coeff = {}
    for b, act in action.items():
        rest = sp.expand(act)
        for c in network.params:
            if network.param_indices[c] != network.param_indices[b]:
                continue
            entry = c[network.param_indices[c]]
            coeff[(b, c)] = sp.expand(sp.diff(act, entry))
            if coeff[(b, c)].atoms(sp.Indexed):
                return False  # not linear in the state
            rest = sp.expand(rest - coeff[(b, c)] * entry)
        if rest != 0:
            return False
    for b in network.params:
        for c in network.params:
            cbc = coeff.get((b, c), sp.S.Zero)
            ccb = coeff.get((c, b), sp.S.Zero)
            if sp.simplify(cbc / network.rates[b] - ccb / network.rates[c]) != 0:
                return False
    return True


def noether_quantity(network: IndexedNetwork, action: dict) -> sp.Expr:
    r"""Noether's quantity of an action,
    :math:`Q = \tfrac12\sum_b \eta_b^{-1}\sum_{j\ldots}\theta_{b,j\ldots}(A\theta)_{b,j\ldots}`
    (``network``: anything with ``sizes``, ``param_indices`` and ``rates``). An action on
    one neuron (a factor ``KroneckerDelta(i, j)``) gives one quantity per neuron, at
    :math:`j`: :math:`\tfrac12(a_j^2 - \sum_k W_{jk}^2)` for the rescaling of neuron j."""
    total = sp.S.Zero
    sizes = network.sizes
    for b, act in action.items():
        body = b[network.param_indices[b]] * act
        for ix in reversed(network.param_indices[b]):
            body = sp.Sum(body, (ix, 0, sizes[ix] - 1))
        total += body / network.rates[b]
    return _collapse(tidy_sums(total / 2))


def derive_indexed_flow(network: IndexedNetwork) -> GradientFlow:
    """Differentiate the loss at free indices, collapse the deltas, prove the declared
    symmetries' conserved quantities (module docstring)."""
    steps = list(network.loss_steps)
    rhs = {}
    for base in network.params:
        rhs[base] = -network.rates[base] * gradient(network, base)
        free = "".join(str(network.free_index(ix)) for ix in network.param_indices[base])
        steps.append(DerivationStep(
            f"Gradient flow of {base.name}",
            sp.Eq(sp.Symbol(f"\\dot{{{base.name}}}_{{{free}}}"), rhs[base], evaluate=False),
            f"d{base.name}/dt = −η ∂L/∂{base.name} at free indices {free}; the derivative of "
            "each reduction gives Kronecker deltas, and Σ_x δ_xy g_x = g_y."))
    flow = GradientFlow(network, rhs, [], steps)
    for sym in network.symmetries:
        change = loss_change(network, sym.action)
        invariant = canonical(change) == 0
        shown = sp.S.Zero if invariant else change
        steps.append(DerivationStep(
            f"Symmetry: {sym.name}", sp.Eq(sp.Symbol("\\delta L"), shown),
            sym.description + " The loss's first-order change under it simplifies to 0.",
            proven=invariant))
        symmetric = _metric_symmetric(network, sym.action)
        noether = noether_quantity(network, sym.action)
        same = canonical(sym.conserved - noether) == 0
        proven = bool(invariant and symmetric and same)
        derivative = sp.S.Zero if proven else sp.Symbol("unproven")
        flow.conserved.append(ConservedQuantity(sym.name, sym.conserved, derivative, proven,
                                                sym.description))
        steps.append(DerivationStep(
            f"Conserved: {sym.name}", sp.Eq(sp.Symbol(sym.name), sym.conserved),
            "Noether's argument for gradient flow: dQ/dt = Σ_b η_b⁻¹⟨Aθ_b, θ̇_b⟩ = −δL = 0, "
            "H⁻¹A being symmetric (checked).", proven=proven))
    return flow
