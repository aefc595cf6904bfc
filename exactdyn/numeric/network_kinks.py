r"""User networks with a kinked activation: integrated through their kinks like TwoLayer.

A :class:`~exactdyn.models.network.KinkedNetworkModel` (a user :class:`~exactdyn.Network`
whose loss is the mean squared loss of
:math:`f_s = \frac1\alpha\sum_i a_i\sigma(\sum_k W_{ik}X_{sk})` with σ kinked at 0, read by
:mod:`exactdyn.models.network_kinks`) declares its pre-activations
(:class:`~exactdyn.models.base.KinkedPreactivation`), and is registered here as a
one-hidden-layer family (:func:`~exactdyn.numeric.layer_flow.register_layer_family`): its
lowered flow is :class:`~exactdyn.numeric.layer_flow.LayerLoweredFlow` with the two-layer
network's generated sources (the same flow, since the loss is the same term by term), the
kink hooks come from the one adapter (:mod:`exactdyn.numeric.kink_adapter`), and
:func:`exactdyn.solve`, :func:`exactdyn.gd` and :func:`exactdyn.verify` take the kinked path
(:mod:`exactdyn.numeric.kinks`: frozen pattern per segment, Brent on the dense output,
Filippov sliding). Its state arrays keep the user's names and order.
"""

from __future__ import annotations

from . import twolayer
from .layer_flow import LayerNumerics, register_layer_family


def _no_extra_observables(low, states) -> dict:
    """A user network's observables along the kinked path: ``loss`` and ``output`` only."""
    return {}


def _register():
    from ..models.network import KinkedNetworkModel

    register_layer_family(KinkedNetworkModel, LayerNumerics(
        sources=twolayer.sources, extra_observables=_no_extra_observables,
        max_kinks=100_000, label="user networks with a kinked activation (Network)",
        jvp_source=twolayer.jvp_source, atol=twolayer._rms_atol, smooth_by_segments=True))


_register()
