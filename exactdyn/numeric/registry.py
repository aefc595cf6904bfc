"""Families whose numerics are not the generic lowering: found by model type.

The generic path (the :class:`~exactdyn.numeric.LoweredFlow` subclasses of the derived
notations, then :func:`exactdyn.solve`'s table of methods) serves every model whose derived flow is
smooth. The one-hidden-layer networks (the two-layer network and the CNN, whose kinked
activations are integrated segment by segment through :mod:`exactdyn.numeric.kinks`)
share one lowered flow and one integrator (:mod:`exactdyn.numeric.layer_flow`), which
:func:`exactdyn.numeric.layer_flow.register_layer_family` registers here for each model
type; :func:`exactdyn.lower` and :func:`exactdyn.solve` look them up. Nothing compares
model names.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class NumericFamily:
    """A family's own numerics.

    Attributes
    ----------
    lower : callable(model) -> lowered flow
        The family's lowered flow (``pack``, ``unpack``, ``rhs``, ``observe``).
    solve : callable(model, times, method, rtol, atol, max_kinks, max_steps=, progress=)
        Its float64 integrator, returning a Trajectory (``progress``: an
        :class:`exactdyn._progress.Progress` over the time span, or ``None``).
    max_kinks : int
        Default budget of activation-pattern changes (see :mod:`exactdyn.numeric.kinks`).
    label : str
        How messages name the family.
    """

    lower: Callable
    solve: Callable
    max_kinks: int
    label: str


_REGISTRY: dict = {}


def register_numeric(model_type: type, lower: Callable, solve: Callable, max_kinks: int,
                     label: str) -> None:
    """Register the lowering and the integrator of ``model_type`` (and its subclasses)."""
    _REGISTRY[model_type] = NumericFamily(lower, solve, max_kinks, label)


def numeric_family(model) -> NumericFamily | None:
    """The registered numerics of ``model``'s type, or ``None`` for the generic path."""
    for cls in type(model).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    return None


#: id(model) -> (model, its lowered flow), least recently used first. The model is held so
#: its id stays its own; bounded, so the models of a sweep are let go.
_LOWERED: OrderedDict = OrderedDict()
LOWERED_CACHE_SIZE = 32


def cached_lowering(model, build: Callable):
    """``build(model)``, once per model: kept beside the model, not on it (models are
    frozen and pickle without their numerics)."""
    key = id(model)
    if key in _LOWERED:
        _LOWERED.move_to_end(key)
        return _LOWERED[key][1]
    lowered = build(model)
    _LOWERED[key] = (model, lowered)
    if len(_LOWERED) > LOWERED_CACHE_SIZE:
        _LOWERED.popitem(last=False)
    return lowered
