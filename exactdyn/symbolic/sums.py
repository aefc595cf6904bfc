"""Width-generic algebra on indexed symbols.

Per-neuron equations are written with ``sympy.Indexed`` objects (``u[j]``) and explicit
reductions ``Sum(..., (i, 0, d - 1))`` over the width ``d``; nothing is unrolled over
neurons. The helpers here keep such expressions in a canonical form so that sympy can
decide identities between them: sums are split over additions, factors that do not
depend on the summation index are pulled out, and every bound index is renamed to one
canonical symbol, so that equal reductions compare equal.
"""

from __future__ import annotations

import sympy as sp

#: The canonical summation index over neurons.
SUM_INDEX = sp.Symbol("i", integer=True)
#: Free neuron indices used for per-neuron equations and Jacobian entries.
NEURON_INDEX = sp.Symbol("j", integer=True)
SECOND_INDEX = sp.Symbol("k", integer=True)
#: The width (number of hidden neurons).
WIDTH = sp.Symbol("d", integer=True, positive=True)


def neuron_sum(summand: sp.Expr, index: sp.Symbol = SUM_INDEX) -> sp.Expr:
    r"""The reduction :math:`\sum_{i=0}^{d-1} \text{summand}`."""
    return sp.Sum(summand, (index, 0, WIDTH - 1))


def collapse_deltas(expr: sp.Expr) -> sp.Expr:
    r"""Evaluate :math:`\sum_i \delta_{ij} f(i) = f(j)`.

    Differentiating a reduction with respect to one neuron's parameter gives sums of
    Kronecker deltas; the free index always names a neuron inside the range, so the sum
    collapses to the summand at that index (no ``Piecewise`` on the range).
    """

    def collapse(s: sp.Sum) -> sp.Expr:
        if len(s.limits) > 1:
            return s
        (idx, _lo, _hi), = s.limits
        summand = sp.expand(s.function)
        terms = sp.Add.make_args(summand)
        out = []
        rest = []
        for term in terms:
            deltas = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.KroneckerDelta)
                      and idx in f.free_symbols]
            if deltas:
                delta = deltas[0]
                other = delta.args[1] if delta.args[0] == idx else delta.args[0]
                out.append((term / delta).subs(idx, other))
            else:
                rest.append(term)
        result = sp.Add(*out)
        if rest:
            result += sp.Sum(sp.Add(*rest), s.limits[0])
        return result

    return expr.replace(lambda e: isinstance(e, sp.Sum), collapse)


def _normal_multi_sum(s: sp.Sum) -> sp.Expr:
    """A multiple sum of monomials factorizes into products of single reductions.

    (sympy merges nested sums into one ``Sum`` with several limits, so they are taken
    apart here: each factor of a monomial depends on at most one summation index.)
    """
    total = sp.S.Zero
    indices = [lim[0] for lim in s.limits]
    for term in sp.Add.make_args(sp.expand(s.function)):
        groups = {idx: [] for idx in indices}
        const = []
        for factor in sp.Mul.make_args(term):
            deps = [idx for idx in indices if idx in factor.free_symbols]
            if len(deps) > 1:
                raise NotImplementedError(f"factor {factor} couples summation indices")
            (groups[deps[0]] if deps else const).append(factor)
        out = sp.Mul(*const)
        for lim in s.limits:
            out *= _normal_sum(sp.Mul(*groups[lim[0]]), lim)
        total += out
    return total


def _normal_sum(summand: sp.Expr, limits) -> sp.Expr:
    """Split one reduction into canonical sums of monomials, constants pulled out."""
    idx, lo, hi = limits
    summand = sp.expand(normalize(summand))
    total = sp.S.Zero
    canon = SUM_INDEX if idx == SUM_INDEX or SUM_INDEX not in summand.free_symbols else None
    for term in sp.Add.make_args(summand):
        const, dep = [], []
        for factor in sp.Mul.make_args(term):
            (dep if idx in factor.free_symbols else const).append(factor)
        if not dep:
            total += sp.Mul(*const) * (hi - lo + 1)
            continue
        body = sp.Mul(*dep)
        if canon is not None:
            body = body.xreplace({idx: canon})
            total += sp.Mul(*const) * sp.Sum(body, (canon, lo, hi))
        else:
            total += sp.Mul(*const) * sp.Sum(body, (idx, lo, hi))
    return total


def normalize(expr: sp.Expr) -> sp.Expr:
    """Canonical form of an expression with neuron reductions (see module docstring)."""
    if isinstance(expr, sp.Sum):
        if len(expr.limits) > 1:
            return _normal_multi_sum(expr)
        return _normal_sum(expr.function, expr.limits[0])
    if not expr.args or not expr.has(sp.Sum):
        return expr
    return expr.func(*[normalize(a) for a in expr.args])


def is_zero(expr: sp.Expr) -> bool:
    """Decide ``expr == 0`` for polynomial and rational expressions in reductions."""
    e = sp.expand(normalize(collapse_deltas(sp.expand(expr))))
    if e == 0:
        return True
    return sp.simplify(sp.together(e)) == 0


def time_derivative(expr: sp.Expr, rhs: dict) -> sp.Expr:
    r"""Derivative of ``expr`` along the flow :math:`\dot x_j = \text{rhs}[x]`.

    ``rhs`` maps each ``IndexedBase`` to its right-hand side written at the free index
    :data:`NEURON_INDEX`. Every occurrence ``x[a]`` (free or bound index) is moved to
    ``x[a] + \epsilon\,\text{rhs}_x(a)`` and the result is differentiated at
    :math:`\epsilon = 0` (the chain rule, exact for reductions too).
    """
    eps = sp.Symbol("epsilon")
    moves = {}
    for atom in expr.atoms(sp.Indexed):
        if atom.base in rhs:
            (a,) = atom.indices
            moves[atom] = atom + eps * _rhs_at(rhs[atom.base], a, expr)
    moved = expr.xreplace(moves)
    return sp.diff(moved, eps).subs(eps, 0)


def _rhs_at(rhs_expr: sp.Expr, index, context: sp.Expr) -> sp.Expr:
    """The right-hand side at neuron ``index``; inner reductions get fresh bound indices
    so that they cannot capture an index bound in ``context``."""
    fresh = {}
    for s in rhs_expr.atoms(sp.Sum):
        (idx, lo, hi), = s.limits
        new = sp.Dummy("l", integer=True)
        fresh[s] = sp.Sum(s.function.xreplace({idx: new}), (new, lo, hi))
    return rhs_expr.xreplace(fresh).xreplace({NEURON_INDEX: index})
