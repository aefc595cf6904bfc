"""The pipeline's first stages for any model: derive once, lower per instance."""

from __future__ import annotations

from .numeric.lowering import LoweredFlow
from .symbolic.flow import GradientFlow, derive_gradient_flow

_FLOWS: dict = {}


def gradient_flow(model) -> GradientFlow:
    """The symbolic gradient flow of ``model``'s family (derived once per process)."""
    key = model.name
    if key not in _FLOWS:
        if hasattr(model, "derive_flow"):  # matrix-form families (deep_linear)
            _FLOWS[key] = model.derive_flow()
        else:
            _FLOWS[key] = derive_gradient_flow(model.symbolic_network())
    return _FLOWS[key]


def lower(model) -> LoweredFlow:
    """Numeric callables (numpy and mpmath) of ``model``'s gradient flow."""
    flow = gradient_flow(model)
    if getattr(flow, "matrix_form", False):
        from .numeric.lowering_matrix import MatrixLoweredFlow

        return MatrixLoweredFlow(flow, model)
    return LoweredFlow(flow, model)
