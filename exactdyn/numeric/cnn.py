r"""Lowered gradient flow of :class:`~exactdyn.TwoLayerCNN`.

The right-hand side and the observables are generated from the per-kernel, per-patch
derivation of :mod:`exactdyn.symbolic.cnn` by the indexed lowerer of
:mod:`exactdyn.numeric.indexed`, with the CNN's axes (sample, position, patch entry,
channel) and one rule for reductions: a sum over several indices whose factors split
into one factor and a product of the others that share no free axis becomes one
matrix product over the flattened summed axes (:func:`contract`, BLAS, no copies). So

- :math:`h_{ik\beta} = \sum_l X_{ikl}W_{l\beta}` is one
  (nP × D)(D × M) product on the patch array extracted once with a strided view
  (:func:`exactdyn.models.cnn.extract_patches`);
- :math:`f_i = \sum_{k\beta}\sigma(h_{ik\beta})a_{k\beta}` contracts (position, channel);
- :math:`\dot W_{l\beta} = -\frac1{\alpha n}\sum_{i,k}X_{ikl}\,e_i a_{k\beta}
  \sigma'(h_{ik\beta})` contracts (sample, position) in one product, the sums over samples
  and positions merged symbolically first (:func:`exactdyn.symbolic.cnn.merge_sums`).

Equal subexpressions are generated once (h, σ(h), e). No Python loop over positions,
kernels or samples remains.

**Kinks** (ReLU, leaky ReLU, ``abs``) are integrated by :mod:`exactdyn.numeric.kinks`,
the scheme of the two-layer network (frozen pattern per segment, located changes,
Filippov sliding held exactly at h = 0, on/off/sliding decided from the one-sided
velocities and their uncertainty; :mod:`exactdyn.numeric.twolayer`): the kernel β is the
unit with weights :math:`W_{\cdot\beta}`, the (sample, position) pairs (i, k) are the
entries with inputs :math:`X_{ik}`. The hooks come from the one adapter,
:mod:`exactdyn.numeric.kink_adapter`, given the network's declaration
(:meth:`exactdyn.TwoLayerCNN.kinked_preactivation`) and the sources generated here; the
lowered flow is :class:`exactdyn.numeric.layer_flow.LayerLoweredFlow`, registered here.
A CNN whose kernel covers the whole image (one position) is the two-layer network without
bias on the flattened images, and gives its trajectory.
"""

from __future__ import annotations

import numpy as np

from .. import diskcache
from ..trajectory import Trajectory
from . import stored
from .layer_flow import (
    LayerLoweredFlow,
    LayerNumerics,
    layer_trajectory,
    lowered_layer_flow,
    register_layer_family,
    solve_layer_flow,
)

_SOURCES: dict = {}


def contract(A, B, axes_a, axes_b, out=None):
    r""":math:`\sum` over ``axes_a`` of A and ``axes_b`` of B, as one matrix product.

    Like :func:`numpy.tensordot` (result axes: A's free axes, then B's), but a block of
    summed axes at either end of an operand is flattened in place and transposed as a
    view, so the patch array and the n × P × M intermediates are never copied (tensordot
    copies an operand whose summed axes lead). ``out``: a C-contiguous array of the
    result's shape to write the product into (a buffer of the generated right-hand side),
    returned."""
    ka, kb = tuple(axes_a), tuple(axes_b)
    fa = [i for i in range(A.ndim) if i not in ka]
    fb = [i for i in range(B.ndim) if i not in kb]
    size = 1
    for i in ka:
        size *= A.shape[i]
    if ka == tuple(range(A.ndim - len(ka), A.ndim)):
        A2 = A.reshape(-1, size)
    elif ka == tuple(range(len(ka))):
        A2 = A.reshape(size, -1).T
    else:
        A2 = A.transpose(fa + list(ka)).reshape(-1, size)
    if kb == tuple(range(len(kb))):
        B2 = B.reshape(size, -1)
    elif kb == tuple(range(B.ndim - len(kb), B.ndim)):
        B2 = B.reshape(-1, size).T
    else:
        B2 = B.transpose(list(kb) + fb).reshape(size, -1)
    if out is not None:
        # a reshape of a C-contiguous array is a view: the product lands in ``out``
        np.matmul(A2, B2, out=out.reshape(A2.shape[0], B2.shape[1]))
        return out
    return (A2 @ B2).reshape(tuple(A.shape[i] for i in fa) + tuple(B.shape[i] for i in fb))


def sources():
    """Generated sources of the rhs and the observables (derived once, then read from the
    on-disk cache by later processes)."""
    if not _SOURCES:  # on disk between processes (exactdyn.diskcache)
        _SOURCES.update(diskcache.cached("cnn", "exactdyn.numeric.cnn.sources",
                                          _derive_sources, stored.encode_mapping,
                                          stored.decode_mapping))
    return _SOURCES


