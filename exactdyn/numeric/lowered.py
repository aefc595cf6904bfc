r"""The one lowered-flow type: :class:`LoweredFlow`, what :func:`exactdyn.lower` returns.

A lowered flow is a derived gradient flow (:class:`~exactdyn.symbolic.flow.GradientFlow`)
printed to numeric source for one model instance. Every notation of the flow has its own
printer and so its own subclass, holding that printer's output:

- ``"indexed"`` (one neuron index):
  :class:`~exactdyn.numeric.lowering.IndexedLoweredFlow`, printed by :mod:`.indexed`;
- ``"multi_index"`` (several index kinds):
  :class:`~exactdyn.numeric.multi_index.MultiIndexLoweredFlow`, printed by :mod:`.indexed`;
- ``"matrix"``: :class:`~exactdyn.numeric.matrix_lowering.MatrixLoweredFlow`, and
  ``"chain"`` (deep linear): :class:`~exactdyn.numeric.matrix_lowering.ChainLoweredFlow`,
  printed by :mod:`.matrix_lowering` (one chain-order program);
- ``"activation"`` (one hidden layer of an activation σ: the two-layer network, the CNN,
  kinked user networks): :class:`~exactdyn.numeric.layer_flow.LayerLoweredFlow`, over the
  sources its family registers.

What they share is here: the packed state (``state_names``, ``shapes``, ``sizes``,
``slices``, ``size``; ``pack``, ``unpack``), the model, the derived flow (``flow``, derived
only when asked for if the lowering came from the on-disk cache), ``notation``, and the
interface every subclass implements, ``rhs(t, y)`` and ``observables(states)``. The
optional hooks are capabilities a caller asks for by name: ``jac`` (an exact Jacobian, or
``None``), ``rhs_mp`` (the right-hand side on ``mpmath.mpf`` object arrays), and the
high-precision ``taylor_engine(order, ...)`` and ``heyoka_view()``.

Constructing the base, ``LoweredFlow(flow, model)``, gives the subclass of ``flow``'s
notation (one printer per notation). This module needs numpy only, so that a lowering read
from the disk cache runs without sympy.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

#: notation -> the subclass that lowers a derived flow of it (filled as they are defined).
_BY_NOTATION: dict = {}


class LoweredFlow:
    """Numeric callables of a derived gradient flow, for one model instance: the packed
    state and the interface every notation's lowering shares (see the module).

    Attributes
    ----------
    notation : str
        The notation of the derived flow it lowers (the
        :class:`~exactdyn.symbolic.flow.GradientFlow`'s ``notation``: ``"indexed"``,
        ``"multi_index"``, ``"matrix"``, ``"chain"`` or ``"activation"``), and with it which
        printer's output the lowering holds: callers ask it, not the lowering's type.
    model
        The model instance whose values (hyperparameters, data) the callables hold.
    state_names : tuple of str
        Names of the state arrays, in packing order.
    shapes, sizes, slices : dict
        Shape, number of entries and slice of the packed state of each state array.
    size : int
        Length of the packed state.
    """

    #: The notation of the lowered flow (set by each lowering).
    notation: ClassVar[str] = ""
    #: ``jac(t, y)``, the exact Jacobian of :meth:`rhs` where the lowering derives one;
    #: ``None``: implicit methods estimate it by differences, Jacobian-vector products take
    #: the complex step (:func:`exactdyn.descent.jvp`).
    jac: Any = None

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

    def rhs(self, t, y) -> np.ndarray:
        """The right-hand side :math:`\\dot\\theta = -H\\nabla L(\\theta)` on the packed
        state ``y`` (``solve_ivp``'s signature)."""
        raise NotImplementedError(f"{type(self).__name__} does not define rhs")

    def observables(self, states: dict) -> dict:
        """The observables on named states (time first): one array per observable."""
        raise NotImplementedError(f"{type(self).__name__} does not define observables")

    def __init_subclass__(cls, from_flow: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        # A lowering constructed as ``cls(flow, model)`` is what the base's constructor
        # gives for its notation; ``from_flow=False``: lowered from the model instead (the
        # activation notation: its family's registered sources).
        if from_flow and cls.notation:
            _BY_NOTATION.setdefault(cls.notation, cls)

    def __new__(cls, *args, **kwargs):
        if cls is not LoweredFlow:
            return super().__new__(cls)
        # LoweredFlow(flow, model, ...): the lowering of flow's notation
        flow = args[0] if args else kwargs.get("flow")
        notation = getattr(flow, "notation", None)
        if notation not in _BY_NOTATION:
            raise TypeError(f"flow must be a derived GradientFlow in a notation with a "
                            f"lowering ({sorted(_BY_NOTATION)} once imported), got "
                            f"{type(flow).__name__} (notation {notation!r}); "
                            "exactdyn.lower(model) lowers any model")
        return super().__new__(_BY_NOTATION[notation])
