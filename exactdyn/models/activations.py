r"""Activation functions of two-layer networks: named or parsed from a whitelisted
expression in ``x``, with their derivative, multiplicity and homogeneity derived in sympy.

The multiplicity :math:`p` of :math:`\sigma` [ZX] is the order of its first nonzero
derivative at 0, :math:`\sigma^{(k)}(0) = 0` for :math:`k < p`, :math:`\sigma^{(p)}(0) \ne
0` (tanh: 1, :math:`x\tanh x`: 2, :math:`x^2\tanh x`: 3). For a piecewise activation the
derivatives are taken from the right (:math:`x \to 0^+`), so ReLU has :math:`p = 1` and
leading part :math:`\tilde\sigma = \mathrm{ReLU}`. Zhou et al., "Towards understanding the
condensation of neural networks at initial training", NeurIPS 2022.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

X = sp.Symbol("x", real=True)
_XP = sp.Symbol("x_p", positive=True)
_XN = sp.Symbol("x_n", negative=True)

#: Functions an activation expression may call (name in the string -> sympy function).
ALLOWED_FUNCTIONS = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh,
                     "sinh": sp.sinh, "cosh": sp.cosh, "sin": sp.sin, "cos": sp.cos,
                     "atan": sp.atan, "erf": sp.erf, "abs": sp.Abs, "Abs": sp.Abs}
ALLOWED_CONSTANTS = {"pi": sp.pi, "E": sp.E}
_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load,
                  ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub,
                  ast.UAdd)

#: Named activations as sympy expressions in x. ReLU's derivative at 0 is 0 (strict
#: inequality in the Piecewise); leaky ReLU has slope 1/100 for x <= 0.
NAMED = {
    "relu": sp.Piecewise((X, X > 0), (0, True)),
    "leaky_relu": sp.Piecewise((X, X > 0), (X / 100, True)),
    "tanh": sp.tanh(X),
    "sigmoid": 1 / (1 + sp.exp(-X)),
    "softplus": sp.log(1 + sp.exp(X)),
    "silu": X / (1 + sp.exp(-X)),
    "gelu": X * (1 + sp.erf(X / sp.sqrt(2))) / 2,
    "x_tanh": X * sp.tanh(X),
    "x2_tanh": X**2 * sp.tanh(X),
    "linear": X,
}
#: Positively 1-homogeneous named activations (a_k^2 - |w_k|^2 conserved).
HOMOGENEOUS = ("relu", "leaky_relu", "linear")


def _validate_expression(text: str) -> None:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"activation expression {text!r} is not valid syntax: {exc.msg}") \
            from None
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
            raise ValueError(f"activation expression {text!r}: use ** for powers, not ^")
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"activation expression {text!r}: {type(node).__name__} is not "
                             "allowed (only numbers, x, + - * / **, and calls of "
                             f"{', '.join(ALLOWED_FUNCTIONS)})")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                               or not isinstance(node.value, (int, float))):
            raise ValueError(f"activation expression {text!r}: constant {node.value!r} is "
                             "not a real number")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in ALLOWED_FUNCTIONS:
                name = getattr(node.func, "id", ast.dump(node.func))
                raise ValueError(f"activation expression {text!r}: function {name!r} is not "
                                 f"allowed; allowed: {', '.join(ALLOWED_FUNCTIONS)}")
            if node.keywords or len(node.args) != 1:
                raise ValueError(f"activation expression {text!r}: {node.func.id} takes "
                                 "exactly one positional argument")
        if isinstance(node, ast.Name):
            ok = node.id == "x" or node.id in ALLOWED_FUNCTIONS or node.id in ALLOWED_CONSTANTS
            if not ok:
                raise ValueError(f"activation expression {text!r}: name {node.id!r} is not "
                                 "allowed; use the variable x, the constants pi, E, and "
                                 f"the functions {', '.join(ALLOWED_FUNCTIONS)}")


def parse_activation(text: str) -> sp.Expr:
    """A whitelisted expression in ``x`` as a sympy expression (never ``eval`` of names).

    The string is checked on its Python AST first (numbers, ``x``, ``+ - * / **``, the
    functions in :data:`ALLOWED_FUNCTIONS` and the constants ``pi``, ``E``); only then is it
    handed to ``parse_expr`` with a namespace holding nothing else.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"activation must be a name or an expression in x, got {text!r}")
    _validate_expression(text)
    local = {"x": X, **ALLOWED_FUNCTIONS, **ALLOWED_CONSTANTS}
    glob = {"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
            "Symbol": sp.Symbol}
    expr = parse_expr(text, local_dict=local, global_dict=glob,
                      transformations=standard_transformations)
    if not isinstance(expr, sp.Expr) or not expr.free_symbols <= {X}:
        raise ValueError(f"activation expression {text!r} must be an expression in x only")
    if not expr.has(X):
        raise ValueError(f"activation expression {text!r} must depend on x")
    return expr


