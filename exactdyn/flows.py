"""The pipeline's first stages for any model: derive once, lower per instance."""

from __future__ import annotations

from .numeric import cnn as _cnn  # noqa: F401  (registers TwoLayerCNN's numerics)
from .numeric import twolayer as _twolayer  # noqa: F401  (registers TwoLayer's numerics)
from .numeric.lowering import LoweredFlow
from .numeric.matrix_lowering import ChainLoweredFlow, MatrixLoweredFlow
from .numeric.registry import numeric_family
from .symbolic.flow import GradientFlow, derive_gradient_flow
from .symbolic.matrix_flow import MatrixGradientFlow, MatrixNetwork, derive_matrix_flow

_FLOWS: dict = {}


def gradient_flow(model) -> GradientFlow:
    """The symbolic gradient flow of ``model``'s family (derived once per process)."""
    # A user-defined network keys its flow by itself (two networks may share a name).
    key = getattr(model, "flow_key", model.name)
    if key not in _FLOWS:
        if hasattr(model, "derive_flow"):  # deep_linear: one derivation per depth
            _FLOWS[key] = model.derive_flow()
        else:
            network = model.symbolic_network()
            if isinstance(network, MatrixNetwork):
                _FLOWS[key] = derive_matrix_flow(network)
            else:
                _FLOWS[key] = derive_gradient_flow(network)
    return _FLOWS[key]


def lower(model) -> LoweredFlow:
    """Numeric callables (numpy and mpmath) of ``model``'s gradient flow."""
    family = numeric_family(model)
    if family is not None:  # kinked families: their own lowering (registered)
        return family.lower(model)
    flow = gradient_flow(model)
    if getattr(flow, "matrix_form", False):  # deep_linear's chain-product lowering
        return ChainLoweredFlow(flow, model)
    if isinstance(flow, MatrixGradientFlow):
        return MatrixLoweredFlow(flow, model)
    return LoweredFlow(flow, model)
