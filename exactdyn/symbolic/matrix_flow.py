r"""Gradient flows of networks whose parameters are whole matrices, kept in matrix form.

The sibling of :mod:`exactdyn.symbolic.flow` for models written with
``sympy.MatrixSymbol`` (the two-layer linear network of Saxe et al. and its relatives):
the loss is a scalar built from traces of matrix products, the gradient is taken by
sympy's matrix calculus,

.. math:: \dot W_\ell = -\eta_\ell\,\frac{\partial L}{\partial W_\ell},

and the result stays structured (products of matrices, never scalarized entries), so
that lowering gives one ``@`` per product whatever the sizes. Conserved matrices are
proven by differentiating along the flow in the same algebra: the time derivative must
simplify to the zero matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .flow import ConservedQuantity, DerivationStep, GradientFlow


@dataclass(frozen=True)
class MatrixNetwork:
    """What a matrix model knows symbolically.

    ``params`` are ``MatrixSymbol`` s in state order, ``rates`` their scalar learning
    rates, ``symmetric`` matrix symbols known to be symmetric (``S.T -> S``),
    ``conserved`` name -> matrix expression claimed conserved, ``observables`` name ->
    (matrix or scalar) expression.
    """

    name: str
    params: tuple
    rates: dict
    hyper: dict  # public name -> Symbol or MatrixSymbol
    forward: sp.Basic
    loss: sp.Expr
    loss_steps: tuple = ()
    symmetric: tuple = ()
    conserved: dict = field(default_factory=dict)
    observables: dict = field(default_factory=dict)
    citation: str = ""
    #: The notation's name (:class:`~exactdyn.symbolic.flow.Notation`), which names the
    #: lowering: ``"matrix"``, or ``"chain"`` for a product of a chain of matrices whose
    #: flow is derived by its family (the deep linear network).
    notation: str = "matrix"

    def derive(self) -> GradientFlow:
        """This network's gradient flow (:func:`derive_matrix_flow`)."""
        return derive_matrix_flow(self)

    def rate_of(self, base: sp.MatrixSymbol) -> sp.Expr:
        r""":math:`\dot W`, the left-hand side of ``base``'s equation."""
        return sp.Symbol(f"\\dot{{{base.name}}}")

    def derivative_along(self, expr, rhs: dict):
        r"""Derivative of a matrix (or scalar) expression along the flow ``rhs``: the
        coefficient of :math:`\epsilon` in ``expr`` at :math:`W + \epsilon\dot W` (product
        rule in matrix form), known-symmetric matrices untransposed."""
        eps = sp.Symbol("epsilon")
        moved = expr.xreplace({b: b + eps * rhs[b] for b in self.params})
        d = first_order(moved, eps)
        return simplify_matrix(_unsym(simplify_matrix(d), self.symmetric))

    def directional_derivative(self, rhs: dict, directions: dict) -> dict:
        """Jacobian-vector products: d rhs[b] along the state direction ``directions``."""
        eps = sp.Symbol("epsilon")
        out = {}
        for b in self.params:
            moved = rhs[b].xreplace({s: s + eps * directions[s] for s in self.params})
            out[b] = factor_sides(simplify_matrix(first_order(moved, eps)))
        return out


def simplify_matrix(expr):
    """Canonical form of a matrix expression: transposes pushed to symbols, known
    symmetric symbols untransposed, products expanded, like terms collected."""
    expr = sp.expand(sp.sympify(expr).doit())
    return expr


def is_zero_matrix(expr) -> bool:
    """Decide ``expr == 0`` for polynomial matrix expressions (expand and collect)."""
    e = simplify_matrix(expr)
    return isinstance(e, sp.ZeroMatrix) or e == 0 or sp.expand(e) == 0


def _unsym(expr, symmetric):
    return expr.xreplace({s.T: s for s in symmetric}) if symmetric else expr


def matrix_gradient(loss, X, symmetric=()):
    r""":math:`\partial L/\partial X` of a scalar ``loss`` (a sum of multiples of traces).

    sympy's matrix calculus differentiates each ``Trace`` term; the sum is taken here.
    """
    total = None
    for term in sp.Add.make_args(sp.expand(loss)):
        coeff, rest = term.as_coeff_Mul()
        factors = [f for f in sp.Mul.make_args(rest)]
        traces = [f for f in factors if isinstance(f, sp.Trace)]
        scalars = sp.Mul(*[f for f in factors if not isinstance(f, sp.Trace)])
        if len(traces) != 1:
            if not rest.has(X):
                continue
            raise NotImplementedError(f"loss term {term} is not a multiple of one trace")
        d = traces[0].diff(X)
        d = _unsym(d, symmetric)
        piece = coeff * scalars * d
        total = piece if total is None else total + piece
    if total is None:
        return sp.ZeroMatrix(*X.shape)
    return simplify_matrix(_unsym(simplify_matrix(total), symmetric))


