r"""What the two code printers share: namespaces, the scalar printer, compiled sources.

exactdyn prints every derived flow as Python source that works on whole arrays, with one
printer per notation: :mod:`exactdyn.numeric.indexed` for ``IndexedBase`` entries and sums
over index kinds (neurons, samples, features, patches, ...), and
:mod:`exactdyn.numeric.matrix_lowering` for ``MatrixSymbol`` chains. The source names its
functions by bare name (``sqrt``, ``tanh``, exact rationals as ``_rat(p, q)``), resolved in
a namespace chosen when it is compiled: :data:`NUMPY_NAMESPACE` for float64 arrays or
:data:`MPMATH_NAMESPACE` for object arrays of ``mpmath.mpf`` numbers, so the numeric and
the arbitrary-precision paths run one derivation's one source.

The scalar printer itself is in :mod:`exactdyn.numeric.printing` (it needs sympy; what is
here does not, so that compiled sources read from the on-disk cache run without sympy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lowered import LoweredFlow

#: The index kind of the leading time axis (observables over a trajectory).
TIME = "time"


def _mp_elementwise(name: str):
    """mpmath's function ``name`` on an mpf or elementwise on an object array. mpmath is
    imported at the first call, not with this module: a float64 process never needs it
    (about 50 ms of start-up, issue 15 item 4)."""
    resolved: list = []

    def apply(a):
        if not resolved:
            import mpmath

            f = getattr(mpmath, name)
            resolved.append((f, np.frompyfunc(f, 1, 1)))
        f, ufunc = resolved[0]
        return ufunc(a) if isinstance(a, np.ndarray) else f(a)

    return apply


def _mp_abs(a):
    return _MP_ABS(a) if isinstance(a, np.ndarray) else abs(a)


_MP_ABS = np.frompyfunc(abs, 1, 1)


def _mp_rational(p, q):
    """The exact rational ``p/q`` at the working precision (one rounding)."""
    import mpmath

    return mpmath.mpf(p) / q


def _bdot(a, b):
    """Reduction over the last axis, batched over leading axes (object arrays too)."""
    if np.asarray(a).dtype == object or np.asarray(b).dtype == object:
        return np.sum(a * b, axis=-1)
    return np.einsum("...i,...i->...", a, b)


NUMPY_NAMESPACE = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "tanh": np.tanh,
                   "cosh": np.cosh, "sinh": np.sinh, "Abs": np.abs, "abs": np.abs,
                   "np": np, "_rat": lambda p, q: p / q, "_bdot": _bdot}
MPMATH_NAMESPACE = {"sqrt": _mp_elementwise("sqrt"), "exp": _mp_elementwise("exp"),
                    "log": _mp_elementwise("log"), "tanh": _mp_elementwise("tanh"),
                    "cosh": _mp_elementwise("cosh"), "sinh": _mp_elementwise("sinh"),
                    "Abs": _mp_abs, "abs": _mp_abs, "np": np,
                    "_rat": _mp_rational, "_bdot": _bdot}


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


#: The shared base of every lowered flow, now :class:`exactdyn.numeric.LoweredFlow`
#: (:mod:`exactdyn.numeric.lowered`); this name is kept for old imports.
PackedFlow = LoweredFlow
