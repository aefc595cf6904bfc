"""Lowering and integration. :class:`LoweredFlow` is the one lowered-flow type
(:mod:`exactdyn.numeric.lowered`): what :func:`exactdyn.lower` returns for every model."""

from .lowered import LoweredFlow

__all__ = ["LoweredFlow"]