def _derive_sources() -> dict:
    """The family's flow derived (sympy) and printed."""
    # sympy and the printer are imported here: a process that reads the sources from the
    # on-disk cache needs neither
    import sympy as sp

    from ..symbolic import cnn as sc
    from .cnn_printer import CNNLowerer
    from .indexed import lower_indexed

    flow = sc.derive_cnn_flow()
    arrays = (sc.A, sc.W, sc.XS, sc.YS)
    out: dict = {}
    funcs = {sc.SIGMA: "_sigma", sc.DSIGMA: "_dsigma"}
    out["rhs"] = lower_indexed([sc.merge_sums(flow.rhs[sc.A]),
                                sc.merge_sums(flow.rhs[sc.W])], arrays,
                               sc.INDEX_KINDS, funcs, "rhs", lowerer=CNNLowerer)
    # the same, written into the caller's result with its temporaries in buffers
    out["rhs_out"] = lower_indexed([sc.merge_sums(flow.rhs[sc.A]),
                                    sc.merge_sums(flow.rhs[sc.W])], arrays,
                                   sc.INDEX_KINDS, funcs, "rhs", lowerer=CNNLowerer,
                                   into=True)
    # Per-(sample, position, channel) coefficient G_ikb of the kernel's flow,
    # dW_b/dt = sum_ik G_ikb X_ik (the derived summand divided by X[i, k, r]).
    rw = sc.merge_sums(flow.rhs[sc.W])
    (sw,) = [f for f in sp.Mul.make_args(rw) if isinstance(f, sp.Sum)]
    coef = (rw / sw) * sw.function / sc.XS[sc.I, sc.K, sc.R]
    out["coef"] = lower_indexed([coef], arrays, sc.INDEX_KINDS, funcs, "coef",
                                lowerer=CNNLowerer)
    out["obs"] = lower_indexed([flow.observables["output"], flow.observables["loss"]],
                               arrays, sc.INDEX_KINDS, funcs, "observables",
                               lowerer=CNNLowerer)
    return out


_JVP: dict = {}


def jvp_source():
    """Generated source of :math:`f'(\\theta)v`, ``jvp(a, W, X, y, fa, fW, alpha, n)``
    (X the patches), from :func:`exactdyn.symbolic.cnn.derive_cnn_modified` (used by
    :func:`exactdyn.descent.modified_rhs`). Derived on first use, once per process."""
    if not _JVP:
        from ..symbolic import cnn as sc
        from ..symbolic.twolayer import D2SIGMA, FA, FW
        from .cnn_printer import CNNLowerer
        from .indexed import lower_indexed

        mod = sc.derive_cnn_modified()
        _JVP["jvp"] = lower_indexed([mod.correction[sc.A], mod.correction[sc.W]],
                                    (sc.A, sc.W, sc.XS, sc.YS, FA, FW), sc.INDEX_KINDS,
                                    {sc.SIGMA: "_sigma", sc.DSIGMA: "_dsigma",
                                     D2SIGMA: "_d2sigma"}, "jvp", lowerer=CNNLowerer)
    return _JVP["jvp"]


def _channel_observables(low, states) -> dict:
    r"""``balance`` (T × M) :math:`= \sum_{uv}a_{uv\beta}^2 - \|W_{\cdot\beta}\|^2`
    (conserved for 1-homogeneous σ) and ``kernel_norm`` (T × M) along states."""
    W, a = np.asarray(states["W"]), np.asarray(states["a"])
    T = W.shape[0]
    model = low.model
    D, P, M = model.patch_dim, model.positions, model.channels
    wn2 = np.sum(W.reshape(T, D, M) ** 2, axis=1)
    an2 = np.sum(a.reshape(T, P, M) ** 2, axis=1)
    return {"balance": an2 - wn2, "kernel_norm": np.sqrt(wn2)}


#: The CNN's lowered flow is the one class of one-hidden-layer networks (state ``W``
#: s × s × C × M, then ``a`` H' × W' × M, packed in that order).
LoweredCNN = LayerLoweredFlow
#: ``solve(model, t)`` for a two-layer CNN (:func:`~.layer_flow.solve_layer_flow`).
solve_cnn = solve_layer_flow


def lowered_cnn(model) -> LayerLoweredFlow:
    """The lowered flow of ``model``, built once per model (:func:`.registry.cached_lowering`)."""
    return lowered_layer_flow(model)


def trajectory_from_states(model, times, W, a, meta) -> Trajectory:
    """A :class:`Trajectory` with state W, a and the observables ``loss``, ``output``,
    ``balance``, ``kernel_norm`` (:func:`~.layer_flow.layer_trajectory`)."""
    return layer_trajectory(model, times, {"W": W, "a": a}, meta)


def _register():
    from ..models.cnn import TwoLayerCNN

    register_layer_family(TwoLayerCNN, LayerNumerics(
        sources=sources, extra_observables=_channel_observables, max_kinks=20_000,
        label="TwoLayerCNN", jvp_source=jvp_source, namespace={"_contract": contract}))


_register()
