r"""Condensation measures of two-layer networks [ZX].

Zhou et al., "Towards understanding the condensation of neural networks at initial
training", NeurIPS 2022: the cosine-similarity matrix of the normalized input weights
(:math:`C_{kl} = \langle\hat w_k, \hat w_l\rangle`, near-zero rows dropped), ordered by
the top eigenvector of C, shown as a heat map on [−1, 1]; the number of condensed
directions is the number of clusters of directions.
"""

from __future__ import annotations

import numpy as np


def _weights(W):
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.shape[0] == 0:
        raise ValueError(f"W must be an (m, d_in) array of input weights, got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W must be finite")
    return W


def cosine_similarity(W, rel_tol: float = 1e-3):
    r"""Ordered cosine-similarity matrix of input weights.

    Rows with :math:`\|w_k\| < \text{rel\_tol}\cdot\max_l\|w_l\|` are dropped. Returns
    ``(C, kept)``: C (q × q) ordered by the entries of the top eigenvector of the
    similarity matrix, and the indices of the kept neurons in that order.
    """
    W = _weights(W)
    if not (0 <= rel_tol < 1):
        raise ValueError(f"rel_tol must be in [0, 1), got {rel_tol!r}")
    norms = np.linalg.norm(W, axis=1)
    keep = np.flatnonzero(norms > rel_tol * norms.max()) if norms.max() > 0 else np.array([], int)
    U = W[keep] / norms[keep, None]
    C = U @ U.T
    if keep.size == 0:
        return C, keep
    _vals, vecs = np.linalg.eigh(C)
    v = vecs[:, -1]
    order = np.argsort(v, kind="stable")
    return C[np.ix_(order, order)], keep[order]


def direction_clusters(W, cos_threshold: float = 0.95, rel_tol: float = 1e-3,
                       signed: bool = True) -> int:
    r"""Number of clusters of input-weight directions.

    Greedy: each direction joins the first cluster whose representative has cosine
    :math:`\ge` ``cos_threshold`` with it (:math:`|\cos|` when ``signed=False``, so that
    :math:`\pm u` count as one line), else starts a new cluster.
    """
    if not (0 < cos_threshold <= 1):
        raise ValueError(f"cos_threshold must be in (0, 1], got {cos_threshold!r}")
    C, _kept = cosine_similarity(W, rel_tol)
    reps = []
    for k in range(C.shape[0]):
        c = C[k, reps] if signed else np.abs(C[k, reps])
        if not reps or np.max(c) < cos_threshold:
            reps.append(k)
    return len(reps)


def plot_condensation(W, ax=None, path=None, rel_tol: float = 1e-3, title=None,
                      unit: str = "neuron"):
    """Heat map of :func:`cosine_similarity` (matplotlib, Agg), range [−1, 1]; ``unit``
    names the rows of W on the axes (``"kernel"`` for CNN kernels)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    C, _kept = cosine_similarity(W, rel_tol)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(C, vmin=-1, vmax=1, cmap="RdBu_r", interpolation="nearest")
    ax.set_xlabel(f"{unit} (ordered)")
    ax.set_ylabel(f"{unit} (ordered)")
    ax.set_title(title or f"cosine similarity, {direction_clusters(W, rel_tol=rel_tol)} "
                 "direction clusters")
    (fig or ax.figure).colorbar(im, ax=ax)
    if path is not None:
        (fig or ax.figure).savefig(path, dpi=120, bbox_inches="tight")
    if fig is not None and path is not None:
        plt.close(fig)
    return ax
