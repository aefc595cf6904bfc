r"""matplotlib figures of CNN kernel condensation [ZC], on plain arrays.

Zhou, Zhou, Li, Xu, "Understanding the initial condensation of convolutional neural
networks" (arXiv:2305.09947); MATH.md §5. The measures are those of
:mod:`exactdyn.analysis.cnn_measures`. Like the rest of :mod:`exactdyn.plotting`, each
function returns the Figure (never shows it); pass ``ax`` (or ``fig``) to draw into an
existing one and ``path`` to save it.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as check
from ..analysis.cnn_measures import _as_array, _direction, kernel_vectors, u1_alignment, u1_ratio
from .condensation import plot_condensation


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    if path is not None:
        from .._atomic import save_figure

        save_figure(fig, path, dpi=120, bbox_inches="tight")
    return fig


def plot_kernel_cosine(W, ax=None, path=None, rel_tol: float = 1e-3, title=None):
    r"""Heat map of the kernels' cosine-similarity matrix, range [−1, 1] [ZC].

    The matrix of :func:`exactdyn.analysis.cnn_measures.kernel_cosine_similarity` (near-zero
    kernels dropped, ordered by its top eigenvector), drawn by
    :func:`exactdyn.plotting.condensation.plot_condensation`: condensed kernels show as blocks of
    ±1.

    Parameters
    ----------
    W : array, shape (s, s, C, M)
    ax : matplotlib Axes, optional
    path : str or Path, optional
    rel_tol : float
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    V = kernel_vectors(W)
    if V.ndim != 2:
        raise ValueError(f"W must be one set of kernels (s, s, C, M), got shape {np.shape(W)}")
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
    plot_condensation(V, ax=ax, rel_tol=rel_tol, title=title, unit="kernel")
    return _save(ax.figure, path)


def plot_u1_ratio(t, W, u1, ax=None, path=None, label=None, onset=None, title=None):
    r""":math:`\|\theta_{W,u_1^\perp}\|/\|\theta_{W,u_1}\|` against time, log scale [ZC].

    The ratio of :func:`exactdyn.analysis.cnn_measures.u1_ratio`, which the linearized flow of
    MATH.md §5 makes decay like :math:`e^{-(s_1-s_2)t}` when :math:`s_1 > s_2`. Call again
    with the same ``ax`` to overlay runs.

    Parameters
    ----------
    t : array, shape (T,)
    W : array, shape (T, s, s, C, M)
        Kernels over time (``traj["W"]``).
    u1 : array, s·s·C entries
    ax : matplotlib Axes, optional
    path : str or Path, optional
    label : str, optional
        Legend entry of this curve.
    onset : float, optional
        A predicted time (e.g. :math:`\log(1/\text{scale})/s_1`) drawn as a dotted line.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = check.times("t", t)
    W = _as_array("W", W)
    if W.ndim != 5 or W.shape[0] != t.size:
        raise ValueError(f"W must be a time series (T, s, s, C, M) with T = len(t) = {t.size}, "
                         f"got shape {W.shape}")
    ratio = u1_ratio(W, u1)
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ax.plot(t, ratio, lw=1.6, label=label)
    ax.set_yscale("log")
    if onset is not None:
        ax.axvline(check.real("onset", onset), color="k", ls=":", lw=0.8)
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\|\theta_{W,u_1^\perp}\| \,/\, \|\theta_{W,u_1}\|$")
    ax.set_title(title or "kernels off / along the condensation direction")
    if label is not None:
        ax.legend(fontsize=8)
    return _save(ax.figure, path)


def plot_kernels(W, u1=None, channel=0, max_kernels: int = 16, align: bool = True,
                 fig=None, path=None, title=None):
    r"""Kernels drawn as small s × s images, next to :math:`u_1` reshaped [ZC].

    Each panel shows one kernel (one channel of it, or the channels side by side with
    ``channel="all"``), scaled to its own largest entry on a symmetric colour range, so
    condensed kernels look alike whatever their norm. The first panel is :math:`u_1`.
    With ``align`` each kernel is multiplied by :math:`\mathrm{sign}\langle w_\beta,
    u_1\rangle`, since condensation is onto :math:`\pm u_1`. The title reports the
    smallest :math:`|\cos(w_\beta, u_1)|` (:func:`exactdyn.analysis.cnn_measures.u1_alignment`).

    Parameters
    ----------
    W : array, shape (s, s, C, M)
    u1 : array, s·s·C entries, optional
    channel : int or "all"
    max_kernels : int
        At most this many kernels, the largest by norm.
    align : bool
    fig : matplotlib Figure, optional
    path : str or Path, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    W = _as_array("W", W)
    if W.ndim != 4:
        raise ValueError(f"W must be one set of kernels (s, s, C, M), got shape {W.shape}")
    s1, s2, C, M = W.shape
    if channel != "all":
        if (isinstance(channel, bool) or not isinstance(channel, (int, np.integer))
                or not 0 <= channel < C):
            raise ValueError(f"channel must be an int in 0..{C - 1} or 'all', "
                             f"got {check.show(channel)}")
    max_kernels = check.positive_int("max_kernels", max_kernels)
    V = kernel_vectors(W)
    u = None if u1 is None else _direction(u1, V.shape[1])
    order = np.argsort(-np.linalg.norm(V, axis=1), kind="stable")[:max_kernels]
    panels = []
    if u is not None:
        panels.append((r"$u_1$", u.reshape(s1, s2, C)))
    for b in order:
        k = W[..., b]
        if u is not None and align and V[b] @ u < 0:
            k = -k
        panels.append((f"β={b}", k))

    def image(k):
        k = k[..., channel] if channel != "all" else np.concatenate(
            [np.pad(k[..., a], ((0, 0), (0, 1)), constant_values=np.nan) for a in range(C)],
            axis=1)[:, :-1]
        m = np.nanmax(np.abs(k))
        return k / m if m > 0 else k

    plt = _pyplot()
    cols = min(len(panels), 6)
    rows = -(-len(panels) // cols)
    if fig is None:
        fig = plt.figure(figsize=(1.3 * cols * (1 if channel != "all" else min(C, 3)),
                                  1.4 * rows + 0.4))
    for j, (name, k) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.imshow(image(k), vmin=-1, vmax=1, cmap="RdBu_r", interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title is None and u is not None:
        _hi, lo = u1_alignment(W, u)
        title = f"kernels (channel {channel}); min |cos(w, u1)| = {lo:.3f}"
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


__all__ = ["plot_kernel_cosine", "plot_kernels", "plot_u1_ratio"]
