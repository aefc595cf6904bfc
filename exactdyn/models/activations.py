r"""Activation functions of two-layer networks: named or parsed from a whitelisted
expression in ``x``, with their derivative, multiplicity and homogeneity derived in sympy.

The multiplicity :math:`p` of :math:`\sigma` [ZX] is the order of its first nonzero
derivative at 0, :math:`\sigma^{(k)}(0) = 0` for :math:`k < p`, :math:`\sigma^{(p)}(0) \ne
0` (tanh: 1, :math:`x\tanh x`: 2, :math:`x^2\tanh x`: 3). For a piecewise activation the
derivatives are taken from the right (:math:`x \to 0^+`), so ReLU has :math:`p = 1` and
leading part :math:`\tilde\sigma = \mathrm{ReLU}`. Zhou et al., "Towards understanding the
condensation of neural networks at initial training", NeurIPS 2022.

Building a network needs no sympy for the named activations (:data:`NAMES`): their float64
callables (σ, σ', σ'', the branches and slopes of a kink at 0) and their multiplicity come
from a table (:data:`_NUMERIC`), written as the very expressions sympy's ``lambdify``
prints for them, so that the numbers are the same bit for bit (tests/test_activations.py
checks them against ``lambdify`` and finite differences). The sympy expression
(:attr:`Activation.expr`, :data:`NAMED`, :data:`X`) is built when it is first asked for.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import sympy as sp

#: Names of the functions an activation expression may call (:data:`ALLOWED_FUNCTIONS`
#: maps them to sympy functions, built on first use).
FUNCTION_NAMES = ("exp", "log", "sqrt", "tanh", "sinh", "cosh", "sin", "cos", "atan", "erf",
                  "abs", "Abs")
CONSTANT_NAMES = ("pi", "E")
#: Largest |exponent| of a power with a constant exponent, and largest |integer literal|:
#: ``x*9**9**9`` would otherwise be computed exactly by sympy (a number with 3.7e8 digits).
MAX_EXPONENT = 64
MAX_LITERAL = 1e300
_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load,
                  ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub,
                  ast.UAdd)

#: The named activations (:data:`NAMED` holds their sympy expressions).
NAMES = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus", "silu", "gelu", "x_tanh",
         "x2_tanh", "linear")
#: Positively 1-homogeneous named activations (a_k^2 - |w_k|^2 conserved).
HOMOGENEOUS = ("relu", "leaky_relu", "linear")


class _Symbolic:
    """The sympy objects of this module, built once, on first use (sympy takes ~0.4 s to
    import, and a float64 run of a named activation never needs it)."""

    def __init__(self):
        import sympy as sp

        self.sp = sp
        self.X = sp.Symbol("x", real=True)
        self.XP = sp.Symbol("x_p", positive=True)
        self.XN = sp.Symbol("x_n", negative=True)
        X = self.X
        #: name in an expression string -> sympy function
        self.functions = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh,
                          "sinh": sp.sinh, "cosh": sp.cosh, "sin": sp.sin, "cos": sp.cos,
                          "atan": sp.atan, "erf": sp.erf, "abs": sp.Abs, "Abs": sp.Abs}
        self.constants = {"pi": sp.pi, "E": sp.E}
        # ReLU's derivative at 0 is 0 (strict inequality in the Piecewise); leaky ReLU has
        # slope 1/100 for x <= 0.
        self.named = {
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
        assert tuple(self.named) == NAMES


_SYMBOLIC: list = []


def _sym() -> _Symbolic:
    if not _SYMBOLIC:
        _SYMBOLIC.append(_Symbolic())
    return _SYMBOLIC[0]


def __getattr__(name: str) -> Any:
    # X (the variable of every activation expression), NAMED (name -> sympy expression),
    # ALLOWED_FUNCTIONS, ALLOWED_CONSTANTS: sympy objects, built on first access.
    lazy = {"X": "X", "NAMED": "named", "ALLOWED_FUNCTIONS": "functions",
            "ALLOWED_CONSTANTS": "constants"}
    if name in lazy:
        return getattr(_sym(), lazy[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
                             f"{', '.join(FUNCTION_NAMES)})")
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
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTION_NAMES:
                name = getattr(node.func, "id", ast.dump(node.func))
                raise ValueError(f"activation expression {text!r}: function {name!r} is not "
                                 f"allowed; allowed: {', '.join(FUNCTION_NAMES)}")
            if node.keywords or len(node.args) != 1:
                raise ValueError(f"activation expression {text!r}: {node.func.id} takes "
                                 "exactly one positional argument")
        if isinstance(node, ast.Name):
            ok = node.id == "x" or node.id in FUNCTION_NAMES or node.id in CONSTANT_NAMES
            if not ok:
                raise ValueError(f"activation expression {text!r}: name {node.id!r} is not "
                                 "allowed; use the variable x, the constants pi, E, and "
                                 f"the functions {', '.join(FUNCTION_NAMES)}")


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
    S = _sym()
    sp = S.sp
    if expr.has(sp.I) or expr.has(sp.zoo) or expr.has(sp.nan) or expr.has(sp.oo) \
            or expr.has(-sp.oo):
        raise ValueError(f"activation expression {text!r} is not a real function of x "
                         f"(it reads as {expr}); complex, infinite and undefined constants "
                         f"(sqrt(-1), x/0) are not allowed")
    real_somewhere = False
    for v in (-2, -1, -0.5, 0.5, 1, 2):
        try:
            val = complex(expr.subs(S.X, v).evalf(20))
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
    functions in :data:`FUNCTION_NAMES` and the constants ``pi``, ``E``); only then is it
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
    from sympy.parsing.sympy_parser import parse_expr, standard_transformations

    S = _sym()
    sp = S.sp
    X = S.X
    local = {"x": X, **S.functions, **S.constants}
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


# ---- float64 forms of the named activations, without sympy -------------------------------
#
# Each body below is, character for character, what sympy's lambdify (numpy printer, erf
# from scipy.special) prints for the named expression, its derivatives or its branches, so
# the same floating-point operations run in the same order: the table and lambdify agree
# bit for bit, overflow and NaN included (tests/test_activations.py checks it).
exp, log, sqrt, tanh, pi = np.exp, np.log, np.sqrt, np.tanh, np.pi


def _erf(x):
    from scipy.special import erf  # only gelu needs scipy.special

    return erf(x)


@dataclass(frozen=True)
class _SmoothForm:
    """σ, σ', σ'' of a smooth named activation (float64, elementwise), its multiplicity."""

    sigma: Callable
    dsigma: Callable
    d2sigma: Callable
    multiplicity: int
    at_zero: tuple  # σ(0), σ'(0), σ''(0)
    #: σ, σ', σ'' are bounded (polynomials in tanh): no float64 overflow at a finite x, so
    #: their numeric forms need no ``np.errstate`` (a few µs a call on the hot path).
    bounded: bool = False


