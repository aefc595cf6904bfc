r"""Figures of condensation in two-layer networks [ZX, LX]: matplotlib, Agg.

The measures are those of :mod:`exactdyn.analysis.condensation`: the heat map of the
cosine-similarity matrix of the normalized input weights (Zhou et al., "Towards
understanding the condensation of neural networks at initial training", NeurIPS 2022,
arXiv:2105.11686) and the orientation / amplitude scatter of Luo, Xu, Ma, Zhang, "Phase
diagram for two-layer ReLU neural networks at infinite-width limit", JMLR 22 (2021) 71.
"""

from __future__ import annotations

import numpy as np

from ..analysis.condensation import (
    cosine_similarity,
    direction_clusters,
    orientation_amplitude,
    orientation_amplitude_series,
)

__all__ = ["plot_condensation", "plot_orientation_amplitude"]


def plot_condensation(W, ax=None, path=None, rel_tol: float = 1e-3, title=None,
                      unit: str = "neuron"):
    """Heat map of :func:`~exactdyn.analysis.condensation.cosine_similarity` (matplotlib,
    Agg), range [−1, 1]; ``unit`` names the rows of W on the axes (``"kernel"`` for CNN
    kernels)."""
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
        from .._atomic import save_figure

        save_figure(fig or ax.figure, path, dpi=120, bbox_inches="tight")
    if fig is not None and path is not None:
        plt.close(fig)
    return ax


def plot_orientation_amplitude(traj, times=None, reference=None, amplitude="auto", ax=None,
                               path=None, marks=None, logy: bool = True, title=None):
    r"""Scatter of orientation against amplitude at several times [LX, ZX].

    One colour per time
    (:func:`~exactdyn.analysis.condensation.orientation_amplitude_series`); ``marks`` are
    orientations (radians) drawn as dashed vertical lines, e.g. the angles of :math:`\pm z`
    predicted by the multiplicity-1 theory. ``traj`` may also be a single weight matrix W
    (then ``times`` is ignored and no a is used). Returns the Axes (matplotlib, Agg); saves
    to ``path`` when given.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if hasattr(traj, "state"):
        series = orientation_amplitude_series(traj, times, reference, amplitude)
    else:
        th, amp = orientation_amplitude(traj, reference=reference, amplitude=amplitude)
        series = [(None, th, amp)]
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.6))
    cmap = plt.get_cmap("viridis")
    for j, (t, th, amp) in enumerate(series):
        ok = np.isfinite(th) & (amp > 0 if logy else True)
        ax.scatter(th[ok], amp[ok], s=10, color=cmap(j / max(1, len(series) - 1)),
                   label=None if t is None else f"t = {t:.3g}", alpha=0.8)
    for v in ([] if marks is None else np.atleast_1d(marks)):
        ax.axvline(float(v), color="0.4", ls="--", lw=0.8)
    d = np.asarray(traj["W"] if hasattr(traj, "state") else traj).shape[-1]
    if d == 2:
        ax.set_xlim(-np.pi, np.pi)
        ax.set_xticks([-np.pi, -np.pi / 2, 0, np.pi / 2, np.pi],
                      [r"$-\pi$", r"$-\pi/2$", "0", r"$\pi/2$", r"$\pi$"])
    else:
        ax.set_xlim(0, np.pi)
    if logy:
        ax.set_yscale("log")
    kind = amplitude if amplitude != "auto" else ("aw" if hasattr(traj, "state") else "w")
    ax.set_xlabel(r"orientation $\theta_k$" + (" (to reference)" if reference is not None
                                                 or d > 2 else ""))
    ax.set_ylabel({"aw": r"$|a_k|\,\|w_k\|$", "signed": r"$a_k\,\|w_k\|$"}.get(
        kind, r"$\|w_k\|$"))
    if series[0][0] is not None:
        ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "orientation / amplitude")
    if path is not None:
        from .._atomic import save_figure

        save_figure(fig or ax.figure, path, dpi=120, bbox_inches="tight")
    if fig is not None and path is not None:
        plt.close(fig)
    return ax
