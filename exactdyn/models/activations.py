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
import math
import unicodedata
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
#: Largest |exponent| of a power with a constant exponent, and largest |integer literal|:
#: ``x*9**9**9`` would otherwise be computed exactly by sympy (a number with 3.7e8 digits).
MAX_EXPONENT = 64
MAX_LITERAL = 1e300
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
        if isinstance(node, ast.Constant) and not (abs(node.value) <= MAX_LITERAL):
            raise ValueError(f"activation expression {text!r}: constant {node.value!r} is not "
                             f"a finite number of magnitude at most {MAX_LITERAL:g}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            _check_exponent(text, node.right)
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


def _constant_value(node):
    """The float value of a constant exponent made of numbers, pi, E and + - * /; ``None``
    when it calls a function (harmless: no nested power is computed exactly)."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return {"pi": math.pi, "E": math.e}.get(node.id)
    if isinstance(node, ast.UnaryOp):
        v = _constant_value(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Pow):
        a, b = _constant_value(node.left), _constant_value(node.right)
        if a is None or b is None:
            return None
        try:
            return {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                    ast.Div: lambda: a / b}[type(node.op)]()
        except (ZeroDivisionError, OverflowError, KeyError):
            return math.inf
    return None


def _check_exponent(text, node) -> None:
    """A power's exponent: an expression in x, or a constant of magnitude <= MAX_EXPONENT
    without a power of its own (``9**9**9`` is 9**(9**9))."""
    if any(isinstance(n, ast.Name) and n.id == "x" for n in ast.walk(node)):
        return
    nested = any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) for n in ast.walk(node))
    value = None if nested else _constant_value(node)
    if not nested and (value is None or abs(value) <= MAX_EXPONENT):
        return
    raise ValueError(f"activation expression {text!r}: a power's exponent must be an "
                     f"expression in x or a constant of magnitude at most {MAX_EXPONENT} "
                     f"(no tower of powers), got {ast.unparse(node)!r}")


def _check_real(text: str, expr: sp.Expr) -> None:
    """Reject complex, infinite or undefined constants, and an expression that is not real
    at any of a few sample points (``sqrt(-1 - x**2)``)."""
    if expr.has(sp.I) or expr.has(sp.zoo) or expr.has(sp.nan) or expr.has(sp.oo) \
            or expr.has(-sp.oo):
        raise ValueError(f"activation expression {text!r} is not a real function of x "
                         f"(it reads as {expr}); complex, infinite and undefined constants "
                         f"(sqrt(-1), x/0) are not allowed")
    real_somewhere = False
    for v in (-2, -1, -0.5, 0.5, 1, 2):
        try:
            val = complex(expr.subs(X, v).evalf(20))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            continue
        if val.imag == 0 and math.isfinite(val.real):
            real_somewhere = True
            break
    if not real_somewhere:
        raise ValueError(f"activation expression {text!r} is not real at any of x = -2, -1, "
                         f"-0.5, 0.5, 1, 2")


def parse_activation(text: str) -> sp.Expr:
    """A whitelisted expression in ``x`` as a sympy expression (never ``eval`` of names).

    The string is checked on its Python AST first (numbers, ``x``, ``+ - * / **``, the
    functions in :data:`ALLOWED_FUNCTIONS` and the constants ``pi``, ``E``); only then is it
    handed to ``parse_expr`` with a namespace holding nothing else. The text is NFKC-normalised
    first and must then be ASCII (so the whitelist check and the parser read the same
    characters: Python normalises identifiers, sympy's tokenizer does not). Constants must be
    finite and at most :data:`MAX_LITERAL`, powers with a constant exponent at most
    :data:`MAX_EXPONENT`, and the result a real function of x (no ``sqrt(-1)``, ``x/0``).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"activation must be a name or an expression in x, got {text!r}")
    original = text
    text = unicodedata.normalize("NFKC", text)
    bad = sorted({c for c in text if ord(c) > 127})
    if bad:
        raise ValueError(f"activation expression {original!r}: characters "
                         f"{', '.join(repr(c) for c in bad)} are not allowed (ASCII only: "
                         f"x, numbers, + - * / **, whitelisted functions)")
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
    _check_real(text, expr)
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
        return (_elementwise(sp.lambdify(X, self.expr, modules=mods),
                             _may_overflow(self.expr)),
                _elementwise(sp.lambdify(X, self.derivative, modules=mods),
                             _may_overflow(self.derivative)))

    def numeric_second(self):
        r"""float64 callable :math:`\sigma''`, for the symbolically derived modified flow of
        gradient descent (:func:`exactdyn.symbolic.twolayer.derive_two_layer_modified`).

        As :meth:`numeric`: a piecewise activation with its kink at 0 branch by branch,
        :math:`\sigma''(h) = \sigma_\pm''(h)` on either side (0 for ReLU; at 0 the left
        branch's), i.e. the second derivative on each activation region, where the modified
        flow of a kinked activation is defined.

        Raises
        ------
        ValueError
            A piecewise activation whose branches still have kinks (no region-wise σ'').
        """
        import scipy.special

        mods = [{"erf": scipy.special.erf}, "numpy"]
        if self.piecewise:
            plus, minus = self.branches()
            return _by_sign(sp.diff(plus, X, 2), sp.diff(minus, X, 2), mods)
        second = sp.diff(self.expr, X, 2)
        return _elementwise(sp.lambdify(X, second, modules=mods), _may_overflow(second))


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


#: Functions whose values are bounded, so that an expression built from them and x by
#: sums, products and positive integer powers of them cannot overflow at a finite x.
_BOUNDED = (sp.tanh, sp.erf, sp.sin, sp.cos, sp.atan)


def _may_overflow(expr: sp.Expr) -> bool:
    """False when ``expr`` is a sum of products of constants, x and positive integer powers
    of bounded functions (tanh, 1 - tanh(x)², erf, ...): no float64 overflow at a finite
    x. Otherwise (exp, cosh, x³, ...) it may overflow, and its numeric form silences
    that warning (the integrator reports a non-finite state itself)."""
    for f in expr.atoms(sp.Function):
        if not isinstance(f, _BOUNDED):
            return True
    for p in expr.atoms(sp.Pow):
        if not (isinstance(p.base, _BOUNDED) and p.exp.is_Integer and p.exp > 0):
            return True
    return False


def _elementwise(f, may_overflow: bool = True):
    """``f`` as an elementwise float64 map of arrays of any shape.

    A result that is already a float64 array of the argument's shape is returned as it is
    (the right-hand sides' hot path: no ``broadcast_to``, no ``astype``); a constant (the
    derivative of a linear branch) is broadcast to the shape. ``np.errstate`` (a few µs a
    call) only where ``f`` may overflow (:func:`_may_overflow`)."""
    def shaped(r, h):
        if type(r) is np.ndarray and r.dtype == np.float64 and r.shape == np.shape(h):
            return r
        return np.broadcast_to(r, np.shape(h)).astype(float, copy=False)

    if not may_overflow:
        return lambda h: shaped(f(h), h)

    def g(h):
        with np.errstate(over="ignore"):
            return shaped(f(h), h)
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