@dataclass(frozen=True)
class _KinkForm:
    """A named activation with one kink, at 0: the branches :math:`\\sigma_\\pm` and their
    first two derivatives (callables, or the constant that lambdify returns for a constant
    expression), whether both branches are polynomials, the slopes :math:`c_\\pm` when
    :math:`\\sigma_\\pm = c_\\pm x`, and the multiplicity (from the right)."""

    plus: tuple
    minus: tuple
    polynomial: bool
    slopes: tuple | None
    multiplicity: int
    at_zero: tuple  # σ(0+), σ'(0+), σ''(0+)


def _gelu_form() -> _SmoothForm:
    erf = _erf
    return _SmoothForm(
        lambda x: (1/2)*x*(erf((1/2)*sqrt(2)*x) + 1),
        lambda x: (1/2)*sqrt(2)*x*exp(-1/2*x**2)/sqrt(pi) + (1/2)*erf((1/2)*sqrt(2)*x) + 1/2,
        lambda x: sqrt(2)*(1 - 1/2*x**2)*exp(-1/2*x**2)/sqrt(pi),
        1, (0.0, 0.5, 0.7978845608028654))  # σ''(0) = sqrt(2/pi), correctly rounded


#: The named activations' float64 forms: multiplicity as derived by
#: :attr:`Activation.multiplicity` (tanh 1, sigmoid and softplus 0, x·tanh 2, x²·tanh 3),
#: and :math:`\sigma^{(k)}(0^+)` for k = 0, 1, 2 (:meth:`Activation.value_at_zero`).
_NUMERIC: dict = {
    "relu": _KinkForm(plus=(lambda x: x, 1, 0), minus=(0, 0, 0), polynomial=True,
                      slopes=(1.0, 0.0), multiplicity=1, at_zero=(0.0, 1.0, 0.0)),
    "leaky_relu": _KinkForm(plus=(lambda x: x, 1, 0), minus=(lambda x: (1/100)*x, 1/100, 0),
                            polynomial=True, slopes=(1.0, 0.01), multiplicity=1,
                            at_zero=(0.0, 1.0, 0.0)),
    "tanh": _SmoothForm(lambda x: tanh(x), lambda x: 1 - tanh(x)**2,
                        lambda x: 2*(tanh(x)**2 - 1)*tanh(x), 1, (0.0, 1.0, 0.0),
                        bounded=True),
    "sigmoid": _SmoothForm(
        lambda x: (1 + exp(-x))**(-1.0),
        lambda x: exp(-x)/(1 + exp(-x))**2,
        lambda x: (-1 + 2*exp(-x)/(1 + exp(-x)))*exp(-x)/(1 + exp(-x))**2, 0,
        (0.5, 0.25, 0.0)),
    "softplus": _SmoothForm(
        lambda x: log(exp(x) + 1),
        lambda x: exp(x)/(exp(x) + 1),
        lambda x: (1 - exp(x)/(exp(x) + 1))*exp(x)/(exp(x) + 1), 0,
        (0.6931471805599453, 0.5, 0.25)),  # σ(0) = log 2
    "silu": _SmoothForm(
        lambda x: x/(1 + exp(-x)),
        lambda x: x*exp(-x)/(1 + exp(-x))**2 + (1 + exp(-x))**(-1.0),
        lambda x: (-x*(1 - 2*exp(-x)/(1 + exp(-x))) + 2)*exp(-x)/(1 + exp(-x))**2, 1,
        (0.0, 0.5, 0.5)),
    "gelu": None,  # built on first use (_gelu_form): erf comes from scipy.special
    "x_tanh": _SmoothForm(
        lambda x: x*tanh(x),
        lambda x: x*(1 - tanh(x)**2) + tanh(x),
        lambda x: 2*(x*(tanh(x)**2 - 1)*tanh(x) - tanh(x)**2 + 1), 2, (0.0, 0.0, 2.0)),
    "x2_tanh": _SmoothForm(
        lambda x: x**2*tanh(x),
        lambda x: x**2*(1 - tanh(x)**2) + 2*x*tanh(x),
        lambda x: 2*(x**2*(tanh(x)**2 - 1)*tanh(x) - 2*x*(tanh(x)**2 - 1) + tanh(x)), 3,
        (0.0, 0.0, 0.0)),
    "linear": _SmoothForm(lambda x: x, lambda x: 1, lambda x: 0, 1, (0.0, 1.0, 0.0)),
}
assert tuple(_NUMERIC) == NAMES


