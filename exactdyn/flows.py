"""The pipeline's first stages for any model: derive once, lower per instance."""

from __future__ import annotations

from .numeric.lowering import LoweredFlow
from .symbolic.flow import GradientFlow, derive_gradient_flow

_FLOWS: dict = {}


def gradient_flow(model) -> GradientFlow:
    """The symbolic gradient flow of ``model``'s family (derived once per process)."""
    key = model.name
    if key not in _FLOWS:
        _FLOWS[key] = derive_gradient_flow(model.symbolic_network())
    return _FLOWS[key]


def lower(model) -> LoweredFlow:
    """Numeric callables (numpy and mpmath) of ``model``'s gradient flow."""
    return LoweredFlow(gradient_flow(model), model)
