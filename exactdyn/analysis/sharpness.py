r"""Sharpness along a trajectory: where a finite learning rate leaves the flow.

The sharpness is the largest eigenvalue of the rate-weighted Hessian

.. math:: S(\theta) = \lambda_{\max}\big(H^{1/2}\,\nabla^2 L(\theta)\,H^{1/2}\big),

read off the Jacobian of the lowered flow: :math:`f' = -H\nabla^2L` is similar to
:math:`-H^{1/2}\nabla^2LH^{1/2}` (conjugate by :math:`H^{1/2}`), so
:math:`H^{1/2}\nabla^2LH^{1/2} = -H^{-1/2}f'H^{1/2}`, symmetrized against rounding. Gradient
descent with step ``lr`` is linearly stable near a minimum only where :math:`S < 2/\mathrm{lr}`
(the "edge of stability" line of Cohen et al., ICLR 2021).

The Jacobian is the derived one where the lowering has it, else exact Jacobian-vector
products (complex step) of the lowered right-hand side (:func:`exactdyn.descent.jacobian`).
"""

from __future__ import annotations

import numpy as np

from ..trajectory import Trajectory


def _rates(low) -> np.ndarray:
    """The diagonal of H, one entry per packed coordinate (ones where the flow has no rates)."""
    from ..descent import _is_layer

    # a one-hidden-layer network has no per-parameter rates (and its flow, from the disk
    # cache, need not be derived to say so)
    flow = None if _is_layer(low) else getattr(low, "flow", None)
    network = getattr(flow, "network", None)
    rates = getattr(network, "rates", None)
    slices = getattr(low, "slices", None)
    if not rates or slices is None:
        return np.ones(low.size)
    values = None
    out = np.ones(low.size)
    for base in network.params:
        rate = rates[base]
        if getattr(rate, "free_symbols", None):  # a hyperparameter (DeepLinear's are 1)
            values = low.model.symbol_values() if values is None else values
            rate = values.get(rate, rate)
        out[slices[base.name]] = float(rate)
    return out


def _packed(low, traj: Trajectory) -> np.ndarray:
    from ..descent import _is_layer

    state = traj.state
    if _is_layer(low):  # the packed layout: each state array flattened, in packing order
        T = len(traj.t)
        return np.concatenate([np.asarray(state[n], float).reshape(T, -1)
                               for n in low.state_names], axis=1)
    rows = []
    for i in range(len(traj.t)):
        rows.append(np.asarray(low.pack({k: np.asarray(v[i], float) for k, v in state.items()}),
                               dtype=float))
    return np.array(rows)


def rate_weighted_hessian(model, y) -> np.ndarray:
    r""":math:`H^{1/2}\nabla^2L\,H^{1/2}` at the packed state ``y`` (symmetric)."""
    from ..descent import jacobian, lowered

    low = lowered(model)
    r = np.sqrt(_rates(low))
    J = jacobian(low, np.asarray(y, dtype=float))
    S = -(J * r[None, :]) / r[:, None]
    return (S + S.T) / 2


def sharpness(model_or_trajectory, model=None, t=None) -> np.ndarray:
    r"""The sharpness :math:`\lambda_{\max}(H^{1/2}\nabla^2LH^{1/2})` at each time.

    Parameters
    ----------
    model_or_trajectory
        A :class:`~exactdyn.Trajectory` (then give ``model``, the model it was computed
        for: the flow's Jacobian comes from the model's lowering), or a model: then the
        sharpness along ``solve(model, t)`` (``t`` given) or at the initialization.
    model
        The model of a trajectory.
    t : array_like, optional
        Times of the gradient flow when a model is given.

    Returns
    -------
    ndarray, shape (T,)
    """
    from ..descent import initial_vector, lowered

    if isinstance(model_or_trajectory, Trajectory):
        if model is None:
            raise ValueError("model is required with a Trajectory: the sharpness comes from "
                             "the model's lowered flow")
        traj = model_or_trajectory
    else:
        if model is not None:
            raise ValueError("model is given twice: pass a Trajectory and its model, or a model")
        model = model_or_trajectory
        if t is None:
            low = lowered(model)
            return np.array([np.linalg.eigvalsh(
                rate_weighted_hessian(model, initial_vector(model, low)))[-1]])
        from ..solve import solve

        traj = solve(model, t)
    low = lowered(model)
    entries = sum(int(np.prod(np.shape(v)[1:])) for v in traj.state.values())
    if entries != low.size:
        raise ValueError(f"model_or_trajectory has {entries} state entries per time, the "
                         f"model {low.size}: not a trajectory of this model")
    ys = _packed(low, traj.as_float() if traj.precision is not None else traj)
    return np.array([np.linalg.eigvalsh(rate_weighted_hessian(model, y))[-1] for y in ys])