def _numeric_form(name: str):
    form = _NUMERIC[name]
    return _gelu_form() if form is None else form


def _constant_or_callable(b) -> Callable:
    """A branch as a callable: a constant c as ``lambda x: c`` (what lambdify makes of a
    constant expression: it returns the number, not an array)."""
    return b if callable(b) else (lambda x, c=b: c)


class Activation:
    r"""An activation :math:`\sigma` with its derivative and multiplicity.

    Parameters
    ----------
    name : str
        A name of :data:`NAMES`, or any label (an expression's text).
    expr : sympy.Expr, optional
        The activation as a sympy expression in :data:`X`. Omitted for a named activation:
        its float64 callables then come from a table without sympy, and the expression is
        built from :data:`NAMED` when :attr:`expr` is first read.

    Equal when the names and the expressions are; frozen (as a frozen dataclass).
    """

    def __init__(self, name: str, expr: sp.Expr | None = None):
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        if expr is None and name not in NAMES:
            raise ValueError(f"name must be one of {', '.join(NAMES)} when no expr is given; "
                             f"got {name!r}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_expr", expr)

    @property
    def tabulated(self) -> bool:
        """Whether the float64 forms come from the named table (no sympy): an activation
        built by name alone. An explicit expression, even under a built-in name, is lowered
        from its expression."""
        return self._expr is None

    @property
    def _table(self):
        return _numeric_form(self.name) if self._expr is None else None

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other):
        if not isinstance(other, Activation):
            return NotImplemented
        if self.name != other.name:
            return False
        if self._expr is None and other._expr is None:
            return True
        return bool(self.expr == other.expr)

    def __hash__(self):
        return hash(self.name)

    def __getstate__(self):
        # without the cached expression of a named activation: a worker that unpickles it
        # (a sweep's task) then needs no sympy either
        return {"name": self.name, "_expr": self._expr}

    def __repr__(self) -> str:
        if self._expr is None:
            return f"Activation(name={self.name!r})"
        return f"Activation(name={self.name!r}, expr={self._expr!r})"

    @property
    def expr(self) -> sp.Expr:
        """The sympy expression in :data:`X` (built on first access for a named one)."""
        if self._expr is None:
            object.__setattr__(self, "_expr_named", _sym().named[self.name])
            return self.__dict__["_expr_named"]
        return self._expr

    @property
    def derivative(self) -> sp.Expr:
        S = _sym()
        return S.sp.diff(self.expr, S.X)

    @property
    def piecewise(self) -> bool:
        """True when :math:`\\sigma'` jumps (kinks that the integrator must locate)."""
        table = self._table
        if table is not None:
            return isinstance(table, _KinkForm)
        sp = _sym().sp
        return self.expr.has(sp.Piecewise) or self.expr.has(sp.Abs)

    @property
    def multiplicity(self) -> int:
        r"""Order :math:`p` of the first nonzero derivative at 0 (from the right)."""
        table = self._table
        if table is not None:
            return table.multiplicity
        return self._derived_multiplicity()

    def _derived_multiplicity(self) -> int:
        S = _sym()
        sp, XP = S.sp, S.XP
        right = self.expr.subs(S.X, XP)
        for k in range(0, 12):
            value = sp.limit(sp.diff(right, XP, k), XP, 0, "+")
            if value != 0:
                return k
        raise ValueError(f"activation {self.name!r} has no nonzero derivative of order < 12 "
                         "at 0")

    def derivative_at_zero(self, k: int) -> sp.Expr:
        """:math:`\\sigma^{(k)}(0^+)`."""
        S = _sym()
        sp, XP = S.sp, S.XP
        return sp.limit(sp.diff(self.expr.subs(S.X, XP), XP, k), XP, 0, "+")

    def value_at_zero(self, k: int) -> float:
        r""":math:`\sigma^{(k)}(0^+)` as a float: from the table for a named activation and
        k <= 2 (no sympy), else ``float(derivative_at_zero(k))``."""
        table = self._table
        if table is not None and 0 <= k < len(table.at_zero):
            return table.at_zero[k]
        return float(self.derivative_at_zero(k))

    @property
    def homogeneous(self) -> bool:
        r"""Positively 1-homogeneous: :math:`x\sigma'(x) = \sigma(x)` (Euler), proven in sympy."""
        S = _sym()
        identity = S.X * self.derivative - self.expr
        return bool(S.sp.simplify(S.sp.piecewise_fold(identity)) == 0)

    def branches(self) -> tuple:
        r"""Analytic branches :math:`(\sigma_+, \sigma_-)` of a piecewise activation whose
        only kink is at 0 (:math:`\sigma = \sigma_+` for x > 0, :math:`\sigma_-` for x < 0),
        as sympy expressions.

        Raises
        ------
        ValueError
            If a branch still has a kink (a kink away from 0).
        """
        S = _sym()
        sp, X, XP, XN = S.sp, S.X, S.XP, S.XN
        expr = self.expr.rewrite(sp.Piecewise)
        plus = expr.subs(X, XP)
        minus = expr.subs(X, XN)
        for b in (plus, minus):
            if b.has(sp.Piecewise) or b.has(sp.Abs) or b.has(sp.sign) or b.has(sp.Heaviside):
                raise ValueError(f"activation {self.name!r} has kinks away from 0; only "
                                 "kinks at 0 are located")
        return plus.subs(XP, X), minus.subs(XN, X)

    def numeric(self):
        r"""float64 callables ``(sigma, dsigma)``.

        A named activation's come from the table :data:`_NUMERIC` (no sympy); any other is
        lowered from its sympy expressions with ``lambdify``, giving the same numbers. A
        piecewise activation with its kink at 0 is lowered branch by branch,
        :math:`\sigma(h) = \mathrm{where}(h > 0, \sigma_+(h), \sigma_-(h))` (and the same
        for σ', so σ'(0) is :math:`\sigma_-'(0)`, 0 for ReLU): the same values as
        ``lambdify`` of the Piecewise, whose ``numpy.select`` is about ten times slower."""
        table = self._table
        if isinstance(table, _SmoothForm):
            may_overflow = not table.bounded
            return (_elementwise(table.sigma, may_overflow),
                    _elementwise(table.dsigma, may_overflow))
        if isinstance(table, _KinkForm):
            return (_by_sign(table.plus[0], table.minus[0], table.polynomial),
                    _by_sign(table.plus[1], table.minus[1], table.polynomial))
        S = _sym()
        sp, X = S.sp, S.X
        if self.piecewise:
            try:
                plus, minus = self.branches()
            except ValueError:
                pass
            else:
                return (_by_sign_sympy(plus, minus), _by_sign_sympy(sp.diff(plus, X),
                                                                    sp.diff(minus, X)))
        return (_elementwise(_lambdify(self.expr), _may_overflow(self.expr)),
                _elementwise(_lambdify(self.derivative), _may_overflow(self.derivative)))

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
        table = self._table
        if isinstance(table, _SmoothForm):
            return _elementwise(table.d2sigma, not table.bounded)
        if isinstance(table, _KinkForm):
            return _by_sign(table.plus[2], table.minus[2], table.polynomial)
        S = _sym()
        sp, X = S.sp, S.X
        if self.piecewise:
            plus, minus = self.branches()
            return _by_sign_sympy(sp.diff(plus, X, 2), sp.diff(minus, X, 2))
        second = sp.diff(self.expr, X, 2)
        return _elementwise(_lambdify(second), _may_overflow(second))

    def kink_branches(self) -> tuple:
        r"""The kink at 0 in float64, for the integrator's event location
        (:class:`exactdyn.numeric.kink_adapter.KinkAdapter`): ``(branches, flat_minus,
        slopes)`` with ``branches`` the elementwise callables :math:`(\sigma_+, \sigma_-,
        \sigma_+', \sigma_-')`, ``flat_minus`` whether :math:`\sigma_-' \equiv 0` (ReLU),
        and ``slopes`` :math:`(c_+, c_-)` when :math:`\sigma_\pm = c_\pm x` (ReLU, leaky
        ReLU, ``abs``), else ``None``.

        Raises
        ------
        ValueError
            As :meth:`branches`: a kink away from 0.
        """
        table = self._table
        if isinstance(table, _KinkForm):
            fs = (table.plus[0], table.minus[0], table.plus[1], table.minus[1])
            return (tuple(_broadcast(_constant_or_callable(f)) for f in fs),
                    not callable(table.minus[1]) and table.minus[1] == 0, table.slopes)
        S = _sym()
        sp, X = S.sp, S.X
        plus, minus = self.branches()
        exprs = (plus, minus, sp.diff(plus, X), sp.diff(minus, X))
        return (tuple(_broadcast(_lambdify(e)) for e in exprs), bool(exprs[3] == 0),
                _linear_slopes(plus, minus))


