r"""Condensation measures of two-layer CNN kernels, on plain arrays [ZC].

Zhou, Zhou, Li, Xu, "Understanding the initial condensation of convolutional neural
networks" (arXiv:2305.09947); MATH.md §5. With small initialization the linearized flow
of the kernels is :math:`\ddot W_\beta = ZZ^\top W_\beta`, where

.. math::

    Z = [z_{uv}]_{(u,v)},\qquad z_{uv} = \frac1n\sum_{i=1}^n y_i\,P_{uv}(x_i),

is the label-weighted patch matrix (:func:`label_weighted_patches`). The kernels condense
onto :math:`\pm u_1`, the top left singular vector of Z, when :math:`s_1 > s_2`, and
spread in the top eigenspace of :math:`ZZ^\top` when the top singular values tie.

Layout (shared with :class:`exactdyn.TwoLayerCNN`): images are channels last,
N × H × W × C; kernels ``W`` are s × s × C × M (one kernel per output channel β), or
T × s × s × C × M for a time series (``traj["W"]``). A kernel is flattened in C order,
index :math:`(p\,s + q)\,C + \alpha`, the same order as the rows of Z; the columns of Z
are the positions (u, v) in row-major order, index :math:`u\,W' + v`, the order of
``a[..., β].ravel()`` for readout weights a of shape H' × W' × M.

Every function takes plain NumPy arrays, so it works on the output of any solver.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .. import _validation as check
from .condensation import cosine_similarity


def _as_array(name: str, value) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers, "
                         f"got {check.show(value)}") from exc
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _pad_widths(kernel_size: int, padding: str) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    before = (kernel_size - 1) // 2
    return before, kernel_size - 1 - before


def label_weighted_patches(images, y, kernel_size, padding: str = "valid",
                           channels_first: bool = False) -> np.ndarray:
    r"""The label-weighted patch matrix Z of MATH.md §5 [ZC].

    .. math::

        Z_{(p,q,\alpha),\,(u,v)} = \frac1n\sum_{i=1}^n y_i\,x_i[u+p,\ v+q,\ \alpha],
        \qquad 0 \le p, q < s,

    one column :math:`z_{uv}` per output position, the patch :math:`P_{uv}(x)` flattened
    in the kernel order :math:`(p\,s+q)\,C+\alpha` (see the module docstring). Its SVD
    :math:`Z = \sum_i s_i u_i v_i^\top` gives the linearized kernels
    :math:`W_\beta(t) = \sum_i [\cosh(s_i t)\langle u_i, W_\beta(0)\rangle
    + \sinh(s_i t)\langle v_i, a_\beta(0)\rangle]\,u_i + \ldots` and the condensation
    direction :math:`u_1` (Zhou et al., arXiv:2305.09947).

    Patches come from a strided view (``numpy.lib.stride_tricks.sliding_window_view``)
    and one contraction with y: no copy of the patches, no loop over positions.

    Parameters
    ----------
    images : array, shape (N, H, W, C)
        Channels last; (N, C, H, W) with ``channels_first=True``.
    y : array, shape (N,)
        Labels (any reals; ±1 for classification).
    kernel_size : int
        s >= 1; at most min(H, W) for ``"valid"`` padding.
    padding : {"valid", "same"}
        ``"valid"``: positions :math:`0 \le u \le H - s` (H' = H − s + 1).
        ``"same"``: zero padding of :math:`\lfloor (s-1)/2\rfloor` rows/columns before and
        :math:`\lceil (s-1)/2\rceil` after, so H' = H (TensorFlow's convention).
    channels_first : bool

    Returns
    -------
    Z : ndarray, shape (s·s·C, H'·W')
    """
    x = _as_array("images", images)
    if x.ndim != 4:
        raise ValueError(f"images must be a 4-D array (N, H, W, C), got shape {x.shape}")
    if channels_first:
        x = np.moveaxis(x, 1, -1)
    n = x.shape[0]
    y = check.finite_vector("y", y)
    if y.shape[0] != n:
        raise ValueError(f"y must have one label per image ({n}), got {y.shape[0]}")
    s = check.positive_int("kernel_size", kernel_size)
    padding = check.choice("padding", padding, ("valid", "same"))
    if padding == "valid" and s > min(x.shape[1], x.shape[2]):
        raise ValueError(f"kernel_size must be at most min(H, W) = "
                         f"{min(x.shape[1], x.shape[2])} with valid padding, got {s}")
    before, after = _pad_widths(s, padding)
    if before or after:
        x = np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (s, s), axis=(1, 2))
    # windows: (N, H', W', C, s, s) -> Z[p, q, alpha, u, v]
    z = np.einsum("i,iuvcpq->pqcuv", y, windows, optimize=True) / n
    return z.reshape(s * s * x.shape[3], -1)


def kernel_vectors(W) -> np.ndarray:
    r"""Flattened kernels: s × s × C × M → (M, s·s·C); T × s × s × C × M → (T, M, s·s·C).

    Row β is :math:`\mathrm{vec}(W_{\cdot,\cdot,\cdot,\beta})` in the order of the rows of
    :func:`label_weighted_patches`.
    """
    W = _as_array("W", W)
    if W.ndim == 4:
        s1, s2, c, m = W.shape
        return np.moveaxis(W, -1, 0).reshape(m, s1 * s2 * c)
    if W.ndim == 5:
        t, s1, s2, c, m = W.shape
        return np.moveaxis(W, -1, 1).reshape(t, m, s1 * s2 * c)
    raise ValueError("W must be kernels of shape (s, s, C, M) or a time series "
                     f"(T, s, s, C, M), got shape {W.shape}")


def _direction(u1, dim: int) -> np.ndarray:
    u = _as_array("u1", u1).ravel()
    if u.size != dim:
        raise ValueError(f"u1 must have s*s*C = {dim} entries (one flattened kernel), "
                         f"got {u.size}")
    norm = np.linalg.norm(u)
    if norm == 0:
        raise ValueError("u1 must be nonzero")
    return u / norm


def _basis(U, dim: int) -> np.ndarray:
    U = _as_array("U", U)
    if U.ndim == 1:
        U = U[:, None]
    if U.ndim != 2 or U.shape[0] != dim or U.shape[1] > dim:
        raise ValueError(f"U must be a ({dim}, k) basis of the top eigenspace (k <= {dim}), "
                         f"got shape {U.shape}")
    if np.max(np.abs(U.T @ U - np.eye(U.shape[1]))) > 1e-8:
        raise ValueError("U must have orthonormal columns (e.g. the top-k left singular "
                         "vectors of Z)")
    return U


def _rel_tol(rel_tol) -> float:
    rel_tol = check.real("rel_tol", rel_tol)
    if not 0 <= rel_tol < 1:
        raise ValueError(f"rel_tol must be in [0, 1), got {check.show(rel_tol)}")
    return rel_tol


def kernel_cosine_similarity(W, rel_tol: float = 1e-3):
    r"""Cosine-similarity matrix of the flattened kernels, ordered [ZC].

    :math:`C_{\beta\gamma} = \langle \hat w_\beta, \hat w_\gamma\rangle` for the kernels
    of s × s × C × M array W, kernels with :math:`\|w_\beta\| \le` ``rel_tol`` · max
    dropped, ordered by the top eigenvector of C: the measure of Zhou et al.
    (arXiv:2305.09947, and NeurIPS 2022 for fully connected layers), computed by
    :func:`exactdyn.analysis.condensation.cosine_similarity` on :func:`kernel_vectors`.

    Returns
    -------
    C : ndarray, shape (q, q)
    kept : ndarray of int
        Output channels β kept, in the order of C.
    """
    V = kernel_vectors(W)
    if V.ndim != 2:
        raise ValueError(f"W must be one set of kernels (s, s, C, M), got shape {np.shape(W)}")
    return cosine_similarity(V, _rel_tol(rel_tol))


def u1_ratio(W, u1):
    r"""Off-direction over on-direction norm of the kernels,
    :math:`\|\theta_{W,u_1^\perp}\| / \|\theta_{W,u_1}\|` [ZC].

    .. math::

        \theta_{W,u_1} = \big(\langle w_\beta, \hat u_1\rangle\,\hat u_1\big)_{\beta},
        \qquad \theta_{W,u_1^\perp} = \theta_W - \theta_{W,u_1},

    over all M kernels together (θ_W is the vector of all kernel entries). It is 0 when
    every kernel is a multiple of :math:`u_1`; for the linearized flow of MATH.md §5 with
    :math:`s_1 > s_2` it decays like :math:`e^{-(s_1 - s_2)t}` (Zhou et al.,
    arXiv:2305.09947). ``inf`` where the kernels are orthogonal to :math:`u_1`, NaN where
    all kernels vanish.

    Parameters
    ----------
    W : array, shape (s, s, C, M) or (T, s, s, C, M)
    u1 : array, s·s·C entries (flat or s × s × C)
        The direction; normalized here.

    Returns
    -------
    float, or ndarray of shape (T,) for a time series
    """
    V = kernel_vectors(W)
    u = _direction(u1, V.shape[-1])
    along = V @ u
    on = np.sqrt(np.sum(along**2, axis=-1))
    off = np.linalg.norm(V - along[..., None] * u, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = off / on
    return float(ratio) if np.ndim(ratio) == 0 else ratio


def u1_cosines(W, u1, rel_tol: float = 1e-3):
    r""":math:`|\cos(w_\beta, u_1)|` of each kernel; NaN for near-zero kernels [ZC].

    Kernels with :math:`\|w_\beta\| \le` ``rel_tol`` · :math:`\max_\gamma\|w_\gamma\|`
    (at the same time) carry no direction and are NaN.

    Returns
    -------
    ndarray, shape (M,), or (T, M) for a time series
    """
    V = kernel_vectors(W)
    u = _direction(u1, V.shape[-1])
    rel_tol = _rel_tol(rel_tol)
    norms = np.linalg.norm(V, axis=-1)
    keep = norms > rel_tol * norms.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.abs(V @ u) / norms
    return np.where(keep, cos, np.nan)


def u1_alignment(W, u1, rel_tol: float = 1e-3):
    r"""Largest and smallest :math:`|\cos(w_\beta, u_1)|` over the kernels [ZC].

    Condensation onto :math:`\pm u_1` means the smallest one tends to 1. Zhou et al.
    (arXiv:2305.09947, abstract, the part read): "kernels of a two-layer CNN with small
    initialization will converge to one or a few directions"; the threshold 0.99 used by
    the gallery and the tests is ours (docs/papers/zhou_cnn.md). Near-zero kernels are
    ignored (see :func:`u1_cosines`); NaN where every kernel vanishes.

    Returns
    -------
    (max_abs_cos, min_abs_cos) : floats, or arrays of shape (T,) for a time series
    """
    cos = u1_cosines(W, u1, rel_tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: every kernel vanished
        hi, lo = np.nanmax(cos, axis=-1), np.nanmin(cos, axis=-1)
    if np.ndim(hi) == 0:
        return float(hi), float(lo)
    return hi, lo


class Spread(NamedTuple):
    r"""How the kernels sit in a k-dimensional eigenspace (see :func:`eigenspace_spread`)."""

    fraction: float | np.ndarray
    r""":math:`\|\theta_{W,U}\|^2/\|\theta_W\|^2`, the share of the squared kernel norm in
    the eigenspace (1 when every kernel lies in it)."""
    effective_dim: float | np.ndarray
    r"""Participation ratio :math:`1/\sum_j\lambda_j^2 \in [1, k]` of the directions inside
    the eigenspace: 1 when all kernels lie on one line, k when isotropic."""
    eigenvalues: np.ndarray
    r""":math:`\lambda_1 \ge \ldots \ge \lambda_k` (sum 1) of the second-moment matrix of
    the in-space directions; shape (k,) or (T, k)."""


def eigenspace_spread(W, U, rel_tol: float = 1e-3) -> Spread:
    r"""Share of the kernels in a top eigenspace and their angular spread inside it [ZC].

    With U (d × k) an orthonormal basis of the top eigenspace of :math:`ZZ^\top` (e.g.
    the left singular vectors of a tie :math:`s_1 = \ldots = s_k`), kernel coordinates
    :math:`c_\beta = U^\top w_\beta` and directions :math:`\hat c_\beta = c_\beta/\|c_\beta\|`:

    .. math::

        \text{fraction} = \frac{\sum_\beta \|c_\beta\|^2}{\sum_\beta \|w_\beta\|^2},\qquad
        S = \frac1q\sum_{\beta} \hat c_\beta \hat c_\beta^\top,\qquad
        \text{effective\_dim} = \frac{1}{\sum_j \lambda_j(S)^2},

    S over the q kernels with :math:`\|c_\beta\| >` ``rel_tol`` · max (sign-blind, like
    condensation onto :math:`\pm u_1`). For the linearized flow of MATH.md §5 the fraction
    tends to 1 in both cases; with a gap (:math:`s_1 > s_2`, U of the top two) the
    kernels condense on a line and effective_dim → 1, with a tie they keep
    init-dependent directions in the plane and effective_dim stays well above 1 (Zhou et
    al., arXiv:2305.09947).

    Parameters
    ----------
    W : array, shape (s, s, C, M) or (T, s, s, C, M)
    U : array, shape (s·s·C, k), orthonormal columns (or one unit vector)
    rel_tol : float

    Returns
    -------
    Spread
        Floats (eigenvalues shape (k,)), or arrays over time for a time series.
    """
    V = kernel_vectors(W)
    U = _basis(U, V.shape[-1])
    rel_tol = _rel_tol(rel_tol)
    c = V @ U
    total = np.sum(V**2, axis=(-2, -1))
    inside = np.sum(c**2, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = inside / total
    cn = np.linalg.norm(c, axis=-1)
    keep = cn > rel_tol * cn.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        chat = np.where(keep[..., None], c / cn[..., None], 0.0)
    q = keep.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        S = np.einsum("...bi,...bj->...ij", chat, chat) / q[..., None, None]
    lam = np.full(S.shape[:-1], np.nan)
    ok = q > 0
    if np.any(ok):
        lam[ok] = np.linalg.eigvalsh(S[ok])[..., ::-1]
    eff = 1.0 / np.sum(lam**2, axis=-1)
    if np.ndim(fraction) == 0:
        return Spread(float(fraction), float(eff), lam)
    return Spread(fraction, eff, lam)


__all__ = ["Spread", "eigenspace_spread", "kernel_cosine_similarity", "kernel_vectors",
           "label_weighted_patches", "u1_alignment", "u1_cosines", "u1_ratio"]