def factor_sides(expr):
    r"""Pull a matrix factor common to every term of a sum out on the left or right.

    ``A*B*C - A*D`` becomes ``A*(B*C - D)``: the structured form lowers to fewer and
    cheaper products (the residual ``W_2W_1\Sigma_{xx} - \Sigma_{yx}`` is then shared by
    both layers' equations).
    """
    expr = sp.sympify(expr)
    if not isinstance(expr, sp.MatAdd):
        return expr
    terms = []
    for t in expr.args:
        coeff, mats = t.as_coeff_mmul()
        mats = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
        terms.append((coeff, mats))
    for side in (0, -1):
        first = terms[0][1][side]
        if all(len(m) > 1 and m[side] == first for _c, m in terms):
            rest = sp.MatAdd(*[c * (sp.MatMul(*(m[1:] if side == 0 else m[:-1])))
                               for c, m in terms]).doit()
            rest = factor_sides(rest)
            return sp.MatMul(first, rest) if side == 0 else sp.MatMul(rest, first)
    return expr


def first_order(expr, eps):
    r"""The coefficient of :math:`\epsilon^1` of a matrix polynomial in ``eps``.

    (Expanded by hand: sympy's ``diff`` of a ``Transpose`` with respect to a scalar drops
    the transpose in sympy 1.14.)
    """
    e = sp.expand(sp.sympify(expr).doit())
    terms = sp.MatAdd.make_args(e) if isinstance(e, sp.MatAdd) else (e,)
    out = []
    for t in terms:
        if isinstance(t, sp.MatrixExpr):
            coeff, mats = t.as_coeff_mmul()
            if isinstance(coeff, sp.Basic) and coeff.has(eps):
                c1 = sp.diff(coeff, eps).subs(eps, 0)
                if c1 != 0:
                    out.append(c1 * mats)
            elif t.has(eps):
                raise NotImplementedError(f"cannot linearize {t} in {eps}")
        else:
            c1 = sp.diff(t, eps).subs(eps, 0)
            if c1 != 0:
                out.append(c1)
    if not out:
        return sp.ZeroMatrix(*expr.shape) if isinstance(expr, sp.MatrixExpr) else sp.S.Zero
    return sp.Add(*out) if not isinstance(out[0], sp.MatrixExpr) else sp.MatAdd(*out).doit()


#: The flow of a :class:`MatrixNetwork` is a :class:`~exactdyn.symbolic.flow.GradientFlow`
#: (the old name, kept for code that imports it).
MatrixGradientFlow = GradientFlow


def derive_matrix_flow(network: MatrixNetwork) -> GradientFlow:
    """Differentiate the loss in matrix form; prove the declared conserved matrices."""
    steps = list(network.loss_steps)
    rhs = {}
    for W in network.params:
        grad = matrix_gradient(network.loss, W, network.symmetric)
        # The rate stays outside, so both layers share the residual of the data fit.
        rhs[W] = sp.MatMul(-network.rates[W], factor_sides(grad))
        steps.append(DerivationStep(
            f"Gradient flow of {W.name}",
            sp.Eq(sp.Symbol(f"\\dot{{{W.name}}}"), rhs[W], evaluate=False),
            f"\\dot {W.name} = -\\eta\\,\\partial L/\\partial {W.name} by matrix calculus "
            "(d tr(A X B)/dX = A^T B^T), symmetric moment matrices untransposed."))
    flow = GradientFlow(network, rhs, [], steps)
    for name, Q in network.conserved.items():
        dQ = flow.time_derivative(Q)
        proven = is_zero_matrix(dQ)
        flow.conserved.append(ConservedQuantity(name, Q, dQ, proven,
                                                "Rescaling symmetry between the layers."))
        steps.append(DerivationStep(
            f"Conserved: {name}",
            sp.Eq(sp.Derivative(sp.Symbol(name), sp.Symbol("t")), sp.S.Zero),
            f"d/dt of {sp.sstr(Q)} along the flow expands to the zero matrix.",
            proven=proven))
    return flow