def _linear_slopes(plus, minus):
    r"""``(c+, c-)`` when both branches are :math:`c_\pm x` (ReLU, leaky ReLU, ``abs``),
    else None: a frozen pattern is then one multiplication, :math:`\sigma(h) = s\,h`,
    :math:`\sigma'(h) = s` with :math:`s = c_\pm` per entry."""
    S = _sym()
    slopes = []
    for b in (plus, minus):
        c = S.sp.diff(b, S.X)
        if c.free_symbols or S.sp.simplify(b - c * S.X) != 0:
            return None
        slopes.append(float(c))
    return tuple(slopes)


def _lambdify(expr) -> Callable:
    """``lambdify`` of an expression in :data:`X` to numpy, erf from scipy.special."""
    import scipy.special

    S = _sym()
    return S.sp.lambdify(S.X, expr, modules=[{"erf": scipy.special.erf}, "numpy"])


def _by_sign_sympy(plus: sp.Expr, minus: sp.Expr):
    """:func:`_by_sign` of two sympy branches, lambdified."""
    X = _sym().X
    polynomial = bool(plus.is_polynomial(X) and minus.is_polynomial(X))
    return _by_sign(0 if plus == 0 else _lambdify(plus), 0 if minus == 0 else _lambdify(minus),
                    polynomial)


