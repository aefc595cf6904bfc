"""The pipeline's first stages for any model: derive once, lower per instance."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from . import diskcache
from .numeric import registry, stored
from .numeric.lowered import LoweredFlow
from .numeric.lowering import CompiledFlow, IndexedLoweredFlow

if TYPE_CHECKING:
    from .symbolic.flow import GradientFlow

# The symbolic layer (sympy) and the matrix printer are imported where a flow is derived
# or a matrix lowering built: solving from an indexed lowering on disk needs neither.

_FLOWS: dict = {}


def gradient_flow(model) -> GradientFlow:
    """The symbolic gradient flow of ``model``'s family (derived once per process)."""
    # A user-defined network keys its flow by itself (two networks may share a name).
    key = getattr(model, "flow_key", model.name)
    if key not in _FLOWS:
        from .symbolic.flow import derive_flow

        if hasattr(model, "derive_flow"):  # deep_linear: one derivation per depth
            _FLOWS[key] = model.derive_flow()
        else:  # the network's notation picks its derivation
            _FLOWS[key] = derive_flow(model.symbolic_network())
    return _FLOWS[key]


def numeric_family(model):
    """The registered numerics of ``model``'s type (:mod:`exactdyn.numeric.registry`), or
    ``None`` for the generic lowering.

    The kinked families' numeric modules register themselves when imported; they are
    imported here once their model's module is loaded (no instance, of the family or of a
    subclass, can exist before), so that solving a smooth family does not pay for them."""
    if "exactdyn.models.twolayer" in sys.modules:
        from .numeric import twolayer  # noqa: F401  (registers TwoLayer's numerics)
    if "exactdyn.models.cnn" in sys.modules:
        from .numeric import cnn  # noqa: F401  (registers TwoLayerCNN's numerics)
    if "exactdyn.models.network_kinks" in sys.modules:  # loaded by a kinked Network
        from .numeric import network_kinks  # noqa: F401  (registers KinkedNetworkModel's)
    return registry.numeric_family(model)


def _lowering_classes(kind: str) -> tuple:
    """The lowering a disk-cache entry names (``"indexed"``, ``"multi_index"``, ``"matrix"``,
    ``"chain"``):
    its class, and the class of its compiled part; ``KeyError`` for another name."""
    if kind == "indexed":
        return IndexedLoweredFlow, CompiledFlow
    if kind == "multi_index":
        from .numeric.multi_index import MultiIndexCompiled, MultiIndexLoweredFlow

        return MultiIndexLoweredFlow, MultiIndexCompiled
    if kind not in ("matrix", "chain"):
        raise KeyError(kind)
    from .numeric.matrix_lowering import (
        ChainCompiled,
        ChainLoweredFlow,
        MatrixCompiled,
        MatrixLoweredFlow,
    )

    return {"matrix": (MatrixLoweredFlow, MatrixCompiled),
            "chain": (ChainLoweredFlow, ChainCompiled)}[kind]


def _disk_key(model) -> str | None:
    """Key of ``model``'s lowered flow in the on-disk cache (:mod:`exactdyn.diskcache`):
    what its derivation depends on (``model.derivation_key``) and, for matrix flows, the
    sizes the printer chose its products for; ``None``: not cached."""
    key = getattr(model, "derivation_key", None)
    if key is None:
        return None
    if hasattr(model, "named_dims"):  # the same, without sympy
        key += repr(sorted((k, int(v)) for k, v in model.named_dims().items()))
    elif hasattr(model, "dims"):
        key += repr(sorted((str(k), int(v)) for k, v in model.dims().items()))
    return key


def _lower_derived(model):
    """The lowering of ``model``'s derived flow: the one its notation names."""
    flow = gradient_flow(model)
    kind = flow.notation  # "indexed", "multi_index", "matrix" or "chain"
    cls, _compiled = _lowering_classes(kind)
    return kind, cls(flow, model)


def _lower_stored(model, payload):
    if not isinstance(payload, dict) or set(payload) != {"lowering", "state_names", "compiled"}:
        raise ValueError("stored lowering is malformed")
    cls, compiled_cls = _lowering_classes(payload["lowering"])
    compiled = stored.decode(compiled_cls, payload["compiled"])
    names = payload["state_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("stored state names are malformed")
    return cls(None, model, compiled=compiled, derive=lambda: gradient_flow(model),
               state_names=tuple(names))


#: Disk-cache key -> the stored payload of a lowering, read or written once per process.
_STORED: dict = {}


def lower(model) -> LoweredFlow:
    """Numeric callables (numpy and mpmath) of ``model``'s gradient flow: always a
    :class:`~exactdyn.numeric.LoweredFlow`, the subclass of the flow's notation
    (``lower(model).notation``; see :mod:`exactdyn.numeric.lowered`).

    The generated sources are kept on disk (:mod:`exactdyn.diskcache`): a later process
    compiles them without deriving the flow again (derived, then, only if asked for)."""
    family = numeric_family(model)
    if family is not None:  # kinked families: their own lowering (registered)
        return family.lower(model)
    key = _disk_key(model)
    if key is not None and diskcache.cache_dir() is not None:
        payload = _STORED.get(key) or diskcache.load("lowered", key)
        if payload is not None:
            try:
                lowered = _lower_stored(model, payload)
                _STORED[key] = payload
                return lowered
            except (ValueError, KeyError, TypeError, SyntaxError):
                pass  # a damaged or foreign entry: rebuilt and overwritten below
    kind, lowered = _lower_derived(model)
    if key is not None and diskcache.cache_dir() is not None:
        payload = {"lowering": kind, "state_names": list(lowered.state_names),
                   "compiled": stored.encode(lowered.compiled)}
        diskcache.store("lowered", key, payload)
        _STORED[key] = payload
    return lowered
