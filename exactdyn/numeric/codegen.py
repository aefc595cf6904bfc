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
from typing import ClassVar

import numpy as np

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


class PackedFlow:
    """What every generated lowered flow shares: its state arrays laid out in one packed
    vector (``state_names``, ``shapes``, ``sizes``, ``slices``, ``size``; ``pack`` and
    ``unpack``), and its derived flow, derived only when asked for if the lowering came
    from the on-disk cache (``flow``).

    ``notation`` names the notation of the derived flow it lowers (the
    :class:`~exactdyn.symbolic.flow.GradientFlow`'s ``notation``: ``"indexed"``,
    ``"multi_index"``, ``"matrix"``, ``"chain"`` or ``"activation"``), and with it which
    printer's output the lowering holds: callers ask it, not the lowering's type."""

    #: The notation of the lowered flow (set by each lowering).
    notation: ClassVar[str] = ""

    def _layout(self, flow, derive, model, state_names, shapes: dict) -> None:
        self._flow, self._derive = flow, derive
        self.model = model
        self.state_names = tuple(state_names)
        #: Shape of each state array: a vector of the width, or a matrix.
        self.shapes = {n: tuple(shapes[n]) for n in self.state_names}
        self.sizes = {n: int(np.prod(self.shapes[n])) for n in self.state_names}
        offsets = np.cumsum([0] + [self.sizes[n] for n in self.state_names])
        self.slices = {n: slice(int(a), int(b)) for n, a, b in
                       zip(self.state_names, offsets[:-1], offsets[1:])}
        self.size = int(offsets[-1])
        self._slice_list = list(self.slices.values())

    @property
    def flow(self):
        """The derived flow (derived now if this lowering came from the disk cache)."""
        if self._flow is None:
            self._flow = self._derive()
        return self._flow

    def pack(self, state: dict) -> np.ndarray:
        """The packed state of named arrays (object dtype if any holds mpmath numbers)."""
        dtype = object if any(np.asarray(state[n]).dtype == object for n in self.state_names) \
            else float
        y = np.empty(self.size, dtype=dtype)
        for n in self.state_names:
            y[self.slices[n]] = np.asarray(state[n]).reshape(-1)
        return y

    def unpack(self, y) -> dict:
        """Named arrays (views) of a packed state; ``y`` may be batched (time first)."""
        y = np.asarray(y)
        return {n: y[..., s].reshape(y.shape[:-1] + self.shapes[n])
                for n, s in self.slices.items()}
