r"""What the two code printers share: namespaces, the scalar printer, compiled sources.

exactdyn prints every derived flow as Python source that works on whole arrays, with one
printer per notation: :mod:`exactdyn.numeric.indexed` for ``IndexedBase`` entries and sums
over index kinds (neurons, samples, features, patches, ...), and
:mod:`exactdyn.numeric.matrix_lowering` for ``MatrixSymbol`` chains. The source names its
functions by bare name (``sqrt``, ``tanh``, exact rationals as ``_rat(p, q)``), resolved in
a namespace chosen when it is compiled: :data:`NUMPY_NAMESPACE` for float64 arrays or
:data:`MPMATH_NAMESPACE` for object arrays of ``mpmath.mpf`` numbers, so the numeric and
the arbitrary-precision paths run one derivation's one source.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter


class _ArrayPrinter(PythonCodePrinter):
    """Prints functions by bare name (``sqrt``), resolved in the chosen namespace."""

    def _module_format(self, fqn, register=True):
        return fqn.split(".")[-1]

    def _print_Pow(self, expr, rational=False):
        if expr.exp == sp.S.Half:
            return f"sqrt({self._print(expr.base)})"
        if expr.exp == -sp.S.Half:
            return f"(1/sqrt({self._print(expr.base)}))"
        return super()._print_Pow(expr, rational=rational)

    def _print_Rational(self, expr):
        # Exact in both namespaces: float division for numpy, mpf division for mpmath.
        return f"_rat({expr.p}, {expr.q})"

    def _print_Half(self, expr):
        return self._print_Rational(expr)


def _mp_elementwise(f):
    ufunc = np.frompyfunc(f, 1, 1)
    return lambda a: ufunc(a) if isinstance(a, np.ndarray) else f(a)


def _bdot(a, b):
    """Reduction over the last axis, batched over leading axes (object arrays too)."""
    if np.asarray(a).dtype == object or np.asarray(b).dtype == object:
        return np.sum(a * b, axis=-1)
    return np.einsum("...i,...i->...", a, b)


NUMPY_NAMESPACE = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "tanh": np.tanh,
                   "cosh": np.cosh, "sinh": np.sinh, "Abs": np.abs, "abs": np.abs,
                   "np": np, "_rat": lambda p, q: p / q, "_bdot": _bdot}
MPMATH_NAMESPACE = {"sqrt": _mp_elementwise(mpmath.sqrt), "exp": _mp_elementwise(mpmath.exp),
                    "log": _mp_elementwise(mpmath.log), "tanh": _mp_elementwise(mpmath.tanh),
                    "cosh": _mp_elementwise(mpmath.cosh), "sinh": _mp_elementwise(mpmath.sinh),
                    "Abs": _mp_elementwise(abs), "abs": _mp_elementwise(abs), "np": np,
                    "_rat": lambda p, q: mpmath.mpf(p) / q, "_bdot": _bdot}


@dataclass(frozen=True)
class CompiledExpressions:
    """Generated source of one function, its argument names and, for indexed sources, the
    index kinds of each returned array's axes."""

    source: str
    arg_names: tuple
    func_name: str
    out_labels: tuple = ()

    def function(self, namespace: dict | None = None):
        """The function compiled in ``namespace`` (default :data:`NUMPY_NAMESPACE`; a
        partial namespace, such as an activation and its derivative, is completed from it)."""
        scope = dict(NUMPY_NAMESPACE, **(namespace or {}))
        exec(compile(self.source, f"<exactdyn:{self.func_name}>", "exec"), scope)  # noqa: S102
        return scope[self.func_name]