@dataclass(frozen=True)
class Activation:
    r"""An activation :math:`\sigma` with its derivative and multiplicity (sympy)."""

    name: str
    expr: sp.Expr

    @property
    def derivative(self) -> sp.Expr:
        return sp.diff(self.expr, X)

    @property
    def piecewise(self) -> bool:
        """True when :math:`\\sigma'` jumps (kinks that the integrator must locate)."""
        return self.expr.has(sp.Piecewise) or self.expr.has(sp.Abs)

    @property
    def multiplicity(self) -> int:
        r"""Order :math:`p` of the first nonzero derivative at 0 (from the right)."""
        right = self.expr.subs(X, _XP)
        for k in range(0, 12):
            value = sp.limit(sp.diff(right, _XP, k), _XP, 0, "+")
            if value != 0:
                return k
        raise ValueError(f"activation {self.name!r} has no nonzero derivative of order < 12 "
                         "at 0")

    def derivative_at_zero(self, k: int) -> sp.Expr:
        """:math:`\\sigma^{(k)}(0^+)`."""
        return sp.limit(sp.diff(self.expr.subs(X, _XP), _XP, k), _XP, 0, "+")

    @property
    def homogeneous(self) -> bool:
        r"""Positively 1-homogeneous: :math:`x\sigma'(x) = \sigma(x)` (Euler), proven in sympy."""
        identity = X * self.derivative - self.expr
        return bool(sp.simplify(sp.piecewise_fold(identity)) == 0)

    def branches(self) -> tuple:
        r"""Analytic branches :math:`(\sigma_+, \sigma_-)` of a piecewise activation whose
        only kink is at 0 (:math:`\sigma = \sigma_+` for x > 0, :math:`\sigma_-` for x < 0).

        Raises
        ------
        ValueError
            If a branch still has a kink (a kink away from 0).
        """
        expr = self.expr.rewrite(sp.Piecewise)
        plus = expr.subs(X, _XP)
        minus = expr.subs(X, _XN)
        for b in (plus, minus):
            if b.has(sp.Piecewise) or b.has(sp.Abs) or b.has(sp.sign) or b.has(sp.Heaviside):
                raise ValueError(f"activation {self.name!r} has kinks away from 0; only "
                                 "kinks at 0 are located")
        return plus.subs(_XP, X), minus.subs(_XN, X)

    def numeric(self):
        r"""float64 callables ``(sigma, dsigma)`` lowered from the sympy expressions.

        A piecewise activation with its kink at 0 is lowered branch by branch,
        :math:`\sigma(h) = \mathrm{where}(h > 0, \sigma_+(h), \sigma_-(h))` (and the same
        for σ', so σ'(0) is :math:`\sigma_-'(0)`, 0 for ReLU): the same values as
        ``lambdify`` of the Piecewise, whose ``numpy.select`` is about ten times slower."""
        import scipy.special

        mods = [{"erf": scipy.special.erf}, "numpy"]
        if self.piecewise:
            try:
                plus, minus = self.branches()
            except ValueError:
                pass
            else:
                return (_by_sign(plus, minus, mods),
                        _by_sign(sp.diff(plus, X), sp.diff(minus, X), mods))
        return (_elementwise(sp.lambdify(X, self.expr, modules=mods)),
                _elementwise(sp.lambdify(X, self.derivative, modules=mods)))


def _by_sign(plus: sp.Expr, minus: sp.Expr, mods):
    r"""``h ↦ plus(h) if h > 0 else minus(h)`` elementwise.

    With polynomial branches (finite everywhere) as :math:`1\{h>0\}\,\sigma_+(h) +
    1\{h\le 0\}\,\sigma_-(h)`, dropping a branch that is 0 (ReLU: one product): exact,
    since one of the two terms is exactly 0, and several times faster than
    ``numpy.where`` on an unsorted sign pattern. Otherwise ``numpy.where``."""
    fp, fm = (sp.lambdify(X, b, modules=mods) for b in (plus, minus))
    if not (plus.is_polynomial(X) and minus.is_polynomial(X)):
        def g(h):
            with np.errstate(over="ignore", invalid="ignore"):
                return np.where(h > 0, fp(h), fm(h)).astype(float, copy=False)
        return g
    if minus == 0:
        return lambda h: (h > 0) * np.asarray(fp(h), dtype=float)
    if plus == 0:
        return lambda h: (h <= 0) * np.asarray(fm(h), dtype=float)
    return lambda h: (h > 0) * np.asarray(fp(h), dtype=float) + (h <= 0) * np.asarray(
        fm(h), dtype=float)


def _elementwise(f):
    def g(h):
        with np.errstate(over="ignore"):
            return np.broadcast_to(f(h), np.shape(h)).astype(float, copy=False)
    return g


def activation(spec) -> Activation:
    """An :class:`Activation` from a name in :data:`NAMED` or an expression string in x."""
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"activation must be one of {', '.join(NAMED)} or an expression "
                         f"string in x; got {spec!r}")
    if spec in NAMED:
        return Activation(spec, NAMED[spec])
    if spec.isidentifier() and spec != "x":
        raise ValueError(f"activation must be one of {', '.join(NAMED)} or an expression "
                         f"string in x; got unknown name {spec!r}")
    return Activation(spec, parse_activation(spec))
