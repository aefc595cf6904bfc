r"""The end-to-end NTK of a deep linear network and its movement [JG].

For :math:`f(x) = W_L\cdots W_1 x` and training inputs :math:`X` (columns; with only the
moment :math:`\Sigma_{xx}` known, :math:`X = \Sigma_{xx}^{1/2}`, the identity when
whitened), the NTK between outputs :math:`(i, a)` and :math:`(j, b)` is

.. math:: \Theta_{(i a),(j b)} = \sum_{\ell=1}^{L}
    \big(P_{>\ell}P_{>\ell}^\top\big)_{ij}\,\big(X^\top P_{<\ell}^\top P_{<\ell}X\big)_{ab},
    \qquad P_{>\ell} = W_L\cdots W_{\ell+1},\; P_{<\ell} = W_{\ell-1}\cdots W_1,

i.e. :math:`\Theta = \sum_\ell G_\ell\otimes H_\ell`. The kernel distance
:math:`S(t_1, t_2) = 1 - \langle\Theta_1, \Theta_2\rangle_F/(\lVert\Theta_1\rVert_F
\lVert\Theta_2\rVert_F)` is computed from :math:`\langle G\otimes H, G'\otimes H'\rangle =
\operatorname{tr}(GG')\operatorname{tr}(HH')` without forming the Kronecker products.
"""

from __future__ import annotations

import numpy as np


def _factors(weights, sigma_xx=None):
    """The pairs (G_l, H_l) of the NTK, out x out and n x n."""
    weights = [np.asarray(w, dtype=float) for w in weights]
    L = len(weights)
    n_in = weights[0].shape[1]
    X = np.eye(n_in) if sigma_xx is None else _sqrtm(np.asarray(sigma_xx, dtype=float))
    n_out = weights[-1].shape[0]
    pairs = []
    for l in range(L):
        left = np.eye(n_out)
        for w in weights[:l:-1]:
            left = left @ w
        right = X
        for w in weights[:l]:
            right = w @ right
        pairs.append((left @ left.T, right.T @ right))
    return pairs


def _sqrtm(m):
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def deep_linear_ntk(weights, sigma_xx=None) -> np.ndarray:
    r"""The NTK :math:`\Theta = \sum_\ell G_\ell \otimes H_\ell`, shape (out·n, out·n)."""
    return sum(np.kron(G, H) for G, H in _factors(weights, sigma_xx))


def _inner(p, q) -> float:
    return float(sum(np.trace(G1 @ G2) * np.trace(H1 @ H2) for G1, H1 in p for G2, H2 in q))


def _weights_at(traj, i):
    names = sorted((k for k in traj.state if k.startswith("W")), key=lambda s: int(s[1:]))
    return [np.asarray(traj.state[k][i], dtype=float) for k in names]


def _sigma_xx(traj):
    sxx = traj.meta.get("params", {}).get("sigma_xx")
    return None if sxx is None else np.asarray(sxx)


def kernel_distance(traj, i: int, j: int) -> float:
    r"""Kernel distance :math:`S(t_i, t_j)` between the NTKs at output indices ``i``, ``j``.

    0 when the kernels are proportional, up to 1 when orthogonal (Fort et al. 2020's
    kernel distance, used by [JG] to tell the NTK regime from feature learning).
    """
    sxx = _sigma_xx(traj)
    p, q = _factors(_weights_at(traj, i), sxx), _factors(_weights_at(traj, j), sxx)
    denom = np.sqrt(_inner(p, p) * _inner(q, q))
    return float(1.0 - _inner(p, q) / denom) if denom > 0 else float("nan")


def ntk_movement(traj) -> np.ndarray:
    r"""Relative change :math:`\lVert\Theta(t) - \Theta(0)\rVert_F / \lVert\Theta(0)\rVert_F`
    at every output time (the NTK regime keeps it small)."""
    sxx = _sigma_xx(traj)
    p0 = _factors(_weights_at(traj, 0), sxx)
    n0 = _inner(p0, p0)
    out = np.empty(len(traj.t))
    for i in range(len(traj.t)):
        p = _factors(_weights_at(traj, i), sxx)
        out[i] = np.sqrt(max(_inner(p, p) - 2 * _inner(p, p0) + n0, 0.0) / n0)
    return out
