r"""The model protocol: what every family — and every user network — provides.

Everything downstream works from these few members alone: :func:`exactdyn.gradient_flow`
derives from ``network()``, :func:`exactdyn.lower` prints code for it and takes numbers
from ``values()``, :func:`exactdyn.solve` integrates from ``initial_state()``,
:func:`exactdyn.verify` rescales with ``with_init_scaled``, and closed forms, regime
taxonomies and report extras are found in registries keyed by the model's type
(:func:`exactdyn.closed_form.register_closed_form`,
:func:`exactdyn.regimes.register_taxonomy`, :func:`exactdyn.numeric.registry.register_numeric`,
:func:`exactdyn.report.content.register_gatherer`). No code path compares ``name``.

A new family is one model module (a frozen dataclass following :class:`Model`, usually
with :class:`ModelMixin`), optionally a closed-form module in ``closed_form/`` and a
taxonomy in ``regimes/`` that register themselves, and one line in ``exactdyn/__init__.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Model(Protocol):
    """The members every model provides (checked by ``isinstance(model, Model)``).

    Attributes
    ----------
    name : str
        The family's name (reports, metadata, the CLI's command: ``_`` becomes ``-``).
    params : dict
        Hyperparameters and, for an explicit init, the init: JSON-ready.
    """

    name: str

    @property
    def params(self) -> dict: ...

    def initial_state(self) -> dict:
        """State name -> initial array (fresh copies)."""

    def network(self):
        """The symbolic network (indexed parameters and reductions, or matrices), or the
        family's derived flow where the family derives it itself."""

    def values(self) -> dict:
        """Numbers for the network's hyperparameter and data symbols, by name, and the axis
        sizes (``width``, ...)."""

    def with_init_scaled(self, factor: float) -> Model:
        """The same model with its initial state multiplied by ``factor``."""


@dataclasses.dataclass(frozen=True)
class KinkedPreactivation:
    r"""What a network declares about its preactivations through a kinked activation, so
    that the kink scheme (:mod:`exactdyn.numeric.kinks`, through
    :mod:`exactdyn.numeric.kink_adapter`) can integrate it with no code of the family's own.

    The network's output is

    .. math::

        f(x_i) = \frac1\alpha\sum_{k,\beta} a_{k\beta}\,\sigma(h_{ik\beta}),\qquad
        h_{ik\beta} = w_\beta\cdot x_{ik},

    with units β (hidden neurons; CNN kernels), positions k (one for a fully connected
    layer; the patches of a CNN) and samples i, trained on the mean squared loss
    :math:`\frac1{2n}\sum_i (f(x_i) - y_i)^2`; the kink scheme's *entries* are the
    (sample, position) pairs (Filippov, *Differential Equations with Discontinuous
    Righthand Sides*, 1988, §2.4, for the sliding they may do).

    Attributes
    ----------
    activation : Activation
        σ (``piecewise`` when its derivative jumps at 0).
    weights : str
        Name of the state array holding the input weights :math:`w_\beta`.
    weights_matrix : tuple
        Shape in which the generated code takes ``weights``: ``(units, d)`` or ``(d, units)``.
    units_axis : int
        Axis of ``weights_matrix`` that runs over the units (0 or 1).
    readout : str
        Name of the state array holding :math:`a_{k\beta}`.
    readout_matrix : tuple
        Shape in which the generated code takes ``readout``: ``(units,)`` (one position) or
        ``(positions, units)``.
    inputs : ndarray
        :math:`x_{ik}`, samples × positions × d (the data points with their bias column;
        the patches).
    targets : ndarray
        :math:`y_i`, (samples,).
    alpha : float
        The output scale α.
    preactivation_axes : tuple
        Axis order of :math:`h` in the generated code, of ``"unit"``, ``"sample"`` and
        ``"position"`` (``("unit", "sample")``: :math:`h = WX^\top`).
    """

    activation: Any
    weights: str
    weights_matrix: tuple
    units_axis: int
    readout: str
    readout_matrix: tuple
    inputs: Any
    targets: Any
    alpha: float
    preactivation_axes: tuple


class ModelMixin:
    """Defaults of the protocol for families built on the symbolic pipeline."""

    def network(self):
        if hasattr(self, "symbolic_network"):
            return self.symbolic_network()
        return self.derive_flow()

    @property
    def derivation_key(self) -> str | None:
        """What the derived flow depends on, as text (the on-disk cache's key, with the
        package version): a built-in family's class and ``flow_key`` (or ``name``). ``None``
        for classes defined outside the package (a subclass may derive another flow under
        the same name): those are not cached on disk."""
        cls = type(self)
        if not cls.__module__.startswith("exactdyn."):
            return None
        return f"{cls.__module__}.{cls.__qualname__}:{getattr(self, 'flow_key', self.name)}"

    def values(self) -> dict:
        out = {}
        if hasattr(self, "named_symbol_values"):  # the same, without importing sympy
            out.update(self.named_symbol_values())
        elif hasattr(self, "symbol_values"):
            for sym, value in self.symbol_values().items():
                out[str(sym)] = value
        for size in ("width", "in_dim", "out_dim", "hidden", "depth"):
            if hasattr(self, size):
                out[size] = getattr(self, size)
        return out


class FrozenAfterInit:
    """Instances refuse attribute assignment once built, as frozen dataclasses do.

    For families whose constructor does real work (loading a data set, extracting patches,
    drawing the init); call :meth:`_freeze` at the end of every constructor. Their arrays
    are made read-only too. Instances pickle by their ``__dict__`` (no cached numerics live
    on the model: the lowering keeps its own cache, keyed by the model).
    """

    _frozen = False

    def _freeze(self) -> None:
        import numpy as np

        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name, value):
        if self._frozen:
            raise dataclasses.FrozenInstanceError(
                f"cannot assign to {name!r}: a {type(self).__name__} is frozen; build a new "
                "one (from_init, with_init_scaled)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if self._frozen:
            raise dataclasses.FrozenInstanceError(f"cannot delete {name!r}: a "
                                                  f"{type(self).__name__} is frozen")
        object.__delattr__(self, name)