def _by_sign(plus, minus, polynomial: bool):
    r"""``h ↦ plus(h) if h > 0 else minus(h)`` elementwise; a branch is a callable or a
    constant (0 stands for a zero branch).

    With polynomial branches (finite everywhere) as :math:`1\{h>0\}\,\sigma_+(h) +
    1\{h\le 0\}\,\sigma_-(h)`, dropping a branch that is 0 (ReLU: one product): exact,
    since one of the two terms is exactly 0, and several times faster than
    ``numpy.where`` on an unsorted sign pattern. Otherwise ``numpy.where``."""
    fp, fm = _constant_or_callable(plus), _constant_or_callable(minus)
    if not polynomial:
        def g(h):
            with np.errstate(over="ignore", invalid="ignore"):
                return np.where(h > 0, fp(h), fm(h)).astype(float, copy=False)
        return g
    if not callable(minus) and minus == 0:
        return lambda h: (h > 0) * np.asarray(fp(h), dtype=float)
    if not callable(plus) and plus == 0:
        return lambda h: (h <= 0) * np.asarray(fm(h), dtype=float)
    return lambda h: (h > 0) * np.asarray(fp(h), dtype=float) + (h <= 0) * np.asarray(
        fm(h), dtype=float)


def _may_overflow(expr) -> bool:
    """False when ``expr`` is a sum of products of constants, x and positive integer powers
    of bounded functions (tanh, 1 - tanh(x)², erf, ...): no float64 overflow at a finite
    x. Otherwise (exp, cosh, x³, ...) it may overflow, and its numeric form silences
    that warning (the integrator reports a non-finite state itself)."""
    sp = _sym().sp
    bounded = (sp.tanh, sp.erf, sp.sin, sp.cos, sp.atan)
    for f in expr.atoms(sp.Function):
        if not isinstance(f, bounded):
            return True
    for p in expr.atoms(sp.Pow):
        if not (isinstance(p.base, bounded) and p.exp.is_Integer and p.exp > 0):
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


def _broadcast(f):
    """``f`` with its result broadcast to the argument's shape, float64 (a constant branch
    such as ReLU's σ− = 0 gives an array); a float64 result of the argument's shape as it is
    (no ``broadcast_to``/``astype`` in the kink scheme's hot path)."""
    def g(h):
        r = f(h)
        if type(r) is np.ndarray and r.dtype == np.float64 and r.shape == np.shape(h):
            return r
        return np.broadcast_to(r, np.shape(h)).astype(float, copy=False)
    return g


def activation(spec) -> Activation:
    """An :class:`Activation` from a name in :data:`NAMES` or an expression string in x."""
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"activation must be one of {', '.join(NAMES)} or an expression "
                         f"string in x; got {spec!r}")
    if spec in NAMES:
        return Activation(spec)
    if spec.isidentifier() and spec != "x":
        raise ValueError(f"activation must be one of {', '.join(NAMES)} or an expression "
                         f"string in x; got unknown name {spec!r}")
    return Activation(spec, parse_activation(spec))
