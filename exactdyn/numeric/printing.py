"""The scalar code printer both notations' printers share (:mod:`.indexed`,
:mod:`.matrix_lowering`): functions by bare name, resolved in the namespace a source is
compiled in (:data:`.codegen.NUMPY_NAMESPACE` or :data:`.codegen.MPMATH_NAMESPACE`)."""

from __future__ import annotations

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
