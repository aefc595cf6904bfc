r"""Alignment of the first layer with the teacher (two-layer and deep linear networks).

With the teacher :math:`\Sigma_{yx} = U S V^\top` (whitened inputs; in general the
least-squares map :math:`\Sigma_{yx}\Sigma_{xx}^{-1}`), the first layer
:math:`W_1` (hidden × in) is aligned with the teacher when its rows lie in the span of the
teacher's input singular vectors :math:`V_k = [v_1, \dots, v_k]`. We measure the fraction
of the first layer's energy in that subspace,

.. math:: a(t) = \frac{\lVert W_1(t) V_k\rVert_F^2}{\lVert W_1(t)\rVert_F^2} \in [0, 1],

which is about :math:`k/n_\mathrm{in}` for an isotropic random init and tends to 1 as the
network learns the teacher from a small init (the components outside the teacher's input
space do not grow: [SMG], [JG]). The project's definition, after the row-space alignment
discussed by Saxe et al. (arXiv:1312.6120) and Jacot et al. (arXiv:2106.15933).
"""

from __future__ import annotations

import numpy as np


def teacher_input_basis(teacher: np.ndarray, k: int | None = None, tol: float = 1e-12):
    """The teacher's top-``k`` right singular vectors (columns), ``k`` = its rank by default."""
    teacher = np.asarray(teacher, dtype=float)
    if teacher.ndim != 2:
        raise ValueError(f"teacher must be a matrix (out x in), got shape {teacher.shape}")
    _, s, vt = np.linalg.svd(teacher)
    rank = int(np.sum(s > tol * (s[0] if s.size else 1.0)))
    if k is None:
        k = rank
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= vt.shape[0]:
        raise ValueError(f"k must be an integer in [1, {vt.shape[0]}], got {k!r}")
    return vt[:k].T


def first_layer_alignment(W1, teacher, k: int | None = None) -> np.ndarray:
    r""":math:`\lVert W_1 V_k\rVert_F^2/\lVert W_1\rVert_F^2` for ``W1`` of shape
    (hidden, in) or (time, hidden, in); NaN where :math:`W_1 = 0` (undefined)."""
    W1 = np.asarray(W1, dtype=float)
    V = teacher_input_basis(teacher, k)
    if W1.shape[-1] != V.shape[0]:
        raise ValueError(f"W1 has {W1.shape[-1]} input columns but the teacher has "
                         f"{V.shape[0]}")
    inside = np.sum((W1 @ V) ** 2, axis=(-2, -1))
    total = np.sum(W1**2, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


def trajectory_alignment(traj, model, k: int | None = None) -> np.ndarray:
    """:func:`first_layer_alignment` along a trajectory of a LinearNet or DeepLinear."""
    if "W1" not in traj.state:
        raise ValueError("trajectory must carry the state W1 (LinearNet or DeepLinear); "
                         f"it has {sorted(traj.state)}")
    syx = np.asarray(model.sigma_yx, dtype=float)
    sxx = getattr(model, "sigma_xx", None)
    teacher = syx if sxx is None else np.linalg.solve(np.asarray(sxx, float).T, syx.T).T
    return first_layer_alignment(np.asarray(traj.state["W1"], dtype=float), teacher, k)


# ---- Xu & Ziyin's zeta for two-layer networks with 1-D input ------------------------------

def layer_cosine(a, w) -> np.ndarray:
    r"""The cosine :math:`\zeta = a\cdot w/(\lVert a\rVert\lVert w\rVert)` along the last
    axis (neurons); NaN where either vector is 0 (undefined)."""
    a, w = np.asarray(a, dtype=float), np.asarray(w, dtype=float)
    if a.shape != w.shape:
        raise ValueError(f"a and w must have the same shape, got {a.shape} and {w.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(a * w, axis=-1) / np.sqrt(np.sum(a * a, axis=-1) * np.sum(w * w, axis=-1))


def two_layer_zeta(traj, column: int = 0) -> np.ndarray:
    r""":math:`\zeta(t)` of a two-layer network with one-dimensional input, after Xu & Ziyin's
    Fig. 1 ("The evolution of ζ of two-layer networks with different settings. Specifically,
    we test linear, ReLU, sigmoid, swish, and leaky ReLU activations for both alignment
    (upper) and disalignment (lower) cases", arXiv:2401.07085 v3).

    For :math:`f(x) = \frac1\alpha\sum_k a_k\sigma(w_k x + b_k)`, :math:`\zeta` is the cosine
    between the readout vector :math:`a` and the input-weight vector :math:`w = (w_k)_k`
    (:func:`layer_cosine`). With a bias, the bias column (the last input weight) is left
    out: :math:`w` is the weight column. With the linear activation and no bias this is
    exactly the :math:`\zeta` of :class:`~exactdyn.Linear1D` (``"alignment"`` observable,
    with :math:`u = a`, :math:`\kappa = 1/\alpha`). Which weight column the paper used for
    its bias networks could not be read; the choice here is ours.

    Parameters
    ----------
    traj : Trajectory
        A trajectory of a :class:`~exactdyn.TwoLayer` (state ``a`` (T, m), ``W`` (T, m,
        d_in)) with one input feature (d_in = 1, or 2 with the bias column).
    column : int
        The input column of ``W`` (default 0, the one feature).

    Returns
    -------
    ndarray, shape (T,)
    """
    state = getattr(traj, "state", None)
    if state is None or "a" not in state or "W" not in state:
        raise ValueError("traj must be a trajectory of a TwoLayer (state a and W); got "
                         f"{type(traj).__name__}")
    W = np.asarray(state["W"], dtype=float)
    params = (getattr(traj, "meta", None) or {}).get("params", {})
    bias = bool(params.get("bias", False))
    features = W.shape[-1] - (1 if bias else 0)
    if features != 1:
        raise ValueError("two_layer_zeta needs one-dimensional input (d_in = 1, plus the "
                         f"bias column); got {features} input features")
    if column != 0:
        raise ValueError(f"column must be 0 (the one input feature), got {column!r}")
    return layer_cosine(np.asarray(state["a"], dtype=float), W[..., column])
